"""``data/warehouse.duckdb``: a views-only DuckDB file over the Parquet tables, for analysts.

Why views only: DuckDB locks a database file per process, readers included, so the pipeline must
never hold a file analysts read. Parquet is the store of record; this file only holds ``CREATE VIEW``
statements, is rebuilt in well under a second, and is swapped in with ``os.replace``: an analyst who
has the old file open keeps reading the old views undisturbed and nobody ever opens a half-built file.

Decisions (documented in the README's SQL section):

* **Tables without files are skipped and listed**, not given empty views. An empty view would need
  column types guessed before any file exists, and a query against it would silently answer "no
  rows". Instead the view is absent, ``warehouse_tables`` (a constant view in the same file) lists
  it with ``has_view = false`` and the reason, and ``sunorecsys sql`` turns DuckDB's "table does not
  exist" into a message saying which asset to materialize.
* **Views store absolute paths** (the data root resolved at build time). DuckDB resolves relative
  paths in a view against the *process's* working directory, not the database file, so relative
  globs would break as soon as an analyst opened the file from another folder. The cost: when the
  data root moves, the views still point at the old place (they fail with "No files found", or read
  the old copy if it still exists). ``warehouse_tables.data_root`` records the root; ``sunorecsys
  sql`` notices a mismatch and queries fresh in-memory views instead, and ``sunorecsys views`` (or the
  ``analyst_views`` asset) rebuilds the file for the new place.
* **Partitioned tables** are read with ``hive_partitioning = true`` (so ``date`` is a DATE and a
  filter on it skips whole files) and ``union_by_name = true`` (a column added by a newer scorer
  version appears as NULL in older partitions instead of breaking the view).
* A glob is evaluated at query time: partitions written after the build appear without a rebuild.
  Only a table that had no files at build time needs one.

Return value of :func:`build_analyst_views` (used as asset metadata)::

    {"db_path": str, "data_root": str, "built_at": ISO-8601 UTC str, "seconds": float,
     "views": {table: {"source": str, "files": int, "columns": [str, ...]}},
     "skipped": {table: reason}}
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import PART_FILE

# Daily tables (``<table>/date=YYYY-MM-DD/part-0.parquet``) and unpartitioned ones
# (``<table>/part-0.parquet``).
PARTITIONED_TABLES: tuple[str, ...] = ("songs", "audio_checks", "flamingo_scores", "audiobox_scores",
                                       "quality_scores", "spam_flags")
UNPARTITIONED_TABLES: tuple[str, ...] = ("rejected_songs", "interactions", "recommendations", "evaluation",
                                         "spam_flag_history")
ANALYST_TABLES: tuple[str, ...] = PARTITIONED_TABLES + UNPARTITIONED_TABLES
# A constant view describing the others: where each reads from, how many files, or why it is absent.
MANIFEST_VIEW = "warehouse_tables"
# The Dagster asset that writes each table (for "materialize X" hints).
PRODUCING_ASSET: dict[str, str] = {t: t for t in PARTITIONED_TABLES} | {
    "rejected_songs": "raw_songs", "interactions": "interactions",
    "recommendations": "hybrid_recommender", "evaluation": "recommender_evaluation",
    "spam_flag_history": "spam_flags",
}
_GLOB_CHARS = set("*?[]{}")
# Never fetch or auto-load extensions from the network when an analyst query mentions one.
SAFE_CONNECT_CONFIG: dict[str, object] = {"autoinstall_known_extensions": False,
                                          "autoload_known_extensions": False}


@dataclass(frozen=True)
class ViewSource:
    """Where one table's view reads from. ``source`` is an absolute file or glob; None = no files."""

    table: str
    source: str | None
    files: int
    partitioned: bool
    reason: str = ""

    def read_sql(self) -> str:
        """The ``read_parquet(...)`` call the view selects from."""
        if self.source is None:
            raise ValueError(f"table {self.table!r} has no files")
        literal = "'" + self.source.replace("'", "''") + "'"
        if self.partitioned:
            return f"read_parquet({literal}, hive_partitioning = true, union_by_name = true)"
        return f"read_parquet({literal})"


def _check_root(root: Path) -> None:
    # The root becomes part of a glob: a '*' or '[' in it would be read as a pattern.
    bad = sorted(set(str(root)) & _GLOB_CHARS)
    if bad:
        raise ValueError(f"data root {str(root)!r} contains glob characters {''.join(bad)!r}; "
                         "DuckDB views would misread it as a pattern: use a path without them")


