"""A synthetic warehouse of any size, for ``bench/warehouse.py`` and the warehouse tests (benchmark data,
kept out of the library).

Writes daily partitions of ``songs``, ``audio_checks``, ``quality_scores`` and ``flamingo_scores``
with the columns agreed in CONTRACTS.md (through :func:`write_partition`, like the pipeline), with
structure the analyst queries can find: creators differ in how often their audio fails, quality
drives play counts, a second Music Flamingo scorer version (from the middle day on) scores 0.05
higher, and a few answers are partial or unparseable. Generation is vectorised numpy/pyarrow:
10 million songs take about a minute on 2 cores. Not used by the pipeline.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sunorecsys.warehouse.parquet import write_partition

GENRES = ("pop", "rock", "hip hop", "edm", "lo-fi", "jazz", "classical", "country", "metal",
          "ambient", "r&b", "folk")
SCORER_VERSIONS = ("music-flamingo-hf@p1a2b3c4/parser-1", "music-flamingo-hf@p9f8e7d6/parser-2")
_HEX = np.frombuffer(b"0123456789abcdef", dtype="S1")


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """n random UUID-shaped ids (36 characters, like Suno's), without a Python loop."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    chars = np.empty((n, 36), dtype="S1")
    pos = [i for i in range(36) if i not in (8, 13, 18, 23)]
    chars[:, pos[0::2]] = _HEX[raw >> 4]
    chars[:, pos[1::2]] = _HEX[raw & 15]
    chars[:, [8, 13, 18, 23]] = b"-"
    return pa.array(chars.view("S36").ravel()).cast(pa.string())


def _pick(rng: np.random.Generator, values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)), pa.array(values)).cast(pa.string())


def write_synthetic_warehouse(warehouse_dir: str | os.PathLike, n_songs: int, days: int = 30, *,
                              seed: int = 0, end_date: str = "2026-11-14") -> dict[str, int]:
    """Write ``n_songs`` songs spread over ``days`` daily partitions ending on ``end_date``.

    Every song gets one row in each of the four tables. Returns rows written per table.
    """
    rng = np.random.default_rng(seed)
    n = int(n_songs)
    n_users = max(10, n // 50)
    end = dt.date.fromisoformat(end_date)
    day_keys = [(end - dt.timedelta(days=days - 1 - d)).isoformat() for d in range(days)]

    day = np.sort(rng.integers(0, days, n))
    bounds = np.searchsorted(day, np.arange(days + 1))
    song_id = _uuids(rng, n)
    user = rng.integers(0, n_users, n)
    user_ids = pa.array(np.char.add("user-", np.arange(n_users).astype(str)).astype(object))
    handles = pa.array(np.char.add("creator_", np.arange(n_users).astype(str)).astype(object))
    # Creators differ: each has a skill (mean quality) and a rate of broken uploads.
    skill = rng.beta(5, 3, n_users)
    fail_rate = rng.beta(1, 12, n_users)
    genre_idx = rng.integers(0, len(GENRES), n)

    hard_fail = rng.random(n) < fail_rate[user]
    status_idx = np.where(hard_fail, rng.integers(1, 4, n), 0)  # ok / silent-ish failures
    technical = np.clip(rng.normal(0.8, 0.1, n), 0, 1)
    technical[hard_fail] = 0.0
    flamingo = np.clip(skill[user] + rng.normal(0, 0.12, n), 0, 1)
    version_idx = (day >= days // 2).astype(np.int32)
    flamingo = np.clip(flamingo + 0.05 * version_idx, 0, 1)
    quality = np.where(hard_fail, 0.0, 0.6 * flamingo + 0.4 * technical)
    no_source = rng.random(n) < 0.01
    quality[no_source] = np.nan
    # Plays grow with quality (heavy-tailed): the relationship the quality-vs-plays query shows.
    plays = np.floor(rng.pareto(1.5, n) * 20 * (0.2 + np.nan_to_num(quality, nan=0.3)) ** 2).astype(np.int64)

    u = rng.random(n)
    f_status = np.where(u < 0.90, 0, np.where(u < 0.96, 1, 2))  # ok / partial / failed
    answered = (f_status < 2) | (rng.random(n) < 0.5)            # half the failures never answered
    overall = np.where(f_status == 2, np.nan, flamingo)
    created = (np.datetime64(day_keys[0]) + day.astype("timedelta64[D]")).astype("datetime64[us]") + \
        rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]")

    def context(s: slice) -> dict:
        # the song context the pipeline attaches to score tables (sunorecsys.catalog.song_context)
        return {"genre": _pick(rng, GENRES, genre_idx[s]), "user_id": user_ids.take(pa.array(user[s])),
                "handle": handles.take(pa.array(user[s])), "play_count": pa.array(plays[s])}

    columns = {
        "songs": lambda s: {
            "song_id": song_id[s], "title": pa.nulls(s.stop - s.start, pa.string()),
            "user_id": user_ids.take(pa.array(user[s])), "handle": handles.take(pa.array(user[s])),
            "created_at": pa.array(created[s]).cast(pa.timestamp("us", tz="UTC")),
            "genre": _pick(rng, GENRES, genre_idx[s]), "play_count": pa.array(plays[s]),
            "is_public": pa.array(np.ones(s.stop - s.start, bool)),
        },
        "audio_checks": lambda s: {
            "song_id": song_id[s],
            "status": _pick(rng, ("ok", "unreadable", "empty", "too_short"), status_idx[s]),
            "technical_score": pa.array(technical[s]), "hard_fail": pa.array(hard_fail[s]),
            "checks_version": pa.array(np.full(s.stop - s.start, "signal-1", object)),
            **context(s),
        },
        "quality_scores": lambda s: {
            "song_id": song_id[s], "quality_score": pa.array(quality[s], from_pandas=True),
            "coverage": pa.array(np.where(no_source[s], 0.0, 1.0)), "hard_fail": pa.array(hard_fail[s]),
            "flamingo_score": pa.array(flamingo[s]), "technical_score": pa.array(technical[s]),
            **context(s),
        },
        "flamingo_scores": lambda s: {
            "song_id": song_id[s], "status": _pick(rng, ("ok", "partial", "failed"), f_status[s]),
            "overall_quality_score": pa.array(overall[s], from_pandas=True),
            "raw_response": pc.if_else(pa.array(answered[s]), "{\"genre\": \"...\"}",
                                       pa.scalar(None, pa.string())),
            "scorer_version": _pick(rng, SCORER_VERSIONS, version_idx[s]),
        },
    }
    written = {t: 0 for t in columns}
    for d, key in enumerate(day_keys):
        s = slice(int(bounds[d]), int(bounds[d + 1]))
        for table, make in columns.items():
            write_partition(pa.table(make(s)), Path(warehouse_dir), table, key)
            written[table] += s.stop - s.start
    return written
