"""Signal checks of a catalogue: measures per song, a technical score in [0, 1], hard-fail flags.

One row per song, never a crash: a song whose audio cannot be used gets ``status`` = the
:class:`~sunorecsys.audio.errors.AudioUnavailable` reason; audio that could not be had (missing,
fetch failed, host down) is unscored (``technical_score`` NaN, no hard fail), audio that was had
and is broken (unreadable, empty, too short) gets ``technical_score`` 0 and ``hard_fail``.

Technical score (``technical_score``)
    A product of sub-scores, each in [0, 1] and raised to an importance exponent::

        score = prod_i  s_i ** w_i

    so a single fatal defect (a sub-score of 0) zeroes the score and mild ones multiply down.
    ``ramp(x, a, b)`` is 0 at or below ``a``, 1 at or above ``b``, linear between.

    ========== =================================================================== ===
    sub-score  definition                                                          w
    ========== =================================================================== ===
    loudness   ramp(LUFS, -45, -30) * (1 - ramp(LUFS, -7, -3))                     1
    clipping   1 - ramp(log10(clipped_ratio), -4, -2)   (0.01 % -> 1, 1 % -> 0)    1
    true_peak  1 - ramp(true peak dBFS, 0.5, 3)                                    0.5
    silence    1 - ramp(silence_ratio, 0.25, 0.75)                                 1
    bandwidth  ramp(bandwidth Hz, 2500, 8000)                                      1
    noise      1 - ramp(spectral flatness, 0.05, 0.25)                             1
    dynamics   ramp(dynamic range dB, 2, 5)                                        0.5
    crest      ramp(crest factor dB, 4, 8)                                         0.5
    duration   ramp(duration / metadata duration, 0.5, 0.9) (1 without metadata)  1
    ========== =================================================================== ===

Hard fails (``hard_fail_reasons``): the AudioUnavailable reason when not decodable;
``mostly_silent`` (silence_ratio >= 0.8 or loudness <= -50 LUFS); ``truncated`` (duration below
80 % of the catalogue's duration); ``heavy_clipping`` (clipped_ratio >= 2 %, or, for lossy files
whose plateaus the codec smeared, loudness >= -5 LUFS with a true peak >= +2 dBFS); ``noise_only``
(spectral flatness >= 0.5 and dynamic range < 3 dB); ``band_limited`` (bandwidth < 1500 Hz).
Stream integrity (these also zero the score): ``non_finite_samples`` (NaN/inf in the file) and
``truncated`` when the length decoded to the stream's real end is below 98 % (and 0.5 s) of what the
file's own header claims (FLAC/WAV frame count, MP3 Xing/VBRI frame count); ``detail`` says the
seconds decoded against the seconds expected. A song whose check itself fails gets a row with
status ``out_of_memory``, ``check_failed`` or ``worker_crashed`` (the worker process died twice).

The thresholds were set on synthesised signals and the sample catalogue (tests/test_signal_checks.py
measures the ranking AUC against its ground truth); ``checks_version`` changes with them.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sunorecsys.audio.decode import decode_audio
from sunorecsys.audio.errors import UNAVAILABLE_REASONS, AudioUnavailable
from sunorecsys.audio.levels import LevelMeter
from sunorecsys.audio.measures import signal_measures
from sunorecsys.audio.source import DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_SCHEMES, resolve_audio_path
from sunorecsys.paths import DataPaths

CHECKS_VERSION = "signal-checks/1"

# The measures other than the level ones (which see the whole stream) look at the first 10 minutes
# of a longer song: the analysis signal is then 600 s of mono float32 at <= 48 kHz (<= 115 MB).
MAX_CHECK_SECONDS = 600.0
# The analysis signal keeps the spectrum up to at least 16 kHz (band-limit detection needs it).
MIN_ANALYSIS_RATE = 32000
MAX_ANALYSIS_RATE = 48000
# A decoded length this much below what the file's own header claims means a truncated file
# (an MP3's Xing/VBRI frame count includes ~50 ms of encoder delay and padding).
HEADER_TRUNCATION_RATIO = 0.98
HEADER_TRUNCATION_MIN_S = 0.5
# Row statuses of songs whose check itself failed (beside the AudioUnavailable reasons).
OUT_OF_MEMORY = "out_of_memory"
CHECK_FAILED = "check_failed"
WORKER_CRASHED = "worker_crashed"
NON_FINITE = "non_finite_samples"
# Songs in flight per worker: enough to keep workers busy, few enough to retry after a crash.
_IN_FLIGHT_PER_WORKER = 2
WORKER_MEMORY_ENV = "SUNORECSYS_AUDIO_WORKER_MEMORY_MB"
# Below this the measures mean nothing (one loudness gating block is 0.4 s).
MIN_SECONDS = 0.5

EXPONENTS: dict[str, float] = {
    "loudness": 1.0, "clipping": 1.0, "true_peak": 0.5, "silence": 1.0, "bandwidth": 1.0,
    "noise": 1.0, "dynamics": 0.5, "crest": 0.5, "duration": 1.0,
}

HARD_FAIL_SILENCE_RATIO = 0.8
HARD_FAIL_LOUDNESS_LUFS = -50.0
HARD_FAIL_DURATION_RATIO = 0.8
HARD_FAIL_CLIPPED_RATIO = 0.02
HARD_FAIL_OVERDRIVEN_LUFS = -5.0
HARD_FAIL_OVERDRIVEN_TRUE_PEAK_DBFS = 2.0
HARD_FAIL_FLATNESS = 0.5
HARD_FAIL_DYNAMIC_RANGE_DB = 3.0
HARD_FAIL_BANDWIDTH_HZ = 1500.0

COLUMNS: list[str] = [
    "song_id", "status", "detail", "duration_s", "metadata_duration_s", "loudness_lufs", "true_peak_dbfs",
    "clipped_ratio", "silence_ratio", "bandwidth_hz", "crest_factor_db", "technical_score", "hard_fail",
    "hard_fail_reasons", "audio_sha256", "checks_version",
    # beyond the contract: the other measures behind the score
    "sample_peak_dbfs", "spectral_flatness", "dynamic_range_db", "duration_ratio", "audio_path",
    # stream integrity: the container's claimed length and the count of NaN/inf samples
    "header_duration_s", "nonfinite_samples",
]


_FLOAT_COLUMNS = (
    "duration_s", "metadata_duration_s", "loudness_lufs", "true_peak_dbfs", "clipped_ratio", "silence_ratio",
    "bandwidth_hz", "crest_factor_db", "technical_score", "sample_peak_dbfs", "spectral_flatness",
    "dynamic_range_db", "duration_ratio", "header_duration_s", "nonfinite_samples",
)
# The audio_checks table's Arrow schema (for write_partition(..., schema=AUDIO_CHECKS_SCHEMA)).
AUDIO_CHECKS_SCHEMA = pa.schema([
    pa.field(name, pa.float64()) if name in _FLOAT_COLUMNS
    else pa.field(name, pa.bool_()) if name == "hard_fail"
    else pa.field(name, pa.list_(pa.string())) if name == "hard_fail_reasons"
    else pa.field(name, pa.string())
    for name in COLUMNS
])


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between."""
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def sub_scores(measures: Mapping[str, float], metadata_duration_s: float | None) -> dict[str, float]:
    """Each sub-score in [0, 1] (see the module docstring)."""
    loud = float(measures["loudness_lufs"])
    clipped = float(measures["clipped_ratio"])
    ratio = (float(measures["duration_s"]) / metadata_duration_s) if metadata_duration_s else None
    return {
        "loudness": ramp(loud, -45.0, -30.0) * (1.0 - ramp(loud, -7.0, -3.0)),
        "clipping": 1.0 - ramp(math.log10(max(clipped, 1e-12)), -4.0, -2.0),
        "true_peak": 1.0 - ramp(float(measures["true_peak_dbfs"]), 0.5, 3.0),
        "silence": 1.0 - ramp(float(measures["silence_ratio"]), 0.25, 0.75),
        "bandwidth": ramp(float(measures["bandwidth_hz"]), 2500.0, 8000.0),
        "noise": 1.0 - ramp(float(measures["spectral_flatness"]), 0.05, 0.25),
        "dynamics": ramp(float(measures["dynamic_range_db"]), 2.0, 5.0),
        "crest": ramp(float(measures["crest_factor_db"]), 4.0, 8.0),
        "duration": 1.0 if ratio is None else ramp(ratio, 0.5, 0.9),
    }


