"""The guide's ``HybridRecommender``: five channels fused on one scale, quality filter last.

Channels (one module each): item CF (co-listening, ``item_cf.py``), item content (tags and genre,
``content.py``), prompt similarity (``prompt_similarity.py``), user (ALS fold-in + same creator,
``user.py``) and quality (``quality_channel.py``). ``fusion.py`` documents how their lists are
merged and filtered. The constructor only stores parameters; ``fit`` learns (state ends in ``_``).

``recommend`` returns a list of dicts (``rank, song_id, title, creator, score, quality_score,
quality_missing, channels, channel_scores``). Seed ids not in the catalogue are reported in
``last_unknown_seeds`` (and with a warning), a ``user_id`` unseen in the log in ``last_unknown_user``.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import time
import warnings

import numpy as np
import pandas as pd

from sunorecsys.recommenders.base import SongIndex
from sunorecsys.recommenders.content import ContentChannel
from sunorecsys.recommenders.fusion import CHANNEL_NAMES, FusionRules, fuse
from sunorecsys.recommenders.item_cf import ItemCFChannel
from sunorecsys.recommenders.listening_log import build_user_items
from sunorecsys.recommenders.prompt_similarity import PromptChannel
from sunorecsys.recommenders.quality_channel import QualityChannel
from sunorecsys.recommenders.quality_filter import QualityFilter
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


class HybridRecommender:
    """Weights are relative (they need not sum to 1); each channel's scores are in [0, 1] before weighting.

    ``quality_threshold`` in [0, 1] applies when ``use_quality_filter``; ``missing_quality`` is the
    policy for unscored songs ("keep", flagged, or "drop"); ``max_per_creator`` caps one creator's
    songs in a list (None = no cap); ``candidates_per_channel`` is how deep each channel looks;
    ``history_seeds`` is how many of a listener's strongest songs seed a ``user_id`` query.
    """

    # Default weights: tuned on the sample catalogue with a validation split inside the training
    # period (fit before 60 % of the log, judged on 60-80 %); the guide's own weights are
    # 0.25 / 0.30 / 0.20 / 0.20 / 0.10. Prompts carry little signal beyond tags there.
    def __init__(self, item_cf_weight: float = 0.30, item_content_weight: float = 0.35,
                 prompt_weight: float = 0.05, user_weight: float = 0.30, quality_weight: float = 0.10,
                 quality_threshold: float = 0.4, use_quality_filter: bool = True, missing_quality: str = "keep",
                 max_per_creator: int | None = 3, candidates_per_channel: int = 200, history_seeds: int = 50,
                 item_cf_params: dict | None = None, content_params: dict | None = None,
                 prompt_params: dict | None = None, user_params: dict | None = None,
                 spam_policy: str = "exclude") -> None:
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
        self.spam_policy = check_spam_policy(spam_policy)  # see spam_policy.py

    # -- settings ---------------------------------------------------------------------------------
    @property
    def weights(self) -> dict[str, float]:
        return {"item_cf": self.item_cf_weight, "content": self.item_content_weight,
                "prompt": self.prompt_weight, "user": self.user_weight, "quality": self.quality_weight}

    def get_params(self) -> dict:
        """The constructor's parameters (what ``save`` records and ``load`` passes back)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: copy.deepcopy(getattr(self, k)) for k in names}

    def with_settings(self, **params) -> HybridRecommender:
        """A copy with other weights / filter settings sharing this one's fitted channels (no refit).

        Only query-time settings may change (weights, threshold, filter, caps); channel
        hyper-parameters need a new ``fit``.
        """
        fixed = {"item_cf_params", "content_params", "prompt_params", "user_params"}
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
            interactions: pd.DataFrame | None = None, quality_scores=None, spam_flags=None) -> HybridRecommender:
        """Learn every channel from the songs table, the listening log and the quality scores.

        ``interactions`` None reads the default data root's log (``read_interactions``); an absent
        log leaves the CF and ALS channels empty (with a warning). ``quality_scores`` may be a
        DataFrame (``song_id, quality_score``) or a mapping; the file's entries win over it.
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
        self.users_ = user_items.users
        creators, _ = pd.factorize(
            songs["user_id"].astype("string") if "user_id" in songs else pd.Series([pd.NA] * len(songs)))
        self.creators_ = np.asarray(creators, np.int64)
        self.titles_ = songs["title"].fillna("").astype(str).to_numpy() if "title" in songs else \
            np.full(len(songs), "", dtype=object)
        self.creator_names_ = _creator_labels(songs)

        t = time.perf_counter()
        self.item_cf_ = ItemCFChannel(**(self.item_cf_params or {})).fit(self.user_items_)
        timings["item_cf"] = time.perf_counter() - t
        t = time.perf_counter()
        self.content_ = ContentChannel(**(self.content_params or {})).fit(songs)
        timings["content"] = time.perf_counter() - t
        t = time.perf_counter()
        self.prompt_ = PromptChannel(**(self.prompt_params or {})).fit(songs)
        timings["prompt"] = time.perf_counter() - t
        t = time.perf_counter()
        self.user_ = UserChannel(**(self.user_params or {})).fit(self.user_items_, self.creators_)
        timings["user"] = time.perf_counter() - t

        self.quality_filter_ = QualityFilter(quality_threshold=self.quality_threshold,
                                             quality_scores_file=quality_scores_file,
                                             quality_scores=quality_scores,
                                             missing_quality=self.missing_quality).fit(songs)
        quality = self.quality_filter_.quality_array(self.songs_.ids)
        self.quality_ = QualityChannel().fit(quality, self.user_.popularity_)
        self.fit_stats_ = {**user_items.stats, "songs": len(self.songs_),
                           "scored_songs": int(np.isfinite(quality).sum()),
                           "unscored_songs": int((~np.isfinite(quality)).sum()),
                           "channel_fit_seconds": {k: round(v, 3) for k, v in timings.items()},
                           "fit_seconds": round(time.perf_counter() - started, 3),
                           "fitted_at": pd.Timestamp.now(tz="UTC").isoformat()}
        if user_items.stats.get("unknown_song_events"):
            log.info("dropped %d listening events for songs absent from the catalogue",
                     user_items.stats["unknown_song_events"])
        self.last_unknown_seeds: list[str] = []
        self.last_unknown_user: str | None = None
        return self

    # -- query ------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "songs_"):
            raise RuntimeError("HybridRecommender is not fitted: call fit(songs_df, ...) or load(dir)")

    def channels(self) -> dict:
        return {"item_cf": self.item_cf_, "content": self.content_, "prompt": self.prompt_,
                "user": self.user_, "quality": self.quality_}

    def user_history(self, user_id: str) -> np.ndarray:
        """Song indices a known listener engaged with positively, strongest first (empty if unknown)."""
        pos = self.users_.get_indexer([str(user_id)])[0]
        if pos < 0:
            return np.empty(0, np.int64)
        start, end = self.user_items_.indptr[pos], self.user_items_.indptr[pos + 1]
        items, weights = self.user_items_.indices[start:end], self.user_items_.data[start:end]
        return items[np.lexsort((items, -weights))].astype(np.int64)

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
        if user_id is not None:
            pos = self.users_.get_indexer([str(user_id)])[0]
            if pos < 0:
                self.last_unknown_user = str(user_id)
                warnings.warn(f"user {user_id!r} has no listening history", stacklevel=2)
            else:
                user_row = int(pos)
                history = self.user_history(user_id)
                exclude = np.union1d(seed_idx, history)
                seed_idx = np.concatenate([seed_idx, history[: self.history_seeds]])
        seed_idx = pd.unique(seed_idx).astype(np.int64)
        if len(seed_idx) == 0 and user_row is None:
            return []
        flagged = getattr(self, "spam_flagged_", None)  # a model saved without flags has none
        exclude = exclude_flagged(exclude, flagged, self.spam_policy)
        depth = max(self.candidates_per_channel, n)
        weights = self.weights
        lists = {name: ch.candidates(seed_idx, depth, exclude, user_row)
                 for name, ch in self.channels().items() if name != "quality" and weights[name] > 0}
        rules = FusionRules(self.quality_threshold if self.use_quality_filter else None,
                            self.missing_quality if self.use_quality_filter else "keep",
                            self.max_per_creator)
        rows = fuse(lists, weights, quality=self.quality_.quality_, quality_votes=self.quality_.votes,
                    creators=self.creators_, exclude=exclude, rules=rules, n=rows_to_fetch(n, flagged, self.spam_policy),
                    fallback=self.quality_.candidates(seed_idx, depth, exclude))
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
        """Load a saved model; never executes code from the files (``allow_pickle=False``)."""
        from sunorecsys.recommenders.persistence import load_recommender

        return load_recommender(directory)


def _creator_labels(songs: pd.DataFrame) -> np.ndarray:
    for column in ("handle", "user_id"):
        if column in songs:
            labels = songs[column].astype("string").fillna("")
            if column == "handle" and "user_id" in songs:
                labels = labels.where(labels != "", songs["user_id"].astype("string").fillna(""))
            return labels.astype(str).to_numpy()
    return np.full(len(songs), "", dtype=object)


__all__ = ["CHANNEL_NAMES", "HybridRecommender"]
