"""Which days need a scoring run, read from the warehouse (no Dagster context needed).

- :func:`missed_days`: songs ingested into ``processed/songs.parquet`` that are in no songs
  partition (e.g. a file that landed while a run was under way): the next tick scores their days.
- :func:`retry_days`: days whose audio_checks still hold songs whose audio could not be had, and
  that are younger than the give-up age: later runs retry those songs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pyarrow.compute as pc
import pyarrow.dataset as pads

from sunorecsys.audio.errors import UNAVAILABLE_REASONS
from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import partition_path


def _days(values) -> list[str]:
    return sorted({str(v) for v in values if v is not None})


def missed_days(paths: DataPaths, partition_keys: Iterable[str]) -> list[str]:
    """Days (within ``partition_keys``) holding an ingested song that no songs partition has."""
    if not paths.processed_songs.exists():
        return []
    ingested = pads.dataset(paths.processed_songs).to_table(columns=["song_id", "created_at"])
    if not ingested.num_rows:
        return []
    songs_dir = paths.warehouse_dir / "songs"
    placed = set()
    if songs_dir.exists() and any(songs_dir.glob("date=*/part-0.parquet")):
        data = pads.dataset(sorted(str(p) for p in songs_dir.glob("date=*/part-0.parquet")), format="parquet")
        placed = set(data.to_table(columns=["song_id"]).column("song_id").to_pylist())
    missing = ingested.filter(pc.invert(pc.is_in(ingested.column("song_id"),
                                                 value_set=pc.cast(list(placed) or [""], "string"))))
    if not missing.num_rows:
        return []
    days = pc.strftime(missing.column("created_at"), format="%Y-%m-%d").to_pylist()
    return sorted(set(_days(days)) & set(partition_keys))


def retry_days(paths: DataPaths, partition_keys: Iterable[str], give_up_days: int,
               today: dt.date | None = None) -> list[str]:
    """Days no older than ``give_up_days`` whose audio_checks hold unheard songs (to retry)."""
    today = today or dt.datetime.now(dt.UTC).date()
    out = []
    for key in partition_keys:
        if (today - dt.date.fromisoformat(key)).days > give_up_days:
            continue
        path = partition_path(paths.warehouse_dir, "audio_checks", key)
        if not path.exists():
            continue
        status = pads.dataset(path).to_table(columns=["status"]).column("status")
        if pc.any(pc.is_in(status, value_set=pc.cast(sorted(UNAVAILABLE_REASONS), "string"))).as_py():
            out.append(key)
    return out
