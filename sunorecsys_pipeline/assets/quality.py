"""Quality assets: signal checks, the two model scorers, the blend, and the guide's scores file.

Each partitioned asset handles a range of days in one step (``BackfillPolicy.single_run()``: a
backfill or a nightly run pays Dagster's start-up once), writes one Parquet file per day (atomic,
typed even when the day is empty) and returns a ``MaterializeResult``; the scorer version that
produced a partition is stored as a tag (versions.py) so the nightly schedule can rescore stale
partitions.
"""


import collections
import datetime as dt
import time

import dagster as dg
import pandas as pd
import pyarrow as pa

from sunorecsys.audio.errors import REASONS as AUDIO_REASONS
from sunorecsys.audio.errors import UNAVAILABLE_REASONS
from sunorecsys.catalog.song_context import attach_song_context
from sunorecsys.warehouse.parquet import read_table
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
    combine,
    heard_share,
    parse_failure_rate,
    parse_failures,
    songs_accounted_for,
    unique_song_ids,
    values_in_range,
)
from sunorecsys_pipeline.metadata import counts_md, for_days, histogram_md, table_metadata
from sunorecsys_pipeline.partitions import daily_partitions
from sunorecsys_pipeline.resources import (
    AudioboxResource,
    AudioChecksResource,
    DataRootResource,
    MusicFlamingoResource,
    QualityGatesResource,
)
from sunorecsys_pipeline.tables import read_days, schema_of, with_context, write_aside, write_day
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


def _songs_of(paths, keys: list[str]) -> dict[str, pd.DataFrame]:
    """``{day: songs partition}`` for every day of the step (a clear Failure if one is missing)."""
    return {key: read_partition(paths, "songs", key) for key in keys}


def _age_days(key: str) -> int:
    """Whole days between the partition's day and today (UTC)."""
    return (dt.datetime.now(dt.UTC).date() - dt.date.fromisoformat(key)).days


def _days_label(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]} ({len(keys)} days)"


def _reusable_checks(previous: pd.DataFrame | None, song_ids: set[str], version: str, give_up: bool
                     ) -> pd.DataFrame:
    """Rows of a day's previous audio_checks that need no new check: same checks version, the song
    still in the day, and its audio heard (or, past the give-up age, unheard for good)."""
    if previous is None or not len(previous):
        return pd.DataFrame()
    keep = previous["checks_version"].eq(version) & previous["song_id"].astype(str).isin(song_ids)
    if not give_up:
        keep &= ~previous["status"].isin(UNAVAILABLE_REASONS)
    return previous[keep].drop(columns=["date"], errors="ignore")


