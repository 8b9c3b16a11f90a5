"""Daily partitions by the UTC day of ``songs.created_at``.

The first day is ``SUNORECSYS_PARTITIONS_START`` (``YYYY-MM-DD``), by default 2023-12-01: Suno's
first public release, so any real Suno catalogue fits without a setting. Set it later to shorten
the partition list in the UI, or earlier for a catalogue with older songs; ``raw_songs`` names the
setting (check ``songs_within_partitions``) when songs fall outside the partitions.

The last partition is **today** (UTC, ``end_offset=1``): a song created today is scored the same
day by the run its catalogue file starts, and rescored at 02:00 after its day closes (see
schedules.py and the README).
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

PARTITIONS_START_VARIABLE = "SUNORECSYS_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2023-12-01"


def _start() -> str:
    value = os.environ.get(PARTITIONS_START_VARIABLE, "").strip() or DEFAULT_PARTITIONS_START
    try:
        dt.datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise ValueError(f"{PARTITIONS_START_VARIABLE}={value!r} is not a date (YYYY-MM-DD)") from exc
    return value


PARTITIONS_START = _start()

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)


def partition_bounds(partition_key: str) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of a daily partition as timezone-aware UTC datetimes."""
    start = dt.datetime.strptime(partition_key, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def partition_key_of(timestamp: dt.datetime) -> str:
    """The partition key ('YYYY-MM-DD') of a timestamp (naive timestamps are taken as UTC)."""
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=dt.UTC)
    return timestamp.astimezone(dt.UTC).strftime("%Y-%m-%d")


def outside_message(days: list[str], n_songs: int) -> str:
    """What to do when ``n_songs`` songs fall on ``days`` (sorted) outside the partitions."""
    keys = daily_partitions.get_partition_keys()
    first, last = (keys[0], keys[-1]) if keys else ("?", "?")
    return (f"{n_songs} songs fall on days outside the partitions {first} .. {last} "
            f"({days[0]} .. {days[-1]}): they cannot be scored until {PARTITIONS_START_VARIABLE} "
            f"(now {PARTITIONS_START}) is set to {min(days[0], first)} or earlier and the code location "
            "reloaded" + ("; days after today are future-dated songs (clock skew in the catalogue)"
                          if days[-1] > last else ""))
