"""Signal checks of a catalogue: measures per song, a technical score in [0, 1], hard-fail flags.

One row per song, never a crash: a song whose audio cannot be used gets ``status`` = the
:class:`~sunorecsys.audio.errors.AudioUnavailable` reason; audio that could not be had (missing,
fetch failed, host down) is unscored (``technical_score`` NaN, no hard fail), audio that was had
and is broken (unreadable, empty, too short) gets ``technical_score`` 0 and ``hard_fail``.

Technical score (``technical_score``)
    A product of sub-scores, each in [0, 1] and raised to an importance exponent::

        score = prod_i  s_i ** w_i

    so a single fatal defect (a sub-score of 0) zeroes the score and mild ones multiply down.
    ``ramp(x, a, b)`` is 0 at or below ``a``, 1 at or above ``b``, linear between. Every sub-score
    is stored per song (columns ``score_<name>``).

    ========== =================================================================== ===
    sub-score  definition                                                          w
    ========== =================================================================== ===
    loudness   ramp(LUFS, -45, -30) * (1 - ramp(LUFS, -7, -3))                     1
    clipping   1 - ramp(log10(max(clipped_ratio, full_scale_ratio)), -4, -2)       1
    true_peak  1 - ramp(true peak dBFS, 0.5, 3)                                    0.5
    silence    1 - ramp(silence_ratio, 0.25, 0.75)                                 1
    bandwidth  ramp(bandwidth Hz, 4000, 16000)  (an MP3's own 16-19 kHz cut -> 1)   1
    bitrate    ramp(kbps, 32, 128) for lossy files (1 for lossless)                1
    noise      1 - ramp(floor spread dB, -7, -5) * ramp(floor flatness, 0.5, 0.75) 1
    dc         1 - ramp(dc_offset, 0.005, 0.03)                                    1
    dropouts   1 - ramp(dropout_count, 0, 3)                                       1
    repeats    1 - ramp(repeated_s, 0, 1)                                          1
    dynamics   ramp(dynamic range dB, 2, 5)                                        0.5
    crest      ramp(crest factor dB, 4, 8)                                         0.5
    duration   ramp(duration / metadata duration, 0.5, 0.9) (1 without metadata)  1
    ========== =================================================================== ===

Hard fails (``hard_fail_reasons``; ``hard_fail_detail`` says the measured value against the
threshold): the AudioUnavailable reason when not decodable; ``mostly_silent``; ``truncated``;
``heavy_clipping``; ``noise_only`` / ``noisy``; ``band_limited`` (not for lossy files at <= 96
kbps, whose encoder's own low-pass explains the cut: the bitrate sub-score marks those down);
``dc_offset``; ``dropouts``; ``stuck_buffer``. The thresholds below say where each came from: the
"tune half" is the threshold-setting half of the real set of bench/real_audio.py (Debian music
packages, seed 11, split by track); bench/scoring_signal.py reports the figures on the other half.
The ramps of the score are not fitted: they span from "clearly defective" to "clearly fine" for
each measure, and the AUC on the report half says how well the product ranks.
Stream integrity (these also zero the score): ``non_finite_samples`` (NaN/inf in the file) and
``truncated`` when the length decoded to the stream's real end is below 98 % (and 0.5 s) of what the
file's own header claims (FLAC/WAV frame count, MP3 Xing/VBRI frame count); ``detail`` says the
seconds decoded against the seconds expected. A song whose check itself fails gets a row with
status ``out_of_memory``, ``check_failed`` or ``worker_crashed`` (the worker process died twice).

"""

from __future__ import annotations

import contextlib
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sunorecsys.audio.arrivals import arriving
from sunorecsys.audio.decode import decode_audio
from sunorecsys.audio.errors import UNAVAILABLE_REASONS, AudioUnavailable
from sunorecsys.audio.levels import LevelMeter
from sunorecsys.audio.measures import signal_measures
from sunorecsys.audio.source import DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_SCHEMES, resolve_audio_path
from sunorecsys.machine import available_cores, spawn_pool
from sunorecsys.paths import DataPaths