def _audio_nowhere(songs: pd.DataFrame, paths) -> dict:
    """``{song_id: AudioUnavailable}`` of the songs whose audio is nowhere to be had without a
    download (no file, no fetched copy), found here in the run's own process: a few ``stat`` calls a
    song instead of a trip through the checks' worker pool, which would find the same and say the
    same (``check_song`` resolves with the same function and turns the error into the same row). An
    archive of 20,000 songs without audio took minutes in the pool, and is retried every run until
    the give-up age. Empty while a producer of this process still writes the audio (``make demo``,
    sunorecsys.audio.arrivals): the pool then waits for each song's file, and says the same of a
    song whose audio never comes."""
    from sunorecsys.audio.arrivals import arriving
    from sunorecsys.audio.errors import AudioUnavailable
    from sunorecsys.audio.source import resolve_audio_path

    if arriving(paths.audio_dir) is not None:
        return {}
    out = {}
    for song in songs.to_dict("records"):
        try:
            resolve_audio_path(song, paths, fetch=False, audio_roots=paths.extra_audio_roots)
        except AudioUnavailable as exc:
            out[str(song["song_id"])] = exc
    return out


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"python", "parquet"}, code_version="audio_checks/1",
    partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[songs], check_specs=AUDIO_CHECKS_CHECKS,
    description="Signal checks per song (CPU): decode status, duration, loudness (LUFS), true peak, "
                "clipping and silence ratios, bandwidth, a technical score in [0, 1] and hard-fail "
                "flags. Remote audio is fetched first, in parallel, with a hard deadline per download "
                "and a circuit breaker per host. Audio that could not be had (missing, fetch_failed, "
                "host_down) is unscored, not bad, and retried by later runs until the give-up age; "
                "songs already heard with the current checks version are not checked again.",
)
def audio_checks(context: dg.AssetExecutionContext, data_root: DataRootResource,
                 audio_checks_settings: AudioChecksResource) -> dg.MaterializeResult:
    from sunorecsys.audio.checks import (
        AUDIO_CHECKS_SCHEMA,
        CHECKS_VERSION,
        COLUMNS,
        failed_row,
        run_audio_checks,
    )
    from sunorecsys.audio.fetching import PrefetchReport, prefetch_audio

    paths = data_root.paths
    keys = context.partition_keys
    settings = audio_checks_settings
    started = time.perf_counter()
    by_day = _songs_of(paths, keys)
    previous = read_days(paths, "audio_checks", keys)
    reused: dict[str, pd.DataFrame] = {}
    todo = []
    for key, day_songs in by_day.items():
        ids = set(day_songs["song_id"].astype(str))
        reused[key] = _reusable_checks(previous.get(key), ids, CHECKS_VERSION,
                                       give_up=_age_days(key) > settings.give_up_days)
        done = set(reused[key]["song_id"].astype(str)) if len(reused[key]) else set()
        todo.append(day_songs[~day_songs["song_id"].astype(str).isin(done)])
    to_check = pd.concat(todo, ignore_index=True) if todo else pd.DataFrame()
    report = PrefetchReport()
    if settings.fetch_audio and len(to_check):
        report = prefetch_audio(to_check.to_dict("records"), paths, settings.fetch_settings(),
                                log=context.log.warning)
    failures = dict(report.failures)
    if len(to_check):
        failures |= _audio_nowhere(to_check[~to_check["song_id"].astype(str).isin(failures)], paths)
    unavailable = to_check["song_id"].astype(str).isin(failures) if len(to_check) else pd.Series(dtype=bool)
    checked = run_audio_checks(to_check[~unavailable] if len(to_check) else to_check, paths,
                               workers=settings.workers, fetch=False)
    failed_rows = []
    for song in (to_check[unavailable].to_dict("records") if len(to_check) else []):
        exc = failures[str(song["song_id"])]
        duration = song.get("duration_s")
        failed_rows.append(failed_row(song["song_id"], exc.reason, exc.detail,
                                      float(duration) if pd.notna(duration) else None))
    new_rows = pd.concat([checked, pd.DataFrame(failed_rows, columns=COLUMNS).astype(checked.dtypes.to_dict())],
                         ignore_index=True)
    schema = with_context(AUDIO_CHECKS_SCHEMA)
    frames, check_results, path = [], {"unique": [], "range": []}, None
    for key, day_songs in by_day.items():
        ids = day_songs["song_id"].astype(str)
        rows = pd.concat([reused[key], new_rows], ignore_index=True).drop_duplicates("song_id")
        # one row per song of the day, in the songs partition's order
        frame = ids.to_frame("song_id").merge(rows.assign(song_id=rows["song_id"].astype(str)),
                                              on="song_id", how="inner")
        frame = attach_song_context(frame, day_songs)  # analysts slice by genre/creator without a join
        path = write_day(frame, paths, "audio_checks", key, schema)
        frames.append(frame)
        check_results["unique"].append((key, unique_song_ids(frame)))
        check_results["range"].append((key, values_in_range(frame, ["technical_score", "clipped_ratio",
                                                                    "silence_ratio"], 0.0, 1.0, "scores_in_range")))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    unusable = frame[frame["status"] != "ok"]
    _log_failed_songs(context, unusable.assign(reason=unusable["status"] + ": " + unusable["detail"].fillna("")),
                      "audio decoding", "reason")
    hard = frame[(frame["status"] == "ok") & frame["hard_fail"].astype(bool)]
    _log_failed_songs(context, hard.assign(reason=hard["hard_fail_reasons"].map(lambda r: ", ".join(r))),
                      "signal checks (hard fail)", "reason")
    reasons = collections.Counter(r for rs in frame["hard_fail_reasons"] for r in (rs if rs is not None else []))
    unheard = int(frame["status"].isin(UNAVAILABLE_REASONS).sum()) if len(frame) else 0
    context.log.info(f"audio_checks {_days_label(keys)}: {len(frame)} songs, {len(new_rows)} checked now, "
                     f"{len(frame) - len(new_rows)} reused, {unheard} unheard")
    return dg.MaterializeResult(
        metadata=for_days({
            **table_metadata(frame[["song_id", "status", "technical_score", "hard_fail", "loudness_lufs",
                                    "clipped_ratio", "silence_ratio", "bandwidth_hz"]],
                             path if len(keys) == 1 else None),
            "status": counts_md(_status_counts(frame), "status", "songs"),
            "hard_fail_reasons": counts_md(dict(reasons), "reason", "songs"),
            "technical_score": lambda: histogram_md(frame["technical_score"], f"technical score {keys[0]}"),
            "checked_now": dg.MetadataValue.int(len(new_rows)),
            "reused": dg.MetadataValue.int(len(frame) - len(new_rows)),
            "unheard": dg.MetadataValue.int(unheard),
            "fetched": dg.MetadataValue.int(len(report.fetched)),
            "fetch_seconds": dg.MetadataValue.float(round(report.seconds, 2)),
            "hosts_down": dg.MetadataValue.text(", ".join(report.open_hosts) or "none"),
            "days": dg.MetadataValue.int(len(keys)),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            "scorer_version": dg.MetadataValue.text(CHECKS_VERSION),
        }, len(keys)),
        tags=version_tags(CHECKS_VERSION),
        check_results=[combine(check_results["unique"]), combine(check_results["range"])])


