"""``make demo``: the whole pipeline on the sample catalogue, without model weights.

Generates the sample catalogue when ``data/raw/`` has none (its audio is synthesised beside the
runs: the ingestion needs only the catalogue file and the listening log, and the signal checks take
each song as its file is written), then materializes every asset in two
runs (ingestion; then every day with songs as one partition range, scored as one step per asset
by the single-run backfill policy, followed by the refit) in the Dagster instance of
``$DAGSTER_HOME`` (``data/dagster``, set by the Makefile) so the runs show in ``make ui`` afterwards.
Prints where the tables are, how to query them, recommendations for two seeds and the total time.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sunorecsys.machine import available_cores

# Dagster, pandas and the code location are imported inside the functions, so that
# `python -m sunorecsys_pipeline.demo --help` does not wait for them (spawned workers no longer
# re-import this module: machine.spawn_pool hides __main__ while they start).
if TYPE_CHECKING:
    import dagster as dg
    import pandas as pd

    from sunorecsys.paths import DataPaths

# Per-song warnings stay in the run logs (visible in the UI); the terminal gets one line per run.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _instance() -> dg.DagsterInstance:
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
        return dg.DagsterInstance.get()
    print("DAGSTER_HOME is not set: runs go to a temporary instance and will not show in the UI "
          "(`make demo` sets it to data/dagster)")
    return dg.DagsterInstance.ephemeral()


def _start_catalogue(paths: DataPaths) -> tuple[Callable[[], None], Callable[[], None]]:
    """Make sure a catalogue is in ``data/raw``; returns ``(written(), finish())``.

    Without one, the sample catalogue is generated on a thread of its own. Its catalogue file and
    listening log are written first (they do not depend on the audio): ``written()`` waits for them,
    so the runs and Dagster's start-up go on beside the audio synthesis, and the signal checks of
    the run take each song as its file is written (sunorecsys.audio.arrivals: none is found
    missing for being late). ``finish()`` waits for the rest and re-raises a failure.
    """
    from sunorecsys.catalog.ingest import find_catalogue_files

    if paths.raw_dir.exists() and find_catalogue_files(paths.raw_dir):
        print(f"catalogue: using the files in {paths.raw_dir}")
        return (lambda: None), (lambda: None)
    from sunorecsys.sample.catalogue import generate_sample_catalogue

    print(f"catalogue: none in {paths.raw_dir}; generating the sample catalogue "
          f"(its audio on {available_cores()} threads, beside the runs) ...")
    written = threading.Event()
    outcome: dict = {}

    def generate() -> None:
        try:
            outcome["sample"] = generate_sample_catalogue(paths.root, on_catalogue_written=lambda _: written.set())
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by finish()
            outcome["error"] = exc
        finally:
            written.set()

    thread = threading.Thread(target=generate, name="sample-catalogue", daemon=True)
    thread.start()

    def wait_written() -> None:
        written.wait()
        if "error" in outcome:
            finish()

    def finish() -> None:
        thread.join()
        if "error" in outcome:
            raise RuntimeError("the sample catalogue could not be generated") from outcome["error"]
        sample = outcome["sample"]
        print("  " + sample.summary().replace("\n", "\n  "))
        print(f"  sample generation: {sample.seconds:.1f} s wall (beside the runs)")

    return wait_written, finish


def _show(path) -> str:
    """A path relative to the working directory when it is inside it (shorter to copy)."""
    path = os.path.abspath(path)
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _day_summary(paths: DataPaths, day: str) -> str:
    import pandas as pd

    from sunorecsys.warehouse.parquet import partition_path

    quality = pd.read_parquet(partition_path(paths.warehouse_dir, "quality_scores", day))
    checks = pd.read_parquet(partition_path(paths.warehouse_dir, "audio_checks", day))
    unscored = int(quality["quality_score"].isna().sum())
    broken = int(((checks["status"] != "ok") & checks["hard_fail"]).sum())
    hard = int((checks["hard_fail"] & (checks["status"] == "ok")).sum())
    return (f"{len(quality)} songs, {unscored} unscored (audio not available), {broken} with broken audio, "
            f"{hard} failing signal checks, mean quality {quality['quality_score'].mean():.2f}")


def _run(label: str, selection: Sequence[str], resources: dict, instance: dg.DagsterInstance,
         days: Sequence[str] = (), summary=None) -> bool:
    import dagster as dg

    from sunorecsys_pipeline.assets import ALL_ASSETS
    from sunorecsys_pipeline.jobs import RANGE_END_TAG, RANGE_START_TAG

    started = time.perf_counter()
    tags = {RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]} if days else None
    result = dg.materialize(ALL_ASSETS, selection=list(selection), resources=resources, instance=instance,
                            tags=tags, raise_on_error=False, run_config=QUIET)
    seconds = time.perf_counter() - started
    if result.success:
        print(f"  ok    {label:<24} {seconds:5.1f} s" + (f"  {summary()}" if summary else ""))
        return True
    print(f"  FAIL  {label:<16} {seconds:5.1f} s  (run {result.run_id})")
    for event in result.all_events:
        if event.is_step_failure:
            print(f"        {event.step_key}: {event.step_failure_data.error.message.strip()[:400]}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            ev = event.event_specific_data
            print(f"        check {ev.asset_key.path[-1]}.{ev.check_name}: {ev.description}")
    return False


def _print_recommendations(paths: DataPaths, songs: pd.DataFrame) -> None:
    from sunorecsys.recommenders.hybrid import HybridRecommender

    model_dir = paths.models_dir / "hybrid"
    if not model_dir.exists():
        print("no fitted recommender (hybrid_recommender failed above)")
        return
    recommender = HybridRecommender.load(model_dir)
    titles = songs.set_index("song_id")["title"].to_dict()
    seeds = songs.sort_values(["play_count", "song_id"], ascending=[False, True])["song_id"].head(2).tolist()
    for seed in seeds:
        print(f"\nrecommendations for {seed} ({titles.get(seed, '?')!r}):")
        for rank, rec in enumerate(recommender.recommend(song_ids=[seed], n=5), start=1):
            quality = rec.get("quality_score")
            quality_text = f"{quality:.2f}" if isinstance(quality, (int, float)) else "  - "
            channels = ",".join(map(str, rec.get("channels") or []))
            print(f"  {rank}. {rec['song_id']}  score {rec['score']:.3f}  quality {quality_text}  "
                  f"[{channels}]  {titles.get(rec['song_id'], '')}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data root (default: $SUNORECSYS_DATA_DIR or ./data)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from sunorecsys.paths import DataPaths

    if args.data_dir:
        os.environ["SUNORECSYS_DATA_DIR"] = str(args.data_dir)
    paths = DataPaths.from_env(args.data_dir)
    print(f"data root: {_show(paths.root)}")
    catalogue_written, finish_catalogue = _start_catalogue(paths)
    # Dagster and the code location load while the sample is generated.
    import pandas as pd

    from sunorecsys_pipeline.jobs import REFIT_ASSETS, scoring_assets
    from sunorecsys_pipeline.partitions import daily_partitions
    from sunorecsys_pipeline.resources import AudioChecksResource, default_resources

    instance = _instance()

    resources = default_resources()
    # The sample ships its audio; never reach for audio_url unless asked (the demo may be offline).
    fetch = os.environ.get("SUNORECSYS_FETCH_AUDIO", "0").strip().lower() not in {"0", "false", "no", "off"}
    resources["audio_checks_settings"] = AudioChecksResource(workers=available_cores(), fetch_audio=fetch)
    with_flamingo = resources["flamingo"].weights_available()
    with_audiobox = resources["audiobox"].weights_available()
    for name, present, variable in (("Music Flamingo", with_flamingo, "SUNORECSYS_FLAMINGO_MODEL"),
                                    ("Audiobox Aesthetics", with_audiobox, "SUNORECSYS_AUDIOBOX_CHECKPOINT")):
        if not present:
            print(f"{name}: no weights configured ({variable}), its scoring asset is skipped; "
                  "quality scores come from the signal checks")

    catalogue_written()
    print("\nmaterializing (two runs: ingestion, then every day as one partition range + the refit):")
    ok = _run("raw_songs", ["raw_songs"], resources, instance,
              summary=lambda: f"{len(pd.read_parquet(paths.processed_songs))} songs, "
                              f"{len(pd.read_parquet(paths.rejected_songs))} records rejected")
    if not ok:
        finish_catalogue()
        return 1
    songs = pd.read_parquet(paths.processed_songs)
    with_songs = set(songs["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d"))
    keys = daily_partitions.get_partition_keys()
    present = sorted(with_songs & set(keys))
    days = keys[keys.index(present[0]):keys.index(present[-1]) + 1] if present else []
    selection = scoring_assets(flamingo=with_flamingo, audiobox=with_audiobox)
    print(f"  days {days[0]} .. {days[-1]}: {' + '.join(selection)}, then {' + '.join(REFIT_ASSETS)}"
          if days else "  no song falls on a partition day")
    ok &= _run(f"{len(days)} days + refit", [*selection, *REFIT_ASSETS] if days else REFIT_ASSETS,
               resources, instance, days=days)
    for day in present:
        try:
            print(f"        {day}  {_day_summary(paths, day)}")
        except FileNotFoundError:
            print(f"        {day}  not scored (see the run's errors above)")
    finish_catalogue()  # (its audio is all written: the checks above waited for each song's file)

    warehouse = paths.warehouse_dir
    print(f"\ntables (Parquet, one file per day): {_show(warehouse)}/<table>/date=YYYY-MM-DD/part-0.parquet")
    for table in sorted(p.name for p in warehouse.iterdir() if p.is_dir()) if warehouse.exists() else []:
        files = list((warehouse / table).glob("**/part-0.parquet"))
        print(f"  {table:<16} {len(files):3d} file(s)")
    print(f"guide's scores file: {_show(paths.flamingo_scores_file)}")
    print(f"fitted recommender:  {_show(paths.models_dir / 'hybrid')}")
    print(f"analyst views:       {_show(paths.warehouse_db)} (views only; Parquet is the store of record)")
    glob = f"{_show(warehouse)}/songs/*/*.parquet"
    print("\nquery with DuckDB:")
    print(f"  .venv/bin/python -c \"import duckdb; print(duckdb.sql(\\\"SELECT date, count(*) AS songs FROM "
          f"read_parquet('{glob}', hive_partitioning=true) GROUP BY 1 ORDER BY 1\\\"))\"")
    print("  .venv/bin/sunorecsys sql \"SELECT date, count(*) AS songs, round(avg(quality_score), 3) AS quality "
          "FROM quality_scores GROUP BY 1 ORDER BY 1\"")
    try:
        _print_recommendations(paths, songs)
    except Exception as exc:  # noqa: BLE001 - the demo reports and goes on
        print(f"could not print recommendations: {exc}")
        ok = False
    print("\nopen the UI: make ui  ->  http://127.0.0.1:3000 (these runs are in the run list; the "
          "nightly_rescoring schedule and the catalogue sensor are on)")
    print(f"total time: {time.perf_counter() - started:.1f} s" + ("" if ok else "  (some steps failed, see above)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
