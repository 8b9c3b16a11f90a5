"""Catalogue files on disk: which entries of ``raw/`` are catalogue files, and whether one can be
read at all (a regular, readable, UTF-8 file that starts like JSON) before any parser sees it.

A file that cannot be a catalogue (a FIFO, a directory named ``*.json``, a symlink loop, a
UTF-16 file, a JSON scalar, ...) raises :class:`BadCatalogueFile` naming why; ingest records it as
one rejected file and goes on with the others. Nothing here blocks: a FIFO is never opened for
reading without ``O_NONBLOCK`` and is refused by its type first.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

CATALOGUE_SUFFIXES = (".json", ".jsonl", ".ndjson")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
NON_CATALOGUE_STEMS = ("interactions",)
_BLANKS = b" \t\r\n"
_SCAN_BYTES = 16 << 20

# Byte-order marks, longest first (UTF-32 LE starts like UTF-16 LE).
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32 LE"), (codecs.BOM_UTF32_BE, "UTF-32 BE"),
         (codecs.BOM_UTF16_LE, "UTF-16 LE"), (codecs.BOM_UTF16_BE, "UTF-16 BE"))


class CatalogueFormatError(ValueError):
    """A catalogue file is not valid JSON / JSON Lines, or not one of the accepted shapes.

    ``read_catalogue`` no longer raises it (a bad file is a rejected file); kept for callers that
    catch it and for tools that want to raise a located format error.
    """

    def __init__(self, file: str | os.PathLike, message: str, line: int | None = None, column: int | None = None):
        self.file = str(file)
        self.line = line
        self.column = column
        self.message = message
        where = self.file
        if line is not None:
            where += f", line {line}"
            if column is not None:
                where += f", column {column}"
        super().__init__(f"{where}: {message}")


class BadCatalogueFile(Exception):
    """A whole file cannot be read as a catalogue; ``detail`` says why (for the rejected table)."""

    def __init__(self, path: str | os.PathLike, detail: str):
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{path}: {detail}")


@dataclass(frozen=True)
class CatalogueFile:
    """A catalogue file that passed the checks. ``shape``: ``array`` (a JSON list), ``lines``
    (JSON Lines) or ``object`` (``{"songs": [...]}``, one record, or JSON Lines in a ``.json``)."""
    path: Path
    shape: str
    size: int


def is_catalogue_name(path: Path) -> bool:
    return (path.suffix.lower() in CATALOGUE_SUFFIXES and path.stem.lower() not in NON_CATALOGUE_STEMS
            and not path.name.startswith("."))


def find_catalogue_files(raw_dir: str | os.PathLike) -> list[Path]:
    """Catalogue entries (``*.json``, ``*.jsonl``, ``*.ndjson``) directly in ``raw_dir``, sorted by name.

    ``interactions.*`` (the listening log) and hidden/temporary files are not catalogue files.
    Every other entry with such a name is listed whatever it is (a FIFO, a directory, a broken
    symlink), so that ``read_catalogue`` reports it as a rejected file instead of skipping it.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        return []
    return sorted(p for p in raw_dir.iterdir() if is_catalogue_name(p))


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop (too many levels of symbolic links)"
    if exc.errno == errno.ENOENT:
        return "does not exist (a broken symlink, or removed while reading)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"cannot be read: {exc.strerror or exc}"


def open_catalogue_file(path: str | os.PathLike) -> BinaryIO:
    """Open a regular file for reading in binary, or raise BadCatalogueFile (never blocks on a FIFO)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise BadCatalogueFile(path, f"is {_kind_of(st.st_mode)}, not a catalogue file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise BadCatalogueFile(path, _os_problem(exc)) from None
    try:
        st = os.fstat(fd)  # the entry may have been swapped between stat and open
        if not stat.S_ISREG(st.st_mode):
            raise BadCatalogueFile(path, f"is {_kind_of(st.st_mode)}, not a catalogue file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _encoding_problem(head: bytes) -> str | None:
    """A name for a non-UTF-8 encoding recognisable from the first bytes (RFC 4627 section 3)."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return f"is encoded as {name} (byte-order mark {bom.hex(' ').upper()}); catalogue files must be UTF-8"
    b = head[:4]
    if len(b) >= 4 and b[0] == 0 and b[1] == 0 and b[2] == 0 and b[3]:
        return "looks like UTF-32 BE (no byte-order mark; NUL bytes 00 00 00 xx); catalogue files must be UTF-8"
    if len(b) >= 4 and b[0] and b[1] == 0 and b[2] == 0 and b[3] == 0:
        return "looks like UTF-32 LE (no byte-order mark; NUL bytes xx 00 00 00); catalogue files must be UTF-8"
    if len(b) >= 2 and b[0] == 0 and b[1]:
        return "looks like UTF-16 BE (no byte-order mark; NUL bytes 00 xx); catalogue files must be UTF-8"
    if len(b) >= 2 and b[0] and b[1] == 0:
        return "looks like UTF-16 LE (no byte-order mark; NUL bytes xx 00); catalogue files must be UTF-8"
    return None


