"""Recommender assets: the fitted hybrid recommender (+ a recommendations table) and its evaluation."""


import time

import dagster as dg
import pandas as pd

from sunorecsys.warehouse.parquet import read_table, write_partition
from sunorecsys_pipeline.assets.catalog import interactions, songs
from sunorecsys_pipeline.assets.common import OWNERS
from sunorecsys_pipeline.assets.quality import music_flamingo_scores_file, quality_scores
from sunorecsys_pipeline.assets.spam import spam_flags
from sunorecsys_pipeline.checks import EVALUATION_CHECKS, fusion_vs_baselines
from sunorecsys_pipeline.metadata import png_md, preview_md, table_metadata
from sunorecsys_pipeline.resources import DataRootResource

MODEL_DIR_NAME = "hybrid"
RECOMMENDATIONS_PER_SONG = 10
EVALUATION_K = 10
SPAM_EXPOSURE_SEEDS = 500  # seed songs re-run without the spam policy to count what it removed


class HybridRecommenderConfig(dg.Config):
    """Channel weights (None = learned from the log at fit time) and the quality threshold."""

    item_cf_weight: float | None = None
    item_content_weight: float | None = None
    prompt_weight: float | None = None
    user_weight: float | None = None
    quality_weight: float | None = None
    quality_threshold: float = 0.4
    use_quality_filter: bool = True
    recommendations_per_song: int = RECOMMENDATIONS_PER_SONG


def _params(config: HybridRecommenderConfig) -> dict:
    """HybridRecommender constructor arguments from the run config."""
    return {"item_cf_weight": config.item_cf_weight, "item_content_weight": config.item_content_weight,
            "prompt_weight": config.prompt_weight, "user_weight": config.user_weight,
            "quality_weight": config.quality_weight, "quality_threshold": config.quality_threshold,
            "use_quality_filter": config.use_quality_filter}


def _songs_frame(paths) -> pd.DataFrame:
    frame = read_table(paths.warehouse_dir, "songs")
    if not len(frame):
        raise dg.Failure(description="the songs table is empty: materialize raw_songs and songs first",
                         allow_retries=False)
    return frame.drop(columns=["date"], errors="ignore")


def recommendation_rows(recommender, song_ids: list[str], n: int) -> pd.DataFrame:
    """Top-``n`` recommendations for each seed song, one row per (seed, rank).

    The same rows as ``recommender.recommend(song_ids=[seed], n=n)`` per seed, computed for blocks
    of seeds at once (``sunorecsys.recommenders.batch``): 20,000 seeds one call each took 276 s.
    """
    from sunorecsys.recommenders.batch import recommend_seeds

    return recommend_seeds(recommender, song_ids, n)


@dg.asset(
    group_name="recommender", owners=OWNERS, kinds={"python", "numpy"}, code_version="hybrid/1",
    deps=[songs, quality_scores, music_flamingo_scores_file, interactions, spam_flags],
    description="The HybridRecommender (item CF, item content, prompt, user/creator and quality "
                "channels; quality threshold applied) fitted on the Parquet tables and saved to "
                "data/models/hybrid (arrays + JSON manifest, no pickle). Also writes the "
                "recommendations table: the top 10 for every song, for analysts.",
)
def hybrid_recommender(context: dg.AssetExecutionContext, config: HybridRecommenderConfig,
                       data_root: DataRootResource) -> dg.MaterializeResult:
    from sunorecsys.recommenders.hybrid import HybridRecommender

    paths = data_root.paths
    if not len(read_table(paths.warehouse_dir, "songs", columns=["song_id"])):
        # nothing ingested yet (the first days were empty): nothing to fit, the run is still good
        context.log.info("no songs yet: nothing to fit")
        return dg.MaterializeResult(metadata={"songs": dg.MetadataValue.int(0),
                                              "note": dg.MetadataValue.text("no songs yet: not fitted")})
    song_rows = _songs_frame(paths)
    events = read_table(paths.warehouse_dir, "interactions")
    if not paths.flamingo_scores_file.exists():
        raise dg.Failure(description=f"{paths.flamingo_scores_file} is missing: materialize "
                                     "music_flamingo_scores_file first", allow_retries=False)
    recommender = HybridRecommender(**_params(config))
    started = time.perf_counter()
    recommender.fit(song_rows, quality_scores_file=str(paths.flamingo_scores_file),
                    interactions=events.drop(columns=["date"], errors="ignore"),
                    spam_flags=read_table(paths.warehouse_dir, "spam_flags", columns=["song_id", "flagged"]))
    fit_seconds = time.perf_counter() - started
    model_dir = paths.models_dir / MODEL_DIR_NAME
    recommender.save(model_dir)
    recs = recommendation_rows(recommender, song_rows["song_id"].tolist(), config.recommendations_per_song)
    recs_path = write_partition(recs, paths.warehouse_dir, "recommendations")
    from sunorecsys.evaluation.spam_exposure import spam_exposure

    exposure = spam_exposure(recommender, song_rows["song_id"].tolist()[:SPAM_EXPOSURE_SEEDS],
                             k=config.recommendations_per_song)
    seeds_with_recs = int(recs["seed_song_id"].nunique()) if len(recs) else 0
    channel_counts = recs.explode("channels")["channels"].value_counts() if len(recs) else pd.Series(dtype=int)
    coverage = pd.DataFrame({
        "channel": channel_counts.index,
        "recommendations": channel_counts.to_numpy(),
        "share": (channel_counts / max(len(recs), 1)).round(3).to_numpy(),
    })
    context.log.info(f"fitted on {len(song_rows)} songs and {len(events)} events in {fit_seconds:.1f} s; "
                     f"saved to {model_dir}")
    return dg.MaterializeResult(metadata={
        "model_dir": dg.MetadataValue.path(str(model_dir)),
        "songs": dg.MetadataValue.int(len(song_rows)),
        "interactions": dg.MetadataValue.int(len(events)),
        "fit_seconds": dg.MetadataValue.float(round(fit_seconds, 3)),
        "recommendations_path": dg.MetadataValue.path(str(recs_path)),
        "dagster/row_count": dg.MetadataValue.int(len(recs)),
        "seeds_with_recommendations": dg.MetadataValue.int(seeds_with_recs),
        "catalogue_coverage": dg.MetadataValue.float(
            round(recs["song_id"].nunique() / max(len(song_rows), 1), 4) if len(recs) else 0.0),
        "channel_coverage": dg.MetadataValue.md(coverage.to_markdown(index=False) if len(coverage) else "_(none)_"),
        "preview": preview_md(recs),
        "flagged_recommended_without_spam_filter": dg.MetadataValue.json(exposure),
    })


