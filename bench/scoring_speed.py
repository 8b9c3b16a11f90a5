"""Signal checks and Music Flamingo input preparation at catalogue scale, on real MP3s.

Run: ``.venv/bin/python bench/scoring_speed.py [--songs 4] [--repeats 3] [--scaling-songs 12]``.

Real music: the OGG tracks of Debian's ``wesnoth-1.16-music`` (GPL-2+, fetched with ``apt-get download``
into ``~/.cache/sunorecsys-bench``, never committed), the first 180 s of the longest tracks encoded to
MP3 with soundfile (libsndfile/LAME). Without apt-get the bench says so and uses synthesised songs.

Printed, with the machine and its load (the machine may be shared: compare the ratios, which are
measured in the same run, more than the seconds):
1. decode alone, CPU-s per 3-minute MP3 and x real time: libsndfile (``soundfile.read``, the
   baseline) and our block decoder (dr_mp3);
2. the whole signal check (``check_song``: resolve, hash, decode to the end, level meter, analysis
   signal, every measure) in CPU-s, x real time per core, and as a multiple of decode alone;
3. steady-state throughput of ``run_audio_checks`` with 1 and with 2 workers (songs per second from
   the first finished song to the last, so a pool's start-up is reported apart), beside decode
   alone in a pool of 1 and of 2 processes on the same songs: the scaling the machine's two cores
   give (two vCPUs may share a physical core), against which the checks' scaling is judged;
4. Music Flamingo's CPU path outside the model for a 3-minute song: decode + 16 kHz mono + the
   processor's features, today against the previous path (whole-file ``soundfile.read``, channel
   mean, soxr HQ) in the same run, and what is left of it on the model's thread (moving the
   features to the model's device) now that decode and features run in the prefetch thread;
5. how long the model waits for that path: wall seconds per song with a tiny model, decoding in
   line (the previous loop) against ``score_songs``, which decodes the next batch in a thread.
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # tiny_models: an offline tiny checkpoint for the processor

from sunorecsys.audio.checks import check_song, run_audio_checks
from sunorecsys.audio.decode import decode_audio
from sunorecsys.audio.synth import synth_song
from sunorecsys.paths import DataPaths

CACHE = Path(os.environ.get("SUNORECSYS_BENCH_CACHE", Path.home() / ".cache" / "sunorecsys-bench"))
PACKAGE = "wesnoth-1.16-music"
SECONDS = 180.0


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()
    return (f"{model}, {cores} cores available, {platform.python_implementation()} {platform.python_version()}, "
            f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (machine shared with other jobs)")


def real_tracks(n: int) -> tuple[list[Path], str]:
    """Up to ``n`` real OGG tracks of at least 3 minutes, or [] with the reason."""
    root = CACHE / "wesnoth"
    music = root / "usr/share/games/wesnoth/1.16/data/core/music"
    if not music.is_dir():
        debs = CACHE / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        if shutil.which("apt-get") is None:
            return [], "apt-get not available"
        got = subprocess.run(["apt-get", "download", PACKAGE], cwd=debs, capture_output=True, text=True, check=False)
        archives = sorted(debs.glob(f"{PACKAGE}_*.deb"))
        if not archives:
            return [], f"apt-get download {PACKAGE} failed: {got.stderr.strip()[:200]}"
        subprocess.run(["dpkg-deb", "-x", str(archives[-1]), str(root)], check=True)
    tracks = [(sf.info(str(p)).duration, p) for p in sorted(music.glob("*.ogg"))]
    long_ones = [p for d, p in sorted(tracks, reverse=True) if d >= SECONDS]
    return long_ones[:n], f"{PACKAGE} (GPL-2+), {len(long_ones)} tracks of >= {SECONDS:.0f} s"


def make_mp3s(tracks: list[Path], out: Path, n: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(n):
        path = out / f"song-{i:02d}.mp3"
        if not path.is_file():
            if tracks:
                data, rate = sf.read(str(tracks[i % len(tracks)]), frames=int(SECONDS * 44100), dtype="float32",
                                     always_2d=True)
                if rate != 44100:
                    data = soxr.resample(data, rate, 44100)
            else:
                data = synth_song(SECONDS, 44100, channels=2, seed=i)
            sf.write(path, data, 44100)
        made.append(path)
    return made


def cpu_seconds(repeats: int, fn, *args, **kwargs) -> float:
    """Median CPU seconds (this process) of ``fn(*args, **kwargs)`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn(*args, **kwargs)
        times.append(time.process_time() - t0)
    return statistics.median(times)


def bench_per_song(files: list[Path], paths: DataPaths, repeats: int) -> dict[str, float]:
    """CPU-s per song, interleaved per file so that the machine's load hits every method alike."""
    sums = {"libsndfile decode": 0.0, "our decode": 0.0, "check_song": 0.0}
    for path in files:
        song = {"song_id": path.stem, "duration_s": SECONDS, "audio_path": str(path)}
        sums["libsndfile decode"] += cpu_seconds(repeats, sf.read, str(path), dtype="float32")
        sums["our decode"] += cpu_seconds(repeats, decode_audio, path, mono=False, sha256="-")
        sums["check_song"] += cpu_seconds(repeats, check_song, song, paths, fetch=False)
    return {k: v / len(files) for k, v in sums.items()}


def _decode_only(path: str) -> float:
    """Pool job: decode one file to its end (what the machine's cores give a pure decode)."""
    return float(decode_audio(path, mono=False, sha256="-").duration_s)


def _decode_scaling(files: list[Path], n_songs: int, workers: int) -> float:
    """Songs per second decoding alone with ``workers`` spawned processes (pool start-up excluded:
    one warm-up round first)."""
    import multiprocessing as mp

    jobs = [str(files[i % len(files)]) for i in range(n_songs)]
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_decode_only, jobs[:workers])
        t0 = time.perf_counter()
        pool.map(_decode_only, jobs, chunksize=1)
        return n_songs / (time.perf_counter() - t0)


def bench_scaling(files: list[Path], paths: DataPaths, n_songs: int) -> dict[int, dict[str, float]]:
    songs = pd.DataFrame({"song_id": [f"s{i:03d}" for i in range(n_songs)], "duration_s": SECONDS,
                          "audio_path": [str(files[i % len(files)]) for i in range(n_songs)]})
    out = {}
    for workers in (1, 2):
        stamps: list[float] = []
        t0 = time.perf_counter()
        checks = run_audio_checks(songs, paths, fetch=False, workers=workers,
                                  on_row=lambda i, r, stamps=stamps: stamps.append(time.perf_counter()))
        assert (checks["status"] == "ok").all()
        stamps.sort()
        steady = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        out[workers] = {"songs_per_s": steady, "first_row_s": stamps[0] - t0, "wall_s": time.perf_counter() - t0,
                        "decode_songs_per_s": _decode_scaling(files, n_songs, workers)}
    return out


def bench_flamingo_prep(files: list[Path], repeats: int, tmp: Path) -> dict[str, float]:
    import torch
    from tiny_models import build_tiny_flamingo

    from sunorecsys.quality.flamingo import MusicFlamingoQualityScorer

    torch.set_num_threads(1)
    scorer = MusicFlamingoQualityScorer(str(build_tiny_flamingo(tmp / "tiny-af3", "audioflamingo3")), device="cpu")
    scorer.load()

    def before(path: Path) -> np.ndarray:  # the previous decode_audio(sample_rate=16000, mono=True)
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return soxr.resample(data.mean(axis=1, dtype=np.float32), rate, 16000, quality="HQ")

    def ours(path: Path) -> np.ndarray:
        return decode_audio(path, sample_rate=16000, mono=True, max_seconds=600, to_end=False).samples

    sums = {"before: decode + 16 kHz": 0.0, "ours: decode + 16 kHz": 0.0, "features (processor)": 0.0,
            "model's thread (to_model)": 0.0}
    for path in files:
        sums["before: decode + 16 kHz"] += cpu_seconds(repeats, before, path)
        sums["ours: decode + 16 kHz"] += cpu_seconds(repeats, ours, path)
        inputs = scorer.processor_inputs([ours(path)])
        sums["features (processor)"] += cpu_seconds(repeats, scorer.processor_inputs, [ours(path)])
        sums["model's thread (to_model)"] += cpu_seconds(repeats, scorer.to_model, inputs)
    return {k: v / len(files) for k, v in sums.items()}


def bench_flamingo_overlap(files: list[Path], tmp: Path, n_songs: int) -> dict[str, float]:
    """Wall seconds per song of Music Flamingo scoring with a tiny model on CPU: generation alone
    (inputs decoded beforehand), decode then generate one batch after the other (``score_batch``
    per batch, the previous loop), and ``score_songs``, which decodes the next batch in a thread
    while the current one generates. What the model waits for audio is the last minus the first."""
    import torch
    from tiny_models import build_tiny_flamingo

    from sunorecsys.quality.flamingo import MusicFlamingoQualityScorer

    torch.set_num_threads(1)
    scorer = MusicFlamingoQualityScorer(str(build_tiny_flamingo(tmp / "tiny-af3-overlap", "audioflamingo3")),
                                        device="cpu", batch_size=1)
    scorer.load()
    paths = DataPaths(tmp, extra_audio_roots=(files[0].parent,))
    songs = pd.DataFrame({"song_id": [f"f{i:03d}" for i in range(n_songs)],
                          "audio_path": [str(files[i % len(files)]) for i in range(n_songs)]})
    records = songs.to_dict("records")
    decoded = [scorer.decode_batch([r], paths) for r in records]
    scorer.generate_batch(decoded[0])  # warm-up: the first generate() pays one-off allocations
    t0 = time.perf_counter()
    for batch in decoded:
        scorer.generate_batch(batch)
    generate_only = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in records:
        scorer.score_batch([r], paths)
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer.score_songs(songs, cache_dir=None, progress=False, paths=paths)
    overlapped = time.perf_counter() - t0
    return {"generate alone": generate_only / n_songs, "decode then generate": serial / n_songs,
            "overlapped (score_songs)": overlapped / n_songs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=4, help="distinct 3-minute MP3s (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measure, median (default 3)")
    parser.add_argument("--scaling-songs", type=int, default=12, help="songs per worker-scaling run")
    parser.add_argument("--overlap-songs", type=int, default=8, help="songs of the decode/generate overlap run")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    tracks, source = real_tracks(args.songs)
    print(f"music: {source if tracks else 'SYNTHESISED songs (' + source + ')'}")
    files = make_mp3s(tracks, CACHE / "mp3-180s", args.songs)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = DataPaths(tmp, extra_audio_roots=(files[0].parent,))
        per = bench_per_song(files, paths, args.repeats)
        base = per["libsndfile decode"]
        print(f"\nper 3-minute 44.1 kHz stereo MP3, one core, CPU seconds (median of {args.repeats}, "
              f"mean over {len(files)} songs):")
        for name, seconds in per.items():
            print(f"  {name:<20} {seconds:6.3f} CPU-s = {SECONDS / seconds:6.0f}x real time "
                  f"({seconds / base:.2f}x the libsndfile decode)")
        verdict = "met" if SECONDS / per["check_song"] >= 200 else "MISSED"
        print(f"  signal check >= 200x real time per core: {verdict}")

        scaling = bench_scaling(files, paths, args.scaling_songs)
        one, two = scaling[1]["songs_per_s"], scaling[2]["songs_per_s"]
        print(f"\nrun_audio_checks, {args.scaling_songs} songs, steady-state throughput (first to last row):")
        for workers, figures in scaling.items():
            print(f"  {workers} worker(s): {figures['songs_per_s']:.2f} songs/s, first row after "
                  f"{figures['first_row_s']:.1f} s, wall {figures['wall_s']:.1f} s")
        verdict = "met" if two / one >= 1.8 else "MISSED (a shared, loaded machine cannot show it)"
        print(f"  2 workers vs 1: {two / one:.2f}x (target >= 1.8x: {verdict}); "
              f"{3600 * two:.0f} songs/hour with 2 workers")
        d1, d2 = scaling[1]["decode_songs_per_s"], scaling[2]["decode_songs_per_s"]
        print(f"  decode alone, same songs, pool of 1 / 2 processes: {d1:.2f} / {d2:.2f} songs/s = {d2 / d1:.2f}x "
              f"(what this machine's two cores give); the checks scale {two / one / (d2 / d1):.2f}x as well")

        prep = bench_flamingo_prep(files, args.repeats, tmp)
        before = prep["before: decode + 16 kHz"] + prep["features (processor)"]
        ours = prep["ours: decode + 16 kHz"] + prep["features (processor)"]
        print("\nMusic Flamingo CPU path outside the model, per 3-minute MP3 (CPU-s):")
        for name, seconds in prep.items():
            print(f"  {name:<26} {seconds:6.3f}")
        verdict = "met" if ours < 0.3 else "MISSED"
        print(f"  total before {before:.3f} s, ours {ours:.3f} s ({before / ours:.2f}x faster; "
              f"target < 0.3 s: {verdict})")
        on_model = prep["model's thread (to_model)"]
        print(f"  of which on the model's thread: {on_model:.4f} s (decode and features "
              "run in score_songs' prefetch thread)")

        overlap = bench_flamingo_overlap(files, tmp, args.overlap_songs)
        print(f"\nMusic Flamingo scoring, tiny model on CPU, {args.overlap_songs} songs, batch 1, wall s per song:")
        for name, seconds in overlap.items():
            print(f"  {name:<26} {seconds:6.3f}")
        waits = (overlap["decode then generate"] - overlap["generate alone"],
                 overlap["overlapped (score_songs)"] - overlap["generate alone"])
        print(f"  the model waits for audio {waits[0]:.3f} s per song decoding in line, {waits[1]:.3f} s "
              f"with the next batch decoded in a thread")
    print(f"\nmachine at the end: load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