def inspect_catalogue_file(path: str | os.PathLike) -> CatalogueFile:
    """Check that ``path`` can be a catalogue file and tell its shape; BadCatalogueFile otherwise."""
    path = Path(path)
    with open_catalogue_file(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            head = fh.read(65536)
            problem = _encoding_problem(head)
            if problem:
                raise BadCatalogueFile(path, problem)
            head = head.removeprefix(codecs.BOM_UTF8)
            first = head.lstrip(_BLANKS)[:1]
            while not first:
                block = fh.read(1 << 20)
                if not block:
                    raise BadCatalogueFile(path, "is empty (0 bytes)" if size == 0 else
                                           f"holds only blanks ({size} bytes): no records")
                first = block.lstrip(_BLANKS)[:1]
        except OSError as exc:
            raise BadCatalogueFile(path, _os_problem(exc)) from None
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return CatalogueFile(path, "lines", size)
    if first == b"[":
        return CatalogueFile(path, "array", size)
    if first == b"{":
        return CatalogueFile(path, "object", size)
    shown = first.decode("latin-1")
    what = "a JSON scalar" if shown in '"-0123456789tfn' else "not JSON"
    raise BadCatalogueFile(path, f"is {what} (starts with {shown!r}): expected a JSON list of songs, "
                                 "{\"songs\": [...]} or JSON Lines")


def max_nesting(path: str | os.PathLike) -> int:
    """The deepest nesting of brackets outside strings in a JSON (Lines) file, without parsing it.

    One vectorised pass over the bytes (UTF-8 never puts ASCII bytes inside a multi-byte
    character): quotes not escaped by an odd run of backslashes toggle "inside a string", and
    ``[``/``{`` (``]``/``}``) outside strings go one level down (up). A malformed file gives a
    meaningless number, which is fine: its fate is decided by the parsers; this only tells a
    well-formed file that is nested deeper than ``record_rules.MAX_DEPTH`` from one that is not.
    """
    best = depth = in_string = backslashes_before = 0
    with open_catalogue_file(path) as fh:
        while chunk := fh.read(_SCAN_BYTES):
            data = np.frombuffer(chunk, np.uint8)
            quotes = np.flatnonzero(data == 0x22)
            if len(quotes):
                quotes = _unescaped(chunk, data, quotes, backslashes_before)
            folded = data | 0x20  # '[' -> '{', ']' -> '}'
            opens, closes = np.flatnonzero(folded == 0x7B), np.flatnonzero(folded == 0x7D)
            if len(opens) or len(closes):
                at = np.concatenate([opens, closes])
                step = np.concatenate([np.ones(len(opens), np.int64), np.full(len(closes), -1, np.int64)])
                order = np.argsort(at, kind="stable")
                outside = ((np.searchsorted(quotes, at[order]) + in_string) & 1) == 0
                steps = step[order][outside]
                if len(steps):
                    levels = np.cumsum(steps) + depth
                    best, depth = max(best, int(levels.max())), int(levels[-1])
            in_string = (in_string + len(quotes)) & 1
            kept = chunk.rstrip(b"\\")
            run = len(chunk) - len(kept)
            backslashes_before = run if kept else backslashes_before + run
    return best


def _unescaped(chunk: bytes, data: np.ndarray, quotes: np.ndarray, backslashes_before: int) -> np.ndarray:
    """The quotes that are not escaped (preceded by an odd run of backslashes)."""
    previous = np.where(quotes > 0, data[np.maximum(quotes - 1, 0)] == 0x5C, backslashes_before > 0)
    suspects = np.flatnonzero(previous)
    if not len(suspects):
        return quotes
    keep = np.ones(len(quotes), dtype=bool)
    for k in suspects:  # rare: a quote right after a backslash
        q = int(quotes[k])
        start = len(chunk[:q].rstrip(b"\\"))
        run = q - start + (backslashes_before if start == 0 else 0)
        keep[k] = run % 2 == 0
    return quotes[keep]
