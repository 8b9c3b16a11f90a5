"""The code location loads, and every asset carries what the UI and the GPU deployment rely on."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from sunorecsys_pipeline.definitions import defs
from sunorecsys_pipeline.partitions import daily_partitions

EXPECTED_GROUPS = {
    "raw_songs": "catalog", "songs": "catalog",
    "audio_checks": "quality", "flamingo_scores": "quality", "audiobox_scores": "quality",
    "quality_scores": "quality", "music_flamingo_scores_file": "quality", "spam_flags": "spam",
    "interactions": "recommender", "hybrid_recommender": "recommender",
    "recommender_evaluation": "recommender", "analyst_views": "recommender",
}
PARTITIONED = {"songs", "audio_checks", "flamingo_scores", "audiobox_scores", "quality_scores", "spam_flags"}
GPU_ASSETS = {"flamingo_scores", "audiobox_scores"}


@pytest.fixture(scope="module")
def repo():
    return defs.get_repository_def()


def _assets(repo) -> dict[str, dg.AssetsDefinition]:
    return {a.key.path[-1]: a for a in repo.assets_defs_by_key.values()}


def test_definitions_load_with_every_asset_job_schedule_and_sensor(repo):
    assert set(_assets(repo)) == set(EXPECTED_GROUPS)
    assert {"pipeline_job", "ingest_job", "daily_scoring_job", "recommender_job"} <= set(repo.job_names)
    schedule = repo.get_schedule_def("nightly_rescoring")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert repo.get_sensor_def("catalogue_files_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    intraday = repo.get_schedule_def("intraday_scoring")
    assert intraday.cron_schedule == "30 * * * *" and intraday.default_status == dg.DefaultScheduleStatus.RUNNING


def test_every_asset_has_description_owner_group_and_the_right_partitions(repo):
    for name, asset in _assets(repo).items():
        key = asset.key
        assert asset.descriptions_by_key[key] and len(asset.descriptions_by_key[key]) > 40, name
        assert "team:recsys" in asset.specs_by_key[key].owners, name
        assert asset.group_names_by_key[key] == EXPECTED_GROUPS[name], name
        assert (asset.partitions_def == daily_partitions) == (name in PARTITIONED), name


def test_model_assets_run_in_the_gpu_pool_with_one_gpu_per_pod_and_retries(repo):
    assets = _assets(repo)
    for name, asset in assets.items():
        op = asset.node_def
        if name in GPU_ASSETS:
            assert op.pool == "gpu", name
            k8s = op.tags["dagster-k8s/config"]
            if isinstance(k8s, str):  # Dagster stores dict op tags as JSON
                import json
                k8s = json.loads(k8s)
            resources = k8s["container_config"]["resources"]
            assert resources["limits"]["nvidia.com/gpu"] == "1"
            assert resources["requests"]["nvidia.com/gpu"] == "1"
            policy = op.retry_policy
            assert policy.max_retries == 2 and policy.backoff == dg.Backoff.EXPONENTIAL and policy.delay > 0
        else:
            assert op.pool is None, name
            assert "dagster-k8s/config" not in op.tags, name


def test_gpu_tags_parse_as_dagster_k8s_container_config(repo):
    # dagster-k8s must match the installed dagster (pyproject pins dagster-k8s>=0.29 for that).
    import dagster_k8s.job as k8s_job
    op = _assets(repo)["flamingo_scores"].node_def
    config = k8s_job.get_user_defined_k8s_config(op.tags)
    assert config.container_config["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_broken_output_checks_block_and_an_outage_only_warns(repo):
    specs = {}
    for asset in _assets(repo).values():
        for spec in asset.check_specs:
            specs[(spec.asset_key.path[-1], spec.name)] = spec.blocking
    assert {name for (asset, name) in specs if asset == "quality_scores"} == {
        "unique_song_ids", "scores_in_range", "songs_accounted_for", "parse_failure_rate", "heard_share"}
    for (asset, name), blocking in specs.items():
        assert blocking == (asset == "quality_scores" and name != "heard_share"), (asset, name)
    assert ("raw_songs", "songs_within_partitions") in specs


def test_partitioned_assets_backfill_a_range_in_one_run(repo):
    for name, asset in _assets(repo).items():
        if name in PARTITIONED:
            assert asset.backfill_policy == dg.BackfillPolicy.single_run(), name


def test_model_assets_say_in_the_ui_that_they_need_weights(repo):
    assets = _assets(repo)
    for name, variable in (("flamingo_scores", "SUNORECSYS_FLAMINGO_MODEL"),
                           ("audiobox_scores", "SUNORECSYS_AUDIOBOX_CHECKPOINT")):
        key = assets[name].key
        assert assets[name].descriptions_by_key[key].startswith(f"Needs model weights: {variable}")
        assert assets[name].specs_by_key[key].metadata["needs_weights"] == variable


def test_partitions_are_daily_utc_from_suno_launch_to_today():
    import datetime as dt

    keys = daily_partitions.get_partition_keys()
    assert keys[0] == "2023-12-01"  # SUNORECSYS_PARTITIONS_START unset: Suno's first public release
    assert "2026-11-14" in keys
    assert keys[-1] == dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")  # today: scored the same day
    assert daily_partitions.timezone == "UTC"


def test_partitions_start_is_a_setting_and_a_bad_one_is_named():
    import os
    import subprocess
    import sys

    code = ("from sunorecsys_pipeline.partitions import daily_partitions as d; "
            "print(d.get_partition_keys()[0])")
    env = {**os.environ, "SUNORECSYS_PARTITIONS_START": "2025-01-01"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.stdout.strip() == "2025-01-01", out.stderr
    env["SUNORECSYS_PARTITIONS_START"] = "January"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0 and "SUNORECSYS_PARTITIONS_START='January'" in bad.stderr


def test_repo_instance_config_serialises_writers_retries_crashes_and_limits_the_gpu_pool(tmp_path, monkeypatch):
    # Two warehouse-writing runs (the schedule's, the sensor's) never interleave: one run with the
    # writer tag at a time; a crashed run is retried once. Load it as Dagster would.

    from sunorecsys_pipeline.jobs import WRITER_TAG

    shutil.copy(Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        queue = instance.get_concurrency_config().run_queue_config
        limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
        assert limits[WRITER_TAG]["limit"] == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert queue.max_concurrent_runs == 2
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_monitoring_settings.get("free_slots_after_run_end_seconds") == 30
