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

CATALOGUE_SUFFIXES = (".json", ".jsonl", ".ndjson")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
NON_CATALOGUE_STEMS = ("interactions",)
_BLANKS = b" \t\r\n"

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
