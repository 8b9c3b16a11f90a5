"""A new or changed catalogue file in data/raw/ starts one run: ingestion, the days its songs fall on
(one partition range; today's songs included, so a new song is scored the same day), and the refit.
Ingestion and scoring are steps of the same run, so scoring never reads the catalogue before the
ingestion that brought the new songs has finished; days holding songs that an earlier run missed
join the range.

The cursor is JSON ``{path: [mtime_ns, size]}`` of the catalogue files seen so far, so each file
version triggers once: a second tick with the same files requests nothing; a rewritten (or touched)
file triggers again. Run keys carry the file versions, so a repeated evaluation never launches a
run twice either.
"""


import hashlib
import json
import os
from pathlib import Path

import dagster as dg

from sunorecsys.paths import DataPaths
from sunorecsys_pipeline.jobs import PRIORITY_INGEST, pipeline_job, pipeline_run_request
from sunorecsys_pipeline.partitions import daily_partitions, outside_message
from sunorecsys_pipeline.pending import missed_days
from sunorecsys_pipeline.resources import AudioboxResource, DataRootResource, MusicFlamingoResource

FILES_TAG = "sunorecsys/catalogue_files"


def file_versions(files: list[Path]) -> dict[str, list[int]]:
    """``{path: [mtime_ns, size]}`` of each entry that still exists (a broken symlink or a symlink
    loop is versioned by the link itself: ingest reports it as a rejected file)."""
    out: dict[str, list[int]] = {}
    for f in files:
        try:
            st = f.stat()
        except OSError:
            try:
                st = f.lstat()
            except OSError:  # removed between listing and stat
                continue
        out[str(f)] = [st.st_mtime_ns, st.st_size]
    return out


def touched_partitions(files: list[Path], log=None) -> list[str]:
    """The partition keys of the songs in ``files`` (days outside the partitions are dropped)."""
    from sunorecsys.catalog.ingest import read_catalogue

    try:
        result = read_catalogue(files)  # bad records and files are rejected rows, not exceptions
    except FileNotFoundError as exc:  # removed between listing and reading
        if log is not None:
            log.warning(f"a new catalogue file went away: {exc}")
        return []
    if log is not None:
        for file, why in result.rejected_files.items():
            log.warning(f"cannot read the new catalogue file {file}: {why}; ingestion will report it")
    if not len(result.songs):
        return []
    days = set(result.songs["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d"))
    valid = set(daily_partitions.get_partition_keys())
    if log is not None and days - valid:
        outside = sorted(days - valid)
        log.warning(outside_message(outside, int(result.songs["created_at"].dt.tz_convert("UTC")
                                                 .dt.strftime("%Y-%m-%d").isin(outside).sum())))
    return sorted(days & valid)


def catalogue_run_requests(raw_dir: Path, cursor: str | None, *, flamingo: bool, audiobox: bool, log=None,
                           ingested_at: float | None = None, paths: DataPaths | None = None
                           ) -> tuple[list[dg.RunRequest], str]:
    """The run request for new/changed catalogue files and the new cursor (pure: no Dagster context).

    ``ingested_at`` (UNIX seconds, first tick only): files last modified before the latest
    ``raw_songs`` materialization were ingested already (e.g. by ``make demo``) and do not fire.
    ``paths``: the data root, to add the days of songs missed by earlier runs.
    """
    from sunorecsys.catalog.ingest import find_catalogue_files

    seen: dict[str, list[int]] = json.loads(cursor) if cursor else {}
    now = file_versions(find_catalogue_files(raw_dir)) if raw_dir.exists() else {}
    changed = sorted(p for p, v in now.items() if seen.get(p) != v
                     and not (cursor is None and ingested_at is not None and v[0] / 1e9 < ingested_at))
    if not changed:
        return [], json.dumps(now, sort_keys=True)
    digest = hashlib.sha1(json.dumps({p: now[p] for p in changed}, sort_keys=True).encode()).hexdigest()[:12]
    days = set(touched_partitions([Path(p) for p in changed], log=log))
    if paths is not None:
        days |= set(missed_days(paths, daily_partitions.get_partition_keys()))
    keys = daily_partitions.get_partition_keys()
    span = keys[keys.index(min(days)):keys.index(max(days)) + 1] if days else []
    request = pipeline_run_request(
        span, flamingo=flamingo, audiobox=audiobox, run_key=f"catalogue-{digest}",
        tags={FILES_TAG: ", ".join(Path(p).name for p in changed)[:200], "dagster/priority": PRIORITY_INGEST})
    return [request], json.dumps(now, sort_keys=True)


@dg.sensor(
    target=pipeline_job, default_status=dg.DefaultSensorStatus.RUNNING,
    # seconds between evaluations (SUNORECSYS_SENSOR_INTERVAL_S; the soak test shortens it)
    minimum_interval_seconds=int(os.environ.get("SUNORECSYS_SENSOR_INTERVAL_S", "30")),
    name="catalogue_files_sensor",
    description="A new or changed *.json / *.jsonl in data/raw/ (once per file version) starts one "
                "run: ingestion, scoring of the days its songs fall on (today's included), the refit.",
)
def catalogue_files_sensor(context: dg.SensorEvaluationContext, data_root: DataRootResource,
                           flamingo: MusicFlamingoResource, audiobox: AudioboxResource):
    ingested_at = None
    if context.cursor is None:  # first tick: do not re-ingest what raw_songs has already read
        latest = context.instance.get_latest_materialization_event(dg.AssetKey("raw_songs"))
        ingested_at = latest.timestamp if latest is not None else None
    requests, cursor = catalogue_run_requests(
        data_root.paths.raw_dir, context.cursor, flamingo=flamingo.weights_available(),
        audiobox=audiobox.weights_available(), log=context.log, ingested_at=ingested_at,
        paths=data_root.paths)
    context.update_cursor(cursor)
    if not requests:
        return dg.SkipReason(f"no new or changed catalogue files in {data_root.paths.raw_dir}")
    return requests
