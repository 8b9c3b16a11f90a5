"""``sunorecsys score --backend signal``: rows reach the disk as songs finish, SIGTERM keeps them, a
rerun checks only what is not cached (keyed by the audio's bytes and the checks version)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import soundfile as sf

from sunorecsys.audio.checks import CHECKS_VERSION
from sunorecsys.audio.synth import synth_song
from sunorecsys.paths import DataPaths

REPO = Path(__file__).resolve().parents[1]
N_SONGS = 8


def _summary(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("summary: ")]
    assert lines, stdout
    return json.loads(lines[-1].removeprefix("summary: "))


def _args(paths: DataPaths) -> list[str]:
    return [sys.executable, "-m", "sunorecsys", "--data-dir", str(paths.root), "score", "--backend", "signal",
            "--input", str(paths.root / "songs.parquet"), "--workers", "2", "--no-progress"]


def test_sigterm_keeps_finished_songs_and_the_rerun_resumes(tmp_path):
    paths = DataPaths(tmp_path / "data")
    paths.audio_dir.mkdir(parents=True)
    ids = [f"song-{i:02d}" for i in range(N_SONGS)]
    for i, sid in enumerate(ids):
        sf.write(paths.audio_dir / f"{sid}.mp3", synth_song(20.0, 44100, channels=2, seed=i), 44100)
    pd.DataFrame({"song_id": ids, "duration_s": 20.0}).to_parquet(paths.root / "songs.parquet")
    cache = paths.signal_cache_dir
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    proc = subprocess.Popen(_args(paths), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and len(list(cache.glob("*.json"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "rerun to resume" in err and "Traceback" not in err
    finished = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    assert 2 <= len(finished) < N_SONGS
    for name in finished:  # whole rows (atomic writes), keyed by version and audio bytes
        row = json.loads((cache / name).read_text())
        assert row["checks_version"] == CHECKS_VERSION and len(row["audio_sha256"]) == 64
    # The scores file was written for what finished.
    assert 2 <= len(json.loads((paths.root / "signal_scores.json").read_text())) < N_SONGS

    # One finished song's audio changes: its cached row no longer counts.
    changed = min(finished).removesuffix(".json")
    sf.write(paths.audio_dir / f"{changed}.mp3", synth_song(20.0, 44100, channels=2, seed=99), 44100)
    rerun = subprocess.run(_args(paths), check=False, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = _summary(rerun.stdout)
    assert summary["songs"] == N_SONGS and summary["cached"] == len(finished) - 1
    assert summary["checked"] == N_SONGS - len(finished) + 1 and summary["status"] == {"ok": N_SONGS}
    assert {n: (cache / n).stat().st_mtime_ns for n in finished if n != f"{changed}.json"} == \
        {n: t for n, t in finished.items() if n != f"{changed}.json"}  # not redone
    assert len(json.loads((paths.root / "signal_scores.json").read_text())) == N_SONGS
