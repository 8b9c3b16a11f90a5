"""The tolerant path: a file DuckDB's reader refused, read record by record in Python, so that one
bad record (or line) is one rejected row and every other record lands.

Records are cut out of the text one at a time (``json.JSONDecoder.raw_decode`` on a sliding
window of the file; a line at a time for JSON Lines). A record that does not parse is skipped up
to the next ``,``/``]`` at its own nesting level (a bracket and string aware scan that ends an
unterminated string at the end of its line) and becomes one ``malformed_json`` row naming the
file line and column. Before parsing, a record is measured without recursion and refused as
``too_deep`` beyond ``MAX_DEPTH`` levels (Python's parser is recursive). Records that are
objects are re-written, with their position, to a temporary JSON Lines file that DuckDB reads
with the same rules query as the fast path, so the verdicts cannot drift apart.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from sunorecsys.catalog.fast_reader import WRAPPER_HEAD, fetch_table, read_json_source
from sunorecsys.catalog.record_rules import (
    MAX_DEPTH,
    META_FIELDS,
    POSITION_FIELD,
    RECORD_TYPE,
    TOP_FIELDS,
    json_depth,
    may_be_too_deep,
    rules_query,
)
from sunorecsys.catalog.source_files import BadCatalogueFile, CatalogueFile, open_catalogue_file

CHUNK_BYTES = 8 << 20            # bytes read per refill of the window
WHOLE_DOCUMENT_LIMIT = 256 << 20  # an object file that is not JSON Lines is parsed whole below this size
MAX_RAW_CHARS = 65_536           # a rejected record's text is kept up to this length
_BLANK = re.compile(r"[ \t\r\n]*")
# One token of the recovery scan: a string (ended by its quote, a newline or the window's end), a
# bracket, or a comma.
_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*("|(?=\n)|\\?$)|[\[\]{},]', re.DOTALL)
_ID_HINT = re.compile(r'"id"\s*:\s*"([A-Za-z0-9_\-./ ]{1,128})"')
_TOP_FIELDS = frozenset(TOP_FIELDS)
_META_FIELDS = frozenset(META_FIELDS)


@dataclass
class Element:
    """One element of a list (or one line): its parsed value, or why it could not be parsed."""
    position: int
    value: object = None
    text: str = ""
    reason: str | None = None
    detail: str = ""
    is_record: bool = True  # False: damage between records (a trailing comma, an unclosed list)


class _FirstKeyDict(dict):
    """A JSON object as DuckDB's reader sees it: the first of duplicated keys wins; ``duplicates``
    names the keys that appeared more than once."""
    duplicates: frozenset = frozenset()


def _object_pairs(pairs: list[tuple[str, object]]) -> dict:
    obj = _FirstKeyDict()
    seen_twice = []
    for key, value in pairs:
        if key in obj:
            seen_twice.append(key)
        else:
            obj[key] = value
    if seen_twice:
        obj.duplicates = frozenset(seen_twice)
    return obj


def _parse_int(text: str) -> int | float:
    # Python refuses to convert integers of more than 4,300 digits (a ValueError that used to end
    # the whole ingest); such a number is out of any range ingest accepts, so it becomes +/-inf.
    if len(text) > 4000:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


_DECODER = json.JSONDecoder(object_pairs_hook=_object_pairs, parse_int=_parse_int)


def _clean(text: str) -> str:
    """Text safe to store: invalid UTF-8 shown as U+FFFD, cut to MAX_RAW_CHARS."""
    if len(text) > MAX_RAW_CHARS:
        text = text[:MAX_RAW_CHARS] + f"... ({len(text)} characters, cut)"
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _Window:
    """The file's text in a sliding window: bytes decoded as UTF-8 with invalid bytes kept as
    surrogate escapes (a bad byte spoils one record, not the file)."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.buf = ""
        self.eof = False
        self.line = 1  # line number of buf[0]
        self.column = 1  # column of buf[0]
        self.fill()
        self.buf = self.buf.removeprefix("\ufeff")

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(CHUNK_BYTES)
        self.eof = not chunk
        self.buf += self.decoder.decode(chunk, final=self.eof)
        return not self.eof

    def drop(self, upto: int) -> None:
        newlines = self.buf.count("\n", 0, upto)
        if newlines:
            self.column = upto - self.buf.rfind("\n", 0, upto)
        else:
            self.column += upto
        self.line += newlines
        self.buf = self.buf[upto:]

    def where(self, at: int) -> str:
        newlines = self.buf.count("\n", 0, at)
        column = at - self.buf.rfind("\n", 0, at) if newlines else self.column + at
        return f"line {self.line + newlines}, column {column}"

    def skip_blanks(self, at: int) -> int:
        while True:
            at = _BLANK.match(self.buf, at).end()
            if at < len(self.buf) or not self.fill():
                return at


