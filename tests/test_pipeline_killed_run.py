"""A model-scoring run killed half-way (SIGKILL, as an OOM kill or a preempted pod) leaves no partial
Parquet, and the next run resumes from the per-song cache: finished songs are not scored again and
none is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pandas as pd
from pipeline_support import copy_sample, materialization_metadata, materialize, pipeline_resources

from sunorecsys.warehouse.parquet import partition_path, read_table
from sunorecsys_pipeline.resources import MusicFlamingoResource

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import dagster as dg
    from pipeline_support import materialize, pipeline_resources
    from sunorecsys.paths import DataPaths
    from sunorecsys_pipeline.resources import MusicFlamingoResource

    paths = DataPaths(Path({root!r}))
    flamingo = MusicFlamingoResource(model_path={model!r}, device="cpu", batch_size=1, max_new_tokens=64)
    with dg.DagsterInstance.get() as instance:
        materialize(["flamingo_scores"], pipeline_resources(paths, flamingo=flamingo), instance,
                    partition_key={day!r})
""")


def test_killed_scoring_run_leaves_no_partial_parquet_and_the_rerun_resumes(sample_data, request, tmp_path,
                                                                              monkeypatch):
    model = request.getfixturevalue("tiny_flamingo")[("audioflamingo3", "scripted")]
    paths = copy_sample(sample_data, tmp_path / "data")
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    flamingo = MusicFlamingoResource(model_path=str(model), device="cpu", batch_size=1, max_new_tokens=64)
    resources = pipeline_resources(paths, flamingo=flamingo)
    with dg.DagsterInstance.get() as instance:
        materialize(["raw_songs"], resources, instance)
    songs = pd.read_parquet(paths.processed_songs)
    day_counts = songs["created_at"].dt.strftime("%Y-%m-%d").value_counts()
    day = str(day_counts.idxmax())  # the busiest day: the widest window to kill the run in
    day_ids = set(songs.loc[songs["created_at"].dt.strftime("%Y-%m-%d") == day, "song_id"])
    with dg.DagsterInstance.get() as instance:
        materialize(["songs"], resources, instance, partition_key=day)

    script = CHILD.format(tests=str(REPO / "tests"), root=str(paths.root), model=str(model), day=day)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={**os.environ},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    cache = paths.flamingo_cache_dir
    deadline = time.monotonic() + 240
    try:
        while not (cache.exists() and any(cache.glob("*.json"))):
            assert child.poll() is None, "the child ended before scoring anything: " + child.stderr.read().decode()
            assert time.monotonic() < deadline, "no song was scored within the time limit"
            time.sleep(0.02)
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    finished = {p.stem for p in cache.glob("*.json")}
    print(f"killed after {len(finished)} of {len(day_ids)} songs")
    assert finished and finished < day_ids, "the kill must land half-way through the partition"

    # nothing half-written is visible: no partition file yet, and readers never match temporary files
    assert not partition_path(paths.warehouse_dir, "flamingo_scores", day).exists()
    assert read_table(paths.warehouse_dir, "flamingo_scores").empty
    mtimes = {p.stem: p.stat().st_mtime_ns for p in cache.glob("*.json")}

    with dg.DagsterInstance.get() as instance:
        rerun = materialize(["flamingo_scores"], resources, instance, partition_key=day)
    meta = materialization_metadata(rerun, "flamingo_scores", day)
    table = pd.read_parquet(partition_path(paths.warehouse_dir, "flamingo_scores", day))
    assert set(table["song_id"]) == day_ids                      # none lost
    assert meta["cached"] == len(finished)                       # finished songs came from the cache
    assert meta["scored"] + meta["failed"] == len(day_ids) - len(finished)
    assert {s: cache.joinpath(f"{s}.json").stat().st_mtime_ns for s in finished} == \
        {s: mtimes[s] for s in finished}                         # and were not rewritten
