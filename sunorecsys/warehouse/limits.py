"""Resource limits of ``sunorecsys sql`` queries (kept free of DuckDB so the CLI's help is cheap)."""

from __future__ import annotations

import os
import re

DEFAULT_TIMEOUT_S = 300.0  # seconds a query may run (0 or None = no limit)
_MEMORY_CAP = 2 * 1024**3  # the default memory limit: 2 GiB, or a quarter of the RAM if that is less
_MIN_MEMORY = 256 * 1024**2
MAX_TEMP_SPILL = "10GiB"  # cap on DuckDB's spill files per query (DuckDB's default: 90% of the free disk)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)


def default_memory_limit() -> str:
    """DuckDB memory limit used when none is given: 2 GiB, or a quarter of the RAM if less
    (never below 256 MiB), as a DuckDB size string such as ``2048MiB``."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 4 * _MEMORY_CAP
    return f"{max(_MIN_MEMORY, min(_MEMORY_CAP, ram // 4)) // 1024**2}MiB"


def check_memory_limit(text: str) -> str:
    """``text`` if it is a positive size DuckDB accepts (``2GB``, ``1.5GiB``, ``500MB``); else ValueError."""
    match = _SIZE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"memory limit {text!r}: give a positive size such as 2GB, 1.5GiB or 500MB")
    return text.strip()
