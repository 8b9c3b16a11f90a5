"""Combine the detectors into one row per song: reasons, evidence, the allow-list, and changes.

Reasons (``REASONS``): ``audio_duplicate`` (the same audio as an earlier upload; the earliest upload of
a group of matching songs is the original and is not flagged), ``text_duplicate`` (a mass family of
near-identical title+prompt+tags in one account), ``keyword_stuffing``, ``mass_upload``,
``short_tracks``. ``evidence`` is a JSON object per song with one entry per detected reason.

The allow-list is an operator's file (CSV: ``scope,id,who,why`` with scope ``creator`` (a user_id)
or ``song``). An allowed song keeps its detected reasons for the record but is not ``flagged``.
A row without who or why, or with an unknown scope, is rejected with its reason, never applied.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sunorecsys.spam.text import keyword_stuffing, near_duplicate_text
from sunorecsys.spam.uploads import mass_uploads, short_track_bulk

REASONS = ("audio_duplicate", "text_duplicate", "keyword_stuffing", "mass_upload", "short_tracks")
ALLOWLIST_COLUMNS = ("scope", "id", "who", "why")
ALLOW_SCOPES = ("creator", "song")
_TEXT_LIST = pa.list_(pa.string())
# Explicit types: a partition where no song is flagged would otherwise store list<null> columns.
FLAGS_SCHEMA = pa.schema([("song_id", pa.string()), ("user_id", pa.string()),
                          ("created_at", pa.timestamp("us", tz="UTC")), ("flagged", pa.bool_()),
                          ("reasons", _TEXT_LIST), ("detected_reasons", _TEXT_LIST), ("duplicate_of", pa.string()),
                          ("evidence", pa.string()), ("allowed_by", pa.string()), ("allowed_why", pa.string())])
HISTORY_SCHEMA = pa.schema([("changed_at", pa.timestamp("us", tz="UTC")), ("song_id", pa.string()),
                            ("reasons_before", _TEXT_LIST), ("reasons_after", _TEXT_LIST),
                            ("duplicate_of_before", pa.string()), ("duplicate_of_after", pa.string()),
                            ("cause", pa.string())])
FLAG_COLUMNS = ["song_id", "user_id", "created_at", "flagged", "reasons", "detected_reasons", "duplicate_of",
                "evidence", "allowed_by", "allowed_why"]


def audio_duplicates(songs: pd.DataFrame, matches: pd.DataFrame) -> pd.DataFrame:
    """Every song of a group of matching audio except the group's earliest upload (ties: smaller id).

    ``matches`` has ``song_a, song_b, bit_error_rate, offset_s, overlap_s`` (verified pairs, ids).
    Groups are connected components of the match graph restricted to ``songs``. Returns ``song_id,
    duplicate_of, bit_error_rate, offset_s, overlap_s, group_size`` (the pair evidence is the direct
    match with the original when there is one, else the song's best match in the group; ``offset_s`` is
    where the song starts inside the matched one, in seconds).
    """
    cols = ["song_id", "duplicate_of", "bit_error_rate", "offset_s", "overlap_s", "group_size"]
    known = pd.Index(songs["song_id"].astype(str))
    if matches is None or matches.empty or known.empty:
        return pd.DataFrame(columns=cols)
    m = matches[matches["song_a"].isin(known) & matches["song_b"].isin(known)]
    if m.empty:
        return pd.DataFrame(columns=cols)
    a, b = known.get_indexer(m["song_a"]), known.get_indexer(m["song_b"])
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(known), len(known)))
    _, label = connected_components(graph, directed=False)
    involved = np.unique(np.r_[a, b])
    created = pd.to_datetime(songs["created_at"], utc=True).to_numpy()
    info = pd.DataFrame({"row": involved, "song_id": known[involved], "label": label[involved],
                         "created": created[involved]}).sort_values(["created", "song_id"], kind="stable")
    info["original"] = info.groupby("label")["song_id"].transform("first")
    info["group_size"] = info.groupby("label")["song_id"].transform("size")
    dupes = info[info["song_id"] != info["original"]]
    # A match says song_b starts offset_s into song_a; seen from x, the evidence says where x starts
    # in the song it matched, so the mirrored half (x = song_a) flips the sign.
    as_a = m.rename(columns={"song_a": "x", "song_b": "y"}).assign(offset_s=-m["offset_s"])
    both = pd.concat([as_a, m.rename(columns={"song_a": "y", "song_b": "x"})], ignore_index=True)
    rows = []
    for sid, original, size in dupes[["song_id", "original", "group_size"]].itertuples(index=False):
        mine = both[both["x"] == sid]
        direct = mine[mine["y"] == original]
        pick = (direct if len(direct) else mine).sort_values("bit_error_rate").iloc[0]
        rows.append({"song_id": sid, "duplicate_of": original, "bit_error_rate": float(pick["bit_error_rate"]),
                     "offset_s": float(pick["offset_s"]), "overlap_s": float(pick["overlap_s"]),
                     "group_size": int(size), "matched": str(pick["y"])})
    return pd.DataFrame(rows)


def read_allowlist(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The operator's allow-list CSV -> (valid rows, rejected rows with ``reason``); no file = empty."""
    path = Path(path)
    cols = list(ALLOWLIST_COLUMNS)
    if not path.exists():
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=[*cols, "line", "reason"])
    valid, rejected = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in cols if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: the allow-list needs columns {cols}; missing {missing}")
        for line, row in enumerate(reader, start=2):
            entry = {c: (row.get(c) or "").strip() for c in cols}
            if entry["scope"] not in ALLOW_SCOPES:
                rejected.append({**entry, "line": line, "reason": f"scope must be one of {ALLOW_SCOPES}"})
            elif not entry["id"]:
                rejected.append({**entry, "line": line, "reason": "no id"})
            elif not entry["who"] or not entry["why"]:
                rejected.append({**entry, "line": line, "reason": "an allow-list entry needs who and why"})
            else:
                valid.append(entry)
    return pd.DataFrame(valid, columns=cols), pd.DataFrame(rejected, columns=[*cols, "line", "reason"])


