"""Read-only SQL over the analyst views: the library behind ``sunorecsys sql``.

What keeps a query from creating, changing or deleting any file (issue 8):

1. **No file system for the query.** The query runs on a fresh in-memory DuckDB connection with
   ``enable_external_access = false`` and its configuration locked. DuckDB then refuses every file
   operation (``COPY ... TO`` in any disguise, a data-modifying CTE, ``EXPORT``, ``ATTACH``,
   ``read_csv``/``read_text``/``glob``, ``INSTALL``/``LOAD``...) whatever the statement type, and a
   query cannot lift it (``SET`` on a locked configuration fails). The tables are pyarrow datasets
   registered on that connection (:mod:`sunorecsys.warehouse.datasets`): pyarrow reads the Parquet
   files, DuckDB never opens them. Nothing is granted write access: ``allowed_directories`` grants
   write as well as read, so it is not used.
2. **Statement check, as a second wall.** DuckDB's own parser must see exactly one ``SELECT``
   (which includes ``WITH``, ``FROM x``, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``) or
   ``EXPLAIN [ANALYZE]`` of one; anything else is refused with :class:`QueryRefused` before a
   connection is opened, including kinds the Python binding cannot name (``UPDATE EXTENSIONS``).

Resources: each query has a time limit (``timeout_s``; DuckDB is interrupted when it passes), a
memory limit (``memory_limit``, DuckDB's setting; spills go to a private temporary folder in the
system temp directory, never the data root, removed afterwards) and stops within a fraction of a
second on Ctrl-C: the query runs on a worker thread while the calling thread waits, so SIGINT's
``KeyboardInterrupt`` reaches the caller, which interrupts DuckDB and re-raises it.

The views file ``data/warehouse.duckdb`` is for analysts who open DuckDB themselves; ``run_query``
builds it when it does not exist yet (as before) but queries fresh views of the current Parquet
files, so it never depends on the file being current. Notes go to the ``sunorecsys.warehouse.sql``
logger.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa

from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.datasets import table_dataset
from sunorecsys.warehouse.limits import (
    DEFAULT_TIMEOUT_S,
    MAX_TEMP_SPILL,
    check_memory_limit,
    default_memory_limit,
)
from sunorecsys.warehouse.views import (
    ANALYST_TABLES,
    MANIFEST_VIEW,
    SAFE_CONNECT_CONFIG,
    bind_sources,
    build_analyst_views,
    create_manifest_view,
    find_view_sources,
    open_memory_views,
)

log = logging.getLogger(__name__)

_INTERRUPT_POLL_S = 0.05  # how often the waiting thread wakes (Ctrl-C / deadline reaction time)

T = TypeVar("T")


class QueryRefused(ValueError):
    """The statement could write or change something; only read-only queries are run."""


class WarehouseQueryError(RuntimeError):
    """The query is allowed but failed: a syntax error, an unknown column, a table with no data yet."""


class QueryTimeout(WarehouseQueryError):
    """The query ran longer than its time limit and was stopped."""


_ALLOWED_HINT = ("sunorecsys sql runs one read-only query: SELECT / WITH / FROM / VALUES / DESCRIBE / "
                 "SHOW / SUMMARIZE / EXPLAIN [ANALYZE] SELECT")
_WHY_REFUSED: dict[str, str] = {
    "ATTACH": "ATTACH opens or creates another database file",
    "DETACH": "DETACH changes the attached databases",
    "COPY": "COPY reads into or writes files (use --csv to save results)",
    "COPY_DATABASE": "COPY FROM DATABASE writes another database",
    "LOAD": "INSTALL/LOAD download or run extensions",
    "EXTENSION": "extension statements download or run extensions",
    "CREATE": "CREATE would change the warehouse, which holds views rebuilt by the pipeline",
    "CREATE_FUNC": "CREATE MACRO/FUNCTION would change the warehouse",
    "INSERT": "INSERT writes data", "UPDATE": "UPDATE writes data", "DELETE": "DELETE writes data",
    "MERGE_INTO": "MERGE INTO writes data",
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
    cannot hide a second statement. Raises :class:`WarehouseQueryError` on a syntax error. This is
    the second wall: a data-modifying CTE parses as a SELECT and is stopped by the sandbox instead.
    """
    statements = _parse(sql)
    if not statements:
        raise QueryRefused(f"refused: empty query. {_ALLOWED_HINT}")
    if len(statements) > 1:
        raise QueryRefused(f"refused: {len(statements)} statements; {_ALLOWED_HINT}")
    statement = statements[0]
    kind = _kind(statement)
    if kind == "EXPLAIN":
        inner = _parse(_EXPLAIN_PREFIX.sub("", statement.query, count=1))
        if len(inner) == 1 and _kind(inner[0]) == "SELECT":
            return
        kind = f"EXPLAIN {_kind(inner[0])}" if len(inner) == 1 else "EXPLAIN"
        raise QueryRefused(f"refused: {kind} statement (EXPLAIN ANALYZE runs it). {_ALLOWED_HINT}")
    if kind != "SELECT":
        why = _WHY_REFUSED.get(kind, "it is not a read-only query")
        raise QueryRefused(f"refused: {kind} statement: {why}. {_ALLOWED_HINT}")