def technical_score(measures: Mapping[str, float], metadata_duration_s: float | None = None) -> float:
    """``prod s_i ** w_i`` over :func:`sub_scores`, in [0, 1] (1 = no technical defect seen)."""
    score = 1.0
    for name, value in sub_scores(measures, metadata_duration_s).items():
        score *= value ** EXPONENTS[name]
    return float(min(max(score, 0.0), 1.0))


def hard_fail_reasons(measures: Mapping[str, float], metadata_duration_s: float | None = None) -> list[str]:
    """Defects bad enough that the song must never be recommended (empty list = none)."""
    reasons = []
    if (measures["silence_ratio"] >= HARD_FAIL_SILENCE_RATIO
            or measures["loudness_lufs"] <= HARD_FAIL_LOUDNESS_LUFS):
        reasons.append("mostly_silent")
    if metadata_duration_s and measures["duration_s"] < HARD_FAIL_DURATION_RATIO * metadata_duration_s:
        reasons.append("truncated")
    if measures["clipped_ratio"] >= HARD_FAIL_CLIPPED_RATIO or (
            # A lossy encode smears clipped plateaus (no runs left to count) but leaves the song
            # extremely loud with large inter-sample overs: both together mean it was overdriven.
            measures["loudness_lufs"] >= HARD_FAIL_OVERDRIVEN_LUFS
            and measures["true_peak_dbfs"] >= HARD_FAIL_OVERDRIVEN_TRUE_PEAK_DBFS):
        reasons.append("heavy_clipping")
    if (measures["spectral_flatness"] >= HARD_FAIL_FLATNESS
            and measures["dynamic_range_db"] < HARD_FAIL_DYNAMIC_RANGE_DB):
        reasons.append("noise_only")
    if measures["bandwidth_hz"] < HARD_FAIL_BANDWIDTH_HZ and "mostly_silent" not in reasons:
        reasons.append("band_limited")
    return reasons


