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
    # An empty day gives frames whose song_id column pandas typed float64 (no values to infer
    # from); ids are strings, so both sides join as object and an empty day merges to an empty frame.
    if base["song_id"].dtype != object:
        base = base.assign(song_id=base["song_id"].astype(object))
    if context["song_id"].dtype != object:
        context = context.assign(song_id=context["song_id"].astype(object))
    return base.merge(context, on="song_id", how="left", validate="many_to_one")
