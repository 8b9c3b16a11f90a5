"""Chromaprint acoustic fingerprints from decoded PCM, and their offset-aligned comparison.

The fingerprint is Chromaprint's (the AcoustID algorithm, ``libchromaprint1`` through the
``pyacoustid`` ctypes binding): one 32-bit word per ~0.124 s of audio (Chromaprint works on 11,025 Hz
mono internally, frames of 4,096 samples with a hop of 4,096/3). Each bit is one of 16 two-bit
classifiers over a chroma image, so the word sequence survives lossy re-encoding and gain changes with
a low bit error rate, and a trimmed copy is the same sequence shifted by a whole number of words
(plus a few flipped bits, because the frame grid moves by a fraction of a hop).

We feed Chromaprint the PCM the project already decodes with soundfile (``sunorecsys.audio.decode``),
instead of running ``fpcalc``, which would decode the file a second time with FFmpeg. Measured here on
real recordings (bench/spam.py): a 64 kbps MP3 re-encode flips ~1 % of bits, +-3 dB of gain ~0 %, a
5 s trim ~5-6 % at the best offset; two different recordings differ in ~35-50 % of bits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import chromaprint
import numpy as np
import pandas as pd

from sunorecsys.audio.errors import AudioUnavailable
from sunorecsys.audio.source import load_song_audio
from sunorecsys.paths import DataPaths

# Chromaprint's defaults (algorithm 2, the one AcoustID uses).
CHROMAPRINT_RATE_HZ = 11025
ITEM_SECONDS = 4096 / 3 / CHROMAPRINT_RATE_HZ  # ~0.1238 s of audio per fingerprint word
# fpcalc's default length, and what AcoustID indexes: enough to identify a song, bounded cost.
FINGERPRINT_SECONDS = 120.0
# Under ~3 s Chromaprint returns almost nothing: too short to compare.
MIN_ITEMS = 24


def fingerprint_pcm(samples: np.ndarray, sample_rate: int, max_seconds: float | None = FINGERPRINT_SECONDS
                    ) -> np.ndarray:
    """Chromaprint words (uint32, one per ~0.124 s) of float PCM ``samples`` ((n,) or (n, channels), [-1, 1]).

    Only the first ``max_seconds`` seconds are used (None = all). Chromaprint downmixes and resamples
    itself; feeding it the decoded rate was faster here than resampling to 11,025 Hz first.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    data = samples if samples.ndim == 2 else samples[:, None]
    if max_seconds is not None:
        data = data[: round(max_seconds * sample_rate)]
    pcm = np.clip(data, -1.0, 1.0)
    pcm = np.ascontiguousarray((pcm * 32767.0).astype("<i2"))  # Chromaprint takes 16-bit interleaved
    printer = chromaprint.Fingerprinter()
    printer.start(int(sample_rate), int(data.shape[1]))
    printer.feed(pcm.tobytes())
    words, _algorithm = chromaprint.decode_fingerprint(printer.finish())
    # decode_fingerprint returns signed ints: reinterpret as the unsigned 32-bit words they are.
    return np.asarray(words, dtype=np.int64).astype(np.uint32)


@dataclass(frozen=True)
class SongFingerprint:
    """One song's fingerprint, or why there is none (``status`` "ok" or an AudioUnavailable reason)."""

    song_id: str
    words: np.ndarray | None
    audio_seconds: float
    status: str = "ok"
    detail: str = ""


def fingerprint_song(song: Mapping, paths: DataPaths, *, fetch: bool = False,
                     max_seconds: float = FINGERPRINT_SECONDS) -> SongFingerprint:
    """Decode a song's audio (the project's resolver and decoder) and fingerprint its first ``max_seconds``.

    Audio that cannot be had or is too short is a ``status`` with a reason, never an exception.
    """
    song_id = str(song.get("song_id"))
    try:
        audio = load_song_audio(song, paths, sample_rate=None, mono=False, max_seconds=max_seconds, fetch=fetch)
    except AudioUnavailable as exc:
        return SongFingerprint(song_id, None, 0.0, exc.reason, exc.detail)
    words = fingerprint_pcm(audio.samples, audio.sample_rate, max_seconds)
    if len(words) < MIN_ITEMS:
        return SongFingerprint(song_id, None, audio.duration_s, "too_short",
                               f"{audio.duration_s:.1f} s of audio gives {len(words)} fingerprint words")
    return SongFingerprint(song_id, words, audio.duration_s)


def fingerprint_songs(songs: pd.DataFrame, paths: DataPaths, *, fetch: bool = False, workers: int = 1
                      ) -> list[SongFingerprint]:
    """Fingerprints of every row of a songs table (needs ``song_id``; ``audio_path``/``audio_url`` if any).

    ``workers`` threads: soundfile and Chromaprint release the GIL for most of the work.
    """
    records = songs.to_dict("records")
    if workers <= 1 or len(records) < 2:
        return [fingerprint_song(r, paths, fetch=fetch) for r in records]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda r: fingerprint_song(r, paths, fetch=fetch), records))


@dataclass(frozen=True)
class Alignment:
    """How two fingerprints line up: ``b[i] ~ a[i + offset]``; ``bit_error_rate`` in [0, 1] over ``overlap`` words."""

    offset: int
    bit_error_rate: float
    overlap: int

    @property
    def offset_seconds(self) -> float:
        return self.offset * ITEM_SECONDS

    @property
    def overlap_seconds(self) -> float:
        return self.overlap * ITEM_SECONDS


def bit_error_rate(a: np.ndarray, b: np.ndarray, offset: int) -> tuple[float, int]:
    """Share of differing bits between ``a[i + offset]`` and ``b[i]`` over their overlap, and the overlap in words.

    An empty overlap gives (1.0, 0).
    """
    if offset >= 0:
        x, y = a[offset:], b
    else:
        x, y = a, b[-offset:]
    n = min(len(x), len(y))
    if n <= 0:
        return 1.0, 0
    errors = int(np.bitwise_count(np.bitwise_xor(x[:n], y[:n])).sum())
    return errors / (32.0 * n), n


def align(a: np.ndarray, b: np.ndarray, offsets: list[int] | range, min_overlap: int = MIN_ITEMS) -> Alignment:
    """The offset among ``offsets`` with the lowest bit error rate (overlaps under ``min_overlap`` words skipped)."""
    best = Alignment(0, 1.0, 0)
    for offset in offsets:
        ber, n = bit_error_rate(a, b, int(offset))
        if n >= min_overlap and ber < best.bit_error_rate:
            best = Alignment(int(offset), ber, n)
    return best


def seconds_to_items(seconds: float) -> int:
    """Fingerprint words covering ``seconds`` of audio (rounded up)."""
    return math.ceil(seconds / ITEM_SECONDS)
