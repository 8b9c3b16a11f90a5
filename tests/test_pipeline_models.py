"""The Music Flamingo asset for real (a tiny offline checkpoint whose reply is always the same
parseable JSON): scores land in the partition, a rerun is served from the cache, the blend uses
them, and a new prompt makes the materialized partition stale for the nightly schedule."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest
from pipeline_support import (
    copy_sample,
    materialization_metadata,
    materialize,
    partitions_with_songs,
    pipeline_resources,
)

from sunorecsys.warehouse.parquet import partition_path
from sunorecsys_pipeline.definitions import defs
from sunorecsys_pipeline.resources import MusicFlamingoResource


@pytest.fixture
def scripted_model(request):
    return request.getfixturevalue("tiny_flamingo")[("audioflamingo3", "scripted")]


def test_flamingo_scores_cache_blend_and_staleness(small_catalogue, scripted_model, tmp_path):
    paths = copy_sample(small_catalogue, tmp_path / "data")
    (tmp_path / "dagster").mkdir()
    flamingo = MusicFlamingoResource(model_path=str(scripted_model), device="cpu", batch_size=4,
                                     max_new_tokens=64)
    resources = pipeline_resources(paths, flamingo=flamingo)
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        materialize(["raw_songs"], resources, instance)
        day = partitions_with_songs(paths)[0]
        first = materialize(["songs", "audio_checks", "flamingo_scores", "quality_scores"], resources, instance,
                            partition_key=day)
        songs = pd.read_parquet(partition_path(paths.warehouse_dir, "songs", day))
        scores = pd.read_parquet(partition_path(paths.warehouse_dir, "flamingo_scores", day))
        assert set(scores["song_id"]) == set(songs["song_id"])
        usable = scores[scores["status"] != "failed"]
        assert len(usable) and usable["overall_quality_score"].between(0, 1).all()
        meta = materialization_metadata(first, "flamingo_scores", day)
        assert meta["scored"] == len(usable) and meta["cached"] == 0
        assert meta["failed"] == len(scores) - len(usable)
        quality = pd.read_parquet(partition_path(paths.warehouse_dir, "quality_scores", day))
        assert all("music_flamingo" in s for s in quality.set_index("song_id").loc[usable["song_id"], "sources"])

        # a rerun touches only new or changed songs: here none
        again = materialize(["flamingo_scores"], resources, instance, partition_key=day)
        meta = materialization_metadata(again, "flamingo_scores", day)
        assert meta["cached"] == len(usable) and meta["scored"] == 0

        # the nightly schedule: the partition is current now, and stale once the prompt changes
        schedule = defs.get_repository_def().get_schedule_def("nightly_rescoring")
        night = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC) + dt.timedelta(days=10)

        def stale_days(res) -> str:
            ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=night, resources=res,
                                            repository_def=defs.get_repository_def())
            (request,) = schedule.evaluate_tick(ctx).run_requests  # one run per night
            assert "flamingo_scores" in [k.path[-1] for k in request.asset_selection]
            reason = request.tags["sunorecsys/reason"]
            return reason.split("stale: ")[1].split(";")[0] if "stale: " in reason else ""

        assert stale_days(resources) == ""
        resources["flamingo"] = MusicFlamingoResource(model_path=str(scripted_model), prompt="Rate this song.")
        assert stale_days(resources) == day
