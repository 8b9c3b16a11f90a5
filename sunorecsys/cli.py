"""The ``sunorecsys`` command.

Each area owns its sub-commands in its own module (``<area>/commands.py`` exposing
``register(subparsers)``); this file only assembles them, so heavy imports (torch,
transformers, implicit) happen only for the sub-command that needs them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module path -> registers these sub-commands
COMMAND_MODULES = (
    "sunorecsys.sample.commands",        # sample
    "sunorecsys.catalog.commands",       # ingest
    "sunorecsys.quality.commands",       # score
    "sunorecsys.recommenders.commands",  # recommend, evaluate
    "sunorecsys.warehouse.commands",     # sql, views
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sunorecsys",
        description="A quality-aware recommender for catalogues of AI-generated (Suno) songs.")
    parser.add_argument("--data-dir", default=None,
                        help="data root (default: $SUNORECSYS_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency, not a not-yet-written area
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
