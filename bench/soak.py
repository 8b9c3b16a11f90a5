"""30 simulated nights through a real Dagster deployment (tests/soak_support.py): the run queue, a
real ``dagster-daemon`` process, the catalogue sensor, audio hosts on 127.0.0.1 that refuse and
stall, a large file of older songs, a run killed mid-way, a scorer version bump.

Prints one line per night (runs, recommendation rows, seconds), the ledger (ingested == in
partitions == scored or unscored with a reason), failed runs, and the outage night's cost.
``--days 4 --songs-per-day 3`` is the size tests/test_soak_nights.py runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from soak_support import Soak, SoakPlan


def night_line(n) -> str:
    """One night: runs, refit step seconds, the ledger after it, stale partitions, load average."""
    runs = ", ".join(f"{what}={status}" for _, what, status in n.runs)
    steps = ", ".join(f"{k.replace('hybrid_recommender', 'fit+recs').replace('recommender_evaluation', 'eval')}"
                      f" {v:.0f}s" for k, v in n.steps.items()) or "-"
    c = n.counts
    ledger = (f"ingested {c['ingested']}, in partitions {c['placed']}, scored {c['scored']}, "
              f"unscored with reason {c['unscored_with_reason']}, lost {c['lost']}") if c else "nothing ingested yet"
    stale = "" if n.stale_partitions is None else f"; stale partitions {n.stale_partitions}"
    return (f"  {n.day}: {n.songs} new songs, {n.seconds:.0f} s, runs: {runs}; refit steps: {steps}; {ledger}; "
            f"{n.recommendations} recommendation rows{stale}; load {os.getloadavg()[0]:.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--songs-per-day", type=int, default=10)
    parser.add_argument("--big-file-songs", type=int, default=20000)
    parser.add_argument("--base", default=None, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    base = Path(args.base) if args.base else Path(tempfile.mkdtemp(prefix="soak-"))
    if args.base and base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    d = args.days
    plan = SoakPlan(days=d, songs_per_day=args.songs_per_day, empty_days=(1, d // 2, d - 3) if d >= 8 else (1,),
                    outage_day=min(5, d - 2), big_file_day=min(9, d - 2), big_file_songs=args.big_file_songs,
                    kill_night=min(14, d - 1), version_bump_night=min(20, d - 1))
    started = time.perf_counter()
    print(f"soak: {d} nights, {args.songs_per_day} songs a day, a file of {args.big_file_songs} older songs; "
          f"working folder {base} (machine shared with other work: timings are indicative)")
    with Soak(base, plan, timeout_s=1800) as soak:
        soak.run(on_night=lambda n: print(night_line(n), flush=True))
        print(soak.report())
        ledger = soak.ledger()
        failed = soak.failed_runs()
        print(soak.failure_summary())
    ok_ledger = (set(ledger["placed"]) == ledger["ingested"] == ledger["scored"] | set(ledger["unscored_with_reason"])
                 and len(ledger["placed"]) == len(set(ledger["placed"])))
    print(f"ledger: {len(ledger['ingested'])} ingested, {len(ledger['placed'])} in partitions, "
          f"{len(ledger['scored'])} scored, {len(ledger['unscored_with_reason'])} unscored with a reason "
          f"-> {'no song lost' if ok_ledger else 'SONGS LOST'}")
    print(f"failed runs: {failed} (killed: {soak.killed_run}, its retry: {soak.retry_of_killed})")
    first = next(i for i, n in enumerate(soak.nights) if n.songs)
    empty_recs = [n.day for n in soak.nights[first:] if not n.recommendations]
    print(f"nights with empty recommendations after the first day: {empty_recs or 'none'}")
    outage = soak.nights[plan.outage_day]
    print(f"outage day {outage.day}: {outage.seconds:.0f} s for its sensor run + nightly run "
          f"(a normal day: {sorted(n.seconds for n in soak.nights)[len(soak.nights) // 2]:.0f} s median)")
    print(f"total {time.perf_counter() - started:.0f} s")
    if not args.base:
        shutil.rmtree(base, ignore_errors=True)
    good = ok_ledger and failed == [soak.killed_run] and not empty_recs
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
