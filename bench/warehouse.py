"""Analyst SQL over the Parquet warehouse: DuckDB views (`sunorecsys sql`) vs pandas, in one run.

Target (issue 5): on 30 daily partitions holding 10,000,000 score rows, each of the five README
queries answers in under 1 s on 2 cores through `sunorecsys sql`, and at least 10x faster than
pandas doing the same from the same files.

What each side measures (wall clock, same machine, same run):
* duckdb: `sunorecsys.warehouse.sql.run_query(sql, paths)` -- the library function the command
  calls: a fresh in-memory connection with every table registered as a pyarrow dataset (footers
  read), file access switched off and locked, the query run on a worker thread under the time
  limit, a pyarrow Table returned. Median of --repeats runs (first run shown too).
* plain: plain DuckDB over the same files, no sandbox: `duckdb.connect(warehouse.duckdb,
  read_only=True)` whose views are `read_parquet(..., hive_partitioning = true)` -- how
  `sunorecsys sql` read them before the sandbox (issue 8), and how an analyst reads them directly.
  Median of --repeats runs, interleaved with the duckdb side. Also a partition-pruned query (one
  day of quality_scores) on both, to show the date filter still skips whole files.
* cli: one real `python -m sunorecsys sql "<query>"` subprocess for the first query (end to end:
  interpreter start, imports, query, printing).
* Ctrl-C: seconds from SIGINT to the exit (130) of a `sunorecsys sql` process running a query
  that would run for hours (three runs).
* pandas: `pd.concat(pd.read_parquet(f, columns=<only the columns the query needs>) for f in files)`
  for each table the query reads, then the same computation (groupby / sort); one run. Like the SQL,
  pandas reads the song context (genre, creator, plays) from the score tables: no join on either side.

Data: `bench/synthetic_warehouse.py::write_synthetic_warehouse` (vectorised numpy, written with
write_partition): --rows songs over --days partitions, one row per song in each of songs,
quality_scores, audio_checks and flamingo_scores (so 10 M score rows per score table), with
36-character UUID song ids like Suno's. It is written by a child process and flushed (os.sync) before
anything is timed; the files stay in the page cache, so both sides read warm files. DuckDB's five
queries run first, then pandas's, so neither runs beside the other's memory.
Usage: `python bench/warehouse.py [--rows N] [--days D] [--repeats R]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synthetic_warehouse import write_synthetic_warehouse  # bench/, beside this script

from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.analyst_queries import ANALYST_QUERIES
from sunorecsys.warehouse.sql import run_query
from sunorecsys.warehouse.views import build_analyst_views


def read(paths: DataPaths, table: str, columns: list[str], whole_files: bool = False) -> pd.DataFrame:
    """pd.concat of every partition file: only ``columns``, or the whole files (then narrowed)."""
    files = sorted((paths.warehouse_dir / table).glob("date=*/part-0.parquet"))
    df = pd.concat([pd.read_parquet(f, columns=None if whole_files else columns) for f in files],
                   ignore_index=True)
    return df[columns] if whole_files else df


# The same five answers computed with pandas (reading included).
def pd_daily_quality_by_genre(p: DataPaths, whole: bool = False) -> pd.DataFrame:
    q = read(p, "quality_scores", ["song_id", "quality_score", "date", "genre"], whole)
    m = q[q["quality_score"].notna()].copy()
    m["genre"] = m["genre"].fillna("(none)")
    m["below"] = (m["quality_score"] < 0.4).astype(float)
    return (m.groupby(["date", "genre"]).agg(songs=("song_id", "size"),
                                             mean_quality=("quality_score", "mean"),
                                             share_below_0_4=("below", "mean")).reset_index())


def pd_worst_creators(p: DataPaths, whole: bool = False) -> pd.DataFrame:
    m = read(p, "audio_checks", ["song_id", "status", "hard_fail", "user_id", "handle"], whole)
    m["is_failed"] = m["hard_fail"].fillna(False).astype(bool) | (m["status"] != "ok")
    g = m.groupby("user_id").agg(handle=("handle", "max"), songs_checked=("song_id", "size"),
                                 failed=("is_failed", "sum")).reset_index()
    g = g[g["songs_checked"] >= 5].assign(failed_share=lambda d: d["failed"] / d["songs_checked"])
    return g.sort_values(["failed_share", "songs_checked", "user_id"],
                         ascending=[False, False, True]).head(20)


def pd_score_drift(p: DataPaths, whole: bool = False) -> pd.DataFrame:
    f = read(p, "flamingo_scores", ["overall_quality_score", "scorer_version", "date"], whole)
    f = f[f["overall_quality_score"].notna()]
    g = (f.groupby("scorer_version").agg(songs=("date", "size"), first_day=("date", "min"),
                                         last_day=("date", "max"),
                                         mean_score=("overall_quality_score", "mean"),
                                         median_score=("overall_quality_score", "median"))
         .reset_index().sort_values(["first_day", "scorer_version"]))
    g["drift_from_previous"] = g["mean_score"].diff()
    return g


def pd_quality_vs_plays(p: DataPaths, whole: bool = False) -> pd.DataFrame:
    q = read(p, "quality_scores", ["song_id", "quality_score", "play_count"], whole)
    m = q[q["quality_score"].notna()].copy()
    m["quality_band"] = np.minimum(np.floor(m["quality_score"] * 10), 9) / 10
    return (m.groupby("quality_band").agg(songs=("song_id", "size"), mean_plays=("play_count", "mean"),
                                          median_plays=("play_count", "median")).reset_index())


def pd_parse_failure_rate(p: DataPaths, whole: bool = False) -> pd.DataFrame:
    f = read(p, "flamingo_scores", ["status", "raw_response", "date"], whole)
    answered = f["raw_response"].notna()
    f = pd.DataFrame({"date": f["date"], "answered": answered, "partial": f["status"] == "partial",
                      "unparseable": (f["status"] == "failed") & answered,
                      "not_ok": (f["status"] != "ok") & answered})
    g = f.groupby("date").agg(scored=("answered", "size"), answered=("answered", "sum"),
                              partial=("partial", "sum"), unparseable=("unparseable", "sum"),
                              not_ok=("not_ok", "sum")).reset_index()
    g["parse_failure_rate"] = g.pop("not_ok") / g["answered"]
    return g


PANDAS = {
    "daily_quality_by_genre": pd_daily_quality_by_genre,
    "worst_creators_by_failed_audio": pd_worst_creators,
    "score_drift_by_scorer_version": pd_score_drift,
    "quality_vs_plays": pd_quality_vs_plays,
    "parse_failure_rate_by_day": pd_parse_failure_rate,
}


def same_numbers(sql_result: pd.DataFrame, pandas_result: pd.DataFrame) -> bool:
    """Both sides agree: same row count and the same numeric columns (to 1e-9 relative)."""
    if len(sql_result) != len(pandas_result):
        return False
    numeric = [c for c in sql_result.columns
               if c in pandas_result and pd.api.types.is_numeric_dtype(sql_result[c])]
    return all(np.allclose(sql_result[c].to_numpy(float), pandas_result[c].to_numpy(float),
                           rtol=1e-9, equal_nan=True) for c in numeric)


RUNAWAY = "SELECT sum(hash(i)) FROM range(1000000000000) t(i)"


def ctrl_c_latency(paths: DataPaths, runs: int = 3) -> list[float]:
    """Seconds from SIGINT to the end of a `sunorecsys sql` process running a query that would run
    for hours (sent 1.5 s after the query started, once the private spill folder exists)."""
    out = []
    for _ in range(runs):
        spill = Path(tempfile.mkdtemp(prefix="sunorecsys-bench-spill-"))
        try:
            proc = subprocess.Popen([sys.executable, "-m", "sunorecsys", "--data-dir", str(paths.root), "sql",
                                     "--timeout", "0", RUNAWAY], cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(spill)})
            give_up = time.monotonic() + 120
            while not list(spill.glob("sunorecsys-sql-*")) and proc.poll() is None and time.monotonic() < give_up:
                time.sleep(0.02)
            time.sleep(1.5)
            sent = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=120)
            out.append(time.perf_counter() - sent)
            if proc.returncode != 130:
                print(f"  Ctrl-C: exit {proc.returncode}, expected 130", file=sys.stderr)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="songs = rows per score table")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3, help="DuckDB runs per query (median reported)")
    ap.add_argument("--dir", default=None, help="where to write the warehouse (default: a temp dir, removed)")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_only:  # the child process that writes the data (see below)
        # here --dir is the data root the parent chose
        written = write_synthetic_warehouse(DataPaths(Path(args.dir)).warehouse_dir, args.rows, args.days,
                                            seed=0)
        print(f"{written['quality_scores']}")
        return 0

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="sunorecsys-bench-wh-"))
    paths = DataPaths(root / "data")
    try:
        t0 = time.perf_counter()
        # Written by a child process, then flushed to disk: the timed process starts without the
        # generator's memory, and no write-back of 1.3 GB of fresh Parquet runs during the timings.
        subprocess.run([sys.executable, __file__, "--generate-only", "--dir", str(paths.root),
                        "--rows", str(args.rows), "--days", str(args.days)],
                       check=True, stdout=subprocess.DEVNULL)
        os.sync()
        files = list(paths.warehouse_dir.rglob("*.parquet"))
        size = sum(f.stat().st_size for f in files)
        print(f"wrote {args.days} daily partitions x 4 tables ({len(files)} files), {args.rows:,} rows "
              f"per table ({size / 1e6:.0f} MB Parquet) in {time.perf_counter() - t0:.1f} s")
        made = build_analyst_views(paths)
        print(f"built {made['db_path']} ({len(made['views'])} views) in {made['seconds']:.3f} s")
        print(f"cpu cores: {os.cpu_count()}, load average now: {os.getloadavg()[0]:.2f}\n")

        # DuckDB first, all five, then pandas: each side runs without the other's memory in the process.
        duck: dict[str, tuple[float, float, pd.DataFrame]] = {}
        plain: dict[str, float] = {}
        last_day = max(p.name for p in (paths.warehouse_dir / "quality_scores").glob("date=*"))[5:]
        pruned = ("one_day_pruned", ("SELECT count(*) AS n, avg(quality_score) AS q FROM quality_scores "
                  f"WHERE date = DATE '{last_day}'"))
        for name, sql in [(q.name, q.sql) for q in ANALYST_QUERIES] + [pruned]:
            times, plain_times, result = [], [], None
            for _ in range(args.repeats):
                t = time.perf_counter()
                result = run_query(sql, paths)
                times.append(time.perf_counter() - t)
                t = time.perf_counter()
                with duckdb.connect(str(paths.warehouse_db), read_only=True) as con:
                    expected = con.sql(sql).to_arrow_table()
                plain_times.append(time.perf_counter() - t)
            if not same_numbers(result.to_pandas(), expected.to_pandas()):
                print(f"  {name}: run_query and plain DuckDB DIFFER", file=sys.stderr)
            duck[name] = (times[0], statistics.median(times), result.to_pandas())
            plain[name] = statistics.median(plain_times)
            print(f"  duckdb {name}: median {duck[name][1]:.3f} s, plain DuckDB {plain[name]:.3f} s "
                  f"(ratio {duck[name][1] / plain[name]:.2f})", flush=True)
        rows = []
        for q in ANALYST_QUERIES:
            t = time.perf_counter()
            expected = PANDAS[q.name](paths)
            pandas_s = time.perf_counter() - t
            t = time.perf_counter()
            PANDAS[q.name](paths, whole=True)
            pandas_whole_s = time.perf_counter() - t
            first_s, duck_s, result = duck[q.name]
            rows.append((q.name, first_s, duck_s, pandas_s, pandas_whole_s,
                         same_numbers(result, expected.reset_index(drop=True))))
            print(f"  pandas {q.name}: {pandas_s:.2f} s (whole files {pandas_whole_s:.2f} s)", flush=True)

        first = ANALYST_QUERIES[0]
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "sunorecsys", "--data-dir", str(paths.root), "sql",
                               first.sql, "--max-rows", "5"],
                              check=False, cwd=REPO, capture_output=True, text=True)
        cli_s = time.perf_counter() - t
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1

        print()
        header = (f"{'query':<31} {'duckdb 1st':>10} {'duckdb med':>10} {'<1 s':>4} | {'plain':>7} "
                  f"{'d/plain':>7} | {'pandas cols':>11} {'ratio':>6} {'>=10x':>5} | {'pandas whole':>12} "
                  f"{'ratio':>6} | {'same':>4}")
        print(header)
        print("-" * len(header))
        yes = {True: "yes", False: "NO"}
        for name, first_s, duck_s, pandas_s, whole_s, same in rows:
            print(f"{name:<31} {first_s:>9.3f}s {duck_s:>9.3f}s {yes[duck_s < 1]:>4} | {plain[name]:>6.3f}s "
                  f"{duck_s / plain[name]:>6.2f}x | {pandas_s:>10.2f}s "
                  f"{pandas_s / duck_s:>5.1f}x {yes[pandas_s / duck_s >= 10]:>5} | {whole_s:>11.2f}s "
                  f"{whole_s / duck_s:>5.1f}x | {yes[same]:>4}")
        name, _ = pruned
        print(f"{name:<31} {duck[name][0]:>9.3f}s {duck[name][1]:>9.3f}s {yes[duck[name][1] < 1]:>4} | "
              f"{plain[name]:>6.3f}s {duck[name][1] / plain[name]:>6.2f}x |")
        print("\nduckdb = run_query() (pyarrow datasets on a sandboxed in-memory connection, pyarrow result);"
              "\nplain = plain DuckDB over the same files (views file read-only, read_parquet, no sandbox); "
              "d/plain = duckdb / plain median;\npandas cols = pd.concat(pd.read_parquet(f, columns=needed)) + the same computation; "
              "pandas whole = the same reading whole files;\nratio = pandas / duckdb median; same = both "
              "sides gave the same numbers.")
        print(f"\nend to end: `sunorecsys sql` subprocess for {first.name}: {cli_s:.2f} s "
              "(interpreter start + imports + query + printing)")
        stops = ctrl_c_latency(paths)
        print(f"Ctrl-C on a runaway query: stopped and exited in {', '.join(f'{x:.2f}' for x in stops)} s "
              f"(target < 1 s; load average {os.getloadavg()[0]:.1f})")
        return 0
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