def evaluate(paths, config: HybridRecommenderConfig) -> tuple[pd.DataFrame, bytes | None, dict, pd.DataFrame]:
    """Metrics table (one row per protocol and variant), the trade-off plot (PNG), extra metadata, comparisons."""
    from sunorecsys.evaluation import evaluate_recommender

    song_rows = _songs_frame(paths)
    events = read_table(paths.warehouse_dir, "interactions").drop(columns=["date"], errors="ignore")
    if not len(events):
        raise dg.Failure(description="no listening events: materialize interactions first (and put a log in "
                                     f"{paths.raw_dir}/interactions.csv)", allow_retries=False)
    plot_path = paths.models_dir / "evaluation" / "quality_tradeoff.png"
    report = evaluate_recommender(
        song_rows, events, quality_scores_file=paths.flamingo_scores_file if paths.flamingo_scores_file.exists()
        else None, k=EVALUATION_K, params=_params(config), plot_path=plot_path)
    table = pd.concat(list(report.tables.values()), ignore_index=True)
    table.insert(0, "evaluated_at", pd.Timestamp.now(tz="UTC"))
    table["split_time"] = pd.Timestamp(report.split_time)
    table["k"] = EVALUATION_K
    plot = report.plot_path.read_bytes() if report.plot_path is not None and report.plot_path.exists() else None
    extra = {
        "users": dg.MetadataValue.int(int(report.n_users)),
        # a seeded sample of at most DEFAULT_MAX_USERS listeners per protocol; the paired bootstrap
        # intervals below are computed on that sample
        "judged_users": dg.MetadataValue.json(report.details.get("judged_users", {})),
        "split_time": dg.MetadataValue.text(str(report.split_time)),
        "train_events": dg.MetadataValue.int(int(report.details.get("train_events", 0))),
        "test_events": dg.MetadataValue.int(int(report.details.get("test_events", 0))),
        "threshold_sweep": dg.MetadataValue.md(report.sweep.round(4).to_markdown(index=False)),
        "plot_path": dg.MetadataValue.path(str(plot_path)),
        "fusion_vs_best_baseline": dg.MetadataValue.md(report.comparisons.round(4).to_markdown(index=False)),
    }
    return table, plot, extra, report.comparisons


@dg.asset(
    group_name="recommender", owners=OWNERS, kinds={"python", "parquet"}, code_version="evaluation/2",
    deps=[hybrid_recommender, interactions, quality_scores], check_specs=EVALUATION_CHECKS,
    description="Offline evaluation on a global temporal split and per-user leave-last-k, ranked "
                "against the full catalogue, beside bare BM25/ALS/EASE: accuracy, coverage, cold-start "
                "recall, popularity and quality of the recommendations with and without the quality "
                "filter; warns when the fusion loses to the best bare baseline beyond its 95% interval. Table: data/warehouse/evaluation/part-0.parquet; the metrics "
                "table and the trade-off plot show in the materialization metadata.",
)
def recommender_evaluation(context: dg.AssetExecutionContext, config: HybridRecommenderConfig,
                           data_root: DataRootResource) -> dg.MaterializeResult:
    paths = data_root.paths
    if not len(read_table(paths.warehouse_dir, "songs", columns=["song_id"])) or \
            not len(read_table(paths.warehouse_dir, "interactions", columns=["user_id"])):
        context.log.info("no songs or no listening events yet: nothing to evaluate")
        return dg.MaterializeResult(metadata={"note": dg.MetadataValue.text(
            "no songs or no listening events yet: not evaluated")},
            check_results=[fusion_vs_baselines(None)])  # a declared check must always report
    metrics, plot_png, extra, comparisons = evaluate(paths, config)
    path = write_partition(metrics, paths.warehouse_dir, "evaluation")
    meta = table_metadata(metrics, path)
    shown = metrics.drop(columns=["evaluated_at", "split_time"], errors="ignore").round(4)
    meta["metrics"] = dg.MetadataValue.md(shown.to_markdown(index=False))
    if plot_png:
        meta["trade_off"] = png_md(plot_png, "quality filter trade-off")
    meta.update(extra)
    return dg.MaterializeResult(metadata=meta, check_results=[fusion_vs_baselines(comparisons)])
