"""Parquet tables per partition (the store of record) and DuckDB views for analysts."""

from sunorecsys.warehouse.parquet import (
    partition_path,
    read_table,
    table_glob,
    write_parquet_atomic,
    write_partition,
)

__all__ = ["partition_path", "read_table", "table_glob", "write_parquet_atomic", "write_partition"]
