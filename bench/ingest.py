"""Catalogue ingest at scale: 1,000,000 raw Suno records, ours vs a plain pandas.json_normalize.

Generates a raw catalogue (metadata only, records shaped and sized like the sample catalogue's,
with 0.1 % bad records and duplicates mixed in) in a temporary folder, then runs each measurement
in its own child process and reads that child's peak RSS from ``os.wait4``:

- ours: ``read_catalogue`` (stream-parse, validate, normalise, de-duplicate; big files on 2 worker
  processes) + ``write_songs`` (Parquet, atomic); peak memory counts the workers too;
- baseline: ``json.load`` of the same file + ``pandas.json_normalize`` (no validation at all).

Targets: 1 M songs in under 60 s with under 4 GB peak on 2 cores, and not slower than the baseline.

    python bench/ingest.py [--records 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 60.0
TARGET_PEAK_GB = 4.0


def generate_catalogue(path: Path, n_records: int, seed: int = 7) -> dict:
    """Write ``n_records`` raw Suno records as one JSON list (one record per line, like a pretty dump)."""
    from datetime import datetime, timedelta

    import numpy as np

    from sunorecsys.sample.catalogue import _make_records

    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    base, _, _ = _make_records(rng, 2000, start, 300, damaged={})
    offsets = np.sort(rng.uniform(0, 300 * 86400.0, size=n_records))
    plays = np.floor(40 * rng.pareto(1.1, size=n_records)).astype(np.int64)
    bad = rng.random(n_records) < 0.001
    kinds = rng.integers(0, 4, size=n_records)
    written = {"records": n_records, "bad": int(bad.sum())}
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        previous_id = "first"
        for i in range(n_records):
            record = dict(base[i % len(base)])
            song_id = f"{i:08x}-{(i * 2654435761) % 16**4:04x}-4{i % 4096:03x}-a{(i * 7) % 4096:03x}-{i * 31:012x}"[:36]
            created = start + timedelta(seconds=float(offsets[i]))
            record["id"] = song_id
            record["audio_url"] = f"https://cdn1.suno.ai/{song_id}.mp3"
            record["video_url"] = f"https://cdn1.suno.ai/{song_id}.mp4"
            record["image_url"] = f"https://cdn2.suno.ai/image_{song_id}.jpeg"
            record["created_at"] = created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"
            record["play_count"] = int(plays[i])
            if bad[i]:
                if kinds[i] == 0:
                    record["id"] = f"../../etc/{i}"
                elif kinds[i] == 1:
                    record["created_at"] = "not a date"
                elif kinds[i] == 2:
                    record["metadata"] = dict(record["metadata"], duration=-1.0)
                else:
                    record["id"] = previous_id  # the same song again (a re-fetch): a duplicate
            previous_id = record["id"]
            fh.write(json.dumps(record, ensure_ascii=False))
            fh.write(",\n" if i < n_records - 1 else "\n")
        fh.write("]\n")
    written["bytes"] = path.stat().st_size
    return written


def measure_ours(path: Path, out_dir: Path) -> dict:
    from sunorecsys.catalog.ingest import read_catalogue, write_songs
    from sunorecsys.paths import DataPaths

    t0 = time.perf_counter()
    result = read_catalogue(path)
    t1 = time.perf_counter()
    write_songs(result, DataPaths(out_dir))
    t2 = time.perf_counter()
    import resource

    # Worker processes (grandchildren of the bench) are not in the parent's wait4 figure: take the
    # largest one here; total peak <= main + workers x largest worker.
    worker_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    return {"read_s": t1 - t0, "write_s": t2 - t1, "seconds": t2 - t0, "songs": len(result.songs),
            "rejected": len(result.rejected), "duplicates": result.duplicates, "worker_gb": worker_gb,
            "workers": min(2, os.cpu_count() or 1)}


def measure_pandas(path: Path) -> dict:
    import pandas as pd

    t0 = time.perf_counter()
    with path.open("r", encoding="utf-8") as fh:
        records = json.load(fh)
    frame = pd.json_normalize(records)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "songs": len(frame), "columns": frame.shape[1]}


def run_child(mode: str, path: Path, out_dir: Path) -> tuple[dict, float]:
    """Run one measurement in a child process; returns (its figures, its peak RSS in GB)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, str(path), str(out_dir)],
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} measurement failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024 ** 2  # KiB -> GiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", default=None, help="generate into this folder and keep it")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, file, out = args.child
        figures = measure_ours(Path(file), Path(out)) if mode == "ours" else measure_pandas(Path(file))
        print(json.dumps(figures))
        return 0

    tmp = tempfile.TemporaryDirectory(prefix="sunorecsys-bench-ingest-") if args.keep is None else None
    work = Path(args.keep or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    catalogue = work / "all_songs.json"
    t0 = time.perf_counter()
    info = generate_catalogue(catalogue, args.records)
    print(f"generated {info['records']:,} records ({info['bad']} bad) = {info['bytes'] / 1e9:.2f} GB "
          f"in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPUs")
    ours, ours_gb = run_child("ours", catalogue, work / "out")
    base, base_gb = run_child("pandas", catalogue, work / "out")
    rate = ours["songs"] / ours["seconds"]
    ours_total_gb = ours_gb + ours["workers"] * ours["worker_gb"]
    print(f"ours    : {ours['seconds']:6.1f} s (read+validate {ours['read_s']:.1f} s, Parquet {ours['write_s']:.1f} s) "
          f"{rate:,.0f} songs/s; {ours['songs']:,} songs, {ours['rejected']} rejected, {ours['duplicates']} duplicates\n"
          f"          peak {ours_gb:.2f} GB main + {ours['workers']} workers x {ours['worker_gb']:.2f} GB "
          f"= at most {ours_total_gb:.2f} GB")
    print(f"baseline: {base['seconds']:6.1f} s (json.load + pandas.json_normalize, no validation) "
          f"{base['songs'] / base['seconds']:,.0f} rows/s, peak {base_gb:.2f} GB")
    print(f"ratio   : baseline/ours time = {base['seconds'] / ours['seconds']:.2f}x, "
          f"baseline/ours peak memory = {base_gb / ours_total_gb:.2f}x (ours counted with its workers)")
    ok_time = ours["seconds"] < TARGET_SECONDS * args.records / 1_000_000
    ok_mem = ours_total_gb < TARGET_PEAK_GB
    ok_base = ours["seconds"] <= base["seconds"]
    print(f"targets : < {TARGET_SECONDS:.0f} s per 1 M songs: {'met' if ok_time else 'MISSED'}; "
          f"< {TARGET_PEAK_GB:.0f} GB peak: {'met' if ok_mem else 'MISSED'}; "
          f"not slower than the baseline: {'met' if ok_base else 'MISSED'}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
