"""Song context carried on the daily score tables, so analysts slice scores without a join.

Joining two ten-million-row tables on a UUID ``song_id`` costs about a second on two cores; the
questions analysts ask most (quality by genre, failures by creator, quality against plays) need only
these few columns. The values are a snapshot taken when the partition was scored: ``play_count``
and ``upvote_count`` keep growing in ``songs``, which stays the table of record.
"""

from __future__ import annotations

import pandas as pd

SONG_CONTEXT_COLUMNS: tuple[str, ...] = ("genre", "user_id", "handle", "play_count", "upvote_count")


def attach_song_context(frame: pd.DataFrame, songs: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one row per ``song_id``) with the song context columns from ``songs`` appended.

    Rows keep their order; a song missing from ``songs`` gets nulls. Context columns already in
    ``frame`` are replaced, so re-attaching is harmless.
    """
    columns = [c for c in SONG_CONTEXT_COLUMNS if c in songs.columns]
    context = songs[["song_id", *columns]].drop_duplicates("song_id")
    base = frame.drop(columns=[c for c in columns if c in frame.columns])
    return base.merge(context, on="song_id", how="left", validate="many_to_one")