def _split_by_day(frame: pd.DataFrame, by_day: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    ids = frame["song_id"].astype(str)
    return {key: frame[ids.isin(set(day["song_id"].astype(str)))] for key, day in by_day.items()}


def _no_weights_result(checks: list[str], variable: str, asset: str) -> dg.MaterializeResult:
    """Success without output: no weights configured. quality_scores then blends what exists."""
    note = (f"no model weights configured ({variable} is unset or points nowhere): nothing scored, no "
            f"partition written; quality_scores uses the signal checks (see README 'Model weights')")
    return dg.MaterializeResult(
        metadata={"weights": dg.MetadataValue.text("not configured"), "note": dg.MetadataValue.text(note),
                  "scored": dg.MetadataValue.int(0)},
        check_results=[dg.AssetCheckResult(check_name=c, passed=True, description=f"{asset}: {note}")
                       for c in checks])


WEIGHTS_NOTE = ("Needs model weights: {variable} (never downloaded). Without them the asset succeeds "
                "with nothing scored and a metadata note, and quality_scores blends the sources that exist.")


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"pytorch", "parquet"}, code_version="flamingo_scores/1",
    partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[songs], check_specs=FLAMINGO_CHECKS,
    pool=GPU_POOL, op_tags=GPU_OP_TAGS, retry_policy=MODEL_RETRY_POLICY,
    metadata={"needs_weights": "SUNORECSYS_FLAMINGO_MODEL"},
    description=WEIGHTS_NOTE.format(variable="SUNORECSYS_FLAMINGO_MODEL") + " "
                "Music Flamingo (the guide's prompt): five quality dimensions in [0, 1], "
                "overall_quality_score, genre/tempo/key/instruments/production style/mood, the raw "
                "answer and its parse status. Cache-first (data/music_flamingo_scores/<song_id>.json, "
                "keyed by scorer version and audio hash): a rerun scores only new or changed songs. "
                "GPU pool.",
)
def flamingo_scores(context: dg.AssetExecutionContext, data_root: DataRootResource,
                    flamingo: MusicFlamingoResource, quality_gates: QualityGatesResource,
                    audio_checks_settings: AudioChecksResource) -> dg.MaterializeResult:
    from sunorecsys.quality.flamingo import ModelWeightsMissing
    from sunorecsys.quality.results import results_to_frame

    if not flamingo.weights_available():
        return _no_weights_result([s.name for s in FLAMINGO_CHECKS], "SUNORECSYS_FLAMINGO_MODEL", "flamingo_scores")
    paths = data_root.paths
    keys = context.partition_keys
    by_day = _songs_of(paths, keys)
    song_rows = pd.concat(list(by_day.values()), ignore_index=True)
    started = time.perf_counter()
    try:
        scorer = flamingo.build_scorer(paths, fetch=audio_checks_settings.fetch_audio)
        version = str(scorer.version)
        results = scorer.score_songs(song_rows, cache_dir=paths.flamingo_cache_dir, progress=False) \
            if len(song_rows) else []
    except ModelWeightsMissing as exc:
        # a configuration problem: retrying cannot help
        raise dg.Failure(description=f"{exc}\n(set SUNORECSYS_FLAMINGO_MODEL to a local checkpoint folder)",
                         allow_retries=False) from exc
    frame = results_to_frame(results)
    schema = schema_of(frame, list_columns=["missing_dimensions"])
    checks = {"unique": [], "range": [], "parse": []}
    for key, part in _split_by_day(frame, by_day).items():
        _fail_if_every_song_failed(part, "Music Flamingo", key)
        write_day(part, paths, "flamingo_scores", key, schema)
        checks["unique"].append((key, unique_song_ids(part)))
        checks["range"].append((key, values_in_range(part, FLAMINGO_SCORE_COLUMNS, 0.0, 1.0, "scores_in_range")))
        checks["parse"].append((key, parse_failure_rate(part, quality_gates.max_parse_failure_rate)))
    failed = frame[frame["status"] == "failed"]
    _log_failed_songs(context, failed, "Music Flamingo scoring", "error")
    cached = int(frame["cached"].sum()) if "cached" in frame else 0
    counts = {"scored": int(((frame["status"] != "failed") & ~frame["cached"].astype(bool)).sum()),
              "cached": cached, "failed": len(failed),
              "parse_failures": int(parse_failures(frame).sum())}
    context.log.info(f"flamingo_scores {_days_label(keys)}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return dg.MaterializeResult(
        metadata=for_days({
            **table_metadata(frame[["song_id", "status", *FLAMINGO_SCORE_COLUMNS, "genre", "error"]]),
            **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
            "overall_quality_score": lambda: histogram_md(frame["overall_quality_score"], f"Music Flamingo {keys[0]}"),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            "scorer_version": dg.MetadataValue.text(version),
        }, len(keys)),
        tags=version_tags(version),
        check_results=[combine(checks["unique"]), combine(checks["range"]), combine(checks["parse"])])


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"pytorch", "parquet"}, code_version="audiobox_scores/1",
    partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[songs], check_specs=AUDIOBOX_CHECKS,
    pool=GPU_POOL, op_tags=GPU_OP_TAGS, retry_policy=MODEL_RETRY_POLICY,
    metadata={"needs_weights": "SUNORECSYS_AUDIOBOX_CHECKPOINT"},
    description=WEIGHTS_NOTE.format(variable="SUNORECSYS_AUDIOBOX_CHECKPOINT") + " "
                "Meta Audiobox Aesthetics: CE, CU, PC, PQ on the model's 1-10 scale and rescaled to "
                "[0, 1], audiobox_score = their mean. GPU pool.",
)
def audiobox_scores(context: dg.AssetExecutionContext, data_root: DataRootResource,
                    audiobox: AudioboxResource, audio_checks_settings: AudioChecksResource
                    ) -> dg.MaterializeResult:
    from sunorecsys.quality.audiobox import AudioboxWeightsMissing, audiobox_results_to_frame

    if not audiobox.weights_available():
        return _no_weights_result([s.name for s in AUDIOBOX_CHECKS], "SUNORECSYS_AUDIOBOX_CHECKPOINT",
                                  "audiobox_scores")
    paths = data_root.paths
    keys = context.partition_keys
    by_day = _songs_of(paths, keys)
    song_rows = pd.concat(list(by_day.values()), ignore_index=True)
    started = time.perf_counter()
    try:
        scorer = audiobox.build_scorer(paths, fetch=audio_checks_settings.fetch_audio)
        version = str(scorer.version)
    except AudioboxWeightsMissing as exc:
        raise dg.Failure(description=f"{exc}\n(set SUNORECSYS_AUDIOBOX_CHECKPOINT to the checkpoint)",
                         allow_retries=False) from exc
    results = []
    for start in range(0, len(song_rows), AUDIOBOX_CHUNK):
        results.extend(scorer.score_batch(song_rows.iloc[start:start + AUDIOBOX_CHUNK], paths))
        context.log.info(f"audiobox_scores {_days_label(keys)}: {len(results)}/{len(song_rows)} songs")
    frame = audiobox_results_to_frame(results)
    schema = schema_of(frame)
    checks = {"unique": [], "range": []}
    for key, part in _split_by_day(frame, by_day).items():
        _fail_if_every_song_failed(part, "Audiobox Aesthetics", key)
        write_day(part, paths, "audiobox_scores", key, schema)
        checks["unique"].append((key, unique_song_ids(part)))
        checks["range"].append((key, values_in_range(part, ["ce_norm", "cu_norm", "pc_norm", "pq_norm",
                                                            "audiobox_score"], 0.0, 1.0, "scores_in_range")))
    failed = frame[frame["status"] == "failed"]
    _log_failed_songs(context, failed, "Audiobox scoring", "error")
    return dg.MaterializeResult(
        metadata=for_days({
            **table_metadata(frame[["song_id", "status", "ce", "cu", "pc", "pq", "audiobox_score", "error"]]),
            "scored": dg.MetadataValue.int(int((frame["status"] != "failed").sum())),
            "cached": dg.MetadataValue.int(0),
            "failed": dg.MetadataValue.int(len(failed)),
            "audiobox_score": lambda: histogram_md(frame["audiobox_score"], f"Audiobox Aesthetics {keys[0]}"),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            "scorer_version": dg.MetadataValue.text(version),
        }, len(keys)),
        tags=version_tags(version),
        check_results=[combine(checks["unique"]), combine(checks["range"])])


