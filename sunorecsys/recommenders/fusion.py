"""Fusion: weighted sum of per-channel rank scores; new songs by their text; then the quality rules.

Order of operations (each step documented because each one changes what users see):
1. each channel's list becomes rank scores (``rank_scores``: 1 / log2(2 + rank), songs tied in a
   channel share their mean rank), multiplied by the channel's weight. Ranks, not raw scores over
   the list maximum: a weak channel whose many candidates tie at its top no longer adds its full
   weight to all of them (MovieLens-100K: 11 candidates tied at the top of the content channel
   for the median query);
2. lists are merged by song (scores add up; the proposing channels are remembered);
3. cold songs (no listens in the fitted log) cannot be proposed by the log channels, so they
   also get ``cold_scale * (sum of the channel weights) * text`` where text is the mean rank score
   of the content and prompt channels: a fusion that learned to ignore text for warm songs still
   reaches the songs added last night;
4. the quality channel adds ``quality_weight * quality`` to every merged candidate; then, with an
   ``exposure`` e > 0, every score is divided by ``(1 + listeners) ** e``: a song many listeners
   already know needs a clearer lead to take a slot (the fusion learns e within an accuracy budget,
   ``fusion_learning.search_exposure``: wider exposure of the catalogue's creators at a bounded cost);
5. seeds (and a listener's heard songs) are excluded;
6. the quality threshold is applied last, on the merged list: a song scoring below it is removed;
   a song with no quality score follows ``missing_quality``: "keep" (default, flagged
   ``quality_missing``) or "drop";
7. at most ``max_per_creator`` songs of one creator, then the best ``n``; equal scores are
   ordered by ``tiebreak`` (quality, then listeners, then a hash of the id: never catalogue order);
8. if fewer than ``n`` remain, the list is topped up from the quality channel's ranking
   (well-scored, most listened songs), ranked after every real match and under the same rules.
   A top-up row's score is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sunorecsys.recommenders.base import Candidates

CHANNEL_NAMES = ("item_cf", "content", "prompt", "user", "quality", "ease", "sequence", "rp3")
TEXT_CHANNELS = ("content", "prompt")
MISSING_QUALITY_POLICIES = ("keep", "drop")


@dataclass(frozen=True)
class FusionRules:
    quality_threshold: float | None     # None = no filter
    missing_quality: str = "keep"
    max_per_creator: int | None = 3


def passes_quality(quality: np.ndarray, threshold: float | None, missing_quality: str) -> np.ndarray:
    """Boolean mask: score >= threshold, or unscored and the policy keeps unscored songs."""
    if missing_quality not in MISSING_QUALITY_POLICIES:
        raise ValueError(f"missing_quality must be one of {MISSING_QUALITY_POLICIES}, got {missing_quality!r}")
    quality = np.asarray(quality, np.float64)
    scored = np.isfinite(quality)
    if threshold is None:
        return scored | (missing_quality == "keep")
    return np.where(scored, np.nan_to_num(quality, nan=-1.0) >= threshold, missing_quality == "keep")


def rank_scores(scores: np.ndarray, query: np.ndarray | None = None) -> np.ndarray:
    """1 / log2(2 + rank) of each score in its list (rank 0 = best; ties share their mean rank), float32.

    ``query`` (optional, one id per score) holds many lists as long arrays, each ranked on its own:
    the batched recommendations (recommenders/batch.py) rank a block of seeds in one call.
    """
    s = np.asarray(scores, np.float64)
    if len(s) == 0:
        return np.empty(0, np.float32)
    if query is None:  # one list (every query of recommend()): the short path
        order = np.argsort(-s, kind="stable")
        s_sorted = s[order]
        new_run = np.concatenate([[True], s_sorted[1:] != s_sorted[:-1]])
        start_pos = np.flatnonzero(new_run)
        end_pos = np.concatenate([start_pos[1:], [len(s)]])
    else:
        query = np.asarray(query)
        order = np.lexsort((-s, query))  # stable: equal scores keep their input order
        q_sorted, s_sorted = query[order], s[order]
        first_of_query = np.concatenate([[True], q_sorted[1:] != q_sorted[:-1]])
        new_run = first_of_query | np.concatenate([[True], s_sorted[1:] != s_sorted[:-1]])
        # a run of ties ends where the next run starts; positions count from the query's first song
        query_start = np.maximum.accumulate(np.where(first_of_query, np.arange(len(s)), 0))
        run_starts = np.flatnonzero(new_run)
        run_ends = np.concatenate([run_starts[1:], [len(s)]])
        start_pos = run_starts - query_start[run_starts]
        end_pos = start_pos + (run_ends - run_starts)
    rank = np.empty(len(s), np.float64)
    rank[order] = ((start_pos + end_pos - 1) / 2.0)[np.cumsum(new_run) - 1]
    return (1.0 / np.log2(2.0 + rank)).astype(np.float32)


def tiebreak_order(quality: np.ndarray, popularity: np.ndarray, song_ids) -> np.ndarray:
    """Rank of every song for equal fused scores (0 = first): higher quality, more listeners, id hash."""
    import zlib

    q = np.nan_to_num(np.asarray(quality, np.float64), nan=-1.0)
    digest = np.fromiter((zlib.crc32(str(s).encode()) for s in song_ids), np.int64, count=len(q))
    order = np.lexsort((digest, -np.asarray(popularity, np.float64), -q))
    rank = np.empty(len(q), np.int64)
    rank[order] = np.arange(len(q))
    return rank


def exposure_factor(listeners: np.ndarray, exposure: float) -> np.ndarray:
    """``(1 + listeners) ** -exposure`` (float64): 1 for a song nobody heard, smaller the more known."""
    return np.power(1.0 + np.asarray(listeners, np.float64), -float(exposure))


def pooled_scores(pool: np.ndarray, inv: np.ndarray, val_parts: list, norm_parts: list, bit_parts: list, *,
                  q_weight: float, text_weight: float, cold: np.ndarray | None, cold_scale: float,
                  quality_votes, popularity: np.ndarray | None, exposure: float) -> tuple[np.ndarray, np.ndarray]:
    """Fused score and channel bits of every pooled candidate (steps 2-4 of ``fuse``).

    ``pool``: the song of each pooled candidate; ``inv``: the pooled position of every element of
    the concatenated channel parts (``val_parts``: weighted rank scores, ``norm_parts``: rank
    scores, ``bit_parts``: the channel's bit). Shared by ``fuse`` (one query) and the batched
    seed recommendations (a pool per query), so that both do the same arithmetic in the same order.
    """
    n_pool = len(pool)
    score = np.bincount(inv, weights=np.concatenate(val_parts), minlength=n_pool)
    if cold is not None and cold_scale > 0:
        text = np.zeros(n_pool, np.float64)
        offset = 0
        for bits_part, norm in zip(bit_parts, norm_parts):
            if CHANNEL_NAMES[int(bits_part[0])] in TEXT_CHANNELS:
                text += np.bincount(inv[offset:offset + len(norm)], weights=norm, minlength=n_pool)
            offset += len(norm)
        floor = cold_scale * text_weight * text / len(TEXT_CHANNELS)
        score = np.where(cold[pool], np.maximum(score, floor), score)
    if q_weight > 0:
        score = score + q_weight * quality_votes(pool)
    if exposure > 0 and popularity is not None:
        score = score * exposure_factor(popularity[pool], exposure)
    bits = np.zeros(n_pool, np.int64)
    np.bitwise_or.at(bits, inv, np.left_shift(1, np.concatenate(bit_parts)))
    return score, bits


class ChannelPart(NamedTuple):
    """One channel's say in the fusion: its songs, their rank scores and weighted rank scores."""
    bit: int  # the channel's position in CHANNEL_NAMES
    idx: np.ndarray  # song indices
    norm: np.ndarray  # rank scores (float32)
    weighted: np.ndarray  # norm * the channel's weight (0 for a text channel heard only for cold songs)
    query: np.ndarray | None  # the query of each song, for lists of many queries (recommenders/batch.py)


def channel_parts(lists: dict, weights: dict[str, float], *, cold: np.ndarray | None,
                  cold_scale: float) -> tuple[float, list[ChannelPart]]:
    """Steps 1 and 3 of the fusion: the rank scores of every channel that speaks, and the total weight
    of the channels other than quality (the scale of the cold-song text floor).

    ``lists`` maps channel names to candidate lists: ``Candidates`` of one query, or lists of many
    queries that carry a ``query`` array (each ranked on its own).
    """
    parts = []
    text_weight = sum(float(weights.get(c, 0.0)) for c in CHANNEL_NAMES if c != "quality")
    for bit, name in enumerate(CHANNEL_NAMES):
        cand = lists.get(name)
        w = float(weights.get(name, 0.0))
        floor = name in TEXT_CHANNELS and cold is not None and cold_scale > 0 and text_weight > 0
        if name == "quality" or cand is None or len(cand.idx) == 0 or (w <= 0 and not floor):
            continue
        query = getattr(cand, "query", None)
        norm = rank_scores(cand.scores, query)
        idx = cand.idx
        if w <= 0:  # a text channel the fusion ignores still speaks for cold songs (step 3)
            keep = cold[idx]
            idx, norm = idx[keep], norm[keep]
            query = None if query is None else query[keep]
            if len(idx) == 0:
                continue
        parts.append(ChannelPart(bit, idx, norm, norm * w, query))
    return text_weight, parts


def fuse(lists: dict[str, Candidates], weights: dict[str, float], *, quality: np.ndarray,
         quality_votes, creators: np.ndarray, exclude: np.ndarray, rules: FusionRules, n: int,
         fallback: Candidates | None = None, cold: np.ndarray | None = None, cold_scale: float = 0.0,
         tiebreak: np.ndarray | None = None, popularity: np.ndarray | None = None,
         exposure: float = 0.0) -> list[dict]:
    """Merge channel lists into at most ``n`` rows: idx, score, quality, quality_missing, channels, channel_scores.

    ``cold``: per song, True when it has no listens (step 3); ``tiebreak``: per song, its rank
    among equal scores (``tiebreak_order``; None = song index); ``popularity``: listeners per song,
    used with ``exposure`` (step 4).
    """
    text_weight, parts = channel_parts(lists, weights, cold=cold, cold_scale=cold_scale)
    idx_parts = [p.idx for p in parts]
    val_parts = [p.weighted for p in parts]
    norm_parts = [p.norm for p in parts]
    bit_parts = [np.full(len(p.idx), p.bit, np.int64) for p in parts]
    q_weight = float(weights.get("quality", 0.0))
    if not idx_parts and fallback is not None and len(fallback):
        # only the quality channel speaks (or nothing else found anything): its ranking is the list
        idx_parts.append(fallback.idx)
        val_parts.append(np.zeros(len(fallback), np.float32))
        norm_parts.append(rank_scores(fallback.scores))
        bit_parts.append(np.full(len(fallback), CHANNEL_NAMES.index("quality"), np.int64))
        fallback = None
    if not idx_parts:
        return []
    all_idx = np.concatenate(idx_parts)
    pool, inv = np.unique(all_idx, return_inverse=True)
    score, bits = pooled_scores(pool, inv, val_parts, norm_parts, bit_parts, q_weight=q_weight,
                                text_weight=text_weight, cold=cold, cold_scale=cold_scale,
                                quality_votes=quality_votes, popularity=popularity, exposure=exposure)
    per_channel = {}
    for bits_part, norm, idx in zip(bit_parts, norm_parts, idx_parts):
        name = CHANNEL_NAMES[int(bits_part[0])]
        per_channel[name] = dict(zip(idx.tolist(), norm.tolist()))

    keep = ~np.isin(pool, exclude)
    if fallback is not None and len(fallback):
        # top-up candidates come after every real match, in the quality channel's order
        extra = fallback.idx[~np.isin(fallback.idx, pool)]
        floor = float(score[keep].min()) if keep.any() else 0.0
        pool = np.concatenate([pool, extra])
        score = np.concatenate([score, floor - 1.0 - np.arange(len(extra), dtype=np.float64) * 1e-6])
        bits = np.concatenate([bits, np.full(len(extra), 1 << CHANNEL_NAMES.index("quality"), np.int64)])
        keep = np.concatenate([keep, ~np.isin(extra, exclude)])
    if rules.quality_threshold is not None or rules.missing_quality == "drop":
        keep &= passes_quality(quality[pool], rules.quality_threshold, rules.missing_quality)
    pool, score, bits = pool[keep], score[keep], bits[keep]
    order = np.lexsort((pool if tiebreak is None else tiebreak[pool], -np.round(score, 9)))
    rows: list[dict] = []
    per_creator: dict[int, int] = {}
    for k in order:
        song = int(pool[k])
        creator = int(creators[song])
        if rules.max_per_creator is not None and creator >= 0:
            if per_creator.get(creator, 0) >= rules.max_per_creator:
                continue
            per_creator[creator] = per_creator.get(creator, 0) + 1
        q = float(quality[song])
        names = [name for bit, name in enumerate(CHANNEL_NAMES) if bits[k] >> bit & 1]
        rows.append({"idx": song, "score": max(float(score[k]), 0.0),
                     "quality_score": q if np.isfinite(q) else None,
                     "quality_missing": not np.isfinite(q), "channels": names,
                     "channel_scores": {c: round(per_channel[c][song], 4)
                                        for c in names if song in per_channel.get(c, {})}})
        if len(rows) == n:
            break
    return rows
