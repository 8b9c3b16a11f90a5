"""Spam filter benchmark (prints figures and ratios against baselines measured in the same run).

1. Sample cohort: precision/recall per reason on ``generate_sample_catalogue(spam_cohort=True)`` and
   the number of flags on the clean default sample (target 0).
2. Real recordings (Debian ``wesnoth-1.16-music``, fetched with apt-get download + dpkg-deb -x):
   copies made by MP3 64 kbps, +-3 dB, a 5 s trim and all three; thresholds are judged on the even
   tracks (calibration) and reported on the odd ones.
3. Fingerprinting speed, x real time per core, against decoding alone.
4. Scale: all duplicates among ``--songs`` fingerprints built from the real fingerprints (windows of
   real tracks at random offsets, each song with its own permutation of Chromaprint's 16 two-bit
   classifiers), with planted copies (trimmed by a whole or fractional hop, bits flipped at the rate
   measured on real MP3+trim copies); baseline: brute-force pairwise alignment on a subset, extrapolated.
"""

from __future__ import annotations

import argparse
import io
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sunorecsys.sample.spam_cohort import MP3_64K_LEVEL
from sunorecsys.spam.fingerprints import align, fingerprint_pcm
from sunorecsys.spam.index import (
    MAX_BIT_ERROR_RATE,
    Postings,
    candidate_pairs,
    verify_pairs,
)

DEB = "wesnoth-1.16-music"
VARIANTS = ("mp3_64k", "gain_plus_3db", "gain_minus_3db", "trim_5s", "all_three")


