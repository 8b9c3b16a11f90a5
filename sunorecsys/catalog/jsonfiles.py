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
from collections.abc import Iterator, Sequence
from itertools import islice
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


class _ListReader:
    """A top-level JSON list, read element by element from a sliding text buffer.

    Fast path: cut the buffer at the last ``}`` ``,`` ``{`` in it (how one record ends and the next
    begins) and parse everything before the cut with one ``json.loads("[" + text + "]")``. If that
    parses, the cut was a top-level element boundary (a cut inside a string or a nested value
    leaves the text unbalanced, which never parses), and one call shares the key memo across
    thousands of records (``raw_decode`` per record re-creates every key string: slower and
    bigger). A cut that does not parse is retried a little earlier, then elements are parsed one
    by one with ``raw_decode``, which also places errors exactly.
    """

    _CUT = re.compile(r"\}[ \t\n\r]*,(?=[ \t\n\r]*\{)")
    _TRIES = 3

    def __init__(self, path: Path, fh) -> None:
        self.path = path
        self.fh = fh
        self.decoder = json.JSONDecoder()
        self.text_decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.lines_before = 0   # newlines in text already dropped from the buffer
        self.line_prefix = 0    # characters of the current line already dropped from the buffer
        self.bytes_read = 0
        self.eof = False
        self.index = 0

    def refill(self) -> None:
        buf, pos = self.buf, self.pos
        dropped_newlines = buf.count("\n", 0, pos)
        self.lines_before += dropped_newlines
        self.line_prefix = pos - buf.rfind("\n", 0, pos) - 1 if dropped_newlines else self.line_prefix + pos
        chunk = self.fh.read(CHUNK_CHARS)
        self.eof = not chunk
        try:
            text = self.text_decoder.decode(chunk, final=self.eof)
        except UnicodeDecodeError as exc:
            raise CatalogueFormatError(self.path, f"not UTF-8 text at byte {self.bytes_read + exc.start} "
                                                  f"({exc.reason})", line=self.lines_before + buf.count("\n", pos) + 1
                                       ) from None
        self.bytes_read += len(chunk)
        self.buf = buf[pos:] + text
        self.pos = 0

    def fail(self, message: str, at: int) -> CatalogueFormatError:
        buf = self.buf
        newlines = buf.count("\n", 0, at)
        line = self.lines_before + newlines + 1
        column = at - buf.rfind("\n", 0, at) if newlines else self.line_prefix + at + 1
        return CatalogueFormatError(self.path, message, line=line, column=column)

    def skip_ws(self) -> None:
        while True:
            self.pos = _WS_RUN.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return
            self.refill()

    def value_runs(self) -> Iterator[list]:
        """The list's elements in order, as runs (lists) of consecutive elements."""
        self.refill()
        self.skip_ws()
        self.pos += 1  # the '[' (checked by the caller)
        self.skip_ws()
        if self.pos < len(self.buf) and self.buf[self.pos] == "]":
            self.pos += 1
        else:
            while True:
                fast = self._fast_batch()
                if fast is not None:
                    values, done = fast
                    self.index += len(values)
                    yield values
                    if done:
                        break
                    continue
                # slow path: elements one by one up to where the fast path wanted to cut
                limit = self._last_cut()
                limit = len(self.buf) if limit is None else limit[1]
                run = []
                while True:
                    value, closed = self._one_element()
                    run.append(value)
                    self.index += 1
                    if closed or self.pos >= limit:
                        break
                yield run
                if closed:
                    break
        self.skip_ws()
        if self.pos < len(self.buf):
            raise self.fail("extra data after the list", self.pos)

    def text_pieces(self) -> Iterator[tuple[str, bool]]:
        """The list's text cut at likely element boundaries, unparsed: ``(piece, is_last)``.

        A non-last piece is "elem, elem, ..., elem" (parse as ``"[" + piece + "]"``); the last
        piece is the rest of the file, closing ``]`` included (parse as ``"[" + piece``). A cut can
        be wrong (see the class docstring): whoever parses a piece must be ready to fall back.
        """
        self.refill()
        self.skip_ws()
        self.pos += 1  # the '[' (checked by the caller)
        while True:
            if self.eof:
                yield self.buf[self.pos:], True
                return
            cut = self._last_cut()
            if cut is None:
                self.refill()
                continue
            yield self.buf[self.pos:cut[0]], False
            self.pos = cut[1]

    def _cuts(self) -> list[tuple[int, int]]:
        """Up to ``_TRIES`` candidate cuts, last first: (end of the '}', end of the ',')."""
        buf, pos = self.buf, self.pos
        start = max(pos, len(buf) - 262144)
        while True:
            found = [(m.start() + 1, m.end()) for m in self._CUT.finditer(buf, start)]
            if found or start == pos:
                return found[::-1][: self._TRIES]
            start = max(pos, start - 4 * (len(buf) - start))

    def _last_cut(self) -> tuple[int, int] | None:
        cuts = self._cuts()
        return cuts[0] if cuts else None

    def _fast_batch(self) -> tuple[list, bool] | None:
        """Parse many elements at once; (values, list closed?) or None when the fast path does not apply."""
        self.skip_ws()
        while True:
            if self.eof:
                if self.index and self.buf.startswith("]", self.pos):  # we are just after a ','
                    raise self.fail("a ',' before ']' (trailing comma) is not JSON", self.pos)
                # The rest of the file: the remaining elements, ']' and trailing whitespace.
                try:
                    values = json.loads("[" + self.buf[self.pos:])
                except json.JSONDecodeError:
                    return None
                self.pos = len(self.buf)
                return values, True
            cuts = self._cuts()
            if cuts:
                break
            self.refill()  # no element boundary in the buffer yet: read more
        for cut in cuts:
            try:
                values = json.loads("[" + self.buf[self.pos:cut[0]] + "]")
            except json.JSONDecodeError:
                continue
            self.pos = cut[1]
            return values, False
        return None

    def _one_element(self) -> tuple[object, bool]:
        """One element with raw_decode, and the ',' or ']' after it; (value, list closed?)."""
        self.skip_ws()
        if self.pos >= len(self.buf):
            raise self.fail("unexpected end of file inside the list", self.pos)
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self.fail(f"invalid JSON: {exc.msg}", exc.pos) from None
                self.refill()
                continue
            if end >= len(self.buf) and not self.eof:
                self.refill()  # a number or literal may continue in the next chunk
                continue
            break
        self.pos = end
        self.skip_ws()
        if self.pos >= len(self.buf):
            raise self.fail("unexpected end of file: the list is not closed with ']'", self.pos)
        char = self.buf[self.pos]
        self.pos += 1
        if char == ",":
            return value, False
        if char == "]":
            return value, True
        self.pos -= 1
        raise self.fail(f"expected ',' or ']' after list element {self.index}, found {char!r}", self.pos)


