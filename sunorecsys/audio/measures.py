"""Cheap signal measures of one decoded song (numpy/scipy/soxr, CPU only).

The level measures (BS.1770 loudness, sample and true peak, clipping) are taken on the file's own
blocks at its own rate during the decode (:mod:`sunorecsys.audio.levels`, bounded memory); the
others (silence, crest, dynamics, spectrum) on a mono analysis signal at 32-48 kHz, so the spectrum
reaches at least 16 kHz. Costs for a 3-minute 44.1 kHz stereo MP3 on one core of a shared machine
(bench/scoring_speed.py, signal-checks/4, load ~5 on 2 cores): the whole check ~3.1x the CPU of
decoding the file alone with libsndfile (0.70 CPU-s, ~257x real time); the largest parts are the
MP3 decode itself, the K-weighting filter of the loudness (float32, within 1e-3 LU of pyloudnorm),
the stuck-buffer candidate stage and the Welch spectrum (scipy's figures to float32 precision).

Constants of the damage detectors (band limit, full-scale pile-up, DC, dropouts, repeats, noise
floor) define WHAT is measured (frame sizes, bands); the thresholds that turn the measures into
hard fails live in :mod:`sunorecsys.audio.checks`, each with where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.fft
import scipy.signal
import soxr

from sunorecsys.audio.decode import to_mono

# Level constants live with the one implementation of the level measures (streamed, levels.py).
from sunorecsys.audio.levels import (  # noqa: F401 - CLIP_*, LOUDNESS_FLOOR_LUFS re-exported for callers
    CLIP_MIN_RUN,
    CLIP_REL_TOLERANCE,
    LEVEL_FLOOR_DB,
    LOUDNESS_FLOOR_LUFS,
    LoudnessMeter,
    stream_levels,
)

SILENCE_FRAME_S = 0.05          # 50 ms frames
SILENCE_THRESHOLD_DBFS = -60.0  # a frame whose RMS is below this is silent
WELCH_NPERSEG = 4096
FLATNESS_BAND_HZ = (50.0, 16000.0)
_WELCH_CHUNK_SEGMENTS = 256  # ~1 M samples per welch call (bounded memory on long songs)

# Band limit (band_limit): 250 Hz bands; a cut is looked for from 1 kHz up. The guard (6 % of the
# cut) skips a filter's transition band (an 8th-order Butterworth is ~25 dB down at 1.12x its cut;
# soxr and LAME are steeper). Cliff >= 25 dB: on the real set's tune half every low-pass, 16 kHz and
# 22.05 kHz source and MP3 encoder cut measured >= 25.4 dB deep, while gradual roll-offs of clean
# masters stay within a few dB of their own slope.
BAND_STEP_HZ = 250.0
BAND_FLOOR_DB = -200.0
BAND_MIN_CUT_HZ = 1000.0
BAND_GUARD_FRACTION = 0.06
BAND_MAX_SLOPE_DB_PER_OCT = 24.0
BAND_CLIFF_DB = 25.0
# The level above a cut is this percentile of the bands' deficits: high enough that a few loud bands
# above a real roll-off keep it a slope, low enough that a Butterworth knee's first bands (still only
# 10-20 dB down) do not hide the cliff. Tune half: 80 -> 23/24 low-passed excerpts caught with one
# clean false alarm (the 22 kHz production), as at 75; 90 -> 22/24; 70 -> a second false alarm.
BAND_ABOVE_PERCENTILE = 80.0
# The spectrum's own floor (2nd percentile of the band levels: an MP3's zeroed top bands, or the
# quietest bands of a lossless file). Above a cut, only bands where the track's slope predicts at
# least BAND_CLIFF_DB over that floor can show a cliff of that depth: a dark track's slope reaches the
# floor within the octave above the cut, and those bands (at the floor whatever happened) hid a
# low-pass. Tune half: with the bands restricted so, 24/24 low-passed and 23/23 16 kHz-sourced
# excerpts measured < 12 kHz (23 and 22 before: a dark wesnoth track, 8 kHz at -62 dB under its
# loud bands and a slope of -23 dB/octave), the clean ones unchanged (one false alarm, alBasrahM).
# A cut with fewer than two such bands above it is not measurable. This replaces signal-checks/3's
# rule that the content below a cut be within 80 dB of the track's loud bands (meant for an encoder
# zeroing a dark track's inaudible highs): on the tune half no excerpt's bandwidth changed with that
# rule at 80, 100 or 120 dB or without it, once the floor rule is in; the known misses of /3 on the
# report half were dark tracks whose highs lie more than 80 dB down, cut for that rule alone.
BAND_FLOOR_PERCENTILE = 2.0
# Where no cliff can be measured against the slope (a dark track: the line meets the floor within a
# few bands), a cut is still a cut when everything above it sits on the floor (within 4 dB) while
# the slope would have stood >= 20 dB over it just past the guard. Tune half, every tune track's
# excerpt band-limited twice more with the set's own damage generator (206 excerpts, bench/
# scoring_signal.py --band-limited-copies tune): 197 -> 206 measured < 12 kHz with it (the 9 cuts
# it finds stand 20.6-24.7 dB); clean tune excerpts unchanged for any tolerance 2-6 dB and height
# 10-20 dB. 20 rather than 15: two clean songs of the synthesised sample catalogue, whose flat
# 'air' is their spectrum's floor, stood 16 dB over it at 1.5 kHz.
BAND_FLOOR_CUT_TOLERANCE_DB = 4.0
BAND_FLOOR_CUT_MIN_DB = 20.0

# Dropouts: 10 ms frames; a gap is <= -60 dBFS, >= 30 dB below both neighbours, <= 1 s long.
DROPOUT_FRAME_S = 0.01
DROPOUT_MAX_DBFS = -60.0
DROPOUT_DEPTH_DB = 30.0
DROPOUT_MAX_S = 1.0

# Stuck buffers: candidates on a 5.5 kHz copy in 100 ms blocks (lags 20-200 ms: buffers of 1024-8192
# samples at 44.1 kHz), confirmed on the file's own rate (high band correlation >= 0.9).
REPEAT_RATE = 5512
REPEAT_BLOCK_S = 0.1
REPEAT_HOP_S = 0.05
REPEAT_MIN_LAG_S = 0.02
REPEAT_MAX_LAG_S = 0.2
REPEAT_CANDIDATE = 0.9
REPEAT_MIN_POWER = 1e-10
REPEAT_CORRELATION = 0.9
# Tune half (signal-checks/4): after a 192 kbps encode a 1024-sample stuck buffer's second difference
# correlated only 0.79-0.94 (two of 22 excerpts missed); its first difference >= 0.96. Exactness
# (1 - corr one sample off) / (1 - corr): stuck-buffer blocks >= 2.9 (median ~10), blocks of
# clean music with corr >= 0.9 <= 1.64 (singularity's synth loops at ~1200.5 samples, 0.998 at
# both neighbours); 2.2 is their geometric middle.
REPEAT_CORRELATION_D1 = 0.95
REPEAT_EXACTNESS = 2.2
# A steady tone repeats at every multiple of its period too: a block whose high band already repeats
# within 1-20 ms (REPEAT_TONAL) is a held note, not a stuck buffer (music's high band does not repeat
# that fast; synthesised notes at integer-sample periods did, and were called stuck).
REPEAT_SHORT_LAGS_S = (0.001, 0.02)
REPEAT_TONAL = 0.8

# Noise floor: 1024-sample frames (every 2nd), 8-bin bands between 4 and 16 kHz.
NOISE_NFFT = 1024
NOISE_FRAME_STRIDE = 2
NOISE_BAND_BINS = 8
NOISE_BAND_HZ = (4000.0, 16000.0)
# Only bands below 94 % of the content's bandwidth (clear of an encoder's transition band).
NOISE_GUARD_FRACTION = 0.94
# A floor (summed over the noise bands) this far under the median frame's whole-spectrum power is
# not counted. Tune half: every noisy excerpt (6-20 dB SNR) -31..-15 dB; steady floors of clean ones
# down to -79 dB (warzone "track23", a quantisation-level floor under quiet music, was flagged noisy).
NOISE_FLOOR_AUDIBLE_DB = -60.0
NOISE_FLOOR_NONE_DB = -120.0  # the floor level when it cannot be measured
NOISE_TAIL_NONE_DB = 60.0     # the floor's tail when it cannot be measured (no steady floor)


def _db(x: float, floor: float = LEVEL_FLOOR_DB) -> float:
    return float(20.0 * np.log10(x)) if x > 0 else floor


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 gated integrated loudness in LUFS, floored at -70 LUFS.

    ``samples`` (n,) or (n, channels), any channel count (more than two are downmixed, see
    :mod:`sunorecsys.audio.levels`). pyloudnorm's filters and gating, streamed and vectorised
    (identical to ``pyloudnorm.Meter.integrated_loudness`` for mono and stereo, ~5x faster).
    Audio shorter than one 400 ms gating block gets the floor.
    """
    data = samples.reshape(samples.shape[0], -1)
    meter = LoudnessMeter(sample_rate, data.shape[1])
    for start in range(0, data.shape[0], 1 << 16):
        meter.update(np.ascontiguousarray(data[start:start + (1 << 16)].T, dtype=np.float64))
    return meter.result()


