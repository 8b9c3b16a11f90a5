"""Suno catalogue files -> the validated songs table (SONGS_SCHEMA) and the rejected rows.

A raw record is a Suno clip object: ``id``, ``title``, ``user_id``, ``handle``/``display_name``,
``created_at`` (ISO 8601), ``audio_url``, ``model_name``/``major_model_version``, counts,
``is_public``, and a nested ``metadata`` with ``tags`` (comma-separated), ``prompt``,
``gpt_description_prompt``, ``duration`` (seconds), ``type``, ``history``/``concat_history``.
An optional extension field ``audio_path`` (top level or in ``metadata``) points at a local file.

Normalisation: tags are split, trimmed and lower-cased; ``genre`` is the first tag the genre
vocabulary knows (``sunorecsys.catalog.genres``), else ``other``; ``created_at`` becomes a UTC
timestamp; ``prompt`` is the lyrics prompt, or the description prompt when there are no lyrics;
``model_version`` is ``major_model_version``, else ``model_name``; ``is_remix`` is true when the
song has a (concat) history. Missing counts become 0 (Suno omits them on new clips): not a
rejection.

Rejections (one row each, in REJECTED_SCHEMA, reason codes): ``not_an_object``, ``missing_id``,
``unsafe_id`` (an id outside ``[A-Za-z0-9_-]``, e.g. ``../../etc/x``, never reaches a path),
``bad_timestamp`` (missing or unparsable ``created_at``), ``bad_duration`` (not a number),
``negative_duration``, and ``duplicate_superseded``: when an id repeats, the newest record (by
``created_at``; on a tie the later one in the input) is kept and every other one is rejected
with this reason (``raw`` then holds the superseded normalised row).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sunorecsys.catalog.genres import genre_of_tags, split_tags
from sunorecsys.catalog.jsonfiles import (
    CATALOGUE_SUFFIXES,
    CatalogueFormatError,
    is_json_list_file,
    iter_catalogue_batches,
)
from sunorecsys.catalog.schema import REJECTED_SCHEMA, SONG_ID_PATTERN, SONGS_SCHEMA
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
BATCH_SIZE = 50_000            # records normalised together (bounded memory for huge files)
NON_CATALOGUE_STEMS = ("interactions",)
COUNT_FIELDS = ("play_count", "upvote_count", "comment_count")


@dataclass
class IngestResult:
    """The outcome of reading catalogue files.

    ``songs``: one row per accepted song id (SONG_COLUMNS), in input order (files, then records).
    ``rejected``: one row per rejected record (REJECTED_COLUMNS) with a reason code.
    ``duplicates``: how many records were superseded by a newer record with the same id.
    ``files``: the files read, in order. ``records``: how many records they held.
    """
    songs: pd.DataFrame
    rejected: pd.DataFrame
    duplicates: int
    files: list[str]
    records: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) or "none"
        return (f"{self.records} records in {len(self.files)} file(s): {len(self.songs)} songs, "
                f"{len(self.rejected)} rejected ({reasons}), {self.duplicates} duplicates superseded")


def find_catalogue_files(raw_dir: str | os.PathLike) -> list[Path]:
    """Catalogue files (``*.json``, ``*.jsonl``, ``*.ndjson``) directly in ``raw_dir``, sorted by name.

    ``interactions.*`` (the listening log) and hidden/temporary files are not catalogue files.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        return []
    return sorted(p for p in raw_dir.iterdir()
                  if p.is_file() and p.suffix.lower() in CATALOGUE_SUFFIXES
                  and p.stem.lower() not in NON_CATALOGUE_STEMS and not p.name.startswith("."))


def _expand_sources(source: str | os.PathLike | list) -> list[Path]:
    items = source if isinstance(source, (list, tuple)) else [source]
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files.extend(find_catalogue_files(path))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"catalogue source not found: {path}")
    return files