# /3: the /2 detectors (briefly on main, then reverted) with the noise floor below the content's
# bandwidth, the band cliff at the 80th percentile and the noise sub-score ramps from the tune half.
# /4: the band cliff measured only where the slope stands clear of the spectrum's floor, and a dark
# track's cut to that floor where no slope can be compared; the noise floor's level under the
# programme gates 'noisy' and a tight floor tail also counts; stuck buffers confirmed by an exact
# integer-lag repeat of the first difference (1024-sample buffers after an MP3 encode).
CHECKS_VERSION = "signal-checks/4"

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
    "loudness": 1.0, "clipping": 1.0, "true_peak": 0.5, "silence": 1.0, "bandwidth": 1.0, "bitrate": 1.0,
    "noise": 1.0, "dc": 1.0, "dropouts": 1.0, "repeats": 1.0, "dynamics": 0.5, "crest": 0.5, "duration": 1.0,
}

# --- hard-fail thresholds ("tune half": see the module docstring) ---
# Unchanged from signal-checks/1 (on the tune half every near-silent excerpt (-45..-60 dB) measured
# <= -62 LUFS and no clean one below -36 LUFS or above 25 % silence, so they hold with wide margins):
HARD_FAIL_SILENCE_RATIO = 0.8
HARD_FAIL_LOUDNESS_LUFS = -50.0
# A partial download kept 30-75 % of its bytes; the shortest clean excerpt decodes to 100 %.
HARD_FAIL_DURATION_RATIO = 0.8
HARD_FAIL_CLIPPED_RATIO = 0.02
HARD_FAIL_OVERDRIVEN_LUFS = -5.0
HARD_FAIL_OVERDRIVEN_TRUE_PEAK_DBFS = 2.0
# Samples at >= 95 % of full scale: clean tune excerpts <= 0.0097 %, clipped-then-MP3 ones >= 0.6 %;
# 0.1 % sits between them on a log scale.
HARD_FAIL_FULL_SCALE_RATIO = 0.001
HARD_FAIL_FLATNESS = 0.5
HARD_FAIL_DYNAMIC_RANGE_DB = 3.0
# Stationary broadband floor, loud enough to be added noise. Tune half (signal-checks/4): noisy
# excerpts (6-20 dB SNR, white or pink) spread >= -5.28 dB, floor flatness >= 0.757, floor level
# >= -31.0 dB under the programme; the clean ones with a flat (>= 0.5) steady floor have it far
# lower (ufoai "Crystan-IntroSad" -38.9 dB at spread -3.9, a false alarm under /3; wesnoth "knolls"
# -59.9 dB), and the clean ones with a flat floor above -35 dB spread <= -5.87 dB (ufoai
# "PsymongN2"). Or, instead of the spread, the floor's tail (10th over 1st percentile): noisy
# excerpts <= 3.72 dB, the clean ones with a flat floor above -35 dB >= 4.86 dB (ufoai "ufo2"): the
# quietest frames of a noisy song all sit on the noise, even where loud highs keep its median (and
# so the spread) far above. Each threshold sits midway between the two sides.
HARD_FAIL_NOISE_SPREAD_DB = -5.6
HARD_FAIL_NOISE_TAIL_DB = 4.3
HARD_FAIL_NOISE_FLATNESS = 0.5
HARD_FAIL_NOISE_FLOOR_DB = -35.0
# The noise sub-score's ramps, from the same tune half: every noisy excerpt spread >= -5.3 dB with
# flatness >= 0.76 (-> sub-score <= 0.15); 90 % of clean ones spread <= -6.8 dB or have flatness
# <= 0.5 (-> 1). The former ramps (-14..-8 dB, 0.3..0.8) marked a quarter of clean real music down
# (10 % below 0.5) for a floor that is merely steady, which ranked clean songs under 64 kbps encodes.
NOISE_SPREAD_RAMP_DB = (-7.0, -5.0)
NOISE_FLATNESS_RAMP = (0.5, 0.75)
# Band limit: damaged tune excerpts (low-pass 3-10 kHz, 11.025/22.05/16 kHz sources) measured
# <= 10.5 kHz; clean 44.1/48 kHz ones >= 13.25 kHz except ufoai "alBasrahM", whose content really
# ends at 9.5 kHz (a 22 kHz production, counted as a false alarm). 64 kbps MP3s cut at 11 kHz: see
# LOW_BITRATE_KBPS.
HARD_FAIL_BANDWIDTH_HZ = 12000.0
# LAME's low-pass measured here: 32 kbps -> 5.5 kHz, 48 -> 7.5, 64 -> 11, 96 -> 15, 128 -> 16.6, 192 -> 18.7.
LOW_BITRATE_KBPS = 96.0
# Clean tune excerpts' |channel mean| <= 0.013 (except masters with a real DC offset of 2.9-8.6 %,
# labelled dc_offset in the set); damaged ones (3-12 %) >= 0.030.
HARD_FAIL_DC_OFFSET = 0.02
# No clean tune excerpt had a single gap; every damaged one had >= 2.
HARD_FAIL_DROPOUTS = 1
# Clean tune excerpts <= 0.10 s of repeats (wesnoth "knolls"; singularity "Chimes They Fade", a
# native-DC track, 1.15 s); stuck-buffer ones: 13 of 15 >= 0.25 s (two with short events missed).
HARD_FAIL_REPEATED_S = 0.15

