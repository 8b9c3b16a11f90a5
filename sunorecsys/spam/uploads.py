"""Upload-pattern spam: mass uploads (an account far above the catalogue's normal rate) and bulk
artificially short tracks (many tracks just above the 30 s royalty threshold from one account).

Both rules are per account and relative to the catalogue, and conservative by default: the clean
sample has one creator with 40 of 200 songs over 14 days and 55 songs of 30-35 s, none flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW = pd.Timedelta(hours=24)
# An account is mass-uploading when one 24 h window holds at least MASS_FACTOR x the catalogue's
# normal rate (the median uploads of an active account-day), and never below MIN_MASS_UPLOADS.
MASS_FACTOR = 20.0
MIN_MASS_UPLOADS = 25
# Short-track bulk: >= MIN_SHORT_TRACKS tracks of (30, 33] s from one account, and at least half of it.
SHORT_BAND_S = (30.0, 33.0)
MIN_SHORT_TRACKS = 10
MIN_SHORT_SHARE = 0.5


def normal_daily_rate(songs: pd.DataFrame) -> float:
    """Median uploads per active account-day in the catalogue (>= 1)."""
    if songs.empty:
        return 1.0
    day = pd.to_datetime(songs["created_at"], utc=True).dt.floor("D")
    per_day = songs.assign(day=day).groupby(["user_id", "day"]).size()
    return float(max(per_day.median(), 1.0))


def mass_uploads(songs: pd.DataFrame, factor: float = MASS_FACTOR, min_uploads: int = MIN_MASS_UPLOADS
                 ) -> pd.DataFrame:
    """Songs inside a 24 h window where their account uploaded >= max(min_uploads, factor x normal rate).

    Returns ``song_id, window_uploads, threshold, normal_rate`` (window_uploads = the largest such
    window holding the song).
    """
    cols = ["song_id", "window_uploads", "threshold", "normal_rate"]
    if songs.empty:
        return pd.DataFrame(columns=cols)
    rate = normal_daily_rate(songs)
    threshold = int(max(min_uploads, np.ceil(factor * rate)))
    out = []
    frame = songs[["song_id", "user_id", "created_at"]].dropna(subset=["user_id"]).copy()
    frame["t"] = pd.to_datetime(frame["created_at"], utc=True)
    for _user, group in frame.sort_values("t", kind="stable").groupby("user_id", sort=False):
        if len(group) < threshold:
            continue
        t = group["t"].dt.tz_convert(None).to_numpy().astype("datetime64[ns]")
        ends = np.searchsorted(t, t + WINDOW.to_timedelta64(), side="left")  # window [t_i, t_i + 24 h)
        counts = ends - np.arange(len(t))
        best = np.zeros(len(t), np.int64)
        for start in np.flatnonzero(counts >= threshold):
            best[start:ends[start]] = np.maximum(best[start:ends[start]], counts[start])
        ids = group["song_id"].to_numpy()
        out += [{"song_id": ids[i], "window_uploads": int(best[i])} for i in np.flatnonzero(best)]
    result = pd.DataFrame(out, columns=["song_id", "window_uploads"])
    return result.assign(threshold=threshold, normal_rate=rate)[cols]


def short_track_bulk(songs: pd.DataFrame, band_s: tuple[float, float] = SHORT_BAND_S,
                     min_tracks: int = MIN_SHORT_TRACKS, min_share: float = MIN_SHORT_SHARE) -> pd.DataFrame:
    """Tracks in ``band_s`` (seconds, (lo, hi]) from accounts with >= ``min_tracks`` of them making up
    >= ``min_share`` of the account's uploads. Returns ``song_id, duration_s, account_short, account_total``."""
    cols = ["song_id", "duration_s", "account_short", "account_total"]
    if songs.empty:
        return pd.DataFrame(columns=cols)
    frame = songs[["song_id", "user_id", "duration_s"]].dropna(subset=["user_id"]).copy()
    duration = pd.to_numeric(frame["duration_s"], errors="coerce")
    frame["short"] = (duration > band_s[0]) & (duration <= band_s[1])
    frame["account_short"] = frame.groupby("user_id")["short"].transform("sum").astype(int)
    frame["account_total"] = frame.groupby("user_id")["song_id"].transform("size").astype(int)
    hit = frame[frame["short"] & (frame["account_short"] >= min_tracks)
                & (frame["account_short"] >= min_share * frame["account_total"])]
    return hit[cols].reset_index(drop=True)
