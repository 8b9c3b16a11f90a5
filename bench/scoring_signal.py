"""Signal checks: speed as multiples of real time (one core) and damage separation (ranking AUC).

Run alone: ``.venv/bin/python bench/scoring_signal.py [--data-root DIR] [--seconds 180]``.
bench/scoring.py imports :func:`bench_synth_song`, :func:`bench_sample_catalogue` and
:func:`format_report`.

Target: >= 50x real time on one core for a 3-minute 44.1 kHz stereo song (decode + every measure
+ score). Baseline named in the output, measured in the same run: decoding alone (soundfile), and
pyloudnorm's integrated loudness alone (the single most expensive textbook measure), so the cost
of the whole check reads as a ratio against them.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one core, set before numpy/scipy start their thread pools
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sunorecsys.audio.checks import check_song, run_audio_checks
from sunorecsys.audio.decode import decode_audio, resample
from sunorecsys.audio.measures import integrated_loudness, signal_measures
from sunorecsys.audio.synth import synth_song
from sunorecsys.paths import DataPaths


def _one_core():
    """Limit BLAS/OpenMP pools to one thread when threadpoolctl is there (it ships with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - env vars set in __main__ still apply
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_synth_song(seconds: float = 180.0, sample_rate: int = 44100, fmt: str = "mp3",
                     repeats: int = 3) -> dict:
    """Time the check of one synthesised stereo song written as ``fmt`` (Suno ships MP3).

    Returns seconds and real-time multiples (audio seconds / wall seconds, one core) for: the whole
    per-song check (resolve + decode + measures + score), the measures alone, decoding alone and
    pyloudnorm loudness alone (baselines), plus the ratio of the whole check to each baseline.
    """
    with tempfile.TemporaryDirectory() as tmp, _one_core():
        paths = DataPaths(Path(tmp))
        paths.audio_dir.mkdir(parents=True)
        path = paths.audio_dir / f"bench-song.{fmt}"
        sf.write(path, synth_song(seconds, sample_rate, channels=2, seed=11), sample_rate)
        song = {"song_id": "bench-song", "duration_s": seconds}
        decoded = decode_audio(path, mono=False)
        audio_s = decoded.duration_s
        t_check = _best_of(lambda: check_song(song, paths, fetch=False), repeats)
        t_measures = _best_of(lambda: signal_measures(decoded.samples, decoded.sample_rate), repeats)
        t_decode = _best_of(lambda: decode_audio(path, mono=False), repeats)
        t_loudness = _best_of(lambda: integrated_loudness(decoded.samples, decoded.sample_rate), repeats)
        # The road not taken: loudness on a 22.05 kHz copy (cheaper, but not the file's BS.1770 value).
        half = resample(decoded.samples, decoded.sample_rate, decoded.sample_rate // 2, quality="LQ")
        t_half = _best_of(lambda: (resample(decoded.samples, decoded.sample_rate, decoded.sample_rate // 2,
                                            quality="LQ"), integrated_loudness(half, decoded.sample_rate // 2)),
                          repeats)
        lufs_full = integrated_loudness(decoded.samples, decoded.sample_rate)
        lufs_half = integrated_loudness(half, decoded.sample_rate // 2)
    return {
        "audio_seconds": audio_s, "format": fmt, "sample_rate": sample_rate, "channels": 2,
        "check_s": t_check, "measures_s": t_measures, "decode_s": t_decode, "loudness_s": t_loudness,
        "check_x_realtime": audio_s / t_check, "measures_x_realtime": audio_s / t_measures,
        "decode_x_realtime": audio_s / t_decode, "loudness_x_realtime": audio_s / t_loudness,
        "check_vs_decode": t_check / t_decode, "check_vs_loudness": t_check / t_loudness,
        "target_x_realtime": 50.0,
        "loudness_half_rate_s": t_half, "loudness_half_rate_error_lu": abs(lufs_half - lufs_full),
    }


def damage_labels(ground_truth_path: Path, song_ids) -> np.ndarray:
    """1 for songs the generator damaged (any damage), 0 for clean ones, in ``song_ids`` order."""
    truth = json.loads(Path(ground_truth_path).read_text(encoding="utf-8"))
    return np.array([1 if (truth.get(s) or {}).get("damage") else 0 for s in song_ids], dtype=int)


def separation_auc(checks: pd.DataFrame, ground_truth_path: Path) -> float:
    """ROC AUC of ``1 - technical_score`` as a detector of damaged songs (1.0 = perfect ranking)."""
    from sklearn.metrics import roc_auc_score

    labels = damage_labels(ground_truth_path, checks["song_id"])
    return float(roc_auc_score(labels, 1.0 - checks["technical_score"].to_numpy(dtype=float)))


def _sample_songs(paths: DataPaths) -> pd.DataFrame:
    from sunorecsys.catalog.ingest import read_catalogue

    return read_catalogue(paths.raw_dir).songs


def bench_sample_catalogue(data_root: str | os.PathLike | None = None, workers: int = 1) -> dict:
    """Run the checks over the sample catalogue (generated in a temporary folder when ``data_root``
    is None) and return speed (real-time multiple over all decodable audio) and the AUC.
    """
    with contextlib.ExitStack() as stack:
        if data_root is None:
            from sunorecsys.catalog.sample import generate_sample_catalogue

            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            generate_sample_catalogue(tmp)
            data_root = tmp
        paths = DataPaths(Path(data_root))
        songs = _sample_songs(paths)
        stack.enter_context(_one_core())
        start = time.perf_counter()
        checks = run_audio_checks(songs, paths, workers=workers, fetch=False)
        wall = time.perf_counter() - start
        audio_s = float(checks["duration_s"].fillna(0).sum())
        result = {
            "songs": len(checks), "ok": int((checks["status"] == "ok").sum()),
            "hard_fail": int(checks["hard_fail"].sum()), "audio_seconds": audio_s, "wall_s": wall,
            "x_realtime": audio_s / wall if wall > 0 else float("inf"), "workers": workers,
            "statuses": checks["status"].value_counts().to_dict(),
        }
        if paths.sample_ground_truth.exists():
            result["auc"] = separation_auc(checks, paths.sample_ground_truth)
            labels = damage_labels(paths.sample_ground_truth, checks["song_id"])
            result["damaged"] = int(labels.sum())
        return result


def format_report(synth: dict | None, sample: dict | None) -> str:
    """The figures as printable lines."""
    lines = []
    if synth:
        lines += [
            (f"signal checks, synthesised {synth['audio_seconds']:.0f} s {synth['sample_rate']} Hz stereo "
             f"{synth['format']}, one core (best of runs):"),
            (f"  whole check   {synth['check_s']:.3f} s = {synth['check_x_realtime']:.0f}x real time "
             f"(target >= {synth['target_x_realtime']:.0f}x: {'met' if synth['check_x_realtime'] >= 50 else 'MISSED'})"),
            f"  measures only {synth['measures_s']:.3f} s = {synth['measures_x_realtime']:.0f}x real time",
            (f"  baseline decode only           {synth['decode_s']:.3f} s = {synth['decode_x_realtime']:.0f}x "
             f"(whole check costs {synth['check_vs_decode']:.1f}x decoding)"),
            (f"  baseline pyloudnorm loudness   {synth['loudness_s']:.3f} s = {synth['loudness_x_realtime']:.0f}x "
             f"(whole check costs {synth['check_vs_loudness']:.1f}x loudness alone)"),
            (f"  not used: loudness on a half-rate copy {synth['loudness_half_rate_s']:.3f} s, "
             f"off by {synth['loudness_half_rate_error_lu']:.2f} LU"),
        ]
    if sample:
        lines += [
            (f"signal checks, sample catalogue: {sample['songs']} songs ({sample.get('damaged', '?')} damaged), "
             f"{sample['audio_seconds']:.0f} s of audio in {sample['wall_s']:.2f} s = {sample['x_realtime']:.0f}x "
             f"real time, workers={sample['workers']}"),
            f"  statuses {sample['statuses']}; hard fails {sample['hard_fail']}",
        ]
        if "auc" in sample:
            lines.append(f"  damage separation: ROC AUC {sample['auc']:.4f} (technical_score lower = damaged; "
                         f"target >= 0.95)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the synthesised song")
    parser.add_argument("--format", default="mp3", choices=["mp3", "flac", "wav", "ogg"])
    parser.add_argument("--data-root", default=None, help="an existing sample data root (default: generate)")
    parser.add_argument("--skip-sample", action="store_true", help="only the synthesised song")
    args = parser.parse_args(argv)
    synth = bench_synth_song(args.seconds, fmt=args.format)
    sample = None
    if not args.skip_sample:
        try:
            sample = bench_sample_catalogue(args.data_root)
        except ImportError as exc:  # the catalogue generator lives in another area
            print(f"sample catalogue skipped: {exc}")
    print(format_report(synth, sample))
    return 0


if __name__ == "__main__":
    sys.exit(main())
