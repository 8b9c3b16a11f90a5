"""A hostile audio corpus, built here as real files, through the real check_song / run_audio_checks.

Every file is decoded for real (dr_mp3 through miniaudio, libsndfile through soundfile); the bounded
memory is measured as the peak RSS of a subprocess checking one 1 GB-at-float32 file; the run that
loses a worker loses it to a real SIGKILL, and the song that exhausts memory does so under a real
address-space limit.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sunorecsys.audio.checks import check_song, run_audio_checks
from sunorecsys.audio.decode import decode_audio, mp3_header_duration
from sunorecsys.audio.errors import UNAVAILABLE_REASONS
from sunorecsys.audio.measures import integrated_loudness
from sunorecsys.audio.synth import synth_song
from sunorecsys.paths import DataPaths

SR = 44100
REPO = Path(__file__).resolve().parents[1]


def _song(song_id: str, duration: float | None = 30.0, **extra) -> dict:
    return {"song_id": song_id, "duration_s": duration, **extra}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> DataPaths:
    """One data root holding every hostile file (under audio/ unless said otherwise)."""
    paths = DataPaths(tmp_path_factory.mktemp("hostile"))
    audio = paths.audio_dir
    audio.mkdir(parents=True)
    song = synth_song(30.0, SR, channels=2, seed=11)
    sf.write(audio / "full.mp3", song, SR)
    data = (audio / "full.mp3").read_bytes()
    # A partial download: the first third of the bytes, the Xing header (frame 1) intact.
    (audio / "cut.mp3").write_bytes(data[: len(data) // 3])
    (audio / "cut-nometa.mp3").write_bytes(data[: len(data) // 3])
    for ext in ("flac", "wav"):  # partial downloads of lossless files: the header claims 30 s
        sf.write(audio / f"full.{ext}", song, SR)
        whole = (audio / f"full.{ext}").read_bytes()
        (audio / f"cut.{ext}").write_bytes(whole[: len(whole) // 2])
    # The same song without its Xing frame: libsndfile then guesses the length from the first frames.
    sf.write(audio / "vbr.mp3", song, SR, bitrate_mode="VARIABLE")
    vbr = (audio / "vbr.mp3").read_bytes()
    tag = max(vbr.find(b"Xing"), vbr.find(b"Info"))
    assert tag > 0, "libsndfile's MP3 writer no longer writes a Xing/Info frame"
    second = vbr.find(b"\xff\xfb", tag)
    (audio / "noxing.mp3").write_bytes(vbr[second:])
    six = np.stack([song[:, 0], song[:, 1], song.mean(axis=1), 0.2 * song[:, 0], song[:, 0], song[:, 1]], axis=1)
    sf.write(audio / "surround.wav", six[: 10 * SR], SR, subtype="PCM_16")
    sf.write(audio / "surround.flac", six[: 10 * SR], SR)
    bad = song[: 5 * SR].copy()
    bad[1000, 0], bad[2000, 1], bad[3000, 0] = np.nan, np.inf, -np.inf
    sf.write(audio / "nan.wav", bad, SR, subtype="FLOAT")
    (audio / "zero.mp3").write_bytes(b"")
    (audio / "noise.mp3").write_bytes(np.random.default_rng(3).bytes(50_000))
    (audio / "text.flac").write_text("this is a text file, not FLAC\n" * 200, encoding="utf-8")
    # A WAV whose header claims ~12 hours (data chunk size 0xFFFFFF00 bytes) but holds 2 s.
    sf.write(audio / "claim.wav", song[: 2 * SR], SR, subtype="PCM_16")
    raw = bytearray((audio / "claim.wav").read_bytes())
    data_at = raw.find(b"data")
    raw[data_at + 4:data_at + 8] = (0xFFFFFF00).to_bytes(4, "little")
    raw[4:8] = (0xFFFFFF00 + data_at).to_bytes(4, "little")
    (audio / "claim.wav").write_bytes(bytes(raw))
    # Outside the roots: a real, decodable file, reached by audio_path or by a symlink.
    outside = paths.root / "outside"
    outside.mkdir()
    sf.write(outside / "secret.flac", song[: 3 * SR], SR)
    (audio / "escape.flac").symlink_to(outside / "secret.flac")
    (audio / "inside-link.flac").symlink_to(audio / "surround.flac")
    os.mkfifo(audio / "fifo.mp3")
    return paths


def _check(paths: DataPaths, song: dict) -> dict:
    return check_song(song, paths, fetch=False)


def test_truncated_mp3_with_its_xing_header_intact_is_a_hard_fail(corpus):
    assert mp3_header_duration(corpus.audio_dir / "cut.mp3") == pytest.approx(30.0, abs=0.1)
    row = _check(corpus, _song("x", audio_path=str(corpus.audio_dir / "cut.mp3")))
    assert row["status"] == "ok" and row["hard_fail"] and "truncated" in row["hard_fail_reasons"]
    assert 9.0 < row["duration_s"] < 11.0  # what was decoded, never the header's 30 s
    assert row["header_duration_s"] == pytest.approx(30.0, abs=0.1)
    assert row["technical_score"] == 0.0
    assert "decoded" in row["detail"] and "30.0" in row["detail"]
    # Without a catalogue duration the header alone tells the truncation.
    alone = _check(corpus, _song("y", None, audio_path="audio/cut-nometa.mp3"))
    assert "truncated" in alone["hard_fail_reasons"] and alone["metadata_duration_s"] is None


@pytest.mark.parametrize("ext", ["flac", "wav"])
def test_partial_lossless_files_are_truncated_against_their_own_header(corpus, ext):
    row = _check(corpus, _song("p", None, audio_path=f"audio/cut.{ext}"))
    assert row["status"] == "ok" and "truncated" in row["hard_fail_reasons"], row
    assert 10.0 < row["duration_s"] < 16.0 and row["header_duration_s"] == pytest.approx(30.0, abs=1e-3)
    whole = _check(corpus, _song("w", None, audio_path=f"audio/full.{ext}"))
    assert not whole["hard_fail"] and whole["duration_s"] == pytest.approx(30.0, abs=1e-3)


def test_mp3_without_xing_header_is_decoded_to_its_real_end_and_not_called_truncated(corpus):
    path = corpus.audio_dir / "noxing.mp3"
    assert mp3_header_duration(path) is None
    assert sf.info(str(path)).duration < 20.0  # libsndfile's own estimate stops short of 30 s
    row = _check(corpus, _song("z", audio_path=str(path)))
    assert row["status"] == "ok" and row["duration_s"] == pytest.approx(30.0, abs=0.2)
    assert "truncated" not in row["hard_fail_reasons"] and not row["hard_fail"], row
    healthy = _check(corpus, _song("h", audio_path=str(corpus.audio_dir / "full.mp3")))
    assert not healthy["hard_fail"] and healthy["duration_s"] == pytest.approx(30.0, abs=0.1)


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_six_channel_audio_decodes_and_is_measured(corpus, ext):
    row = _check(corpus, _song("s", 10.0, audio_path=f"audio/surround.{ext}"))
    assert row["status"] == "ok" and not row["hard_fail"], row
    assert row["duration_s"] == pytest.approx(10.0, abs=1e-3)
    assert -30.0 < row["loudness_lufs"] < -5.0
    assert decode_audio(corpus.audio_dir / f"surround.{ext}", mono=False).source_channels == 6


def test_more_than_two_channels_read_as_their_downmix_on_both_loudspeakers():
    x = synth_song(8.0, SR, channels=1, seed=2)
    stereo = np.stack([x, x], axis=1)
    six = np.repeat(x[:, None], 6, axis=1)
    assert integrated_loudness(six, SR) == pytest.approx(integrated_loudness(stereo, SR), abs=1e-6)


def test_nan_and_inf_samples_are_a_hard_fail_with_a_reason(corpus):
    row = _check(corpus, _song("n", 5.0, audio_path="audio/nan.wav"))
    assert row["status"] == "ok" and row["hard_fail"]
    assert "non_finite_samples" in row["hard_fail_reasons"] and row["nonfinite_samples"] == 3
    assert row["technical_score"] == 0.0 and "3 NaN/inf" in row["detail"]


@pytest.mark.parametrize(("name", "status"), [
    ("zero.mp3", "unreadable"), ("noise.mp3", "unreadable"), ("text.flac", "unreadable"),
    ("fifo.mp3", "missing"),  # not a regular file: never opened (a FIFO would block the reader)
])
def test_files_that_are_not_audio_get_a_reason(corpus, name, status):
    row = _check(corpus, _song("b", audio_path=f"audio/{name}"))
    assert row["status"] == status, row
    if status in UNAVAILABLE_REASONS:  # never heard: unscored, not bad
        assert not row["hard_fail"] and row["hard_fail_reasons"] == [] and math.isnan(row["technical_score"])
    else:
        assert row["hard_fail"] and row["hard_fail_reasons"] == [status], row


@pytest.mark.parametrize(("fmt", "name", "decoder"), [("WAV", "wav-named.mp3", "soundfile"),
                                                      ("FLAC", "flac-named.mp3", "soundfile"),
                                                      ("MP3", "mp3-named.wav", "miniaudio-mp3")])
def test_a_file_is_decoded_by_what_its_bytes_are_not_by_its_name(tmp_path, fmt, name, decoder):
    path = tmp_path / name
    sf.write(path, synth_song(3.0, SR, channels=2, seed=4), SR, format=fmt)
    audio = decode_audio(path)
    assert audio.decoder == decoder and audio.source_duration_s == pytest.approx(3.0, abs=0.06)


def test_a_header_claiming_hours_is_measured_on_what_is_there(corpus):
    row = _check(corpus, _song("c", 2.0, audio_path="audio/claim.wav"))
    assert row["status"] == "ok" and row["duration_s"] == pytest.approx(2.0, abs=0.01), row
    assert row["header_duration_s"] == pytest.approx(0xFFFFFF00 / 4 / SR, rel=1e-6)  # ~6.8 hours
    assert row["hard_fail_reasons"] == ["truncated"]  # 2 s where the file promised hours


@pytest.mark.parametrize("audio_path", ["/etc/passwd", "../../../../etc/passwd", "/root/.ssh/id_rsa",
                                        "/nonexistent/dir/x.mp3", "outside/secret.flac"])
def test_audio_path_outside_the_roots_is_refused_without_saying_whether_it_exists(corpus, audio_path):
    row = _check(corpus, _song("nothere", audio_path=audio_path))
    assert row["status"] == "audio_path_outside_roots", row
    assert row["detail"] == f"audio_path {audio_path} refused: outside the audio roots; " \
        f"{corpus.audio_dir}/nothere.<ext>; audio_url absent"


def test_symlinks_are_followed_only_inside_the_roots(corpus):
    escaped = _check(corpus, _song("escape"))  # audio/escape.flac -> outside/secret.flac
    assert escaped["status"] == "audio_path_outside_roots" and escaped["audio_sha256"] is None
    via_path = _check(corpus, _song("e2", audio_path="audio/escape.flac"))
    assert via_path["status"] == "audio_path_outside_roots"
    inside = _check(corpus, _song("inside-link", 10.0))
    assert inside["status"] == "ok"
    listed = DataPaths(corpus.root, extra_audio_roots=(corpus.root / "outside",))
    assert check_song(_song("escape", 3.0), listed, fetch=False)["status"] == "ok"


def test_folders_listed_in_the_environment_are_audio_roots(corpus, monkeypatch):
    song = _song("listed", 3.0, audio_path=str(corpus.root / "outside" / "secret.flac"))
    assert _check(corpus, song)["status"] == "audio_path_outside_roots"
    monkeypatch.setenv("SUNORECSYS_AUDIO_ROOTS", os.pathsep.join(["/nonexistent", str(corpus.root / "outside")]))
    assert _check(corpus, song)["status"] == "ok"


def test_the_whole_corpus_in_one_run_gives_one_row_per_song(corpus):
    names = ["cut.mp3", "noxing.mp3", "surround.flac", "nan.wav", "zero.mp3", "noise.mp3", "text.flac",
             "claim.wav", "fifo.mp3", "../outside/secret.flac", "/etc/passwd"]
    songs = pd.DataFrame([_song(f"s{i}", 10.0 if n.startswith("surround") else 30.0,
                                audio_path=f"audio/{n}" if not n.startswith("/") else n)
                          for i, n in enumerate(names)])
    seen = []
    checks = run_audio_checks(songs, corpus, fetch=False, workers=2, on_row=lambda i, r: seen.append(i))
    assert list(checks["song_id"]) == list(songs["song_id"]) and sorted(seen) == list(range(len(names)))
    assert list(checks["status"]) == ["ok", "ok", "ok", "ok", "unreadable", "unreadable", "unreadable", "ok",
                                      "missing", "audio_path_outside_roots", "audio_path_outside_roots"]
    # A FIFO and paths outside the roots were never heard: unscored, not hard-failed.
    assert list(checks["hard_fail"]) == [True, False, False, True, True, True, True, True, False, False, False]


# --- bounded memory, memory exhaustion, a worker's death ----------------------------------------

def _write_long_multichannel(path: Path, seconds: int, rate: int = 96000, channels: int = 6) -> None:
    """``seconds`` of 6-channel 96 kHz PCM_16 WAV written one second at a time."""
    t = np.arange(rate) / rate
    second = np.stack([0.3 * np.sin(2 * np.pi * (110 * (c + 1)) * t) for c in range(channels)], axis=1)
    second += 0.01 * np.random.default_rng(0).standard_normal(second.shape)
    quiet = (0.5 * second).astype(np.float32)
    second = second.astype(np.float32)
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, subtype="PCM_16") as out:
        for i in range(seconds):
            out.write(second if (i // 10) % 2 else quiet)  # 10 s louder, 10 s quieter


def test_memory_stays_bounded_for_a_long_96k_six_channel_file(tmp_path):
    seconds = 440  # 440 s x 96 kHz x 6 channels x 4 bytes = 1.01 GB once decoded to float32
    paths = DataPaths(tmp_path)
    paths.audio_dir.mkdir()
    _write_long_multichannel(paths.audio_dir / "long.wav", seconds)
    # The child's own peak is VmHWM of its address space. Not ru_maxrss: Linux carries the parent's
    # high-water mark across fork+exec into it, so inside a long pytest run it reported pytest's
    # size (724-1733 MB measured) instead of the check's (~285 MB).
    script = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from sunorecsys.audio.checks import check_song
        from sunorecsys.paths import DataPaths
        row = check_song({{"song_id": "long", "duration_s": {seconds}.0}}, DataPaths(Path({str(tmp_path)!r})),
                         fetch=False)
        print(json.dumps({{"status": row["status"], "duration_s": row["duration_s"],
                          "hard_fail_reasons": row["hard_fail_reasons"],
                          "peak_rss_mb": next(int(line.split()[1]) for line in open("/proc/self/status")
                                              if line.startswith("VmHWM:")) / 1024}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    float32_bytes = seconds * 96000 * 6 * 4
    print(f"\n96 kHz 6-channel file, {float32_bytes / 1e9:.2f} GB at float32: peak RSS {result['peak_rss_mb']:.0f} MB")
    assert result["status"] == "ok" and result["duration_s"] == pytest.approx(seconds, abs=0.01)
    assert "truncated" not in result["hard_fail_reasons"]
    # The whole file at float32 is twice the bound: only a streamed decode stays under it.
    assert float32_bytes > 2 * 500e6 and result["peak_rss_mb"] < 500


def test_a_song_that_exhausts_memory_gets_a_row_and_the_next_songs_still_do(tmp_path):
    paths = DataPaths(tmp_path)
    paths.audio_dir.mkdir()
    for name in ("good-1", "good-2"):
        sf.write(paths.audio_dir / f"{name}.flac", synth_song(3.0, SR, channels=2, seed=1), SR)
    # 1800 s of 48 kHz mono: the analysis buffer of a 1800 s cap needs 345 MB.
    with sf.SoundFile(paths.audio_dir / "hog.wav", "w", samplerate=48000, channels=1, subtype="PCM_16") as out:
        block = (0.2 * np.sin(2 * np.pi * 220 * np.arange(48000 * 60) / 48000)).astype(np.float32)
        for _ in range(30):
            out.write(block)
    script = textwrap.dedent(f"""
        import json, re, resource
        from pathlib import Path
        import pandas as pd
        from sunorecsys.audio.checks import check_song, run_audio_checks
        from sunorecsys.paths import DataPaths
        paths = DataPaths(Path({str(tmp_path)!r}))
        check_song({{"song_id": "good-1"}}, paths, fetch=False)  # every import and first allocation done
        size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
        limit = size + 150 * 1024 * 1024  # 150 MB more than this process already maps
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        songs = pd.DataFrame({{"song_id": ["good-1", "hog", "good-2"], "duration_s": [3.0, 1800.0, 3.0]}})
        checks = run_audio_checks(songs, paths, fetch=False, max_seconds=1800)
        print(json.dumps(checks[["song_id", "status", "detail"]].to_dict("records")))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    rows = {r["song_id"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])}
    assert rows["hog"]["status"] == "out_of_memory" and "MemoryError" in rows["hog"]["detail"]
    assert rows["good-1"]["status"] == "ok" and rows["good-2"]["status"] == "ok"


