"""Quality assets: signal checks, the two model scorers, the blend, and the guide's scores file.

Each partitioned asset writes its own Parquet partition (atomic) and returns a
``MaterializeResult``; the scorer version that produced a partition is stored as a tag
(versions.py) so the nightly schedule can rescore stale partitions.
"""


import collections
import time

import dagster as dg
import pandas as pd

from sunorecsys.audio.errors import REASONS as AUDIO_REASONS
from sunorecsys.catalog.song_context import attach_song_context
from sunorecsys.warehouse.parquet import read_table, write_partition
from sunorecsys_pipeline.assets.catalog import songs
from sunorecsys_pipeline.assets.common import (
    GPU_OP_TAGS,
    GPU_POOL,
    MODEL_RETRY_POLICY,
    OWNERS,
    read_partition,
    read_partition_if_exists,
)
from sunorecsys_pipeline.checks import (
    AUDIO_CHECKS_CHECKS,
    AUDIOBOX_CHECKS,
    FLAMINGO_CHECKS,
    FLAMINGO_SCORE_COLUMNS,
    QUALITY_CHECKS,
    QUALITY_SCORE_COLUMNS,
    parse_failure_rate,
    parse_failures,
    scored_share,
    unique_song_ids,
    values_in_range,
)
from sunorecsys_pipeline.metadata import counts_md, histogram_md, table_metadata
from sunorecsys_pipeline.partitions import daily_partitions
from sunorecsys_pipeline.resources import (
    AudioboxResource,
    AudioChecksResource,
    DataRootResource,
    MusicFlamingoResource,
    QualityGatesResource,
)
from sunorecsys_pipeline.versions import version_tags

MAX_LOGGED_FAILURES = 200
MIN_SONGS_FOR_MODEL_FAILURE = 3
# the song's audio could not be had (sunorecsys.audio.AudioUnavailable reasons): the song's fault
AUDIO_UNAVAILABLE_REASONS = tuple(sorted(AUDIO_REASONS))
AUDIOBOX_CHUNK = 8  # songs per score_batch call: progress in the log, bounded memory


def _log_failed_songs(context: dg.AssetExecutionContext, rows: pd.DataFrame, what: str, reason_col: str) -> None:
    for row in rows.head(MAX_LOGGED_FAILURES).to_dict("records"):
        context.log.warning(f"{what} failed for song {row['song_id']}: {row.get(reason_col)}")
    if len(rows) > MAX_LOGGED_FAILURES:
        context.log.warning(f"... and {len(rows) - MAX_LOGGED_FAILURES} more songs ({what})")


def _fail_if_every_song_failed(frame: pd.DataFrame, scorer: str, key: str) -> None:
    """A model that failed on every song of a partition points at the model or the machine (GPU
    lost, out of memory), not at the songs: fail the step (it is retried) instead of writing a
    partition of failures. The message names the songs and their reasons."""
    errors = frame["error"].fillna("").astype(str)
    audio_problem = errors.str.match(rf"^(audio\s+)?({'|'.join(AUDIO_UNAVAILABLE_REASONS)})\b")
    if len(frame) >= MIN_SONGS_FOR_MODEL_FAILURE and (frame["status"] == "failed").all() and not audio_problem.any():
        examples = "; ".join(f"song {r['song_id']}: {r['error']}" for r in frame.head(5).to_dict("records"))
        raise dg.Failure(description=f"{scorer} failed on all {len(frame)} songs of {key}: {examples}")


