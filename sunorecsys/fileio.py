"""File modes for atomic writers: a file made by ``mkstemp`` (0600) or a folder made by ``mkdtemp``
(0700) gets the mode an ordinary ``open()`` / ``mkdir()`` would have given it.

Why: every atomic writer here writes a temporary name and renames it into place. ``tempfile``
creates those private on purpose, so without this the store of record would be readable by its
owner only, whatever the umask says (an analyst's account could not read the warehouse Parquet
while ``warehouse.duckdb`` beside it is 0644). Call :func:`follow_umask` on the temporary path
before the rename.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (e.g. ``0o022``), read without changing it where the OS allows.

    Linux >= 4.7 reports it in ``/proc/self/status``; elsewhere it is read the only portable way
    (set and restore, under a lock so two threads of this module never interleave).
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike, *, directory: bool = False) -> None:
    """chmod ``path`` to ``0o666 & ~umask`` (a file) or ``0o777 & ~umask`` (a folder)."""
    base = 0o777 if directory else 0o666
    os.chmod(Path(path), base & ~current_umask())
