"""Signal checks: detection on REAL music (Debian packages), speed as multiples of real time.

Run alone: ``.venv/bin/python bench/scoring_signal.py [--real-only] [--seconds 180]``.
bench/scoring.py imports :func:`bench_synth_song`, :func:`bench_sample_catalogue` and
:func:`format_report`.

Real set (bench/real_audio.py): excerpts of recordings from Debian's music packages, fetched with
apt at run time, damaged with known parameters and split by track into a ``tune`` half (the
thresholds in sunorecsys/audio/checks.py were set on it) and a ``report`` half. On the report half
this prints the ROC AUC of ``quality_score`` (clean vs damaged), the hard-fail detection rate per
damage type and the false-alarm rate on clean excerpts, for this branch's checks and, in the same
run, for the checks of the ``main`` branch (the baseline, run from ``git archive main`` in a
subprocess), plus decoding alone. Targets: AUC >= 0.97, false alarms <= 5 %, every damage >= 90 %.
An excerpt of a source that already carries a defect of its own (a native DC offset of >= 2 %,
``native_defect`` in the truth) holds two defects: it counts in the AUC as damaged but is left out
of its added damage type's detection rate (the line says how many were left out), since it is
expected to hard-fail whatever was added (a 64 kbps encode of it included).

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
            from sunorecsys.sample.catalogue import generate_sample_catalogue

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


# --- the real set --------------------------------------------------------------------------------------

def _score_rows(truth: pd.DataFrame, set_root: Path, workers: int) -> pd.DataFrame:
    """audio_checks rows for the set's songs through the public path (run_audio_checks -> check_song)."""
    songs = truth[["song_id", "duration_s"]].copy()
    return run_audio_checks(songs, DataPaths(set_root), workers=workers, fetch=False)


