"""The nightly schedule's run requests and the catalogue sensor, evaluated on a real (temporary)
Dagster instance with the code location's own definitions."""

from __future__ import annotations

import datetime as dt
import json
import os

import dagster as dg
import pandas as pd
import pytest
from pipeline_support import pipeline_resources

from sunorecsys.audio.checks import CHECKS_VERSION
from sunorecsys.paths import DataPaths
from sunorecsys_pipeline.definitions import defs
from sunorecsys_pipeline.resources import AudioboxResource, MusicFlamingoResource
from sunorecsys_pipeline.versions import recorded_versions, version_digest, version_tags

NIGHT = dt.datetime(2026, 11, 15, 2, 0, tzinfo=dt.UTC)
RECENT = ["2026-11-13", "2026-11-14", "2026-11-15"]  # the last three days; today's partition included
REFIT = ["interactions", "music_flamingo_scores_file", "hybrid_recommender", "recommender_evaluation",
         "analyst_views"]


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as inst:
        yield inst


def _record(instance, asset: str, partition: str, version: str) -> None:
    """A materialization of ``asset``/``partition`` stamped with ``version``, as the assets record it."""
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=asset, partition=partition, tags=version_tags(version)))


def _tick(instance, resources) -> dg.RunRequest:
    schedule = defs.get_repository_def().get_schedule_def("nightly_rescoring")
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=NIGHT, resources=resources,
                                        repository_def=defs.get_repository_def())
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert len(requests) == 1, "one run per night"
    return requests[0]


def _names(request: dg.RunRequest) -> list[str]:
    return [k.path[-1] for k in request.asset_selection]