SUB_SCORES: tuple[str, ...] = tuple(EXPONENTS)

COLUMNS: list[str] = [
    "song_id", "status", "detail", "duration_s", "metadata_duration_s", "loudness_lufs", "true_peak_dbfs",
    "clipped_ratio", "silence_ratio", "bandwidth_hz", "crest_factor_db", "technical_score", "hard_fail",
    "hard_fail_reasons", "audio_sha256", "checks_version",
    # beyond the contract: the other measures behind the score
    "sample_peak_dbfs", "spectral_flatness", "dynamic_range_db", "duration_ratio", "audio_path",
    # stream integrity: the container's claimed length and the count of NaN/inf samples
    "header_duration_s", "nonfinite_samples",
    # signal-checks/2: damage detectors, the file's bitrate, each sub-score, why each hard fail
    "band_cliff_db", "full_scale_ratio", "dc_offset", "dropout_count", "dropout_s", "repeated_s",
    "noise_floor_spread_db", "noise_floor_flatness", "bitrate_kbps",
    *[f"score_{name}" for name in SUB_SCORES],
    "hard_fail_detail",
    # signal-checks/4: the noise floor's level under the programme and its tail
    "noise_floor_db", "noise_floor_tail_db",
]


_FLOAT_COLUMNS = (
    "duration_s", "metadata_duration_s", "loudness_lufs", "true_peak_dbfs", "clipped_ratio", "silence_ratio",
    "bandwidth_hz", "crest_factor_db", "technical_score", "sample_peak_dbfs", "spectral_flatness",
    "dynamic_range_db", "duration_ratio", "header_duration_s", "nonfinite_samples",
    "band_cliff_db", "full_scale_ratio", "dc_offset", "dropout_count",
    "dropout_s", "repeated_s", "noise_floor_spread_db", "noise_floor_flatness", "bitrate_kbps", "noise_floor_db",
    "noise_floor_tail_db",
    *[f"score_{name}" for name in SUB_SCORES],
)
# The audio_checks table's Arrow schema (for write_partition(..., schema=AUDIO_CHECKS_SCHEMA)).
AUDIO_CHECKS_SCHEMA = pa.schema([
    pa.field(name, pa.float64()) if name in _FLOAT_COLUMNS
    else pa.field(name, pa.bool_()) if name == "hard_fail"
    else pa.field(name, pa.list_(pa.string())) if name == "hard_fail_reasons"
    else pa.field(name, pa.string())
    for name in COLUMNS
])
# Lossy containers: their bitrate (bytes / duration) is a measure; lossless files get None.
_LOSSY_SUFFIXES = frozenset({".mp3", ".ogg", ".oga", ".opus", ".m4a"})


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


