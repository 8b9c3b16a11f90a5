"""The guide's scores file: ``{song_id: {"song_id", "title", "scores": {...}}}``.

``scores`` holds the five dimensions when a model produced them and always
``overall_quality_score`` in [0, 1]. Extra keys (``sources``, ``scorer_version``) are allowed
and ignored by readers that do not know them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sunorecsys.fileio import follow_umask


def load_scores(path: str | os.PathLike) -> dict[str, float]:
    """``{song_id: overall_quality_score}`` from a guide-format file (entries without a score skipped).

    Raises ``FileNotFoundError`` / ``ValueError`` with the path when the file is missing or malformed.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"quality scores file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object keyed by song_id, got {type(data).__name__}")  # noqa: TRY004 (bad file content, not a bad argument)
    out: dict[str, float] = {}
    for song_id, entry in data.items():
        if not isinstance(entry, Mapping):
            continue
        scores = entry.get("scores", entry)
        value = scores.get("overall_quality_score") if isinstance(scores, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(song_id)] = float(value)
    return out


def write_scores_file(entries: Mapping[str, Mapping], path: str | os.PathLike) -> Path:
    """Write guide-format entries atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entries, fh, ensure_ascii=False, indent=2)
        follow_umask(tmp)  # mkstemp's 0600 -> the umask's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