def find_view_sources(paths: DataPaths) -> dict[str, ViewSource]:
    """Resolve, for every analyst table, the absolute Parquet file or glob its view reads (or why none).

    Order per table: ``warehouse/<t>/part-0.parquet`` (unpartitioned), then
    ``warehouse/<t>/date=*/part-0.parquet`` (daily), then the processed file the CLI's ``ingest``
    writes (``songs`` and ``rejected_songs`` only), so ``sunorecsys sql`` works after a bare ingest.
    Temporary files of an interrupted writer (``.part-0.parquet.*.tmp``) never match.
    """
    root = Path(paths.root).resolve()
    _check_root(root)
    abs_paths = DataPaths(root)
    fallbacks = {"songs": abs_paths.processed_songs, "rejected_songs": abs_paths.rejected_songs}
    sources: dict[str, ViewSource] = {}
    for table in ANALYST_TABLES:
        base = abs_paths.table_dir(table)
        single = base / PART_FILE
        daily = sorted(base.glob(f"date=*/{PART_FILE}"))
        if single.is_file():
            sources[table] = ViewSource(table, str(single), 1, partitioned=False)
        elif daily:
            sources[table] = ViewSource(table, str(base / "date=*" / PART_FILE), len(daily), partitioned=True)
        elif table in fallbacks and fallbacks[table].is_file():
            sources[table] = ViewSource(table, str(fallbacks[table]), 1, partitioned=False)
        else:
            where = f"{base}/" + ("date=*/" if table in PARTITIONED_TABLES else "") + PART_FILE
            sources[table] = ViewSource(
                table, None, 0, partitioned=table in PARTITIONED_TABLES,
                reason=f"no Parquet files yet at {where} (materialize asset {PRODUCING_ASSET[table]!r})")
    return sources


def create_views(con: duckdb.DuckDBPyConnection, sources: dict[str, ViewSource], *,
                 data_root: str, built_at: str) -> dict:
    """Create one view per table with files, plus the ``warehouse_tables`` manifest view, on ``con``.

    A table whose files DuckDB cannot read (a corrupt footer, clashing types) is skipped with the
    error as its reason: one bad table never takes the others down. Returns the ``views`` and
    ``skipped`` parts of :func:`build_analyst_views`'s result.
    """
    def bind(table: str, src: ViewSource) -> list[str]:
        try:
            # Binding the view reads every file's schema now, so a broken file is caught here.
            con.execute(f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM {src.read_sql()}')
            return [row[0] for row in con.execute(f'DESCRIBE "{table}"').fetchall()]
        except duckdb.Error:
            con.execute(f'DROP VIEW IF EXISTS "{table}"')
            raise

    views, skipped = bind_sources(sources, bind, duckdb.Error)
    create_manifest_view(con, sources, views, skipped, data_root=data_root, built_at=built_at)
    return {"views": views, "skipped": skipped}


def bind_sources(sources: dict[str, ViewSource], bind: Callable[[str, ViewSource], list[str]],
                 errors: type[BaseException] | tuple[type[BaseException], ...]
                 ) -> tuple[dict[str, dict], dict[str, str]]:
    """``bind(table, source) -> columns`` for every table with files: ``(views, skipped)``, where a
    table without files, or whose ``bind`` raised one of ``errors``, is skipped with the reason."""
    views: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for table, src in sources.items():
        if src.source is None:
            skipped[table] = src.reason
            continue
        try:
            columns = bind(table, src)
        except errors as exc:
            skipped[table] = f"unreadable Parquet under {src.source}: {exc}"
            continue
        views[table] = {"source": src.source, "files": src.files, "columns": columns}
    return views, skipped


def create_manifest_view(con: duckdb.DuckDBPyConnection, sources: dict[str, ViewSource], views: dict,
                         skipped: dict[str, str], *, data_root: str, built_at: str) -> None:
    """The constant ``warehouse_tables`` view: per table, whether it has a view, its files, or why not."""

    def lit(value: object) -> str:
        if value is None:
            return "NULL::VARCHAR"
        return "'" + str(value).replace("'", "''") + "'"

    rows = []
    for table, src in sources.items():
        has_view = table in views
        rows.append(f"({lit(table)}, {str(has_view).lower()}, {src.files}, {lit(src.source)}, "
                    f"{lit('' if has_view else skipped[table])}, {lit(data_root)}, "
                    f"TIMESTAMPTZ {lit(built_at)})")
    con.execute(
        f'CREATE OR REPLACE VIEW "{MANIFEST_VIEW}" AS SELECT * FROM (VALUES {", ".join(rows)}) '
        "AS t(table_name, has_view, files, source, reason, data_root, built_at)")


def build_analyst_views(paths: DataPaths) -> dict:
    """Rebuild ``paths.warehouse_db`` (views only) atomically; return what it holds (see module doc).

    The new file is built in a fresh temporary folder beside the target and moved over it with
    ``os.replace``, so the swap is atomic and never waits for (or disturbs) an analyst who has the
    old file open. Takes well under a second: it reads only Parquet footers.
    """
    t0 = time.perf_counter()
    root = Path(paths.root).resolve()
    sources = find_view_sources(paths)
    db = Path(paths.warehouse_db).resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    built_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{db.name}.build-", dir=db.parent))
    try:
        tmp_db = tmp_dir / db.name
        con = duckdb.connect(str(tmp_db))
        try:
            made = create_views(con, sources, data_root=str(root), built_at=built_at)
            con.execute("CHECKPOINT")  # everything in the main file, no .wal left beside it
        finally:
            con.close()
        os.replace(tmp_db, db)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return {"db_path": str(db), "data_root": str(root), "built_at": built_at,
            "seconds": round(time.perf_counter() - t0, 3), **made}


def open_memory_views(paths: DataPaths) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """An in-memory connection holding the same views as a fresh build (nothing written to disk)."""
    con = duckdb.connect(":memory:", config=SAFE_CONNECT_CONFIG)
    built_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    made = create_views(con, find_view_sources(paths), data_root=str(Path(paths.root).resolve()),
                        built_at=built_at)
    return con, made