def _get(measures: Mapping[str, Any], name: str, default: float) -> float:
    value = measures.get(name)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def sub_scores(measures: Mapping[str, Any], metadata_duration_s: float | None) -> dict[str, float]:
    """Each sub-score in [0, 1] (see the module docstring). Measures missing from ``measures`` (a row
    of an older checks version) count as no defect."""
    loud = float(measures["loudness_lufs"])
    clipped = max(float(measures["clipped_ratio"]), _get(measures, "full_scale_ratio", 0.0))
    ratio = (float(measures["duration_s"]) / metadata_duration_s) if metadata_duration_s else None
    kbps = _get(measures, "bitrate_kbps", float("inf"))
    return {
        "loudness": ramp(loud, -45.0, -30.0) * (1.0 - ramp(loud, -7.0, -3.0)),
        "clipping": 1.0 - ramp(math.log10(max(clipped, 1e-12)), -4.0, -2.0),
        "true_peak": 1.0 - ramp(float(measures["true_peak_dbfs"]), 0.5, 3.0),
        "silence": 1.0 - ramp(float(measures["silence_ratio"]), 0.25, 0.75),
        "bandwidth": ramp(float(measures["bandwidth_hz"]), 4000.0, 16000.0),
        "bitrate": ramp(kbps, 32.0, 128.0),
        "noise": 1.0 - ramp(_get(measures, "noise_floor_spread_db", -60.0), *NOISE_SPREAD_RAMP_DB)
        * ramp(_get(measures, "noise_floor_flatness", 0.0), *NOISE_FLATNESS_RAMP),
        "dc": 1.0 - ramp(_get(measures, "dc_offset", 0.0), 0.005, 0.03),
        "dropouts": 1.0 - ramp(_get(measures, "dropout_count", 0.0), 0.0, 3.0),
        "repeats": 1.0 - ramp(_get(measures, "repeated_s", 0.0), 0.0, 1.0),
        "dynamics": ramp(float(measures["dynamic_range_db"]), 2.0, 5.0),
        "crest": ramp(float(measures["crest_factor_db"]), 4.0, 8.0),
        "duration": 1.0 if ratio is None else ramp(ratio, 0.5, 0.9),
    }


def technical_score(measures: Mapping[str, Any], metadata_duration_s: float | None = None) -> float:
    """``prod s_i ** w_i`` over :func:`sub_scores`, in [0, 1] (1 = no technical defect seen)."""
    score = 1.0
    for name, value in sub_scores(measures, metadata_duration_s).items():
        score *= value ** EXPONENTS[name]
    return float(min(max(score, 0.0), 1.0))