@dg.asset(
    group_name="quality", owners=OWNERS, kinds={"python", "parquet"}, code_version="quality_scores/1",
    partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[songs, audio_checks, flamingo_scores, audiobox_scores], check_specs=QUALITY_CHECKS,
    description="One quality score per song in [0, 1] blended from the sources present for the "
                "partition (Music Flamingo 0.6, Audiobox 0.4, renormalised over what exists; the "
                "signal technical score when neither model scored the song); hard-failed audio "
                "scores 0. A song whose audio could not be had is unscored (NaN) with an "
                "unscored_reason ('audio_unavailable: fetch_failed', ...) and retry=True until the "
                "give-up age. Blocking checks (duplicates, ranges, songs lost, parse failures) stop "
                "the run before the refit and keep the last good partition (the bad day is written "
                "to warehouse/_rejected/); heard_share only warns.",
)
def quality_scores(context: dg.AssetExecutionContext, data_root: DataRootResource,
                   quality_gates: QualityGatesResource, audio_checks_settings: AudioChecksResource
                   ) -> dg.MaterializeResult:
    from sunorecsys.quality.blend import BLEND_SCHEMA, combine_quality_scores

    paths = data_root.paths
    keys = context.partition_keys
    schema = with_context(BLEND_SCHEMA.append(pa.field("retry", pa.bool_())))
    results: dict[str, list] = collections.defaultdict(list)
    frames, used_all, rejected, path = [], set(), [], None
    for key in keys:
        song_rows = read_partition(paths, "songs", key)
        checks = read_partition(paths, "audio_checks", key)
        flamingo_part = read_partition_if_exists(paths, "flamingo_scores", key)
        audiobox_part = read_partition_if_exists(paths, "audiobox_scores", key)
        used = ["signal"] + [name for name, part in (("music_flamingo", flamingo_part),
                                                      ("audiobox", audiobox_part)) if part is not None]
        used_all.update(used)
        frame = combine_quality_scores(audio_checks=checks, flamingo=flamingo_part, audiobox=audiobox_part)
        frame = attach_song_context(frame, song_rows)
        retry_allowed = _age_days(key) <= audio_checks_settings.give_up_days
        frame["retry"] = frame["unscored_reason"].fillna("").str.startswith("audio_unavailable:") & retry_allowed
        day_results = [
            unique_song_ids(frame),
            values_in_range(frame, QUALITY_SCORE_COLUMNS, 0.0, 1.0, "scores_in_range"),
            songs_accounted_for(frame, song_rows["song_id"]),
            parse_failure_rate(flamingo_part, quality_gates.max_parse_failure_rate),
            heard_share(frame, quality_gates.min_heard_share),
        ]
        for r in day_results:
            results[r.check_name].append((key, r))
        blocking_failed = [r.check_name for r in day_results
                           if not r.passed and r.severity == dg.AssetCheckSeverity.ERROR]
        if blocking_failed:
            aside = write_aside(frame, paths, "quality_scores", key, schema)
            rejected.append(key)
            context.log.error(f"quality_scores {key} failed {', '.join(blocking_failed)}: not promoted; the last "
                              f"good partition stays, this one is at {aside}")
        else:
            path = write_day(frame, paths, "quality_scores", key, schema)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    unscored = frame[frame["quality_score"].isna()]
    _log_failed_songs(context, unscored, "quality scoring", "unscored_reason")
    source_counts = collections.Counter(s for ss in frame["sources"] for s in ss) if len(frame) else {}
    reasons = dict(collections.Counter(unscored["unscored_reason"])) if len(unscored) else {}
    context.log.info(f"quality_scores {_days_label(keys)}: {len(frame) - len(unscored)} scored, "
                     f"{len(unscored)} unscored ({reasons or 'none'})")
    return dg.MaterializeResult(
        metadata=for_days({
            **table_metadata(frame[["song_id", "quality_score", "unscored_reason", "sources", "coverage",
                                    "hard_fail", "technical_score", "flamingo_score", "audiobox_score"]],
                             path if len(keys) == 1 else None),
            "sources_present": dg.MetadataValue.text(", ".join(sorted(used_all))),
            "songs_per_source": counts_md(dict(source_counts), "source", "songs"),
            "scored": dg.MetadataValue.int(len(frame) - len(unscored)),
            "unscored": dg.MetadataValue.int(len(unscored)),
            "unscored_reasons": counts_md(reasons, "reason", "songs"),
            "to_retry": dg.MetadataValue.int(int(frame["retry"].sum()) if len(frame) else 0),
            "hard_failed": dg.MetadataValue.int(int(frame["hard_fail"].sum()) if len(frame) else 0),
            "days_not_promoted": dg.MetadataValue.text(", ".join(rejected) or "none"),
            "mean_quality_score": dg.MetadataValue.float(float(frame["quality_score"].mean())
                                                         if frame["quality_score"].notna().any() else 0.0),
            "quality_score": lambda: histogram_md(frame["quality_score"], f"quality score {keys[0]}"),
        }, len(keys)),
        check_results=[combine(results[spec.name]) for spec in QUALITY_CHECKS])


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
    if not len(quality):  # no song scored yet (e.g. the first days were empty): an empty file
        context.log.info("no quality scores yet: writing an empty scores file")
    flamingo_all = read_table(paths.warehouse_dir, "flamingo_scores")
    song_rows = pd.read_parquet(paths.processed_songs) if paths.processed_songs.exists() else None
    entries = {} if not len(quality) else guide_entries(quality, flamingo_df=flamingo_all if len(flamingo_all) else None, songs_df=song_rows)
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
