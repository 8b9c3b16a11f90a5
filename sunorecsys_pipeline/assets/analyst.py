"""The analysts' DuckDB file: views only, over the Parquet tables, rebuilt in one short step."""


import dagster as dg

from sunorecsys_pipeline.assets.catalog import interactions, raw_songs, songs
from sunorecsys_pipeline.assets.common import OWNERS
from sunorecsys_pipeline.assets.quality import audio_checks, audiobox_scores, flamingo_scores, quality_scores
from sunorecsys_pipeline.assets.recommender import hybrid_recommender, recommender_evaluation
from sunorecsys_pipeline.resources import DataRootResource


@dg.asset(
    group_name="recommender", owners=OWNERS, kinds={"duckdb"}, code_version="analyst_views/1",
    deps=[raw_songs, songs, audio_checks, flamingo_scores, audiobox_scores, quality_scores, interactions,
          hybrid_recommender, recommender_evaluation],
    description="data/warehouse.duckdb: views only over the Parquet tables (read_parquet globs), "
                "swapped in atomically so an analyst's open session is never disturbed. Query it "
                "with `sunorecsys sql \"SELECT ...\"` or duckdb -readonly.",
)
def analyst_views(context: dg.AssetExecutionContext, data_root: DataRootResource) -> dg.MaterializeResult:
    from sunorecsys.warehouse.views import build_analyst_views

    built = build_analyst_views(data_root.paths)
    views = built.get("views", {})
    skipped = built.get("skipped", {})
    for table, reason in skipped.items():
        context.log.info(f"no view for {table}: {reason}")
    view_names = list(views) if isinstance(views, (dict, list, tuple)) else []
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(built.get("db_path", data_root.paths.warehouse_db))),
        "views": dg.MetadataValue.md("\n".join(f"- `{v}`" for v in view_names) or "_(none)_"),
        "skipped": dg.MetadataValue.md("\n".join(f"- `{t}`: {r}" for t, r in skipped.items()) or "_(none)_"),
        "seconds": dg.MetadataValue.float(float(built.get("seconds", 0.0))),
    })
