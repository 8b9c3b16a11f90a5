"""A 365-day backfill of 36,500 songs whose audio is missing, in one run (single-run backfill
policy: one step per asset over the partition range), against the baseline of one run per day
measured in the same process on a slice of the same days.

Target (issue 9): < 10 min, every song unscored with its reason (``audio_unavailable: missing``),
the run green. Prints seconds, songs/s, the per-day baseline extrapolated to 365 days, the ratio,
and the machine (shared with other work: figures are indicative, the ratio is what counts).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SELECTION = ["songs", "audio_checks", "quality_scores"]


def write_catalogue(raw: Path, days: list[dt.datetime], per_day: int) -> int:
    from soak_support import song_record

    raw.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(raw / "backfill_songs.jsonl", "w") as out:
        for i, day in enumerate(days):
            for j in range(per_day):
                created = day + dt.timedelta(minutes=(j * 1439) // max(per_day, 1))
                out.write(json.dumps(song_record(f"bf{i:03d}x{j:04d}", created, None, 120.0)) + "\n")
                n += 1
    return n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--songs-per-day", type=int, default=100)
    parser.add_argument("--baseline-days", type=int, default=5, help="days run one run per day (baseline slice)")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="backfill-"))
    os.environ["SUNORECSYS_DATA_DIR"] = str(base / "data")
    os.environ["DAGSTER_HOME"] = str(base / "dagster")
    (base / "dagster").mkdir()
    (base / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    import dagster as dg
    import pandas as pd

    from sunorecsys.paths import DataPaths
    from sunorecsys.warehouse.parquet import read_table
    from sunorecsys_pipeline.assets import ALL_ASSETS
    from sunorecsys_pipeline.jobs import RANGE_END_TAG, RANGE_START_TAG
    from sunorecsys_pipeline.resources import AudioChecksResource, default_resources

    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - dt.timedelta(days=args.days - i) for i in range(args.days)]
    keys = [f"{d:%Y-%m-%d}" for d in days]
    paths = DataPaths(base / "data")
    n = write_catalogue(paths.raw_dir, days, args.songs_per_day)
    resources = default_resources()
    resources["audio_checks_settings"] = AudioChecksResource(workers=min(2, os.cpu_count() or 1), fetch_audio=True)
    print(f"backfill: {args.days} days x {args.songs_per_day} songs = {n} songs, audio missing; "
          f"{os.cpu_count()} cores, machine shared with other work")
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        ok = dg.materialize(ALL_ASSETS, selection=["raw_songs"], resources=resources, instance=instance,
                            run_config=quiet).success
        print(f"  ingest: {time.perf_counter() - started:.1f} s ({'ok' if ok else 'FAILED'})")

        # baseline: one run per day, on a slice
        slice_keys = keys[:args.baseline_days]
        started = time.perf_counter()
        for key in slice_keys:
            dg.materialize(ALL_ASSETS, selection=SELECTION, resources=resources, instance=instance,
                           partition_key=key, run_config=quiet, raise_on_error=True)
        per_day = (time.perf_counter() - started) / len(slice_keys)
        print(f"  baseline, one run per day: {per_day:.2f} s/day on {len(slice_keys)} days "
              f"-> {per_day * len(keys) / 60:.1f} min for {len(keys)} days (extrapolated)")

        # the backfill: every day in one run
        started = time.perf_counter()
        result = dg.materialize(ALL_ASSETS, selection=SELECTION, resources=resources, instance=instance,
                                tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}, run_config=quiet,
                                raise_on_error=False)
        seconds = time.perf_counter() - started
    quality = read_table(paths.warehouse_dir, "quality_scores")
    reasons = quality["unscored_reason"].value_counts().to_dict()
    every = (len(quality) == n and quality["quality_score"].isna().all()
             and set(reasons) == {"audio_unavailable: missing"})
    songs = read_table(paths.warehouse_dir, "songs", columns=["song_id"])
    print(f"  one run, {len(keys)} days: {seconds:.1f} s ({seconds / 60:.1f} min, {n / seconds:.0f} songs/s), "
          f"run {'green' if result.success else 'FAILED'}")
    print(f"  {len(songs)} songs in partitions, {len(quality)} quality rows, reasons {reasons}: "
          f"{'every song unscored with its reason' if every else 'NOT every song accounted for'}")
    print(f"  ratio: one run is {per_day * len(keys) / seconds:.1f}x faster than one run per day "
          f"(target < 10 min: {'met' if seconds < 600 else 'missed'})")
    print(f"  checked rows per day: {pd.Series(quality['date']).value_counts().min()}..."
          f"{pd.Series(quality['date']).value_counts().max()}")
    shutil.rmtree(base, ignore_errors=True)
    return 0 if result.success and every else 1


if __name__ == "__main__":
    sys.exit(main())
