"""Decode an audio file block by block: downmix, resample with soxr's stream, cap what is kept.

MP3 goes through miniaudio's dr_mp3, which decodes every frame to the real end of the stream:
libsndfile stops at its own length estimate for a VBR MP3 without a Xing header (4.3 s of a 30 s
file here), so it would call healthy files truncated. Everything else goes through soundfile
(libsndfile: WAV, FLAC, OGG/Vorbis/Opus, AIFF, ...). torchaudio is deliberately not used (see
FIELD_NOTES: it breaks beside the CPU torch and leaks into transformers).

Memory is bounded whatever the file: the decoder hands over blocks of ``BLOCK_FRAMES`` frames, an
``on_block`` observer sees each native block (the signal checks' level meter), and only the
downmixed, resampled, capped signal is kept. The decode always runs to the real end of the stream,
so ``source_duration_s`` is the decoded length, never a header's claim; the claim is reported
beside it (``header_duration_s``) so a truncated file can be told from a healthy one.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from sunorecsys.audio.errors import EMPTY, MISSING, TOO_SHORT, UNREADABLE, AudioUnavailable

_HASH_CHUNK = 1 << 20
# Frames per decoded block: 64 k frames of 6 channels is 1.5 MB of float32.
BLOCK_FRAMES = 1 << 16
_MP3_SUFFIXES = frozenset({".mp3", ".mp2", ".mpga", ".mpeg"})

# ``on_block(block, sample_rate)``: block is float32 (frames, channels), finite, at the file's rate.
BlockObserver = Callable[[np.ndarray, int], None]


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded samples and where they came from.

    ``samples`` is float32 in [-1, 1] (nominally), shape ``(n,)`` when mono else ``(n, channels)``,
    at ``sample_rate``. ``duration_s`` is the length of ``samples`` in seconds (after capping).
    ``source_duration_s`` is the whole stream's length as decoded to its real end (seconds), equal to
    ``decoded_frames / source_sample_rate``; ``header_duration_s`` is what the container claims
    (soundfile's frame count, or an MP3's Xing/VBRI frame count), None when it claims nothing.
    ``nonfinite_samples`` counts NaN/inf samples of the file (replaced by 0 in ``samples``).
    ``sha256`` is the hex digest of the file's bytes (the cache key of scores); ``decoder`` names
    the library that decoded it (``miniaudio-mp3`` or ``soundfile``); ``stream_error`` is the
    decoder's message when it stopped on damaged data part-way (what came before is kept).
    """

    samples: np.ndarray
    sample_rate: int
    duration_s: float
    source_duration_s: float
    path: Path
    sha256: str
    source_sample_rate: int
    source_channels: int
    decoded_frames: int = 0
    header_duration_s: float | None = None
    nonfinite_samples: int = 0
    decoder: str = "soundfile"
    stream_error: str | None = None

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
    samples = samples.astype(np.float32, copy=False)
    if samples.shape[1] == 2:  # the common case: two strided adds beat any reduction
        mono = samples[:, 0] + samples[:, 1]
        mono *= np.float32(0.5)
        return mono
    # A matrix product is ~10x faster than mean(axis=1) over a short trailing axis.
    weights = np.full(samples.shape[1], 1.0 / samples.shape[1], dtype=np.float32)
    return samples @ weights


# --- MP3 headers: what the file claims -------------------------------------------------------------

_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_SAMPLES_PER_FRAME = {(3, 1): 1152, (3, 2): 1152, (3, 3): 384, (2, 1): 576, (0, 1): 576,
                      (2, 2): 1152, (0, 2): 1152, (2, 3): 384, (0, 3): 384}


