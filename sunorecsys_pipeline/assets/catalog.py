"""Catalog assets: the raw catalogue files, the daily songs table, the listening events."""


import collections
import time

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from sunorecsys.catalog.schema import INTERACTIONS_SCHEMA, REJECTED_SCHEMA, SONGS_SCHEMA
from sunorecsys.warehouse.parquet import write_partition
from sunorecsys_pipeline.assets.common import OWNERS
from sunorecsys_pipeline.checks import (
    RAW_SONGS_CHECKS,
    SONGS_CHECKS,
    combine,
    songs_within_partitions,
    unique_song_ids,
)
from sunorecsys_pipeline.metadata import counts_md, for_days, histogram_md, table_metadata
from sunorecsys_pipeline.partitions import daily_partitions, outside_message, partition_bounds
from sunorecsys_pipeline.resources import DataRootResource

MAX_LOGGED_REJECTIONS = 200
SONG_PREVIEW_COLUMNS = ["song_id", "title", "handle", "created_at", "duration_s", "genre", "tags", "play_count"]


@dg.asset(
    group_name="catalog", owners=OWNERS, kinds={"python", "parquet"}, code_version="raw_songs/1",
    check_specs=RAW_SONGS_CHECKS,
    description="The Suno catalogue files in data/raw/ (*.json, *.jsonl: a list, {'songs': [...]} or "
                "JSON Lines) parsed and validated into data/processed/songs.parquet; rejected records "
                "go to the rejected_songs table with a reason.",
)
def raw_songs(context: dg.AssetExecutionContext, data_root: DataRootResource) -> dg.MaterializeResult:
    from sunorecsys.catalog.ingest import find_catalogue_files, read_catalogue, write_songs

    paths = data_root.paths
    files = find_catalogue_files(paths.raw_dir)
    if not files:
        raise dg.Failure(description=f"no catalogue files (*.json, *.jsonl) in {paths.raw_dir}",
                         allow_retries=False)
    started = time.perf_counter()
    result = read_catalogue(files)  # a bad record or file is a rejected row: the others always land
    for file, why in result.rejected_files.items():
        context.log.error(f"catalogue file {file} {why}: its songs were not ingested")
    write_songs(result, paths)
    rejected_path = write_partition(result.rejected, paths.warehouse_dir, "rejected_songs",
                                    schema=REJECTED_SCHEMA)
    for row in result.rejected.head(MAX_LOGGED_REJECTIONS).itertuples(index=False):
        context.log.warning(f"rejected song {row.song_id!r} ({row.source_file} record {row.position}): "
                            f"{row.reason}: {row.detail}")
    songs = result.songs
    days = songs["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d") if len(songs) else pd.Series([])
    keys = set(daily_partitions.get_partition_keys())
    outside = sorted(set(days) - keys)
    n_outside = int(days.isin(outside).sum()) if outside else 0
    message = outside_message(outside, n_outside) if outside else ""
    if outside:
        context.log.warning(message)
    per_day = collections.Counter(days)
    return dg.MaterializeResult(metadata={
        **table_metadata(songs[[c for c in SONG_PREVIEW_COLUMNS if c in songs]], paths.processed_songs),
        "files": dg.MetadataValue.md("\n".join(f"- `{f}`" for f in result.files)),
        "rejected_files": dg.MetadataValue.md("\n".join(f"- `{f}`: {why}" for f, why in result.rejected_files.items())
                                              or "none"),
        "rejected": dg.MetadataValue.int(len(result.rejected)),
        "rejected_reasons": counts_md(dict(collections.Counter(result.rejected["reason"])), "reason", "records"),
        "rejected_path": dg.MetadataValue.path(str(rejected_path)),
        "duplicates": dg.MetadataValue.int(int(result.duplicates)),
        "songs_per_day": counts_md(dict(sorted(per_day.items())), "date", "songs"),
        "songs_outside_partitions": dg.MetadataValue.int(n_outside),
        "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
    }, check_results=[songs_within_partitions(n_outside, message)])


