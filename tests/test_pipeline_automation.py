"""The nightly schedule's run requests and the catalogue sensor, evaluated on a real (temporary)
Dagster instance with the code location's own definitions."""

from __future__ import annotations

import datetime as dt
import json
import os

import dagster as dg
import pytest
from pipeline_support import pipeline_resources

from sunorecsys.audio.checks import CHECKS_VERSION
from sunorecsys.paths import DataPaths
from sunorecsys_pipeline.definitions import defs
from sunorecsys_pipeline.resources import AudioboxResource, MusicFlamingoResource
from sunorecsys_pipeline.versions import recorded_versions, version_digest, version_tags

NIGHT = dt.datetime(2026, 11, 15, 2, 0, tzinfo=dt.UTC)
RECENT = ["2026-11-12", "2026-11-13", "2026-11-14"]


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as inst:
        yield inst


def _record(instance, asset: str, partition: str, version: str) -> None:
    """A materialization of ``asset``/``partition`` stamped with ``version``, as the assets record it."""
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=asset, partition=partition, tags=version_tags(version)))


def _tick(instance, resources) -> list[dg.RunRequest]:
    schedule = defs.get_repository_def().get_schedule_def("nightly_rescoring")
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=NIGHT, resources=resources,
                                        repository_def=defs.get_repository_def())
    return list(schedule.evaluate_tick(context).run_requests)


def _by_reason(requests) -> dict[str, list[dg.RunRequest]]:
    out: dict[str, list[dg.RunRequest]] = {}
    for r in requests:
        out.setdefault(r.tags["sunorecsys/reason"].split(":")[0], []).append(r)
    return out


def _names(request: dg.RunRequest) -> list[str]:
    return [k.path[-1] for k in request.asset_selection]


def _audiobox_checkpoint(tmp_path, content: bytes) -> AudioboxResource:
    path = tmp_path / "audiobox" / "checkpoint.pt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return AudioboxResource(checkpoint_path=str(path))


def test_nightly_ingests_scores_the_last_three_days_and_refits_in_priority_order(instance, tmp_path):
    requests = _tick(instance, pipeline_resources(DataPaths(tmp_path / "data")))
    reasons = _by_reason(requests)
    assert [_names(r) for r in reasons["ingest"]] == [["raw_songs"]]
    assert [r.partition_key for r in reasons["recent"]] == RECENT
    for r in reasons["recent"]:
        # no model weights configured: the signal path only
        assert _names(r) == ["songs", "audio_checks", "quality_scores"]
    assert "stale" not in reasons
    assert _names(reasons["refit"][0]) == ["interactions", "music_flamingo_scores_file", "hybrid_recommender",
                                           "recommender_evaluation", "analyst_views"]
    priority = {k: int(v[0].tags["dagster/priority"]) for k, v in reasons.items()}
    assert priority["ingest"] > priority["recent"] > priority["refit"]
    assert len({r.run_key for r in requests}) == len(requests)
    assert all(r.tags["sunorecsys/nightly"] == "2026-11-15" for r in requests)


def test_nightly_rescores_partitions_whose_stored_scorer_version_differs(instance, tmp_path):
    resources = pipeline_resources(DataPaths(tmp_path / "data"))
    resources["audiobox"] = _audiobox_checkpoint(tmp_path, b"weights v1")
    v1 = resources["audiobox"].current_version(DataPaths(tmp_path / "data"))
    for day in ("2026-10-20", "2026-10-21", "2026-11-13"):
        _record(instance, "audiobox_scores", day, v1)
        _record(instance, "audio_checks", day, CHECKS_VERSION)
    _record(instance, "audio_checks", "2026-10-05", "signal-checks/0")  # an older signal-checks version
    assert recorded_versions(instance, "audiobox_scores") == {d: version_digest(v1) for d in ("2026-10-20", "2026-10-21",
                                                                              "2026-11-13")}

    reasons = _by_reason(_tick(instance, resources))
    assert [(r.partition_key, _names(r)) for r in reasons["stale"]] == [
        ("2026-10-05", ["audio_checks", "quality_scores"])]
    for r in reasons["recent"]:  # weights configured: the model scorer joins the recent days
        assert _names(r) == ["songs", "audio_checks", "audiobox_scores", "quality_scores"]

    # a new checkpoint: every partition scored with the old one is stale (the recent days run anyway)
    resources["audiobox"] = _audiobox_checkpoint(tmp_path, b"weights v2")
    reasons = _by_reason(_tick(instance, resources))
    stale = {r.partition_key: _names(r) for r in reasons["stale"]}
    assert stale == {"2026-10-05": ["audio_checks", "quality_scores"],
                     "2026-10-20": ["audiobox_scores", "quality_scores"],
                     "2026-10-21": ["audiobox_scores", "quality_scores"]}
    assert "audiobox_scores" in reasons["stale"][1].tags["sunorecsys/reason"]


def test_a_new_prompt_or_model_id_makes_flamingo_partitions_stale(instance, tmp_path):
    paths = DataPaths(tmp_path / "data")
    model_dir = tmp_path / "flamingo"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    resources = pipeline_resources(paths, flamingo=MusicFlamingoResource(model_path=str(model_dir)))
    v1 = resources["flamingo"].current_version(paths)
    _record(instance, "flamingo_scores", "2026-10-10", v1)
    assert "stale" not in _by_reason(_tick(instance, resources))

    resources["flamingo"] = MusicFlamingoResource(model_path=str(model_dir), prompt="Rate this track.")
    assert resources["flamingo"].current_version(paths) != v1
    stale = _by_reason(_tick(instance, resources))["stale"]
    assert [(r.partition_key, _names(r)) for r in stale] == [("2026-10-10", ["flamingo_scores", "quality_scores"])]


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
    assert [_names(r) for r in requests if r.partition_key is None] == [["raw_songs"]]
    assert sorted(r.partition_key for r in requests if r.partition_key) == days
    # the interactions file is not a catalogue file
    assert "interactions.csv" not in cursor and "all_songs.json" in cursor

    requests, cursor2, skip = _sensor_tick(instance, resources, cursor)
    assert requests == [] and "no new or changed" in skip

    # touched (a new version of the same file): fires again, with new run keys
    st = catalogue.stat()
    os.utime(catalogue, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again, cursor3, _ = _sensor_tick(instance, resources, cursor2)
    assert sorted(r.partition_key for r in again if r.partition_key) == days
    assert not {r.run_key for r in again} & {r.run_key for r in requests}

    # a new file with the songs of one day: ingestion and that day only
    one_day = [r for r in records if r["created_at"].startswith(days[0])]
    (paths.raw_dir / "late_songs.jsonl").write_text("\n".join(json.dumps(r) for r in one_day) + "\n")
    new, _, _ = _sensor_tick(instance, resources, cursor3)
    assert [r.partition_key for r in new] == [None, days[0]]
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
