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

The thresholds were set on synthesised signals and the sample catalogue (tests/test_signal_checks.py
measures the ranking AUC against its ground truth); ``checks_version`` changes with them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sunorecsys.audio.decode import decode_audio
from sunorecsys.audio.errors import UNAVAILABLE_REASONS, UNREADABLE, AudioUnavailable
from sunorecsys.audio.measures import signal_measures
from sunorecsys.audio.source import DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_SCHEMES, resolve_audio_path
from sunorecsys.paths import DataPaths

CHECKS_VERSION = "signal-checks/1"

# Songs longer than this are checked on their first 20 minutes only (bounded memory and time).
MAX_CHECK_SECONDS = 1200.0
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
]


_FLOAT_COLUMNS = (
    "duration_s", "metadata_duration_s", "loudness_lufs", "true_peak_dbfs", "clipped_ratio", "silence_ratio",
    "bandwidth_hz", "crest_factor_db", "technical_score", "sample_peak_dbfs", "spectral_flatness",
    "dynamic_range_db", "duration_ratio",
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


_failed_row = failed_row  # the name the plumbing below uses


def check_song(song: Mapping, paths: DataPaths, *, fetch: bool = True,
               allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
               schemes: Iterable[str] = DEFAULT_ALLOWED_SCHEMES,
               max_seconds: float = MAX_CHECK_SECONDS) -> dict[str, Any]:
    """One audio_checks row for one song (a mapping with song_id, duration_s, audio_path, audio_url)."""
    song_id = song.get("song_id")
    metadata_duration = _number(song.get("duration_s"))
    path = None
    try:
        path = resolve_audio_path(song, paths, fetch=fetch, allowed_hosts=allowed_hosts, schemes=schemes)
        decoded = decode_audio(path, sample_rate=None, mono=False, max_seconds=max_seconds,
                               min_seconds=MIN_SECONDS)
    except AudioUnavailable as exc:
        return _failed_row(song_id, exc.reason, exc.detail, metadata_duration,
                           audio_path=str(path) if path else None)
    try:
        measures = signal_measures(decoded.samples, decoded.sample_rate)
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop the catalogue
        return _failed_row(song_id, UNREADABLE, f"measuring failed: {type(exc).__name__}: {exc}",
                           metadata_duration, decoded.sha256, str(path))
    # A capped decode measured only part of the song: compare the whole file's length.
    measures["duration_s"] = decoded.source_duration_s
    reasons = hard_fail_reasons(measures, metadata_duration)
    row = {c: None for c in COLUMNS}
    row.update(measures)
    row.update(
        song_id=song_id, status="ok", detail="", metadata_duration_s=metadata_duration,
        technical_score=technical_score(measures, metadata_duration), hard_fail=bool(reasons),
        hard_fail_reasons=reasons, audio_sha256=decoded.sha256, checks_version=CHECKS_VERSION,
        duration_ratio=(measures["duration_s"] / metadata_duration) if metadata_duration else None,
        audio_path=str(path),
    )
    return {c: row[c] for c in COLUMNS}


def _check_song_job(args: tuple[dict, str, dict]) -> dict[str, Any]:
    song, root, options = args
    return check_song(song, DataPaths(Path(root)), **options)


def _records(songs: pd.DataFrame) -> list[dict]:
    wanted = [c for c in ("song_id", "duration_s", "audio_path", "audio_url") if c in songs.columns]
    records = songs[wanted].to_dict("records")
    # Pool workers receive plain Python values (NaN stays a float and is treated as absent).
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in records]


def run_audio_checks(songs: pd.DataFrame, paths: DataPaths, *, workers: int = 1, progress: bool = False,
                     fetch: bool = True, allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
                     schemes: Iterable[str] = DEFAULT_ALLOWED_SCHEMES,
                     max_seconds: float = MAX_CHECK_SECONDS) -> pd.DataFrame:
    """The audio_checks table for ``songs`` (one row per input row, same order).

    Columns: :data:`COLUMNS` (``technical_score`` in [0, 1], seconds, LUFS, dBFS, Hz, ratios in [0, 1]).
    ``workers`` > 1 uses a process pool (spawned, so it is safe beside torch threads in the parent).
    ``fetch``/``allowed_hosts``/``schemes`` go to :func:`~sunorecsys.audio.source.resolve_audio_path`.
    """
    records = _records(songs)
    options = {"fetch": fetch, "allowed_hosts": frozenset(allowed_hosts), "schemes": frozenset(schemes),
               "max_seconds": max_seconds}
    jobs = [(r, str(paths.root), options) for r in records]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs), os.cpu_count() or 1),
                                 mp_context=get_context("spawn")) as pool:
            iterator = pool.map(_check_song_job, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
            rows = list(_progress(iterator, len(jobs), progress))
    else:
        rows = [_check_song_job(job) for job in _progress(jobs, len(jobs), progress)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # Fixed dtypes even when every row failed (all-None columns would otherwise be 'object').
    frame = frame.astype({name: "float64" for name in _FLOAT_COLUMNS} | {"hard_fail": "bool"})
    return frame


def _progress(iterable, total: int, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc="audio checks", unit="song")
