"""The one Parquet writer: atomic, per partition, with the partition column inside the file.

Layout: ``<warehouse>/<table>/date=YYYY-MM-DD/part-0.parquet`` for daily tables and
``<warehouse>/<table>/part-0.parquet`` for unpartitioned ones. A file is written under a
temporary name in the same folder and renamed, so a reader (or a rerun after a kill) never
sees half a file. Files get the mode the process umask gives (not ``mkstemp``'s 0600).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sunorecsys.fileio import follow_umask

PART_FILE = "part-0.parquet"


def write_parquet_atomic(data: pa.Table | pd.DataFrame, path: str | os.PathLike,
                         schema: pa.Schema | None = None) -> Path:
    """Write ``data`` to ``path`` via a temporary file + rename (atomic on one filesystem)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, pd.DataFrame):
        table = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
    else:
        table = data.cast(schema) if schema is not None else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        follow_umask(tmp)  # mkstemp made it 0600: readers under other accounts need the umask's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def partition_path(warehouse_dir: str | os.PathLike, table: str, partition: str | None = None) -> Path:
    """Path of one partition's file (``partition`` is ``YYYY-MM-DD``; None = unpartitioned)."""
    base = Path(warehouse_dir) / table
    if partition is None:
        return base / PART_FILE
    return base / f"date={partition}" / PART_FILE


def write_partition(data: pa.Table | pd.DataFrame, warehouse_dir: str | os.PathLike, table: str,
                    partition: str | None = None, schema: pa.Schema | None = None) -> Path:
    """Write one partition of ``table``; the ``date`` column is added (as a string) when partitioned."""
    if partition is not None:
        if isinstance(data, pd.DataFrame):
            data = data.assign(date=partition)
        else:
            col = pa.array([partition] * data.num_rows, pa.string())
            if "date" in data.column_names:
                data = data.set_column(data.column_names.index("date"), "date", col)
            else:
                data = data.append_column("date", col)
        if schema is not None and "date" not in schema.names:
            schema = schema.append(pa.field("date", pa.string()))
    return write_parquet_atomic(data, partition_path(warehouse_dir, table, partition), schema=schema)


def table_glob(warehouse_dir: str | os.PathLike, table: str) -> str:
    """A glob over every file of a table, for DuckDB's ``read_parquet(..., hive_partitioning=true)``."""
    base = Path(warehouse_dir) / table
    if (base / PART_FILE).exists():
        return str(base / PART_FILE)
    return str(base / "*" / PART_FILE)


def read_table(warehouse_dir: str | os.PathLike, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read every partition of a table (empty DataFrame when the table has no files yet).

    Temporary files (``.part-0.parquet.*.tmp``) from a killed writer are never matched.
    """
    base = Path(warehouse_dir) / table
    files = sorted(base.glob(PART_FILE)) + sorted(base.glob(f"*/{PART_FILE}"))
    if not files:
        return pd.DataFrame(columns=columns or [])
    frames = [pq.read_table(f, columns=columns).to_pandas() for f in files]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pq.read_table(files[0], columns=columns).to_pandas()
    return pd.concat(frames, ignore_index=True)