def _kind(statement) -> str:
    """The statement type's name; for a kind the Python binding has no name for (DuckDB's parser
    knows more kinds than ``duckdb.StatementType``, e.g. UPDATE EXTENSIONS is number 29), its
    first two words, so the refusal still says what was refused."""
    try:
        return statement.type.name
    except ValueError:
        words = " ".join(statement.query.split()[:2]).upper()
        return re.sub(r"[^A-Z0-9_ ]", "", words) or "UNKNOWN"


def _parse(sql: str) -> list:
    try:
        return duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise WarehouseQueryError(f"SQL error: {exc}") from exc
    except ValueError as exc:
        raise QueryRefused(f"refused: statement of a kind not allowed here ({exc}). {_ALLOWED_HINT}") from exc


def _private_temp_dir(paths: DataPaths) -> Path:
    """A fresh folder for DuckDB's spill files in the system temp directory, never the data root."""
    tmp = Path(tempfile.mkdtemp(prefix="sunorecsys-sql-")).resolve()
    root = Path(paths.root).resolve()
    if tmp.is_relative_to(root):
        tmp.rmdir()
        raise WarehouseQueryError(f"the temporary folder {tmp.parent} is inside the data root {root}: "
                                  "set TMPDIR to a folder outside it (DuckDB spills large queries there)")
    return tmp


def _resource_config(temp_dir: Path, memory_limit: str) -> dict[str, object]:
    return {**SAFE_CONNECT_CONFIG, "memory_limit": memory_limit, "temp_directory": str(temp_dir),
            "max_temp_directory_size": MAX_TEMP_SPILL}


