"""Reading Suno catalogue files record by record, without holding a whole catalogue as objects.

Three shapes are accepted: a JSON list of records, ``{"songs": [...]}`` (or a single record
object), and JSON Lines (``.jsonl``/``.ndjson``, or a ``.json`` file that turns out to hold one
object per line). A list is parsed one element at a time from a sliding text buffer, so a
million-song file costs its text chunk plus the current batch, not a million dicts at once.

Any malformed file raises ``CatalogueFormatError`` naming the file and the position (line and
column; line for JSON Lines). Records are yielded with their position: the 0-based index in a
list, or the 1-based line number in JSON Lines.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

CATALOGUE_SUFFIXES = (".json", ".jsonl", ".ndjson")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
CHUNK_CHARS = 8 << 20          # text read per refill of the list parser
WHOLE_FILE_LIMIT = 256 << 20   # an object-shaped .json file is parsed whole only below this size
_WS = " \t\n\r"
_WS_RUN = re.compile(r"[ \t\n\r]*")


class CatalogueFormatError(ValueError):
    """A catalogue file is not valid JSON / JSON Lines, or not one of the accepted shapes."""

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


def iter_catalogue_records(path: str | os.PathLike) -> Iterator[tuple[int, object]]:
    """Yield ``(position, record)`` for every element of one catalogue file, in file order."""
    path = Path(path)
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        yield from _iter_json_lines(path)
        return
    first = _first_char(path)
    if first is None:
        raise CatalogueFormatError(path, "empty file: expected a JSON list of songs, {\"songs\": [...]} or JSON Lines",
                                   line=1, column=1)
    if first == "[":
        yield from _iter_json_list(path)
    elif first == "{":
        yield from _iter_json_object_file(path)
    else:
        raise CatalogueFormatError(path, f"expected a JSON list or object, found {first!r}", line=1, column=1)


def _first_char(path: Path) -> str | None:
    with path.open("r", encoding="utf-8-sig", errors="replace") as fh:
        while True:
            block = fh.read(4096)
            if not block:
                return None
            stripped = block.lstrip(_WS)
            if stripped:
                return stripped[0]


def _iter_json_lines(path: Path) -> Iterator[tuple[int, object]]:
    loads = json.loads
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            if not raw.strip():
                continue
            try:
                yield line_no, loads(raw)
            except UnicodeDecodeError as exc:
                raise CatalogueFormatError(path, f"not UTF-8 text ({exc.reason})", line=line_no) from None
            except json.JSONDecodeError as exc:
                raise CatalogueFormatError(path, f"invalid JSON Lines record: {exc.msg} (column {exc.colno})",
                                           line=line_no) from None


def _iter_json_object_file(path: Path) -> Iterator[tuple[int, object]]:
    """``{"songs": [...]}``, a single record, or JSON Lines in a ``.json`` file."""
    if path.stat().st_size > WHOLE_FILE_LIMIT:
        # Large object-shaped files are JSON Lines in practice; parse line by line.
        yield from _iter_json_lines(path)
        return
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object, then more: JSON Lines with a .json name
            yield from _iter_json_lines(path)
            return
        raise CatalogueFormatError(path, f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    if "songs" in doc:
        songs = doc["songs"]
        if not isinstance(songs, list):
            raise CatalogueFormatError(path, f"\"songs\" must be a list, found {type(songs).__name__}")
        yield from enumerate(songs)
    elif "id" in doc or "metadata" in doc:
        yield 0, doc  # a single clip record (e.g. one curl'd song)
    else:
        raise CatalogueFormatError(path, "a JSON object must hold a \"songs\" list (or be one song record)")


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueFormatError(path, f"not UTF-8 text at byte {exc.start} ({exc.reason})") from None


def _iter_json_list(path: Path) -> Iterator[tuple[int, object]]:
    """Stream the elements of a top-level JSON list with ``raw_decode`` over a sliding buffer."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with path.open("rb") as fh:
        buf = ""
        pos = 0
        lines_before = 0   # newlines in text already dropped from the buffer
        line_prefix = 0    # characters of the current line already dropped from the buffer
        bytes_read = 0
        eof = False

        def refill() -> None:
            nonlocal buf, pos, lines_before, line_prefix, bytes_read, eof
            dropped_newlines = buf.count("\n", 0, pos)
            lines_before += dropped_newlines
            line_prefix = pos - buf.rfind("\n", 0, pos) - 1 if dropped_newlines else line_prefix + pos
            chunk = fh.read(CHUNK_CHARS)
            eof = not chunk
            try:
                text = text_decoder.decode(chunk, final=eof)
            except UnicodeDecodeError as exc:
                raise CatalogueFormatError(path, f"not UTF-8 text at byte {bytes_read + exc.start} ({exc.reason})",
                                           line=lines_before + buf.count("\n", pos) + 1) from None
            bytes_read += len(chunk)
            buf = buf[pos:] + text
            pos = 0

        def fail(message: str, at: int) -> CatalogueFormatError:
            newlines = buf.count("\n", 0, at)
            line = lines_before + newlines + 1
            column = at - buf.rfind("\n", 0, at) if newlines else line_prefix + at + 1
            return CatalogueFormatError(path, message, line=line, column=column)

        def skip_ws() -> None:
            nonlocal pos
            while True:
                pos = _WS_RUN.match(buf, pos).end()
                if pos < len(buf) or eof:
                    return
                refill()

        refill()
        skip_ws()
        pos += 1  # the '[' (checked by the caller)
        index = 0
        skip_ws()
        if pos < len(buf) and buf[pos] == "]":
            pos += 1
        else:
            while True:
                skip_ws()
                if pos >= len(buf):
                    raise fail("unexpected end of file inside the list", pos)
                while True:
                    try:
                        value, end = decoder.raw_decode(buf, pos)
                    except json.JSONDecodeError as exc:
                        if eof:
                            raise fail(f"invalid JSON: {exc.msg}", exc.pos) from None
                        refill()
                        continue
                    if end >= len(buf) and not eof:
                        refill()  # a number or literal may continue in the next chunk
                        continue
                    break
                pos = end
                yield index, value
                index += 1
                skip_ws()
                if pos >= len(buf):
                    raise fail("unexpected end of file: the list is not closed with ']'", pos)
                if buf[pos] == ",":
                    pos += 1
                    continue
                if buf[pos] == "]":
                    pos += 1
                    break
                raise fail(f"expected ',' or ']' after list element {index - 1}, found {buf[pos]!r}", pos)
        skip_ws()
        if pos < len(buf):
            raise fail("extra data after the list", pos)
