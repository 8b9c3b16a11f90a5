"""The per-song score cache (the guide's layout: ``<cache_dir>/<song_id>.json``) and the audio-hash memo.

A cache file holds the guide's five dimensions at the top level, plus ``overall_quality_score``,
``status``, ``scorer_version``, ``audio_sha256``, ``missing_dimensions``, the descriptive fields and
the raw reply. It is trusted only when the scorer version AND the audio hash match and every value
is well typed and in range; anything else is rescored. Only ``ok``/``partial`` results are cached.

Deciding hits needs the audio's sha256, which needs only the file's bytes. Hashing 10,000 long
files on every rerun would dominate a cached run, so :class:`AudioHashMemo` remembers
``(path, size, mtime_ns) -> sha256`` in ``<cache_dir>/.audio_sha256_memo`` (a name no song id can
take: ids never contain a dot).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sunorecsys.catalog.schema import is_safe_song_id
from sunorecsys.fileio import follow_umask
from sunorecsys.quality.base import ScoreResult
from sunorecsys.quality.dimensions import DESCRIPTIVE_FIELDS, DIMENSIONS

HASH_MEMO_NAME = ".audio_sha256_memo"  # JSON inside; no .json suffix so *.json globs see only songs
_META_FIELDS = ("model_id", "prompt_version")


class UnsafeSongId(ValueError):
    """A song id that must not become a file name (only ``[A-Za-z0-9_-]`` may)."""


def cache_path(cache_dir: str | os.PathLike, song_id: object) -> Path:
    """``<cache_dir>/<song_id>.json``; UnsafeSongId for ids that could escape the directory."""
    if not is_safe_song_id(song_id):
        raise UnsafeSongId(f"unsafe song_id {song_id!r}: only [A-Za-z0-9_-] may become a cache file name")
    return Path(cache_dir) / f"{song_id}.json"


def write_json_atomic(data: Any, path: Path) -> None:
    """Temporary file in the same directory, then ``os.replace``: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2, allow_nan=False)
        follow_umask(tmp)  # mkstemp's 0600 -> the umask's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_entry(result: ScoreResult) -> dict[str, Any]:
    """The JSON a successful result is cached as (the guide's content plus provenance)."""
    entry: dict[str, Any] = {d: result.scores[d] for d in DIMENSIONS if d in result.scores}
    entry["overall_quality_score"] = result.overall_quality_score
    entry["status"] = result.status
    entry["missing_dimensions"] = [d for d in DIMENSIONS if d not in result.scores]
    for name in DESCRIPTIVE_FIELDS:
        if result.fields.get(name) is not None:
            entry[name] = result.fields[name]
    for name in _META_FIELDS:
        if result.fields.get(name) is not None:
            entry[name] = result.fields[name]
    entry.update(song_id=result.song_id, scorer_version=result.scorer_version,
                 audio_sha256=result.audio_sha256, raw_response=result.raw_response)
    return entry


