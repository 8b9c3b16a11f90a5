"""Benchmark: the nightly refit (``hybrid_recommender`` + ``recommender_evaluation``) at soak scale.

Builds a data root the way the 30-night soak fills it (tests/soak_support.py's song records: a file
of ``--old`` older songs with no audio, ``--days`` days of 10 new songs, four listeners playing every
new song), runs the upstream assets through real Dagster runs, then materializes the two refit
assets and prints their step durations. Baselines measured in the same run, on the same fitted model:

* the recommendations table one ``recommend(song_ids=[seed])`` call per seed (the previous asset
  code) against ``recommend_seeds`` in blocks, on the same ``--compare-seeds`` seeds (equal rows
  checked), extrapolated to the catalogue;
* the bare EASE baseline solved over the whole catalogue (the previous code) against the solve over
  the listened songs, on a ``--ease-songs`` slice of the catalogue (the whole 20k catalogue took
  minutes and ~10 GB).

    flock /tmp/bigbench.lock nice -n 5 .venv/bin/python bench/refit.py            # 20,000 older songs
    .venv/bin/python bench/refit.py --old 2000 --compare-seeds 300                # quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def build(base: Path, n_old: int, days: int) -> Path:
    """Raw files as the soak writes them; returns the data root."""
    from soak_support import song_record

    raw = base / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - dt.timedelta(days=days + 1)
    new_ids = []
    for i in range(days):
        day = first + dt.timedelta(days=i)
        records = [song_record(f"d{i:02d}s{j:02d}-{day:%m%d}", day + dt.timedelta(hours=1 + j), None, 1.5)
                   for j in range(10)]
        new_ids += [r["id"] for r in records]
        (raw / f"songs_{day:%Y%m%d}.json").write_text(json.dumps(records))
    old = [song_record(f"old{i:06d}", first - dt.timedelta(days=1 + i % 20, hours=i % 23), None, 30.0)
           for i in range(n_old)]
    (raw / "archive_older_songs.jsonl").write_text("\n".join(json.dumps(r) for r in old) + "\n")
    now = dt.datetime.now(dt.UTC)
    lines = "".join(f"u{u},{sid},{now - dt.timedelta(days=days - k // 10):%Y-%m-%dT%H:%M:%SZ},play,1.0\n"
                    for k, sid in enumerate(new_ids) for u in range(4))
    (raw / "interactions.csv").write_text("user_id,song_id,timestamp,event,weight\n" + lines)
    return base / "data"


def step_seconds(result, step: str) -> float:
    for event in result.all_events:
        if event.step_key == step and event.event_type_value == "STEP_SUCCESS":
            return event.event_specific_data.duration_ms / 1000.0
    raise RuntimeError(f"step {step} did not succeed")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=int, default=20000, help="older songs in the archive file")
    parser.add_argument("--days", type=int, default=9, help="days of 10 new songs")
    parser.add_argument("--compare-seeds", type=int, default=1000)
    parser.add_argument("--ease-songs", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("SUNORECSYS_PARTITIONS_START", "2025-01-01")
    import dagster as dg
    import numpy as np
    import pandas as pd
    from pipeline_support import materialize, partitions_with_songs, pipeline_resources

    from sunorecsys.paths import DataPaths

    base = Path(tempfile.mkdtemp(prefix="refit-bench-"))
    print(f"refit bench: {args.old} older songs + {args.days} days x 10 new songs, 4 listeners; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (machine shared: "
          "ratios are measured in this run)")
    try:
        paths = DataPaths(build(base, args.old, args.days))
        os.environ["SUNORECSYS_DATA_DIR"] = str(paths.root)
        instance = dg.DagsterInstance.ephemeral()
        resources = pipeline_resources(paths)
        assert materialize(["raw_songs", "interactions"], resources, instance).success
        keys = partitions_with_songs(paths)
        assert materialize(["songs", "audio_checks", "flamingo_scores", "audiobox_scores", "quality_scores",
                            "spam_flags"], resources, instance, partition_range=(keys[0], keys[-1])).success
        assert materialize(["music_flamingo_scores_file"], resources, instance).success

        load = os.getloadavg()[0]
        result = materialize(["hybrid_recommender"], resources, instance)
        fit_step = step_seconds(result, "hybrid_recommender")
        result = materialize(["recommender_evaluation"], resources, instance)
        eval_step = step_seconds(result, "recommender_evaluation")
        print(f"hybrid_recommender step {fit_step:.1f} s, recommender_evaluation step {eval_step:.1f} s "
              f"(load average {load:.1f} -> {os.getloadavg()[0]:.1f})")

        # baseline 1: one recommend() per seed vs blocks, same model, same seeds
        from sunorecsys.recommenders.batch import COLUMNS, recommend_seeds
        from sunorecsys.recommenders.hybrid import HybridRecommender

        model = HybridRecommender.load(paths.models_dir / "hybrid")
        ids = model.songs_.ids.astype(str).tolist()
        rng = np.random.default_rng(0)
        seeds = [ids[i] for i in sorted(rng.choice(len(ids), min(args.compare_seeds, len(ids)), replace=False))]
        started = time.perf_counter()
        rows = [{"seed_song_id": s, "rank": r, "song_id": rec["song_id"], "score": rec["score"],
                 "quality_score": rec["quality_score"], "channels": "+".join(rec["channels"])}
                for s in seeds for r, rec in enumerate(model.recommend(song_ids=[s], n=10), start=1)]
        loop_s = time.perf_counter() - started
        started = time.perf_counter()
        batch = recommend_seeds(model, seeds, 10)
        batch_s = time.perf_counter() - started
        batch["channels"] = batch["channels"].map("+".join)
        equal = batch.astype({"quality_score": float}).equals(
            pd.DataFrame(rows, columns=COLUMNS).astype({"quality_score": float}))
        print(f"recommendations for {len(seeds)} seeds: one recommend() each {loop_s:.1f} s "
              f"({1000 * loop_s / len(seeds):.1f} ms/seed, {loop_s * len(ids) / len(seeds):.0f} s extrapolated "
              f"to {len(ids)} songs), blocks {batch_s:.1f} s ({1000 * batch_s / len(seeds):.1f} ms/seed): "
              f"{loop_s / batch_s:.1f}x; rows equal: {equal}")

        # baseline 2: EASE over the whole catalogue vs over the listened songs, on a slice
        from sunorecsys.evaluation.baselines import EaseBaseline
        from sunorecsys.recommenders.ease import ease_weights

        warm = np.flatnonzero(np.bincount(model.user_items_.indices, minlength=model.user_items_.shape[1]) > 0)
        matrix = model.user_items_[:, np.union1d(np.arange(min(args.ease_songs, len(ids))), warm)]
        started = time.perf_counter()
        ease_weights(matrix, 200.0)
        whole_s = time.perf_counter() - started
        started = time.perf_counter()
        EaseBaseline(200.0).fit(matrix)
        listened_s = time.perf_counter() - started
        print(f"bare EASE on {matrix.shape[1]} songs ({len(warm)} listened): whole-catalogue solve {whole_s:.1f} s, "
              f"listened-songs solve {listened_s:.2f} s: {whole_s / max(listened_s, 1e-6):.0f}x")
        print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB; "
              f"load average at the end {os.getloadavg()[0]:.1f}")
        return 0 if equal else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
