"""Benchmark: accuracy of HybridRecommender against the bare libraries on a real behaviour log.

MovieLens-100K (inside the recbole 1.2.1 wheel, fetched with ``pip download``), per-user
leave-last-k (default 10), full ranking over every item, two query kinds: by ``user_id`` and by the
listener's 5 newest training items as seeds. Methods, all fitted on the same training log in one
run: bare implicit BM25 item-item (K=100), bare implicit ALS (64 factors, 15 it.), EASE (closed
form, lambda=200), ``HybridRecommender()`` defaults and each of its channels alone; ``--frontier``
adds fixed coverage knobs (hubness, popularity discount, the opt-in RP3beta channel) for reporting. Prints NDCG@10,
recall@10, coverage@10 and the paired bootstrap 95 % CI of the hybrid minus the best baseline.

    .venv/bin/python bench/recommender_real.py                  # leave-last-10
    .venv/bin/python bench/recommender_real.py --k 5 --min-train 10   # a variant of the protocol
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


import numpy as np

from sunorecsys.evaluation.baselines import EaseBaseline, als_baseline, bm25_baseline
from sunorecsys.evaluation.compare import paired_bootstrap, score_method
from sunorecsys.evaluation.protocols import leave_last_k, new_items_split
from sunorecsys.evaluation.public_logs import movielens_100k
from sunorecsys.recommenders.base import SongIndex
from sunorecsys.recommenders.hybrid import HybridRecommender
from sunorecsys.recommenders.listening_log import build_user_items

CHANNEL_WEIGHTS = {"item_cf": "item_cf_weight", "content": "item_content_weight", "prompt": "prompt_weight",
                   "user": "user_weight", "quality": "quality_weight", "ease": "ease_weight",
                   "sequence": "sequence_weight", "rp3": "rp3_weight"}


def unheard(ranked, heard, n):
    """The first ``n`` of ``ranked`` the listener has not heard (seed queries do not know the listener)."""
    return [s for s in ranked if s not in heard][:n]


def hybrid_lists(model, users, seeds, heard, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_user = [[r["song_id"] for r in model.recommend(user_id=u, n=n)] for u in users]
        by_seeds = [unheard([r["song_id"] for r in model.recommend(song_ids=seeds[u], n=n + len(heard[u]))],
                            heard[u], n) for u in users]
    return by_user, by_seeds


def new_songs_report(songs, interactions, share, n):
    """Recall of songs first seen in the test period (every event of theirs removed from training)."""
    split = new_items_split(interactions, share=share)
    model = HybridRecommender().fit(songs, interactions=split.train)
    new = set(split.new_songs)
    users = sorted(split.test)
    ui = build_user_items(split.train, SongIndex(songs["song_id"]))
    heard = {u: set(songs["song_id"].to_numpy()[ui.matrix[r].indices])
             for u, r in zip(users, ui.users.get_indexer(users))}
    seeds = {u: split.train[split.train["user_id"] == u].sort_values("timestamp")["song_id"].astype(str)
             .drop_duplicates().tolist()[-5:] for u in users}
    deep = max(n, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_user = {u: [r["song_id"] for r in model.recommend(user_id=u, n=deep)] for u in users}
        by_seeds = {u: unheard([r["song_id"] for r in model.recommend(song_ids=seeds[u], n=deep + len(heard[u]))],
                               heard[u], deep) for u in users}
        # the fused order restricted to the new songs (for them it is the text floor, fusion.py step 3)
        among_new = {u: [s for s in (r["song_id"] for r in model.recommend(user_id=u, n=len(songs))) if s in new]
                     for u in users}
    pairs = sum(len(split.test[u]) for u in users)
    print(f"\nnew songs ({share:.0%} of the catalogue first heard from {split.cut:%Y-%m-%d}, {len(new)} songs, "
          f"{pairs} (listener, new song) pairs over {len(users)} listeners; cold at fit; bare BM25/ALS/EASE: 0 by "
          f"construction)")
    for k in (n, 50):
        random_k = np.mean([len(split.test[u]) * k / max(len(songs) - len(heard[u]), 1) for u in users])
        for mode, lists in (("user", by_user), ("seeds", by_seeds)):
            hits = sum(len(set(lists[u][:k]) & set(split.test[u])) for u in users)
            shown = {s for u in users for s in lists[u][:k]} & new
            print(f"  {mode:5s} recall@{k} of new songs {hits / pairs:.4f} (random ranking {random_k / np.mean([len(split.test[u]) for u in users]):.4f}); "
                  f"{len(shown)}/{len(new)} new songs shown in some top {k}; new songs take "
                  f"{np.mean([len(set(lists[u][:k]) & new) for u in users]):.2f} of {k} slots")
    for k in (n, 50):
        hits = sum(len(set(among_new[u][:k]) & set(split.test[u])) for u in users)
        print(f"  the new songs alone, ranked by the fusion (user_id): recall@{k} {hits / pairs:.4f} "
              f"(random order of the {len(new)} new songs {min(k / len(new), 1.0):.4f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/sunorecsys/bench"),
                    help="where the recbole wheel is kept")
    ap.add_argument("--k", type=int, default=10, help="leave-last-k: newest positive items held out per user")
    ap.add_argument("--min-train", type=int, default=5, help="judged users keep at least this many items")
    ap.add_argument("--n", type=int, default=10, help="list length (NDCG@n, coverage@n)")
    ap.add_argument("--new-share", type=float, default=0.1,
                    help="share of songs (newest by first event) held out entirely as new songs")
    ap.add_argument("--channels", action="store_true", help="also each hybrid channel alone")
    ap.add_argument("--frontier", action="store_true",
                    help="also fixed hubness reductions x fixed popularity discounts (accuracy vs coverage)")
    args = ap.parse_args()

    songs, interactions = movielens_100k(args.cache)
    split = leave_last_k(interactions, k=args.k, min_train=args.min_train)
    index = SongIndex(songs["song_id"])
    ui = build_user_items(split.train, index)
    users = sorted(split.test)
    rows = ui.users.get_indexer(users)
    relevant = [set(split.test[u]) for u in users]
    seed_idx = [index.lookup(split.seeds[u])[0] for u in users]
    n_items = len(index)
    # seed queries do not know the listener: songs they already heard are removed from every
    # method's list afterwards (they cannot be relevant: the held-out songs are new to them)
    heard = {u: set(index.ids[ui.matrix[r].indices]) for u, r in zip(users, rows)}
    print(f"# bench/recommender_real.py  MovieLens-100K (recbole wheel): {len(songs):,} items, "
          f"{interactions['user_id'].nunique():,} users, {len(interactions):,} events; leave-last-{args.k}, "
          f"{len(users)} judged users, full ranking; machine shared with other jobs")
    results = {}   # name -> (user MethodScores, seeds MethodScores, fit seconds)

    def record(name, by_user, by_seeds, fit_s):
        results[name] = (score_method(name, by_user, relevant, args.n, n_items),
                         score_method(name, by_seeds, relevant, args.n, n_items), fit_s)

    ids = index.ids.to_numpy()
    for baseline in (bm25_baseline(100), als_baseline(64, 15), EaseBaseline(200.0)):
        t = time.perf_counter()
        baseline.fit(ui.matrix)
        fit_s = time.perf_counter() - t
        by_user = [ids[r] for r in baseline.recommend_users(rows, args.n)]
        deep = baseline.recommend_seeds(seed_idx, args.n + max(len(h) for h in heard.values()))
        by_seeds = [unheard(ids[r], heard[u], args.n) for r, u in zip(deep, users)]
        record(baseline.name, by_user, by_seeds, fit_s)

    t = time.perf_counter()
    model = HybridRecommender().fit(songs, interactions=split.train)
    fit_s = time.perf_counter() - t
    record("HybridRecommender() defaults", *hybrid_lists(model, users, split.seeds, heard, args.n), fit_s)
    if args.channels:
        zero = {v: 0.0 for v in CHANNEL_WEIGHTS.values()}
        for channel, key in CHANNEL_WEIGHTS.items():
            if channel == "quality" or not hasattr(model, f"{channel}_"):
                continue
            alone = model.with_settings(**{**zero, key: 1.0}, exposure=0.0)   # the channel's own order
            record(f"  its {channel} channel alone", *hybrid_lists(alone, users, split.seeds, heard, args.n), 0.0)
    if args.frontier:
        # reporting only (the default's knobs are learned on its own validation split): coverage vs
        # NDCG@10 for fixed hubness reductions (one fit each) and fixed popularity discounts
        for alpha in (0.0, 0.25, 0.5):
            fixed = model if alpha == model.hubness_alpha() else \
                HybridRecommender(hubness=alpha).fit(songs, interactions=split.train)
            for e in (0.0, 0.1, 0.15, 0.2, 0.3):
                record(f"  hubness {alpha}, exposure fixed at {e}",
                       *hybrid_lists(fixed.with_settings(exposure=e), users, split.seeds, heard, args.n), 0.0)
        # the RP3beta channel (random_walk.py, off by default): learned as the fit learns it, then
        # fixed betas x fixed weights x fixed discounts
        t = time.perf_counter()
        walk = HybridRecommender(rp3_weight=None).fit(songs, interactions=split.train)
        record(f"  rp3 learned (beta {walk.rp3_.beta}, exposure {walk.fit_stats_['fusion'].get('exposure')})",
               *hybrid_lists(walk, users, split.seeds, heard, args.n), time.perf_counter() - t)
        for beta in (0.6, 0.7):
            fixed = walk if beta == walk.rp3_.beta else \
                HybridRecommender(rp3_weight=None, rp3_params={"beta": beta}).fit(songs, interactions=split.train)
            for w in (1.0, 2.0):
                for e in (0.0, 0.1, 0.15, 0.2):
                    record(f"  rp3 beta {beta} weight {w}, exposure fixed at {e}",
                           *hybrid_lists(fixed.with_settings(rp3_weight=w, exposure=e), users, split.seeds, heard,
                                         args.n), 0.0)
    stats = getattr(model, "fit_stats_", {})
    if "fusion" in stats:
        fusion = stats["fusion"]
        print(f"learned coverage knobs: hubness {fusion.get('hubness')} {fusion.get('hubness_table')}; "
              f"validation coverage@10 {fusion.get('validation_coverage@10')}")
        print(f"learned fusion: weights {fusion.get('weights')}, history half-life {fusion.get('half_life')}, "
              f"cold scale {fusion.get('cold_scale')}; exposure {fusion.get('exposure')} "
              f"{fusion.get('exposure_ndcg@10')}; sequence exponent {fusion.get('sequence_exponent')}; validation NDCG@10 {fusion.get('validation_ndcg@10')} vs "
              f"single channels {fusion.get('single_channel_ndcg@10')}; sizes {stats.get('channel_sizes')}")
    new_songs_report(songs, interactions, args.new_share, args.n)

    print(f"\n| method | NDCG@{args.n} user / seeds | recall@{args.n} user / seeds | coverage@{args.n} user / seeds "
          f"| fit s |")
    print("|---|---|---|---|---|")
    for name, (u, s, fit_s) in results.items():
        print(f"| {name} | {u.mean_ndcg:.4f} / {s.mean_ndcg:.4f} | {u.recall.mean():.4f} / {s.recall.mean():.4f} "
              f"| {u.coverage:.3f} / {s.coverage:.3f} | {fit_s:.1f} |")

    baselines = [n for n in results if n.startswith(("bare", "EASE"))]
    hybrid = results["HybridRecommender() defaults"]
    bm25 = results[baselines[0]]
    for mode, i in (("user", 0), ("seeds", 1)):
        best = max(baselines, key=lambda n: results[n][i].mean_ndcg)
        d, lo, hi = paired_bootstrap(hybrid[i].ndcg, results[best][i].ndcg)
        print(f"\n{mode} mode: hybrid - best baseline ({best}): NDCG {d:+.4f} (95% CI {lo:+.4f}..{hi:+.4f})")
        print(f"  ratios vs bare BM25: NDCG {hybrid[i].mean_ndcg / bm25[i].mean_ndcg:.3f}x, "
              f"coverage {hybrid[i].coverage / bm25[i].coverage:.2f}x; vs EASE: NDCG "
              f"{hybrid[i].mean_ndcg / results[baselines[2]][i].mean_ndcg:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
