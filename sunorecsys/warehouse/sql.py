"""Read-only SQL over the analyst views: the library behind ``sunorecsys sql``.

Three layers keep a query from writing anything:

1. The statement is parsed by DuckDB's own parser and only a single ``SELECT`` (which includes
   ``WITH``, ``FROM x``, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``) or ``EXPLAIN [ANALYZE]``
   of one is run. ``ATTACH``, ``COPY ... TO``, ``INSTALL``/``LOAD``, ``CREATE``/``INSERT``/``UPDATE``/
   ``DELETE``/``DROP``/``ALTER``, ``SET``/``RESET``/``USE``, ``EXPORT``/``IMPORT``, ``PRAGMA``,
   ``CALL``, ``CHECKPOINT``/``VACUUM``, transactions and ``PREPARE`` are refused with
   :class:`QueryRefused` before anything is opened.
2. The warehouse file is opened with ``read_only=True``.
3. The connection is then sandboxed: file access is limited to the warehouse and processed folders
   (``allowed_directories`` + ``enable_external_access = false``), extensions are never fetched
   or auto-loaded, and the configuration is locked so a query cannot lift any of it.

When to use which views: the file ``data/warehouse.duckdb`` if it is current; if it does not exist
yet it is built first (falling back to in-memory views if the data root is not writable); if it was
built for another data root, or a table that had no files then has files now, the query runs on
fresh in-memory views of the current Parquet files and a note says ``sunorecsys views`` rebuilds
the file. Notes go to the ``sunorecsys.warehouse.sql`` logger.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.views import (
    ANALYST_TABLES,
    MANIFEST_VIEW,
    SAFE_CONNECT_CONFIG,
    build_analyst_views,
    find_view_sources,
    open_memory_views,
)

log = logging.getLogger(__name__)


class QueryRefused(ValueError):
    """The statement could write or change something; only read-only queries are run."""


class WarehouseQueryError(RuntimeError):
    """The query is allowed but failed: a syntax error, an unknown column, a table with no data yet."""


_ALLOWED_HINT = ("sunorecsys sql runs one read-only query: SELECT / WITH / FROM / VALUES / DESCRIBE / "
                 "SHOW / SUMMARIZE / EXPLAIN [ANALYZE] SELECT")
_WHY_REFUSED: dict[str, str] = {
    "ATTACH": "ATTACH opens or creates another database file",
    "DETACH": "DETACH changes the attached databases",
    "COPY": "COPY reads into or writes files (use --csv to save results)",
    "LOAD": "INSTALL/LOAD download or run extensions",
    "EXTENSION": "extension statements download or run extensions",
    "CREATE": "CREATE would change the warehouse, which holds views rebuilt by the pipeline",
    "CREATE_FUNC": "CREATE MACRO/FUNCTION would change the warehouse",
    "INSERT": "INSERT writes data", "UPDATE": "UPDATE writes data", "DELETE": "DELETE writes data",
    "DROP": "DROP would remove warehouse objects", "ALTER": "ALTER would change warehouse objects",
    "SET": "SET/RESET/USE change the session (and could lift the file-access sandbox)",
    "VARIABLE_SET": "SET VARIABLE changes the session",
    "EXPORT": "EXPORT DATABASE writes files",
    "PRAGMA": "PRAGMA/IMPORT DATABASE change settings or read and write files",
    "CALL": "CALL/CHECKPOINT run procedures that can change settings or files",
    "VACUUM": "VACUUM writes the database", "ANALYZE": "ANALYZE writes statistics",
    "TRANSACTION": "transactions are pointless in a read-only session",
    "PREPARE": "PREPARE/EXECUTE are not supported here", "EXECUTE": "PREPARE/EXECUTE are not supported here",
    "MULTI": "this statement expands into several (PIVOT without an IN list creates types): "
             "give PIVOT an explicit IN (...) list",
}
_EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s+", re.IGNORECASE)


def check_read_only(sql: str) -> None:
    """Raise :class:`QueryRefused` unless ``sql`` is exactly one read-only statement.

    Uses DuckDB's parser (no connection is opened), so comments, string literals and odd spacing
    cannot hide a second statement. Raises :class:`WarehouseQueryError` on a syntax error.
    """
    statements = _parse(sql)
    if not statements:
        raise QueryRefused(f"refused: empty query. {_ALLOWED_HINT}")
    if len(statements) > 1:
        raise QueryRefused(f"refused: {len(statements)} statements; {_ALLOWED_HINT}")
    statement = statements[0]
    kind = statement.type.name
    if kind == "EXPLAIN":
        inner = _parse(_EXPLAIN_PREFIX.sub("", statement.query, count=1))
        if len(inner) == 1 and inner[0].type.name == "SELECT":
            return
        kind = f"EXPLAIN {inner[0].type.name}" if len(inner) == 1 else "EXPLAIN"
        raise QueryRefused(f"refused: {kind} statement (EXPLAIN ANALYZE runs it). {_ALLOWED_HINT}")
    if kind != "SELECT":
        why = _WHY_REFUSED.get(kind, "it is not a read-only query")
        raise QueryRefused(f"refused: {kind} statement: {why}. {_ALLOWED_HINT}")


def _parse(sql: str) -> list:
    try:
        return duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise WarehouseQueryError(f"SQL error: {exc}") from exc
    except ValueError as exc:
        # The Python binding knows fewer statement kinds than the parser (e.g. UPDATE EXTENSIONS).
        raise QueryRefused(f"refused: statement of a kind not allowed here ({exc}). {_ALLOWED_HINT}") from exc


def _is_current(con: duckdb.DuckDBPyConnection, paths: DataPaths) -> str | None:
    """None if the file's views match the data root and its tables; else why they do not."""
    try:
        rows = con.execute(f'SELECT table_name, has_view, data_root FROM "{MANIFEST_VIEW}"').fetchall()
    except duckdb.Error:
        return f"it has no {MANIFEST_VIEW} view (not built by sunorecsys)"
    root = str(Path(paths.root).resolve())
    if rows and rows[0][2] != root:
        return f"it was built for data root {rows[0][2]} (now {root})"
    had_view = {name for name, has_view, _ in rows if has_view}
    now = find_view_sources(paths)
    grown = sorted(t for t, src in now.items() if src.source is not None and t not in had_view)
    if grown:
        return f"table(s) {', '.join(grown)} have Parquet files now but no view in it"
    return None


