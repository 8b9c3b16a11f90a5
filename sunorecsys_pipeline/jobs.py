"""Jobs, and the one-run requests the schedule and the sensor make.

``pipeline_job`` holds every asset. The schedule and the sensor each request **one run** per tick
(:func:`pipeline_run_request`): ingestion, the days to score as one partition range (the
partitioned assets run a range as one step: ``BackfillPolicy.single_run()``), then the refit.
Inside a run Dagster orders the steps by lineage, so scoring starts only after the ingestion that
brought its songs has finished, and the refit only after the day's blocking checks passed (a
failed check skips everything downstream). Every such run carries the tag
:data:`WRITER_TAG`, limited to one run at a time in ``dagster.yaml``, so two of them never write
the warehouse at once. The three smaller jobs are the same steps, named for launching by hand.
"""

from __future__ import annotations

import dagster as dg

INGEST_ASSETS = ["raw_songs"]
MODEL_ASSETS = {"flamingo_scores", "audiobox_scores"}
# the recommender refit; interactions are re-read because new songs make dropped events known
REFIT_ASSETS = ["interactions", "music_flamingo_scores_file", "hybrid_recommender", "recommender_evaluation",
                "analyst_views"]
# The intraday refit: what makes today's songs recommendable, without the offline evaluation (the
# costliest step of a refit; the nightly run evaluates once a day).
INTRADAY_REFIT_ASSETS = [a for a in REFIT_ASSETS if a != "recommender_evaluation"]

# Queue order when several runs are requested at once (dagster/priority: higher starts first), so
# ingestion starts before scoring and scoring before the refit.
PRIORITY_INGEST = "30"
PRIORITY_SCORE = "20"
PRIORITY_REFIT = "10"
# One warehouse-writing run at a time (dagster.yaml: tag_concurrency_limits).
WRITER_TAG = "sunorecsys/writer"
WRITER_VALUE = "warehouse"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def scoring_assets(*, flamingo: bool, audiobox: bool, include_songs: bool = True,
                   include_signal: bool = True) -> list[str]:
    """The partitioned assets to run for one partition, in lineage order."""
    keys = (["songs"] if include_songs else []) + (["audio_checks"] if include_signal else [])
    keys += (["flamingo_scores"] if flamingo else []) + (["audiobox_scores"] if audiobox else [])
    return keys + ["quality_scores"]


def asset_keys(names: list[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey(n) for n in names]


def check_keys(names: list[str]) -> list[dg.AssetCheckKey]:
    """The asset checks of the assets ``names``: a run request that names them lets the UI's
    "Launch all & commit tick result" launch it (a selection without its checks is refused)."""
    from sunorecsys_pipeline.assets import ALL_ASSETS

    wanted = set(asset_keys(names))
    return [spec.key for asset in ALL_ASSETS for spec in asset.check_specs if spec.asset_key in wanted]


def pipeline_run_request(days: list[str], *, flamingo: bool, audiobox: bool, run_key: str, tags: dict[str, str],
                         ingest: bool = True, refit: bool = True,
                         refit_assets: list[str] | None = None) -> dg.RunRequest:
    """One run: ingest (optional), score ``days`` (sorted partition keys) as one range from the first
    to the last, refit (optional; ``refit_assets``, default :data:`REFIT_ASSETS`). Days inside the
    range that needed nothing are cheap: songs already checked are reused, model scores come from
    their caches."""
    refit_names = list(refit_assets if refit_assets is not None else REFIT_ASSETS) if refit else []
    names = (INGEST_ASSETS if ingest else []) + (
        scoring_assets(flamingo=flamingo, audiobox=audiobox) if days else []) + refit_names
    run_tags = {**tags, WRITER_TAG: WRITER_VALUE}
    if len(days) == 1:
        return dg.RunRequest(run_key=run_key, partition_key=days[0], asset_selection=asset_keys(names),
                             asset_check_keys=check_keys(names), tags=run_tags)
    if days:
        run_tags |= {RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]}
    return dg.RunRequest(run_key=run_key, asset_selection=asset_keys(names), asset_check_keys=check_keys(names),
                         tags=run_tags)


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
