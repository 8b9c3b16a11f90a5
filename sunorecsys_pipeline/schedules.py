"""The nightly rescoring schedule (02:00 UTC) and the intraday schedule (hourly at :30), both on by
default.

**Nightly**: one run per night.

The run, in Dagster's step order (lineage, inside one run):

1. ingestion of the catalogue files (``raw_songs``);
2. one partition range, scored as one step per asset, from the first day that needs work to
   today. Days that need work: the last three (late songs arrive for the days just past, and
   yesterday is rescored now that it has closed), days whose stored scorer version differs from
   the current one (stale; Dagster's ``stale_assets_only`` ignores partitioned assets, so
   versions.py compares them), days holding unheard songs younger than the give-up age (retried),
   and days holding ingested songs that are in no songs partition (missed by an earlier run);
3. the recommender refit and evaluation, and the analyst views: downstream of the scoring, so they
   run only when every scored day passed its blocking checks (a failed check skips them and the
   previous model keeps serving).

Days between the ones that need work cost little: checked songs are reused and model scores come
from their caches. Model scorers whose weights are not configured are left out (said in the
tick's log). The run request names its asset checks, so the UI's "Launch all & commit tick
result" works.

**Intraday** (:data:`INTRADAY_CRON`): today's songs are scored the same day. Each hour, when
something is new for today (a catalogue file changed since the last ingestion, an ingested song in
no partition, an unheard song of today to retry), one run ingests, scores today's partition (and
the other days the changed files or missed songs fall on, as one range) and refits the recommender without the offline evaluation, so a song
created today is recommendable within the hour. Nothing new: the tick skips. Today's partition is
rescored by the nightly run once the day has closed (it is among the last three days).
"""


import datetime as dt
from pathlib import Path

import dagster as dg

from sunorecsys_pipeline.jobs import INTRADAY_REFIT_ASSETS, PRIORITY_SCORE, pipeline_job, pipeline_run_request
from sunorecsys_pipeline.partitions import daily_partitions, partition_key_of
from sunorecsys_pipeline.pending import missed_days, retry_days
from sunorecsys_pipeline.resources import (
    AudioboxResource,
    AudioChecksResource,
    DataRootResource,
    MusicFlamingoResource,
)
from sunorecsys_pipeline.versions import recorded_versions, stale_partitions

RECENT_PARTITIONS = 3
NIGHTLY_TAG = "sunorecsys/nightly"
INTRADAY_TAG = "sunorecsys/intraday"
# hourly, half past: away from the nightly run at 02:00 (runs queue behind each other anyway: one
# warehouse writer at a time)
INTRADAY_CRON = "30 * * * *"
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


def nightly_days(instance: dg.DagsterInstance, night: dt.datetime, versions: dict[str, str],
                 data_root: DataRootResource, give_up_days: int) -> dict[str, list[str]]:
    """``{reason: days}`` that need scoring in the night starting at ``night`` (UTC)."""
    keys = daily_partitions.get_partition_keys(current_time=night)
    paths = data_root.paths
    stale: set[str] = set()
    for asset, version in versions.items():
        stale |= set(stale_partitions(recorded_versions(instance, asset), version, keys))
    return {"recent": keys[-RECENT_PARTITIONS:], "stale": sorted(stale),
            "retry": retry_days(paths, keys[-(give_up_days + 1):], give_up_days, night.date()),
            "missed": missed_days(paths, keys)}


def nightly_run_request(instance: dg.DagsterInstance, night: dt.datetime, versions: dict[str, str],
                        data_root: DataRootResource, give_up_days: int = 7) -> dg.RunRequest:
    """The night's one run (module docstring), given the current scorer versions."""
    night_id = night.astimezone(dt.UTC).strftime("%Y-%m-%d")
    needed = nightly_days(instance, night, versions, data_root, give_up_days)
    days = sorted(set().union(*needed.values()))
    keys = daily_partitions.get_partition_keys(current_time=night)
    first = keys.index(days[0]) if days else len(keys)
    reason = "; ".join(f"{k}: {','.join(v)}" for k, v in needed.items() if v)[:1000]
    return pipeline_run_request(
        keys[first:], flamingo="flamingo_scores" in versions, audiobox="audiobox_scores" in versions,
        run_key=f"nightly-{night_id}",
        tags={NIGHTLY_TAG: night_id, REASON_TAG: reason or "ingest", "dagster/priority": PRIORITY_SCORE})


