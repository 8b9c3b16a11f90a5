"""Jobs, and the asset selections the schedule and the sensor request.

``pipeline_job`` holds every asset; the schedule and the sensor launch subsets of it
(``RunRequest(asset_selection=..., partition_key=...)``), one run per partition. The three
smaller jobs are the same steps, named for launching by hand in the UI.
"""

from __future__ import annotations

import dagster as dg

INGEST_ASSETS = ["raw_songs"]
MODEL_ASSETS = {"flamingo_scores", "audiobox_scores"}
# the recommender refit; interactions are re-read because new songs make dropped events known
REFIT_ASSETS = ["interactions", "music_flamingo_scores_file", "hybrid_recommender", "recommender_evaluation",
                "analyst_views"]

# Queue order when several runs are requested at once (dagster/priority: higher starts first), so
# ingestion starts before scoring and scoring before the refit.
PRIORITY_INGEST = "30"
PRIORITY_SCORE = "20"
PRIORITY_REFIT = "10"


def scoring_assets(*, flamingo: bool, audiobox: bool, include_songs: bool = True,
                   include_signal: bool = True) -> list[str]:
    """The partitioned assets to run for one partition, in lineage order."""
    keys = (["songs"] if include_songs else []) + (["audio_checks"] if include_signal else [])
    keys += (["flamingo_scores"] if flamingo else []) + (["audiobox_scores"] if audiobox else [])
    return keys + ["quality_scores"]


def asset_keys(names: list[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey(n) for n in names]


pipeline_job = dg.define_asset_job(
    "pipeline_job", selection=dg.AssetSelection.all(),
    description="Every asset; the nightly schedule and the catalogue sensor launch subsets of it.")
ingest_job = dg.define_asset_job("ingest_job", selection=INGEST_ASSETS,
                                 description="Parse and validate the catalogue files in data/raw/.")
daily_scoring_job = dg.define_asset_job(
    "daily_scoring_job", selection=["songs", "audio_checks", "flamingo_scores", "audiobox_scores",
                                    "quality_scores"],
    description="One day's songs through every scorer and the blend (model scorers need weights).")
recommender_job = dg.define_asset_job("recommender_job", selection=REFIT_ASSETS,
                                      description="Refit and evaluate the recommender; rebuild the analyst views.")

JOBS = [pipeline_job, ingest_job, daily_scoring_job, recommender_job]
