"""The spam stage: per song, is it a duplicate / text spam / mass upload / short-track bulk, and why.

Thin over ``sunorecsys.spam.stage``: each run (one day, or a whole backfill range in one run)
judges its days' songs against the whole catalogue (every ``songs`` partition materialized so far,
through the catalogue-wide fingerprint index). When a late song reveals an earlier original, songs of *other* days change flags: their
partitions are rewritten too, and the change is in ``warehouse/spam_flag_history``.
"""

import collections
import json
import time

import dagster as dg
import pandas as pd

from sunorecsys.warehouse.parquet import partition_path, read_table, write_partition
from sunorecsys_pipeline.assets.catalog import songs
from sunorecsys_pipeline.assets.common import OWNERS, require_partition
from sunorecsys_pipeline.assets.quality import audio_checks
from sunorecsys_pipeline.metadata import counts_md, for_days, preview_md
from sunorecsys_pipeline.partitions import daily_partitions
from sunorecsys_pipeline.resources import AudioChecksResource, DataRootResource

EXAMPLES_PER_REASON = 3


def _day(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["created_at"], utc=True).dt.strftime("%Y-%m-%d")


def _examples(flags: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for reason in sorted({r for rs in flags["reasons"] for r in rs}):
        hit = flags[flags["reasons"].map(lambda rs, reason=reason: reason in rs)]
        for record in hit.head(EXAMPLES_PER_REASON).to_dict("records"):
            evidence = json.loads(record["evidence"]).get(reason, {})
            rows.append({"reason": reason, "song_id": record["song_id"],
                         "evidence": json.dumps(evidence, ensure_ascii=False)[:160]})
    return pd.DataFrame(rows, columns=["reason", "song_id", "evidence"])


@dg.asset(
    group_name="spam", owners=OWNERS, kinds={"python", "parquet"}, code_version="spam_flags/1",
    partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[songs, audio_checks],
    description="Spam and duplicate flags per song, judged against the whole catalogue: audio "
                "duplicates (Chromaprint fingerprints, inverted index, earliest upload is the original), "
                "mass near-duplicate text and keyword stuffing, mass uploads, bulk short tracks; the "
                "reasons, their evidence, and the operator allow-list (data/spam/allowlist.csv). "
                "Flag changes (a late original) are recorded in spam_flag_history.",
)
def spam_flags(context: dg.AssetExecutionContext, data_root: DataRootResource,
               audio_checks_settings: AudioChecksResource) -> dg.MaterializeResult:
    from sunorecsys.spam.flags import FLAGS_SCHEMA
    from sunorecsys.spam.stage import run_spam_filter

    paths = data_root.paths
    keys = context.partition_keys  # one day, or a whole backfill range in one run
    for key in keys:
        require_partition(paths, "songs", key)  # a clear failure when a day was never ingested
    catalogue = read_table(paths.warehouse_dir, "songs").drop(columns=["date"], errors="ignore")
    started = time.perf_counter()
    label = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
    # The filter judges the whole catalogue once, however many days the run covers.
    run = run_spam_filter(catalogue, paths, fetch=audio_checks_settings.fetch_audio,
                          workers=audio_checks_settings.workers, cause=f"spam_flags {label}")
    day = _day(run.flags)
    path = None
    for key in keys:
        path = write_partition(run.flags[day == key], paths.warehouse_dir, "spam_flags", key, schema=FLAGS_SCHEMA)
    # Songs of other days whose flags changed: rewrite those partitions (only ones already written).
    changed_days = sorted(set(_day(run.flags[run.flags["song_id"].isin(run.changes["song_id"])])) - set(keys))
    rewritten = []
    for other in changed_days:
        if partition_path(paths.warehouse_dir, "spam_flags", other).exists():
            write_partition(run.flags[day == other], paths.warehouse_dir, "spam_flags", other, schema=FLAGS_SCHEMA)
            rewritten.append(other)
    for change in run.changes.head(50).to_dict("records"):
        context.log.info(f"flags of {change['song_id']} changed: {change['reasons_before']} -> "
                         f"{change['reasons_after']}")
    if run.rejected_allowlist is not None and len(run.rejected_allowlist):
        for row in run.rejected_allowlist.to_dict("records"):
            context.log.warning(f"allow-list line {row['line']} ignored: {row['reason']}")
    mine = run.flags[day.isin(keys)]
    counts = collections.Counter(r for rs in mine["reasons"] for r in rs)
    return dg.MaterializeResult(metadata=for_days({
        "dagster/row_count": dg.MetadataValue.int(len(mine)),
        **({"path": dg.MetadataValue.path(str(path))} if len(keys) == 1 else {}),
        "flagged": dg.MetadataValue.int(int(mine["flagged"].sum())),
        "flagged_in_catalogue": dg.MetadataValue.int(int(run.flags["flagged"].sum())),
        "reasons": counts_md(dict(counts), "reason", "songs"),
        "reasons_in_catalogue": counts_md(run.counts(), "reason", "songs"),
        "examples": preview_md(_examples(run.flags)),
        "allowed": dg.MetadataValue.int(int((mine["detected_reasons"].map(len) > 0).sum() - mine["flagged"].sum())),
        "flag_changes": dg.MetadataValue.int(len(run.changes)),
        "partitions_rewritten": dg.MetadataValue.text(", ".join(rewritten) or "none"),
        "fingerprinted": dg.MetadataValue.int(run.fingerprinted),
        "not_fingerprinted": counts_md(run.not_fingerprinted, "reason", "songs"),
        "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
    }, len(keys)))