def _iter_json_list(path: Path) -> Iterator[tuple[int, object]]:
    """Stream the elements of a top-level JSON list (see ``_ListReader``)."""
    for positions, values in _list_batches(path, 65536):
        yield from zip(positions, values)


def _list_batches(path: Path, batch_size: int) -> Iterator[tuple[range, list]]:
    with path.open("rb") as fh:
        start = 0
        pending: list = []
        for run in _ListReader(path, fh).value_runs():
            if pending:
                pending.extend(run)
            else:
                pending = run
            while len(pending) >= batch_size:
                yield range(start, start + batch_size), pending[:batch_size]
                pending = pending[batch_size:]
                start += batch_size
        if pending:
            yield range(start, start + len(pending)), pending


def is_json_list_file(path: str | os.PathLike) -> bool:
    """True when the file holds a top-level JSON list (the shape ``iter_list_text_pieces`` reads)."""
    path = Path(path)
    return path.suffix.lower() not in JSON_LINES_SUFFIXES and _first_char(path) == "["


def iter_list_text_pieces(path: str | os.PathLike) -> Iterator[tuple[str, bool]]:
    """A list-shaped file's text in pieces of whole elements, for parsing elsewhere (``_ListReader.text_pieces``)."""
    path = Path(path)
    with path.open("rb") as fh:
        yield from _ListReader(path, fh).text_pieces()


def iter_catalogue_batches(path: str | os.PathLike, batch_size: int = 50_000
                           ) -> Iterator[tuple[Sequence[int], list]]:
    """Yield ``(positions, records)`` in runs of up to ``batch_size`` records, in file order.

    Same records and positions as ``iter_catalogue_records``, without a Python step per record for
    list-shaped files (the usual and the big case).
    """
    path = Path(path)
    if path.suffix.lower() not in JSON_LINES_SUFFIXES and _first_char(path) == "[":
        yield from _list_batches(path, batch_size)
        return
    records = iter_catalogue_records(path)
    while chunk := list(islice(records, batch_size)):
        yield [p for p, _ in chunk], [r for _, r in chunk]
