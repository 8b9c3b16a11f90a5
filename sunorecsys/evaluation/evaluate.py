"""Offline evaluation: bare baselines, each channel alone, the fusion with and without the quality filter.

Two protocols, each fitting everything on its own training log:

* ``temporal``: a global temporal split of the listening log (no look-ahead); each test user
  (known before the cut, with at least one new positive song after it) is judged;
* ``leave_last_k``: every listener with enough history is judged on their ``leave_k`` newest
  songs (``protocols.py``): many more listeners (the temporal cut kept 109 of 943 on
  MovieLens-100K), at the price of other listeners' later events in training.

Each judged user asks ``recommend(user_id=..., n=k)``, which seeds from the user's training
history and never returns it; lists are ranked against the full catalogue. Beside the hybrid's
variants, the bare libraries on the same split: implicit's BM25 item-item (K=100) and ALS (64
factors, 15 it.), and EASE (lambda=200) when the listened songs fit its dense solve
(``EASE_MAX_ITEMS``). Reported per variant: Recall@K, NDCG@K, HitRate@K, recall of songs new in
the test period (cold-start), catalogue coverage, Gini of exposure, mean quality of recommended
songs, the share below the quality threshold, the share of unscored songs and, when ground truth
is given, the share of damaged songs. ``comparisons`` holds the paired bootstrap 95 % interval of
the fusion (quality filter on) minus the best bare baseline, per protocol. A threshold sweep of
the fusion (temporal protocol) gives the quality/accuracy trade-off plot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sunorecsys.evaluation.compare import paired_bootstrap
from sunorecsys.evaluation.metrics import (
    catalogue_coverage,
    gini_of_exposure,
    hit_rate_at_k,
    ndcg_at_k,
    recall_at_k,
)
from sunorecsys.evaluation.split import relevant_after_split, temporal_split
from sunorecsys.machine import available_cores, spawn_pool
from sunorecsys.recommenders.fusion import CHANNEL_NAMES

DEFAULT_THRESHOLDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
PROTOCOLS = ("temporal", "leave_last_k")
EASE_MAX_ITEMS = 10_000   # EASE's dense solve beyond this many listened songs is left out (minutes, GBs)
# Judged listeners per protocol: a reproducible random sample above this. Each listener costs ~16
# recommend() calls (every variant and threshold); the paired bootstrap interval of the fusion
# against the best baseline is computed on the sample, so it states the sampling error too.
DEFAULT_MAX_USERS = 1000


@dataclass
class EvaluationReport:
    table: pd.DataFrame                 # one row per variant
    sweep: pd.DataFrame                 # the fusion across quality thresholds
    plot_path: Path | None
    split_time: pd.Timestamp
    n_users: int
    details: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)   # protocol -> table like ``table``
    comparisons: pd.DataFrame | None = None                          # fusion - best baseline, per protocol

    def to_text(self) -> str:
        return self.table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def score_lists(lists: dict[str, list[str]], relevant: dict[str, set[str]], *, k: int, catalogue: list[str],
                quality: dict[str, float], threshold: float, damaged: set[str] | None = None,
                cold: set[str] | None = None) -> dict:
    """Metrics of one variant's lists (``{user: ranked song ids}``)."""
    users = list(lists)
    recs = [lists[u] for u in users]
    shown = [s for ranked in recs for s in ranked]
    q = np.array([quality.get(s, np.nan) for s in shown], np.float64)
    scored = q[np.isfinite(q)]
    row = {
        f"recall@{k}": float(np.mean([recall_at_k(lists[u], relevant[u], k) for u in users])) if users else 0.0,
        f"ndcg@{k}": float(np.mean([ndcg_at_k(lists[u], relevant[u], k) for u in users])) if users else 0.0,
        f"hit_rate@{k}": float(np.mean([hit_rate_at_k(lists[u], relevant[u], k) for u in users])) if users else 0.0,
        "coverage": catalogue_coverage(recs, len(catalogue)),
        "gini": gini_of_exposure(recs, catalogue),
        "mean_quality": float(scored.mean()) if len(scored) else float("nan"),
        "share_below_threshold": float((scored < threshold).sum() / len(shown)) if shown else 0.0,
        "share_unscored": float((~np.isfinite(q)).sum() / len(shown)) if shown else 0.0,
        "mean_list_length": float(np.mean([len(r) for r in recs])) if recs else 0.0,
    }
    if cold is not None:
        pairs = [(u, s) for u in users for s in relevant[u] if s in cold]
        hits = sum(s in set(lists[u][:k]) for u, s in pairs)
        row[f"cold_recall@{k}"] = hits / len(pairs) if pairs else float("nan")
    if damaged is not None:
        row["share_damaged"] = float(sum(s in damaged for s in shown) / len(shown)) if shown else 0.0
    return row


