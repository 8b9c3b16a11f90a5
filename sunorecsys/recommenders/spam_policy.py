"""What the recommender does with songs the spam stage flagged (``spam_flags``).

Policies: ``"exclude"`` (default: a flagged song is never recommended, as the streaming services do
with spam they keep in the catalogue), ``"keep"`` (ignore the flags), ``"demote"`` (flagged songs
only after every unflagged one). The flags are a boolean per song of the fitted catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

SPAM_POLICIES = ("exclude", "keep", "demote")


def check_spam_policy(policy: str) -> str:
    if policy not in SPAM_POLICIES:
        raise ValueError(f"spam_policy must be one of {SPAM_POLICIES}, got {policy!r}")
    return policy


def flagged_mask(song_ids: np.ndarray, spam_flags: pd.DataFrame | Iterable[str] | None) -> np.ndarray:
    """Bool per song of ``song_ids``: flagged by the spam stage.

    ``spam_flags`` is the ``spam_flags`` table (``song_id, flagged``; allowed songs are not flagged)
    or an iterable of flagged song ids; None = nothing flagged.
    """
    if spam_flags is None:
        return np.zeros(len(song_ids), bool)
    if isinstance(spam_flags, pd.DataFrame):
        flagged = spam_flags.loc[spam_flags["flagged"].astype(bool), "song_id"].astype(str)
    else:
        flagged = pd.Series(list(spam_flags), dtype="string").astype(str)
    return pd.Index(np.asarray(song_ids).astype(str)).isin(set(flagged))


def exclude_flagged(exclude: np.ndarray, flagged: np.ndarray | None, policy: str) -> np.ndarray:
    """Song indices never to recommend: ``exclude`` plus, under "exclude", every flagged song."""
    if flagged is None or check_spam_policy(policy) != "exclude" or not flagged.any():
        return exclude
    return np.union1d(exclude, np.flatnonzero(flagged)).astype(np.int64)


def rows_to_fetch(n: int, flagged: np.ndarray | None, policy: str) -> int:
    """How many fused rows to ask for: under "demote", enough to refill the list after flagged rows move down."""
    if flagged is None or check_spam_policy(policy) != "demote":
        return n
    return n + int(min(flagged.sum(), 10 * n))


def demote_flagged(rows: list[dict], flagged: np.ndarray | None, policy: str, n: int) -> list[dict]:
    """Under "demote", unflagged rows first (order kept), then flagged ones; at most ``n``. Rows carry ``idx``."""
    if flagged is None or check_spam_policy(policy) != "demote":
        return rows[:n]
    clean = [r for r in rows if not flagged[r["idx"]]]
    spam = [r for r in rows if flagged[r["idx"]]]
    return (clean + spam)[:n]
