"""Find a song's audio: its own file, the data root's audio folder, or its URL fetched safely.

Order (ARCHITECTURE.md): ``song['audio_path']`` -> ``<data>/audio/<song_id>.<ext>`` -> ``audio_url``
fetched under an allow-list of hosts and schemes, with a timeout and a size cap, written atomically
to ``<data>/audio/<song_id>.<ext>`` so the next run finds it locally.

Unsafe song ids (not ``[A-Za-z0-9_-]{1,128}``) never reach a path: they fail with reason
``fetch_refused`` (no extra reason, so the table's status set stays the documented one).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import soundfile as sf

from sunorecsys.audio.decode import DecodedAudio, decode_audio
from sunorecsys.audio.errors import (
    FETCH_FAILED,
    FETCH_REFUSED,
    MISSING,
    OUTSIDE_ROOTS,
    TOO_LARGE,
    UNREADABLE,
    AudioUnavailable,
)
from sunorecsys.catalog.schema import is_safe_song_id
from sunorecsys.fileio import follow_umask
from sunorecsys.paths import DataPaths

# Suno's CDNs. Anything else must be allowed explicitly by the caller.
DEFAULT_ALLOWED_HOSTS: frozenset[str] = frozenset({"cdn1.suno.ai", "cdn2.suno.ai", "audiopipe.suno.ai"})
DEFAULT_ALLOWED_SCHEMES: frozenset[str] = frozenset({"https"})
_NETWORK_SCHEMES = frozenset({"http", "https"})
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 1 << 16

# Extensions looked for in the audio folder, in this order (common first).
AUDIO_EXTENSIONS: tuple[str, ...] = (
    "mp3", "wav", "flac", "ogg", "oga", "opus", "m4a", "aiff", "aif", "aifc", "au", "snd", "caf",
    "w64", "rf64", "wave",
)
# soundfile's format name -> the extension a fetched file is stored under.
_FORMAT_EXT = {"MP3": "mp3", "WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "OGG": "ogg", "AIFF": "aiff",
               "AU": "au", "CAF": "caf", "W64": "w64", "RF64": "rf64"}


def _text(value: object) -> str | None:
    """A non-empty string from a record field (None, NaN, '' -> None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _within(path: Path, roots: Iterable[Path]) -> bool:
    """Whether ``path`` with every symlink resolved lies inside one of ``roots`` (resolved too)."""
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def find_local_audio(song_id: str, audio_dir: Path, roots: Iterable[Path] | None = None) -> Path | None:
    """``audio_dir/<song_id>.<ext>`` for the first known extension present, else None.

    A candidate that is a symlink leading outside ``roots`` (default: ``audio_dir``) is skipped.
    """
    roots = tuple(roots) if roots is not None else (audio_dir,)
    for ext in AUDIO_EXTENSIONS:
        candidate = audio_dir / f"{song_id}.{ext}"
        if candidate.is_file() and _within(candidate, roots):
            return candidate
    return None


def _check_url(url: str, allowed_hosts: Iterable[str], schemes: Iterable[str]) -> None:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    # Whatever the caller allows, only network fetches: file://, ftp://, data: ... never.
    if scheme not in _NETWORK_SCHEMES or scheme not in {s.lower() for s in schemes}:
        raise AudioUnavailable(FETCH_REFUSED, f"scheme {scheme or '(none)'!r} not allowed: {url}")
    if parts.username or parts.password:
        raise AudioUnavailable(FETCH_REFUSED, f"credentials in URL not allowed: {parts.hostname}")
    host = (parts.hostname or "").lower()
    if host not in {h.lower() for h in allowed_hosts}:
        raise AudioUnavailable(FETCH_REFUSED, f"host {host or '(none)'!r} not in the allow-list: {url}")


class _AllowListRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL that passes the same allow-list (else fetch_refused)."""

    def __init__(self, allowed_hosts: Iterable[str], schemes: Iterable[str]) -> None:
        super().__init__()
        self.allowed_hosts = frozenset(allowed_hosts)
        self.schemes = frozenset(schemes)

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _check_url(newurl, self.allowed_hosts, self.schemes)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_audio(
    url: str,
    song_id: str,
    audio_dir: str | os.PathLike,
    *,
    allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
    schemes: Iterable[str] = DEFAULT_ALLOWED_SCHEMES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Download ``url`` into ``audio_dir/<song_id>.<ext>`` (atomic rename) and return the path.

    Refused (``fetch_refused``) unless the scheme is http(s) and in ``schemes`` and the host in
    ``allowed_hosts`` (redirects too). ``timeout_s`` bounds each socket wait and the whole transfer;
    ``max_bytes`` is checked against Content-Length and while streaming (``too_large``). The
    extension comes from what soundfile recognises in the bytes; undecodable bytes are not kept
    (``unreadable``). Network and HTTP errors are ``fetch_failed``.
    """
    if not is_safe_song_id(song_id):
        raise AudioUnavailable(FETCH_REFUSED, f"unsafe song_id {song_id!r} never becomes a file name")
    allowed_hosts, schemes = frozenset(allowed_hosts), frozenset(schemes)
    _check_url(url, allowed_hosts, schemes)
    audio_dir = Path(audio_dir)
    audio_dir.mkdir(parents=True, exist_ok=True)
    opener = urllib.request.build_opener(_AllowListRedirects(allowed_hosts, schemes))
    request = urllib.request.Request(url, headers={"User-Agent": "sunorecsys-audio/1"})
    deadline = time.monotonic() + timeout_s
    fd, tmp_name = tempfile.mkstemp(prefix=f".{song_id}.", suffix=".part", dir=audio_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with opener.open(request, timeout=timeout_s) as response:
                    length = response.headers.get("Content-Length")
                    if length is not None and length.isdigit() and int(length) > max_bytes:
                        raise AudioUnavailable(TOO_LARGE, f"Content-Length {length} > {max_bytes} bytes: {url}")
                    received = 0
                    while chunk := response.read(_CHUNK):
                        received += len(chunk)
                        if received > max_bytes:
                            raise AudioUnavailable(TOO_LARGE, f"more than {max_bytes} bytes streamed: {url}")
                        if time.monotonic() > deadline:
                            raise AudioUnavailable(FETCH_FAILED, f"transfer exceeded {timeout_s} s: {url}")
                        out.write(chunk)
            except AudioUnavailable:
                raise
            except urllib.error.HTTPError as exc:
                raise AudioUnavailable(FETCH_FAILED, f"HTTP {exc.code} {exc.reason}: {url}") from exc
            except (urllib.error.URLError, OSError, ValueError) as exc:
                # socket.timeout is an OSError (TimeoutError); URLError wraps connect failures.
                raise AudioUnavailable(FETCH_FAILED, f"{type(exc).__name__}: {exc}: {url}") from exc
        if received == 0:
            raise AudioUnavailable(FETCH_FAILED, f"empty response body: {url}")
        try:
            fmt = sf.info(str(tmp)).format
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioUnavailable(UNREADABLE, f"fetched bytes are not audio soundfile reads: {url}") from exc
        final = audio_dir / f"{song_id}.{_FORMAT_EXT.get(fmt, fmt.lower())}"
        follow_umask(tmp)  # mkstemp's 0600 -> the umask's mode
        os.replace(tmp, final)
        return final
    finally:
        tmp.unlink(missing_ok=True)


def resolve_audio_path(
    song: Mapping,
    paths: DataPaths,
    *,
    fetch: bool = True,
    allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
    schemes: Iterable[str] = DEFAULT_ALLOWED_SCHEMES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    audio_roots: Iterable[str | os.PathLike] | None = None,
) -> Path:
    """The file holding a song's audio (a mapping with ``song_id``, optional ``audio_path``, ``audio_url``).

    Lookup order: ``audio_path`` (absolute, or relative to the data root, then to the working
    directory), ``<data>/audio/<song_id>.<ext>``, then ``audio_url`` (never with ``fetch=False``).
    Only files inside ``paths.audio_roots`` (plus ``audio_roots``) are used, symlinks resolved: an
    ``audio_path`` outside them is not looked at (nothing is said about whether it exists) and, when
    nothing else is found, the failure reason is ``audio_path_outside_roots``.
    Raises :class:`AudioUnavailable` (with ``song_id``).
    """
    song_id = song.get("song_id")
    if not is_safe_song_id(song_id):
        raise AudioUnavailable(FETCH_REFUSED, f"unsafe song_id {song_id!r} never becomes a file name")
    roots = (*paths.audio_roots, *(Path(r) for r in (audio_roots or ())))
    tried: list[str] = []
    refused = False
    own = _text(song.get("audio_path"))
    if own is not None:
        own_path = Path(own)
        candidates = [own_path] if own_path.is_absolute() else [paths.root / own_path, own_path]
        inside = [c for c in candidates if _within(c, roots)]
        for candidate in inside:
            if candidate.is_file():
                return candidate
        if inside:
            tried.append(f"audio_path {own}")
        else:
            refused = True
            tried.append(f"audio_path {own} refused: outside the audio roots")
    for ext in AUDIO_EXTENSIONS:
        candidate = paths.audio_dir / f"{song_id}.{ext}"
        if candidate.is_file():
            if _within(candidate, roots):
                return candidate
            refused = True  # a symlink leading out of the roots
            tried.append(f"{candidate.name} refused: resolves outside the audio roots")
    tried.append(f"{paths.audio_dir}/{song_id}.<ext>")
    url = _text(song.get("audio_url"))
    if url is not None and fetch:
        try:
            return fetch_audio(url, song_id, paths.audio_dir, allowed_hosts=allowed_hosts, schemes=schemes,
                               timeout_s=timeout_s, max_bytes=max_bytes)
        except AudioUnavailable as exc:
            raise exc.with_song_id(song_id) from exc.__cause__
    tried.append("audio_url " + ("not fetched (fetch=False)" if url else "absent"))
    raise AudioUnavailable(OUTSIDE_ROOTS if refused else MISSING, "; ".join(tried), song_id=song_id)


def load_song_audio(
    song: Mapping,
    paths: DataPaths,
    *,
    sample_rate: int | None,
    mono: bool = True,
    max_seconds: float | None = None,
    min_seconds: float | None = None,
    **fetch_kw,
) -> DecodedAudio:
    """Resolve (see :func:`resolve_audio_path`, ``fetch_kw`` goes there) and decode a song's audio.

    Every failure is :class:`AudioUnavailable` naming the song.
    """
    path = resolve_audio_path(song, paths, **fetch_kw)
    try:
        return decode_audio(path, sample_rate=sample_rate, mono=mono, max_seconds=max_seconds,
                            min_seconds=min_seconds)
    except AudioUnavailable as exc:
        raise exc.with_song_id(song.get("song_id")) from exc.__cause__
