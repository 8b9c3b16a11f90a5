"""pyarrow datasets over the warehouse tables: how ``sunorecsys sql`` reads Parquet without DuckDB
touching a file.

Why: the query connection runs with ``enable_external_access = false``, which turns off DuckDB's
own file system (no ``COPY``, ``read_csv``, ``ATTACH``, ``EXPORT``... in any form, however the
statement is dressed up). A pyarrow dataset registered on that connection is read by pyarrow, so
the views still answer. DuckDB pushes a query's column list and filters into the dataset scan:
only the needed columns are decoded, and a filter on ``date`` skips whole partitions.

Each dataset mirrors the ``read_parquet(..., hive_partitioning = true, union_by_name = true)``
view of :mod:`sunorecsys.warehouse.views`: ``date`` comes from the folder name as a DATE (a string
if some folder is not a ``YYYY-MM-DD`` date), and a column missing from older files reads as NULL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sunorecsys.warehouse.views import ViewSource

PARTITION_COLUMN = "date"


def source_files(src: ViewSource) -> list[Path]:
    """The Parquet files behind a view source (its glob expanded; sorted)."""
    if src.source is None:
        return []
    source = Path(src.source)
    if not src.partitioned:
        return [source]
    # ``<table>/date=*/part-0.parquet``: the same glob the DuckDB view uses.
    return sorted(source.parent.parent.glob(f"{source.parent.name}/{source.name}"))


def _is_iso_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def table_dataset(src: ViewSource) -> ds.Dataset:
    """A dataset over ``src``'s files (footers read now; raises ``OSError``/``pa.ArrowException``).

    Columns are the union of every file's columns (types promoted as pyarrow's "permissive"
    unification does, e.g. int32 + int64 -> int64); for partitioned tables ``date`` is the
    partition value of the folder, typed DATE when every folder name is a date.
    """
    files = source_files(src)
    if not files:
        raise FileNotFoundError(f"no Parquet files match {src.source}")
    schema = pa.unify_schemas([pq.read_schema(f) for f in files],
                              promote_options="permissive").remove_metadata()
    paths = [str(f) for f in files]
    if not src.partitioned:
        return ds.dataset(paths, schema=schema, format="parquet")
    base = files[0].parent.parent
    values = [f.parent.name.partition("=")[2] for f in files]
    kind = pa.date32() if all(_is_iso_date(v) for v in values) else pa.string()
    partition = pa.field(PARTITION_COLUMN, kind)
    fields = [f for f in schema if f.name != PARTITION_COLUMN] + [partition]
    return ds.dataset(paths, schema=pa.schema(fields), format="parquet",
                      partitioning=ds.partitioning(pa.schema([partition]), flavor="hive"),
                      partition_base_dir=str(base))