@dg.asset(
    group_name="catalog", owners=OWNERS, kinds={"parquet"}, code_version="songs/1",
    partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_songs], check_specs=SONGS_CHECKS,
    description="The songs table, one Parquet file per UTC day of created_at "
                "(data/warehouse/songs/date=YYYY-MM-DD/part-0.parquet, written atomically; an empty "
                "day writes an empty file with the same schema). A range of days runs as one step.",
)
def songs(context: dg.AssetExecutionContext, data_root: DataRootResource) -> dg.MaterializeResult:
    paths = data_root.paths
    keys = context.partition_keys
    if not paths.processed_songs.exists():
        raise dg.Failure(description=f"{paths.processed_songs} is missing: materialize raw_songs first",
                         allow_retries=False)
    start, _ = partition_bounds(keys[0])
    _, end = partition_bounds(keys[-1])
    ts = pa.timestamp("us", tz="UTC")
    created = pads.field("created_at")
    table = pads.dataset(paths.processed_songs).to_table(
        filter=(created >= pa.scalar(start, ts)) & (created < pa.scalar(end, ts)))
    table = table.cast(SONGS_SCHEMA) if table.schema != SONGS_SCHEMA else table
    everything = table.to_pandas()
    day_of = (everything["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d") if len(everything)
              else pd.Series([], dtype=object))
    checks, per_day, path = [], {}, None
    for key in keys:
        mask = (day_of == key).to_numpy()
        path = write_partition(table.filter(pa.array(mask, pa.bool_())), paths.warehouse_dir, "songs", key,
                               schema=SONGS_SCHEMA)
        frame = everything[mask]
        per_day[key] = len(frame)
        checks.append((key, unique_song_ids(frame)))
    context.log.info(f"songs {keys[0]}..{keys[-1]}: {len(everything)} songs in {len(keys)} day(s)")
    return dg.MaterializeResult(
        metadata=for_days({**table_metadata(everything[[c for c in SONG_PREVIEW_COLUMNS if c in everything]],
                                            path if len(keys) == 1 else None),
                           "days": dg.MetadataValue.int(len(keys)),
                           "songs_per_day": counts_md({k: v for k, v in per_day.items() if v}, "date", "songs"),
                           "duration_s": lambda: histogram_md(everything.get("duration_s", []), f"song duration {keys[0]}",
                                                      "seconds", value_range=None)}, len(keys)),
        check_results=[combine(checks)])


@dg.asset(
    group_name="recommender", owners=OWNERS, kinds={"parquet"}, code_version="interactions/1",
    deps=[raw_songs],
    description="Listening events (user_id, song_id, timestamp, event, weight) from "
                "data/raw/interactions.{csv,parquet,jsonl}; events for songs not in the catalogue are "
                "counted and dropped. Table: data/warehouse/interactions/part-0.parquet.",
)
def interactions(context: dg.AssetExecutionContext, data_root: DataRootResource) -> dg.MaterializeResult:
    from sunorecsys.catalog.interactions import read_interactions

    paths = data_root.paths
    if not paths.processed_songs.exists():
        raise dg.Failure(description=f"{paths.processed_songs} is missing: materialize raw_songs first",
                         allow_retries=False)
    known = set(pd.read_parquet(paths.processed_songs, columns=["song_id"])["song_id"])
    events, stats = read_interactions(paths, known_song_ids=known)
    path = write_partition(events, paths.warehouse_dir, "interactions", schema=INTERACTIONS_SCHEMA)
    if stats.get("unknown_song_events"):
        context.log.warning(f"{stats['unknown_song_events']} events name songs that are not in the "
                            "catalogue; they were dropped")
    if stats.get("malformed_rows"):
        context.log.warning(f"{stats['malformed_rows']} malformed interaction rows were dropped")
    meta = table_metadata(events, path)
    meta["users"] = dg.MetadataValue.int(int(events["user_id"].nunique()) if len(events) else 0)
    meta["songs_with_events"] = dg.MetadataValue.int(int(events["song_id"].nunique()) if len(events) else 0)
    for name, value in stats.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            meta[f"stats/{name}"] = dg.MetadataValue.int(int(value)) if float(value).is_integer() \
                else dg.MetadataValue.float(float(value))
        elif isinstance(value, str):
            meta[f"stats/{name}"] = dg.MetadataValue.text(value)
    if len(events):
        meta["events"] = counts_md(dict(collections.Counter(events["event"])), "event", "count")
    return dg.MaterializeResult(metadata=meta)