def _sandbox(con: duckdb.DuckDBPyConnection, paths: DataPaths) -> None:
    root = Path(paths.root).resolve()
    allowed = [str(root / "warehouse") + "/", str(root / "processed") + "/"]
    literal = ", ".join("'" + a.replace("'", "''") + "'" for a in allowed)
    con.execute(f"SET allowed_directories = [{literal}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


@contextmanager
def connect_warehouse(paths: DataPaths, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection holding the analyst views (see the module doc for which views and why).

    ``read_only=True`` (default): the warehouse file opened read-only and sandboxed.
    ``read_only=False``: in-memory views, not sandboxed (for trusted callers, e.g. ``COPY ... TO``
    an export); the warehouse file is never opened for writing either way.
    """
    db = Path(paths.warehouse_db)
    if not Path(paths.root).is_dir():
        # Do not create data/warehouse.duckdb in whatever folder the command happened to run in.
        raise WarehouseQueryError(f"data root {paths.root} does not exist: set SUNORECSYS_DATA_DIR or "
                                  "pass --data-dir (run the pipeline or `sunorecsys ingest` first)")
    if not read_only:
        con, _ = open_memory_views(paths)
        try:
            yield con
        finally:
            con.close()
        return
    if not db.exists():
        try:
            made = build_analyst_views(paths)
            log.info("built %s (%d views)", made["db_path"], len(made["views"]))
        except OSError as exc:
            log.warning("could not write %s (%s); querying in-memory views", db, exc)
    con = None
    if db.exists():
        try:
            con = duckdb.connect(str(db), read_only=True, config=SAFE_CONNECT_CONFIG)
        except duckdb.IOException as exc:
            # Someone opened the file read-write (DuckDB then locks out every other process).
            log.warning("note: cannot open %s (%s); querying fresh in-memory views. Open it with "
                        "`duckdb -readonly` (or read_only=True) so others can share it", db, exc)
    if con is not None:
        stale = _is_current(con, paths)
        if stale:
            con.close()
            con = None
            log.warning("note: %s is out of date: %s; querying fresh in-memory views "
                        "(run `sunorecsys views` to rebuild the file)", db, stale)
    if con is None:
        con, _ = open_memory_views(paths)
    try:
        _sandbox(con, paths)
        yield con
    finally:
        con.close()


def run_query(sql: str, paths: DataPaths, read_only: bool = True, max_rows: int | None = None) -> pa.Table:
    """Run one query against the analyst views and return the result as a pyarrow Table.

    ``max_rows`` (None = all) stops fetching after that many rows, so a huge result is never
    materialised just to print its head. Raises :class:`QueryRefused` for anything but a
    read-only query (unless ``read_only=False``) and :class:`WarehouseQueryError` for a query that
    fails, with DuckDB's message (and, for a table with no files yet, which asset writes it).
    """
    if read_only:
        check_read_only(sql)
    with connect_warehouse(paths, read_only=read_only) as con:
        try:
            rel = con.sql(sql)
            if rel is None:  # a non-query statement (read_only=False only)
                return pa.table({})
            if max_rows is None:
                return _arrow_table(rel)
            reader = _arrow_reader(rel, batch_size=max(1, min(max_rows, 100_000)))
            batches, n = [], 0
            for batch in reader:
                if n >= max_rows:
                    break
                batches.append(batch.slice(0, max_rows - n))
                n += batches[-1].num_rows
            return pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.CatalogException as exc:
            raise WarehouseQueryError(_explain_missing(str(exc), con)) from exc
        except duckdb.Error as exc:
            raise WarehouseQueryError(f"query failed: {exc}") from exc


def _arrow_table(rel: duckdb.DuckDBPyRelation) -> pa.Table:
    # duckdb >= 1.4 names it to_arrow_table (2.x: .arrow() became a reader); older: fetch_arrow_table.
    fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return fetch()


def _arrow_reader(rel: duckdb.DuckDBPyRelation, batch_size: int) -> pa.RecordBatchReader:
    fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
    return fetch(batch_size)


def _explain_missing(message: str, con: duckdb.DuckDBPyConnection) -> str:
    match = re.search(r"Table with name (\w+) does not exist", message)
    if match and match.group(1).lower() in ANALYST_TABLES:
        table = match.group(1).lower()
        rows = con.execute(f'SELECT reason FROM "{MANIFEST_VIEW}" WHERE table_name = ?', [table]).fetchall()
        reason = rows[0][0] if rows and rows[0][0] else "no view was built for it"
        return f"table {table!r} has no view: {reason}"
    return f"query failed: {message}"