def true_peak_dbfs(samples: np.ndarray, sample_rate: int) -> float:
    """True peak in dBFS of an in-memory signal: :class:`~sunorecsys.audio.levels.LevelMeter`'s
    (4x soxr oversampling, BS.1770 style), the one implementation the checks use on every stream."""
    return float(stream_levels(samples, sample_rate)["true_peak_dbfs"])


def clipped_ratio(samples: np.ndarray) -> float:
    """Share of samples (all channels) inside runs of >= ``CLIP_MIN_RUN`` consecutive samples at the
    channel's top magnitude (within ``CLIP_REL_TOLERANCE`` of its peak), in [0, 1]: a clean master
    rarely holds its peak for three samples in a row, a hard-clipped one holds it for whole plateaus.
    :class:`~sunorecsys.audio.levels.LevelMeter`'s figure (the rate does not matter to it)."""
    return float(stream_levels(samples, 44100)["clipped_ratio"])


def frame_rms_db(mono: np.ndarray, sample_rate: int, frame_s: float = SILENCE_FRAME_S) -> np.ndarray:
    """RMS level in dBFS of consecutive non-overlapping frames (a trailing partial frame included)."""
    hop = max(round(frame_s * sample_rate), 1)
    n = mono.shape[0]
    full = n // hop
    # Whole frames as a reshaped view (no padded copy of a long signal); the partial last frame is
    # averaged over its real length.
    frames = mono[: full * hop].reshape(full, hop)
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / hop
    if full * hop < n:
        tail = mono[full * hop:].astype(np.float64)
        power = np.append(power, float(np.dot(tail, tail)) / tail.shape[0])
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(power), LEVEL_FLOOR_DB)


