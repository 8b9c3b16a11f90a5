"""Synthesised music-like signals (numpy only) for tests and benchmarks of the signal checks.

Not music, but it has what the checks look at: harmonic notes with attack/decay envelopes, a bass
line, noise-burst percussion, phrase-level dynamics and a full-band spectrum, at a typical level.
"""

from __future__ import annotations

import numpy as np


def synth_song(seconds: float = 10.0, sample_rate: int = 44100, channels: int = 2, seed: int = 0,
               level_dbfs: float = -16.0) -> np.ndarray:
    """A float32 array (n,) when ``channels == 1`` else (n, channels), RMS about ``level_dbfs``, peak <= 0.89."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    out = np.zeros((n, channels), dtype=np.float64)
    beat = 60.0 / rng.uniform(90, 140)
    # Notes: a few harmonics, exponential decay, random pitches on a pentatonic scale.
    scale = 220.0 * 2.0 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12.0)
    start = 0.0
    while start < seconds:
        length = beat * rng.choice([0.5, 1.0, 2.0])
        i0, i1 = int(start * sample_rate), min(int((start + length) * sample_rate), n)
        if i1 > i0:
            tt = t[i0:i1] - start
            f0 = rng.choice(scale) * rng.choice([0.5, 1.0, 2.0])
            env = np.minimum(tt / 0.01, 1.0) * np.exp(-tt / (0.3 * length + 0.05))
            note = sum((0.6 ** h) * np.sin(2 * np.pi * f0 * (h + 1) * tt + rng.uniform(0, 6.28))
                       for h in range(8) if f0 * (h + 1) < sample_rate / 2)
            pan = rng.uniform(0.3, 0.7)
            gains = np.array([1 - pan, pan]) if channels == 2 else np.ones(channels)
            out[i0:i1] += (env * note)[:, None] * gains[None, :]
        start += length
    # Bass: a sine following the beat.
    bass_f = 55.0 * 2.0 ** (rng.integers(0, 5, size=int(seconds / beat) + 2) / 12.0)
    idx = np.minimum((t / beat).astype(int), bass_f.size - 1)
    phase = 2 * np.pi * np.cumsum(bass_f[idx]) / sample_rate
    out += (0.8 * np.sin(phase) * (0.6 + 0.4 * np.exp(-(t % beat) / 0.2)))[:, None]
    # Percussion: short broadband noise bursts on every beat (gives the full-band spectrum).
    hit_len = int(0.08 * sample_rate)
    for k in range(int(seconds / beat) + 1):
        i0 = int(k * beat * sample_rate)
        i1 = min(i0 + hit_len, n)
        if i1 > i0:
            burst = rng.standard_normal((i1 - i0, channels)) * np.exp(-np.arange(i1 - i0) / (0.015 * sample_rate))[:, None]
            out[i0:i1] += 0.7 * burst
    # Phrase dynamics: 8-bar swells, so quiet and loud passages alternate.
    out *= (0.55 + 0.45 * np.sin(2 * np.pi * t / (32 * beat)) ** 2)[:, None]
    rms = np.sqrt(np.mean(out ** 2))
    out *= 10 ** (level_dbfs / 20) / max(rms, 1e-12)
    peak = np.abs(out).max()
    if peak > 0.89:  # a clean master leaves headroom: never let the synthesis clip
        out *= 0.89 / peak
    out = out.astype(np.float32)
    return out[:, 0] if channels == 1 else out
