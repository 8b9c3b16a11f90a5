"""Catalogue ingest at scale: 1,000,000 raw Suno records, ours vs a plain pandas.json_normalize
and vs the ingest this replaced, all measured in the same run.

Generates a raw catalogue (metadata only, records shaped and sized like the sample catalogue's,
with 0.1 % bad records and duplicates mixed in) in a temporary folder, then runs each measurement
in its own child process and reads that child's peak RSS and CPU time (user + system, the child
and its own children) from ``os.wait4``:

- ours: ``read_catalogue`` (DuckDB ``read_json`` + the record rules in one query, the byte scan
  for nesting, de-duplication) + ``write_songs`` (Parquet, atomic);
- baseline: ``json.load`` of the same file + ``pandas.json_normalize`` (no validation at all);
- old: the hand-written streaming parser on 2 worker processes (``sunorecsys/`` at ``--old-commit``,
  exported with ``git archive``; skipped when git or the commit is not available).

The outputs of ours and old are compared row by row (songs and rejected rows).
Targets: 1 M songs in under 60 s with under 4 GB peak on 2 cores, and not slower than the baseline.

    python bench/ingest.py [--records 1000000] [--keep DIR] [--old-commit 61f8b02]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 60.0
TARGET_PEAK_GB = 4.0
OLD_COMMIT = "61f8b02"  # the last commit with jsonfiles.py + parallel_ingest.py


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


def measure_ingest(path: Path, out_dir: Path) -> dict:
    """read_catalogue + write_songs of whichever ``sunorecsys`` is first on sys.path."""
    from sunorecsys.catalog.ingest import read_catalogue, write_songs
    from sunorecsys.paths import DataPaths

    t0 = time.perf_counter()
    result = read_catalogue(path)
    t1 = time.perf_counter()
    write_songs(result, DataPaths(out_dir))
    t2 = time.perf_counter()
    return {"read_s": t1 - t0, "write_s": t2 - t1, "seconds": t2 - t0, "songs": len(result.songs),
            "rejected": len(result.rejected), "duplicates": result.duplicates}


def measure_pandas(path: Path) -> dict:
    import pandas as pd

    t0 = time.perf_counter()
    with path.open("r", encoding="utf-8") as fh:
        records = json.load(fh)
    frame = pd.json_normalize(records)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "songs": len(frame), "columns": frame.shape[1]}


def use_code_from(code_root: str) -> None:
    """Import ``sunorecsys`` from ``code_root``: first on sys.path, and without the editable
    install's import hook (a meta-path finder that would otherwise win over sys.path)."""
    sys.path.insert(0, code_root)
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not str(getattr(f, "__module__", "")).startswith("__editable__")]


def run_child(mode: str, path: Path, out_dir: Path, code_root: Path = ROOT) -> dict:
    """Run one measurement in a child process; its figures plus peak RSS (GB) and CPU seconds."""
    env = dict(os.environ, SUNORECSYS_BENCH_CODE=str(code_root))
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, str(path), str(out_dir)],
                            stdout=subprocess.PIPE, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{mode} measurement failed (exit {os.waitstatus_to_exitcode(status)})")
    figures = json.loads(out.strip().splitlines()[-1])
    # wait4 covers the child and the children it waited for (the old ingest's worker processes).
    figures["peak_gb"] = usage.ru_maxrss / 1024 ** 2
    figures["cpu_s"] = usage.ru_utime + usage.ru_stime
    return figures


def export_old(commit: str, dest: Path) -> Path | None:
    """``sunorecsys/`` as of ``commit`` under ``dest`` (for PYTHONPATH), or None when unavailable."""
    archive = dest / "old.tar"
    done = subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit, "sunorecsys"],
                          check=False, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"old     : skipped (git archive {commit}: {done.stderr.strip()[:200]})")
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "old", filter="data")
    return dest / "old"