def hard_fail_details(measures: Mapping[str, Any], metadata_duration_s: float | None = None) -> dict[str, str]:
    """reason -> the measured value against its threshold, for every hard fail (empty = none)."""
    reasons: dict[str, str] = {}
    silence, loud = float(measures["silence_ratio"]), float(measures["loudness_lufs"])
    if silence >= HARD_FAIL_SILENCE_RATIO or loud <= HARD_FAIL_LOUDNESS_LUFS:
        reasons["mostly_silent"] = (f"silence {silence:.0%} (>= {HARD_FAIL_SILENCE_RATIO:.0%}) or loudness "
                                    f"{loud:.1f} LUFS (<= {HARD_FAIL_LOUDNESS_LUFS:g})")
    duration = float(measures["duration_s"])
    if metadata_duration_s and duration < HARD_FAIL_DURATION_RATIO * metadata_duration_s:
        reasons["truncated"] = (f"{duration:.1f} s decoded < {HARD_FAIL_DURATION_RATIO:.0%} of the catalogue's "
                                f"{metadata_duration_s:.1f} s")
    clipped, full_scale = float(measures["clipped_ratio"]), _get(measures, "full_scale_ratio", 0.0)
    peak = float(measures["true_peak_dbfs"])
    if clipped >= HARD_FAIL_CLIPPED_RATIO:
        reasons["heavy_clipping"] = f"{clipped:.2%} of samples on clipped plateaus (>= {HARD_FAIL_CLIPPED_RATIO:.0%})"
    elif full_scale >= HARD_FAIL_FULL_SCALE_RATIO:
        # A lossy encode smears clipped plateaus into ripples around full scale: the pile-up stays.
        reasons["heavy_clipping"] = (f"{full_scale:.2%} of samples at >= 95 % of full scale "
                                     f"(>= {HARD_FAIL_FULL_SCALE_RATIO:.1%})")
    elif loud >= HARD_FAIL_OVERDRIVEN_LUFS and peak >= HARD_FAIL_OVERDRIVEN_TRUE_PEAK_DBFS:
        reasons["heavy_clipping"] = f"loudness {loud:.1f} LUFS with true peak {peak:+.1f} dBFS (overdriven)"
    flatness, dyn = float(measures["spectral_flatness"]), float(measures["dynamic_range_db"])
    spread = _get(measures, "noise_floor_spread_db", -60.0)
    floor_flat = _get(measures, "noise_floor_flatness", 0.0)
    floor_db = _get(measures, "noise_floor_db", 0.0)  # rows older than /4 have no level: not gated
    floor_tail = _get(measures, "noise_floor_tail_db", 60.0)
    if flatness >= HARD_FAIL_FLATNESS and dyn < HARD_FAIL_DYNAMIC_RANGE_DB:
        reasons["noise_only"] = f"spectral flatness {flatness:.2f} with {dyn:.1f} dB dynamic range"
    elif ((spread >= HARD_FAIL_NOISE_SPREAD_DB or floor_tail <= HARD_FAIL_NOISE_TAIL_DB)
          and floor_flat >= HARD_FAIL_NOISE_FLATNESS and floor_db >= HARD_FAIL_NOISE_FLOOR_DB):
        reasons["noisy"] = (f"a stationary broadband floor: spread {spread:.1f} dB (>= {HARD_FAIL_NOISE_SPREAD_DB:g}) "
                            f"or tail {floor_tail:.1f} dB (<= {HARD_FAIL_NOISE_TAIL_DB:g}), "
                            f"floor flatness {floor_flat:.2f} (>= {HARD_FAIL_NOISE_FLATNESS:g}), "
                            f"{floor_db:.1f} dB under the programme (>= {HARD_FAIL_NOISE_FLOOR_DB:g})")
    bandwidth = float(measures["bandwidth_hz"])
    kbps = _get(measures, "bitrate_kbps", float("inf"))
    if bandwidth < HARD_FAIL_BANDWIDTH_HZ and "mostly_silent" not in reasons and kbps > LOW_BITRATE_KBPS:
        # Not when the file is a low-bitrate lossy encode: its encoder's own low-pass (11 kHz at
        # 64 kbps) explains the cut, and the bitrate sub-score marks it down instead.
        reasons["band_limited"] = (f"content ends at {bandwidth:.0f} Hz (a {_get(measures, 'band_cliff_db', 0.0):.0f} dB "
                                   f"cliff; < {HARD_FAIL_BANDWIDTH_HZ:.0f} Hz)")
    dc = _get(measures, "dc_offset", 0.0)
    if dc >= HARD_FAIL_DC_OFFSET:
        reasons["dc_offset"] = f"DC offset {dc:.3f} of full scale (>= {HARD_FAIL_DC_OFFSET:g})"
    drops = _get(measures, "dropout_count", 0.0)
    if drops >= HARD_FAIL_DROPOUTS:
        reasons["dropouts"] = (f"{drops:.0f} gap(s) of digital silence inside the music "
                               f"({_get(measures, 'dropout_s', 0.0):.2f} s)")
    repeated = _get(measures, "repeated_s", 0.0)
    if repeated >= HARD_FAIL_REPEATED_S and "mostly_silent" not in reasons:
        reasons["stuck_buffer"] = f"{repeated:.1f} s repeat the audio a few ms earlier (>= {HARD_FAIL_REPEATED_S:g} s)"
    return reasons


def hard_fail_reasons(measures: Mapping[str, Any], metadata_duration_s: float | None = None) -> list[str]:
    """Defects bad enough that the song must never be recommended (empty list = none)."""
    return list(hard_fail_details(measures, metadata_duration_s))


