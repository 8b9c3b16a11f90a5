"""``sunorecsys sql "SELECT ..." | --file PATH | - [--csv] [--max-rows N] [--timeout S] [--memory-limit SIZE]``
and ``sunorecsys views``."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from typing import Any

import pyarrow as pa

from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.limits import DEFAULT_TIMEOUT_S, default_memory_limit

DEFAULT_MAX_ROWS = 50  # rows printed as a table unless --max-rows says otherwise
MAX_QUERY_BYTES = 16 * 1024**2  # a query file larger than this is refused before it is read whole


def register(subparsers: argparse._SubParsersAction) -> None:
    sql = subparsers.add_parser(
        "sql", help="run one read-only SQL query over the warehouse views",
        description="Run one read-only query (SELECT / WITH / DESCRIBE / SHOW / SUMMARIZE / EXPLAIN) "
                    "over the analyst views (songs, audio_checks, flamingo_scores, audiobox_scores, "
                    "quality_scores, rejected_songs, interactions, recommendations, evaluation, "
                    "warehouse_tables). Statements that could write (ATTACH, COPY, INSTALL/LOAD, "
                    "CREATE/INSERT/UPDATE/DELETE/DROP, SET, EXPORT, ...) are refused, and the query "
                    "runs with file access switched off, so it cannot create, change or delete any file.")
    sql.add_argument("query", nargs="?", default=None,
                     help='the SQL, e.g. "SELECT genre, count(*) FROM songs GROUP BY 1"; "-" reads it from '
                          "stdin")
    sql.add_argument("--file", "-f", default=None, metavar="PATH",
                     help='read the SQL from PATH ("-" = stdin), e.g. for queries longer than the 128 KiB '
                          "a command-line argument may hold")
    sql.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                     help=f"stop the query after this many seconds (default {DEFAULT_TIMEOUT_S:g}; 0 = no limit)")
    sql.add_argument("--memory-limit", default=None, metavar="SIZE",
                     help=f"DuckDB memory limit, e.g. 4GB or 500MB (default {default_memory_limit()}: 2 GiB "
                          "or a quarter of the RAM if less); larger work spills to a temporary folder "
                          "outside the data root")
    sql.add_argument("--csv", action="store_true", help="print CSV (all rows unless --max-rows)")
    sql.add_argument("--max-rows", type=int, default=None, metavar="N",
                     help=f"print at most N rows (default {DEFAULT_MAX_ROWS} as a table, all with --csv; "
                          "0 = all)")
    sql.set_defaults(func=run_sql_command)

    views = subparsers.add_parser(
        "views", help="rebuild data/warehouse.duckdb (views over the Parquet tables)",
        description="Rebuild the views-only DuckDB file analysts open; atomic, safe while others read it.")
    views.set_defaults(func=run_views_command)


def _notes_to_stderr() -> None:
    # The library reports "built the file" / "file out of date" on its logger; show them plainly.
    logger = logging.getLogger("sunorecsys.warehouse")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def run_sql_command(args: argparse.Namespace) -> int:
    from sunorecsys.warehouse.limits import check_memory_limit
    from sunorecsys.warehouse.sql import QueryRefused, WarehouseQueryError, run_query

    _notes_to_stderr()
    paths = DataPaths.from_env(args.data_dir)
    limit = args.max_rows if args.max_rows is not None else (0 if args.csv else DEFAULT_MAX_ROWS)
    try:
        if limit < 0:
            raise ValueError("--max-rows must be >= 0")
        if not args.timeout >= 0:  # also refuses nan
            raise ValueError("--timeout must be >= 0 seconds (0 = no limit)")
        memory_limit = check_memory_limit(args.memory_limit) if args.memory_limit is not None else None
        query = _read_query(args)
    except ValueError as exc:
        print(f"sunorecsys sql: {exc}", file=sys.stderr)
        return 2
    try:
        # One row more than shown tells us whether the output was cut.
        table = run_query(query, paths, max_rows=None if limit == 0 else limit + 1,
                          timeout_s=args.timeout or None, memory_limit=memory_limit)
    except QueryRefused as exc:
        print(f"sunorecsys sql: {exc}", file=sys.stderr)
        return 2
    except WarehouseQueryError as exc:
        print(f"sunorecsys sql: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sunorecsys sql: interrupted (Ctrl-C): the query was stopped", file=sys.stderr)
        return 130
    more = limit > 0 and table.num_rows > limit
    if more:
        table = table.slice(0, limit)
    if args.csv:
        write_csv(table, sys.stdout)
        if more:
            print(f"(stopped after {limit} rows: --max-rows 0 for all)", file=sys.stderr)
    else:
        print(format_table(table))
        shown = f"{table.num_rows} row{'s' if table.num_rows != 1 else ''}"
        print(f"({shown}; more not shown: --max-rows N, --max-rows 0 for all, or --csv)" if more
              else f"({shown})")
    return 0


def _read_query(args: argparse.Namespace) -> str:
    """The SQL from the argument, ``--file PATH`` or stdin (``-``); ValueError if none or both."""
    source = args.file
    if args.query == "-":
        if source is not None:
            raise ValueError('give the query once: "-" (stdin) or --file, not both')
        source = "-"
    elif args.query is not None:
        if source is not None:
            raise ValueError("give the query once: as an argument or with --file, not both")
        return args.query
    if source is None:
        raise ValueError('no query: give it as an argument, with --file PATH, or "-" to read stdin')
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_QUERY_BYTES + 1)
            where = "stdin"
        else:
            with open(source, "rb") as fh:
                data = fh.read(MAX_QUERY_BYTES + 1)
            where = source
    except OSError as exc:
        raise ValueError(f"cannot read the query file: {exc}") from exc
    if len(data) > MAX_QUERY_BYTES:
        raise ValueError(f"the query in {where} is larger than {MAX_QUERY_BYTES // 1024**2} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the query in {where} is not UTF-8 text: {exc}") from exc


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return value


def format_table(table: pa.Table) -> str:
    """A readable text table (column names as headers, NULL shown as ``NULL``)."""
    from tabulate import tabulate

    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    # Align by the column's SQL type, never by guessing from text (an id like "0012" stays as is).
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
               for t in table.schema.types]
    return tabulate(rows, headers=table.column_names, tablefmt="simple", missingval="NULL",
                    disable_numparse=True, floatfmt="g",
                    colalign=["right" if n else "left" for n in numeric] or None)


def write_csv(table: pa.Table, out) -> None:
    """CSV with a header row; empty field for NULL; lists and structs as JSON."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for batch in table.to_batches(max_chunksize=10_000):
        for row in batch.to_pylist():
            writer.writerow(["" if v is None else _cell(v) for v in row.values()])


def run_views_command(args: argparse.Namespace) -> int:
    from sunorecsys.warehouse.views import build_analyst_views

    paths = DataPaths.from_env(args.data_dir)
    made = build_analyst_views(paths)
    print(f"rebuilt {made['db_path']} in {made['seconds']:.2f} s (data root {made['data_root']})")
    for table, info in made["views"].items():
        print(f"  {table:<16} {info['files']:>5} file(s)  {info['source']}")
    for table, reason in made["skipped"].items():
        print(f"  {table:<16} skipped: {reason}")
    return 0
