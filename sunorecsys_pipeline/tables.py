"""Typed daily tables: an empty day writes the same Arrow schema as a full one, and a partition
that fails its blocking checks is written aside instead of replacing the last good one.

Each partitioned asset handles a range of days in one step (single-run backfills): these helpers
read and write one day at a time inside that step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from sunorecsys.catalog.schema import SONGS_SCHEMA
from sunorecsys.catalog.song_context import SONG_CONTEXT_COLUMNS
from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import partition_path, write_partition

# Where a partition that failed its blocking checks is kept for inspection (outside the table's
# folder, so no reader ever globs it). The last good partition stays in place.
REJECTED_DIR = "_rejected"

_CONTEXT_FIELDS = [SONGS_SCHEMA.field(c) for c in SONG_CONTEXT_COLUMNS]


def with_context(schema: pa.Schema) -> pa.Schema:
    """``schema`` plus the song context columns (catalog/song_context.py) it lacks."""
    for field in _CONTEXT_FIELDS:
        if field.name not in schema.names:
            schema = schema.append(field.with_nullable(True))
    return schema


def schema_of(frame: pd.DataFrame, list_columns: Iterable[str] = (), known: pa.Schema | None = None) -> pa.Schema:
    """An Arrow schema for ``frame`` that does not depend on its rows.

    Types come from ``known`` first, then ``list_columns`` (list<string>), then the pandas dtype:
    float -> float64, bool -> bool, integer -> int64, tz-aware datetime -> timestamp[us, UTC],
    anything else (object) -> string. Pandas infers ``null`` for an all-None object column; this
    never does, so every day's file reads back with the same types.
    """
    lists = set(list_columns)
    fields = []
    for name, dtype in frame.dtypes.items():
        if known is not None and name in known.names:
            fields.append(known.field(name))
        elif name in lists:
            fields.append(pa.field(name, pa.list_(pa.string())))
        elif pd.api.types.is_bool_dtype(dtype):
            fields.append(pa.field(name, pa.bool_()))
        elif pd.api.types.is_float_dtype(dtype):
            fields.append(pa.field(name, pa.float64()))
        elif pd.api.types.is_integer_dtype(dtype):
            fields.append(pa.field(name, pa.int64()))
        elif isinstance(dtype, pd.DatetimeTZDtype):
            fields.append(pa.field(name, pa.timestamp("us", tz="UTC")))
        else:
            fields.append(pa.field(name, pa.string()))
    return pa.schema(fields)


def _typed(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``frame`` as an Arrow table of ``schema`` (without ``date``); an empty frame gives the
    schema's empty table, whatever dtypes pandas gave its empty columns."""
    schema = pa.schema([f for f in schema if f.name != "date"])
    if not len(frame):
        return schema.empty_table()
    frame = frame.assign(**{c: None for c in schema.names if c not in frame.columns})
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def write_day(frame: pd.DataFrame, paths: DataPaths, table: str, day: str, schema: pa.Schema) -> Path:
    """Write one day of ``table`` with ``schema`` (columns of ``frame`` not in it are dropped)."""
    return write_partition(_typed(frame, schema), paths.warehouse_dir, table, day)


def write_aside(frame: pd.DataFrame, paths: DataPaths, table: str, day: str, schema: pa.Schema) -> Path:
    """Write a day that failed its blocking checks under ``<warehouse>/_rejected/`` (see REJECTED_DIR)."""
    return write_partition(_typed(frame, schema), paths.warehouse_dir / REJECTED_DIR, table, day)


def read_days(paths: DataPaths, table: str, days: Sequence[str], columns: list[str] | None = None
              ) -> dict[str, pd.DataFrame]:
    """``{day: frame}`` for the days of ``table`` that have a file (the others are absent)."""
    out = {}
    for day in days:
        path = partition_path(paths.warehouse_dir, table, day)
        if path.exists():
            out[day] = pd.read_parquet(path, columns=columns)
    return out
