"""Decode an audio file with soundfile, downmix, resample with soxr, cap the length.

soundfile's bundled libsndfile reads MP3, OGG/Vorbis/Opus, FLAC, WAV and more. torchaudio is
deliberately not used (see FIELD_NOTES: it breaks beside the CPU torch and leaks into transformers).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from sunorecsys.audio.errors import EMPTY, MISSING, TOO_SHORT, UNREADABLE, AudioUnavailable

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded samples and where they came from.

    ``samples`` is float32 in [-1, 1] (nominally), shape ``(n,)`` when mono else ``(n, channels)``.
    ``duration_s`` is the length of ``samples`` in seconds (after capping); ``source_duration_s`` the
    whole file's length. ``sha256`` is the hex digest of the file's bytes (the cache key of scores).
    """

    samples: np.ndarray
    sample_rate: int
    duration_s: float
    source_duration_s: float
    path: Path
    sha256: str
    source_sample_rate: int
    source_channels: int

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resample(samples: np.ndarray, from_rate: int, to_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample with soxr (``samples`` (n,) or (n, ch), float32); a no-op when the rates match."""
    if from_rate == to_rate or samples.shape[0] == 0:
        return samples
    out = soxr.resample(samples, from_rate, to_rate, quality=quality)
    return np.ascontiguousarray(out, dtype=np.float32)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of an (n, ch) array into (n,); (n,) is returned as is."""
    if samples.ndim == 1:
        return samples
    if samples.shape[1] == 1:
        return samples[:, 0]
    return samples.mean(axis=1, dtype=np.float32)


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """soundfile's header info, or AudioUnavailable('missing'|'unreadable')."""
    path = Path(path)
    if not path.is_file():
        raise AudioUnavailable(MISSING, f"no file at {path}")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioUnavailable(UNREADABLE, f"{path.name}: {exc}") from exc


def decode_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = None,
    mono: bool = True,
    max_seconds: float | None = None,
    min_seconds: float | None = None,
    resample_quality: str = "HQ",
) -> DecodedAudio:
    """Decode ``path`` into float32 samples.

    sample_rate: target rate in Hz (None keeps the file's rate); soxr ``resample_quality``.
    mono: average the channels. max_seconds: read only the first ``max_seconds`` seconds of the file
    (soundfile ``frames=``, so a long file is never decoded whole). min_seconds: fail with
    ``too_short`` below this length. Every failure is :class:`AudioUnavailable` with reason
    missing / unreadable / empty / too_short.
    """
    path = Path(path)
    info = audio_info(path)
    native_rate = int(info.samplerate)
    if native_rate <= 0:
        raise AudioUnavailable(UNREADABLE, f"{path.name}: sample rate {native_rate}")
    total_frames = max(int(info.frames), 0)
    frames = -1
    if max_seconds is not None:
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        frames = round(max_seconds * native_rate)
        if total_frames:
            frames = min(frames, total_frames)
    try:
        data, _ = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioUnavailable(UNREADABLE, f"{path.name}: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioUnavailable(EMPTY, f"{path.name}: no samples")
    if not np.isfinite(data).all():
        # A damaged float file can hold NaN/inf; they would poison every measure downstream.
        data = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0)
    samples = to_mono(data) if mono else data
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    rate = native_rate
    if sample_rate is not None and sample_rate != native_rate:
        samples = resample(samples, native_rate, sample_rate, quality=resample_quality)
        rate = int(sample_rate)
    duration = samples.shape[0] / rate
    if min_seconds is not None and duration < min_seconds:
        raise AudioUnavailable(TOO_SHORT, f"{path.name}: {duration:.3f} s < {min_seconds} s")
    # Header frame counts of some MP3s are estimates; never report less than what was decoded.
    source_duration = max(total_frames / native_rate, data.shape[0] / native_rate)
    return DecodedAudio(
        samples=samples,
        sample_rate=rate,
        duration_s=float(duration),
        source_duration_s=float(source_duration),
        path=path,
        sha256=file_sha256(path),
        source_sample_rate=native_rate,
        source_channels=int(info.channels),
    )
