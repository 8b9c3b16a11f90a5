"""The song context attached to score tables: right values, order kept, no row added or lost."""

from __future__ import annotations

import pandas as pd

from sunorecsys.catalog.song_context import attach_song_context


def test_context_is_joined_by_song_id_not_by_position():
    songs = pd.DataFrame({"song_id": ["a", "b", "c"], "genre": ["rock", "jazz", "pop"],
                          "user_id": ["u1", "u2", "u1"], "handle": ["one", "two", "one"],
                          "play_count": [5, 7, 9], "upvote_count": [1, 2, 3], "title": ["A", "B", "C"]})
    scores = pd.DataFrame({"song_id": ["c", "zz", "a"], "quality_score": [0.9, 0.1, 0.5]})
    out = attach_song_context(scores, songs)
    assert out["song_id"].tolist() == ["c", "zz", "a"]
    assert out["genre"].tolist()[0::2] == ["pop", "rock"] and pd.isna(out["genre"].iloc[1])
    assert out["play_count"].iloc[0] == 9 and "title" not in out
    # attaching again replaces, never duplicates (no genre_x / genre_y)
    again = attach_song_context(out, songs.assign(play_count=[50, 70, 90]))
    assert list(again.columns) == list(out.columns) and again["play_count"].iloc[0] == 90


def test_a_duplicated_song_row_never_multiplies_score_rows():
    songs = pd.DataFrame({"song_id": ["a", "a"], "genre": ["rock", "jazz"]})
    out = attach_song_context(pd.DataFrame({"song_id": ["a"], "quality_score": [0.7]}), songs)
    assert len(out) == 1 and out["genre"].iloc[0] == "rock"