def _scan_end(window: _Window, start: int) -> int | None:
    """Where the element starting at ``start`` ends (the index of the ``,`` or ``]`` after it at its
    own level), refilling the window as needed; None when the file ends first.

    A damaged record can leave a bracket open (a cut-off string, a missing ``}``); so that it does
    not swallow the records after it, a ``{`` that opens a line at the damaged record's own
    indentation right after a line ending in ``,`` is taken as the next record's start.
    """
    buf = window.buf
    line_start = buf.rfind("\n", 0, start) + 1
    indent = buf[line_start:start] if line_start or window.column == 1 else None
    depth, at = 0, start
    while True:
        buf = window.buf
        for match in _SCAN.finditer(buf, at):
            token = match.group()
            if token[0] == '"':
                if match.end() == len(buf) and not window.eof and not match.group(1):
                    break  # a string running into the window's end: read more and rescan it
                continue
            if token in "[{":
                if token == "{" and depth > 0 and indent is not None:
                    comma = _next_record_after(buf, match.start(), indent)
                    if comma is not None:
                        return comma
                depth += 1
            elif token in "]}":
                if depth == 0 and token == "]":
                    return match.start()
                depth = max(depth - 1, 0)
            elif depth == 0:  # ','
                return match.start()
            at = match.end()
        else:
            at = len(buf)
        if not window.fill():
            return None


def _next_record_after(buf: str, brace: int, indent: str) -> int | None:
    """The index of the ``,`` ending the previous line when the ``{`` at ``brace`` opens a line
    with exactly ``indent`` before it; else None."""
    line_start = brace - len(indent)
    if line_start <= 0 or buf[line_start - 1] != "\n" or buf[line_start:brace] != indent:
        return None
    before = buf[:line_start - 1].rstrip(" \t\r")
    return len(before) - 1 if before.endswith(",") else None


def _measure(text: str) -> tuple[str, str] | None:
    """("too_deep", detail) when the element text is nested beyond MAX_DEPTH, else None."""
    if may_be_too_deep(text):
        depth = json_depth(text)
        if depth > MAX_DEPTH:
            return "too_deep", f"nested {depth} levels deep (at most {MAX_DEPTH})"
    return None


def _parse(text: str) -> tuple[object, tuple[str, str] | None, int]:
    """``(value, None, -1)``, or ``(None, (reason, message), offset of the error in text)``."""
    problem = _measure(text)
    if problem:
        return None, problem, 0
    try:
        return _DECODER.decode(text), None, -1
    except json.JSONDecodeError as exc:
        return None, ("malformed_json", f"invalid JSON: {exc.msg}"), exc.pos
    except RecursionError:
        return None, ("too_deep", f"nested deeper than Python's parser can follow (at most {MAX_DEPTH})"), 0


def iter_list(window: _Window, start: int) -> Iterator[Element]:
    """The elements of the JSON list whose ``[`` ends at ``start``, and rows for any damage around them."""
    index = 0
    at = window.skip_blanks(start)
    if window.buf.startswith("]", at):
        window.drop(at + 1)
        return
    while True:
        window.drop(at)
        at = window.skip_blanks(0)
        if at >= len(window.buf):
            yield Element(index, reason="malformed_json",
                          detail=f"the file ends at {window.where(at)} inside the list (truncated?)", is_record=False)
            window.drop(at)
            return
        where = window.where(at)
        value, end, problem = None, None, None
        try:
            value, end = _DECODER.raw_decode(window.buf, at)
            if end >= len(window.buf) and not window.eof:
                end = None  # a number may go on in the next chunk: take the careful route
        except (json.JSONDecodeError, RecursionError):
            end = None
        if end is None:
            stop = _scan_end(window, at)
            text = window.buf[at:stop] if stop is not None else window.buf[at:]
            value, problem, offset = _parse(text.rstrip())
            if problem is not None and problem[0] == "malformed_json":
                problem = (problem[0], f"{problem[1]} at {window.where(at + offset)}")
            if stop is None:  # the file ended inside this record
                problem = ("malformed_json", ((problem[1] + "; ") if problem else "")
                           + "the file ends inside this record (truncated?)")
            end = stop if stop is not None else len(window.buf)
        else:
            text = window.buf[at:end]
            problem = _measure(text)
        if problem is not None:
            yield Element(index, text=text, reason=problem[0], detail=f"{problem[1]}; the record starts at {where}")
        else:
            yield Element(index, value=value, text=text)
        index += 1
        at = window.skip_blanks(end)
        if at >= len(window.buf):
            if problem is None:
                yield Element(index, reason="malformed_json",
                              detail=f"the list is not closed with ']' (truncated?) at {window.where(at)}", is_record=False)
            window.drop(at)
            return
        char = window.buf[at]
        if char == "]":
            window.drop(at + 1)
            return
        if char == ",":
            at = window.skip_blanks(at + 1)
            if window.buf.startswith("]", at):
                yield Element(index, reason="malformed_json",
                              detail=f"a ',' before ']' (trailing comma) at {window.where(at)}", is_record=False)
                window.drop(at + 1)
                return
            continue
        # Neither ',' nor ']': the next text is taken as the next element (a missing comma), and
        # reported by its own parse if it is garbage.
        if problem is None:
            yield Element(index, reason="malformed_json",
                          detail=f"expected ',' or ']' after element {index - 1} at {window.where(at)}", is_record=False)