def write_cached(cache_dir: str | os.PathLike, result: ScoreResult) -> Path:
    """Cache one ok/partial result atomically; ValueError for a failed one (failures are never cached)."""
    if not result.succeeded:
        raise ValueError(f"refusing to cache a {result.status} result for {result.song_id}: failures are not scores")
    path = cache_path(cache_dir, result.song_id)
    write_json_atomic(cache_entry(result), path)
    return path


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def result_from_entry(song_id: str, entry: Any, scorer_version: str, audio_sha256: str) -> tuple[ScoreResult | None, str]:
    """Validate a cache entry: (result, '') on a hit, else (None, why it is not trusted)."""
    if not isinstance(entry, Mapping):
        return None, "not a JSON object"
    if entry.get("scorer_version") != scorer_version:
        return None, "stale scorer version"
    if entry.get("audio_sha256") != audio_sha256:
        return None, "audio changed"
    status = entry.get("status")
    if status not in ("ok", "partial"):
        return None, f"bad status {status!r}"
    scores: dict[str, float] = {}
    for dim in DIMENSIONS:
        if dim in entry and entry[dim] is not None:
            value = _score(entry[dim])
            if value is None:
                return None, f"{dim} not a number in [0, 1]"
            scores[dim] = value
    if not scores or (status == "ok" and len(scores) != len(DIMENSIONS)):
        return None, "dimensions inconsistent with status"
    overall = _score(entry.get("overall_quality_score"))
    if overall is None:
        return None, "overall_quality_score not a number in [0, 1]"
    fields: dict[str, Any] = {n: entry[n] for n in (*DESCRIPTIVE_FIELDS, *_META_FIELDS)
                              if isinstance(entry.get(n), str)}
    fields["missing_dimensions"] = [d for d in DIMENSIONS if d not in scores]
    raw = entry.get("raw_response")
    return ScoreResult(song_id=song_id, status=status, scores=scores, overall_quality_score=overall,
                       fields=fields, raw_response=raw if isinstance(raw, str) else None,
                       error=None if status == "ok" else "missing dimensions: " + ", ".join(fields["missing_dimensions"]),
                       scorer_version=scorer_version, audio_sha256=audio_sha256, cached=True), ""


def read_cached(cache_dir: str | os.PathLike, song_id: str, scorer_version: str,
                audio_sha256: str) -> tuple[ScoreResult | None, str]:
    """(result, '') when a trustworthy entry exists for this version and audio, else (None, reason)."""
    path = cache_path(cache_dir, song_id)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "absent"
    except OSError as exc:
        return None, f"unreadable: {exc}"
    try:
        entry = json.loads(text)
    except ValueError:
        return None, "corrupt JSON"
    return result_from_entry(song_id, entry, scorer_version, audio_sha256)


class AudioHashMemo:
    """``sha256`` of audio files, remembered by ``(resolved path, size, mtime_ns)``.

    A file whose size or modification time changed is hashed again. The memo is a cache of a pure
    function of the file's bytes, so losing it costs only time.
    """

    def __init__(self, cache_dir: str | os.PathLike | None) -> None:
        self.path = Path(cache_dir) / HASH_MEMO_NAME if cache_dir is not None else None
        self._entries: dict[str, list] = {}
        self._dirty = False
        self.hashed = 0  # files actually read in this process
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(data, dict):
                    self._entries = {k: v for k, v in data.items()
                                     if isinstance(v, list) and len(v) == 3 and isinstance(v[2], str)}
            except ValueError:
                self._entries = {}

    def sha256(self, path: str | os.PathLike) -> str:
        from sunorecsys.audio import file_sha256

        path = Path(path)
        stat = path.stat()
        key = str(path.resolve())
        known = self._entries.get(key)
        if known is not None and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            return known[2]
        digest = file_sha256(path)
        self.hashed += 1
        self._entries[key] = [stat.st_size, stat.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        if self.path is not None and self._dirty:
            write_json_atomic(self._entries, self.path)
            self._dirty = False


def write_row_cached(cache_dir: str | os.PathLike, song_id: object, row: Mapping[str, Any]) -> Path:
    """Cache one finished signal-check row (``<cache_dir>/<song_id>.json``, atomic).

    The row must carry ``checks_version`` and ``audio_sha256``: together they are its key.
    Non-finite floats are stored as null (JSON has no NaN).
    """
    if not row.get("checks_version") or not row.get("audio_sha256"):
        raise ValueError(f"refusing to cache a row without checks_version and audio_sha256 for {song_id}")
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    path = cache_path(cache_dir, song_id)
    write_json_atomic(clean, path)
    return path


def read_row_cached(cache_dir: str | os.PathLike, song_id: str, checks_version: str,
                    audio_sha256: str) -> dict[str, Any] | None:
    """The cached row when it exists for this checks version and these audio bytes, else None."""
    try:
        entry = json.loads(cache_path(cache_dir, song_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(entry, dict) or entry.get("checks_version") != checks_version
            or entry.get("audio_sha256") != audio_sha256 or entry.get("song_id") != song_id):
        return None
    return entry
