"""Daily partitions by the UTC day of ``songs.created_at``.

The first day comes from ``SUNORECSYS_PARTITIONS_START`` (default 2026-10-01; the sample catalogue
ends 2026-11-14). The last partition is yesterday (UTC): songs created today are scored the next
night, together with the late songs of the two days before (see schedules.py).
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

DEFAULT_PARTITIONS_START = "2026-10-01"
PARTITIONS_START = os.environ.get("SUNORECSYS_PARTITIONS_START", DEFAULT_PARTITIONS_START)

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")


def partition_bounds(partition_key: str) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of a daily partition as timezone-aware UTC datetimes."""
    start = dt.datetime.strptime(partition_key, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def partition_key_of(timestamp: dt.datetime) -> str:
    """The partition key ('YYYY-MM-DD') of a timestamp (naive timestamps are taken as UTC)."""
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=dt.UTC)
    return timestamp.astimezone(dt.UTC).strftime("%Y-%m-%d")