def _range(request: dg.RunRequest) -> tuple[str, str]:
    return (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"])


def _audiobox_checkpoint(tmp_path, content: bytes) -> AudioboxResource:
    path = tmp_path / "audiobox" / "checkpoint.pt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return AudioboxResource(checkpoint_path=str(path))


def test_nightly_is_one_run_ingest_then_the_recent_days_then_the_refit_naming_its_checks(instance, tmp_path):
    request = _tick(instance, pipeline_resources(DataPaths(tmp_path / "data")))
    # no model weights configured: the signal path only; Dagster orders the steps by lineage
    assert _names(request) == ["raw_songs", "songs", "audio_checks", "quality_scores", *REFIT]
    assert _range(request) == (RECENT[0], RECENT[-1])
    checks = {(k.asset_key.path[-1], k.name) for k in request.asset_check_keys}
    assert ("quality_scores", "songs_accounted_for") in checks and ("raw_songs", "songs_within_partitions") in checks
    assert {a for a, _ in checks} <= set(_names(request))  # every check of the selection, no other
    assert request.tags["sunorecsys/nightly"] == "2026-11-15" and request.tags["sunorecsys/writer"] == "warehouse"
    assert request.run_key == "nightly-2026-11-15"
    assert "stale" not in request.tags["sunorecsys/reason"]


def test_the_nightly_run_request_launches_with_its_checks(instance, tmp_path):
    """What the UI's "Launch all & commit tick result" does: the request's selection + checks must
    form a valid subset of the job (a selection without its checks was refused before)."""
    request = _tick(instance, pipeline_resources(DataPaths(tmp_path / "data")))
    job = defs.resolve_job_def("pipeline_job")
    subset = job.get_subset(asset_selection=set(request.asset_selection),
                            asset_check_selection=set(request.asset_check_keys))
    assert {k.path[-1] for k in subset.asset_layer.selected_asset_keys} == set(_names(request))


def test_nightly_extends_its_range_to_partitions_whose_stored_scorer_version_differs(instance, tmp_path):
    resources = pipeline_resources(DataPaths(tmp_path / "data"))
    resources["audiobox"] = _audiobox_checkpoint(tmp_path, b"weights v1")
    v1 = resources["audiobox"].current_version(DataPaths(tmp_path / "data"))
    for day in ("2026-10-20", "2026-10-21", "2026-11-13"):
        _record(instance, "audiobox_scores", day, v1)
        _record(instance, "audio_checks", day, CHECKS_VERSION)
    assert recorded_versions(instance, "audiobox_scores") == {d: version_digest(v1) for d in ("2026-10-20", "2026-10-21",
                                                                              "2026-11-13")}
    request = _tick(instance, resources)
    assert _range(request) == (RECENT[0], RECENT[-1])  # nothing stale
    assert "audiobox_scores" in _names(request)  # weights configured: the model scorer joins
    _record(instance, "audio_checks", "2026-10-05", "signal-checks/0")  # an older signal-checks version
    request = _tick(instance, resources)
    assert _range(request) == ("2026-10-05", RECENT[-1]) and "stale: 2026-10-05" in request.tags["sunorecsys/reason"]

    # a new checkpoint: every partition scored with the old one is stale
    resources["audiobox"] = _audiobox_checkpoint(tmp_path, b"weights v2")
    reason = _tick(instance, resources).tags["sunorecsys/reason"]
    assert "stale: 2026-10-05,2026-10-20,2026-10-21,2026-11-13" in reason


def test_nightly_retries_unheard_songs_until_the_give_up_age_and_picks_up_missed_songs(instance, tmp_path):
    from sunorecsys.audio.checks import failed_row
    from sunorecsys.warehouse.parquet import write_partition

    paths = DataPaths(tmp_path / "data")
    resources = pipeline_resources(paths)
    for day, reason in (("2026-11-10", "fetch_failed"), ("2026-11-01", "host_down"), ("2026-11-11", None)):
        row = failed_row("s-" + day, reason or "unreadable", "", 10.0)
        write_partition(pd.DataFrame([row]), paths.warehouse_dir, "audio_checks", day)
    request = _tick(instance, resources)
    # 2026-11-10 is 5 days old at the night: retried; 2026-11-01 is past the 7-day give-up age; the
    # unreadable song of 2026-11-11 was heard (broken audio is a defect, not an outage)
    assert _range(request) == ("2026-11-10", RECENT[-1])
    assert "retry: 2026-11-10" in request.tags["sunorecsys/reason"]

    # a song ingested but in no songs partition (a run missed it): its day joins the next tick
    songs = pd.DataFrame({"song_id": ["late", "placed"],
                          "created_at": pd.to_datetime(["2026-11-02T10:00:00Z", "2026-11-12T10:00:00Z"])})
    paths.processed_songs.parent.mkdir(parents=True)
    songs.to_parquet(paths.processed_songs)
    write_partition(songs.iloc[[1]], paths.warehouse_dir, "songs", "2026-11-12")
    request = _tick(instance, resources)
    assert _range(request) == ("2026-11-02", RECENT[-1]) and "missed: 2026-11-02" in request.tags["sunorecsys/reason"]


def test_a_new_prompt_or_model_id_makes_flamingo_partitions_stale(instance, tmp_path):
    paths = DataPaths(tmp_path / "data")
    model_dir = tmp_path / "flamingo"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    resources = pipeline_resources(paths, flamingo=MusicFlamingoResource(model_path=str(model_dir)))
    v1 = resources["flamingo"].current_version(paths)
    _record(instance, "flamingo_scores", "2026-10-10", v1)
    assert "stale" not in _tick(instance, resources).tags["sunorecsys/reason"]

    resources["flamingo"] = MusicFlamingoResource(model_path=str(model_dir), prompt="Rate this track.")
    assert resources["flamingo"].current_version(paths) != v1
    request = _tick(instance, resources)
    assert "stale: 2026-10-10" in request.tags["sunorecsys/reason"] and "flamingo_scores" in _names(request)
    assert _range(request) == ("2026-10-10", RECENT[-1])


# --- the catalogue sensor ---

def _sensor_tick(instance, resources, cursor):
    sensor = defs.get_repository_def().get_sensor_def("catalogue_files_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources,
                                      repository_def=defs.get_repository_def())
    result = sensor.evaluate_tick(context)
    return list(result.run_requests or []), result.cursor, result.skip_message


def test_sensor_fires_once_per_catalogue_file_version(instance, tmp_path):
    from sunorecsys.sample.catalogue import generate_sample_catalogue

    paths = DataPaths(tmp_path / "data")
    generate_sample_catalogue(paths.root, n_songs=12, days=3, with_audio=False)
    resources = pipeline_resources(paths)
    catalogue = paths.raw_dir / "all_songs.json"
    records = json.loads(catalogue.read_text())
    days = sorted({r["created_at"][:10] for r in records})

    requests, cursor, _ = _sensor_tick(instance, resources, None)
    assert len(requests) == 1  # one run: ingest, the days the file touched, the refit
    assert _names(requests[0]) == ["raw_songs", "songs", "audio_checks", "quality_scores", *REFIT]
    assert _range(requests[0]) == (days[0], days[-1])
    assert requests[0].asset_check_keys
    # the interactions file is not a catalogue file
    assert "interactions.csv" not in cursor and "all_songs.json" in cursor

    requests, cursor2, skip = _sensor_tick(instance, resources, cursor)
    assert requests == [] and "no new or changed" in skip

    # touched (a new version of the same file): fires again, with new run keys
    st = catalogue.stat()
    os.utime(catalogue, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again, cursor3, _ = _sensor_tick(instance, resources, cursor2)
    assert _range(again[0]) == (days[0], days[-1])
    assert not {r.run_key for r in again} & {r.run_key for r in requests}

    # a new file with the songs of one day: ingestion and that day only
    one_day = [r for r in records if r["created_at"].startswith(days[0])]
    (paths.raw_dir / "late_songs.jsonl").write_text("\n".join(json.dumps(r) for r in one_day) + "\n")
    new, _, _ = _sensor_tick(instance, resources, cursor3)
    assert len(new) == 1 and new[0].partition_key == days[0]
    assert "late_songs.jsonl" in new[0].tags["sunorecsys/catalogue_files"]


def test_sensor_first_tick_skips_files_already_ingested(instance, tmp_path):
    from sunorecsys.sample.catalogue import generate_sample_catalogue

    paths = DataPaths(tmp_path / "data")
    generate_sample_catalogue(paths.root, n_songs=6, days=2, with_audio=False)
    catalogue = paths.raw_dir / "all_songs.json"
    old = catalogue.stat().st_mtime_ns - 3_600_000_000_000  # written an hour before ...
    os.utime(catalogue, ns=(old, old))
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="raw_songs"))  # ... it was ingested
    requests, cursor, _ = _sensor_tick(instance, pipeline_resources(paths), None)
    assert requests == [] and "all_songs.json" in cursor
    os.utime(catalogue)  # rewritten after the ingestion: fires
    assert _sensor_tick(instance, pipeline_resources(paths), cursor)[0]