@dg.schedule(
    cron_schedule="0 2 * * *", execution_timezone="UTC", target=pipeline_job,
    default_status=dg.DefaultScheduleStatus.RUNNING, name="nightly_rescoring",
    description="02:00 UTC, one run: ingest, score the last three days and every day that is stale, "
                "has unheard songs to retry or songs missed by an earlier run (one partition range), "
                "then refit and evaluate the recommender if the scoring passed its blocking checks.",
)
def nightly_rescoring(context: dg.ScheduleEvaluationContext, data_root: DataRootResource,
                      flamingo: MusicFlamingoResource, audiobox: AudioboxResource,
                      audio_checks_settings: AudioChecksResource):
    night = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    versions = current_scorer_versions(data_root, flamingo, audiobox, log=context.log)
    request = nightly_run_request(context.instance, night, versions, data_root,
                                  audio_checks_settings.give_up_days)
    context.log.info(f"nightly rescoring: {request.tags.get(REASON_TAG)}")
    return [request]


def intraday_needs(instance: dg.DagsterInstance, now: dt.datetime, data_root: DataRootResource,
                   give_up_days: int) -> dict[str, list[str]]:
    """``{reason: items}`` that make an intraday run worth it at ``now`` (UTC); empty: nothing new.

    ``files``: catalogue files modified after the latest ``raw_songs`` materialization; ``touched``:
    the other days their songs fall on; ``missed``: days holding ingested songs that no songs partition has; ``retry``: today, when its
    audio_checks hold unheard songs.
    """
    from sunorecsys.catalog.ingest import find_catalogue_files
    from sunorecsys_pipeline.sensors import file_versions, touched_partitions

    paths = data_root.paths
    today = partition_key_of(now)
    latest = instance.get_latest_materialization_event(dg.AssetKey("raw_songs"))
    ingested_at = latest.timestamp if latest is not None else None
    files = file_versions(find_catalogue_files(paths.raw_dir)) if paths.raw_dir.exists() else {}
    changed = sorted(p for p, (mtime_ns, _) in files.items() if ingested_at is None or mtime_ns / 1e9 > ingested_at)
    keys = daily_partitions.get_partition_keys(current_time=now)
    needs = {"files": [Path(p).name for p in changed],
             # the other days the changed files hold songs for: scored in the same run, not left missed
             "touched": [d for d in touched_partitions([Path(p) for p in changed]) if d != today] if changed else [],
             "missed": missed_days(paths, keys),
             "retry": retry_days(paths, [today], give_up_days, now.date())}
    return {k: v for k, v in needs.items() if v}


def intraday_run_request(instance: dg.DagsterInstance, now: dt.datetime, versions: dict[str, str],
                         data_root: DataRootResource, give_up_days: int = 7) -> dg.RunRequest | dg.SkipReason:
    """The hour's run (module docstring), or why there is none."""
    now = now.astimezone(dt.UTC)
    today = partition_key_of(now)
    needs = intraday_needs(instance, now, data_root, give_up_days)
    if not needs:
        return dg.SkipReason(f"nothing new for {today}: no catalogue file changed since the last ingestion, "
                             "no missed or unheard song")
    keys = daily_partitions.get_partition_keys(current_time=now)
    days = sorted(set(needs.get("missed", [])) | set(needs.get("touched", [])) | {today})
    reason = "; ".join(f"{k}: {','.join(v)}" for k, v in needs.items())[:1000]
    return pipeline_run_request(
        keys[keys.index(days[0]):keys.index(today) + 1], flamingo="flamingo_scores" in versions,
        audiobox="audiobox_scores" in versions, run_key=f"intraday-{now:%Y-%m-%dT%H%M}",
        refit_assets=INTRADAY_REFIT_ASSETS,
        tags={INTRADAY_TAG: today, REASON_TAG: reason, "dagster/priority": PRIORITY_SCORE})


@dg.schedule(
    cron_schedule=INTRADAY_CRON, execution_timezone="UTC", target=pipeline_job,
    default_status=dg.DefaultScheduleStatus.RUNNING, name="intraday_scoring",
    description="Hourly at :30 UTC, when something is new for today (a changed catalogue file, a missed "
                "or unheard song): one run ingests, scores today's partition and refits the recommender "
                "(no offline evaluation), so today's songs are recommendable within the hour. Otherwise "
                "skips. The nightly run rescores today's partition once the day has closed.",
)
def intraday_scoring(context: dg.ScheduleEvaluationContext, data_root: DataRootResource,
                     flamingo: MusicFlamingoResource, audiobox: AudioboxResource,
                     audio_checks_settings: AudioChecksResource):
    now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    versions = current_scorer_versions(data_root, flamingo, audiobox, log=context.log)
    result = intraday_run_request(context.instance, now, versions, data_root, audio_checks_settings.give_up_days)
    if isinstance(result, dg.SkipReason):
        return result
    context.log.info(f"intraday scoring: {result.tags.get(REASON_TAG)}")
    return [result]