def mp3_header_duration(path: str | os.PathLike) -> float | None:
    """Seconds an MP3's Xing/Info or VBRI header claims (frame count x samples per frame / rate).

    None when the file has no such header (a plain CBR file's length is only an estimate from its
    size, so it claims nothing). Reads the first 64 KiB only.
    """
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    pos = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        pos = 10 + size
        with open(path, "rb") as fh:  # a large ID3 tag (cover art) pushes the first frame out
            fh.seek(pos)
            head = fh.read(1 << 16)
        pos = 0
    while pos + 4 <= len(head):
        if head[pos] == 0xFF and head[pos + 1] & 0xE0 == 0xE0:
            break
        pos += 1
    else:
        return None
    b1, b3 = head[pos + 1], head[pos + 3]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    rate_index = (head[pos + 2] >> 2) & 3
    if version == 1 or layer == 0 or rate_index == 3:
        return None
    rate = _MPEG_RATES[version][rate_index]
    samples_per_frame = _SAMPLES_PER_FRAME[(version, layer)]
    mono = (b3 >> 6) == 3
    side_info = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    frames = None
    xing = pos + 4 + side_info
    if head[xing:xing + 4] in (b"Xing", b"Info") and len(head) >= xing + 12:
        flags = struct.unpack(">I", head[xing + 4:xing + 8])[0]
        if flags & 1:
            frames = struct.unpack(">I", head[xing + 8:xing + 12])[0]
    elif head[pos + 36:pos + 40] == b"VBRI" and len(head) >= pos + 50:
        frames = struct.unpack(">I", head[pos + 50 - 4:pos + 50])[0]
    if not frames:
        return None
    return frames * samples_per_frame / rate


def wav_claimed_frames(path: str | os.PathLike) -> int | None:
    """Frames a RIFF/WAVE file's ``data`` chunk claims (its byte size over the frame size).

    libsndfile clamps its frame count to the bytes present, so a partial WAV looks whole to it;
    the chunk size is what the writer meant. None for other files, or for a size left as
    0 / 0xFFFFFFFF (streamed WAVs, RF64).
    """
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block_align = 12, None
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = struct.unpack("<H", head[pos + 20:pos + 22])[0]
        elif chunk == b"data":
            if not block_align or size in (0, 0xFFFFFFFF):
                return None
            return size // block_align
        pos += 8 + size + (size & 1)
    return None


# --- block sources ---------------------------------------------------------------------------------

@dataclass
class _Source:
    rate: int
    channels: int
    header_frames: int | None
    blocks: Iterator[np.ndarray]
    decoder: str
    error: str | None = None  # set when the decoder stopped on damaged data after decoding some


def _mp3_blocks(path: Path, block_frames: int) -> _Source | None:
    """dr_mp3 (miniaudio) blocks to the real end of the stream; None when dr_mp3 finds no MP3."""
    import miniaudio

    ffi, lib = miniaudio.ffi, miniaudio.lib
    mp3 = ffi.new("ma_dr_mp3 *")
    if not lib.ma_dr_mp3_init_file(mp3, os.fsencode(path), ffi.NULL):
        return None
    channels, rate = int(mp3.channels), int(mp3.sampleRate)
    if channels <= 0 or rate <= 0:
        lib.ma_dr_mp3_uninit(mp3)
        return None

    def blocks() -> Iterator[np.ndarray]:
        try:
            buffer = np.empty((block_frames, channels), dtype=np.float32)
            pointer = ffi.cast("float *", ffi.from_buffer(buffer))
            while True:
                n = int(lib.ma_dr_mp3_read_pcm_frames_f32(mp3, block_frames, pointer))
                if n <= 0:
                    return
                # The buffer is reused: consumers copy what they keep.
                yield buffer[:n]
        finally:
            lib.ma_dr_mp3_uninit(mp3)

    return _Source(rate, channels, None, blocks(), "miniaudio-mp3")


def _soundfile_blocks(path: Path, block_frames: int) -> _Source:
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioUnavailable(UNREADABLE, f"{path.name}: {exc}") from exc

    def blocks() -> Iterator[np.ndarray]:
        decoded = 0
        with handle:
            buffer = np.empty((block_frames, handle.channels), dtype=np.float32)
            while True:
                try:
                    block = handle.read(block_frames, dtype="float32", always_2d=True, out=buffer)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    if decoded == 0:
                        raise AudioUnavailable(UNREADABLE, f"{path.name}: {exc}") from exc
                    # A partial download ends in the middle of a frame: what came before is the
                    # stream as far as it goes (the header comparison then calls it truncated).
                    source.error = str(exc)
                    return
                if block.shape[0] == 0:
                    return
                decoded += block.shape[0]
                yield block

    frames = int(handle.frames)
    header = frames if 0 < frames < (1 << 62) else None
    if handle.format == "WAV":
        header = wav_claimed_frames(path) or header
    source = _Source(int(handle.samplerate), int(handle.channels), header, blocks(), "soundfile")
    return source


