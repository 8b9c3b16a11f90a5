"""The guide's ``HybridRecommender``: channels fused by rank with weights learned at fit time, quality filter last.

Channels (one module each): item CF (co-listening, ``item_cf.py``), item content (tags and genre,
``content.py``), prompt similarity (``prompt_similarity.py``), user (ALS fold-in + same creator,
``user.py``), EASE (``ease.py``) and quality (``quality_channel.py``). ``fusion.py`` documents how
their lists are merged and filtered, ``fusion_learning.py`` how the weights are learned from the
newest part of the log being fitted. The constructor only stores parameters; ``fit`` learns
(state ends in ``_``).

``recommend`` returns a list of dicts (``rank, song_id, title, creator, score, quality_score,
quality_missing, channels, channel_scores``). Seed ids not in the catalogue are reported in
``last_unknown_seeds`` (and with a warning), a ``user_id`` unseen in the log in ``last_unknown_user``.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd

from sunorecsys.recommenders import sizing
from sunorecsys.recommenders.base import Candidates, SongIndex
from sunorecsys.recommenders.content import ContentChannel
from sunorecsys.recommenders.ease import DEFAULT_MAX_ITEMS, EaseChannel
from sunorecsys.recommenders.fusion import CHANNEL_NAMES, TEXT_CHANNELS, FusionRules, fuse, tiebreak_order
from sunorecsys.recommenders.fusion_learning import (
    LearnedExposure,
    build_features,
    coverage,
    exposure_key,
    holdout_split,
    ndcg,
    sample_listeners,
    search_exposure,
    search_weights,
    useful_rows,
)
from sunorecsys.recommenders.hubness import HUBNESS_GRID, reduce_hubness
from sunorecsys.recommenders.item_cf import ItemCFChannel
from sunorecsys.recommenders.listening_log import build_user_items
from sunorecsys.recommenders.prompt_similarity import PromptChannel
from sunorecsys.recommenders.quality_channel import QualityChannel
from sunorecsys.recommenders.quality_filter import QualityFilter
from sunorecsys.recommenders.random_walk import BETA_GRID, RP3betaChannel
from sunorecsys.recommenders.sequence import SequenceChannel, near_counts
from sunorecsys.recommenders.spam_policy import (
    check_spam_policy,
    demote_flagged,
    exclude_flagged,
    flagged_mask,
    rows_to_fetch,
)
from sunorecsys.recommenders.user import UserChannel

log = logging.getLogger(__name__)


def read_default_interactions() -> pd.DataFrame | None:
    """The listening log of the default data root, or None (with a warning) when there is none."""
    from sunorecsys.catalog.interactions import read_interactions
    from sunorecsys.paths import DataPaths

    try:
        frame, _stats = read_interactions(DataPaths.from_env())
    except FileNotFoundError as exc:
        warnings.warn(f"no listening log ({exc}): the item CF and ALS channels stay empty", stacklevel=3)
        return None
    if frame is None or len(frame) == 0:
        warnings.warn("the listening log is empty: the item CF and ALS channels stay empty", stacklevel=3)
        return None
    return frame


WEIGHT_PARAMS = {"item_cf": "item_cf_weight", "content": "item_content_weight", "prompt": "prompt_weight",
                 "user": "user_weight", "quality": "quality_weight", "ease": "ease_weight",
                 "sequence": "sequence_weight", "rp3": "rp3_weight"}
GUIDE_CHANNELS = ("item_cf", "content", "prompt", "user", "quality")
LOG_CHANNELS = ("item_cf", "user", "ease", "sequence", "rp3")
QUERY_CHANNELS = ("item_cf", "content", "prompt", "user", "ease", "sequence", "rp3")
# channels beyond the guide's five: off when all five guide weights are given (the guide's fusion, exactly)
EXTRA_CHANNELS = ("ease", "sequence", "rp3")
# Used when the log is too small to learn from (fewer than MIN_VALIDATION_USERS listeners to hold
# out): text carries most, since co-listening on a handful of listeners is mostly noise.
PRIOR_WEIGHTS = {"item_cf": 0.2, "content": 0.5, "prompt": 0.2, "user": 0.2, "quality": 0.1, "ease": 0.2, "sequence": 0.2,
                 "rp3": 0.2}
DEFAULT_COLD_SCALE = 0.5
MIN_VALIDATION_USERS = 5
SEED_QUERY_MAX = 5        # validation seed queries use the listener's 1-5 newest songs
HALF_LIFE_USERS = 200
# MovieLens-100K: alpha 0.25 widened the mean validation coverage@10 by 1 % (0.462 -> 0.466), within
# this tolerance; on its test users it traded seed-query coverage (0.479 -> 0.429) for NDCG@10
COVERAGE_TOL = 0.02
HUB_CHANNELS = ("item_cf", "sequence")   # neighbour channels whose scores hubness reduction rescales
# channels whose lists change with a coverage knob (hubness alpha, RP3beta's beta): asked per variant
VARIANT_CHANNELS = (*HUB_CHANNELS, "rp3")
VALIDATION_DEPTH = 50     # candidates per channel in validation (a top 10 rarely comes from deeper)     # listeners on which the history half-life is picked


class HybridRecommender:
    """Weights are relative (they need not sum to 1) and apply to rank scores in [0, 1].

    A weight left at ``None`` (the default) is learned by ``fit`` on the newest part of the log
    (``fit_stats_["fusion"]`` says what was learned and its validation NDCG@10); a weight given
    is used as given. When all five of the guide's weights are given, the EASE channel is off
    unless ``ease_weight`` is given too (the guide's five-channel fusion, exactly).

    ``quality_threshold`` in [0, 1] applies when ``use_quality_filter``; ``missing_quality`` is the
    policy for unscored songs ("keep", flagged, or "drop"); ``max_per_creator`` caps one creator's
    songs in a list (None = no cap); ``candidates_per_channel`` is how deep each channel looks;
    ``history_seeds`` is how many of a listener's newest songs seed a ``user_id`` query, weighted
    0.5 ** (age / ``history_half_life``) (age in songs; "learned" = picked on the validation split,
    None = no decay). ``validation_users`` bounds the listeners held out to learn the fusion.

    Coverage knobs ("learned" on the validation split, or given): ``exposure`` >= 0 discounts the
    fused score by listeners (``fusion.py`` step 4; default learned); ``hubness`` in [0, 1] divides
    the item CF and sequence neighbour scores by the candidate's neighbourhood density
    (``hubness.py``; fixed at fit; default 0 = off: on MovieLens-100K its gain was within the
    validation noise and learning it doubles the validation fit). Learned, they are the pair with
    the widest validation coverage@10 whose NDCG@10 stays within ``exposure_budget`` (relative) of
    the fusion without either, and never below the best single channel.

    ``rp3_weight``: the RP3beta channel (``random_walk.py``), off by default (0.0); None = learned,
    its beta picked on the validation split among ``random_walk.BETA_GRID`` (widest coverage within
    the same budget). On MovieLens-100K leave-last-10 it lifted seed-query NDCG@10 but, with the
    budget relative to that higher fusion, the learned discount shrank and validation coverage@10
    of seed queries fell (0.525 -> 0.489; test 0.479 -> 0.419): it does not widen the catalogue
    shown at equal accuracy there, so it stays opt-in (``bench/recommender_real.py --frontier``).
    """

    def __init__(self, item_cf_weight: float | None = None, item_content_weight: float | None = None,
                 prompt_weight: float | None = None, user_weight: float | None = None,
                 quality_weight: float | None = None,
                 quality_threshold: float = 0.4, use_quality_filter: bool = True, missing_quality: str = "keep",
                 max_per_creator: int | None = 3, candidates_per_channel: int = 200, history_seeds: int = 50,
                 item_cf_params: dict | None = None, content_params: dict | None = None,
                 prompt_params: dict | None = None, user_params: dict | None = None,
                 ease_weight: float | None = None, ease_params: dict | None = None,
                 history_half_life: float | str | None = "learned", validation_users: int = 1000,
                 random_state: int = 0, spam_policy: str = "exclude", sequence_weight: float | None = None,
                 sequence_params: dict | None = None, exposure: float | str = "learned",
                 exposure_budget: float = 0.02, hubness: float | str = 0.0, rp3_weight: float | None = 0.0,
                 rp3_params: dict | None = None) -> None:
        self.item_cf_weight = item_cf_weight
        self.item_content_weight = item_content_weight
        self.prompt_weight = prompt_weight
        self.user_weight = user_weight
        self.quality_weight = quality_weight
        self.quality_threshold = quality_threshold
        self.use_quality_filter = use_quality_filter
        self.missing_quality = missing_quality
        self.max_per_creator = max_per_creator
        self.candidates_per_channel = candidates_per_channel
        self.history_seeds = history_seeds
        self.item_cf_params = item_cf_params
        self.content_params = content_params
        self.prompt_params = prompt_params
        self.user_params = user_params
        self.ease_weight = ease_weight
        self.ease_params = ease_params
        self.history_half_life = history_half_life
        self.validation_users = validation_users
        self.random_state = random_state
        self.spam_policy = check_spam_policy(spam_policy)  # see spam_policy.py
        self.sequence_weight = sequence_weight
        self.sequence_params = sequence_params
        self.exposure = exposure
        self.exposure_budget = exposure_budget
        self.hubness = hubness
        self.rp3_weight = rp3_weight
        self.rp3_params = rp3_params

    # -- settings ---------------------------------------------------------------------------------
    def given_weights(self) -> dict[str, float | None]:
        """The constructor's weights by channel (None = learned at fit)."""
        given = {c: getattr(self, p) for c, p in WEIGHT_PARAMS.items()}
        if all(given[c] is not None for c in GUIDE_CHANNELS):
            for extra in EXTRA_CHANNELS:
                if given[extra] is None:
                    given[extra] = 0.0
        return given

    def fusion_weights(self, mode: str = "user") -> dict[str, float]:
        """Effective weights for a ``user_id`` query ("user") or a seed query ("seeds")."""
        learned = getattr(self, "fusion_", {}).get("weights", {}).get(mode, {})
        out = {}
        for c, w in self.given_weights().items():
            if w is None:
                w = learned.get(c, PRIOR_WEIGHTS[c])
            out[c] = float(w)
        for extra in EXTRA_CHANNELS:
            if extra in out and not hasattr(self, f"{extra}_"):
                out[extra] = 0.0
        return out

    @property
    def weights(self) -> dict[str, float]:
        """The seed-query weights (the guide's five channels and EASE)."""
        return self.fusion_weights("seeds")

    @property
    def cold_scale(self) -> float:
        return float(getattr(self, "fusion_", {}).get("cold_scale", DEFAULT_COLD_SCALE))

    def exposure_for(self, mode: str) -> float:
        """The popularity discount (``fusion.py`` step 4) for a "user" or "seeds" query: given, else learned."""
        if self.exposure != "learned":
            return float(self.exposure or 0.0)
        return float(getattr(self, "fusion_", {}).get("exposure", {}).get(mode, 0.0))

    @property
    def half_life(self) -> float | None:
        if self.history_half_life == "learned":
            return getattr(self, "fusion_", {}).get("half_life", 10.0)
        return None if self.history_half_life is None else float(self.history_half_life)

    def get_params(self) -> dict:
        """The constructor's parameters (what ``save`` records and ``load`` passes back)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: copy.deepcopy(getattr(self, k)) for k in names}

    def with_settings(self, **params) -> HybridRecommender:
        """A copy with other weights / filter settings sharing this one's fitted channels (no refit).

        Only query-time settings may change (weights, threshold, filter, caps, half-life); channel
        hyper-parameters need a new ``fit``. A weight set to None falls back to the learned one.
        """
        fixed = {"item_cf_params", "content_params", "prompt_params", "user_params", "ease_params",
                 "sequence_params", "validation_users", "random_state", "hubness", "rp3_params"}
        if fixed & set(params):
            raise ValueError(f"{sorted(fixed & set(params))} need a new fit")
        other = copy.copy(self)
        for key, value in params.items():
            if key not in self.get_params():
                raise TypeError(f"unknown setting {key!r}")
            setattr(other, key, value)
        return other

    # -- fit --------------------------------------------------------------------------------------
    def fit(self, songs_df: pd.DataFrame, quality_scores_file: str | os.PathLike | None = None,
            interactions: pd.DataFrame | None = None, quality_scores=None,
            spam_flags=None) -> HybridRecommender:
        """Learn every channel and the fusion from the songs table, the listening log and the quality scores.

        ``interactions`` None reads the default data root's log (``read_interactions``); an absent
        log leaves the CF, ALS and EASE channels empty (with a warning). ``quality_scores`` may be a
        DataFrame (``song_id, quality_score``) or a mapping; the file's entries win over it.
        Weights left at None are learned on the newest songs of up to ``validation_users``
        listeners (the log channels are fitted twice: without those songs, then on everything).
        """
        started = time.perf_counter()
        if "song_id" not in songs_df:
            raise ValueError("songs_df needs a 'song_id' column")
        songs = songs_df.reset_index(drop=True)
        self.songs_ = SongIndex(songs["song_id"])
        self.spam_flagged_ = flagged_mask(self.songs_.ids, spam_flags)  # spam_flags table or ids; None = none
        timings = {}
        if interactions is None:
            interactions = read_default_interactions()
        user_items = build_user_items(interactions, self.songs_)
        self.user_items_ = user_items.matrix
        self.pair_times_ = user_items.times
        self.users_ = user_items.users
        creators, _ = pd.factorize(
            songs["user_id"].astype("string") if "user_id" in songs else pd.Series([pd.NA] * len(songs)))
        self.creators_ = np.asarray(creators, np.int64)
        self.titles_ = songs["title"].fillna("").astype(str).to_numpy() if "title" in songs else \
            np.full(len(songs), "", dtype=object)
        self.creator_names_ = _creator_labels(songs)

        t = time.perf_counter()
        self.content_ = ContentChannel(**(self.content_params or {})).fit(songs)
        timings["content"] = time.perf_counter() - t
        t = time.perf_counter()
        self.prompt_ = PromptChannel(**(self.prompt_params or {})).fit(songs)
        timings["prompt"] = time.perf_counter() - t
        self.quality_filter_ = QualityFilter(quality_threshold=self.quality_threshold,
                                             quality_scores_file=quality_scores_file,
                                             quality_scores=quality_scores,
                                             missing_quality=self.missing_quality).fit(songs)
        quality = self.quality_filter_.quality_array(self.songs_.ids)

        t = time.perf_counter()
        self.fusion_ = self._learn_fusion(quality)
        timings["fusion_validation"] = time.perf_counter() - t
        for name, channel in self._fit_log_channels(self.user_items_, self.pair_times_, timings).items():
            setattr(self, f"{name}_", channel)
        self.quality_ = QualityChannel().fit(quality, self.user_.popularity_)
        self._set_query_state()
        self.fit_stats_ = {**user_items.stats, "songs": len(self.songs_),
                           "scored_songs": int(np.isfinite(quality).sum()),
                           "unscored_songs": int((~np.isfinite(quality)).sum()),
                           "cold_songs": int(self.cold_.sum()),
                           "channel_sizes": self._channel_sizes(),
                           "fusion": self.fusion_,
                           "channel_fit_seconds": {k: round(v, 3) for k, v in timings.items()},
                           "fit_seconds": round(time.perf_counter() - started, 3),
                           "fitted_at": pd.Timestamp.now(tz="UTC").isoformat()}
        if user_items.stats.get("unknown_song_events"):
            log.info("dropped %d listening events for songs absent from the catalogue",
                     user_items.stats["unknown_song_events"])
        self.last_unknown_seeds: list[str] = []
        self.last_unknown_user: str | None = None
        return self

    def _use_ease(self) -> bool:
        return self.given_weights()["ease"] != 0.0

    def _use_sequence(self) -> bool:
        return self.given_weights()["sequence"] != 0.0

    def _use_rp3(self) -> bool:
        return self.given_weights()["rp3"] != 0.0

    def _rp3_params(self, warm: int, beta: float | None = None) -> dict:
        """K by ``sizing.bm25_neighbours`` (the item CF rule: same kernel, same memory); beta as
        given, else ``beta`` (a validation variant), else as learned on validation (else the class default)."""
        params = {"neighbours": sizing.bm25_neighbours(warm), **(self.rp3_params or {})}
        learned = getattr(self, "fusion_", {}).get("rp3_beta") if beta is None else beta
        if "beta" not in (self.rp3_params or {}) and learned is not None:
            params["beta"] = learned
        return params

    def _sequence_params(self, pairs: int) -> dict:
        """Window by ``sizing``; the exponent as given, else as learned on validation (else the class default)."""
        params = {"window": sizing.sequence_window(pairs), **(self.sequence_params or {})}
        learned = getattr(self, "fusion_", {}).get("sequence_exponent")
        if "popularity_exponent" not in params and learned is not None:
            params["popularity_exponent"] = learned
        return params

    def hubness_alpha(self) -> float:
        """The hubness reduction of the neighbour channels (``hubness.py``): given, else learned (0 = none)."""
        if self.hubness == "learned":
            return float(getattr(self, "fusion_", {}).get("hubness", 0.0))
        return float(self.hubness or 0.0)

    def _fit_log_channels(self, matrix, times=None, timings: dict | None = None,
                          hubness: float | None = None) -> dict:
        """item CF, ALS (+ creators), EASE and sequence on ``matrix``, sized by ``sizing`` unless params say otherwise.

        The neighbour channels get the hubness reduction ``hubness`` (None = ``hubness_alpha()``).
        """
        timings = {} if timings is None else timings
        alpha = self.hubness_alpha() if hubness is None else hubness
        warm = int((np.bincount(matrix.indices, minlength=matrix.shape[1]) > 0).sum())
        cf_params = {"neighbours": sizing.bm25_neighbours(warm), **(self.item_cf_params or {})}
        factors = (self.user_params or {}).get("factors", sizing.als_factors(matrix.nnz))
        user_params = {"factors": factors, "regularization": sizing.als_regularization(factors),
                       "alpha": 1.0, "iterations": sizing.als_iterations(matrix.nnz), **(self.user_params or {})}
        out = {}
        t = time.perf_counter()
        out["item_cf"] = ItemCFChannel(**cf_params).fit(matrix)
        timings["item_cf"] = timings.get("item_cf", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        out["user"] = UserChannel(**user_params).fit(matrix, self.creators_)
        timings["user"] = timings.get("user", 0.0) + time.perf_counter() - t
        ease_max = (self.ease_params or {}).get("max_items", DEFAULT_MAX_ITEMS)
        if self._use_ease() and matrix.nnz and warm > ease_max:
            # the dense solve stops fitting the time budget here (see ease.py): the channel is off
            log.info("EASE off: %d listened songs > max_items %d", warm, ease_max)
        elif self._use_ease() and matrix.nnz:
            t = time.perf_counter()
            out["ease"] = EaseChannel(**(self.ease_params or {})).fit(matrix)
            timings["ease"] = timings.get("ease", 0.0) + time.perf_counter() - t
        if self._use_sequence() and matrix.nnz:
            t = time.perf_counter()
            out["sequence"] = SequenceChannel(**self._sequence_params(matrix.nnz)).fit(matrix, times)
            timings["sequence"] = timings.get("sequence", 0.0) + time.perf_counter() - t
        if self._use_rp3() and matrix.nnz:
            t = time.perf_counter()
            out["rp3"] = RP3betaChannel(**self._rp3_params(warm)).fit(matrix)
            timings["rp3"] = timings.get("rp3", 0.0) + time.perf_counter() - t
        if alpha:
            for name in HUB_CHANNELS:
                if name in out:
                    reduce_hubness(out[name].similarity_, alpha)
        return out

    @staticmethod
    def _with_hubness(probe, alpha: float):
        """A shallow copy of ``probe`` whose item CF and sequence matrices have the hubness reduction ``alpha``."""
        if not alpha:
            return probe
        other = copy.copy(probe)
        for name in HUB_CHANNELS:
            if hasattr(probe, f"{name}_"):
                channel = copy.copy(getattr(probe, f"{name}_"))
                channel.similarity_ = reduce_hubness(channel.similarity_.copy(), alpha)
                setattr(other, f"{name}_", channel)
        return other

    def _set_query_state(self) -> None:
        """Per-song arrays every query needs: cold songs and the tie-break order."""
        self.cold_ = self.user_.popularity_ <= 0
        self.tiebreak_ = tiebreak_order(self.quality_.quality_, self.user_.popularity_, self.songs_.ids)

    def _channel_sizes(self) -> dict:
        sizes = {"bm25_neighbours": self.item_cf_.neighbours, "als_factors": self.user_.factors,
                 "als_regularization": self.user_.regularization}
        if hasattr(self, "ease_"):
            sizes.update({"ease_items": len(self.ease_.pool_), "ease_l2": round(self.ease_.l2_, 2)})
        if hasattr(self, "sequence_"):
            sizes.update({"sequence_window": self.sequence_.window,
                          "sequence_exponent": self.sequence_.popularity_exponent})
        if hasattr(self, "rp3_"):
            sizes.update({"rp3_neighbours": self.rp3_.neighbours, "rp3_alpha": self.rp3_.alpha,
                          "rp3_beta": self.rp3_.beta})
        return sizes

    # -- fusion learning --------------------------------------------------------------------------
    def _learn_fusion(self, quality: np.ndarray) -> dict:
        """Weights per query kind learned on held-out newest songs (``fusion_learning``); {} = nothing to learn."""
        given = self.given_weights()
        to_learn = [c for c, w in given.items() if w is None]
        if not to_learn and self.history_half_life != "learned":
            return {"learned": False, "reason": "every weight given"}
        if self.user_items_.nnz == 0:
            return {"learned": False, "reason": "no listening log"}
        matrix, times = sample_listeners(self.user_items_, self.pair_times_, sizing.VALIDATION_MAX_PAIRS,
                                         seed=self.random_state)
        split = holdout_split(matrix, times, max_users=self.validation_users, seed=self.random_state)
        if len(split.rows) < MIN_VALIDATION_USERS:
            return {"learned": False, "reason": f"{len(split.rows)} listeners with enough history to hold out "
                                                f"(< {MIN_VALIDATION_USERS}): prior weights"}
        probe = copy.copy(self)
        probe.user_items_, probe.pair_times_ = split.train, split.train_times
        for name, channel in self._fit_log_channels(split.train, split.train_times, hubness=0.0).items():
            setattr(probe, f"{name}_", channel)
        probe.quality_ = QualityChannel().fit(quality, probe.user_.popularity_)
        probe._set_query_state()
        channels = [c for c in QUERY_CHANNELS if hasattr(probe, f"{c}_")]
        votes = probe.quality_.votes(np.arange(len(self.songs_)))
        rng = np.random.default_rng(self.random_state)
        depth = min(self.candidates_per_channel, VALIDATION_DEPTH)
        fixed = {c: w for c, w in given.items() if w is not None and c != "quality"}
        fixed_quality = given["quality"]
        learned: dict = {"learned": True, "validation_users": len(split.rows),
                         "validation_fit_pairs": int(matrix.nnz),
                         "held_out_songs": int(sum(len(t) for t in split.targets)),
                         "cold_targets": int(sum(probe.cold_[t].sum() for t in split.targets)),
                         "weights": {}, "validation_ndcg@10": {}, "single_channel_ndcg@10": {}}

        # user_id queries: each listener's remaining history, newest first, recency-weighted
        histories = [probe._history_of_row(int(r)) for r in split.rows]

        def user_features(hl, groups):
            return build_features([probe._lists(channels, histories[g][: self.history_seeds],
                                                 sizing.recency_weights(min(len(histories[g]), self.history_seeds), hl),
                                                 histories[g], int(split.rows[g]), depth) for g in groups],
                                  [split.targets[g] for g in groups], channels, probe.cold_, votes, probe.tiebreak_,
                                  probe.user_.popularity_)

        seeds = [h[: int(rng.integers(1, SEED_QUERY_MAX + 1))] for h in histories]
        if hasattr(probe, "sequence_") and "popularity_exponent" not in (self.sequence_params or {}):
            probe.sequence_, learned["sequence_exponent"], learned["sequence_exponent_ndcg@10"] = \
                self._pick_sequence_exponent(probe, split, seeds, histories, votes, depth)

        # the history half-life: the one whose best single channel does best, on up to HALF_LIFE_USERS listeners
        all_groups = np.arange(len(split.rows))
        best_hl = self.half_life
        if self.history_half_life == "learned":
            few = np.sort(rng.choice(all_groups, size=min(HALF_LIFE_USERS, len(all_groups)), replace=False))
            scores = {}
            for hl in sizing.HALF_LIFE_CHOICES:
                f = user_features(hl, few)
                scores[hl] = max(ndcg(f, np.eye(len(channels))[i]) for i in range(len(channels)))
            best_hl = max(scores, key=lambda hl: (scores[hl], -(hl or 1e9)))
            learned["half_life_ndcg@10"] = {str(k): round(v, 5) for k, v in scores.items()}
        learned["half_life"] = best_hl
        # the queries of both kinds; lists of the channels no knob changes are asked once
        hub_channels = [c for c in VARIANT_CHANNELS if c in channels]
        static = [c for c in channels if c not in hub_channels]
        queries = {"user": [(histories[g][: self.history_seeds],
                             sizing.recency_weights(min(len(histories[g]), self.history_seeds), best_hl),
                             histories[g], int(split.rows[g])) for g in all_groups],
                   "seeds": [(s, None, h, None) for s, h in zip(seeds, histories)]}
        static_lists = {mode: [probe._lists(static, *q, depth) for q in qs] for mode, qs in queries.items()}

        def features(mode, source):
            lists = [{**fixed_lists, **source._lists(hub_channels, *q, depth)}
                     for fixed_lists, q in zip(static_lists[mode], queries[mode])]
            return build_features(lists, split.targets, channels, probe.cold_, votes, probe.tiebreak_,
                                  probe.user_.popularity_)

        betas = (None,)
        if hasattr(probe, "rp3_"):
            betas = BETA_GRID if "beta" not in (self.rp3_params or {}) else (float(self.rp3_params["beta"]),)
        warm = int((np.bincount(split.train.indices, minlength=split.train.shape[1]) > 0).sum())
        # the probe's own RP3beta (fitted at the class default or a given beta) is one of the variants
        rp3_fits: dict = {probe.rp3_.beta: probe.rp3_} if hasattr(probe, "rp3_") else {}

        def source_of(alpha: float, beta: float | None):
            """The probe with hubness ``alpha`` on its neighbour channels and RP3beta fitted at ``beta``."""
            source = self._with_hubness(probe, alpha)
            if beta is not None:
                if beta not in rp3_fits:
                    rp3_fits[beta] = RP3betaChannel(**self._rp3_params(warm, beta)).fit(split.train)
                source = copy.copy(source) if source is probe else source
                source.rp3_ = rp3_fits[beta]
            return source

        learned.update(self._learn_coverage_knobs(source_of, betas, features, fixed, fixed_quality))
        # one cold scale for both kinds of query: the smaller keeps warm lists safest
        learned["cold_scale"] = min(learned["cold_scale_by_mode"].values())
        return learned

    def _learn_coverage_knobs(self, source_of, betas, features, fixed, fixed_quality) -> dict:
        """Weights per query kind, then the coverage knobs: hubness alpha, RP3beta's beta, the exposure discount.

        Each variant (alpha in ``HUBNESS_GRID`` if learned, beta in ``betas``: ``random_walk.BETA_GRID``
        unless given, (None,) without the RP3beta channel) is a probe whose neighbour channels are
        changed accordingly (``source_of(alpha, beta)``); the fusion's weights are learned on its
        validation features. Each query kind then takes the strongest exposure discount whose
        NDCG@10 stays within ``exposure_budget`` of the reference (the best variant without hubness
        and without discount) and at or above every single channel of the variant and of its
        counterpart without hubness. The start is the
        variant without hubness whose fusion is most accurate; another replaces it only when it is
        feasible and its mean validation coverage@10 over the two query kinds is wider by more than
        ``COVERAGE_TOL`` (relative). ``features(mode, source)`` gives the validation features of one
        query kind asked of ``source``. Returns the entries of ``fit_stats_["fusion"]``.
        """
        n_songs = len(self.songs_)
        alphas = HUBNESS_GRID if self.hubness == "learned" else (float(self.hubness or 0.0),)
        alphas = (0.0, *[a for a in alphas if a != 0.0]) if 0.0 in alphas else tuple(alphas)
        learn_exposure = self.exposure == "learned"
        budget = self.exposure_budget if learn_exposure or self.hubness == "learned" or len(betas) > 1 else 0.0
        reference, floor, trials = {}, {}, {}
        variants = [(a, b) for a in alphas for b in betas]
        for variant in variants:
            source = source_of(*variant)
            trial = {}
            for mode in ("user", "seeds"):
                f = features(mode, source)
                result = search_weights(f, fixed=fixed, fixed_quality=fixed_quality)
                if variant[0] == alphas[0]:
                    reference[mode] = max(reference.get(mode, 0.0), result.ndcg)
                # the fused model may not lose to any channel it holds, nor to one without hubness reduction
                plain = floor.get((alphas[0], variant[1], mode), 0.0)       # alphas[0] comes first
                floor[(*variant, mode)] = max(plain, max(result.single.values()))
                trial[mode] = (f, result)
            trials[variant] = trial
        outcome = {}
        for variant in variants:
            per_mode = {}
            for mode, (f, result) in trials[variant].items():
                w = np.array([result.weights.get(c, 0.0) for c in f.channels], np.float64)
                if learn_exposure:
                    exp = search_exposure(f, result.weights, result.quality_weight, result.cold_scale, budget,
                                          floor[(*variant, mode)], reference=reference[mode], n_songs=n_songs)
                else:
                    e = self.exposure_for(mode)
                    value = ndcg(useful_rows(f), w, result.quality_weight, result.cold_scale, e)
                    allowed = max((1.0 - budget) * reference[mode], floor[(*variant, mode)])
                    cov = round(coverage(f, w, n_songs, result.quality_weight, result.cold_scale, e), 5)
                    key = exposure_key(e)
                    exp = LearnedExposure(e, round(value, 5), {key: round(value, 5)}, {key: cov},
                                          feasible=value >= allowed - 1e-12)
                per_mode[mode] = (result, exp)
            feasible = all(exp.feasible for _, exp in per_mode.values())
            mean_cov = float(np.mean([exp.chosen_coverage for _, exp in per_mode.values()]))
            outcome[variant] = (feasible, mean_cov, per_mode)
        # the start: no hubness, the most accurate beta (mean plain validation NDCG@10 of both kinds);
        # it stands even when nothing fits the budget (it is the reference itself)
        start = max((v for v in variants if v[0] == alphas[0]),
                    key=lambda v: (round(float(np.mean([r.ndcg for _, r in trials[v].values()])), 5),
                                   -(v[1] or 0.0)))
        # another variant is kept only for a clear coverage gain (COVERAGE_TOL relative): on a few
        # hundred validation queries a few songs more or less is noise, and a knob changes every list
        best = start
        for variant in variants:
            if variant != start and outcome[variant][0] and \
                    outcome[variant][1] > outcome[best][1] * (1.0 + COVERAGE_TOL):
                best = variant

        def row(v):
            return {"feasible": outcome[v][0] or v == start, "mean_coverage@10": round(outcome[v][1], 5),
                    **{m: {"ndcg@10": exp.ndcg, "exposure": exp.exposure} for m, (_, exp) in outcome[v][2].items()}}

        learned: dict = {"hubness": best[0], "weights": {}, "validation_ndcg@10": {}, "single_channel_ndcg@10": {},
                         "cold_scale_by_mode": {}, "validation_coverage@10": {},
                         "hubness_table": {str(a): row((a, best[1])) for a in alphas}}
        if best[1] is not None:
            learned["rp3_beta"] = best[1]
            learned["rp3_table"] = {str(b): row((best[0], b)) for b in betas}
        for mode, (result, exp) in outcome[best][2].items():
            learned["weights"][mode] = {**result.weights, "quality": result.quality_weight}
            learned["single_channel_ndcg@10"][mode] = result.single
            learned["cold_scale_by_mode"][mode] = result.cold_scale
            learned["validation_ndcg@10"][mode] = exp.ndcg
            learned["validation_coverage@10"][mode] = exp.chosen_coverage
            if learn_exposure:
                learned.setdefault("exposure", {})[mode] = exp.exposure
                learned.setdefault("exposure_ndcg@10", {})[mode] = exp.by_exposure
                learned.setdefault("exposure_coverage@10", {})[mode] = exp.coverage
        learned["accuracy_floor_ndcg@10"] = {m: round(floor[(*best, m)], 5) for m in ("user", "seeds")}
        learned["budget_reference_ndcg@10"] = {m: round(v, 5) for m, v in reference.items()}
        return learned

    @staticmethod
    def _pick_sequence_exponent(probe, split, seeds, histories, votes, depth):
        """The sequence channel's popularity exponent with the best seed-query NDCG@10 alone on validation.

        One count of the near pairs, rescaled per exponent (``sizing.SEQUENCE_EXPONENTS``); ties go
        to the larger exponent (wider coverage at equal accuracy).
        """
        base = probe.sequence_
        counts = near_counts(split.train, split.train_times, base.window, base.decay)
        listeners = np.bincount(split.train.indices, minlength=split.train.shape[1])
        scores, fitted = {}, {}
        for e in sizing.SEQUENCE_EXPONENTS:
            ch = SequenceChannel(base.window, base.decay, e, base.neighbours).fit_counts(counts, listeners)
            f = build_features([{"sequence": ch.candidates(s, depth, h)} for s, h in zip(seeds, histories)],
                               split.targets, ["sequence"], probe.cold_, votes, probe.tiebreak_)
            scores[e], fitted[e] = ndcg(f, np.ones(1)), ch
        best = max(scores, key=lambda e: (round(scores[e], 4), e))
        return fitted[best], best, {str(k): round(v, 5) for k, v in scores.items()}

    # -- query ------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "songs_"):
            raise RuntimeError("HybridRecommender is not fitted: call fit(songs_df, ...) or load(dir)")

    def channels(self) -> dict:
        out = {"item_cf": self.item_cf_, "content": self.content_, "prompt": self.prompt_,
               "user": self.user_, "quality": self.quality_}
        for extra in EXTRA_CHANNELS:
            if hasattr(self, f"{extra}_"):
                out[extra] = getattr(self, f"{extra}_")
        return out

    def _history_of_row(self, pos: int) -> np.ndarray:
        start, end = self.user_items_.indptr[pos], self.user_items_.indptr[pos + 1]
        items, weights = self.user_items_.indices[start:end], self.user_items_.data[start:end]
        times = self.pair_times_[start:end] if self.pair_times_ is not None and len(self.pair_times_) else \
            np.zeros(end - start, np.int64)
        return items[np.lexsort((items, -weights, -times))].astype(np.int64)

    def user_history(self, user_id: str) -> np.ndarray:
        """Song indices a known listener engaged with positively, newest first (empty if unknown)."""
        pos = self._user_row(user_id)
        if pos < 0:
            return np.empty(0, np.int64)
        return self._history_of_row(int(pos))

    @contextlib.contextmanager
    def shared_candidates(self) -> Iterator[HybridRecommender]:
        """Within the block, this model and the copies ``with_settings`` makes of it in the block
        remember each channel's candidate list per query (seeds, their weights, exclusions,
        listener, depth): a list depends on the fitted channel alone, never on the weights, the
        threshold or the filter. The offline evaluation asks each listener about 16 times with
        other settings: only the fusion differs. The results are the same as without the block.
        """
        self._candidate_memo: dict | None = {}
        try:
            yield self
        finally:
            self._candidate_memo = None

    def _candidates(self, name: str, channel, seed_idx: np.ndarray, depth: int, exclude: np.ndarray,
                    user_row: int | None = None, seed_weights: np.ndarray | None = None) -> Candidates:
        memo = getattr(self, "_candidate_memo", None)
        if memo is None:
            return channel.candidates(seed_idx, depth, exclude, user_row, seed_weights=seed_weights)
        key = (name, np.asarray(seed_idx).tobytes(), None if seed_weights is None else seed_weights.tobytes(),
               np.asarray(exclude).tobytes(), user_row, depth)
        if key not in memo:
            memo[key] = channel.candidates(seed_idx, depth, exclude, user_row, seed_weights=seed_weights)
        return memo[key]

    def _user_row(self, user_id) -> int:
        """The listener's row of ``user_items_``, -1 when unknown (a hash look-up: the evaluation asks
        thousands of times, and ``get_indexer`` builds arrays for each)."""
        try:
            pos = self.users_.get_loc(str(user_id))
        except KeyError:
            return -1
        return int(pos) if isinstance(pos, (int, np.integer)) else int(self.users_.get_indexer([str(user_id)])[0])

    def _lists(self, names, seed_idx: np.ndarray, seed_weights: np.ndarray | None, exclude: np.ndarray,
               user_row: int | None, depth: int) -> dict[str, Candidates]:
        channels = self.channels()
        return {name: self._candidates(name, channels[name], seed_idx, depth, exclude, user_row, seed_weights)
                for name in names if name in channels}

    def recommend(self, song_ids: list[str] | None = None, n: int = 10, user_id: str | None = None) -> list[dict]:
        """Up to ``n`` recommendations for seed songs and/or a listener, best first.

        Seeds and the listener's heard songs are never recommended. Unknown seeds are listed in
        ``last_unknown_seeds``; if nothing usable remains the result is empty (with a warning).
        """
        self._check_fitted()
        if n <= 0:
            return []
        seed_idx, unknown = self.songs_.lookup(song_ids or [])
        self.last_unknown_seeds = unknown
        self.last_unknown_user = None
        if unknown:
            warnings.warn(f"{len(unknown)} seed id(s) not in the catalogue: {unknown[:5]}", stacklevel=2)
        user_row = None
        exclude = seed_idx
        seed_weights = None
        if user_id is not None:
            pos = self._user_row(user_id)
            if pos < 0:
                self.last_unknown_user = str(user_id)
                warnings.warn(f"user {user_id!r} has no listening history", stacklevel=2)
            else:
                user_row = int(pos)
                history = self._history_of_row(user_row)
                exclude = np.union1d(seed_idx, history)
                recent = history[~np.isin(history, seed_idx)][: self.history_seeds]
                seed_weights = np.concatenate([np.ones(len(seed_idx), np.float32),
                                               sizing.recency_weights(len(recent), self.half_life)])
                seed_idx = np.concatenate([seed_idx, recent])
        keep = np.zeros(len(seed_idx), bool)   # the first time each seed appears
        keep[np.unique(seed_idx, return_index=True)[1]] = True
        seed_idx = seed_idx[keep].astype(np.int64)
        if seed_weights is not None:
            seed_weights = seed_weights[keep]
        if len(seed_idx) == 0 and user_row is None:
            return []
        flagged = getattr(self, "spam_flagged_", None)  # a model saved without flags has none
        exclude = exclude_flagged(exclude, flagged, self.spam_policy)
        depth = max(self.candidates_per_channel, n)
        mode = "user" if user_row is not None else "seeds"
        weights = self.fusion_weights(mode)
        cold_scale = self.cold_scale
        wanted = [c for c in QUERY_CHANNELS if weights.get(c, 0.0) > 0
                  or (c in TEXT_CHANNELS and cold_scale > 0)]
        lists = self._lists(wanted, seed_idx, seed_weights, exclude, user_row, depth)
        rules = FusionRules(self.quality_threshold if self.use_quality_filter else None,
                            self.missing_quality if self.use_quality_filter else "keep",
                            self.max_per_creator)
        rows = fuse(lists, weights, quality=self.quality_.quality_, quality_votes=self.quality_.votes,
                    creators=self.creators_, exclude=exclude, rules=rules,
                    n=rows_to_fetch(n, flagged, self.spam_policy),
                    fallback=self._candidates("quality", self.quality_, seed_idx, depth, exclude),
                    cold=self.cold_, cold_scale=cold_scale, tiebreak=self.tiebreak_,
                    popularity=self.user_.popularity_, exposure=self.exposure_for(mode))
        rows = demote_flagged(rows, flagged, self.spam_policy, n)
        out = []
        for rank, row in enumerate(rows, start=1):
            i = row.pop("idx")
            out.append({"rank": rank, "song_id": str(self.songs_.ids[i]), "title": str(self.titles_[i]),
                        "creator": str(self.creator_names_[i]), **row})
        return out

    def recommend_frame(self, song_ids=None, n: int = 10, user_id=None) -> pd.DataFrame:
        """``recommend`` as a DataFrame (channels joined by '+')."""
        rows = self.recommend(song_ids=song_ids, n=n, user_id=user_id)
        frame = pd.DataFrame(rows, columns=["rank", "song_id", "title", "creator", "score", "quality_score",
                                            "quality_missing", "channels", "channel_scores"])
        frame["channels"] = frame["channels"].map(lambda c: "+".join(c))
        return frame

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike):
        """Write arrays (npz, no pickle), the song table (Parquet) and a JSON manifest to ``directory``."""
        from sunorecsys.recommenders.persistence import save_recommender

        return save_recommender(self, directory)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> HybridRecommender:
        """Load a saved model, every array checked first; never executes code from the files."""
        from sunorecsys.recommenders.persistence import load_recommender

        return load_recommender(directory, cls)


def _creator_labels(songs: pd.DataFrame) -> np.ndarray:
    for column in ("handle", "user_id"):
        if column in songs:
            labels = songs[column].astype("string").fillna("")
            if column == "handle" and "user_id" in songs:
                labels = labels.where(labels != "", songs["user_id"].astype("string").fillna(""))
            return labels.astype(str).to_numpy()
    return np.full(len(songs), "", dtype=object)


__all__ = ["CHANNEL_NAMES", "HybridRecommender"]
