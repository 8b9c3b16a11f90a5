"""Finding a song's audio: local file first, then the audio folder, then a fetch under the allow-list.

The fetch is exercised for real against an http.server on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf

from sunorecsys.audio import AudioUnavailable, fetch_audio, load_song_audio, resolve_audio_path
from sunorecsys.audio.synth import synth_song
from sunorecsys.paths import DataPaths

LOCAL = {"allowed_hosts": {"127.0.0.1"}, "schemes": {"http"}}


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict, bytes, float]]] = {}
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        self.hits.append(self.path)
        status, headers, body, delay = self.routes.get(self.path, (404, {}, b"not found", 0.0))
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers and not headers.get("_no_length"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def flac_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("src") / "song.flac"
    sf.write(path, synth_song(2.0, 22050, channels=2, seed=2), 22050)
    return path.read_bytes()


def _route(path: str, body: bytes, status: int = 200, headers: dict | None = None, delay: float = 0.0):
    _Handler.routes[path] = (status, headers or {}, body, delay)


def _no_leftovers(audio_dir: Path) -> bool:
    return not audio_dir.exists() or not [p for p in audio_dir.iterdir() if p.name.startswith(".")]


def test_own_audio_path_wins_over_the_audio_folder(tmp_data, flac_bytes):
    tmp_data.audio_dir.mkdir(parents=True)
    (tmp_data.audio_dir / "abc.flac").write_bytes(flac_bytes)
    own = tmp_data.root / "elsewhere" / "x.flac"
    own.parent.mkdir()
    own.write_bytes(flac_bytes)
    # A folder outside <data>/audio is used only once listed as an audio root.
    assert resolve_audio_path({"song_id": "abc", "audio_path": str(own)}, tmp_data) == \
        tmp_data.audio_dir / "abc.flac"
    listed = DataPaths(tmp_data.root, extra_audio_roots=(own.parent,))
    assert resolve_audio_path({"song_id": "abc", "audio_path": str(own)}, listed) == own
    # Relative to the data root.
    assert resolve_audio_path({"song_id": "abc", "audio_path": "elsewhere/x.flac"}, listed) == \
        tmp_data.root / "elsewhere" / "x.flac"
    # A stale audio_path falls through to the audio folder.
    assert resolve_audio_path({"song_id": "abc", "audio_path": "gone.mp3"}, tmp_data) == \
        tmp_data.audio_dir / "abc.flac"


def test_audio_folder_is_searched_for_any_soundfile_extension(tmp_data, flac_bytes):
    tmp_data.audio_dir.mkdir(parents=True)
    (tmp_data.audio_dir / "s-1.ogg").write_bytes(flac_bytes)  # a name, not a format: soundfile sniffs
    song = {"song_id": "s-1", "audio_path": float("nan"), "audio_url": None}
    assert resolve_audio_path(song, tmp_data).name == "s-1.ogg"
    audio = load_song_audio(song, tmp_data, sample_rate=16000)
    assert audio.sample_rate == 16000 and audio.duration_s == pytest.approx(2.0, abs=1e-3)


def test_nothing_anywhere_is_missing_and_says_what_was_tried(tmp_data):
    with pytest.raises(AudioUnavailable) as err:
        resolve_audio_path({"song_id": "ghost", "audio_path": "audio/nope.wav"}, tmp_data)
    assert err.value.reason == "missing" and err.value.song_id == "ghost"
    assert "nope.wav" in err.value.detail and "ghost.<ext>" in err.value.detail


@pytest.mark.parametrize("song_id", ["../etc/passwd", "a/b", "", None, "x" * 200, "ok id"])
def test_unsafe_song_id_never_reaches_a_path(tmp_data, song_id):
    with pytest.raises(AudioUnavailable) as err:
        resolve_audio_path({"song_id": song_id, "audio_url": "https://cdn1.suno.ai/x.mp3"}, tmp_data)
    assert err.value.reason == "fetch_refused"
    assert not tmp_data.audio_dir.exists()


def test_fetch_from_an_allowed_host_is_kept_and_reused(tmp_data, server, flac_bytes):
    _route("/songs/abc.mp3", flac_bytes, headers={"Content-Type": "audio/mpeg"})
    song = {"song_id": "abc", "audio_url": f"{server}/songs/abc.mp3"}
    before = len(_Handler.hits)
    audio = load_song_audio(song, tmp_data, sample_rate=16000, **LOCAL)
    # The extension comes from what the bytes are (FLAC), not from the URL.
    assert audio.path == tmp_data.audio_dir / "abc.flac"
    assert audio.path.read_bytes() == flac_bytes
    assert audio.duration_s == pytest.approx(2.0, abs=1e-3)
    assert _no_leftovers(tmp_data.audio_dir)
    again = resolve_audio_path(song, tmp_data, **LOCAL)
    assert again == audio.path and len(_Handler.hits) == before + 1  # second time: no request


def test_default_allow_list_refuses_anything_but_suno_https(tmp_data, server, flac_bytes):
    _route("/songs/def.mp3", flac_bytes)
    before = len(_Handler.hits)
    for url in (f"{server}/songs/def.mp3",                       # http, unlisted host
                "https://example.com/def.mp3",                  # https, unlisted host
                "http://cdn1.suno.ai/def.mp3",                  # listed host, wrong scheme
                "file:///etc/passwd", "ftp://cdn1.suno.ai/def.mp3", "def.mp3",
                "https://user:pw@cdn1.suno.ai/def.mp3"):
        with pytest.raises(AudioUnavailable) as err:
            resolve_audio_path({"song_id": "def", "audio_url": url}, tmp_data)
        assert err.value.reason == "fetch_refused", url
        assert err.value.song_id == "def"
    assert len(_Handler.hits) == before  # refused before any connection
    assert _no_leftovers(tmp_data.audio_dir)


def test_file_scheme_is_refused_even_when_the_caller_lists_it(tmp_data, tmp_path, flac_bytes):
    target = tmp_path / "local.flac"
    target.write_bytes(flac_bytes)
    with pytest.raises(AudioUnavailable) as err:
        fetch_audio(target.as_uri(), "loc", tmp_data.audio_dir, allowed_hosts={"127.0.0.1", "", "localhost"},
                    schemes={"http", "file"})
    assert err.value.reason == "fetch_refused"


def test_redirect_to_an_unlisted_host_is_refused(tmp_data, server, flac_bytes):
    port = server.rsplit(":", 1)[1]
    _route("/final.flac", flac_bytes)
    _route("/hop", b"", status=302, headers={"Location": f"http://localhost:{port}/final.flac"})
    with pytest.raises(AudioUnavailable) as err:
        fetch_audio(f"{server}/hop", "hop", tmp_data.audio_dir, **LOCAL)
    assert err.value.reason == "fetch_refused" and "localhost" in err.value.detail
    _route("/hop2", b"", status=302, headers={"Location": f"{server}/final.flac"})
    assert fetch_audio(f"{server}/hop2", "hop2", tmp_data.audio_dir, **LOCAL).name == "hop2.flac"


def test_size_cap_on_content_length(tmp_data, server, flac_bytes):
    _route("/big.flac", flac_bytes)
    with pytest.raises(AudioUnavailable) as err:
        fetch_audio(f"{server}/big.flac", "big", tmp_data.audio_dir, max_bytes=1000, **LOCAL)
    assert err.value.reason == "too_large" and "Content-Length" in err.value.detail
    assert not list(tmp_data.audio_dir.iterdir())


def test_size_cap_while_streaming_without_content_length(tmp_data, server, flac_bytes):
    _route("/chunked.flac", flac_bytes, headers={"_no_length": "1"})
    with pytest.raises(AudioUnavailable) as err:
        fetch_audio(f"{server}/chunked.flac", "chunked", tmp_data.audio_dir, max_bytes=1000, **LOCAL)
    assert err.value.reason == "too_large" and "streamed" in err.value.detail
    assert not list(tmp_data.audio_dir.iterdir())


def test_a_slow_server_times_out_as_fetch_failed(tmp_data, server, flac_bytes):
    _route("/slow.flac", flac_bytes, delay=2.0)
    start = time.monotonic()
    with pytest.raises(AudioUnavailable) as err:
        fetch_audio(f"{server}/slow.flac", "slow", tmp_data.audio_dir, timeout_s=0.3, **LOCAL)
    assert err.value.reason == "fetch_failed"
    assert time.monotonic() - start < 1.9
    assert not list(tmp_data.audio_dir.iterdir())


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_are_fetch_failed(tmp_data, server, status):
    _route(f"/err{status}", b"nope", status=status)
    with pytest.raises(AudioUnavailable) as err:
        fetch_audio(f"{server}/err{status}", "err", tmp_data.audio_dir, **LOCAL)
    assert err.value.reason == "fetch_failed" and str(status) in err.value.detail


def test_connection_refused_is_fetch_failed(tmp_data):
    with pytest.raises(AudioUnavailable) as err:
        fetch_audio("http://127.0.0.1:9/x.mp3", "dead", tmp_data.audio_dir, timeout_s=2, **LOCAL)
    assert err.value.reason == "fetch_failed"


def test_fetched_bytes_that_are_not_audio_are_not_kept(tmp_data, server):
    _route("/page.mp3", b"<html>login required</html>" * 50, headers={"Content-Type": "text/html"})
    with pytest.raises(AudioUnavailable) as err:
        fetch_audio(f"{server}/page.mp3", "page", tmp_data.audio_dir, **LOCAL)
    assert err.value.reason == "unreadable"
    assert not list(tmp_data.audio_dir.iterdir())


def test_fetch_false_never_uses_the_url(tmp_data, server, flac_bytes):
    _route("/nofetch.flac", flac_bytes)
    with pytest.raises(AudioUnavailable) as err:
        resolve_audio_path({"song_id": "nf", "audio_url": f"{server}/nofetch.flac"}, tmp_data, fetch=False,
                           **LOCAL)
    assert err.value.reason == "missing" and "fetch=False" in err.value.detail


def test_decoded_fetch_matches_the_served_audio(tmp_data, server, flac_bytes, tmp_path):
    _route("/same.flac", flac_bytes)
    audio = load_song_audio({"song_id": "same", "audio_url": f"{server}/same.flac"}, tmp_data,
                            sample_rate=None, mono=False, **LOCAL)
    src = tmp_path / "src.flac"
    src.write_bytes(flac_bytes)
    np.testing.assert_array_equal(audio.samples, sf.read(src, dtype="float32")[0])
