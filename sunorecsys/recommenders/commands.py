"""``sunorecsys recommend`` and ``sunorecsys evaluate``."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    rec = subparsers.add_parser("recommend", help="recommend songs for seed songs and/or a listener")
    rec.add_argument("--seed", action="append", default=[], metavar="SONG_ID", help="a seed song (repeatable)")
    rec.add_argument("--user", default=None, metavar="USER_ID", help="a listener with history in the log")
    rec.add_argument("-n", type=int, default=10, help="how many recommendations (default 10)")
    rec.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rec.set_defaults(func=run_recommend)

    ev = subparsers.add_parser("evaluate", help="offline metrics: channels, fusion, with/without quality filter")
    ev.add_argument("-k", type=int, default=10, help="list length K for the ranking metrics (default 10)")
    ev.add_argument("--test-fraction", type=float, default=0.2, help="share of the log after the time cut")
    ev.add_argument("--plot", default=None, help="PNG path (default <models_dir>/evaluation/quality_tradeoff.png)")
    ev.add_argument("--json", action="store_true", help="print the table as JSON records")
    ev.set_defaults(func=run_evaluate)


def _paths(args):
    from sunorecsys.paths import DataPaths

    return DataPaths.from_env(args.data_dir)


def run_recommend(args: argparse.Namespace) -> int:
    import warnings

    from tabulate import tabulate

    from sunorecsys.recommenders.training_data import load_or_fit

    if not args.seed and not args.user:
        print("give at least one --seed SONG_ID or --user USER_ID", file=sys.stderr)
        return 2
    model, how = load_or_fit(_paths(args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown ids are reported below, once
        rows = model.recommend(song_ids=args.seed, n=args.n, user_id=args.user)
    unknown = model.last_unknown_seeds
    if args.json:
        print(json.dumps({"model": how, "recommendations": rows, "unknown_seeds": unknown,
                          "unknown_user": model.last_unknown_user}, indent=2, ensure_ascii=False))
    else:
        print(f"# {how}", file=sys.stderr)
        table = [[r["rank"], r["song_id"], r["title"][:40], r["creator"], f"{r['score']:.3f}",
                  "—" if r["quality_score"] is None else f"{r['quality_score']:.2f}",
                  "+".join(r["channels"])] for r in rows]
        print(tabulate(table, headers=["#", "song_id", "title", "creator", "score", "quality", "channels"]))
    if unknown:
        print(f"unknown seed ids (not in the catalogue): {', '.join(unknown)}", file=sys.stderr)
    if model.last_unknown_user:
        print(f"unknown user (no listening history): {model.last_unknown_user}", file=sys.stderr)
    return 0 if rows else 1


def run_evaluate(args: argparse.Namespace) -> int:
    from sunorecsys.evaluation import evaluate_recommender
    from sunorecsys.recommenders.training_data import load_training_inputs

    paths = _paths(args)
    inputs = load_training_inputs(paths)
    if len(inputs.interactions) == 0:
        print(f"no listening log under {paths.raw_dir}: nothing to evaluate against", file=sys.stderr)
        return 1
    plot = args.plot or (paths.models_dir / "evaluation" / "quality_tradeoff.png")
    report = evaluate_recommender(inputs.songs, inputs.interactions, inputs.quality_scores, k=args.k,
                                  test_fraction=args.test_fraction, plot_path=plot)
    if args.json:
        print(json.dumps({"tables": {p: t.to_dict(orient="records") for p, t in report.tables.items()},
                          "comparisons": report.comparisons.to_dict(orient="records")}, indent=2, default=str))
    else:
        print(f"temporal split at {report.split_time} ({report.n_users} test users; "
              f"quality scores: {inputs.quality_source})")
        print(report.to_text())
        for protocol, table in report.tables.items():
            if protocol != "temporal":
                print(f"\n{protocol} ({report.details.get(protocol, {})}):")
                print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if report.comparisons is not None and len(report.comparisons):
            print("\nfusion minus the best bare baseline (paired bootstrap 95% CI of NDCG):")
            print(report.comparisons.to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
        print(f"trade-off plot: {report.plot_path}")
    return 0