def _status_counts(frame: pd.DataFrame) -> dict[str, int]:
    return dict(collections.Counter(frame["status"])) if len(frame) else {}


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"python", "parquet"}, code_version="audio_checks/1",
    partitions_def=daily_partitions, deps=[songs], check_specs=AUDIO_CHECKS_CHECKS,
    description="Signal checks per song (CPU): decode status, duration, loudness (LUFS), true peak, "
                "clipping and silence ratios, bandwidth, a technical score in [0, 1] and hard-fail "
                "flags. Catches broken, silent, clipped and band-limited audio before any GPU time.",
)
def audio_checks(context: dg.AssetExecutionContext, data_root: DataRootResource,
                 audio_checks_settings: AudioChecksResource) -> dg.MaterializeResult:
    from sunorecsys.audio.checks import CHECKS_VERSION, run_audio_checks

    paths = data_root.paths
    key = context.partition_key
    song_rows = read_partition(paths, "songs", key)
    started = time.perf_counter()
    frame = run_audio_checks(song_rows, paths, **audio_checks_settings.check_kwargs())
    frame = attach_song_context(frame, song_rows)  # analysts slice by genre/creator without a join
    path = write_partition(frame, paths.warehouse_dir, "audio_checks", key)
    unusable = frame[frame["status"] != "ok"]
    _log_failed_songs(context, unusable.assign(reason=unusable["status"] + ": " + unusable["detail"].fillna("")),
                      "audio decoding", "reason")
    hard = frame[(frame["status"] == "ok") & frame["hard_fail"]]
    _log_failed_songs(context, hard.assign(reason=hard["hard_fail_reasons"].map(lambda r: ", ".join(r))),
                      "signal checks (hard fail)", "reason")
    reasons = collections.Counter(r for rs in frame["hard_fail_reasons"] for r in rs)
    return dg.MaterializeResult(
        metadata={
            **table_metadata(frame[["song_id", "status", "technical_score", "hard_fail", "loudness_lufs",
                                    "clipped_ratio", "silence_ratio", "bandwidth_hz"]], path),
            "status": counts_md(_status_counts(frame), "status", "songs"),
            "hard_fail_reasons": counts_md(dict(reasons), "reason", "songs"),
            "technical_score": histogram_md(frame["technical_score"], f"technical score {key}"),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            "scorer_version": dg.MetadataValue.text(CHECKS_VERSION),
        },
        tags=version_tags(CHECKS_VERSION),
        check_results=[unique_song_ids(frame),
                       values_in_range(frame, ["technical_score", "clipped_ratio", "silence_ratio"], 0.0, 1.0,
                                       "scores_in_range")])


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"pytorch", "parquet"}, code_version="flamingo_scores/1",
    partitions_def=daily_partitions, deps=[songs], check_specs=FLAMINGO_CHECKS,
    pool=GPU_POOL, op_tags=GPU_OP_TAGS, retry_policy=MODEL_RETRY_POLICY,
    description="Music Flamingo (the guide's prompt): five quality dimensions in [0, 1], "
                "overall_quality_score, genre/tempo/key/instruments/production style/mood, the raw "
                "answer and its parse status. Cache-first (data/music_flamingo_scores/<song_id>.json, "
                "keyed by scorer version and audio hash): a rerun scores only new or changed songs. "
                "GPU pool; weights from the flamingo resource (never downloaded).",
)
def flamingo_scores(context: dg.AssetExecutionContext, data_root: DataRootResource,
                    flamingo: MusicFlamingoResource, quality_gates: QualityGatesResource,
                    audio_checks_settings: AudioChecksResource) -> dg.MaterializeResult:
    from sunorecsys.quality.flamingo import ModelWeightsMissing
    from sunorecsys.quality.results import results_to_frame

    paths = data_root.paths
    key = context.partition_key
    song_rows = read_partition(paths, "songs", key)
    started = time.perf_counter()
    try:
        scorer = flamingo.build_scorer(paths, fetch=audio_checks_settings.fetch_audio)
        version = str(scorer.version)
        results = scorer.score_songs(song_rows, cache_dir=paths.flamingo_cache_dir, progress=False)
    except ModelWeightsMissing as exc:
        # a configuration problem: retrying cannot help
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    frame = results_to_frame(results)
    _fail_if_every_song_failed(frame, "Music Flamingo", key)
    path = write_partition(frame, paths.warehouse_dir, "flamingo_scores", key)
    failed = frame[frame["status"] == "failed"]
    _log_failed_songs(context, failed, "Music Flamingo scoring", "error")
    cached = int(frame["cached"].sum()) if "cached" in frame else 0
    counts = {"scored": int(((frame["status"] != "failed") & ~frame["cached"].astype(bool)).sum()),
              "cached": cached, "failed": len(failed),
              "parse_failures": int(parse_failures(frame).sum())}
    context.log.info(f"flamingo_scores {key}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return dg.MaterializeResult(
        metadata={
            **table_metadata(frame[["song_id", "status", *FLAMINGO_SCORE_COLUMNS, "genre", "error"]], path),
            **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
            "overall_quality_score": histogram_md(frame["overall_quality_score"], f"Music Flamingo {key}"),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            "scorer_version": dg.MetadataValue.text(version),
        },
        tags=version_tags(version),
        check_results=[unique_song_ids(frame),
                       values_in_range(frame, FLAMINGO_SCORE_COLUMNS, 0.0, 1.0, "scores_in_range"),
                       parse_failure_rate(frame, quality_gates.max_parse_failure_rate)])


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"pytorch", "parquet"}, code_version="audiobox_scores/1",
    partitions_def=daily_partitions, deps=[songs], check_specs=AUDIOBOX_CHECKS,
    pool=GPU_POOL, op_tags=GPU_OP_TAGS, retry_policy=MODEL_RETRY_POLICY,
    description="Meta Audiobox Aesthetics: CE, CU, PC, PQ on the model's 1-10 scale and rescaled to "
                "[0, 1], audiobox_score = their mean. GPU pool; checkpoint from the audiobox resource "
                "(never downloaded).",
)
def audiobox_scores(context: dg.AssetExecutionContext, data_root: DataRootResource,
                    audiobox: AudioboxResource, audio_checks_settings: AudioChecksResource
                    ) -> dg.MaterializeResult:
    from sunorecsys.quality.audiobox import AudioboxWeightsMissing, audiobox_results_to_frame

    paths = data_root.paths
    key = context.partition_key
    song_rows = read_partition(paths, "songs", key)
    started = time.perf_counter()
    try:
        scorer = audiobox.build_scorer(paths, fetch=audio_checks_settings.fetch_audio)
        version = str(scorer.version)
    except AudioboxWeightsMissing as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    results = []
    for start in range(0, len(song_rows), AUDIOBOX_CHUNK):
        results.extend(scorer.score_batch(song_rows.iloc[start:start + AUDIOBOX_CHUNK], paths))
        context.log.info(f"audiobox_scores {key}: {len(results)}/{len(song_rows)} songs")
    frame = audiobox_results_to_frame(results)
    _fail_if_every_song_failed(frame, "Audiobox Aesthetics", key)
    path = write_partition(frame, paths.warehouse_dir, "audiobox_scores", key)
    failed = frame[frame["status"] == "failed"]
    _log_failed_songs(context, failed, "Audiobox scoring", "error")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(frame[["song_id", "status", "ce", "cu", "pc", "pq", "audiobox_score", "error"]], path),
            "scored": dg.MetadataValue.int(int((frame["status"] != "failed").sum())),
            "cached": dg.MetadataValue.int(0),
            "failed": dg.MetadataValue.int(len(failed)),
            "audiobox_score": histogram_md(frame["audiobox_score"], f"Audiobox Aesthetics {key}"),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            "scorer_version": dg.MetadataValue.text(version),
        },
        tags=version_tags(version),
        check_results=[unique_song_ids(frame),
                       values_in_range(frame, ["ce_norm", "cu_norm", "pc_norm", "pq_norm", "audiobox_score"],
                                       0.0, 1.0, "scores_in_range")])


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"python", "parquet"}, code_version="quality_scores/1",
    partitions_def=daily_partitions, deps=[songs, audio_checks, flamingo_scores, audiobox_scores],
    check_specs=QUALITY_CHECKS,
    description="One quality score per song in [0, 1] blended from the sources present for the "
                "partition (Music Flamingo 0.6, Audiobox 0.4, renormalised over what exists; the "
                "signal technical score when neither model scored the song); hard-failed audio "
                "scores 0. Records the sources and coverage. Its checks are blocking: a bad "
                "partition stops the run before the recommender is refitted.",
)
def quality_scores(context: dg.AssetExecutionContext, data_root: DataRootResource,
                   quality_gates: QualityGatesResource) -> dg.MaterializeResult:
    from sunorecsys.quality.blend import combine_quality_scores

    paths = data_root.paths
    key = context.partition_key
    song_rows = read_partition(paths, "songs", key)
    checks = read_partition(paths, "audio_checks", key)
    flamingo_part = read_partition_if_exists(paths, "flamingo_scores", key)
    audiobox_part = read_partition_if_exists(paths, "audiobox_scores", key)
    used = ["signal"] + [name for name, part in (("music_flamingo", flamingo_part),
                                                  ("audiobox", audiobox_part)) if part is not None]
    context.log.info(f"quality_scores {key}: blending {', '.join(used)}")
    frame = combine_quality_scores(audio_checks=checks, flamingo=flamingo_part, audiobox=audiobox_part)
    frame = attach_song_context(frame, song_rows)
    path = write_partition(frame, paths.warehouse_dir, "quality_scores", key)
    unscored = frame[frame["quality_score"].isna()]
    _log_failed_songs(context, unscored.assign(reason="no source scored it"), "quality scoring", "reason")
    source_counts = collections.Counter(s for ss in frame["sources"] for s in ss) if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            **table_metadata(frame[["song_id", "quality_score", "sources", "coverage", "hard_fail",
                                    "technical_score", "flamingo_score", "audiobox_score"]], path),
            "sources_present": dg.MetadataValue.text(", ".join(used)),
            "songs_per_source": counts_md(dict(source_counts), "source", "songs"),
            "hard_failed": dg.MetadataValue.int(int(frame["hard_fail"].sum()) if len(frame) else 0),
            "mean_quality_score": dg.MetadataValue.float(float(frame["quality_score"].mean())
                                                         if frame["quality_score"].notna().any() else 0.0),
            "quality_score": histogram_md(frame["quality_score"], f"quality score {key}"),
        },
        check_results=[
            unique_song_ids(frame),
            values_in_range(frame, QUALITY_SCORE_COLUMNS, 0.0, 1.0, "scores_in_range"),
            scored_share(frame, len(song_rows), quality_gates.min_scored_share),
            parse_failure_rate(flamingo_part, quality_gates.max_parse_failure_rate),
        ])


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"json"}, code_version="scores_file/1",
    deps=[quality_scores, flamingo_scores],
    description="data/music_flamingo_scores.json in the guide's format ({song_id: {song_id, title, "
                "scores: {...}}}) with the blended overall_quality_score of every scored song, so the "
                "guide's QualityFilter / HybridRecommender snippets work with or without model weights.",
)
def music_flamingo_scores_file(context: dg.AssetExecutionContext, data_root: DataRootResource
                               ) -> dg.MaterializeResult:
    from sunorecsys.quality.export import guide_entries
    from sunorecsys.quality.scores_file import write_scores_file

    paths = data_root.paths
    quality = read_table(paths.warehouse_dir, "quality_scores")
    if not len(quality):
        raise dg.Failure(description="no quality_scores partitions yet: materialize quality_scores first",
                         allow_retries=False)
    flamingo_all = read_table(paths.warehouse_dir, "flamingo_scores")
    song_rows = pd.read_parquet(paths.processed_songs) if paths.processed_songs.exists() else None
    entries = guide_entries(quality, flamingo_df=flamingo_all if len(flamingo_all) else None, songs_df=song_rows)
    path = write_scores_file(entries, paths.flamingo_scores_file)
    with_dims = sum(1 for e in entries.values() if "production_quality" in e.get("scores", {}))
    context.log.info(f"wrote {len(entries)} entries to {path}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(len(entries)),
        "path": dg.MetadataValue.path(str(path)),
        "songs_with_flamingo_dimensions": dg.MetadataValue.int(with_dims),
        "overall_quality_score": histogram_md(
            [e["scores"].get("overall_quality_score") for e in entries.values()], "overall quality score"),
    })