def open_sandboxed_views(paths: DataPaths, *, temp_dir: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with one view per table (a registered pyarrow dataset), the
    ``warehouse_tables`` manifest, file access switched off and the configuration locked.

    A table whose files cannot be read (a corrupt footer, clashing column types) is left out with
    the error as its reason in ``warehouse_tables``; the other tables are unaffected.
    """
    con = duckdb.connect(":memory:", config=_resource_config(temp_dir, memory_limit))
    try:
        sources = find_view_sources(paths)
        def bind(table: str, src) -> list[str]:
            dataset = table_dataset(src)
            con.register(table, dataset)
            return dataset.schema.names

        views, skipped = bind_sources(sources, bind, (OSError, pa.ArrowException))
        create_manifest_view(con, sources, views, skipped, data_root=str(Path(paths.root).resolve()),
                             built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        # From here on DuckDB opens no file at all (spill files in temp_dir excepted), and no
        # statement can switch that back on.
        con.execute("SET enable_progress_bar = false")  # never draw on the analyst's terminal
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _ensure_views_file(paths: DataPaths) -> None:
    """Build the analysts' views file if it is missing (as before); say so if it is out of date.

    The query itself never uses the file, so a stale or locked file changes no answer; the note
    is for analysts who open it with DuckDB directly.
    """
    db = Path(paths.warehouse_db)
    if not db.exists():
        try:
            made = build_analyst_views(paths)
            log.info("built %s (%d views)", made["db_path"], len(made["views"]))
        except OSError as exc:
            log.warning("could not write %s (%s); the query runs on in-memory views anyway", db, exc)
        return
    try:
        con = duckdb.connect(str(db), read_only=True, config=SAFE_CONNECT_CONFIG)
    except duckdb.Error:
        return  # opened read-write elsewhere (DuckDB then locks out others): nothing to check
    try:
        stale = _is_current(con, paths)
    finally:
        con.close()
    if stale:
        log.warning("note: %s is out of date: %s (run `sunorecsys views` to rebuild it; this query "
                    "reads the current Parquet files)", db, stale)


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
    grown = sorted(t for t, src in find_view_sources(paths).items() if src.source is not None and t not in had_view)
    if grown:
        return f"table(s) {', '.join(grown)} have Parquet files now but no view in it"
    return None


@contextmanager
def connect_warehouse(paths: DataPaths, *, read_only: bool = True,
                      memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection holding the analyst views.

    ``read_only=True`` (default): the sandboxed connection of :func:`open_sandboxed_views`.
    ``read_only=False``: in-memory ``read_parquet`` views, not sandboxed (for trusted callers,
    e.g. ``COPY ... TO`` an export). Either way: the memory limit, and a private spill folder
    outside the data root that is removed on exit; the warehouse file is never opened.
    """
    if not Path(paths.root).is_dir():
        # Do not create data/warehouse.duckdb in whatever folder the command happened to run in.
        raise WarehouseQueryError(f"data root {paths.root} does not exist: set SUNORECSYS_DATA_DIR or "
                                  "pass --data-dir (run the pipeline or `sunorecsys ingest` first)")
    memory_limit = check_memory_limit(memory_limit or default_memory_limit())
    temp_dir = _private_temp_dir(paths)
    try:
        if read_only:
            _ensure_views_file(paths)
            con = open_sandboxed_views(paths, temp_dir=temp_dir, memory_limit=memory_limit)
        else:
            con, _ = open_memory_views(paths)
            con.execute("SET enable_progress_bar = false")
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET temp_directory = '{str(temp_dir).replace(chr(39), chr(39) * 2)}'")
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def run_query(sql: str, paths: DataPaths, read_only: bool = True, max_rows: int | None = None, *,
              timeout_s: float | None = DEFAULT_TIMEOUT_S, memory_limit: str | None = None) -> pa.Table:
    """Run one query against the analyst views and return the result as a pyarrow Table.

    ``max_rows`` (None = all) stops fetching after that many rows, so a huge result is never
    materialised just to print its head. ``timeout_s`` (seconds, None or 0 = no limit) bounds the
    whole query including fetching; ``memory_limit`` is a DuckDB size (default
    :func:`default_memory_limit`). Raises :class:`QueryRefused` for anything but a read-only query
    (unless ``read_only=False``) or a query that reaches for a file, :class:`QueryTimeout` when the
    time limit passes, :class:`WarehouseQueryError` for a query that fails (DuckDB's message; for a
    table with no files yet, which asset writes it; for memory, which limit). ``KeyboardInterrupt``
    (Ctrl-C) stops the running query and is re-raised.
    """
    if read_only:
        check_read_only(sql)
    with connect_warehouse(paths, read_only=read_only, memory_limit=memory_limit) as con:
        limit = current_memory_limit(con)
        try:
            return _guarded(con, lambda: _fetch(con, sql, max_rows), timeout_s)
        except QueryTimeout:
            raise
        except duckdb.PermissionException as exc:
            raise QueryRefused(f"refused: sunorecsys sql reads only the warehouse views; file access "
                               f"is switched off for queries ({exc})") from exc
        except duckdb.OutOfMemoryException as exc:
            first = str(exc).splitlines()[0]
            raise WarehouseQueryError(f"query needs more memory than its limit of {limit} "
                                      f"(--memory-limit to raise it): {first}") from exc
        except duckdb.CatalogException as exc:
            raise WarehouseQueryError(_explain_missing(str(exc), con)) from exc
        except duckdb.Error as exc:
            raise WarehouseQueryError(f"query failed: {exc}") from exc


def current_memory_limit(con: duckdb.DuckDBPyConnection) -> str:
    """DuckDB's memory limit on ``con`` as it reports it (e.g. ``1.9 GiB``)."""
    return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, max_rows: int | None) -> pa.Table:
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


def _guarded(con: duckdb.DuckDBPyConnection, work: Callable[[], T], timeout_s: float | None) -> T:
    """Run ``work`` on a worker thread; interrupt DuckDB on the deadline or on Ctrl-C.

    The calling thread only waits (in short slices), so Python delivers SIGINT's
    ``KeyboardInterrupt`` to it at once even while DuckDB runs native code for minutes; it then
    calls ``con.interrupt()`` until the worker has stopped, and re-raises. The worker reports its
    end through an Event, not ``Thread.join``/``is_alive``: on Python 3.11 a join interrupted by
    Ctrl-C can mark a still-running thread as stopped.
    """
    outcome: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 (handed to the calling thread, raised there)
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=target, name="sunorecsys-sql-query", daemon=True)
    deadline = time.monotonic() + timeout_s if timeout_s else None
    timed_out = False
    try:
        worker.start()
        while not done.wait(_INTERRUPT_POLL_S):
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                _stop(con, done)
    except KeyboardInterrupt:
        _stop(con, done)
        raise
    if timed_out and "value" not in outcome:
        raise QueryTimeout(f"query stopped after the time limit of {timeout_s:g} s "
                           "(--timeout SECONDS to change it, 0 = no limit)")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _stop(con: duckdb.DuckDBPyConnection, done: threading.Event, patience_s: float = 10.0) -> None:
    """Interrupt DuckDB until the worker has finished (at most ``patience_s`` seconds).

    An interrupt that lands between two DuckDB calls of the worker is lost, hence the repeats; a
    second Ctrl-C while stopping is absorbed so the connection is not closed under a running query.
    """
    give_up = time.monotonic() + patience_s
    while not done.is_set() and time.monotonic() < give_up:
        try:
            con.interrupt()
            done.wait(_INTERRUPT_POLL_S)
        except KeyboardInterrupt:
            continue


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
