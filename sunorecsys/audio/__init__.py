"""Audio access: decode (soundfile), resample (soxr), find or safely fetch a song's file; signal checks.

Signal checks live in :mod:`sunorecsys.audio.checks` (imported on demand: it pulls in scipy/pyloudnorm).
"""

from sunorecsys.audio.decode import DecodedAudio, decode_audio, file_sha256, resample, to_mono
from sunorecsys.audio.errors import REASONS, AudioUnavailable
from sunorecsys.audio.source import (
    AUDIO_EXTENSIONS,
    DEFAULT_ALLOWED_HOSTS,
    DEFAULT_ALLOWED_SCHEMES,
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT_S,
    fetch_audio,
    find_local_audio,
    load_song_audio,
    resolve_audio_path,
)

__all__ = [
    "AUDIO_EXTENSIONS", "DEFAULT_ALLOWED_HOSTS", "DEFAULT_ALLOWED_SCHEMES", "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_S", "REASONS", "AudioUnavailable", "DecodedAudio", "decode_audio", "fetch_audio",
    "file_sha256", "find_local_audio", "load_song_audio", "resample", "resolve_audio_path", "to_mono",
]
