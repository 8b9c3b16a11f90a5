"""The streamed level meter against the reference computations on whole arrays.

pyloudnorm is the reference for loudness (mono and stereo, which it supports), plain whole-array
computations written here for clipping and true peak (the library keeps one implementation, the
streamed one); block sizes are odd on purpose so that runs,
gating hops and true-peak stretches straddle block edges.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import soxr

from sunorecsys.audio.levels import LoudnessMeter, stream_levels
from sunorecsys.audio.synth import synth_song

SR = 44100


def clipped_ratio(samples: np.ndarray, min_run: int = 3, rel_tolerance: float = 1e-3) -> float:
    """Reference: share of samples in runs of >= ``min_run`` within ``rel_tolerance`` of the channel peak."""
    data = samples.reshape(samples.shape[0], -1)
    clipped = 0
    for ch in range(data.shape[1]):
        mag = np.abs(data[:, ch])
        at_top = (mag >= float(mag.max()) * (1.0 - rel_tolerance)).astype(np.int8)
        edges = np.diff(np.concatenate(([0], at_top, [0])))
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        clipped += int(runs[runs >= min_run].sum())
    return clipped / data.size


def true_peak_dbfs(samples: np.ndarray, sample_rate: int) -> float:
    """Reference: peak of the whole signal 4x upsampled by soxr (HQ), in dBFS."""
    up = soxr.resample(samples, sample_rate, sample_rate * 4, quality="HQ")
    return float(20 * np.log10(max(np.abs(up).max(), np.abs(samples).max())))


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return synth_song(25.0, SR, channels=2, seed=7)


@pytest.mark.parametrize("block", [4410, 7777, 65536])
def test_streamed_loudness_is_pyloudnorm_for_mono_and_stereo(song, block):
    for x in (song, song[:, 0]):
        ref = pyloudnorm.Meter(SR).integrated_loudness(x.astype(np.float64))
        data = x.reshape(x.shape[0], -1)
        meter = LoudnessMeter(SR, data.shape[1])  # float64 K-weighting: pyloudnorm's own figures
        for start in range(0, data.shape[0], block):
            meter.update(np.ascontiguousarray(data[start:start + block].T, dtype=np.float64))
        assert meter.result() == pytest.approx(ref, abs=1e-6)
        # The level meter filters in float32 (faster): within 1e-3 LU, far inside any threshold.
        assert stream_levels(x, SR, block_frames=block)["loudness_lufs"] == pytest.approx(ref, abs=1e-3)


@pytest.mark.parametrize("block", [1000, 7777])
def test_streamed_clipping_and_true_peak_match_the_whole_signal(song, block):
    clipped = np.clip(song * 4, -0.7, 0.7)  # plateaus everywhere, overshoot where they end
    for x in (song, clipped):
        levels = stream_levels(x, SR, block_frames=block)
        assert levels["clipped_ratio"] == pytest.approx(clipped_ratio(x), abs=1e-9)
        assert levels["true_peak_dbfs"] == pytest.approx(true_peak_dbfs(x, SR), abs=0.01)
        assert levels["sample_peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(x).max()), abs=1e-6)
    assert stream_levels(clipped, SR)["clipped_ratio"] > 0.05


def test_silence_and_nothing_read_the_floors():
    zeros = stream_levels(np.zeros((SR, 2), dtype=np.float32), SR)
    assert zeros == {"loudness_lufs": -70.0, "sample_peak_dbfs": -120.0, "true_peak_dbfs": -120.0,
                     "clipped_ratio": 0.0, "full_scale_ratio": 0.0, "dc_offset": 0.0}