def spectrum(mono: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density (Hann, ``WELCH_NPERSEG`` samples, 50 % overlap, mean of segments).

    The same figures as ``scipy.signal.welch(mono, sample_rate, nperseg, noverlap=nperseg // 2)``
    (one-sided density, constant detrend), computed with one batched FFT per
    ``_WELCH_CHUNK_SEGMENTS`` segments: scipy's welch transforms segment by segment in Python
    (0.3 CPU-s for a 3-minute song here, most of a whole check) and holds every segment at once.
    """
    n = mono.shape[0]
    nperseg = min(WELCH_NPERSEG, n)
    if nperseg < 16:
        return scipy.signal.welch(mono, sample_rate, nperseg=nperseg, noverlap=nperseg // 2)
    hop = nperseg - nperseg // 2
    segments = (n - nperseg) // hop + 1
    window = scipy.signal.get_window("hann", nperseg).astype(np.float32)
    scale = 1.0 / (sample_rate * float(np.sum(window.astype(np.float64) ** 2)))
    frames = np.lib.stride_tricks.sliding_window_view(mono.astype(np.float32, copy=False), nperseg)[::hop]
    total = np.zeros(nperseg // 2 + 1)
    for first in range(0, segments, _WELCH_CHUNK_SEGMENTS):
        chunk = frames[first:first + _WELCH_CHUNK_SEGMENTS]
        chunk = (chunk - chunk.mean(axis=1, keepdims=True)) * window
        power = np.abs(scipy.fft.rfft(chunk, axis=1)) ** 2
        total += power.sum(axis=0, dtype=np.float64)
    psd = total * (scale / segments)
    psd[1:-1 if nperseg % 2 == 0 else None] *= 2.0  # one-sided: DC (and Nyquist) counted once
    freqs = np.fft.rfftfreq(nperseg, 1.0 / sample_rate)
    return freqs, psd


def spectral_flatness(freqs: np.ndarray, psd: np.ndarray, band: tuple[float, float] = FLATNESS_BAND_HZ) -> float:
    """Geometric over arithmetic mean of the long-term PSD inside ``band`` (Hz), in [0, 1].

    White noise is near 1; music, whose energy sits in partials and low bands, is near 0.
    A song buried in broadband noise moves towards 1.
    """
    lo, hi = band
    sel = (freqs >= lo) & (freqs <= min(hi, freqs[-1] if freqs.size else 0.0))
    band_psd = psd[sel]
    if band_psd.size == 0 or band_psd.mean() <= 0:
        return 0.0
    band_psd = np.maximum(band_psd, band_psd.mean() * 1e-12)
    return float(np.exp(np.mean(np.log(band_psd))) / band_psd.mean())


# --- band limitation: a spectral cliff relative to the track's own spectrum ----------------------------

def band_levels_db(freqs: np.ndarray, psd: np.ndarray, step_hz: float = BAND_STEP_HZ) -> tuple[np.ndarray, np.ndarray]:
    """Mean PSD level (dB) in consecutive ``step_hz`` bands; returns (band lower edges Hz, levels dB)."""
    if freqs.size < 2:
        return np.zeros(0), np.zeros(0)
    nyquist = float(freqs[-1])
    edges = np.arange(0.0, nyquist, step_hz)
    index = np.minimum((freqs // step_hz).astype(int), edges.size - 1)
    power = np.bincount(index, weights=psd, minlength=edges.size)
    counts = np.maximum(np.bincount(index, minlength=edges.size), 1)
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(power / counts)
    return edges, np.maximum(levels, BAND_FLOOR_DB)


def band_limit(freqs: np.ndarray, psd: np.ndarray) -> tuple[float, float]:
    """Effective bandwidth (Hz) and the depth (dB) of the spectral cliff that ends it.

    Scanning candidate cuts ``fc`` from the top down, the level above ``fc`` (the 80th percentile of
    the bands from ``fc`` plus a guard up to ``2 fc``) is compared with the level the spectrum's own
    slope below ``fc`` (a straight line in dB per octave fitted over ``fc/2 .. fc``) predicts there.
    Music rolls off gradually, so it stays near that line; a low-pass, a low sample rate at the source
    or a codec's low-pass leaves nothing above the cut: tens of dB below the line. Only the bands
    where that line stands >= ``BAND_CLIFF_DB`` over the spectrum's own floor are compared (a dark
    track's steep slope meets the floor within the octave, where nothing can be seen). The first cut
    (from the top) whose deficit is >= ``BAND_CLIFF_DB`` is the bandwidth; with none, the bandwidth
    is the Nyquist frequency.
    Returns (bandwidth Hz, cliff depth dB; 0 when no cliff). Silence: (0, 0).
    """
    edges, levels = band_levels_db(freqs, psd)
    return band_limit_from_levels(edges, levels, float(freqs[-1]) if freqs.size else 0.0)


def band_limit_from_levels(edges: np.ndarray, levels: np.ndarray, nyquist: float) -> tuple[float, float]:
    """:func:`band_limit` on band levels already summed (:func:`band_levels_db`)."""
    if edges.size < 8 or not np.any(levels > BAND_FLOOR_DB):
        return 0.0, 0.0
    step = float(edges[1] - edges[0])
    centres = edges + step / 2
    floor = float(np.percentile(levels, BAND_FLOOR_PERCENTILE))
    first = int(np.searchsorted(edges, BAND_MIN_CUT_HZ))
    found: tuple[float, float] | None = None
    for k in range(edges.size - 2, first - 1, -1):
        deficit = _cliff_db(levels, centres, k, floor)
        if deficit is not None and deficit >= BAND_CLIFF_DB:
            # A filter's transition band is a run of cliffs: the knee is the deepest of the run.
            if found is None or deficit > found[1]:
                found = (float(edges[k]), deficit)
        elif found is not None:
            return found
    if found is None:
        found = _floor_cut(levels, centres, first, floor)
    return found if found is not None else (nyquist, 0.0)


def _floor_cut(levels: np.ndarray, centres: np.ndarray, first: int, floor: float) -> tuple[float, float] | None:
    """A dark track's cut where the slope cannot be compared (:func:`_cliff_db` saw none): the first
    band from the top above which everything sits on the spectrum's floor (80th percentile within
    ``BAND_FLOOR_CUT_TOLERANCE_DB``) while the track's slope, continued past the guard, would still
    stand >= ``BAND_FLOOR_CUT_MIN_DB`` over it. Returns (cut Hz, that height dB) or None."""
    step = float(centres[1] - centres[0])
    for k in range(levels.size - 2, max(first, 2) - 1, -1):
        fc = float(centres[k] - step / 2)
        guard = max(1, int(np.ceil(BAND_GUARD_FRACTION * fc / step)))
        hi = min(int(2 * k), levels.size - 1)
        above = levels[k + guard:hi + 1]
        if above.size < 2 or float(np.percentile(above, BAND_ABOVE_PERCENTILE)) > floor + BAND_FLOOR_CUT_TOLERANCE_DB:
            continue
        below = float(levels[k - 2:k].mean())
        fit = slice(max(k // 2, 1), k)
        slope = float(np.polyfit(np.log2(centres[fit]), levels[fit], 1)[0])
        slope = min(max(slope, -BAND_MAX_SLOPE_DB_PER_OCT), 0.0)
        height = below + slope * float(np.log2(centres[k + guard] / centres[k - 1])) - floor
        if height >= BAND_FLOOR_CUT_MIN_DB:
            return fc, height
    return None


def _cliff_db(levels: np.ndarray, centres: np.ndarray, k: int, floor: float) -> float | None:
    """Deficit (dB) above band ``k``'s lower edge vs the slope below it; None when not measurable."""
    step = float(centres[1] - centres[0])
    fc = float(centres[k] - step / 2)
    below = levels[max(k - 2, 0):k]
    if below.size == 0:
        return None
    guard = max(1, int(np.ceil(BAND_GUARD_FRACTION * fc / step)))
    hi = min(int(2 * k), levels.size - 1)
    above = slice(k + guard, hi + 1)
    if levels[above].size < 2:
        return None
    fit = slice(max(k // 2, 1), k)
    slope, intercept = np.polyfit(np.log2(centres[fit]), levels[fit], 1)
    slope = min(max(slope, -BAND_MAX_SLOPE_DB_PER_OCT), 0.0)
    predicted = intercept + slope * np.log2(centres[above])
    # Re-anchor the line on the bands just below the cut (the fit's intercept is a compromise).
    predicted += float(below.mean()) - float(intercept + slope * np.log2(centres[k - 1]))
    # Only where the slope stands BAND_CLIFF_DB over the spectrum's floor can a cliff that deep show.
    measurable = predicted >= floor + BAND_CLIFF_DB
    if measurable.sum() < 2:
        return None
    return -float(np.percentile((levels[above] - predicted)[measurable], BAND_ABOVE_PERCENTILE))


def dropouts(mono: np.ndarray, sample_rate: int) -> tuple[int, float]:
    """Gaps: runs of >= 1 frame (``DROPOUT_FRAME_S``) at least ``DROPOUT_DEPTH_DB`` below BOTH
    neighbouring frames' level and below ``DROPOUT_MAX_DBFS``, lasting at most ``DROPOUT_MAX_S``.
    Music that stops decays (a reverb tail, a release); a lost buffer drops to nothing within one frame
    and comes back as abruptly. Returns (count, total seconds)."""
    levels = frame_rms_db(mono, sample_rate, DROPOUT_FRAME_S)
    n = levels.size
    if n < 3:
        return 0, 0.0
    low = levels < DROPOUT_MAX_DBFS
    edges = np.diff(np.concatenate(([0], low.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    count, total = 0, 0
    max_frames = round(DROPOUT_MAX_S / DROPOUT_FRAME_S)
    for s, e in zip(starts, ends):
        if s == 0 or e >= n or e - s > max_frames:
            continue  # leading/trailing silence, or a real pause
        gap = float(levels[s:e].max())
        if levels[s - 1] - gap >= DROPOUT_DEPTH_DB and levels[e] - gap >= DROPOUT_DEPTH_DB:
            count += 1
            total += e - s
    return count, total * DROPOUT_FRAME_S


def repeated_buffer_s(mono: np.ndarray, sample_rate: int) -> float:
    """Seconds of audio that repeat, sample for sample, a buffer played just before (a stuck buffer).

    Two stages. (1) On a cheap ``REPEAT_RATE`` copy, each block of ``REPEAT_BLOCK_S`` is correlated
    (FFT, normalised per lag) with the audio ``REPEAT_MIN_LAG_S`` .. ``REPEAT_MAX_LAG_S`` later; blocks
    whose best correlation is >= ``REPEAT_CANDIDATE`` are candidates. Sustained notes pass this too.
    (2) Each candidate is checked at the file's own rate, at the integer lags around the candidate
    lag, on its first difference (rising 6 dB per octave) and its second (12 dB per octave). A stuck
    buffer repeats the whole mix at an exact integer lag, cymbals and breath included: the first
    difference correlates >= ``REPEAT_CORRELATION_D1`` (or the second >= ``REPEAT_CORRELATION``) and
    the repeat is EXACT: one sample off, the mix's high band no longer lines up, so
    (1 - corr at lag +-1) / (1 - corr at the lag) >= ``REPEAT_EXACTNESS``. A played or synthesised
    tone or loop (a period of 1200.5 samples, a synth bass) is smooth at that scale: its correlation
    barely moves one sample off, whatever its high band does. Blocks whose high band already repeats
    within 1-20 ms are held notes (``REPEAT_TONAL``).
    """
    rate = REPEAT_RATE
    low = soxr.resample(mono, sample_rate, rate, quality="LQ") if sample_rate != rate else mono
    x = np.diff(np.asarray(low, dtype=np.float32))
    block = round(REPEAT_BLOCK_S * rate)
    hop = round(REPEAT_HOP_S * rate)
    min_lag, max_lag = round(REPEAT_MIN_LAG_S * rate), round(REPEAT_MAX_LAG_S * rate)
    span = block + max_lag
    if x.size < span + hop:
        return 0.0
    nfft = scipy.fft.next_fast_len(span, real=True)  # lags 0..max_lag of a block inside span: no wrap
    starts = np.arange(0, x.size - span, hop)
    energy = np.concatenate(([0.0], np.cumsum(x.astype(np.float64) ** 2)))
    # Energy of every block-long window, by start, and 1/sqrt of it: normalising a row of lags is a
    # gather and a product (the block's own energy only scales the row: applied to its best lag).
    window_energy = energy[block:] - energy[:-block]
    inv_root = (1.0 / np.sqrt(np.maximum(window_energy, 1e-30))).astype(np.float32)
    lags = np.arange(min_lag, max_lag + 1)
    windows = np.lib.stride_tricks.sliding_window_view(x, span)
    candidates: list[tuple[int, int]] = []
    for chunk in np.array_split(starts, max(1, starts.size // 256)):
        ext = windows[chunk]
        seg_spec = scipy.fft.rfft(ext[:, :block], nfft, axis=1)
        corr = scipy.fft.irfft(np.conj(seg_spec) * scipy.fft.rfft(ext, nfft, axis=1), nfft, axis=1)
        corr = corr[:, min_lag:max_lag + 1]
        corr *= inv_root[chunk[:, None] + lags[None, :]]
        best = corr.argmax(axis=1)
        peak = corr[np.arange(len(chunk)), best] * inv_root[chunk]
        ok = (peak >= REPEAT_CANDIDATE) & (window_energy[chunk] > REPEAT_MIN_POWER * block)
        candidates += [(int(s), int(lags[b])) for s, b, good in zip(chunk, best, ok) if good]
    if not candidates:
        return 0.0
    hits = 0
    scale = sample_rate / rate
    full_block = round(REPEAT_BLOCK_S * sample_rate)
    reach = int(np.ceil(scale)) + 1
    for start, lag in candidates:
        t0, l0 = round(start * scale), round(lag * scale)
        # float64 per candidate stretch, never a float64 copy of the whole song (bounded memory).
        seg = np.asarray(mono[max(t0 - 2, 0):t0 + full_block + l0 + reach + 3], dtype=np.float64)
        if seg.size < full_block + l0 + reach + 5:
            continue
        d1 = np.diff(seg)
        lo = max(l0 - reach, 2)
        c1 = _lag_correlations(d1, full_block, lo - 1, l0 + reach + 1)
        k = int(np.argmax(c1[1:-1])) + 1  # the best first-difference lag, with a neighbour each side
        off = 1.0 - max(c1[k - 1], c1[k + 1])
        if off / max(1.0 - c1[k], 1e-9) < REPEAT_EXACTNESS:
            continue  # not an exact integer-lag repeat: a tone, a loop, a played note
        hf = np.diff(d1)
        if _short_period_correlation(hf, full_block, sample_rate) >= REPEAT_TONAL:
            continue
        # On the first difference alone, a held note's onset (its high band not yet steady) passes:
        # it must not repeat within 1-20 ms there either.
        if (c1[k] >= REPEAT_CORRELATION_D1 and _short_period_correlation(d1[1:], full_block, sample_rate) < REPEAT_TONAL
                or _lag_correlations(hf, full_block, lo, l0 + reach).max() >= REPEAT_CORRELATION):
            hits += 1
    return hits * hop / rate


def _lag_correlations(sig: np.ndarray, block: int, lo: int, hi: int) -> np.ndarray:
    """Normalised correlation of ``sig[:block]`` with ``sig[lag:lag + block]`` for lag = lo..hi
    (0 where either side is silent)."""
    a = sig[:block]
    ea = float(a @ a)
    if ea <= 0.0:
        return np.zeros(hi - lo + 1)
    stretch = sig[lo:hi + block]
    n = hi - lo + 1
    dots = np.correlate(stretch, a, mode="valid")
    # Each window's energy from the first: one sample leaves, one enters.
    eb = float(stretch[:block] @ stretch[:block]) + np.concatenate(
        ([0.0], np.cumsum(stretch[block:block + n - 1] ** 2 - stretch[:n - 1] ** 2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = dots / np.sqrt(ea * eb)
    return np.where(eb > 0.0, out, 0.0)


def _short_period_correlation(hf: np.ndarray, block: int, sample_rate: int) -> float:
    """Largest normalised correlation of ``hf[:block]`` with itself ``REPEAT_SHORT_LAGS_S`` later."""
    lo, hi = (max(1, round(s * sample_rate)) for s in REPEAT_SHORT_LAGS_S)
    hi = min(hi, hf.size - block)
    if hi < lo:
        return 0.0
    a = hf[:block]
    span = hf[:block + hi]
    corr = scipy.signal.correlate(span, a, mode="valid", method="fft")[lo:hi + 1]
    energy = np.concatenate(([0.0], np.cumsum(span * span)))
    shifted = energy[np.arange(lo, hi + 1) + block] - energy[np.arange(lo, hi + 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = corr / np.sqrt(np.maximum(float(a @ a) * shifted, 1e-30))
    return float(np.nanmax(norm)) if norm.size else 0.0


def noise_floor(mono: np.ndarray, sample_rate: int, max_hz: float | None = None
                ) -> tuple[float, float, float, float]:
    """How stationary, how smooth and how loud the high-frequency floor is:
    (floor spread dB, floor flatness, floor level dB under the programme, floor tail dB).

    Short-time spectra (``NOISE_NFFT`` samples, one frame in ``NOISE_FRAME_STRIDE``), powers summed
    in bands of ``NOISE_BAND_BINS`` bins inside ``NOISE_BAND_HZ``; per band, the 10th percentile over
    time (the floor) vs the median. Music's quiet moments fall far below its median; added hiss sets a
    floor every frame keeps, so the spread shrinks towards 0 dB (about -3 dB for pure Gaussian noise
    in 8-bin bands). The floor's flatness (geometric/arithmetic mean over bands) tells broadband hiss
    from a tonal pad. ``max_hz``: the content's own bandwidth (:func:`band_limit`); bands above
    ``NOISE_GUARD_FRACTION`` of it are left out, since above a codec's low-pass (5.5 kHz at 32 kbps)
    only the decoder's faint, flat, steady residue is left, which is no hiss in the music.
    The floor's level: the floor summed over the noise bands against the median frame's whole
    spectrum (dB, <= 0; ``NOISE_FLOOR_NONE_DB`` when not measurable): added noise at 6-20 dB SNR puts
    it at -31..-15 dB, a clean master's steady hiss or reverb tens of dB lower. The floor's tail: per
    band, the 10th percentile over the 1st (dB, median over bands; ``NOISE_TAIL_NONE_DB`` when not
    measurable): the quietest frames of music with added noise all sit on the noise (only its own
    statistical spread, 2.6-3.7 dB on the tune half); the quietest moments of clean music differ.
    (-60, 0, level, NOISE_TAIL_NONE_DB) when there is too little audio, fewer than two bands below the
    content's end, or a floor more than ``-NOISE_FLOOR_AUDIBLE_DB`` dB under the programme (inaudible).
    """
    nfft = NOISE_NFFT
    n_frames = mono.shape[0] // nfft
    if n_frames < 16:
        return -60.0, 0.0, NOISE_FLOOR_NONE_DB, NOISE_TAIL_NONE_DB
    frames = mono[: n_frames * nfft].reshape(n_frames, nfft)[:: NOISE_FRAME_STRIDE]
    # scipy keeps float32 (numpy.fft would double the memory of a 10-minute spectrogram).
    spec = np.abs(scipy.fft.rfft(frames * np.hanning(nfft).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    top = min(NOISE_BAND_HZ[1], float(freqs[-1]))
    if max_hz is not None and max_hz > 0:
        top = min(top, NOISE_GUARD_FRACTION * max_hz)
    sel = np.flatnonzero((freqs >= NOISE_BAND_HZ[0]) & (freqs <= top))
    n_bands = sel.size // NOISE_BAND_BINS
    if n_bands < 2:
        return -60.0, 0.0, NOISE_FLOOR_NONE_DB, NOISE_TAIL_NONE_DB
    bands = spec[:, sel[: n_bands * NOISE_BAND_BINS]].reshape(spec.shape[0], n_bands, NOISE_BAND_BINS).sum(axis=2)
    loud = bands.sum(axis=1)
    keep = loud > loud.max() * 1e-6  # frames with programme (leading silence would be a perfect "floor")
    if keep.sum() < 8:
        return -60.0, 0.0, NOISE_FLOOR_NONE_DB, NOISE_TAIL_NONE_DB
    bands = bands[keep]
    lowest, floor, median = np.maximum(np.percentile(bands, [1, 10, 50], axis=0), 1e-30)
    # A floor far under the programme is no hiss anyone hears: a 16-bit file's quantisation floor
    # (~-100 dBFS) under sparse highs read as 'noisy'. Programme: the median frame's whole spectrum.
    programme = float(np.median(spec.sum(axis=1)[keep]))
    level = 10 * np.log10(float(floor.sum()) / programme) if programme > 0 else NOISE_FLOOR_NONE_DB
    level = float(min(max(level, NOISE_FLOOR_NONE_DB), 0.0))
    if level < NOISE_FLOOR_AUDIBLE_DB:
        return -60.0, 0.0, level, NOISE_TAIL_NONE_DB
    spread = float(np.median(10 * np.log10(floor / median)))
    flatness = float(np.exp(np.mean(np.log(floor))) / floor.mean())
    tail = float(np.median(10 * np.log10(floor / lowest)))
    return spread, flatness, level, tail


def signal_measures(samples: np.ndarray, sample_rate: int, *,
                    levels: Mapping[str, float] | None = None) -> dict[str, float]:
    """Every measure of one song; ``samples`` float32 (n,) or (n, channels).

    Returns seconds, LUFS, dBFS, dB, Hz and ratios in [0, 1]:
    duration_s, loudness_lufs, sample_peak_dbfs, true_peak_dbfs, clipped_ratio, silence_ratio,
    bandwidth_hz, crest_factor_db, spectral_flatness, dynamic_range_db (95th minus 10th percentile of
    50 ms frame levels among non-silent frames; stationary noise is flat, music is not).

    ``levels``: the level measures (loudness_lufs, sample_peak_dbfs, true_peak_dbfs, clipped_ratio,
    full_scale_ratio, dc_offset) already taken by a :class:`~sunorecsys.audio.levels.LevelMeter` on the file's own blocks during
    the decode; then ``samples`` may be the mono analysis signal (any rate >= 32 kHz keeps the
    spectrum up to 16 kHz). Without it they are measured on ``samples`` themselves.
    """
    data = samples.reshape(samples.shape[0], -1)
    if levels is None:
        levels = stream_levels(data, sample_rate)
    mono = to_mono(data)
    levels_db = frame_rms_db(mono, sample_rate)
    silent = levels_db < SILENCE_THRESHOLD_DBFS
    voiced = levels_db[~silent]
    peak_db = float(levels["sample_peak_dbfs"])
    if voiced.size:
        # Crest over the programme only: leading/trailing silence would inflate it.
        rms = float(np.sqrt(np.mean(10.0 ** (voiced / 10.0))))
        crest = peak_db - _db(rms) if rms > 0 else 0.0
        dynamic_range = float(np.percentile(voiced, 95) - np.percentile(voiced, 10))
    else:
        crest, dynamic_range = 0.0, 0.0
    freqs, psd = spectrum(mono, sample_rate)
    bandwidth, cliff = band_limit(freqs, psd)
    drop_count, drop_s = dropouts(mono, sample_rate)
    spread, floor_flatness, floor_db, floor_tail = noise_floor(mono, sample_rate, max_hz=bandwidth)
    return {
        "duration_s": data.shape[0] / sample_rate,
        "loudness_lufs": float(levels["loudness_lufs"]),
        "sample_peak_dbfs": peak_db,
        "true_peak_dbfs": float(levels["true_peak_dbfs"]),
        "clipped_ratio": float(levels["clipped_ratio"]),
        "full_scale_ratio": float(levels["full_scale_ratio"]),
        "silence_ratio": float(silent.mean()) if silent.size else 1.0,
        "bandwidth_hz": bandwidth,
        "band_cliff_db": cliff,
        "crest_factor_db": float(crest),
        "spectral_flatness": spectral_flatness(freqs, psd),
        "dynamic_range_db": dynamic_range,
        "dc_offset": float(levels["dc_offset"]),
        "dropout_count": float(drop_count),
        "dropout_s": drop_s,
        "repeated_s": repeated_buffer_s(mono, sample_rate),
        "noise_floor_spread_db": spread,
        "noise_floor_flatness": floor_flatness,
        "noise_floor_db": floor_db,
        "noise_floor_tail_db": floor_tail,
    }