def failed_row(song_id: object, reason: str, detail: str, metadata_duration_s: float | None,
               sha256: str | None = None, audio_path: str | None = None) -> dict[str, Any]:
    """The audio_checks row of a song whose audio could not be measured (``status`` = ``reason``).

    Audio that could not be had (:data:`~sunorecsys.audio.errors.UNAVAILABLE_REASONS`: missing,
    fetch failed, host down, ...) was never heard: ``technical_score`` NaN, no hard fail, so the
    song stays unscored rather than scored 0. Audio that was had and is broken (unreadable, empty,
    too short) is a defect of the song: ``technical_score`` 0 and a hard fail.
    """
    unheard = reason in UNAVAILABLE_REASONS
    row: dict[str, Any] = {c: None for c in COLUMNS}
    row.update(song_id=song_id, status=reason, detail=detail, metadata_duration_s=metadata_duration_s,
               technical_score=math.nan if unheard else 0.0, hard_fail=not unheard,
               hard_fail_reasons=[] if unheard else [reason], audio_sha256=sha256,
               checks_version=CHECKS_VERSION, audio_path=audio_path)
    return row


def analysis_rate(native_rate: int) -> int:
    """Rate (Hz) of the analysis signal for a file at ``native_rate``: the file's own rate between
    32 and 48 kHz; above, the largest integer fraction of it in that range (96 k -> 48 k,
    88.2 k -> 44.1 k), else 48 kHz; below 32 kHz, 32 kHz (so the spectrum above the file's Nyquist
    frequency shows as empty instead of being cut off)."""
    if native_rate < MIN_ANALYSIS_RATE:
        return MIN_ANALYSIS_RATE
    for divisor in range(1, 9):
        if native_rate % divisor == 0 and MIN_ANALYSIS_RATE <= native_rate // divisor <= MAX_ANALYSIS_RATE:
            return native_rate // divisor
    return MAX_ANALYSIS_RATE


