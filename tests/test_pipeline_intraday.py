"""Today's songs are scored the same day: the intraday schedule's ticks evaluated for given times on
a real (temporary) Dagster instance, and its run requests launched as real runs (with the asset
checks they name) on a copy of the small sample catalogue."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pandas as pd
import pytest
from pipeline_support import copy_sample, pipeline_resources

from sunorecsys.warehouse.parquet import partition_path
from sunorecsys_pipeline.definitions import defs

TODAY = "2026-11-14"  # the small sample's last day
INTRADAY_REFIT = ["interactions", "music_flamingo_scores_file", "hybrid_recommender", "analyst_views"]


def _at(hour: int, minute: int = 30, day: int = 14) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)


def _tick(instance, resources, name: str, when: dt.datetime):
    schedule = defs.get_repository_def().get_schedule_def(name)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, resources=resources,
                                        repository_def=defs.get_repository_def())
    return schedule.evaluate_tick(context)


def _launch(instance, resources, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """What the daemon does with the request: the job subset of its assets and named checks, for
    its partition, as one run."""
    job = defs.resolve_job_def("pipeline_job").get_subset(asset_selection=set(request.asset_selection),
                                                      asset_check_selection=set(request.asset_check_keys))
    return job.execute_in_process(instance=instance, resources=resources, partition_key=request.partition_key,
                                  tags=request.tags, raise_on_error=False)


def _quality(paths, day: str) -> pd.DataFrame:
    return pd.read_parquet(partition_path(paths.warehouse_dir, "quality_scores", day))


def _model_ids(paths) -> set[str]:
    from sunorecsys.recommenders.hybrid import HybridRecommender

    return set(HybridRecommender.load(paths.models_dir / "hybrid").songs_.ids.astype(str))


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as inst:
        yield inst


def test_a_song_created_today_is_scored_and_recommendable_within_the_hour(instance, tmp_path, small_catalogue):
    paths = copy_sample(small_catalogue, tmp_path / "data")
    resources = pipeline_resources(paths)
    catalogue = paths.raw_dir / "all_songs.json"
    records = json.loads(catalogue.read_text())
    # the catalogue as it stands at noon: this afternoon's and evening's songs arrive later
    morning = [r for r in records if r["created_at"] < f"{TODAY}T12:00"]
    evening = [r for r in records if r["created_at"] >= f"{TODAY}T12:00"]
    assert morning and evening
    catalogue.write_text(json.dumps(morning))

    # 12:30: nothing ingested yet, the catalogue file is new -> one run for today, without the evaluation
    result = _tick(instance, resources, "intraday_scoring", _at(12))
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    names = [k.path[-1] for k in request.asset_selection]
    assert names == ["raw_songs", "songs", "audio_checks", "quality_scores", *INTRADAY_REFIT]
    # the file also holds yesterday's songs: one range, yesterday to today
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) \
        == ("2026-11-13", TODAY)
    checks = {(k.asset_key.path[-1], k.name) for k in request.asset_check_keys}
    assert ("quality_scores", "songs_accounted_for") in checks and ("quality_scores", "heard_share") in checks
    assert {a for a, _ in checks} <= set(names)
    assert request.tags["sunorecsys/intraday"] == TODAY and "all_songs.json" in request.tags["sunorecsys/reason"]
    run = _launch(instance, resources, request)
    assert run.success
    today_morning = {r["id"] for r in morning if r["created_at"].startswith(TODAY)}
    assert set(_quality(paths, TODAY)["song_id"]) == today_morning
    assert today_morning <= _model_ids(paths)  # recommendable: in the refitted recommender

    # 13:30: nothing new -> the tick skips (no run)
    result = _tick(instance, resources, "intraday_scoring", _at(13))
    assert not result.run_requests and "nothing new" in result.skip_message

    # the evening's songs land in a new file; the 22:30 tick scores them (only them: the morning's
    # songs are reused) and refits
    (paths.raw_dir / "evening.jsonl").write_text("\n".join(json.dumps(r) for r in evening) + "\n")
    request = _tick(instance, resources, "intraday_scoring", _at(22)).run_requests[0]
    assert "evening.jsonl" in request.tags["sunorecsys/reason"] and request.partition_key == TODAY
    run = _launch(instance, resources, request)
    assert run.success
    checks_meta = next(e.event_specific_data.materialization.metadata for e in run.get_asset_materialization_events()
                       if e.event_specific_data.materialization.asset_key == dg.AssetKey("audio_checks"))
    assert checks_meta["checked_now"].value == len(evening)
    quality = _quality(paths, TODAY)
    new_ids = {r["id"] for r in evening}
    assert set(quality["song_id"]) == today_morning | new_ids
    assert quality.loc[quality["song_id"].isin(new_ids), "quality_score"].notna().any()
    assert new_ids <= _model_ids(paths)
    evaluations = [e for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert evaluations and all(e.event_specific_data.passed or
                               e.event_specific_data.severity == dg.AssetCheckSeverity.WARN for e in evaluations)

    # when the day has closed, the nightly run rescores it (with the evaluation)
    nightly = _tick(instance, resources, "nightly_rescoring", dt.datetime(2026, 11, 15, 2, 0, tzinfo=dt.UTC))
    request = nightly.run_requests[0]
    start, end = request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]
    assert start <= TODAY <= end
    assert "recommender_evaluation" in [k.path[-1] for k in request.asset_selection]


def test_intraday_picks_up_a_song_that_missed_its_partition_and_skips_an_empty_catalogue(instance, tmp_path):
    from sunorecsys.paths import DataPaths

    paths = DataPaths(tmp_path / "data")
    resources = pipeline_resources(paths)
    result = _tick(instance, resources, "intraday_scoring", _at(9))
    assert not result.run_requests and "nothing new" in result.skip_message  # no catalogue at all

    # an ingested song of an earlier day that is in no songs partition (a run missed it)
    songs = pd.DataFrame({"song_id": ["late"], "created_at": pd.to_datetime(["2026-11-12T10:00:00Z"])})
    paths.processed_songs.parent.mkdir(parents=True)
    songs.to_parquet(paths.processed_songs)
    request = _tick(instance, resources, "intraday_scoring", _at(9)).run_requests[0]
    assert request.tags["dagster/asset_partition_range_start"] == "2026-11-12"
    assert request.tags["dagster/asset_partition_range_end"] == TODAY
    assert "missed: 2026-11-12" in request.tags["sunorecsys/reason"]
