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


def run_ingest(args: argparse.Namespace) -> int:
    from sunorecsys.catalog.ingest import (
        CatalogueFormatError,
        find_catalogue_files,
        read_catalogue,
        write_songs,
    )

    paths = DataPaths.from_env(args.data_dir)
    sources = args.input or find_catalogue_files(paths.raw_dir)
    if not sources:
        print(f"no catalogue files in {paths.raw_dir} (run `sunorecsys sample` for a sample catalogue)",
              file=sys.stderr)
        return 1
    try:
        result = read_catalogue(list(sources))
    except (CatalogueFormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write_songs(result, paths)
    print(result.summary())
    print(f"songs -> {written['songs_file']}\nrejected -> {written['rejected_file']}")
    return 0