def default_workers() -> int:
    """Worker processes by default: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _integrity(decoded, metadata_duration: float | None, reasons: list[str]) -> tuple[str, bool]:
    """Add the stream's own defects to ``reasons``; returns the row's detail text and whether the
    stream itself is damaged (NaN/inf samples, or shorter than its own header claims)."""
    details = []
    damaged = False
    if decoded.nonfinite_samples:
        reasons.append(NON_FINITE)
        damaged = True
        details.append(f"{decoded.nonfinite_samples} NaN/inf samples")
    header = decoded.header_duration_s
    got = decoded.source_duration_s
    if header and got < HEADER_TRUNCATION_RATIO * header and header - got >= HEADER_TRUNCATION_MIN_S:
        if "truncated" not in reasons:
            reasons.append("truncated")
        damaged = True
        details.append(f"truncated: decoded {got:.2f} s of the {header:.2f} s its header claims")
    elif "truncated" in reasons and metadata_duration:
        details.append(f"truncated: decoded {got:.2f} s of the catalogue's {metadata_duration:.2f} s")
    if decoded.stream_error:
        details.append(f"decoder stopped on damaged data: {decoded.stream_error}")
    return "; ".join(details), damaged


def check_song(song: Mapping, paths: DataPaths, *, fetch: bool = True,
               allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
               schemes: Iterable[str] = DEFAULT_ALLOWED_SCHEMES,
               max_seconds: float = MAX_CHECK_SECONDS,
               audio_roots: Iterable[str | os.PathLike] | None = None) -> dict[str, Any]:
    """One audio_checks row for one song (a mapping with song_id, duration_s, audio_path, audio_url).

    Never raises for a song's own trouble: an AudioUnavailable reason, ``out_of_memory`` or
    ``check_failed`` (with the error in ``detail``) become the row's status. The file is decoded
    block by block to its real end (memory bounded, see :func:`~sunorecsys.audio.decode.decode_audio`):
    the level measures see every block at the file's rate, the others a mono analysis signal of
    the first ``max_seconds`` at :func:`analysis_rate`.
    """
    song_id = song.get("song_id")
    metadata_duration = _number(song.get("duration_s"))
    path = None
    try:
        path = resolve_audio_path(song, paths, fetch=fetch, allowed_hosts=allowed_hosts, schemes=schemes,
                                  audio_roots=audio_roots)
        meter = LevelMeter()
        decoded = decode_audio(path, sample_rate=analysis_rate, mono=True, max_seconds=max_seconds,
                               min_seconds=MIN_SECONDS, on_block=meter)
        measures = signal_measures(decoded.samples, decoded.sample_rate, levels=meter.result())
    except AudioUnavailable as exc:
        return failed_row(song_id, exc.reason, exc.detail, metadata_duration,
                           audio_path=str(path) if path else None)
    except MemoryError as exc:
        return failed_row(song_id, OUT_OF_MEMORY, f"MemoryError: {exc}", metadata_duration,
                           audio_path=str(path) if path else None)
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop the catalogue
        return failed_row(song_id, CHECK_FAILED, f"{type(exc).__name__}: {exc}", metadata_duration,
                           audio_path=str(path) if path else None)
    # The whole stream's decoded length, never a header's claim.
    measures["duration_s"] = decoded.source_duration_s
    reasons = hard_fail_reasons(measures, metadata_duration)
    detail, damaged = _integrity(decoded, metadata_duration, reasons)
    row = {c: None for c in COLUMNS}
    row.update(measures)
    row.update(
        song_id=song_id, status="ok", detail=detail, metadata_duration_s=metadata_duration,
        # A damaged stream's measures describe what was left of it: no score for that.
        technical_score=0.0 if damaged else technical_score(measures, metadata_duration),
        hard_fail=bool(reasons), hard_fail_reasons=reasons, audio_sha256=decoded.sha256,
        checks_version=CHECKS_VERSION,
        duration_ratio=(measures["duration_s"] / metadata_duration) if metadata_duration else None,
        audio_path=str(path), header_duration_s=decoded.header_duration_s,
        nonfinite_samples=float(decoded.nonfinite_samples),
    )
    return {c: row[c] for c in COLUMNS}


def _worker_init(memory_limit_mb: int | None) -> None:
    """Pool worker set-up: an optional address-space cap, so a runaway song raises MemoryError in
    its own worker (a failure row) instead of drawing the machine into swap or the OOM killer."""
    import signal

    # Ctrl-C stops the parent, which lets the songs in flight finish: a worker must not die of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # one thread per worker: the pool is the parallelism (BLAS threads would oversubscribe)
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    if memory_limit_mb:
        import resource

        limit = int(memory_limit_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _check_song_job(args: tuple[dict, str, dict]) -> dict[str, Any]:
    song, root, options = args
    return check_song(song, DataPaths(Path(root)), **options)


def _records(songs: pd.DataFrame) -> list[dict]:
    wanted = [c for c in ("song_id", "duration_s", "audio_path", "audio_url") if c in songs.columns]
    records = songs[wanted].to_dict("records")
    # Pool workers receive plain Python values (NaN stays a float and is treated as absent).
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in records]


def _crashed_row(job: tuple[dict, str, dict], detail: str) -> dict[str, Any]:
    song = job[0]
    return failed_row(song.get("song_id"), WORKER_CRASHED, detail, _number(song.get("duration_s")))


def _run_isolated(jobs: list, indices: list[int], memory_limit_mb: int | None,
                  deliver: Callable[[int, dict[str, Any]], None]) -> None:
    """Songs that were in flight when a worker died, one at a time in a single-worker pool: the
    one that kills its worker again gets a ``worker_crashed`` row, the others their own rows."""
    remaining = list(indices)
    while remaining:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), initializer=_worker_init,
                                 initargs=(memory_limit_mb,)) as pool:
            while remaining:
                index = remaining.pop(0)
                try:
                    row = pool.submit(_check_song_job, jobs[index]).result()
                except BrokenProcessPool as exc:
                    deliver(index, _crashed_row(jobs[index], f"the worker checking this song died twice ({exc})"))
                    break  # a new pool for the rest
                deliver(index, row)


def _run_pool(jobs: list, workers: int, memory_limit_mb: int | None,
              deliver: Callable[[int, dict[str, Any]], None]) -> None:
    """Check ``jobs`` in ``workers`` spawned processes, a few songs in flight per worker.

    A worker that dies (segfault in a decoder, the kernel's OOM killer) breaks the pool: the songs
    that were in flight are retried one by one in a worker of their own (the one that dies again
    gets a ``worker_crashed`` row), then the rest go on in a new pool. Rows are delivered as they
    finish.
    """
    pending = deque(range(len(jobs)))
    context = get_context("spawn")
    while pending:
        in_flight: dict = {}
        suspects: list[int] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                                 initargs=(memory_limit_mb,)) as pool:
            try:
                while pending or in_flight:
                    while pending and len(in_flight) < _IN_FLIGHT_PER_WORKER * workers:
                        index = pending.popleft()
                        in_flight[pool.submit(_check_song_job, jobs[index])] = index
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    broken = False
                    for future in done:
                        index = in_flight.pop(future)
                        error = future.exception()
                        if isinstance(error, BrokenProcessPool):
                            suspects.append(index)
                            broken = True
                        elif error is not None:
                            deliver(index, _crashed_row(jobs[index], f"{type(error).__name__}: {error}"))
                        else:
                            deliver(index, future.result())
                    if broken:
                        raise BrokenProcessPool("a worker died")
            except BrokenProcessPool:
                suspects.extend(in_flight.values())
        if suspects:
            _run_isolated(jobs, sorted(suspects), memory_limit_mb, deliver)


def run_audio_checks(songs: pd.DataFrame, paths: DataPaths, *, workers: int = 1,
                     progress: bool = False, fetch: bool = True,
                     allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
                     schemes: Iterable[str] = DEFAULT_ALLOWED_SCHEMES,
                     max_seconds: float = MAX_CHECK_SECONDS,
                     audio_roots: Iterable[str | os.PathLike] | None = None,
                     on_row: Callable[[int, dict[str, Any]], None] | None = None,
                     memory_limit_mb: int | None = None) -> pd.DataFrame:
    """The audio_checks table for ``songs`` (one row per input row, same order).

    Columns: :data:`COLUMNS` (``technical_score`` in [0, 1], seconds, LUFS, dBFS, Hz, ratios in [0, 1]).
    ``workers`` > 1 (the CLI and the pipeline default to :func:`default_workers`) uses a pool of spawned
    processes (safe beside torch threads in the parent) that survives a worker's death (see
    :func:`_run_pool`). ``on_row(position, row)`` is called as each song finishes (in finishing
    order), so a caller can stream results to disk. ``memory_limit_mb`` (default
    ``$SUNORECSYS_AUDIO_WORKER_MEMORY_MB``) caps each pool worker's address space.
    ``fetch``/``allowed_hosts``/``schemes``/``audio_roots`` go to
    :func:`~sunorecsys.audio.source.resolve_audio_path`.
    """
    records = _records(songs)
    if memory_limit_mb is None and os.environ.get(WORKER_MEMORY_ENV):
        memory_limit_mb = int(os.environ[WORKER_MEMORY_ENV])
    options = {"fetch": fetch, "allowed_hosts": frozenset(allowed_hosts), "schemes": frozenset(schemes),
               "max_seconds": max_seconds,
               "audio_roots": tuple(str(r) for r in (*paths.extra_audio_roots, *(audio_roots or ())))}
    jobs = [(r, str(paths.root), options) for r in records]
    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    bar = _progress_bar(len(jobs), progress)

    def deliver(index: int, row: dict[str, Any]) -> None:
        rows[index] = row
        if on_row is not None:
            on_row(index, row)
        if bar is not None:
            bar.update(1)

    try:
        if workers > 1 and len(jobs) > 1:
            _run_pool(jobs, min(workers, len(jobs)), memory_limit_mb, deliver)
        else:
            for index, job in enumerate(jobs):
                deliver(index, _check_song_job(job))
    finally:
        if bar is not None:
            bar.close()
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # Fixed dtypes even when every row failed (all-None columns would otherwise be 'object').
    frame = frame.astype({name: "float64" for name in _FLOAT_COLUMNS} | {"hard_fail": "bool"})
    return frame


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="audio checks", unit="song")