def _json_safe(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def combine_flags(songs: pd.DataFrame, matches: pd.DataFrame | None, allowlist: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
    """One row per song of ``songs`` (columns ``FLAG_COLUMNS``), judged against all of ``songs``.

    ``songs`` needs ``song_id, user_id, created_at, title, tags, prompt, duration_s``.
    """
    detected: dict[str, dict[str, dict]] = {}

    def note(frame: pd.DataFrame, reason: str) -> None:
        for record in frame.to_dict("records"):
            sid = record.pop("song_id")
            detected.setdefault(sid, {})[reason] = {k: _json_safe(v) for k, v in record.items()}

    songs = songs.reset_index(drop=True)
    note(audio_duplicates(songs, matches), "audio_duplicate")
    note(near_duplicate_text(songs), "text_duplicate")
    note(keyword_stuffing(songs), "keyword_stuffing")
    note(mass_uploads(songs), "mass_upload")
    note(short_track_bulk(songs), "short_tracks")

    allow_song, allow_creator = {}, {}
    if allowlist is not None and len(allowlist):
        for entry in allowlist.to_dict("records"):
            (allow_song if entry["scope"] == "song" else allow_creator)[entry["id"]] = entry
    rows = []
    for record in songs[["song_id", "user_id", "created_at"]].to_dict("records"):
        sid = str(record["song_id"])
        found = detected.get(sid, {})
        reasons = [r for r in REASONS if r in found]
        allow = allow_song.get(sid) or allow_creator.get(str(record["user_id"]))
        rows.append({
            "song_id": sid, "user_id": record["user_id"], "created_at": record["created_at"],
            "flagged": bool(reasons) and allow is None,
            "reasons": reasons if allow is None else [],
            "detected_reasons": reasons,
            "duplicate_of": found.get("audio_duplicate", {}).get("duplicate_of"),
            "evidence": json.dumps(found, ensure_ascii=False, sort_keys=True) if found else "{}",
            "allowed_by": None if allow is None or not reasons else allow["who"],
            "allowed_why": None if allow is None or not reasons else allow["why"],
        })
    return pd.DataFrame(rows, columns=FLAG_COLUMNS)


def flag_changes(previous: pd.DataFrame | None, current: pd.DataFrame, changed_at: pd.Timestamp,
                 cause: str) -> pd.DataFrame:
    """History rows for songs whose ``reasons`` or ``duplicate_of`` changed since ``previous``.

    A song new to the catalogue appears only when it is flagged. Returns ``changed_at, song_id,
    reasons_before, reasons_after, duplicate_of_before, duplicate_of_after, cause``.
    """
    cols = ["changed_at", "song_id", "reasons_before", "reasons_after", "duplicate_of_before",
            "duplicate_of_after", "cause"]
    def state(r: dict) -> tuple[list[str], str | None]:
        # Parquet and pandas spell "no original" as None or NaN: compare them as one
        dup = r["duplicate_of"]
        return [str(x) for x in r["reasons"]], (None if dup is None or pd.isna(dup) else str(dup))

    before = {} if previous is None or previous.empty else {
        r["song_id"]: state(r) for r in previous.to_dict("records")}
    rows = []
    for r in current.to_dict("records"):
        now = state(r)
        old = before.get(r["song_id"], ([], None))
        if r["song_id"] not in before and not now[0]:
            continue
        if (old[0], old[1]) != (now[0], now[1]):
            rows.append({"changed_at": changed_at, "song_id": r["song_id"], "reasons_before": old[0],
                         "reasons_after": now[0], "duplicate_of_before": old[1], "duplicate_of_after": now[1],
                         "cause": cause})
    return pd.DataFrame(rows, columns=cols)
