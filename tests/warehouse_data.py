"""A small real warehouse written with the library's own writers (shared by the SQL tests)."""

from __future__ import annotations

import pandas as pd

from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import write_partition
from sunorecsys.warehouse.views import build_analyst_views


def write_small_warehouse(paths: DataPaths) -> DataPaths:
    """Two daily partitions of ``songs`` and ``quality_scores`` (songs a-e), plus the views file."""
    for day, ids in (("2026-11-01", ["a", "b", "c"]), ("2026-11-02", ["d", "e"])):
        songs = pd.DataFrame({"song_id": ids, "user_id": "u1", "handle": "h1",
                              "genre": ["pop", "rock", None][: len(ids)], "play_count": range(len(ids))})
        write_partition(songs, paths.warehouse_dir, "songs", day)
        quality = [0.1 * (i + 1) for i in range(len(ids))]
        write_partition(pd.DataFrame({"song_id": ids, "quality_score": quality}),
                        paths.warehouse_dir, "quality_scores", day)
    build_analyst_views(paths)
    return paths
