"""Audio written while the signal checks run (``make demo``): a song whose file is not written yet
is waited for, never checked as missing; one settled without a file is missing as before."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sunorecsys.audio.arrivals import arriving, producing
from sunorecsys.audio.checks import run_audio_checks
from sunorecsys.paths import DataPaths
from sunorecsys.sample.catalogue import generate_sample_catalogue


def _write_song(path, seconds: float = 3.0, sr: int = 44100) -> None:
    t = np.arange(int(seconds * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, np.stack([tone, tone], axis=1).astype(np.float32), sr, format="FLAC")


# The pool starts its workers (spawn + imports) before the first song is handed over: the first
# file is held back longer than that, so without the wait the song would be found missing.
@pytest.mark.parametrize(("workers", "hold_s"), [(1, 0.3), (2, 4.0)])
def test_checks_wait_for_songs_still_being_written(tmp_path, workers, hold_s):
    paths = DataPaths(tmp_path)
    paths.audio_dir.mkdir(parents=True)
    songs = pd.DataFrame({"song_id": ["first", "second", "never"], "duration_s": [3.0, 3.0, 3.0]})
    out: dict = {}
    with producing(paths.audio_dir) as arrivals:
        assert arriving(paths.audio_dir) is arrivals
        checker = threading.Thread(target=lambda: out.update(
            frame=run_audio_checks(songs, paths, workers=workers, fetch=False)))
        checker.start()
        checker.join(hold_s)
        assert checker.is_alive()  # waiting for "first"
        for song_id in ("first", "second"):
            _write_song(paths.audio_dir / f"{song_id}.flac")
            arrivals.settle(song_id)
        arrivals.settle("never")  # made without audio (a missing_file song of the sample)
        checker.join(120)
    frame = out["frame"]
    assert frame["song_id"].tolist() == ["first", "second", "never"]
    assert frame["status"].tolist() == ["ok", "ok", "missing"]
    assert frame["duration_s"].iloc[:2].round(2).tolist() == [3.0, 3.0]
    assert arriving(paths.audio_dir) is None  # the producer is gone with its block


def test_a_failed_producer_releases_the_waiting_checks(tmp_path):
    paths = DataPaths(tmp_path)
    paths.audio_dir.mkdir(parents=True)
    songs = pd.DataFrame({"song_id": ["late"], "duration_s": [3.0]})
    out: dict = {}
    checker = threading.Thread(target=lambda: out.update(frame=run_audio_checks(songs, paths, workers=1,
                                                                                fetch=False)))
    with pytest.raises(RuntimeError, match="synthesis failed"), producing(paths.audio_dir):
        checker.start()
        checker.join(0.3)
        assert checker.is_alive()
        raise RuntimeError("synthesis failed")
    checker.join(60)
    assert out["frame"]["status"].tolist() == ["missing"]  # what was never written is missing


def test_sample_writes_its_listening_log_before_the_audio_and_the_same_files(tmp_path):
    """The callback finds the catalogue and the complete listening log, and only the truncated
    songs' audio (their heard length needs it); two threads or one give the same files."""
    seen: dict = {}

    def on_written(catalogue_file):
        paths = DataPaths(tmp_path / "overlapped")
        seen["log"] = (paths.raw_dir / "interactions.csv").read_bytes()
        seen["audio_files"] = len(list(paths.audio_dir.glob("*")))
        seen["producing"] = arriving(paths.audio_dir) is not None

    # 25 songs: 5 damaged, one of each kind up to "truncated"
    overlapped = generate_sample_catalogue(tmp_path / "overlapped", n_songs=25, n_users=30, workers=2,
                                           on_catalogue_written=on_written)
    generate_sample_catalogue(tmp_path / "plain", n_songs=25, n_users=30, workers=1)
    assert seen["producing"]
    truncated = overlapped.damage_counts.get("truncated", 0)
    assert truncated > 0
    assert seen["audio_files"] == truncated < overlapped.n_audio_files  # only the truncated songs' files yet
    for name in ("raw/all_songs.json", "raw/interactions.csv", "sample_ground_truth.json"):
        assert (tmp_path / "overlapped" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    assert seen["log"] == (tmp_path / "plain" / "raw" / "interactions.csv").read_bytes()
    for plain_file in sorted((tmp_path / "plain" / "audio").iterdir()):
        assert (tmp_path / "overlapped" / "audio" / plain_file.name).read_bytes() == plain_file.read_bytes()
