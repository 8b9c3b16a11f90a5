"""The nightly rescoring schedule (02:00 UTC, on by default).

One tick requests, in queue-priority order:

1. ingestion of the catalogue files (``raw_songs``);
2. the last three daily partitions in full (songs, signal checks, the configured model scorers,
   the blend), because late songs arrive for the days just past;
3. every older partition whose stored scorer version differs from the current one (a new model
   id, checkpoint or prompt makes it stale), for the stale scorers and the blend only; Dagster's
   ``stale_assets_only`` ignores partitioned assets, so versions.py compares them;
4. the recommender refit and evaluation, and the analyst views.

The order is enforced by the run queue, not by hope: every run of a night carries the tag
``sunorecsys/nightly=<date>``, and ``dagster.yaml`` limits that tag to one run at a time per value,
so the queued runs start one after another in priority order (ingest 30, scoring 20, refit 10).

Model scorers whose weights are not configured are left out (said in the tick's log). The score
cache makes a rerun of an unchanged partition cheap: only new or changed songs reach the model.
"""


import datetime as dt
from collections.abc import Iterator

import dagster as dg

from sunorecsys_pipeline.jobs import (
    INGEST_ASSETS,
    PRIORITY_INGEST,
    PRIORITY_REFIT,
    PRIORITY_SCORE,
    REFIT_ASSETS,
    asset_keys,
    pipeline_job,
    scoring_assets,
)
from sunorecsys_pipeline.partitions import daily_partitions
from sunorecsys_pipeline.resources import AudioboxResource, DataRootResource, MusicFlamingoResource
from sunorecsys_pipeline.versions import recorded_versions, stale_partitions

RECENT_PARTITIONS = 3
NIGHTLY_TAG = "sunorecsys/nightly"
REASON_TAG = "sunorecsys/reason"


def current_scorer_versions(data_root: DataRootResource, flamingo: MusicFlamingoResource,
                            audiobox: AudioboxResource, log=None) -> dict[str, str]:
    """``{asset: version}`` of each scorer that can run now (no model is loaded)."""
    from sunorecsys.audio.checks import CHECKS_VERSION

    versions = {"audio_checks": CHECKS_VERSION}
    paths = data_root.paths
    for asset, resource in (("flamingo_scores", flamingo), ("audiobox_scores", audiobox)):
        if resource.weights_available():
            versions[asset] = resource.current_version(paths)
        elif log is not None:
            log.info(f"{asset}: no model weights configured, not scheduled")
    return versions


def nightly_run_requests(instance: dg.DagsterInstance, night: dt.datetime, versions: dict[str, str]
                         ) -> Iterator[dg.RunRequest]:
    """The run requests of the night starting at ``night`` (UTC), given the current scorer versions."""
    night_id = night.astimezone(dt.UTC).strftime("%Y-%m-%d")
    base = {NIGHTLY_TAG: night_id}
    keys = daily_partitions.get_partition_keys(current_time=night)
    with_flamingo, with_audiobox = "flamingo_scores" in versions, "audiobox_scores" in versions

    yield dg.RunRequest(run_key=f"nightly-{night_id}-ingest", asset_selection=asset_keys(INGEST_ASSETS),
                        tags={**base, REASON_TAG: "ingest", "dagster/priority": PRIORITY_INGEST})
    recent = keys[-RECENT_PARTITIONS:]
    for key in recent:
        yield dg.RunRequest(
            run_key=f"nightly-{night_id}-recent-{key}", partition_key=key,
            asset_selection=asset_keys(scoring_assets(flamingo=with_flamingo, audiobox=with_audiobox)),
            tags={**base, REASON_TAG: "recent", "dagster/priority": PRIORITY_SCORE})

    stale_by_partition: dict[str, list[str]] = {}
    for asset, version in versions.items():
        for key in stale_partitions(recorded_versions(instance, asset), version, keys):
            if key not in recent:
                stale_by_partition.setdefault(key, []).append(asset)
    for key in sorted(stale_by_partition):
        stale = stale_by_partition[key]
        selection = scoring_assets(flamingo="flamingo_scores" in stale, audiobox="audiobox_scores" in stale,
                                   include_songs=False, include_signal="audio_checks" in stale)
        yield dg.RunRequest(
            run_key=f"nightly-{night_id}-stale-{key}", partition_key=key, asset_selection=asset_keys(selection),
            tags={**base, REASON_TAG: "stale:" + ",".join(sorted(stale)), "dagster/priority": PRIORITY_SCORE})

    yield dg.RunRequest(run_key=f"nightly-{night_id}-refit", asset_selection=asset_keys(REFIT_ASSETS),
                        tags={**base, REASON_TAG: "refit", "dagster/priority": PRIORITY_REFIT})


@dg.schedule(
    cron_schedule="0 2 * * *", execution_timezone="UTC", target=pipeline_job,
    default_status=dg.DefaultScheduleStatus.RUNNING, name="nightly_rescoring",
    description="02:00 UTC: ingest, score the last three days, rescore partitions whose scorer "
                "version changed, refit and evaluate the recommender.",
)
def nightly_rescoring(context: dg.ScheduleEvaluationContext, data_root: DataRootResource,
                      flamingo: MusicFlamingoResource, audiobox: AudioboxResource):
    night = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    versions = current_scorer_versions(data_root, flamingo, audiobox, log=context.log)
    requests = list(nightly_run_requests(context.instance, night, versions))
    context.log.info(f"nightly rescoring: {len(requests)} runs requested")
    return requests
