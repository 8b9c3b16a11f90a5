"""``sunorecsys ingest``."""

from __future__ import annotations

import argparse
import sys

from sunorecsys.paths import DataPaths


def register(subparsers: argparse._SubParsersAction) -> None:
    ingest = subparsers.add_parser(
        "ingest", help="validate the catalogue files in raw/ into processed/songs.parquet",
        description="Read the Suno catalogue files (raw/*.json, *.jsonl), write processed/songs.parquet "
                    "and processed/rejected_songs.parquet, and print what was rejected and why.")
    ingest.add_argument("--input", nargs="*", default=None,
                        help="catalogue files or folders (default: the data root's raw/)")
    ingest.set_defaults(func=run_ingest)


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