def _looks_like_mp3(path: Path) -> bool:
    """An ID3 tag or an MPEG audio frame sync at the start of the file."""
    with open(path, "rb") as fh:
        head = fh.read(3)
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _open(path: Path, block_frames: int) -> _Source:
    """The decoder for this file's bytes: dr_mp3 for MP3, soundfile for the rest.

    A file starting like an MP3 goes to dr_mp3 before libsndfile is asked (its mpg123 prints
    warnings about every truncated file it opens); other bytes are identified by libsndfile, and
    a file it cannot identify is tried as MP3 once more only when named like one (leading junk).
    """
    if _looks_like_mp3(path):
        source = _mp3_blocks(path, block_frames)
        if source is not None:
            return source
    try:
        fmt = sf.info(str(path)).format
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        source = _mp3_blocks(path, block_frames) if path.suffix.lower() in _MP3_SUFFIXES else None
        if source is not None:
            return source
        raise AudioUnavailable(UNREADABLE, f"{path.name}: {exc}") from exc
    if fmt == "MP3":
        source = _mp3_blocks(path, block_frames)
        if source is not None:
            return source
    return _soundfile_blocks(path, block_frames)


class _Kept:
    """The kept samples: one preallocated buffer when the length is capped (pages never written
    cost no memory, and no second copy is made at the end), else a list of copies."""

    def __init__(self, capacity: int | None, channels: int | None) -> None:
        self.shape_tail = () if channels is None else (channels,)
        self.buffer = None if capacity is None else np.empty((capacity, *self.shape_tail), dtype=np.float32)
        self.filled = 0
        self.parts: list[np.ndarray] = []

    def append(self, part: np.ndarray) -> None:
        part = np.asarray(part, dtype=np.float32).reshape(-1, *self.shape_tail)
        if self.buffer is not None and self.filled + part.shape[0] <= self.buffer.shape[0]:
            self.buffer[self.filled:self.filled + part.shape[0]] = part
            self.filled += part.shape[0]
            return
        if self.buffer is not None:  # never expected (the capacity has a margin): fall back to a list
            self.parts.append(self.buffer[:self.filled])
            self.buffer, self.filled = None, 0
        self.parts.append(part.copy())  # the decoder reuses its block buffer

    def array(self) -> np.ndarray:
        if self.buffer is not None:
            return self.buffer[:self.filled]
        if not self.parts:
            return np.zeros((0, *self.shape_tail), dtype=np.float32)
        return self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)


def _resolve_rate(sample_rate: int | Callable[[int], int] | None, native: int) -> int:
    if sample_rate is None:
        return native
    rate = int(sample_rate(native)) if callable(sample_rate) else int(sample_rate)
    if rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {rate}")
    return rate