def fetch_real_tracks(cache: Path) -> list[Path]:
    root = cache / "extract"
    if not root.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", DEB], cwd=cache, check=True, capture_output=True)
        deb = next(cache.glob(f"{DEB}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return sorted(p for p in root.rglob("*.ogg") if sf.info(str(p)).duration >= 40)


def variant(audio: np.ndarray, sr: int, name: str) -> np.ndarray:
    if name in ("trim_5s", "all_three"):
        audio = audio[5 * sr:]
    if name == "gain_plus_3db":
        audio = audio * 10 ** (3 / 20)
    if name in ("gain_minus_3db", "all_three"):
        audio = audio * 10 ** (-3 / 20)
    audio = np.clip(audio, -1, 1).astype(np.float32)
    if name in ("mp3_64k", "all_three"):
        buffer = io.BytesIO()
        sf.write(buffer, audio, sr, format="MP3", compression_level=MP3_64K_LEVEL, bitrate_mode="CONSTANT")
        buffer.seek(0)
        audio = sf.read(buffer, dtype="float32", always_2d=True)[0]
    return audio


def real_recordings(cache: Path) -> tuple[list[np.ndarray], float]:
    tracks = fetch_real_tracks(cache)
    print(f"real recordings: {len(tracks)} tracks of {DEB} (>= 40 s)")
    prints, ber = [], {v: [] for v in VARIANTS}
    decode_s = fp_s = audio_s = 0.0
    found = {v: [0, 0] for v in VARIANTS}
    for i, path in enumerate(tracks):
        t = time.perf_counter()
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = audio[: 125 * sr]
        decode_s += time.perf_counter() - t
        t = time.perf_counter()
        a = fingerprint_pcm(audio, sr)
        fp_s += time.perf_counter() - t
        audio_s += len(audio) / sr
        prints.append(a)
        if i % 2 == 0:
            continue  # calibration half: used only to choose thresholds (see sunorecsys.spam.index)
        for name in VARIANTS:
            b = fingerprint_pcm(variant(audio, sr, name), sr)
            al = align(a, b, range(-60, 61))
            ber[name].append(al.bit_error_rate)
            cands = candidate_pairs(Postings.from_fingerprints([a, b]))
            ok = len(verify_pairs(cands, lambda r, a=a, b=b: (a, b)[r])) == 1
            found[name][0] += ok
            found[name][1] += 1
    cross = [align(prints[i], prints[j], range(-40, 41)).bit_error_rate
             for i in range(1, len(prints), 2) for j in range(i + 2, len(prints), 2)][:200]
    print("  variant            found by the index   bit error rate at best offset (mean / max)")
    for name in VARIANTS:
        print(f"  {name:18s} {found[name][0]:3d}/{found[name][1]:<3d}                "
              f"{np.mean(ber[name]):.3f} / {np.max(ber[name]):.3f}")
    print(f"  different recordings: min bit error rate {min(cross):.3f} over {len(cross)} pairs "
          f"(threshold {MAX_BIT_ERROR_RATE})")
    per_core = audio_s / fp_s
    print(f"speed (1 thread, shared machine): decode {audio_s / decode_s:.0f}x real time, fingerprint from PCM "
          f"{per_core:.0f}x real time per core; decode+fingerprint {audio_s / (decode_s + fp_s):.0f}x "
          f"(ratio to decode alone {(decode_s + fp_s) / decode_s:.2f})")
    all_three = float(np.mean(ber["all_three"]))
    return prints, all_three


def synthetic_catalogue(pool: list[np.ndarray], n: int, length: int, rng: np.random.Generator
                        ) -> np.ndarray:
    """``n`` fingerprints of ``length`` words: real windows, each with a random classifier permutation."""
    flat = np.concatenate(pool)
    out = np.empty((n, length), np.uint32)
    chunk = 20000
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        starts = rng.integers(0, len(flat) - length, size=m)
        windows = flat[starts[:, None] + np.arange(length)]
        perm = np.argsort(rng.random((m, 16)), axis=1)  # which classifier goes to which 2-bit field
        fields = (windows[:, :, None] >> (2 * np.arange(16, dtype=np.uint32))) & np.uint32(3)
        shuffled = np.take_along_axis(fields, perm[:, None, :], axis=2)
        out[s:s + m] = (shuffled << (2 * np.arange(16, dtype=np.uint32))).sum(axis=2, dtype=np.uint64).astype(np.uint32)
    return out


def scale(pool: list[np.ndarray], n: int, ber: float, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    length = 970  # 120 s
    t = time.perf_counter()
    songs = synthetic_catalogue(pool, n, length, rng)
    n_planted = max(10, n // 100)
    src = rng.choice(n, size=n_planted, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), size=n_planted, replace=False)
    trim = 40
    for s, d in zip(src, dst):
        copy = np.empty(length, np.uint32)
        copy[: length - trim] = songs[s, trim:]
        copy[length - trim:] = rng.integers(0, 2**32, size=trim, dtype=np.uint64).astype(np.uint32)
        flips = rng.random((length, 32)) < ber
        copy ^= (flips * (1 << np.arange(32, dtype=np.uint64))).sum(axis=1).astype(np.uint32)
        songs[d] = copy
    made = time.perf_counter() - t
    t = time.perf_counter()
    postings = Postings.from_fingerprints(songs)
    cands = candidate_pairs(postings)
    verified = verify_pairs(cands, lambda r: songs[r])
    took = time.perf_counter() - t
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    truth = {frozenset((int(a), int(b))) for a, b in zip(src, dst)}
    got = {frozenset((int(a), int(b))) for a, b in zip(verified["song_a"], verified["song_b"])}
    print(f"scale: {n:,} songs of 120 s ({n_planted:,} planted copies: 5 s trim, {ber:.3f} bit flips); "
          f"built in {made:.0f} s")
    print(f"  index + candidates + verification: {took:.1f} s, {len(postings.keys):,} postings, "
          f"{len(cands):,} candidates, recall {len(truth & got) / len(truth):.3f}, "
          f"{len(got - truth)} other pairs; peak RSS {peak_gb:.2f} GB")
    m = 300
    t = time.perf_counter()
    for i in range(m):
        for j in range(i + 1, m):
            align(songs[i], songs[j], range(-60, 61))
    per_pair = (time.perf_counter() - t) / (m * (m - 1) / 2)
    brute = per_pair * n * (n - 1) / 2
    print(f"  baseline brute force (align every pair, +-60 words): {per_pair * 1e3:.2f} ms/pair -> "
          f"{brute / 3600:.0f} h for {n:,} songs; index is {brute / took:.0f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=1_000_000)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "sunorecsys-bench-debs"))
    parser.add_argument("--skip-sample", action="store_true")
    args = parser.parse_args()
    print("machine: shared by several processes (2 cores); figures are ratios against same-run baselines")
    if not args.skip_sample:
        sample_scores()
    pool, ber = real_recordings(Path(args.cache))
    scale(pool, args.songs, ber=max(ber, 0.05))


def sample_scores() -> None:
    import json

    from sunorecsys.catalog.ingest import read_catalogue
    from sunorecsys.paths import DataPaths
    from sunorecsys.sample.catalogue import generate_sample_catalogue
    from sunorecsys.spam.flags import REASONS
    from sunorecsys.spam.stage import run_spam_filter

    tmp = Path(tempfile.mkdtemp(prefix="spam-bench-"))
    try:
        for cohort in (False, True):
            paths = DataPaths(tmp / ("cohort" if cohort else "clean"))
            generate_sample_catalogue(paths.root, spam_cohort=cohort)
            songs = read_catalogue([paths.raw_dir / "all_songs.json"]).songs
            t = time.perf_counter()
            run = run_spam_filter(songs, paths, workers=2)
            took = time.perf_counter() - t
            if not cohort:
                print(f"clean sample: {int(run.flags['flagged'].sum())} of {len(songs)} songs flagged ({took:.0f} s)")
                continue
            truth = json.loads(paths.sample_ground_truth.read_text())
            flags = dict(zip(run.flags["song_id"], run.flags["reasons"]))
            print(f"spam cohort ({len(songs)} songs, {took:.0f} s):")
            for reason in REASONS:
                want = {s for s, t in truth.items() if reason in t.get("spam", [])}
                got = {s for s, rs in flags.items() if reason in rs}
                print(f"  {reason:17s} precision {len(want & got) / max(len(got), 1):.2f} "
                      f"recall {len(want & got) / max(len(want), 1):.2f} ({len(want)} in truth)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
