"""Every atomic writer of the library leaves files (and folders) with the mode the umask gives.

``tempfile.mkstemp`` creates 0600 and ``mkdtemp`` 0700 on purpose; after the rename into place
the store of record must be readable by the group/others when the umask says so (an analyst's
account reading the warehouse), and stay private when the umask says that instead.
"""

from __future__ import annotations

import http.server
import io
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from recommender_data import synthetic_catalogue

from sunorecsys.audio.source import fetch_audio
from sunorecsys.fileio import current_umask
from sunorecsys.quality.cache import write_json_atomic
from sunorecsys.quality.scores_file import write_scores_file
from sunorecsys.recommenders.hybrid import HybridRecommender
from sunorecsys.warehouse.parquet import write_partition

UMASKS = [0o022, 0o002, 0o077]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def wav_server() -> Iterator[str]:
    buf = io.BytesIO()
    t = np.arange(22050) / 22050
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), 22050, format="WAV")
    body = buf.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/song.wav"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def fitted():
    songs, interactions, quality = synthetic_catalogue()
    return HybridRecommender().fit(songs, interactions=interactions, quality_scores=quality)


@pytest.mark.parametrize("mask", UMASKS, ids=oct)
def test_current_umask_reads_the_process_umask(mask):
    with umask(mask):
        assert current_umask() == mask
        assert current_umask() == mask  # reading it did not change it


@pytest.mark.parametrize("mask", UMASKS, ids=oct)
def test_atomic_writers_follow_the_umask(mask, tmp_path, wav_server, fitted):
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    with umask(mask):
        parquet = write_partition(pd.DataFrame({"song_id": ["a"]}), tmp_path / "wh", "songs", "2026-11-01")
        write_json_atomic({"a": 1}, tmp_path / "cache" / "a.json")
        write_scores_file({"a": {"overall_quality_score": 0.5}}, tmp_path / "scores.json")
        fetched = fetch_audio(wav_server, "song1", tmp_path / "audio", allowed_hosts={"127.0.0.1"},
                              schemes={"http"})
        model_dir = fitted.save(tmp_path / "model")
    for path in (parquet, tmp_path / "cache" / "a.json", tmp_path / "scores.json", fetched):
        assert mode(path) == file_mode, (path, oct(mode(path)))
    assert mode(model_dir) == dir_mode
    assert {mode(p) for p in model_dir.iterdir()} == {file_mode}