def _bitrate_kbps(path: Path, duration_s: float) -> float | None:
    """Average bitrate of a lossy file (bytes * 8 / seconds / 1000); None for lossless or unknown."""
    if path.suffix.lower() not in _LOSSY_SUFFIXES or duration_s <= 0:
        return None
    try:
        return path.stat().st_size * 8.0 / duration_s / 1000.0
    except OSError:
        return None


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
               checks_version=CHECKS_VERSION, audio_path=audio_path,
               hard_fail_detail=None if unheard else f"{reason}: {detail}")
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
    return available_cores()


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
    # The whole stream's decoded length, never a header's claim (an MP3's Xing header of a partial
    # download still claims the whole upload's length).
    measures["duration_s"] = decoded.source_duration_s
    measures["bitrate_kbps"] = _bitrate_kbps(Path(path), measures["duration_s"])
    details = hard_fail_details(measures, metadata_duration)
    reasons = list(details)
    detail, damaged = _integrity(decoded, metadata_duration, reasons)
    for reason in reasons:
        details.setdefault(reason, detail)
    row = {c: None for c in COLUMNS}
    row.update(measures)
    row.update({f"score_{k}": v for k, v in sub_scores(measures, metadata_duration).items()})
    row.update(
        song_id=song_id, status="ok", detail=detail, metadata_duration_s=metadata_duration,
        # A damaged stream's measures describe what was left of it: no score for that.
        technical_score=0.0 if damaged else technical_score(measures, metadata_duration),
        hard_fail=bool(reasons), hard_fail_reasons=reasons, audio_sha256=decoded.sha256,
        checks_version=CHECKS_VERSION,
        duration_ratio=(measures["duration_s"] / metadata_duration) if metadata_duration else None,
        audio_path=str(path), header_duration_s=decoded.header_duration_s,
        nonfinite_samples=float(decoded.nonfinite_samples),
        hard_fail_detail="; ".join(f"{k}: {v}" for k, v in details.items()),
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


@contextlib.contextmanager
def _start_pool(workers: int, memory_limit_mb: int | None) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned signal-check workers, each under its memory limit."""
    with spawn_pool(workers, _worker_init, (memory_limit_mb,)) as pool:
        yield pool


def _run_isolated(jobs: list, indices: list[int], memory_limit_mb: int | None,
                  deliver: Callable[[int, dict[str, Any]], None]) -> None:
    """Songs that were in flight when a worker died, one at a time in a single-worker pool: the
    one that kills its worker again gets a ``worker_crashed`` row, the others their own rows."""
    remaining = list(indices)
    while remaining:
        with _start_pool(1, memory_limit_mb) as pool:
            while remaining:
                index = remaining.pop(0)
                try:
                    row = pool.submit(_check_song_job, jobs[index]).result()
                except BrokenProcessPool as exc:
                    deliver(index, _crashed_row(jobs[index], f"the worker checking this song died twice ({exc})"))
                    break  # a new pool for the rest
                deliver(index, row)


def _run_pool(jobs: list, workers: int, memory_limit_mb: int | None,
              deliver: Callable[[int, dict[str, Any]], None],
              ready: Callable[[dict], object] | None = None) -> None:
    """Check ``jobs`` in ``workers`` spawned processes, a few songs in flight per worker.

    A worker that dies (segfault in a decoder, the kernel's OOM killer) breaks the pool: the songs
    that were in flight are retried one by one in a worker of their own (the one that dies again
    gets a ``worker_crashed`` row), then the rest go on in a new pool. Rows are delivered as they
    finish. ``ready(song)`` is called before a song is handed to the pool (it may block: see
    :mod:`sunorecsys.audio.arrivals`).
    """
    pending = deque(range(len(jobs)))
    while pending:
        in_flight: dict = {}
        suspects: list[int] = []
        with _start_pool(workers, memory_limit_mb) as pool:
            try:
                while pending or in_flight:
                    while pending and len(in_flight) < _IN_FLIGHT_PER_WORKER * workers:
                        index = pending.popleft()
                        if ready is not None:
                            ready(jobs[index][0])
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
    While a producer of this process still writes ``paths.audio_dir`` (``make demo``'s sample
    generator, :mod:`sunorecsys.audio.arrivals`), each song waits until its audio is final, in
    input order, so a song not written yet is never found missing.
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

    arrivals = arriving(paths.audio_dir)
    ready = None if arrivals is None else (lambda song: arrivals.wait(str(song.get("song_id"))))
    try:
        if workers > 1 and len(jobs) > 1:
            _run_pool(jobs, min(workers, len(jobs)), memory_limit_mb, deliver, ready)
        else:
            for index, job in enumerate(jobs):
                if ready is not None:
                    ready(job[0])
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
