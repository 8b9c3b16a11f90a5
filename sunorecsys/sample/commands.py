"""``sunorecsys sample``: write the sample catalogue under a data root."""

from __future__ import annotations

import argparse

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
    sample.add_argument("--spam-cohort", action="store_true",
                        help="add a spam cohort (re-uploads, a mass uploader, a text family, 31 s tracks, "
                             "stuffed tags), recorded under \"spam\" in the ground truth")
    sample.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from sunorecsys.sample.catalogue import generate_sample_catalogue

    paths = DataPaths.from_env(args.out if args.out is not None else args.data_dir)
    result = generate_sample_catalogue(paths.root, n_songs=args.songs, days=args.days, seed=args.seed,
                                       end_date=args.end_date, with_audio=not args.no_audio,
                                       n_users=args.users, workers=args.workers,
                                       spam_cohort=args.spam_cohort)
    print(result.summary())
    return 0
