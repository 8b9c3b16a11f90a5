"""The listening log: ``data/raw/interactions.{csv,parquet,jsonl}`` -> INTERACTIONS_SCHEMA rows.

Columns: ``user_id``, ``song_id``, ``timestamp`` (ISO 8601 or epoch seconds; stored as UTC),
``event`` (play, complete, like, skip, ...; lower-cased), ``weight`` (float; when missing or
empty, the default weight of the event, 1.0 for an unknown event).

Bad rows never stop a run: a row with no user or song id, an unparsable timestamp or a
non-numeric weight is dropped and counted (``malformed_rows``, with a count per reason);
events for songs outside ``known_song_ids`` are dropped and counted (``unknown_song_events``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sunorecsys.catalog.schema import INTERACTIONS_SCHEMA
from sunorecsys.paths import DataPaths

INTERACTION_COLUMNS = INTERACTIONS_SCHEMA.names
INTERACTIONS_FILE_NAMES = ("interactions.csv", "interactions.parquet", "interactions.jsonl")
DEFAULT_EVENT_WEIGHTS = {"play": 1.0, "complete": 2.0, "like": 4.0, "skip": -1.0}


def find_interactions_files(paths: DataPaths) -> list[Path]:
    """The listening-log files present in ``paths.raw_dir`` (any of csv, parquet, jsonl)."""
    return [paths.raw_dir / name for name in INTERACTIONS_FILE_NAMES if (paths.raw_dir / name).is_file()]


def _read_one(path: Path, stats: dict) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], on_bad_lines="skip",
                           encoding="utf-8", encoding_errors="replace")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    # JSON Lines: one bad line is one malformed row, not a failed file.
    rows: list[dict] = []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append(row)
            else:
                stats["malformed_reasons"]["bad_json_line"] = stats["malformed_reasons"].get("bad_json_line", 0) + 1
                stats["malformed_rows"] += 1
    return pd.DataFrame(rows)


def _count_csv_rows(path: Path) -> int:
    """Data lines in a CSV (so rows the parser skipped as malformed are still counted)."""
    with path.open("rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    return max(lines - 1, 0)


def _parse_timestamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = pd.to_datetime(values, utc=True)
    elif pd.api.types.is_numeric_dtype(values):
        ts = pd.to_datetime(values, unit="s", utc=True, errors="coerce")
    else:
        text = values.astype("string")
        numeric = pd.to_numeric(text, errors="coerce")
        ts = pd.to_datetime(text.where(numeric.isna()), format="ISO8601", utc=True, errors="coerce")
        from_epoch = pd.to_datetime(numeric, unit="s", utc=True, errors="coerce")
        ts = ts.fillna(from_epoch)
    return ts.dt.as_unit("us")


def read_interactions(paths: DataPaths, known_song_ids=None) -> tuple[pd.DataFrame, dict]:
    """Read the listening log under ``paths.raw_dir``; returns (events, stats).

    ``events`` has INTERACTIONS_SCHEMA columns, sorted by timestamp. ``stats``: ``files``, ``rows``
    (read), ``malformed_rows`` and ``malformed_reasons``, ``unknown_song_events`` (dropped because
    the song is not in ``known_song_ids``; 0 when it is None), ``kept``. No file -> empty events.
    """
    stats: dict = {"files": [], "rows": 0, "malformed_rows": 0, "malformed_reasons": {}, "unknown_song_events": 0,
                   "kept": 0}
    frames = []
    for path in find_interactions_files(paths):
        stats["files"].append(str(path))
        frame = _read_one(path, stats)
        if path.suffix.lower() == ".csv":
            skipped = _count_csv_rows(path) - len(frame)
            if skipped > 0:  # lines with the wrong number of fields
                stats["malformed_reasons"]["wrong_field_count"] = skipped
                stats["malformed_rows"] += skipped
                stats["rows"] += skipped
        stats["rows"] += len(frame)
        frames.append(frame)
    frames = [f for f in frames if len(f.columns)]
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for column in INTERACTION_COLUMNS:
        if column not in raw.columns:
            raw[column] = None
    if raw.empty:
        return _empty(), stats

    user = raw["user_id"].astype("string").str.strip()
    song = raw["song_id"].astype("string").str.strip()
    event = raw["event"].astype("string").str.strip().str.lower().fillna("play")
    ts = _parse_timestamps(raw["timestamp"])
    weight_raw = raw["weight"]
    weight = pd.to_numeric(weight_raw, errors="coerce").astype("float64")
    weight_given = weight_raw.notna() & (weight_raw.astype("string").str.strip() != "")
    defaults = event.map(DEFAULT_EVENT_WEIGHTS).astype("float64").fillna(1.0)
    weight = weight.where(weight.notna(), defaults.where(~weight_given.fillna(False)))

    checks = {
        "missing_user_id": user.isna() | (user == ""),
        "missing_song_id": song.isna() | (song == ""),
        "bad_timestamp": ts.isna(),
        "bad_weight": weight.isna() | ~np.isfinite(weight.fillna(0.0)),
    }
    bad = pd.Series(False, index=raw.index)
    for reason, mask in checks.items():
        mask = mask.fillna(True).astype(bool) & ~bad  # count each row under its first reason
        if mask.any():
            stats["malformed_reasons"][reason] = stats["malformed_reasons"].get(reason, 0) + int(mask.sum())
        bad |= mask
    stats["malformed_rows"] += int(bad.sum())

    events = pd.DataFrame({"user_id": user, "song_id": song, "timestamp": ts, "event": event, "weight": weight})[~bad]
    if known_song_ids is not None:
        known = set(known_song_ids)
        is_known = events["song_id"].isin(known)
        stats["unknown_song_events"] = int((~is_known).sum())
        events = events[is_known]
    events = events.sort_values(["timestamp", "user_id", "song_id"], kind="stable").reset_index(drop=True)
    events = events.astype({"user_id": "str", "song_id": "str", "event": "str"})
    stats["kept"] = len(events)
    return events[INTERACTION_COLUMNS], stats


def _empty() -> pd.DataFrame:
    return INTERACTIONS_SCHEMA.empty_table().to_pandas()
