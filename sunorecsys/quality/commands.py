"""``sunorecsys score --backend signal|music-flamingo|audiobox`` and the guide's script entry point.

``compute_music_flamingo_quality.py`` (repo root) calls :func:`guide_script_main` with the guide's
flags. Missing weights exit with code 2 and the how-to message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sunorecsys.paths import DataPaths

BACKENDS = ("signal", "music-flamingo", "audiobox")
EXIT_INPUT_OR_WEIGHTS = 2
EXIT_INTERRUPTED = 130


def _add_flamingo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="checkpoint directory or hub id in the local HF cache (default nvidia/music-flamingo-hf)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--dtype", default=None, help="bf16 / fp16 / fp32 (default: bf16 on GPU, fp32 on CPU)")
    parser.add_argument("--max-tokens", type=int, default=512, help="longest reply in tokens (default 512)")
    parser.add_argument("--batch-size", type=int, default=1, help="songs per generate call (default 1)")
    parser.add_argument("--allow-download", action="store_true",
                        help="let transformers download the weights (off by default)")


def _add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="*", default=None,
                        help="catalogue file(s)/folder or a songs .parquet (default: processed songs, else raw/)")
    parser.add_argument("--output", default=None, help="guide-format scores file to write")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N songs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    score = subparsers.add_parser(
        "score", help="score songs' quality: signal checks, Music Flamingo or Audiobox Aesthetics",
        description="Score songs and write a guide-format scores file. music-flamingo caches each song "
                    "under --cache-dir and is resumable; weights are never downloaded unless asked.")
    score.add_argument("--backend", choices=BACKENDS, default="signal", help="scorer (default signal)")
    _add_common_args(score)
    score.add_argument("--cache-dir", default=None,
                       help="per-song cache, read first and written as songs finish (default "
                            "data/music_flamingo_scores, signal: data/signal_checks)")
    _add_flamingo_args(score)
    score.add_argument("--write-every-s", type=float, default=60.0,
                       help="signal: rewrite the scores file this often while running (default 60)")
    score.add_argument("--checkpoint", default=None, help="audiobox: local checkpoint folder or .pt file")
    score.add_argument("--workers", type=int, default=None,
                       help="signal: worker processes (default: the cores available)")
    score.set_defaults(func=run_score)


def _input(args: argparse.Namespace):
    if not args.input:
        return None
    return args.input[0] if len(args.input) == 1 else list(args.input)


def _print_summary(summary: dict) -> None:
    print("summary: " + json.dumps(summary, sort_keys=True, default=str), flush=True)


def run_music_flamingo(args: argparse.Namespace, paths: DataPaths) -> int:
    """Shared by the script and the sub-command: score, cache, write the scores file."""
    from sunorecsys.catalog.ingest import CatalogueFormatError
    from sunorecsys.quality.flamingo import DEFAULT_MODEL_ID, ModelWeightsMissing, MusicFlamingoQualityScorer
    from sunorecsys.quality.runner import load_songs, run_flamingo_scoring

    try:
        songs, rejected = load_songs(_input(args), paths)
    except (CatalogueFormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_OR_WEIGHTS
    if rejected:
        print(f"note: {rejected} catalogue record(s) rejected (see `sunorecsys ingest`)", file=sys.stderr)
    scorer = MusicFlamingoQualityScorer(model_id=args.model or DEFAULT_MODEL_ID, device=args.device,
                                        dtype=args.dtype, batch_size=args.batch_size,
                                        max_new_tokens=args.max_tokens, paths=paths,
                                        allow_download=args.allow_download)
    output = args.output or paths.flamingo_scores_file
    cache_dir = args.cache_dir or paths.flamingo_cache_dir
    try:
        summary = run_flamingo_scoring(scorer, songs, output=output, cache_dir=cache_dir, paths=paths,
                                       limit=args.limit, progress=not args.no_progress)
    except ModelWeightsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_OR_WEIGHTS
    except KeyboardInterrupt:
        print(f"interrupted: finished songs are cached in {cache_dir}; rerun to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    _print_summary(summary)
    return 0


def _cached_signal_rows(songs, paths: DataPaths, cache_dir) -> tuple[dict[int, dict], list[int]]:
    """Rows already checked (same audio bytes, same checks version) and the positions still to do."""
    from sunorecsys.audio.checks import CHECKS_VERSION
    from sunorecsys.audio.errors import AudioUnavailable
    from sunorecsys.audio.source import resolve_audio_path
    from sunorecsys.quality.cache import AudioHashMemo, UnsafeSongId, read_row_cached

    memo = AudioHashMemo(cache_dir)
    done: dict[int, dict] = {}
    todo: list[int] = []
    for position, song in enumerate(songs.to_dict("records")):
        try:
            path = resolve_audio_path(song, paths, fetch=False)
            row = read_row_cached(cache_dir, song["song_id"], CHECKS_VERSION, memo.sha256(path))
        except (AudioUnavailable, UnsafeSongId, OSError):
            row = None
        if row is None:
            todo.append(position)
        else:
            done[position] = row
    memo.save()
    return done, todo


def _write_signal_output(rows: dict[int, dict], songs, output) -> int:
    import pandas as pd

    from sunorecsys.audio.checks import COLUMNS
    from sunorecsys.quality.blend import combine_quality_scores
    from sunorecsys.quality.export import guide_entries
    from sunorecsys.quality.scores_file import write_scores_file

    frame = pd.DataFrame([rows[i] for i in sorted(rows)], columns=COLUMNS)
    blended = combine_quality_scores(audio_checks=frame)
    entries = guide_entries(blended, songs_df=songs)
    write_scores_file(entries, output)
    return len(entries)


def _run_signal(args: argparse.Namespace, paths: DataPaths, songs) -> int:
    """Signal checks, resumable: rows are cached per song as they finish (keyed by the audio's
    sha256 and the checks version) and a rerun checks only what is not cached. The scores file is
    rewritten every ``write_every_s`` seconds and at the end; SIGTERM/Ctrl-C keep what finished."""
    import signal
    import time

    from sunorecsys.audio.checks import default_workers, run_audio_checks
    from sunorecsys.quality.cache import UnsafeSongId, write_row_cached

    cache_dir = Path(args.cache_dir) if args.cache_dir else paths.signal_cache_dir
    output = args.output or paths.root / "signal_scores.json"
    workers = args.workers or default_workers()
    songs = songs.reset_index(drop=True)
    rows, todo = _cached_signal_rows(songs, paths, cache_dir)
    cached = len(rows)
    last_write = time.monotonic()

    def on_row(position: int, row: dict) -> None:
        nonlocal last_write
        rows[todo[position]] = row
        if row.get("status") == "ok" and row.get("audio_sha256"):
            try:
                write_row_cached(cache_dir, row["song_id"], row)
            except UnsafeSongId:
                pass
        if time.monotonic() - last_write >= args.write_every_s:
            _write_signal_output(rows, songs, output)
            last_write = time.monotonic()

    def on_term(signum, frame):  # SIGTERM ends the run like Ctrl-C: finished songs are kept
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if todo:
            run_audio_checks(songs.iloc[todo], paths, workers=workers, progress=not args.no_progress,
                             on_row=on_row)
    except KeyboardInterrupt:
        written = _write_signal_output(rows, songs, output) if rows else 0
        print(f"interrupted: {len(rows)} of {len(songs)} songs done ({written} entries in {output}); "
              f"finished songs are cached in {cache_dir}: rerun to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    written = _write_signal_output(rows, songs, output)
    statuses: dict[str, int] = {}
    for row in rows.values():
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    _print_summary({"songs": len(rows), "cached": cached, "checked": len(rows) - cached, "workers": workers,
                    "status": statuses, "hard_fail": sum(bool(r["hard_fail"]) for r in rows.values()),
                    "entries_written": written, "output": str(output), "cache_dir": str(cache_dir)})
    return 0


def _run_audiobox(args: argparse.Namespace, paths: DataPaths, songs) -> int:
    from tqdm.auto import tqdm

    from sunorecsys.quality.audiobox import (
        AudioboxAestheticsScorer,
        AudioboxWeightsMissing,
        audiobox_results_to_frame,
    )
    from sunorecsys.quality.blend import combine_quality_scores
    from sunorecsys.quality.export import guide_entries
    from sunorecsys.quality.scores_file import write_scores_file

    try:
        scorer = AudioboxAestheticsScorer(args.checkpoint, device=args.device or "cpu",
                                          batch_size=max(1, args.batch_size), paths=paths)
    except AudioboxWeightsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_OR_WEIGHTS
    records = songs.to_dict("records")
    results = []
    with tqdm(total=len(records), unit="song", desc="audiobox", disable=args.no_progress) as bar:
        for start in range(0, len(records), 8):
            results.extend(scorer.score_batch(records[start:start + 8], paths))
            bar.update(len(records[start:start + 8]))
    table = audiobox_results_to_frame(results)
    blended = combine_quality_scores(audiobox=table)
    output = args.output or paths.audiobox_scores_file
    entries = guide_entries(blended, songs_df=songs)
    write_scores_file(entries, output)
    _print_summary({"songs": len(table), "status": table["status"].value_counts().to_dict(),
                    "entries_written": len(entries), "output": str(output)})
    return 0


def run_score(args: argparse.Namespace) -> int:
    """Handler of ``sunorecsys score``."""
    from sunorecsys.catalog.ingest import CatalogueFormatError
    from sunorecsys.quality.runner import load_songs

    paths = DataPaths.from_env(args.data_dir)
    if args.backend == "music-flamingo":
        return run_music_flamingo(args, paths)
    try:
        songs, _ = load_songs(_input(args), paths)
    except (CatalogueFormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_OR_WEIGHTS
    if args.limit is not None:
        songs = songs.head(args.limit)
    if args.backend == "signal":
        return _run_signal(args, paths, songs)
    return _run_audiobox(args, paths, songs)


def build_guide_parser() -> argparse.ArgumentParser:
    """The guide's ``compute_music_flamingo_quality.py`` flags (plus --data-dir, --dtype, ...)."""
    parser = argparse.ArgumentParser(
        prog="compute_music_flamingo_quality.py",
        description="Compute Music Flamingo quality scores for songs (the guide's script). Resumable: "
                    "finished songs are cached per song and not scored again.")
    parser.add_argument("--data-dir", default=None,
                        help="data root where audio is found (default: $SUNORECSYS_DATA_DIR or ./data)")
    _add_common_args(parser)
    parser.add_argument("--cache-dir", default=None,
                        help="per-song cache folder (default: <data root>/music_flamingo_scores)")
    _add_flamingo_args(parser)
    return parser


def guide_script_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``compute_music_flamingo_quality.py``; returns the exit code."""
    args = build_guide_parser().parse_args(argv)
    return run_music_flamingo(args, DataPaths.from_env(args.data_dir))