def _baseline_rows(truth: pd.DataFrame, set_root: Path, ref: str, workers: int) -> tuple[pd.DataFrame, str]:
    """The same rows scored by the checks of git ``ref`` (its sunorecsys package, in a subprocess)."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", ref, "sunorecsys"], cwd=repo, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        songs_path, out_path = Path(tmp) / "songs.parquet", Path(tmp) / "checks.parquet"
        truth[["song_id", "duration_s"]].to_parquet(songs_path)
        code = ("import sys, pandas as pd; from sunorecsys.audio.checks import run_audio_checks; "
                "from sunorecsys.paths import DataPaths; from pathlib import Path; "
                "songs = pd.read_parquet(sys.argv[1]); "
                "run_audio_checks(songs, DataPaths(Path(sys.argv[2])), workers=int(sys.argv[4]), fetch=False)"
                "[['song_id', 'technical_score', 'hard_fail', 'hard_fail_reasons', 'status']].to_parquet(sys.argv[3])")
        env = dict(os.environ, PYTHONPATH=tmp)
        subprocess.run([sys.executable, "-c", code, str(songs_path), str(set_root), str(out_path), str(workers)],
                       env=env, cwd=tmp, check=True, stderr=subprocess.DEVNULL)
        return pd.read_parquet(out_path), commit


def detection_figures(truth: pd.DataFrame, checks: pd.DataFrame) -> dict:
    """AUC of quality_score, hard-fail detection per damage type, false alarms on clean, low-bitrate pairs."""
    from sklearn.metrics import roc_auc_score

    from sunorecsys.quality.blend import combine_quality_scores

    quality = combine_quality_scores(audio_checks=checks[["song_id", "technical_score", "hard_fail", "status"]])
    frame = truth.merge(quality[["song_id", "quality_score"]], on="song_id").merge(
        checks[["song_id", "hard_fail", "hard_fail_reasons", "technical_score"]], on="song_id")
    labels = frame["damage"].notna().astype(int)
    out: dict = {"songs": len(frame), "clean": int((labels == 0).sum()), "damaged": int(labels.sum()),
                 "tracks": int(frame["track_id"].nunique())}
    out["auc"] = float(roc_auc_score(labels, 1.0 - frame["quality_score"].fillna(0.0)))
    clean = frame[labels == 0]
    out["false_alarms"] = int(clean["hard_fail"].sum())
    out["false_alarm_rate"] = float(clean["hard_fail"].mean())
    out["false_alarm_songs"] = [f"{r.song_id} ({', '.join(r.hard_fail_reasons)})"
                                for r in clean[clean["hard_fail"]].itertuples()]
    per_type = {}
    for kind, all_of_kind in frame[labels == 1].groupby("damage"):
        # An excerpt of a source with its own defect (a native DC offset) carries two defects: it
        # counts for neither type's rate (it is expected to hard-fail whatever was added).
        twice = all_of_kind["twin"].notna() & all_of_kind.get("native_defect", pd.Series(None, index=all_of_kind.index)).notna()
        group = all_of_kind[~twice]
        entry = {"n": len(group), "tracks": int(group["track_id"].nunique()), "native_left_out": int(twice.sum()),
                 "hard_fail_rate": float(group["hard_fail"].mean())}
        twins = group.merge(frame[["song_id", "quality_score"]].rename(
            columns={"song_id": "twin", "quality_score": "twin_score"}), on="twin", how="inner")
        if len(twins):
            entry["below_twin_rate"] = float((twins["quality_score"] < twins["twin_score"]).mean())
        entry["missed"] = list(group.loc[~group["hard_fail"], "song_id"])
        per_type[kind] = entry
    out["per_type"] = per_type
    return out


def bench_real_set(set_root: Path | None = None, workers: int = 1, baseline_ref: str | None = "main",
                   halves: tuple[str, ...] = ("report",)) -> dict:
    """Build (or reuse) the real calibration set and score it now and with ``baseline_ref``'s checks."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from real_audio import DEFAULT_CACHE, SetSpec, build_calibration_set

    set_root = Path(set_root) if set_root else DEFAULT_CACHE.parent / "calib-set"
    spec = SetSpec()
    start = time.perf_counter()
    truth = build_calibration_set(set_root, spec)
    result: dict = {"set_root": str(set_root), "spec_key": spec.key(), "seed": spec.seed,
                    "build_s": time.perf_counter() - start, "halves": {}}
    for half in halves:
        part = truth[truth["half"] == half].reset_index(drop=True)
        audio_s = float(part["duration_s"].sum())
        start = time.perf_counter()
        for song_id in part["song_id"]:
            path = next((set_root / "audio").glob(f"{song_id}.*"))
            decode_audio(path, mono=False)
        t_decode = time.perf_counter() - start
        start = time.perf_counter()
        checks = _score_rows(part, set_root, workers)
        t_checks = time.perf_counter() - start
        entry = {"figures": detection_figures(part, checks), "audio_s": audio_s, "decode_s": t_decode,
                 "checks_s": t_checks, "packages": sorted(part["package"].unique())}
        if baseline_ref:
            start = time.perf_counter()
            base, commit = _baseline_rows(part, set_root, baseline_ref, workers)
            entry["baseline_s"] = time.perf_counter() - start
            entry["baseline"] = detection_figures(part, base)
            entry["baseline_commit"] = f"{baseline_ref} @ {commit}"
        result["halves"][half] = entry
    return result


