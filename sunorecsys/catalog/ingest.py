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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sunorecsys.catalog.genres import genre_of_tags, split_tags
from sunorecsys.catalog.jsonfiles import CATALOGUE_SUFFIXES, CatalogueFormatError, iter_catalogue_records
from sunorecsys.catalog.schema import REJECTED_SCHEMA, SONG_ID_PATTERN, SONGS_SCHEMA
from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import write_parquet_atomic

__all__ = ["CatalogueFormatError", "IngestResult", "find_catalogue_files", "partition_songs", "read_catalogue",
           "write_songs", "SONG_COLUMNS", "REJECTED_COLUMNS"]

SONG_COLUMNS = SONGS_SCHEMA.names
REJECTED_COLUMNS = REJECTED_SCHEMA.names
BATCH_SIZE = 50_000            # records normalised together (bounded memory for huge files)
NON_CATALOGUE_STEMS = ("interactions",)
COUNT_FIELDS = ("play_count", "upvote_count", "comment_count")


@dataclass
class IngestResult:
    """The outcome of reading catalogue files.

    ``songs``: one row per accepted song id (SONG_COLUMNS), sorted by ``created_at`` then ``song_id``.
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

    def add_batch(self, file: str, batch: list[tuple[int, object]]) -> None:
        # 1) records that are not objects, or whose id cannot be a file name
        kept: list[tuple[int, dict]] = []
        fullmatch = SONG_ID_PATTERN.fullmatch
        for position, record in batch:
            if not isinstance(record, dict):
                self.reject(file, position, None, "not_an_object",
                            f"a song record must be a JSON object, found {type(record).__name__}", record)
                continue
            song_id = record.get("id")
            if song_id is None or (isinstance(song_id, str) and not song_id.strip()):
                self.reject(file, position, None, "missing_id", "the record has no \"id\"", record)
                continue
            if not isinstance(song_id, str) or not fullmatch(song_id):
                self.reject(file, position, song_id, "unsafe_id",
                            "a song id may only hold A-Z, a-z, 0-9, '_' and '-' (1-128 characters); "
                            f"{str(song_id)[:80]!r} is not used as a file name", record)
                continue
            kept.append((position, record))
        if not kept:
            return
        records = [r for _, r in kept]
        metas = [m if isinstance(m := r.get("metadata"), dict) else {} for r in records]

        # 2) timestamps and durations, vectorised
        created_raw = [c if isinstance(c := r.get("created_at"), str) else None for r in records]
        created = pd.to_datetime(pd.Series(created_raw, dtype=object), format="ISO8601", utc=True,
                                 errors="coerce")
        duration_raw = [m.get("duration") for m in metas]
        duration = pd.to_numeric(pd.Series(duration_raw, dtype=object), errors="coerce").astype("float64")
        bad_created = created.isna().to_numpy()
        bad_duration = (duration.isna().to_numpy()
                        & np.array([d is not None and not (isinstance(d, float) and math.isnan(d))
                                    for d in duration_raw]))
        negative = (duration < 0).to_numpy()
        ok = ~(bad_created | bad_duration | negative)
        if not ok.all():
            for j in np.flatnonzero(~ok):
                position, record = kept[j]
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
            kept = [kept[j] for j in idx]
            records = [records[j] for j in idx]
            metas = [metas[j] for j in idx]
            created = created.iloc[idx].reset_index(drop=True)
            duration = duration.iloc[idx].reset_index(drop=True)
        if not records:
            return

        # 3) the remaining columns
        tag_genre = [self.tags(m.get("tags")) for m in metas]
        n = len(records)
        frame = pd.DataFrame({
            "song_id": [r["id"] for r in records],
            "title": [_str_or_none(r.get("title")) for r in records],
            "user_id": [_str_or_none(r.get("user_id")) for r in records],
            "handle": [_str_or_none(r.get("handle") or r.get("display_name")) for r in records],
            "created_at": created.dt.as_unit("us").to_numpy(),
            "duration_s": duration.to_numpy(),
            "model_version": [_str_or_none(r.get("major_model_version") or r.get("model_name")) for r in records],
            "tags": [tg[0] for tg in tag_genre],
            "genre": [tg[1] for tg in tag_genre],
            "prompt": [_str_or_none(m.get("prompt") or m.get("gpt_description_prompt")) for m in metas],
            "audio_url": [_str_or_none(r.get("audio_url")) for r in records],
            "audio_path": [_str_or_none(r.get("audio_path") or m.get("audio_path"))
                           for r, m in zip(records, metas)],
            **{name: np.fromiter((_count(r.get(name)) for r in records), dtype=np.int64, count=n)
               for name in COUNT_FIELDS},
            "is_public": pd.array([v if isinstance(v := r.get("is_public"), bool) else None for r in records],
                                  dtype="boolean"),
            "is_remix": np.fromiter((bool(m.get("history")) or bool(m.get("concat_history")) for m in metas),
                                    dtype=bool, count=n),
            "_file": file,
            "_position": np.fromiter((p for p, _ in kept), dtype=np.int64, count=n),
            "_order": np.arange(self.order, self.order + n, dtype=np.int64),
        })
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        self.order += n
        self.song_frames.append(frame)

    def finish(self) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        if self.song_frames:
            songs = pd.concat(self.song_frames, ignore_index=True)
        else:
            songs = _empty_songs().assign(_file=pd.Series(dtype=object), _position=pd.Series(dtype="int64"),
                                          _order=pd.Series(dtype="int64"))
        self.song_frames = []
        # Newest record per id wins; on equal created_at the later one in the input.
        songs = songs.sort_values(["song_id", "created_at", "_order"], kind="stable")
        superseded_mask = songs["song_id"].duplicated(keep="last").to_numpy()
        duplicates = int(superseded_mask.sum())
        if duplicates:
            kept_by_id = songs[~superseded_mask].set_index("song_id")
            for row in songs[superseded_mask].itertuples(index=False):
                winner = kept_by_id.loc[row.song_id]
                song_fields = {c: getattr(row, c) for c in SONG_COLUMNS}
                song_fields["created_at"] = row.created_at.isoformat()
                song_fields["tags"] = list(row.tags)
                song_fields["is_public"] = None if pd.isna(row.is_public) else bool(row.is_public)
                self.reject(row._file, int(row._position), row.song_id, "duplicate_superseded",
                            f"superseded by the record at {winner['_file']} position {int(winner['_position'])} "
                            f"(created_at {winner['created_at'].isoformat()})", song_fields)
            songs = songs[~superseded_mask]
        songs = songs.sort_values(["created_at", "song_id"], kind="stable").reset_index(drop=True)
        songs = songs[SONG_COLUMNS]
        rejected = pd.DataFrame(self.rejected, columns=REJECTED_COLUMNS)
        rejected["position"] = rejected["position"].astype("int64")
        return songs, rejected, duplicates


def _empty_songs() -> pd.DataFrame:
    return SONGS_SCHEMA.empty_table().to_pandas()


def read_catalogue(source: str | os.PathLike | list[str | os.PathLike]) -> IngestResult:
    """Read one catalogue file, a folder of them (see ``find_catalogue_files``), or a list of either.

    Returns the validated songs and the rejected records (never raises for a bad record).
    Raises ``CatalogueFormatError`` (naming the file and the line/column) for a malformed file and
    ``FileNotFoundError`` for a source that does not exist.
    """
    files = _expand_sources(source)
    normaliser = _Normaliser()
    n_records = 0
    for path in files:
        batch: list[tuple[int, object]] = []
        for item in iter_catalogue_records(path):
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                normaliser.add_batch(str(path), batch)
                n_records += len(batch)
                batch = []
        if batch:
            normaliser.add_batch(str(path), batch)
            n_records += len(batch)
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