def _after_list(window: _Window) -> Element | None:
    at = window.skip_blanks(0)
    if at < len(window.buf):
        return Element(-1, text=window.buf[at:at + 200], reason="malformed_json",
                       detail=f"extra data after the list at {window.where(at)}", is_record=False)
    return None


def iter_json_lines(fh) -> Iterator[Element]:
    """One element per non-blank line (position = line number)."""
    for number, raw in enumerate(fh, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Element(number, text=raw.decode("utf-8", "replace"), reason="not_utf8",
                          detail=f"not UTF-8 text at byte {exc.start} of line {number} ({exc.reason})")
            continue
        value, problem, offset = _parse(text)
        if problem is not None:
            where = f"line {number}" + (f", column {offset + 1}" if problem[0] == "malformed_json" else "")
            yield Element(number, text=text, reason=problem[0], detail=f"{problem[1]} at {where}")
        else:
            yield Element(number, value=value, text=text)


def iter_elements(file: CatalogueFile) -> Iterator[Element]:
    """Every element of ``file`` in order (positions: list index, or line number for JSON Lines)."""
    with open_catalogue_file(file.path) as fh:
        if file.shape == "lines":
            yield from iter_json_lines(fh)
            return
        head = fh.read(4096)
        fh.seek(0)
        wrapper = WRAPPER_HEAD.match(head)
        if file.shape == "array" or wrapper:
            window = _Window(fh)
            start = window.buf.index("[") + 1
            yield from iter_list(window, start)
            if not wrapper:  # after a wrapper's list come its other keys: not read
                extra = _after_list(window)
                if extra is not None:
                    yield extra
            return
        yield from _iter_object_file(file, fh)


def _iter_object_file(file: CatalogueFile, fh) -> Iterator[Element]:
    """A ``.json`` starting with ``{``: JSON Lines, one record, or a wrapper with "songs" further down."""
    first_line = b""
    for raw in fh:
        if raw.strip(b" \t\r\n\xef\xbb\xbf"):
            first_line = raw
            break
    more = any(raw.strip() for raw in _take(fh, 1))
    fh.seek(0)
    first_text = first_line.decode("utf-8", "surrogateescape").lstrip("\ufeff").strip()
    first_value, problem, _ = _parse(first_text)
    one_object_per_line = (problem is None and isinstance(first_value, dict)) or (
        first_text.startswith("{") and first_text.endswith("}"))
    if more and one_object_per_line:
        yield from iter_json_lines(fh)
        return
    if file.size > WHOLE_DOCUMENT_LIMIT:
        raise BadCatalogueFile(file.path, f"a {file.size}-byte JSON object that is neither {{\"songs\": [...]}} "
                                          "(with \"songs\" first) nor JSON Lines")
    text = fh.read().decode("utf-8", "surrogateescape").lstrip("\ufeff")
    doc, problem, offset = _parse(text)
    if problem is not None:
        line = text.count("\n", 0, offset) + 1
        raise BadCatalogueFile(file.path, f"one JSON document that does not parse: {problem[1]} (line {line})")
    if isinstance(doc, dict) and "songs" in doc:
        songs = doc["songs"]
        if not isinstance(songs, list):
            raise BadCatalogueFile(file.path, f"\"songs\" must be a list, found {_type_name(songs)}")
        for index, value in enumerate(songs):
            element_text = json.dumps(value, ensure_ascii=False, allow_nan=True)
            problem = _measure(element_text)
            if problem is not None:
                yield Element(index, text=element_text, reason=problem[0], detail=problem[1])
            else:
                yield Element(index, value=value, text=element_text)
    elif isinstance(doc, dict) and ("id" in doc or "metadata" in doc):
        yield Element(0, value=doc, text=text)
    else:
        raise BadCatalogueFile(file.path, "a JSON object must hold a \"songs\" list (or be one song record)")


def _take(fh, n: int) -> list[bytes]:
    out = []
    for raw in fh:
        if raw.strip():
            out.append(raw)
            if len(out) >= n:
                break
    return out


def _type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _rejected_row(file: CatalogueFile, element: Element, reason: str, detail: str) -> dict:
    hint = _ID_HINT.search(element.text[:4096]) if element.text else None
    song_id = element.value.get("id") if isinstance(element.value, dict) else (hint.group(1) if hint else None)
    if song_id is not None and not isinstance(song_id, str):
        song_id = json.dumps(song_id)
    return {"source_file": str(file.path), "position": element.position, "song_id": song_id, "reason": reason,
            "detail": detail, "raw": _clean(element.text) if element.text else None}


def read_tolerant(con: duckdb.DuckDBPyConnection, file: CatalogueFile, latest_created_at: datetime,
                  work_dir: Path) -> tuple[pa.Table | None, list[dict], int]:
    """(rules' result for the records that parsed, rejected rows for those that did not, elements seen).

    Raises BadCatalogueFile when the file as a whole is not a catalogue (see ``_iter_object_file``).
    """
    rejected: list[dict] = []
    staged = work_dir / f"records-{os.getpid()}-{id(file)}.jsonl"
    n_elements = n_staged = 0
    last_position = -1
    with staged.open("wb") as out:
        for element in iter_elements(file):
            if element.position < 0:  # damage after the last element
                element.position = last_position + 1
            if element.is_record:
                last_position = element.position
                n_elements += 1
            if element.reason is not None:
                rejected.append(_rejected_row(file, element, element.reason, element.detail))
                continue
            record = element.value
            if not isinstance(record, dict):
                rejected.append(_rejected_row(file, element, "not_an_object",
                                              f"a song record must be a JSON object, found {_type_name(record)}"))
                continue
            metadata = record.get("metadata")
            if metadata is not None and not isinstance(metadata, dict):
                rejected.append(_rejected_row(file, element, "bad_field",
                                              f"metadata must be an object, found {_type_name(metadata)}"))
                continue
            duplicated = sorted(getattr(record, "duplicates", frozenset()) & _TOP_FIELDS)
            duplicated += [f"metadata.{k}" for k in sorted(getattr(metadata, "duplicates", frozenset()) & _META_FIELDS)]
            if duplicated:
                rejected.append(_rejected_row(file, element, "duplicate_key",
                                              f"the record holds {', '.join(map(repr, duplicated))} more than once"))
                continue
            try:
                # The record's own text is staged (not a re-serialisation), so DuckDB sees the numbers
                # exactly as the fast path would; the dumps only proves every string is valid Unicode.
                json.dumps(record, ensure_ascii=False, allow_nan=True).encode("utf-8")
                text = element.text.encode("utf-8")
            except UnicodeEncodeError as exc:
                rejected.append(_rejected_row(file, element, "not_utf8",
                                              f"invalid Unicode in a string ({exc.reason}: a lone surrogate "
                                              "or bytes that are not UTF-8)"))
                continue
            # Outside strings a line break is a blank; inside one it is not JSON (it did not parse).
            text = text.replace(b"\r", b" ").replace(b"\n", b" ")
            out.write(b'{"%s": %d, "record": %s}\n' % (POSITION_FIELD.encode(), element.position, text))
            n_staged += 1
    table = None
    if n_staged:
        columns = {POSITION_FIELD: "BIGINT", "record": RECORD_TYPE}
        staged_source = read_json_source(str(staged), "newline_delimited", columns, max(16 << 20, file.size + 1))
        source = f"(SELECT {POSITION_FIELD}, UNNEST(record) FROM {staged_source})"
        try:
            table = fetch_table(con.sql(rules_query(source, latest_created_at)))
        finally:
            staged.unlink(missing_ok=True)
    else:
        staged.unlink(missing_ok=True)
    return table, rejected, n_elements
