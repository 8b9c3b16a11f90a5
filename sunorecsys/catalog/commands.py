"""``sunorecsys sample`` and ``sunorecsys ingest``."""

from __future__ import annotations

import argparse
import sys

from sunorecsys.paths import DataPaths


def register(subparsers: argparse._SubParsersAction) -> None:
    sample = subparsers.add_parser(
        "sample", help="generate the sample catalogue (songs, audio, listening log) under the data root",
        description="Write raw/all_songs.json, audio/<id>.flac, raw/interactions.csv and "
                    "sample_ground_truth.json: a deterministic Suno-like catalogue with real audio.")
    sample.add_argument("--out", default=None, help="data root to write (default: --data-dir / $SUNORECSYS_DATA_DIR / ./data)")
    sample.add_argument("--songs", type=int, default=200, help="number of songs (default 200)")
    sample.add_argument("--days", type=int, default=14, help="days of songs, ending --end-date (default 14)")
    sample.add_argument("--end-date", default="2026-11-14", help="last UTC day (default 2026-11-14)")
    sample.add_argument("--users", type=int, default=150, help="simulated listeners (default 150)")
    sample.add_argument("--seed", type=int, default=7, help="random seed (default 7); same seed, same files")
    sample.add_argument("--no-audio", action="store_true", help="metadata and listening log only")
    sample.add_argument("--workers", type=int, default=None, help="threads for audio synthesis (default: up to 2)")
    sample.set_defaults(func=run_sample)

    ingest = subparsers.add_parser(
        "ingest", help="validate the catalogue files in raw/ into processed/songs.parquet",
        description="Read the Suno catalogue files (raw/*.json, *.jsonl), write processed/songs.parquet "
                    "and processed/rejected_songs.parquet, and print what was rejected and why.")
    ingest.add_argument("--input", nargs="*", default=None,
                        help="catalogue files or folders (default: the data root's raw/)")
    ingest.set_defaults(func=run_ingest)


def run_sample(args: argparse.Namespace) -> int:
    from sunorecsys.catalog.sample import generate_sample_catalogue

    paths = DataPaths.from_env(args.out if args.out is not None else args.data_dir)
    result = generate_sample_catalogue(paths.root, n_songs=args.songs, days=args.days, seed=args.seed,
                                       end_date=args.end_date, with_audio=not args.no_audio,
                                       n_users=args.users, workers=args.workers)
    print(result.summary())
    return 0


EXIT_FILES_REJECTED = 3  # songs written from the readable files; some file(s) could not be read at all


def run_ingest(args: argparse.Namespace) -> int:
    """Exit 0: every file was read (bad records are in the rejected table); 3: the songs of the
    readable files were written but some file could not be read at all (named on stderr);
    2: an --input source does not exist; 1: no catalogue files."""
    from sunorecsys.catalog.ingest import find_catalogue_files, read_catalogue, write_songs

    paths = DataPaths.from_env(args.data_dir)
    sources = args.input or find_catalogue_files(paths.raw_dir)
    if not sources:
        print(f"no catalogue files in {paths.raw_dir} (run `sunorecsys sample` for a sample catalogue)",
              file=sys.stderr)
        return 1
    try:
        result = read_catalogue(list(sources))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write_songs(result, paths)
    print(result.summary())
    print(f"songs -> {written['songs_file']}\nrejected -> {written['rejected_file']}")
    for file, why in result.rejected_files.items():
        print(f"error: catalogue file {file} {why}; its songs were not ingested", file=sys.stderr)
    return EXIT_FILES_REJECTED if result.rejected_files else 0