def _str_or_none(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _count(value: object) -> int:
    """Counts are optional in Suno records: missing or unusable -> 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return max(value, 0)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    return max(int(number), 0) if math.isfinite(number) else 0


def parse_timestamps(values: list[object]) -> np.ndarray:
    """ISO 8601 strings -> datetime64[us] in UTC (NaT where missing or unparsable).

    Suno writes ``YYYY-MM-DDTHH:MM:SS.fffZ``; those go through numpy's C parser (about 100x faster
    than pandas' ISO8601 path); anything else (offsets, odd forms) goes through pandas.
    """
    out = np.full(len(values), np.datetime64("NaT", "us"))
    fast_idx: list[int] = []
    fast_text: list[str] = []
    slow_idx: list[int] = []
    for j, value in enumerate(values):
        if isinstance(value, str):
            if len(value) >= 20 and value[-1] == "Z" and value[10] == "T":
                fast_idx.append(j)
                fast_text.append(value[:-1])
            else:
                slow_idx.append(j)
    if fast_idx:
        try:
            out[fast_idx] = np.array(fast_text, dtype="datetime64[us]")
        except ValueError:  # one bad string spoils numpy's batch: let pandas sort them out
            slow_idx.extend(fast_idx)
    if slow_idx:
        parsed = pd.to_datetime(pd.Series([values[j] for j in slow_idx], dtype=object), format="ISO8601",
                                utc=True, errors="coerce")
        out[slow_idx] = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    return out


# Fields read for every record; fallbacks (display_name, model_name, ...) only where these are empty.
TOP_FIELDS = ("title", "user_id", "handle", "audio_url", "major_model_version", "is_public", *COUNT_FIELDS)
META_FIELDS = ("tags", "prompt", "history")


def _columns(records: list[dict], fields: tuple[str, ...]) -> dict[str, list]:
    """One list per field (None where missing): a list comprehension per field is the fastest
    pure-Python transpose measured here (itemgetter + zip was not faster)."""
    return {f: [r.get(f) for r in records] for f in fields}


def _strings(values) -> list[str | None]:
    return [v if type(v) is str or v is None else _str_or_none(v) for v in values]


def _raw_json(record: object) -> str:
    try:
        return json.dumps(record, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(record)


class _Normaliser:
    """Turns batches of raw records into song rows and rejected rows; caches tag parsing."""

    def __init__(self) -> None:
        self.song_frames: list[pd.DataFrame] = []
        self.rejected: list[dict] = []
        self._tag_cache: dict[object, tuple[list[str], str]] = {}
        self.order = 0  # input order across all files, for the duplicate tie-break

    def reject(self, file: str, position: int, song_id: object, reason: str, detail: str, record: object) -> None:
        self.rejected.append({"source_file": file, "position": position,
                              "song_id": None if song_id is None else str(song_id),
                              "reason": reason, "detail": detail, "raw": _raw_json(record)})

    def tags(self, raw_tags: object) -> tuple[list[str], str]:
        """(normalised tags, genre); cached per tag string, which repeats a lot in real catalogues.

        Rows with the same tag string share one list object: treat ``tags`` as read-only.
        """
        if not (raw_tags is None or isinstance(raw_tags, str)):
            tags = split_tags(raw_tags)
            return tags, genre_of_tags(tags)
        hit = self._tag_cache.get(raw_tags)
        if hit is None:
            tags = split_tags(raw_tags)
            hit = (tags, genre_of_tags(tags))
            if len(self._tag_cache) < 1_000_000:
                self._tag_cache[raw_tags] = hit
        return hit

    def _rejected_identity(self, file: str, position: int, record: object, fullmatch) -> bool:
        """Reject (and say so) a record that is not an object or whose id is missing/unsafe."""
        if not isinstance(record, dict):
            self.reject(file, position, None, "not_an_object",
                        f"a song record must be a JSON object, found {type(record).__name__}", record)
            return True
        song_id = record.get("id")
        if song_id is None or (isinstance(song_id, str) and not song_id.strip()):
            self.reject(file, position, None, "missing_id", "the record has no \"id\"", record)
            return True
        if not isinstance(song_id, str) or not fullmatch(song_id):
            self.reject(file, position, song_id, "unsafe_id",
                        "a song id may only hold A-Z, a-z, 0-9, '_' and '-' (1-128 characters); "
                        f"{str(song_id)[:80]!r} is not used as a file name", record)
            return True
        return False

    def add_batch(self, file: str, positions: Sequence[int], records: list) -> None:
        """Normalise one run of raw records (``positions``: where each sits in ``file``)."""
        # 1) records that are not objects, or whose id cannot be a file name. Fast path first:
        # in a healthy file every record is an object with a safe id.
        fullmatch = SONG_ID_PATTERN.fullmatch
        ids = [r.get("id") if type(r) is dict else None for r in records]
        valid = [type(i) is str and fullmatch(i) is not None for i in ids]
        if not all(valid):
            keep = [ok or not self._rejected_identity(file, p, r, fullmatch)
                    for ok, p, r in zip(valid, positions, records)]
            positions = [p for p, k in zip(positions, keep) if k]
            records = [r for r, k in zip(records, keep) if k]
            ids = [i for i, k in zip(ids, keep) if k]
        if not records:
            return
        metas = [m if type(m := r.get("metadata")) is dict else {} for r in records]

        # 2) timestamps and durations, vectorised
        created = parse_timestamps([r.get("created_at") for r in records])
        duration_raw = [m.get("duration") for m in metas]
        try:  # numbers, numeric strings and None (-> NaN) in one C pass
            duration = pd.Series(np.array(duration_raw, dtype=np.float64))
            bad_duration = np.zeros(len(duration_raw), dtype=bool)
        except (TypeError, ValueError):
            duration = pd.to_numeric(pd.Series(duration_raw, dtype=object), errors="coerce").astype("float64")
            bad_duration = (duration.isna().to_numpy()
                            & np.array([d is not None and not (isinstance(d, float) and math.isnan(d))
                                        for d in duration_raw]))
        bad_created = np.isnat(created)
        negative = (duration < 0).to_numpy()
        ok = ~(bad_created | bad_duration | negative)
        if not ok.all():
            for j in np.flatnonzero(~ok):
                position, record = positions[j], records[j]
                if bad_created[j]:
                    value = record.get("created_at")
                    reason, detail = "bad_timestamp", (f"created_at {value!r} is not an ISO 8601 timestamp"
                                                       if value is not None else "the record has no created_at")
                elif bad_duration[j]:
                    reason, detail = "bad_duration", f"metadata.duration {duration_raw[j]!r} is not a number"
                else:
                    reason, detail = "negative_duration", f"metadata.duration is {duration_raw[j]!r} seconds"
                self.reject(file, position, record.get("id"), reason, detail, record)
            idx = np.flatnonzero(ok)
            positions = [positions[j] for j in idx]
            ids = [ids[j] for j in idx]
            records = [records[j] for j in idx]
            metas = [metas[j] for j in idx]
            created = created[idx]
            duration = duration.iloc[idx].reset_index(drop=True)
        if not records:
            return

        # 3) the remaining columns
        n = len(records)
        top = _columns(records, TOP_FIELDS)
        meta = _columns(metas, META_FIELDS)
        tag_genre = [self.tags(t) for t in meta["tags"]]
        frame = pd.DataFrame({
            "song_id": ids,
            "title": _strings(top["title"]),
            "user_id": _strings(top["user_id"]),
            "handle": _strings([h or r.get("display_name") for h, r in zip(top["handle"], records)]),
            "created_at": pd.DatetimeIndex(created).tz_localize("UTC"),
            "duration_s": duration.to_numpy(),
            "model_version": _strings([v or r.get("model_name") for v, r in zip(top["major_model_version"], records)]),
            "tags": [tg[0] for tg in tag_genre],
            "genre": [tg[1] for tg in tag_genre],
            "prompt": _strings([p or m.get("gpt_description_prompt") for p, m in zip(meta["prompt"], metas)]),
            "audio_url": _strings(top["audio_url"]),
            "audio_path": _strings([r.get("audio_path") for r in records]),
            **{name: np.array([v if type(v) is int and v >= 0 else _count(v)
                               for v in top[name]], dtype=np.int64)
               for name in COUNT_FIELDS},
            "is_public": pd.array([v if type(v) is bool else None for v in top["is_public"]], dtype="boolean"),
            "is_remix": np.array([bool(h) or bool(m.get("concat_history")) for h, m in zip(meta["history"], metas)],
                                 dtype=bool),
            "src_file": file,
            "src_position": np.array(positions, dtype=np.int64),
            "src_order": np.arange(self.order, self.order + n, dtype=np.int64),
        })
        self.order += n
        self.song_frames.append(frame)

    def finish(self) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        frames = self.song_frames or [_empty_songs().assign(
            src_file=pd.Series(dtype=object), src_position=pd.Series(dtype="int64"),
            src_order=pd.Series(dtype="int64"))]
        self.song_frames = []
        # Newest record per id wins; on equal created_at the later one in the input. Decided on
        # three key columns only; then only the batches holding a superseded row are filtered
        # (one at a time), so the big string columns are never copied as a whole.
        starts = np.cumsum([0] + [len(f) for f in frames])
        id_codes, _ = pd.factorize(pd.concat([f["song_id"] for f in frames], ignore_index=True))
        created_us = np.concatenate([f["created_at"].dt.tz_convert(None).to_numpy("datetime64[us]")
                                     for f in frames]).view(np.int64)
        order = np.concatenate([f["src_order"].to_numpy() for f in frames])
        by_id = np.lexsort((order, created_us, id_codes))
        codes_sorted = id_codes[by_id]
        is_last = np.ones(len(by_id), dtype=bool)
        if len(by_id):
            is_last[:-1] = codes_sorted[1:] != codes_sorted[:-1]
        superseded_rows = np.sort(by_id[~is_last])
        duplicates = int(superseded_rows.size)

        def row_at(global_row: int) -> pd.Series:
            k = int(np.searchsorted(starts, global_row, side="right")) - 1
            return frames[k].iloc[global_row - starts[k]]

        if duplicates:
            winner_of = dict(zip(id_codes[by_id[is_last]], by_id[is_last]))
            for r in superseded_rows:
                row = row_at(int(r))
                winner = row_at(int(winner_of[id_codes[r]]))
                song_fields = {c: row[c] for c in SONG_COLUMNS}
                song_fields["created_at"] = row["created_at"].isoformat()
                song_fields["tags"] = list(row["tags"])
                song_fields["is_public"] = None if pd.isna(row["is_public"]) else bool(row["is_public"])
                song_fields["is_remix"] = bool(row["is_remix"])
                for name in COUNT_FIELDS:
                    song_fields[name] = int(row[name])
                self.reject(row["src_file"], int(row["src_position"]), row["song_id"], "duplicate_superseded",
                            f"superseded by the record at {winner['src_file']} position "
                            f"{int(winner['src_position'])} (created_at {winner['created_at'].isoformat()})",
                            song_fields)
            frame_of = np.searchsorted(starts, superseded_rows, side="right") - 1
            for k in np.unique(frame_of):
                keep = np.ones(len(frames[k]), dtype=bool)
                keep[superseded_rows[frame_of == k] - starts[k]] = False
                frames[k] = frames[k][keep]
        songs = pd.concat([f[SONG_COLUMNS] for f in frames], ignore_index=True)
        songs = songs[SONG_COLUMNS]
        rejected = pd.DataFrame(self.rejected, columns=REJECTED_COLUMNS)
        rejected["position"] = rejected["position"].astype("int64")
        # File order (as read), then position: the same order however the records were batched.
        file_rank = {f: k for k, f in enumerate(dict.fromkeys(rejected["source_file"]))}
        rejected = (rejected.assign(_rank=rejected["source_file"].map(file_rank))
                    .sort_values(["_rank", "position"], kind="stable").drop(columns="_rank")
                    .reset_index(drop=True))
        return songs, rejected, duplicates


def _empty_songs() -> pd.DataFrame:
    return SONGS_SCHEMA.empty_table().to_pandas()


def read_catalogue(source: str | os.PathLike | list[str | os.PathLike], workers: int | None = None) -> IngestResult:
    """Read one catalogue file, a folder of them (see ``find_catalogue_files``), or a list of either.

    Returns the validated songs and the rejected records (never raises for a bad record).
    Raises ``CatalogueFormatError`` (naming the file and the line/column) for a malformed file and
    ``FileNotFoundError`` for a source that does not exist. List-shaped files of 64 MB or more are
    parsed by ``workers`` processes (default: up to 2); the result is the same either way.
    """
    from sunorecsys.catalog.parallel_ingest import PARALLEL_MIN_BYTES, read_list_file_parallel

    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    files = _expand_sources(source)
    normaliser = _Normaliser()
    n_records = 0
    for path in files:
        if workers > 1 and path.stat().st_size >= PARALLEL_MIN_BYTES and is_json_list_file(path):
            count = read_list_file_parallel(path, normaliser, workers)
            if count is not None:
                n_records += count
                continue
        for positions, records in iter_catalogue_batches(path, BATCH_SIZE):
            normaliser.add_batch(str(path), positions, records)
            n_records += len(records)
    songs, rejected, duplicates = normaliser.finish()
    reasons = rejected["reason"].value_counts().to_dict() if len(rejected) else {}
    return IngestResult(songs=songs, rejected=rejected, duplicates=duplicates, files=[str(f) for f in files],
                        records=n_records, reasons={str(k): int(v) for k, v in reasons.items()})


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
