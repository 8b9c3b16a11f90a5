"""A global temporal split of the listening log (one cut time for everybody).

Per-user leave-one-out leaks the future (Ji et al., TOIS 2023): with one global cut, the model
is fit only on what happened before it and judged on what came after.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sunorecsys.recommenders.listening_log import positive_pairs


@dataclass(frozen=True)
class TemporalSplit:
    train: pd.DataFrame          # events strictly before ``split_time``
    test: pd.DataFrame           # events at or after ``split_time``
    split_time: pd.Timestamp     # UTC


def temporal_split(interactions: pd.DataFrame, test_fraction: float = 0.2,
                   split_time: pd.Timestamp | str | None = None) -> TemporalSplit:
    """Cut at ``split_time`` or, when None, at the (1 - ``test_fraction``) quantile of event times."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if "timestamp" not in interactions:
        raise ValueError("a temporal split needs a 'timestamp' column")
    times = pd.to_datetime(interactions["timestamp"], utc=True)
    if times.isna().all():
        raise ValueError("no event has a timestamp")
    if split_time is None:
        split_time = times.quantile(1.0 - test_fraction)
    split_time = pd.Timestamp(split_time)
    split_time = split_time.tz_localize("UTC") if split_time.tzinfo is None else split_time.tz_convert("UTC")
    before = times < split_time
    return TemporalSplit(interactions[before.to_numpy()].reset_index(drop=True),
                         interactions[(~before & times.notna()).to_numpy()].reset_index(drop=True), split_time)


def relevant_after_split(split: TemporalSplit) -> dict[str, set[str]]:
    """Per user, songs with positive engagement after the cut that the user had not engaged with before.

    Only positive events count (summed weight > 0: a play followed by a skip is not relevant).
    Songs already in the user's pre-split history are excluded: they are never recommended back.
    """
    test = positive_pairs(split.test)
    train = positive_pairs(split.train)
    seen = set(zip(train["user_id"], train["song_id"]))
    out: dict[str, set[str]] = {}
    for user, song in zip(test["user_id"], test["song_id"]):
        if (user, song) not in seen:
            out.setdefault(user, set()).add(song)
    return out
