"""Tags as people write them for Suno: phrases and sentences read into genre, moods and instruments.

The fixture (tests/fixtures/suno_tags.json) holds real strings from public repositories, with
their source; its tuning half was used to extend the vocabulary, its reporting half only scored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sunorecsys.catalog.genres import OTHER_GENRE, genre_of_tags, split_tags, tag_facets
from sunorecsys.recommenders.content import ContentChannel

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "suno_tags.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("half", ["tuning", "reporting"])
def test_real_suno_tag_strings_get_the_genre_a_listener_would_give(half):
    rows = FIXTURE[half]
    got = [genre_of_tags(split_tags(r["tags"])) for r in rows]
    wrong = [(r["tags"], g, r["expected"]) for r, g in zip(rows, got) if g != r["expected"]]
    other = sum(g == OTHER_GENRE for g in got) / len(got)
    print(f"\n{half}: {len(rows)} strings, {other:.0%} other, {len(wrong)} wrong: {wrong}")
    if half == "tuning":
        assert not wrong
    else:  # never tuned on: measured, with the misses printed (one known: "string orchestration")
        assert len(wrong) / len(rows) <= 0.15


def test_spelling_languages_and_sentences_fold_to_one_vocabulary():
    assert genre_of_tags(split_tags("Lo_Fi , chill")) == genre_of_tags(["lofi"]) == "lo-fi"
    assert genre_of_tags(split_tags("A melancholic lo-fi track with soft piano and rain sounds")) == "lo-fi"
    assert genre_of_tags(split_tags("reggaetón romántico, voz femenina")) == "latin"
    assert genre_of_tags(["スムースジャズ"]) == "jazz" and genre_of_tags(["힙합"]) == "hip-hop"
    assert genre_of_tags(split_tags("vocaloid, weird")) == OTHER_GENRE      # unknown stays other
    assert genre_of_tags(["soulful"]) == OTHER_GENRE                         # word-bounded: not "soul"
    facets = tag_facets(split_tags("dark trap, 808 bass, aggressive male rap"))
    assert facets == {"genre": ["hip-hop"], "mood": ["dark", "energetic"], "instrument": ["bass"]}


def test_the_content_channel_meets_spelling_variants_through_the_canonical_words():
    tags = ["ローファイ, 雨", "Lo-Fi beats for study", "heavy metal riffs", "salsa brava", "string quartet",
            "bossa nova, sax", "drum and bass", "k-pop, girl group"]
    songs = pd.DataFrame({"song_id": list("abcdefgh"), "genre": ["other"] * len(tags), "tags": tags})
    channel = ContentChannel().fit(songs)
    found = channel.candidates(np.array([0]), n=2, exclude=np.array([0]))
    assert list(found.idx[:1]) == [1]
