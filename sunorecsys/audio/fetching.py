"""Fetch a partition's remote audio before it is checked: in parallel, bounded, with a circuit
breaker per host.

A CDN outage must cost a bounded time per run, whatever the number of songs: each download has a
hard wall-clock deadline (:func:`~sunorecsys.audio.source.fetch_audio`), at most ``workers``
downloads run at once, and after ``breaker_threshold`` consecutive host failures (refused, timed
out, stalled past the deadline, HTTP 5xx) the host's remaining songs of this run fail at once with
reason ``host_down`` (not tried; the next run tries again). Until a host has answered once, at
most ``breaker_threshold`` of its downloads run at once, so with the defaults (30 s deadline,
8 workers, 3 failures) a host that never answers costs about one deadline per run.

Settings come from :class:`FetchSettings` (environment variables in :meth:`FetchSettings.from_env`),
so tests and deployments point them at another host without code changes.
"""

from __future__ import annotations

import math
import os
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sunorecsys.audio.errors import FETCH_REFUSED, HOST_DOWN, MISSING, AudioUnavailable
from sunorecsys.audio.source import (
    DEFAULT_ALLOWED_HOSTS,
    DEFAULT_ALLOWED_SCHEMES,
    DEFAULT_MAX_BYTES,
    HostUnreachable,
    fetch_audio,
    resolve_audio_path,
)
from sunorecsys.catalog.schema import is_safe_song_id
from sunorecsys.paths import DataPaths

DEFAULT_DEADLINE_S = 30.0
DEFAULT_FETCH_WORKERS = 8
DEFAULT_BREAKER_THRESHOLD = 3