def test_a_worker_killed_mid_song_does_not_cost_the_other_songs_their_rows(tmp_path):
    psutil = pytest.importorskip("psutil")
    paths = DataPaths(tmp_path)
    paths.audio_dir.mkdir()
    ids = [f"song-{i}" for i in range(6)]
    for i, sid in enumerate(ids):
        sf.write(paths.audio_dir / f"{sid}.flac", synth_song(4.0, SR, channels=2, seed=i), SR)
    # A long song, so that its worker can be caught holding it open.
    _write_long_multichannel(paths.audio_dir / "victim.wav", 120, rate=48000, channels=2)
    victim = str(paths.audio_dir / "victim.wav")
    killed: list[int] = []

    def kill_the_victims_worker() -> None:
        deadline = time.monotonic() + 120
        me = psutil.Process()
        while not killed and time.monotonic() < deadline:
            for child in me.children(recursive=True):
                try:
                    if any(f.path == victim for f in child.open_files()):
                        os.kill(child.pid, signal.SIGKILL)  # what the kernel's OOM killer does
                        killed.append(child.pid)
                        return
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_victims_worker, daemon=True)
    killer.start()
    songs = pd.DataFrame({"song_id": [*ids[:3], "victim", *ids[3:]], "duration_s": [4.0] * 3 + [120.0] + [4.0] * 3})
    checks = run_audio_checks(songs, paths, fetch=False, workers=2)
    killer.join(timeout=1)
    assert killed, "the victim's worker was never seen holding its file"
    assert list(checks["song_id"]) == list(songs["song_id"])
    # Retried alone after the pool broke, the victim is checked too; no song is lost.
    assert (checks["status"] == "ok").all(), checks[["song_id", "status", "detail"]]
