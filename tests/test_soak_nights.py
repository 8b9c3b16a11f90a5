"""A few simulated nights through a real Dagster deployment: its run queue, a real daemon process,
the catalogue sensor, audio hosts on 127.0.0.1 that refuse and stall, a large file of older songs,
a run killed mid-way, a scorer version bump (tests/soak_support.py; 30 nights: bench/soak.py).

At the end: no song lost (ingested == in partitions == scored or unscored with a reason), no failed
run except the killed one (its retry completed), recommendations never empty after the first day
with songs, the partitions of the old scorer version rescored, the outage's songs retried and heard.
"""

from __future__ import annotations

import pytest
from soak_support import Soak, SoakPlan

pytestmark = pytest.mark.slow


def test_nights_of_production_lose_no_song_and_fail_no_run(tmp_path):
    plan = SoakPlan()
    with Soak(tmp_path, plan, timeout_s=420) as soak:
        soak.run()
        print(soak.report())
        ledger = soak.ledger()
        failed = soak.failed_runs()
        failures = soak.failure_summary()
        versions = soak.checks_versions()

    # zero songs lost: every ingested song is in exactly one partition and scored or has a reason
    assert len(ledger["placed"]) == len(set(ledger["placed"]))
    assert set(ledger["placed"]) == ledger["ingested"]
    assert ledger["scored"] | set(ledger["unscored_with_reason"]) == ledger["ingested"]
    assert not ledger["scored"] & set(ledger["unscored_with_reason"])
    n_new = plan.songs_per_day * (plan.days - len(plan.empty_days))
    assert len(ledger["ingested"]) == n_new + plan.big_file_songs

    # every new song was heard in the end: the outage day's songs were retried the next night
    new_ids = {s for s in ledger["ingested"] if not s.startswith("old")}
    assert new_ids <= ledger["scored"]
    # the older songs have no audio anywhere: unscored with that reason, never scored 0
    assert {r for s, r in ledger["unscored_with_reason"].items()} == {"audio_unavailable: missing"}

    # no failed run but the killed one, and its retry completed
    assert soak.killed_run is not None and failed == [soak.killed_run], failures
    assert soak.retry_of_killed not in (None, soak.killed_run)

    # recommendations never empty once the first day's songs are in
    first_with_songs = next(i for i, n in enumerate(soak.nights) if n.songs)
    assert all(n.recommendations > 0 for n in soak.nights[first_with_songs:]), soak.report()

    # the partitions of the old scorer version were rescored
    assert soak.bumped_days
    for day in soak.bumped_days:
        assert "signal-checks/0" not in versions[day], (day, versions[day])