def _csv(value: str) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class FetchSettings:
    """How remote audio may be fetched.

    allowed_hosts / schemes: the allow-list (Suno's CDN and https by default). deadline_s: hard
    wall-clock limit per download, seconds. workers: downloads at once. breaker_threshold:
    consecutive host failures that open the host's breaker for the rest of the run.
    max_bytes: size cap per file.
    """

    allowed_hosts: frozenset[str] = DEFAULT_ALLOWED_HOSTS
    schemes: frozenset[str] = DEFAULT_ALLOWED_SCHEMES
    deadline_s: float = DEFAULT_DEADLINE_S
    workers: int = DEFAULT_FETCH_WORKERS
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.deadline_s <= 0 or self.workers < 1 or self.breaker_threshold < 1 or self.max_bytes < 1:
            raise ValueError(f"invalid fetch settings: {self}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FetchSettings:
        """``SUNORECSYS_AUDIO_HOSTS`` / ``SUNORECSYS_AUDIO_SCHEMES`` (comma-separated),
        ``SUNORECSYS_FETCH_DEADLINE_S``, ``SUNORECSYS_FETCH_WORKERS``, ``SUNORECSYS_FETCH_BREAKER``;
        unset ones keep the defaults."""
        env = os.environ if environ is None else environ
        kw: dict = {}
        if env.get("SUNORECSYS_AUDIO_HOSTS", "").strip():
            kw["allowed_hosts"] = _csv(env["SUNORECSYS_AUDIO_HOSTS"])
        if env.get("SUNORECSYS_AUDIO_SCHEMES", "").strip():
            kw["schemes"] = _csv(env["SUNORECSYS_AUDIO_SCHEMES"])
        for name, key, cast in (("SUNORECSYS_FETCH_DEADLINE_S", "deadline_s", float),
                                ("SUNORECSYS_FETCH_WORKERS", "workers", int),
                                ("SUNORECSYS_FETCH_BREAKER", "breaker_threshold", int)):
            if env.get(name, "").strip():
                kw[key] = cast(env[name])
        return cls(**kw)


class HostCircuitBreaker:
    """Per-host count of consecutive failures; open (for the rest of its life) at ``threshold``.

    Until a host has answered once, at most ``threshold`` downloads from it run at once (the
    others wait): a host that is dead from the start then costs one deadline, not one per wave of
    workers. A success resets the count. Thread-safe; one breaker lives for one run.
    """

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._failures: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._proven: set[str] = set()
        self._open: set[str] = set()
        self._cond = threading.Condition()

    def is_open(self, host: str) -> bool:
        with self._cond:
            return host in self._open

    def acquire(self, host: str) -> bool:
        """Wait for a slot to try ``host``; False when its breaker is (or becomes) open."""
        with self._cond:
            while True:
                if host in self._open:
                    return False
                # unproven: attempts under way plus failures so far stay below the threshold
                if host in self._proven or self._in_flight[host] + self._failures[host] < self.threshold:
                    self._in_flight[host] += 1
                    return True
                self._cond.wait(timeout=1.0)

    def release(self, host: str) -> None:
        with self._cond:
            self._in_flight[host] -= 1
            self._cond.notify_all()

    def success(self, host: str) -> None:
        with self._cond:
            self._failures[host] = 0
            self._proven.add(host)
            self._cond.notify_all()

    def failure(self, host: str) -> None:
        with self._cond:
            self._failures[host] += 1
            if self._failures[host] >= self.threshold:
                self._open.add(host)
            self._cond.notify_all()

    @property
    def open_hosts(self) -> list[str]:
        with self._cond:
            return sorted(self._open)


@dataclass
class PrefetchReport:
    """What a prefetch did: ``failures`` ``{song_id: AudioUnavailable}`` (fetch_failed, host_down,
    fetch_refused, too_large, unreadable); ``fetched`` song ids now on disk; ``local`` ids that
    needed no fetch; ``open_hosts`` whose breaker opened; ``seconds`` wall clock."""

    failures: dict[str, AudioUnavailable] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    local: int = 0
    open_hosts: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def reason_counts(self) -> dict[str, int]:
        return dict(Counter(exc.reason for exc in self.failures.values()))


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _needs_fetch(song: Mapping, paths: DataPaths) -> str | None:
    """The URL to fetch when the song has no local audio and has a URL, else None."""
    url = _text(song.get("audio_url"))
    if url is None or not is_safe_song_id(song.get("song_id")):
        return None
    try:
        resolve_audio_path(song, paths, fetch=False)
        return None
    except AudioUnavailable as exc:
        return url if exc.reason == MISSING else None


def prefetch_audio(songs: Iterable[Mapping], paths: DataPaths, settings: FetchSettings | None = None,
                   log=None) -> PrefetchReport:
    """Download the remote audio of ``songs`` (mappings with song_id, audio_path, audio_url) that
    have no local audio, into ``paths.audio_dir``; see the module docstring for the bounds.

    Never raises for a song: each failure is in the report, the caller records it as the song's
    status. ``log`` (optional) gets one line per host whose breaker opened.
    """
    settings = settings or FetchSettings()
    started = time.perf_counter()
    report = PrefetchReport()
    todo: list[tuple[str, str]] = []
    for song in songs:
        url = _needs_fetch(song, paths)
        if url is None:
            report.local += 1
        else:
            todo.append((str(song["song_id"]), url))
    breaker = HostCircuitBreaker(settings.breaker_threshold)
    lock = threading.Lock()

    def one(item: tuple[str, str]) -> None:
        song_id, url = item
        parts = urllib.parse.urlsplit(url)
        # a host is a host:port service: two servers on one address fail independently
        host = (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
        if not breaker.acquire(host):
            error: AudioUnavailable | None = AudioUnavailable(
                HOST_DOWN, f"{host} failed {settings.breaker_threshold} times in a row in this run; "
                           f"not tried, the next run retries: {url}", song_id=song_id)
        else:
            try:
                fetch_audio(url, song_id, paths.audio_dir, allowed_hosts=settings.allowed_hosts,
                            schemes=settings.schemes, timeout_s=settings.deadline_s, max_bytes=settings.max_bytes)
                breaker.success(host)
                error = None
            except HostUnreachable as exc:
                breaker.failure(host)
                error = exc.with_song_id(song_id)
            except AudioUnavailable as exc:
                if exc.reason != FETCH_REFUSED:
                    breaker.success(host)  # the host answered: the problem is this song's file
                error = exc.with_song_id(song_id)
            except Exception as exc:  # noqa: BLE001 - one odd download must not stop the partition
                breaker.failure(host)
                error = HostUnreachable(f"{type(exc).__name__}: {exc}: {url}", song_id=song_id)
            finally:
                breaker.release(host)
        with lock:
            if error is None:
                report.fetched.append(song_id)
            else:
                report.failures[song_id] = error

    if todo:
        with ThreadPoolExecutor(max_workers=min(settings.workers, len(todo)),
                                thread_name_prefix="audio-fetch") as pool:
            list(pool.map(one, todo))
    report.open_hosts = breaker.open_hosts
    report.seconds = time.perf_counter() - started
    if log is not None:
        for host in report.open_hosts:
            n = sum(1 for e in report.failures.values() if e.reason == HOST_DOWN and host in e.detail)
            log(f"audio host {host} is down: {settings.breaker_threshold} consecutive failures; "
                f"{n} more songs not tried this run (retried by the next run)")
    return report
