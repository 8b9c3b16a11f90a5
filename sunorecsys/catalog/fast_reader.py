"""The fast path: DuckDB's ``read_json`` straight over one catalogue file, with the record rules
(``record_rules.rules_query``) in the same query.

DuckDB refuses a whole file for one malformed record, a record that is not an object, or a
duplicate key among the fields ingest reads; a file nested deeper than ``MAX_DEPTH`` anywhere
(measured on the bytes first) is not given to DuckDB. Then :func:`read_fast` returns None and the file goes through ``tolerant_reader``, which isolates the
bad records. Rows come back in file order (DuckDB keeps insertion order), so positions are
added here: the index in a list, the line number in JSON Lines.
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sunorecsys.catalog.record_rules import (
    MAX_DEPTH,
    RAW_COLUMNS,
    RECORD_TYPE,
    TOP_FIELDS,
    rules_query,
    sql_text,
)
from sunorecsys.catalog.source_files import CatalogueFile, max_nesting, open_catalogue_file

DEFAULT_MAX_OBJECT_BYTES = 16 << 20   # DuckDB's default limit for one JSON value
WRAPPER_HEAD = re.compile(rb'^(\xef\xbb\xbf)?[ \t\r\n]*\{[ \t\r\n]*"songs"[ \t\r\n]*:[ \t\r\n]*\[')
_LINE_CHUNK = 16 << 20


def struct_of(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"{sql_text(k)}: {sql_text(v)}" for k, v in columns.items()) + "}"


def read_json_source(path: str, fmt: str, columns: dict[str, str], max_object_bytes: int) -> str:
    return (f"read_json({sql_text(path)}, format={sql_text(fmt)}, columns={struct_of(columns)}, "
            f"maximum_object_size={max_object_bytes})")


def starts_as_songs_wrapper(file: CatalogueFile) -> bool:
    """True when the file begins ``{"songs": [`` (the wrapper's list can then be read as records)."""
    with open_catalogue_file(file.path) as fh:
        return WRAPPER_HEAD.match(fh.read(4096)) is not None


def read_fast(con: duckdb.DuckDBPyConnection, file: CatalogueFile, latest_created_at: datetime) -> pa.Table | None:
    """The rules' result for every record of ``file`` with ``pos`` filled in, or None when DuckDB
    refuses the file (or the result would be ambiguous) and the tolerant reader must decide."""
    # DuckDB reads a value nested thousands of levels deep in a field ingest does not read without
    # a word; the tolerant reader measures every record and rejects those nested too deep.
    if max_nesting(file.path) > MAX_DEPTH:
        return None
    path = str(file.path)
    big = max(DEFAULT_MAX_OBJECT_BYTES, file.size + 1)
    if file.shape == "array":
        source = read_json_source(path, "array", RAW_COLUMNS, DEFAULT_MAX_OBJECT_BYTES)
    elif file.shape == "lines":
        source = read_json_source(path, "newline_delimited", RAW_COLUMNS, DEFAULT_MAX_OBJECT_BYTES)
    elif starts_as_songs_wrapper(file):
        # The whole wrapper is one JSON value for DuckDB: allow the file's size.
        inner = read_json_source(path, "unstructured", {"songs": RECORD_TYPE + "[]"}, big)
        source = f"(SELECT UNNEST(s) FROM (SELECT UNNEST(songs) AS s FROM {inner}))"
    else:
        source = read_json_source(path, "newline_delimited", RAW_COLUMNS, DEFAULT_MAX_OBJECT_BYTES)
    try:
        table = fetch_table(con.sql(rules_query(source, latest_created_at)))
    except duckdb.Error:
        return None
    if _has_bare_rows(table):
        return None  # a `null` element and a `{}` record look alike here: let Python tell them apart
    if file.shape == "array" or (file.shape == "object" and source.startswith("(SELECT UNNEST")):
        positions = np.arange(table.num_rows, dtype=np.int64)
    else:
        if file.shape == "object" and table.num_rows < 2:
            return None  # one object: a single record or a wrapper with "songs" further down
        positions = json_lines_numbers(file, table.num_rows)
        if positions is None:
            return None  # records span lines: not JSON Lines, the tolerant reader decides
    return table.set_column(table.column_names.index("pos"), "pos", pa.array(positions, pa.int64()))


def fetch_table(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    """The whole result as one Arrow table; errors stay DuckDB errors (a RecordBatchReader would
    turn them into OSError)."""
    return relation.to_arrow_table()


def _has_bare_rows(table: pa.Table) -> bool:
    """Rows with none of the read fields (a ``{}`` record, or a ``null`` list element)."""
    missing = pc.equal(table["reason"], "missing_id")
    if not pc.any(missing).as_py():
        return False
    bare = missing
    for f in TOP_FIELDS:
        bare = pc.and_(bare, pc.is_null(table[f"raw_{f}"]))
    return bool(pc.any(bare).as_py())


def json_lines_numbers(file: CatalogueFile, n_rows: int) -> np.ndarray | None:
    """The 1-based line numbers of the non-blank lines (DuckDB skips blank ones), or None when
    there are not ``n_rows`` of them (a record spread over lines)."""
    newlines = 0
    last = b"\n"
    with open_catalogue_file(file.path) as fh:
        while block := fh.read(_LINE_CHUNK):
            newlines += block.count(b"\n")
            last = block[-1:]
    n_lines = newlines + (last != b"\n")
    if n_lines == n_rows:
        return np.arange(1, n_rows + 1, dtype=np.int64)
    numbers = []
    with open_catalogue_file(file.path) as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip(b" \t\r\n\xef\xbb\xbf" if number == 1 else b" \t\r\n"):
                numbers.append(number)
    return np.array(numbers, dtype=np.int64) if len(numbers) == n_rows else None