def run_variant(model, users: list[str], k: int) -> dict[str, list[str]]:
    return {u: [r["song_id"] for r in model.recommend(user_id=u, n=k)] for u in users}


def baseline_lists(model, users: list[str], k: int) -> dict[str, dict[str, list[str]]]:
    """Bare BM25, ALS and (when it fits) EASE on the model's own training matrix: {name: {user: ids}}."""
    from sunorecsys.evaluation.baselines import EaseBaseline, als_baseline, bm25_baseline

    matrix = model.user_items_
    warm = int((np.bincount(matrix.indices, minlength=matrix.shape[1]) > 0).sum())
    baselines = [bm25_baseline(100), als_baseline(64, 15)]
    if 0 < warm <= EASE_MAX_ITEMS:
        baselines.append(EaseBaseline(200.0))
    rows = model.users_.get_indexer(users)
    ids = model.songs_.ids.to_numpy()
    out = {}
    for baseline in baselines:
        if matrix.nnz == 0 or not users:
            continue
        baseline.fit(matrix)
        out[baseline.name] = {u: ids[r].tolist() for u, r in zip(users, baseline.recommend_users(rows, k))}
    return out


def evaluate_fitted(model, relevant: dict[str, set[str]], *, k: int = 10, thresholds=DEFAULT_THRESHOLDS,
                    damaged: set[str] | None = None, baselines: bool = True,
                    per_user: dict | None = None, max_users: int | None = None,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table of variants (bare baselines first) and threshold sweep for a model fitted on the training log.

    ``per_user`` (a dict, filled when given): variant name -> per-user NDCG@k array (users sorted).
    ``max_users``: judge a random sample of that many of the eligible listeners (``seed``; None =
    all); the table's ``users`` is the number judged, ``eligible_users`` the number there were.
    """
    known = model.users_.get_indexer(list(relevant)) >= 0
    users = sorted(u for u, ok in zip(relevant, known) if ok)
    eligible = len(users)
    if max_users is not None and len(users) > max_users:
        rng = np.random.default_rng(seed)
        users = sorted(rng.choice(np.asarray(users, dtype=object), size=max_users, replace=False).tolist())
    catalogue = model.songs_.ids.astype(str).tolist()
    quality = model.quality_filter_.scores_
    threshold = model.quality_threshold
    cold = set(model.songs_.ids[model.cold_].astype(str)) if hasattr(model, "cold_") else None
    rows = []

    def add(name: str, lists: dict[str, list[str]], filtered: bool) -> None:
        rows.append({"variant": name, "quality_filter": filtered,
                     **score_lists(lists, relevant, k=k, catalogue=catalogue, quality=quality,
                                   threshold=threshold, damaged=damaged, cold=cold)})
        if per_user is not None:
            key = name if name != "fusion" else ("fusion" if filtered else "fusion (no filter)")
            per_user[key] = np.array([ndcg_at_k(lists[u], relevant[u], k) for u in users])

    if baselines:
        for name, lists in baseline_lists(model, users, k).items():
            add(name, lists, False)
    with model.shared_candidates():  # every variant below asks the same channels the same queries
        filtered = _fitted_variants(model, users, k, add)
        sweep_rows = []
        for t in thresholds:
            if float(t) == float(model.quality_threshold):
                lists = filtered   # the same settings as the fusion row above: not asked twice
            else:
                lists = run_variant(model.with_settings(use_quality_filter=True, quality_threshold=float(t)), users, k)
            sweep_rows.append({"quality_threshold": float(t),
                               **score_lists(lists, relevant, k=k, catalogue=catalogue, quality=quality,
                                             threshold=threshold, damaged=damaged)})
    table = pd.DataFrame(rows)
    table.insert(2, "users", len(users))
    table.insert(3, "eligible_users", eligible)
    return table, pd.DataFrame(sweep_rows)


def _fitted_variants(model, users: list[str], k: int, add) -> dict[str, list[str]]:
    """Each channel alone, the fusion without and with the quality filter (``add(name, lists,
    filtered)`` each); returns the filtered fusion's lists."""
    zero = {f"{c}_weight" if c not in ("content",) else "item_content_weight": 0.0 for c in CHANNEL_NAMES}
    for channel in CHANNEL_NAMES:
        if channel == "ease" and not hasattr(model, "ease_"):
            continue
        key = "item_content_weight" if channel == "content" else f"{channel}_weight"
        add(channel, run_variant(model.with_settings(**{**zero, key: 1.0}), users, k), model.use_quality_filter)
    add("fusion", run_variant(model.with_settings(use_quality_filter=False), users, k), False)
    filtered = run_variant(model.with_settings(use_quality_filter=True), users, k)
    add("fusion", filtered, True)
    return filtered


def compare_to_baselines(protocol: str, per_user: dict[str, np.ndarray], k: int) -> dict:
    """Paired bootstrap 95 % CI of the fusion (filter on) minus the best bare baseline (by mean NDCG@k)."""
    names = [n for n in per_user if n.startswith(("bare", "EASE"))]
    fusion = per_user.get("fusion")
    if fusion is None or not names or len(fusion) == 0:
        return {"protocol": protocol, "users": 0 if fusion is None else len(fusion), "best_baseline": None}
    best = max(names, key=lambda n: float(per_user[n].mean()))
    diff, low, high = paired_bootstrap(fusion, per_user[best])
    return {"protocol": protocol, "users": len(fusion), f"fusion_ndcg@{k}": float(fusion.mean()),
            "best_baseline": best, f"baseline_ndcg@{k}": float(per_user[best].mean()),
            "difference": diff, "ci_low": low, "ci_high": high,
            "fusion_loses": bool(high < 0)}


def _protocol_report(protocol: str, songs_df: pd.DataFrame, interactions: pd.DataFrame, quality_scores, *,
                     quality_scores_file, k: int, test_fraction: float, split_time, thresholds, params: dict | None,
                     damaged: set[str] | None, leave_k: int, min_train: int, baselines: bool,
                     max_users: int | None) -> dict:
    """One protocol of :func:`evaluate_recommender`: split, fit, judge. A dict of plain values, so a
    worker process can return it."""
    from sunorecsys.evaluation.protocols import leave_last_k
    from sunorecsys.recommenders.hybrid import HybridRecommender

    out: dict = {"details": {}, "split_at": None}
    if protocol == "temporal":
        split = temporal_split(interactions, test_fraction=test_fraction, split_time=split_time)
        train, relevant = split.train, relevant_after_split(split)
        out["split_at"] = split.split_time
        out["details"].update(train_events=len(split.train), test_events=len(split.test))
    elif protocol == "leave_last_k":
        held = leave_last_k(interactions, k=leave_k, min_train=min_train)
        train, relevant = held.train, {u: set(s) for u, s in held.test.items()}
        out["details"]["leave_last_k"] = {"k": leave_k, "min_train": min_train, "judged_users": len(held.test),
                                          "train_events": len(held.train)}
    else:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    model = HybridRecommender(**(params or {})).fit(songs_df, quality_scores_file=quality_scores_file,
                                                    interactions=train, quality_scores=quality_scores)
    per_user: dict[str, np.ndarray] = {}
    table, sweep = evaluate_fitted(model, relevant, k=k, thresholds=thresholds, damaged=damaged,
                                   baselines=baselines, per_user=per_user, max_users=max_users)
    if len(table):
        out["judged_users"] = {"judged": int(table["users"].iloc[0]), "eligible": int(table["eligible_users"].iloc[0])}
    table.insert(0, "protocol", protocol)
    out.update(table=table, sweep=sweep, comparison=compare_to_baselines(protocol, per_user, k),
               fit_stats=model.fit_stats_, params=model.get_params())
    return out


def evaluate_recommender(songs_df: pd.DataFrame, interactions: pd.DataFrame, quality_scores=None, *,
                         quality_scores_file: str | os.PathLike | None = None, k: int = 10,
                         test_fraction: float = 0.2, split_time=None, thresholds=DEFAULT_THRESHOLDS,
                         params: dict | None = None, damaged_song_ids=None,
                         plot_path: str | os.PathLike | None = None, protocols=PROTOCOLS,
                         leave_k: int = 5, min_train: int = 3, baselines: bool = True,
                         max_users: int | None = DEFAULT_MAX_USERS, workers: int | None = None) -> EvaluationReport:
    """Fit a ``HybridRecommender(**params)`` per protocol on its training log and score the held-out songs.

    ``quality_scores``: DataFrame (``song_id, quality_score``) or mapping, and/or a guide-format
    ``quality_scores_file``. ``damaged_song_ids`` (ground truth, optional) adds ``share_damaged``.
    ``plot_path`` set -> the trade-off plot is written there (PNG). ``report.table`` is the first
    protocol's table (temporal by default), ``report.tables`` every protocol's. ``max_users``
    bounds the judged listeners per protocol (a seeded random sample; None = every one): the cost of
    an evaluation stays bounded as the log grows, and ``details["judged_users"]`` says how many of
    how many were judged. ``workers``: processes judging protocols at once (None = one per protocol
    up to the cores this process may use; 1 = all in this process). The protocols are independent
    and seeded: the report is the same for any number of workers.
    """
    protocols = tuple(protocols)
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    damaged = set(map(str, damaged_song_ids)) if damaged_song_ids is not None else None
    common = {"quality_scores_file": quality_scores_file, "k": k, "test_fraction": test_fraction,
              "split_time": split_time, "thresholds": thresholds, "params": params, "damaged": damaged,
              "leave_k": leave_k, "min_train": min_train, "baselines": baselines, "max_users": max_users}
    workers = min(len(protocols), available_cores()) if workers is None else max(1, min(workers, len(protocols)))
    if workers > 1:
        # the first protocol here, the others in spawned workers meanwhile (the refit's tail of the
        # nightly run and of `make demo` would otherwise leave the second core idle)
        with spawn_pool(workers - 1) as pool:
            later = [pool.submit(_protocol_report, p, songs_df, interactions, quality_scores, **common)
                     for p in protocols[1:]]
            results = [_protocol_report(protocols[0], songs_df, interactions, quality_scores, **common)]
            results += [f.result() for f in later]
    else:
        results = [_protocol_report(p, songs_df, interactions, quality_scores, **common) for p in protocols]

    tables, sweeps, comparisons, details = {}, {}, [], {}
    split_at, first_users = None, 0
    for protocol, result in zip(protocols, results):
        details.update(result["details"])
        if result["split_at"] is not None:
            split_at = result["split_at"]
        if "judged_users" in result:
            details.setdefault("judged_users", {})[protocol] = result["judged_users"]
        table = result["table"]
        tables[protocol], sweeps[protocol] = table, result["sweep"]
        comparisons.append(result["comparison"])
        details.setdefault("fit_stats", {})[protocol] = result["fit_stats"]
        details.setdefault("params", result["params"])
        if not first_users and len(table):
            first_users = int(table["users"].iloc[0])
    primary = protocols[0]
    written = None
    if plot_path is not None:
        from sunorecsys.evaluation.plot import plot_quality_tradeoff

        written = plot_quality_tradeoff(sweeps[primary], plot_path, k=k,
                                        current_threshold=(params or {}).get("quality_threshold", 0.4))
    return EvaluationReport(tables[primary], sweeps[primary], written,
                            split_at if split_at is not None else pd.NaT, first_users,
                            details=details, tables=tables, comparisons=pd.DataFrame(comparisons))
