"""A new or changed catalogue file in data/raw/ starts ingestion and rescoring of the days it touched.

The cursor is JSON ``{path: [mtime_ns, size]}`` of the catalogue files seen so far, so each file
version triggers once: a second tick with the same files requests nothing; a rewritten (or touched)
file triggers again. Run keys carry the file versions, so a repeated evaluation never launches a
run twice either.
"""


import hashlib
import json
from pathlib import Path

import dagster as dg

from sunorecsys_pipeline.jobs import (
    INGEST_ASSETS,
    PRIORITY_INGEST,
    PRIORITY_SCORE,
    asset_keys,
    pipeline_job,
    scoring_assets,
)
from sunorecsys_pipeline.partitions import daily_partitions
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
        log.info(f"days outside the partitions (not scored yet): {sorted(days - valid)}")
    return sorted(days & valid)


def catalogue_run_requests(raw_dir: Path, cursor: str | None, *, flamingo: bool, audiobox: bool, log=None,
                           ingested_at: float | None = None) -> tuple[list[dg.RunRequest], str]:
    """Run requests for new/changed catalogue files and the new cursor (pure: no Dagster context).

    ``ingested_at`` (UNIX seconds, first tick only): files last modified before the latest
    ``raw_songs`` materialization were ingested already (e.g. by ``make demo``) and do not fire.
    """
    from sunorecsys.catalog.ingest import find_catalogue_files

    seen: dict[str, list[int]] = json.loads(cursor) if cursor else {}
    now = file_versions(find_catalogue_files(raw_dir)) if raw_dir.exists() else {}
    changed = sorted(p for p, v in now.items() if seen.get(p) != v
                     and not (cursor is None and ingested_at is not None and v[0] / 1e9 < ingested_at))
    if not changed:
        return [], json.dumps(now, sort_keys=True)
    digest = hashlib.sha1(json.dumps({p: now[p] for p in changed}, sort_keys=True).encode()).hexdigest()[:12]
    tags = {FILES_TAG: ", ".join(Path(p).name for p in changed)[:200]}
    requests = [dg.RunRequest(run_key=f"catalogue-{digest}-ingest", asset_selection=asset_keys(INGEST_ASSETS),
                              tags={**tags, "dagster/priority": PRIORITY_INGEST})]
    for key in touched_partitions([Path(p) for p in changed], log=log):
        requests.append(dg.RunRequest(
            run_key=f"catalogue-{digest}-{key}", partition_key=key,
            asset_selection=asset_keys(scoring_assets(flamingo=flamingo, audiobox=audiobox)),
            tags={**tags, "dagster/priority": PRIORITY_SCORE}))
    return requests, json.dumps(now, sort_keys=True)


@dg.sensor(
    target=pipeline_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
    name="catalogue_files_sensor",
    description="A new or changed *.json / *.jsonl in data/raw/ (once per file version) starts "
                "ingestion and scoring of the days its songs fall on.",
)
def catalogue_files_sensor(context: dg.SensorEvaluationContext, data_root: DataRootResource,
                           flamingo: MusicFlamingoResource, audiobox: AudioboxResource):
    ingested_at = None
    if context.cursor is None:  # first tick: do not re-ingest what raw_songs has already read
        latest = context.instance.get_latest_materialization_event(dg.AssetKey("raw_songs"))
        ingested_at = latest.timestamp if latest is not None else None
    requests, cursor = catalogue_run_requests(
        data_root.paths.raw_dir, context.cursor, flamingo=flamingo.weights_available(),
        audiobox=audiobox.weights_available(), log=context.log, ingested_at=ingested_at)
    context.update_cursor(cursor)
    if not requests:
        return dg.SkipReason(f"no new or changed catalogue files in {data_root.paths.raw_dir}")
    return requests