def bench_band_limited_copies(set_root: Path | None = None, half: str = "tune", copies: int = 2) -> dict:
    """Band-limit detection on every track of ``half`` (:func:`real_audio.band_limited_copies`),
    scored through ``check_song``: how many are hard-failed as band-limited, and the misses."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from real_audio import DEFAULT_CACHE, SetSpec, band_limited_copies, build_calibration_set

    set_root = Path(set_root) if set_root else DEFAULT_CACHE.parent / "calib-set"
    truth = build_calibration_set(set_root, SetSpec())
    copies_frame = band_limited_copies(truth, set_root, half=half, copies=copies)
    paths = DataPaths(set_root, extra_audio_roots=(Path(copies_frame["path"].iloc[0]).parent,))
    caught, missed = 0, []
    for row in copies_frame.itertuples():
        out = check_song({"song_id": row.song_id, "audio_path": row.path}, paths, fetch=False)
        if "band_limited" in (out["hard_fail_reasons"] or []):
            caught += 1
        else:
            missed.append(f"{row.song_id} {row.params} (bandwidth {out['bandwidth_hz']})")
    return {"half": half, "n": len(copies_frame), "tracks": int(copies_frame["track_id"].nunique()),
            "caught": caught, "missed": missed}


def machine() -> str:
    """One line about the machine (CPU, cores, load): the figures are from a machine shared with others."""
    import platform

    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load} (shared with other jobs: times are indicative, ratios are same-run)")


def format_real_report(real: dict) -> str:
    lines = [(f"real set: {real['set_root']} (spec {real['spec_key']}, seed {real['seed']}; thresholds were set on "
             f"the 'tune' half, figures below on the held-apart half(s))")]
    for half, entry in real["halves"].items():
        fig = entry["figures"]
        lines.append(f"[{half} half] {fig['songs']} excerpts of 30 s from {fig['tracks']} tracks "
                     f"({fig['clean']} clean, {fig['damaged']} damaged); packages: {', '.join(entry['packages'])}")
        rows = [("this branch", fig)] + ([(f"baseline {entry['baseline_commit']}", entry["baseline"])]
                                         if "baseline" in entry else [])
        for name, f in rows:
            lines.append(f"  {name:<28} ROC AUC {f['auc']:.3f} (target >= 0.97)   false alarms "
                         f"{f['false_alarms']}/{f['clean']} = {f['false_alarm_rate']:.1%} (target <= 5 %)")
        kinds = sorted(fig["per_type"])
        lines.append("  hard-fail detection per damage type (target >= 90 %; low_bitrate: must NOT hard-fail, "
                     "must score below its 192 kbps twin):")
        for kind in kinds:
            cur = fig["per_type"][kind]
            base = entry.get("baseline", {}).get("per_type", {}).get(kind)
            twin = f", below twin {cur['below_twin_rate']:.0%}" if "below_twin_rate" in cur else ""
            btxt = f"   baseline {base['hard_fail_rate']:.0%}" if base else ""
            native = (f" ({cur['native_left_out']} more on sources with a native defect left out)"
                      if cur.get("native_left_out") else "")
            lines.append(f"    {kind:<14} n={cur['n']:<3} tracks={cur['tracks']:<3} hard-failed "
                         f"{cur['hard_fail_rate']:.0%}{twin}{btxt}{native}")
        if fig["false_alarm_songs"]:
            lines.append("  false alarms: " + "; ".join(fig["false_alarm_songs"]))
        per_song = entry["checks_s"] / max(fig["songs"], 1)
        lines.append(f"  time: whole checks {entry['checks_s']:.1f} s ({per_song:.2f} s per excerpt), decode alone "
                     f"{entry['decode_s']:.1f} s -> checks cost {entry['checks_s'] / max(entry['decode_s'], 1e-9):.1f}x "
                     f"decoding" + (f"; baseline checks {entry['baseline_s']:.1f} s" if "baseline_s" in entry else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the synthesised song")
    parser.add_argument("--format", default="mp3", choices=["mp3", "flac", "wav", "ogg"])
    parser.add_argument("--data-root", default=None, help="an existing sample data root (default: generate)")
    parser.add_argument("--skip-sample", action="store_true", help="only the synthesised song")
    parser.add_argument("--real-only", action="store_true", help="only the real calibration set")
    parser.add_argument("--set-root", default=None, help="where the real set is built (default: the cache)")
    parser.add_argument("--halves", default="report", help="comma-separated: report,tune")
    parser.add_argument("--baseline", default="main", help="git ref whose checks are the baseline ('' = none)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--band-limited-copies", default="", metavar="HALF",
                        help="also band-limit every clean excerpt of HALF twice more and report the detection")
    args = parser.parse_args(argv)
    print(machine())
    real = bench_real_set(args.set_root, workers=args.workers, baseline_ref=args.baseline or None,
                          halves=tuple(h for h in args.halves.split(",") if h))
    print(format_real_report(real))
    if args.band_limited_copies:
        extra = bench_band_limited_copies(args.set_root, half=args.band_limited_copies)
        print(f"[{extra['half']} half, every track band-limited twice more] {extra['caught']}/{extra['n']} "
              f"hard-failed as band-limited ({extra['tracks']} tracks)"
              + ("; misses: " + "; ".join(extra["missed"]) if extra["half"] == "tune" and extra["missed"] else ""))
    if args.real_only:
        return 0
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