def decode_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int | Callable[[int], int] | None = None,
    mono: bool = True,
    max_seconds: float | None = None,
    min_seconds: float | None = None,
    resample_quality: str = "HQ",
    on_block: BlockObserver | None = None,
    to_end: bool = True,
    sha256: str | None = None,
    block_frames: int = BLOCK_FRAMES,
) -> DecodedAudio:
    """Decode ``path`` into float32 samples, block by block.

    sample_rate: target rate in Hz, or a function of the file's rate returning one (None keeps the
    file's rate); soxr ``resample_quality`` (``HQ``, ``MQ``, ``LQ``, ``QQ``). mono: average the channels.
    max_seconds: keep only the first ``max_seconds`` seconds of samples; with ``to_end`` (default)
    decoding still runs to the real end of the stream for its length and for ``on_block``, else it
    stops at the cap. min_seconds: fail with ``too_short`` when the kept audio is shorter.
    on_block: called with every native block ``(frames, channels)`` float32 (NaN/inf zeroed) and the
    file's rate. sha256: the file's digest when the caller already has it (else it is computed).
    Every failure is :class:`AudioUnavailable` with reason missing / unreadable / empty / too_short.
    Memory: the kept samples plus a few blocks, whatever the file's length, rate or channels
    (with ``mono=False`` and no cap, the whole file at its rate is kept).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioUnavailable(MISSING, f"no file at {path}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    source = _open(path, block_frames)
    native = source.rate
    if native <= 0:
        raise AudioUnavailable(UNREADABLE, f"{path.name}: sample rate {native}")
    rate = _resolve_rate(sample_rate, native)
    keep_frames = None if max_seconds is None else round(max_seconds * native)
    channels_out = 1 if mono else source.channels
    stream = (soxr.ResampleStream(native, rate, channels_out, dtype="float32", quality=resample_quality)
              if rate != native else None)
    capacity = keep_frames
    if source.decoder == "miniaudio-mp3":
        header = mp3_header_duration(path)
    else:
        header = source.header_frames / native if source.header_frames else None
    claimed = None if header is None else round(header * native)
    if capacity is not None and claimed is not None:
        # Reserve what the header claims (plus a second); a longer stream falls back to a list.
        capacity = min(capacity, claimed + native)
    kept = _Kept(None if capacity is None else capacity * rate // native + 64, None if mono else channels_out)
    decoded = nonfinite = 0
    for block in source.blocks:
        if not np.isfinite(block.sum()):  # one pass; NaN/inf anywhere make the sum non-finite
            # A damaged float file can hold NaN/inf; they would poison every measure downstream.
            bad = ~np.isfinite(block)
            nonfinite += int(bad.sum())
            block = np.where(bad, np.float32(0.0), block)
        if on_block is not None:
            on_block(block, native)
        start = decoded
        decoded += block.shape[0]
        wanted = block.shape[0] if keep_frames is None else min(block.shape[0], keep_frames - start)
        if wanted > 0:
            part = block[:wanted]
            part = to_mono(part) if mono else part
            last = keep_frames is not None and start + wanted >= keep_frames
            if stream is not None:
                part = stream.resample_chunk(part, last=last)
            kept.append(part)
        elif not to_end:
            break
    if stream is not None and (keep_frames is None or decoded < keep_frames):
        kept.append(stream.resample_chunk(np.zeros((0,) if mono else (0, channels_out), dtype=np.float32),
                                          last=True))
    if decoded == 0:
        # soundfile opened a valid header that holds no frames; dr_mp3 found no decodable frame.
        reason = EMPTY if source.decoder == "soundfile" else UNREADABLE
        raise AudioUnavailable(reason, f"{path.name}: no samples")
    samples = kept.array()
    duration = samples.shape[0] / rate
    if min_seconds is not None and duration < min_seconds:
        raise AudioUnavailable(TOO_SHORT, f"{path.name}: {duration:.3f} s < {min_seconds} s")
    stopped_early = not to_end and keep_frames is not None and decoded >= keep_frames
    whole = decoded / native
    if stopped_early and header is not None:
        whole = max(whole, header)  # not decoded to the end on purpose: the claim is all there is
    return DecodedAudio(
        samples=samples,
        sample_rate=rate,
        duration_s=float(duration),
        source_duration_s=float(whole),
        path=path,
        sha256=sha256 or file_sha256(path),
        source_sample_rate=native,
        source_channels=source.channels,
        decoded_frames=int(decoded),
        header_duration_s=None if header is None else float(header),
        nonfinite_samples=int(nonfinite),
        decoder=source.decoder,
        stream_error=source.error,
    )


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """soundfile's header info, or AudioUnavailable('missing'|'unreadable')."""
    path = Path(path)
    if not path.is_file():
        raise AudioUnavailable(MISSING, f"no file at {path}")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioUnavailable(UNREADABLE, f"{path.name}: {exc}") from exc
