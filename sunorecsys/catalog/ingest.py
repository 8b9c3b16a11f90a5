"""Suno catalogue files -> the validated songs table (SONGS_SCHEMA) and the rejected rows.

A raw record is a Suno clip object: ``id``, ``title``, ``user_id``, ``handle``/``display_name``,
``created_at`` (ISO 8601), ``audio_url``, ``model_name``/``major_model_version``, counts,
``is_public``, and a nested ``metadata`` with ``tags`` (comma-separated, or a list), ``prompt``,
``gpt_description_prompt``, ``duration`` (seconds), ``type``, ``history``/``concat_history``.
An optional extension field ``audio_path`` (top level or in ``metadata``) points at a local file.

How a file is read: DuckDB's ``read_json`` parses it and applies the record rules in one query
(``fast_reader``); a file DuckDB refuses (one malformed record, a record that is not an object,
a duplicate key, deep nesting) is read record by record in Python (``tolerant_reader``) and the
records that parse go through the same rules query. The rules and reason codes are documented in
``record_rules``; a file that cannot be a catalogue at all (``source_files``) is one rejected file.

Nothing in the data makes ``read_catalogue`` raise: one bad record is one rejected row with a
reason, one bad file is one rejected file (a row with reason ``bad_file``, ``position`` and
``song_id`` null, and an entry in ``IngestResult.rejected_files``); every other record and file
lands. When an id repeats, the newest record (by ``created_at``; on a tie the later one in the
input) is kept and every other one is rejected as ``duplicate_superseded`` (``raw`` then holds
the superseded normalised row).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sunorecsys.catalog.fast_reader import read_fast
from sunorecsys.catalog.genres import genre_of_tags, split_tags
from sunorecsys.catalog.record_rules import TOP_FIELDS, latest_allowed_created_at
from sunorecsys.catalog.schema import REJECTED_SCHEMA, SONGS_SCHEMA
from sunorecsys.catalog.source_files import (
    BadCatalogueFile,
    CatalogueFormatError,
    find_catalogue_files,
    inspect_catalogue_file,
    is_catalogue_name,
)
from sunorecsys.catalog.tolerant_reader import MAX_RAW_CHARS, read_tolerant
from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import write_parquet_atomic

__all__ = [
    "REJECTED_COLUMNS",
    "SONG_COLUMNS",
    "CatalogueFormatError",
    "IngestResult",
    "find_catalogue_files",
    "partition_songs",
    "read_catalogue",
    "write_songs",
]

SONG_COLUMNS = SONGS_SCHEMA.names
REJECTED_COLUMNS = REJECTED_SCHEMA.names
DUCKDB_MEMORY_LIMIT = "4GB"  # the machine is shared; DuckDB would otherwise take 80 % of it


@dataclass
class IngestResult:
    """The outcome of reading catalogue files.

    ``songs``: one row per accepted song id (SONG_COLUMNS), in input order (files, then records).
    ``rejected``: one row per rejected record (REJECTED_COLUMNS) with a reason code, and one row per
    rejected file (reason ``bad_file``, position and song_id null).
    ``duplicates``: how many records were superseded by a newer record with the same id.
    ``files``: the files given, in order (rejected ones included). ``records``: how many records
    the readable files held. ``rejected_files``: ``{file: why}`` for the files that could not be read.
    """
    songs: pd.DataFrame
    rejected: pd.DataFrame
    duplicates: int
    files: list[str]
    records: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejected_files: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) or "none"
        text = (f"{self.records} records in {len(self.files)} file(s): {len(self.songs)} songs, "
                f"{len(self.rejected)} rejected ({reasons}), {self.duplicates} duplicates superseded")
        for file, why in self.rejected_files.items():
            text += f"\nrejected file {file}: {why}"
        return text


def _expand_sources(source: str | os.PathLike | list) -> list[Path]:
    """Files named, and catalogue entries of folders named (a folder named like a catalogue file,
    ``x.json/``, is an entry to reject, not a folder to read). A source that does not exist at all is
    the caller's mistake (FileNotFoundError); an entry that exists but is not a readable file (a
    broken symlink, a FIFO) is kept, to be reported as a rejected file."""
    items = source if isinstance(source, (list, tuple)) else [source]
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir() and not is_catalogue_name(path):  # a folder named *.json is a bad file
            files.extend(find_catalogue_files(path))
        elif path.is_file() or os.path.lexists(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"catalogue source not found: {path}")
    return files


@dataclass
class _FilePart:
    file: str
    table: pa.Table | None       # the rules query's rows (pos filled)
    rejected: list[dict]         # rows rejected before the rules (tolerant path)
    records: int


def _connect(threads: int) -> duckdb.DuckDBPyConnection:
    spill = Path(tempfile.gettempdir()) / "sunorecsys-ingest-spill"  # never inside the data root
    con = duckdb.connect(config={"threads": max(threads, 1), "memory_limit": DUCKDB_MEMORY_LIMIT,
                                 "temp_directory": str(spill)})
    con.sql("SET TimeZone = 'UTC'")  # naive timestamps are UTC, as Suno writes them
    return con


def _read_file(con: duckdb.DuckDBPyConnection, path: Path, latest: datetime, work_dir: Path) -> _FilePart:
    file = inspect_catalogue_file(path)
    table = read_fast(con, file, latest)
    if table is not None:
        return _FilePart(str(path), table, [], table.num_rows)
    table, rejected, records = read_tolerant(con, file, latest, work_dir)
    return _FilePart(str(path), table, rejected, records)


def read_catalogue(source: str | os.PathLike | list[str | os.PathLike], workers: int | None = None, *,
                   now: datetime | None = None) -> IngestResult:
    """Read one catalogue file, a folder of them (see ``find_catalogue_files``), or a list of either.

    Returns the validated songs and the rejected records and files; never raises for bad data.
    Raises ``FileNotFoundError`` for a source that does not exist. ``workers``: DuckDB threads
    (default: up to 2). ``now``: the clock for the created_at window (default: the current time).
    """
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    files = _expand_sources(source)
    latest = latest_allowed_created_at(now)
    parts: list[_FilePart] = []
    bad_files: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sunorecsys-ingest-") as work_dir:
        con = _connect(workers)
        try:
            for path in files:
                try:
                    parts.append(_read_file(con, path, latest, Path(work_dir)))
                except BadCatalogueFile as exc:
                    bad_files[str(path)] = exc.detail
                except OSError as exc:  # e.g. an I/O error half-way through
                    bad_files[str(path)] = f"cannot be read: {exc.strerror or exc}"
                except duckdb.Error as exc:  # the staged records refused too: report, do not stop
                    bad_files[str(path)] = f"could not be read: {str(exc).splitlines()[0][:300]}"
        finally:
            con.close()
    songs, rejected, duplicates = _assemble(parts)
    file_rows = [{"source_file": f, "position": None, "song_id": None, "reason": "bad_file", "detail": why,
                  "raw": None} for f, why in bad_files.items()]
    rejected = _order_rejected(pd.concat([pd.DataFrame(file_rows, columns=REJECTED_COLUMNS), rejected],
                                         ignore_index=True) if file_rows else rejected, [str(f) for f in files])
    reasons = rejected["reason"].value_counts().to_dict() if len(rejected) else {}
    return IngestResult(songs=songs, rejected=rejected, duplicates=duplicates, files=[str(f) for f in files],
                        records=sum(p.records for p in parts), rejected_files=bad_files,
                        reasons={str(k): int(v) for k, v in reasons.items()})


def _raw_json(row: dict) -> str | None:
    """A rejected row's read fields as one JSON object (texts as DuckDB wrote them)."""
    fields = [f"{json.dumps(f)}: {row[f'raw_{f}']}" for f in TOP_FIELDS if row.get(f"raw_{f}") is not None]
    text = "{" + ", ".join(fields) + "}"
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + f"... ({len(text)} characters, cut)"


