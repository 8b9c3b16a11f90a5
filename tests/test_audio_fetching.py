"""Fetching a partition's audio from bad hosts: a hard deadline per download (a host that drips one
byte a second is cut off), bounded parallel downloads, and a circuit breaker per host, against real
local servers on 127.0.0.1 (one that serves, one that refuses, one that stalls, one that drips)."""

from __future__ import annotations

import http.server
import io
import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from sunorecsys.audio.errors import FETCH_FAILED, HOST_DOWN
from sunorecsys.audio.fetching import FetchSettings, HostCircuitBreaker, prefetch_audio
from sunorecsys.audio.source import HostUnreachable, fetch_audio

LOCAL = {"allowed_hosts": {"127.0.0.1"}, "schemes": {"http"}}


@pytest.fixture(scope="module")
def flac_bytes() -> bytes:
    buffer = io.BytesIO()
    t = np.arange(8000) / 8000
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000, format="FLAC")
    return buffer.getvalue()


class _Server:
    """A local HTTP server; ``mode`` serve | stall | drip. Counts connections and how many drip
    connections the client closed."""

    def __init__(self, mode: str, body: bytes) -> None:
        self.mode, self.body = mode, body
        self.connections = 0
        self.closed_by_client = 0
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.connections += 1
                if server.mode == "stall":  # accepted, then never a byte
                    server.stop.wait(120)
                    return
                if server.mode == "drip":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10 * len(server.body)))
                    self.end_headers()
                    try:
                        while not server.stop.is_set():
                            self.wfile.write(b"\0")
                            self.wfile.flush()
                            server.stop.wait(0.2)
                    except OSError:  # the client hung up at its deadline
                        server.closed_by_client += 1
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_factory(flac_bytes):
    servers = []

    def make(mode: str) -> _Server:
        servers.append(_Server(mode, flac_bytes))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _refusing_url() -> str:
    """A port on 127.0.0.1 with nothing listening (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_dripping_host_is_cut_off_at_the_deadline_not_per_chunk(tmp_path, server_factory):
    drip = server_factory("drip")
    with pytest.raises(HostUnreachable) as err:
        fetch_audio(f"{drip.url}/a.flac", "a", tmp_path, timeout_s=1.0, **LOCAL)
    assert err.value.reason == FETCH_FAILED and "deadline" in err.value.detail
    # the client hung up (the server saw its writes fail) and kept nothing
    for _ in range(50):
        if drip.closed_by_client:
            break
        time.sleep(0.1)
    assert drip.closed_by_client == 1
    assert not list(tmp_path.iterdir())


def test_a_stalling_host_is_host_trouble_and_a_404_is_not(tmp_path, server_factory):
    stall = server_factory("stall")
    with pytest.raises(HostUnreachable):
        fetch_audio(f"{stall.url}/a.flac", "a", tmp_path, timeout_s=0.5, **LOCAL)
    with pytest.raises(HostUnreachable):
        fetch_audio(f"{_refusing_url()}/a.flac", "a", tmp_path, timeout_s=2, **LOCAL)


def _songs(url: str, n: int, prefix: str) -> list[dict]:
    return [{"song_id": f"{prefix}-{i}", "audio_url": f"{url}/{prefix}-{i}.flac", "audio_path": None}
            for i in range(n)]


def test_prefetch_downloads_in_parallel_and_trips_the_breaker_of_a_dead_host(tmp_data, server_factory):
    good = server_factory("serve")
    stall = server_factory("stall")
    refused = _refusing_url()
    songs = _songs(good.url, 6, "ok") + _songs(stall.url, 20, "stall") + _songs(refused, 20, "refused")
    settings = FetchSettings(allowed_hosts=frozenset({"127.0.0.1"}), schemes=frozenset({"http"}),
                             deadline_s=0.5, workers=4, breaker_threshold=3)
    logged: list[str] = []
    report = prefetch_audio(songs, tmp_data, settings, log=logged.append)

    assert sorted(report.fetched) == [f"ok-{i}" for i in range(6)]
    assert {p.stem for p in tmp_data.audio_dir.glob("*.flac")} == set(report.fetched)
    # every other song has a reason; none is lost
    assert set(report.failures) == {s["song_id"] for s in songs[6:]}
    reasons = report.reason_counts()
    assert set(reasons) == {FETCH_FAILED, HOST_DOWN}
    # each dead host's breaker opened after 3 straight failures; a host that never answered gets at
    # most 3 downloads at once, so only those reached the stalling server; the serving host's
    # breaker stayed shut
    port = lambda url: url.rsplit(":", 1)[1]
    assert report.open_hosts == sorted(f"127.0.0.1:{port(u)}" for u in (stall.url, refused)) and len(logged) == 2
    assert stall.connections == settings.breaker_threshold
    assert reasons == {FETCH_FAILED: 2 * settings.breaker_threshold, HOST_DOWN: 40 - 2 * settings.breaker_threshold}


def test_songs_with_local_audio_or_without_url_are_not_fetched(tmp_data, server_factory, flac_bytes):
    good = server_factory("serve")
    tmp_data.audio_dir.mkdir(parents=True)
    (tmp_data.audio_dir / "here.flac").write_bytes(flac_bytes)
    songs = [{"song_id": "here", "audio_url": f"{good.url}/x.flac"}, {"song_id": "nourl", "audio_url": None}]
    report = prefetch_audio(songs, tmp_data, FetchSettings(allowed_hosts=frozenset({"127.0.0.1"}),
                                                           schemes=frozenset({"http"})))
    assert report.local == 2 and not report.fetched and not report.failures and good.connections == 0


def test_a_host_outside_the_allow_list_is_refused_without_a_connection(tmp_data, server_factory):
    good = server_factory("serve")
    report = prefetch_audio(_songs(good.url, 2, "x"), tmp_data, FetchSettings())  # Suno's CDN only
    assert report.reason_counts() == {"fetch_refused": 2} and good.connections == 0


def test_breaker_opens_after_consecutive_failures_and_a_success_resets_it():
    breaker = HostCircuitBreaker(threshold=2)
    assert breaker.acquire("a") and breaker.acquire("a")  # two slots for an unproven host
    breaker.failure("a")
    breaker.success("a")
    breaker.failure("a")
    assert not breaker.is_open("a")
    breaker.failure("a")
    assert breaker.is_open("a") and not breaker.is_open("b")


def test_settings_come_from_the_environment():
    settings = FetchSettings.from_env({"SUNORECSYS_AUDIO_HOSTS": "127.0.0.1, cdn.example.org",
                                       "SUNORECSYS_AUDIO_SCHEMES": "http", "SUNORECSYS_FETCH_DEADLINE_S": "5",
                                       "SUNORECSYS_FETCH_WORKERS": "2", "SUNORECSYS_FETCH_BREAKER": "4"})
    assert settings.allowed_hosts == {"127.0.0.1", "cdn.example.org"} and settings.schemes == {"http"}
    assert (settings.deadline_s, settings.workers, settings.breaker_threshold) == (5.0, 2, 4)
    assert FetchSettings.from_env({}) == FetchSettings()
    with pytest.raises(ValueError):
        FetchSettings(workers=0)
