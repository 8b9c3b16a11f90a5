"""Decoding real files of every format we promise (soundfile), resampling with soxr, length caps."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf
import soxr

from sunorecsys.audio import AudioUnavailable, decode_audio
from sunorecsys.audio.synth import synth_song

SR = 44100


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    return synth_song(3.0, SR, channels=2, seed=3)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_every_promised_format_decodes_to_16k_mono(tmp_path, stereo, ext):
    path = tmp_path / f"song.{ext}"
    sf.write(path, stereo, SR)
    audio = decode_audio(path, sample_rate=16000, mono=True)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == 16000 and audio.source_sample_rate == SR and audio.source_channels == 2
    # Lossy coders pad a few frames; the length must still be within 60 ms of 3 s.
    assert abs(audio.duration_s - 3.0) < 0.06
    assert abs(audio.samples.shape[0] - round(audio.duration_s * 16000)) <= 1
    assert 0.05 < float(np.sqrt(np.mean(audio.samples ** 2))) < 0.5


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_lossless_decode_matches_a_direct_downmix_and_resample(tmp_path, stereo, ext):
    path = tmp_path / f"song.{ext}"
    sf.write(path, stereo, SR, subtype="FLOAT" if ext == "wav" else "PCM_24")
    audio = decode_audio(path, sample_rate=16000)
    expected = soxr.resample(stereo.mean(axis=1), SR, 16000, quality="HQ")
    assert audio.samples.shape == expected.shape
    assert np.max(np.abs(audio.samples - expected)) < 1e-3


def test_mono_false_keeps_the_channels_at_the_native_rate(tmp_path, stereo):
    path = tmp_path / "song.flac"
    sf.write(path, stereo, SR)
    audio = decode_audio(path, mono=False)
    assert audio.samples.shape == stereo.shape and audio.sample_rate == SR and audio.channels == 2


def test_max_seconds_caps_the_decode_but_reports_the_whole_length(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, synth_song(10.0, 22050, channels=1, seed=1), 22050)
    audio = decode_audio(path, sample_rate=16000, max_seconds=2.5)
    assert audio.duration_s == pytest.approx(2.5, abs=1e-3)
    assert audio.source_duration_s == pytest.approx(10.0, abs=1e-3)
    full = decode_audio(path, sample_rate=None)
    capped = decode_audio(path, sample_rate=None, max_seconds=2.5)
    np.testing.assert_array_equal(capped.samples, full.samples[: capped.samples.shape[0]])


def test_sha256_is_the_digest_of_the_file_bytes(tmp_path, stereo):
    path = tmp_path / "song.flac"
    sf.write(path, stereo, SR)
    assert decode_audio(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_file_is_reason_missing(tmp_path):
    with pytest.raises(AudioUnavailable) as err:
        decode_audio(tmp_path / "nope.mp3")
    assert err.value.reason == "missing" and "nope.mp3" in err.value.detail


@pytest.mark.parametrize("payload", [b"", b"this is not audio at all" * 100, b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_garbage_bytes_are_reason_unreadable(tmp_path, payload):
    path = tmp_path / "bad.mp3"
    path.write_bytes(payload)
    with pytest.raises(AudioUnavailable) as err:
        decode_audio(path)
    assert err.value.reason == "unreadable"


def test_truncated_flac_still_decodes_what_is_there_or_says_unreadable(tmp_path, stereo):
    path = tmp_path / "cut.flac"
    sf.write(path, stereo, SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        audio = decode_audio(path)
    except AudioUnavailable as exc:
        assert exc.reason in {"unreadable", "empty"}
    else:
        assert 0 < audio.duration_s <= 3.0


def test_header_only_file_is_reason_empty(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 2), dtype=np.float32), SR)
    with pytest.raises(AudioUnavailable) as err:
        decode_audio(path)
    assert err.value.reason == "empty"


def test_min_seconds_gives_reason_too_short(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, synth_song(0.2, SR, channels=1), SR)
    with pytest.raises(AudioUnavailable) as err:
        decode_audio(path, min_seconds=0.5)
    assert err.value.reason == "too_short"


def test_non_finite_samples_are_zeroed(tmp_path):
    path = tmp_path / "nan.wav"
    data = np.zeros(SR, dtype=np.float32)
    data[100] = np.nan
    data[200] = np.inf
    sf.write(path, data, SR, subtype="FLOAT")
    audio = decode_audio(path)
    assert np.isfinite(audio.samples).all()


def test_unknown_reason_is_a_programming_error():
    with pytest.raises(ValueError):
        AudioUnavailable("gone_fishing")