def compare_outputs(ours_dir: Path, old_dir: Path) -> str:
    import pandas as pd

    songs = [pd.read_parquet(d / "processed" / "songs.parquet") for d in (ours_dir, old_dir)]
    rejected = [pd.read_parquet(d / "processed" / "rejected_songs.parquet") for d in (ours_dir, old_dir)]
    if len(songs[0]) != len(songs[1]) or list(songs[0]["song_id"]) != list(songs[1]["song_id"]):
        return f"songs differ: {len(songs[0])} vs {len(songs[1])} rows or another order"
    differing = 0
    for column in songs[0].columns:
        a, b = songs[0][column], songs[1][column]
        if column == "tags":
            differing += sum(list(x) != list(y) for x, y in zip(a, b))
        else:
            same = (a.astype(object).to_numpy() == b.astype(object).to_numpy()) | (a.isna().to_numpy()
                                                                                   & b.isna().to_numpy())
            differing += int((~same).sum())
    keys = ["source_file", "position", "song_id", "reason"]
    same_rejected = [tuple(r) for r in rejected[0][keys].astype({"position": "int64"}).itertuples(index=False)] == [
        tuple(r) for r in rejected[1][keys].itertuples(index=False)]
    return (f"{len(songs[0]):,} songs, {differing} differing cells; {len(rejected[0])} vs {len(rejected[1])} "
            f"rejections, {'the same' if same_rejected else 'NOT the same'} (file, position, id, reason)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", default=None, help="generate into this folder and keep it")
    parser.add_argument("--old-commit", default=OLD_COMMIT, help="the ingest to compare with ('' to skip)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, file, out = args.child
        use_code_from(os.environ.get("SUNORECSYS_BENCH_CODE", str(ROOT)))
        import sunorecsys.catalog.ingest as ingest_module

        if not ingest_module.__file__.startswith(os.environ.get("SUNORECSYS_BENCH_CODE", str(ROOT))):
            raise SystemExit(f"{mode}: imported {ingest_module.__file__}, not the code asked for")
        figures = measure_pandas(Path(file)) if mode == "pandas" else measure_ingest(Path(file), Path(out))
        print(json.dumps(figures))
        return 0

    tmp = tempfile.TemporaryDirectory(prefix="sunorecsys-bench-ingest-") if args.keep is None else None
    work = Path(args.keep or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    catalogue = work / "all_songs.json"
    t0 = time.perf_counter()
    info = generate_catalogue(catalogue, args.records)
    print(f"generated {info['records']:,} records ({info['bad']} bad) = {info['bytes'] / 1e9:.2f} GB "
          f"in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} "
          "(a shared machine: compare the ratios, measured in this run)")
    ours = run_child("ours", catalogue, work / "ours")
    base = run_child("pandas", catalogue, work / "pandas")
    old_root = export_old(args.old_commit, work) if args.old_commit else None
    old = run_child("old", catalogue, work / "old_out", code_root=old_root) if old_root else None

    def line(name: str, f: dict, what: str) -> str:
        return (f"{name:8}: {f['seconds']:6.1f} s wall, {f['cpu_s']:6.1f} s CPU, peak {f['peak_gb']:.2f} GB; "
                f"{f['songs']:,} rows; {what}")

    print(line("ours", ours, f"read+validate {ours['read_s']:.1f} s, Parquet {ours['write_s']:.1f} s, "
                             f"{ours['rejected']} rejected, {ours['duplicates']} duplicates"))
    print(line("baseline", base, "json.load + pandas.json_normalize, no validation"))
    if old:
        print(line("old", old, f"hand-written parser on 2 processes ({args.old_commit}), {old['rejected']} rejected"))
    for name, other in (("baseline", base), ("old", old)):
        if other:
            print(f"ratio   : {name}/ours wall {other['seconds'] / ours['seconds']:.2f}x, "
                  f"CPU {other['cpu_s'] / ours['cpu_s']:.2f}x, peak memory {other['peak_gb'] / ours['peak_gb']:.2f}x")
    if old:
        print(f"same    : {compare_outputs(work / 'ours', work / 'old_out')}")
    ok_time = ours["seconds"] < TARGET_SECONDS * args.records / 1_000_000
    ok_mem = ours["peak_gb"] < TARGET_PEAK_GB
    ok_base = ours["seconds"] <= base["seconds"]
    print(f"targets : < {TARGET_SECONDS:.0f} s per 1 M songs: {'met' if ok_time else 'MISSED'}; "
          f"< {TARGET_PEAK_GB:.0f} GB peak: {'met' if ok_mem else 'MISSED'}; "
          f"not slower than the baseline: {'met' if ok_base else 'MISSED'}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
