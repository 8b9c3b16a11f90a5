"""Find a song's audio: its own file, the data root's audio folder, or its URL fetched safely.

Order (ARCHITECTURE.md): ``song['audio_path']`` -> ``<data>/audio/<song_id>.<ext>`` -> ``audio_url``
fetched under an allow-list of hosts and schemes, with a timeout and a size cap, written atomically
to ``<data>/audio/<song_id>.<ext>`` so the next run finds it locally. Many songs at once, in
parallel with a per-host circuit breaker: :mod:`sunorecsys.audio.fetching`.

Unsafe song ids (not ``[A-Za-z0-9_-]{1,128}``) never reach a path: they fail with reason
``fetch_refused`` (no extra reason, so the table's status set stays the documented one).
"""

from __future__ import annotations

import http.client
import math
import os
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
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


class HostUnreachable(AudioUnavailable):
    """``fetch_failed`` because of the host, not the song: refused, timed out, stalled past the
    deadline, a DNS failure or an HTTP 5xx. The circuit breaker (audio/fetching.py) counts these."""

    def __init__(self, detail: str = "", song_id: str | None = None) -> None:
        super().__init__(FETCH_FAILED, detail, song_id)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


def _connect(url: str, remaining: float) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    timeout = max(remaining, 0.001)
    if parts.scheme.lower() == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=ssl.create_default_context())
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


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
    ``allowed_hosts`` (each redirect too, at most 5). ``timeout_s`` is a hard wall-clock deadline
    for the whole download (connect, headers, body): a host that stalls or drips bytes is cut off
    at the deadline, not per chunk (a watchdog shuts the socket down, which wakes any blocked read).
    ``max_bytes`` is checked against Content-Length and while streaming (``too_large``). The
    extension comes from what soundfile recognises in the bytes; undecodable bytes are not kept
    (``unreadable``). HTTP 4xx is ``fetch_failed``; host trouble (refused, timed out, stalled,
    DNS, HTTP 5xx) is :class:`HostUnreachable` (also ``fetch_failed``). Name resolution is not
    under the deadline (the resolver has its own timeouts).
    """
    if not is_safe_song_id(song_id):
        raise AudioUnavailable(FETCH_REFUSED, f"unsafe song_id {song_id!r} never becomes a file name")
    allowed_hosts, schemes = frozenset(allowed_hosts), frozenset(schemes)
    _check_url(url, allowed_hosts, schemes)
    audio_dir = Path(audio_dir)
    audio_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    fd, tmp_name = tempfile.mkstemp(prefix=f".{song_id}.", suffix=".part", dir=audio_dir)
    tmp = Path(tmp_name)
    conn: http.client.HTTPConnection | None = None
    response: http.client.HTTPResponse | None = None
    watchdog: threading.Timer | None = None
    expired = threading.Event()

    def cut_off(sock: socket.socket) -> None:
        expired.set()
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                for _hop in range(MAX_REDIRECTS + 1):
                    conn = _connect(url, deadline - time.monotonic())
                    conn.connect()
                    sock = conn.sock
                    watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), cut_off, args=(sock,))
                    watchdog.daemon = True
                    watchdog.start()
                    parts = urllib.parse.urlsplit(url)
                    conn.request("GET", urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")),
                                 headers={"User-Agent": "sunorecsys-audio/1"})
                    response = conn.getresponse()
                    if response.status not in _REDIRECTS:
                        break
                    location = response.getheader("Location")
                    watchdog.cancel()
                    response.close()
                    conn.close()
                    if not location:
                        raise AudioUnavailable(FETCH_FAILED, f"HTTP {response.status} without Location: {url}")
                    url = urllib.parse.urljoin(url, location)
                    _check_url(url, allowed_hosts, schemes)
                else:
                    raise AudioUnavailable(FETCH_FAILED, f"more than {MAX_REDIRECTS} redirects: {url}")
                if response.status >= 500:
                    raise HostUnreachable(f"HTTP {response.status} {response.reason}: {url}")
                if response.status >= 400:
                    raise AudioUnavailable(FETCH_FAILED, f"HTTP {response.status} {response.reason}: {url}")
                length = response.getheader("Content-Length")
                if length is not None and length.isdigit() and int(length) > max_bytes:
                    raise AudioUnavailable(TOO_LARGE, f"Content-Length {length} > {max_bytes} bytes: {url}")
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise HostUnreachable(f"download exceeded its {timeout_s:g} s deadline "
                                              f"({received} bytes received): {url}")
                    sock.settimeout(remaining)
                    # read1: whatever arrived (one recv), so a drip of 1 byte/s still reaches the
                    # deadline test above instead of blocking until 64 KiB have come.
                    chunk = response.read1(_CHUNK)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > max_bytes:
                        raise AudioUnavailable(TOO_LARGE, f"more than {max_bytes} bytes streamed: {url}")
                    out.write(chunk)
            except AudioUnavailable:
                raise
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # refused, reset, timed out (socket.timeout is an OSError), DNS, or the watchdog cut it
                if expired.is_set() or time.monotonic() >= deadline - 0.05:
                    raise HostUnreachable(f"download exceeded its {timeout_s:g} s deadline "
                                          f"({received} bytes received): {url}") from exc
                raise HostUnreachable(f"{type(exc).__name__}: {exc}: {url}") from exc
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                # the response holds the socket (makefile): close both, or the fd outlives the call
                if response is not None:
                    response.close()
                if conn is not None:
                    conn.close()
        if expired.is_set():
            # The watchdog's shutdown can read as a clean end of stream: what arrived is a cut-off
            # download, never a file to keep or to judge as audio.
            raise HostUnreachable(f"download exceeded its {timeout_s:g} s deadline "
                                  f"({received} bytes received): {url}")
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