class _TagVocabulary:
    """Raw tag value -> (normalised tags, genre) through ``genres``, once per distinct value."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[list[str], str]] = {None: ([], genre_of_tags([]))}

    def lookup(self, key: str | None) -> tuple[list[str], str]:
        hit = self.cache.get(key)
        if hit is None:
            raw = key[1:] if key[0] == "s" else [t for t in json.loads(key[1:]) if t is not None]
            tags = split_tags(raw)
            hit = self.cache[key] = (tags, genre_of_tags(tags))
        return hit

    def columns(self, keys: pa.ChunkedArray) -> tuple[list[list[str]], list[str]]:
        """Rows with the same tag value share one list object: treat ``tags`` as read-only."""
        distinct = pc.unique(keys)
        looked_up = [self.lookup(k) for k in distinct.to_pylist()]
        index = pc.index_in(keys, value_set=distinct).to_numpy(zero_copy_only=False)
        if keys.null_count:  # nulls are not in value_set's index: map them to the empty entry
            null_at = distinct.to_pylist().index(None) if None in distinct.to_pylist() else None
            if null_at is None:
                looked_up.append(self.lookup(None))
                null_at = len(looked_up) - 1
            index = np.where(pc.is_null(keys).to_numpy(zero_copy_only=False), null_at, index)
        index = index.astype(np.int64)
        tags = [looked_up[i][0] for i in index]
        genres = [looked_up[i][1] for i in index]
        return tags, genres


def _assemble(parts: list[_FilePart]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Songs (newest record per id) and rejected rows from every file's rules result.

    Works on the Arrow tables and filters each one at most twice (rejected rows out, superseded
    rows out): the big text columns are never copied row by row.
    """
    rejected_rows: list[dict] = []
    goods: list[tuple[str, pa.Table]] = []
    good_masks: list[np.ndarray | None] = []
    for part in parts:
        rejected_rows.extend(part.rejected)
        table, part.table = part.table, None  # the Arrow copy goes as soon as it is used
        if table is None or table.num_rows == 0:
            continue
        bad = pc.is_valid(table["reason"])
        good = None
        if pc.any(bad).as_py():
            for row in table.filter(bad).select(["pos", "song_id", "reason", "detail",
                                                 *(f"raw_{f}" for f in TOP_FIELDS)]).to_pylist():
                rejected_rows.append({"source_file": part.file, "position": row["pos"], "song_id": row["song_id"],
                                      "reason": row["reason"], "detail": row["detail"], "raw": _raw_json(row)})
            good = ~bad.to_numpy(zero_copy_only=False)
        goods.append((part.file, table.select(["pos", *(c for c in SONG_COLUMNS if c not in ("tags", "genre")),
                                               "tags_key"])))
        good_masks.append(good)
    superseded, keep = _newest_per_id(goods, good_masks)
    vocabulary = _TagVocabulary()
    frames = []
    for (file, table), kept in zip(goods, keep):
        if kept is not None:  # one filter takes out the rejected and the superseded rows
            table = table.filter(pa.array(kept))
        if not table.num_rows:
            continue
        tags, genres = vocabulary.columns(table["tags_key"])
        frame = table.select([c for c in SONG_COLUMNS if c not in ("tags", "genre")]).to_pandas(
            types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
        frame["is_remix"] = frame["is_remix"].astype(bool)
        frame["tags"] = tags
        frame["genre"] = pd.array(genres, dtype="str")
        frames.append(frame[SONG_COLUMNS])
    if not frames:
        songs = SONGS_SCHEMA.empty_table().to_pandas()
    else:
        songs = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    rejected = pd.DataFrame(rejected_rows + superseded, columns=REJECTED_COLUMNS)
    return songs, rejected, len(superseded)


def _newest_per_id(goods: list[tuple[str, pa.Table]], good_masks: list[np.ndarray | None]
                   ) -> tuple[list[dict], list[np.ndarray | None]]:
    """Keep the newest record per song id among the accepted rows (``good_masks``; None: all) (on
    equal created_at the later one in the input); the others become ``duplicate_superseded`` rows.
    Returns those rows and, per table, the mask of rows to keep (None: keep all)."""
    if not goods:
        return [], []
    rows_of = [np.arange(t.num_rows) if m is None else np.flatnonzero(m) for (_, t), m in zip(goods, good_masks)]
    ids = pa.chunked_array([t["song_id"] if m is None else t["song_id"].filter(pa.array(m))
                            for (_, t), m in zip(goods, good_masks)]).combine_chunks()
    id_codes = pc.dictionary_encode(ids).indices.to_numpy()
    created_us = np.concatenate([t["created_at"].cast(pa.timestamp("us", "UTC")).cast(pa.int64()).to_numpy()[r]
                                 for (_, t), r in zip(goods, rows_of)])
    by_id = np.lexsort((np.arange(len(id_codes)), created_us, id_codes))
    codes_sorted = id_codes[by_id]
    is_last = np.ones(len(by_id), dtype=bool)
    is_last[:-1] = codes_sorted[1:] != codes_sorted[:-1]
    superseded = np.sort(by_id[~is_last])
    starts = np.cumsum([0] + [len(r) for r in rows_of])
    keep: list[np.ndarray | None] = list(good_masks)
    if not superseded.size:
        return [], keep
    winner_of = dict(zip(id_codes[by_id[is_last]].tolist(), by_id[is_last].tolist()))

    def located(row: int) -> tuple[str, dict]:
        k = int(np.searchsorted(starts, row, side="right")) - 1
        file, table = goods[k]
        return file, table.slice(int(rows_of[k][row - int(starts[k])]), 1).to_pylist()[0]

    rows = []
    for r in superseded.tolist():
        file, row = located(r)
        winner_file, winner = located(winner_of[int(id_codes[r])])
        fields = {c: row.get(c) for c in SONG_COLUMNS if c not in ("tags", "genre")}
        fields["created_at"] = row["created_at"].isoformat()
        fields["tags"], fields["genre"] = _TagVocabulary().lookup(row["tags_key"])
        rows.append({"source_file": file, "position": row["pos"], "song_id": row["song_id"],
                     "reason": "duplicate_superseded",
                     "detail": f"superseded by the record at {winner_file} position {winner['pos']} "
                               f"(created_at {winner['created_at'].isoformat()})",
                     "raw": json.dumps({c: fields[c] for c in SONG_COLUMNS}, ensure_ascii=False)})
    for k in range(len(goods)):
        inside = superseded[(superseded >= starts[k]) & (superseded < starts[k + 1])] - starts[k]
        if inside.size:
            mask = np.ones(goods[k][1].num_rows, dtype=bool) if keep[k] is None else keep[k].copy()
            mask[rows_of[k][inside]] = False
            keep[k] = mask
    return rows, keep


def _order_rejected(rejected: pd.DataFrame, files: list[str]) -> pd.DataFrame:
    """File order (as given), then position (a rejected file's row first)."""
    rank = {f: k for k, f in enumerate(files)}
    rejected = rejected.copy()
    rejected["position"] = rejected["position"].astype("Int64")
    return (rejected.assign(_rank=rejected["source_file"].map(rank).fillna(len(files)))
            .sort_values(["_rank", "position"], kind="stable", na_position="first").drop(columns="_rank")
            .reset_index(drop=True))


def write_songs(result: IngestResult, paths: DataPaths) -> dict:
    """Write ``processed/songs.parquet`` and ``processed/rejected_songs.parquet`` (each atomically).

    Returns ``{"songs": n, "rejected": n, "duplicates": n, "songs_file": path, "rejected_file": path}``.
    """
    songs_file = write_parquet_atomic(result.songs[SONG_COLUMNS], paths.processed_songs, schema=SONGS_SCHEMA)
    rejected_file = write_parquet_atomic(result.rejected[REJECTED_COLUMNS], paths.rejected_songs,
                                         schema=REJECTED_SCHEMA)
    return {"songs": len(result.songs), "rejected": len(result.rejected), "duplicates": result.duplicates,
            "songs_file": str(songs_file), "rejected_file": str(rejected_file)}


def partition_songs(songs_df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split songs by the UTC day of ``created_at``: ``{'YYYY-MM-DD': rows of that day}``, days sorted."""
    if songs_df.empty:
        return {}
    created = pd.to_datetime(songs_df["created_at"], utc=True)
    days = created.dt.strftime("%Y-%m-%d")
    return {str(day): part.reset_index(drop=True) for day, part in songs_df.groupby(days.to_numpy(), sort=True)}
