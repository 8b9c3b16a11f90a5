"""The guide's script (compute_music_flamingo_quality.py) and ``sunorecsys score``: flags, files,
exit codes, and resuming after a kill without redoing finished songs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sunorecsys.cli import main as cli_main
from sunorecsys.paths import DataPaths
from sunorecsys.quality.commands import guide_script_main
from sunorecsys.quality.scores_file import load_scores

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "compute_music_flamingo_quality.py"


def _summary(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("summary: ")]
    assert lines, stdout
    return json.loads(lines[-1].removeprefix("summary: "))


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture
def catalogue(small_catalogue, tmp_path) -> DataPaths:
    root = tmp_path / "data"
    shutil.copytree(small_catalogue.root, root)
    return DataPaths(root)


def _guide_args(paths: DataPaths, model: Path | str, *extra: str) -> list[str]:
    return ["--data-dir", str(paths.root), "--input", str(paths.raw_dir / "all_songs.json"),
            "--output", str(paths.flamingo_scores_file), "--cache-dir", str(paths.flamingo_cache_dir),
            "--device", "cpu", "--model", str(model), "--max-tokens", "4", "--no-progress", *extra]


def test_missing_weights_exit_2_with_how_to_and_no_traceback(catalogue, tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), *_guide_args(catalogue, tmp_path / "nowhere"),
                           "--limit", "2"], check=False, capture_output=True, text=True, env=_env(),
                           timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "huggingface-cli download" in proc.stderr and "--model" in proc.stderr
    assert "Traceback" not in proc.stderr


def _run_until_cached(args: list[str], cache: Path, n_files: int, sig: int) -> subprocess.CompletedProcess:
    """Start the script, send ``sig`` once ``n_files`` songs are cached, wait for it to end."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and len(list(cache.glob("*.json"))) < n_files:
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.mark.usefixtures("sigint_reaches_children")
def test_interrupted_and_killed_runs_resume_without_redoing_finished_songs(catalogue, tiny_flamingo):
    model = tiny_flamingo[("audioflamingo3", "scripted")]
    cache = catalogue.flamingo_cache_dir
    args = [sys.executable, str(SCRIPT), *_guide_args(catalogue, model, "--batch-size", "1", "--limit", "8")]

    # Ctrl-C: exits 130, says how to resume, and writes the output for what finished.
    interrupted = _run_until_cached(args, cache, 2, signal.SIGINT)
    assert interrupted.returncode == 130, interrupted.stderr
    assert "rerun to resume" in interrupted.stderr and "Traceback" not in interrupted.stderr
    assert len(load_scores(catalogue.flamingo_scores_file)) >= 2

    # A kill: no chance to clean up.
    killed = _run_until_cached(args, cache, len(list(cache.glob("*.json"))) + 2, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    finished = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    assert 4 <= len(finished) < 8
    for name in finished:  # what was written is whole (atomic writes), never half a file
        json.loads((cache / name).read_text())

    rerun = subprocess.run(args, check=False, capture_output=True, text=True, env=_env(),
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summary = _summary(rerun.stdout)
    assert summary["songs"] == 8 and summary["cached"] == len(finished)
    assert summary["scored"] == 8 - len(finished) and summary["failed"] == 0
    assert {n: (cache / n).stat().st_mtime_ns for n in finished} == finished  # not redone
    assert len(load_scores(catalogue.flamingo_scores_file)) == 8  # nothing lost


def test_limit_run_then_full_run_scores_only_the_rest(catalogue, tiny_flamingo, capsys):
    model = tiny_flamingo[("musicflamingo", "scripted")]
    assert guide_script_main(_guide_args(catalogue, model, "--limit", "3", "--batch-size", "2")) == 0
    first = _summary(capsys.readouterr().out)
    assert first["scored"] == 3 and first["model_loaded"]
    assert guide_script_main(_guide_args(catalogue, model, "--batch-size", "4")) == 0
    second = _summary(capsys.readouterr().out)
    assert second["cached"] == 3 and second["scored"] == 12 - 3
    assert guide_script_main(_guide_args(catalogue, model)) == 0
    third = _summary(capsys.readouterr().out)
    assert third["cached"] == 12 and not third["model_loaded"]
    data = json.loads(catalogue.flamingo_scores_file.read_text())
    entry = next(iter(data.values()))
    assert set(entry) >= {"song_id", "title", "scores"}
    assert set(entry["scores"]) >= {"production_quality", "overall_recommendation_score", "overall_quality_score"}


def test_guide_example_flags_and_input_parse(tmp_path, capsys):
    out = tmp_path / "data" / "music_flamingo_scores.json"
    code = guide_script_main(["--input", str(REPO / "sunorecsys/data/curl/all_songs.json"), "--output", str(out),
                              "--cache-dir", str(tmp_path / "data" / "music_flamingo_scores"),
                              "--device", "cpu", "--limit", "0", "--no-progress"])
    assert code == 0 and json.loads(out.read_text()) == {}
    assert _summary(capsys.readouterr().out)["model_loaded"] is False


def test_sunorecsys_score_backends(catalogue, tiny_flamingo, capsys):
    assert cli_main(["--data-dir", str(catalogue.root), "score", "--backend", "signal", "--no-progress",
                     "--input", str(catalogue.raw_dir / "all_songs.json")]) == 0
    summary = _summary(capsys.readouterr().out)
    signal_scores = json.loads(Path(summary["output"]).read_text())
    assert len(signal_scores) == 12 and all(e["sources"] == ["signal"] for e in signal_scores.values())
    assert all(0 <= e["scores"]["overall_quality_score"] <= 1 for e in signal_scores.values())

    model = tiny_flamingo[("audioflamingo3", "scripted")]
    assert cli_main(["--data-dir", str(catalogue.root), "score", "--backend", "music-flamingo", "--no-progress",
                     "--input", str(catalogue.raw_dir / "all_songs.json"), "--model", str(model),
                     "--device", "cpu", "--max-tokens", "4", "--limit", "2"]) == 0
    assert _summary(capsys.readouterr().out)["scored"] == 2
    assert len(load_scores(catalogue.flamingo_scores_file)) == 2

    assert cli_main(["--data-dir", str(catalogue.root), "score", "--backend", "audiobox", "--no-progress",
                     "--checkpoint", str(catalogue.root / "no-checkpoint")]) == 2
    assert "checkpoint" in capsys.readouterr().err.lower()
