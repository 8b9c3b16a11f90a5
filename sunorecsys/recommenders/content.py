"""Item content: songs whose tags and genre read alike (TF-IDF, word + character n-grams).

A song's text is its raw tags (whatever the creator typed, sentences included), the canonical
genre / mood / instrument words ``catalog.genres`` reads in them (so "lofi", "Lo-Fi beats" and
"ローファイ" share the word "lo-fi"), and the genre column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sunorecsys.catalog.genres import canonical_tag_text, split_tags
from sunorecsys.recommenders.text_index import TextSimilarityChannel


def _tags_text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, str):
        return value.replace(",", " ")
    return " ".join(str(t) for t in value if t is not None)


class ContentChannel(TextSimilarityChannel):
    """Raw tags + their canonical facet words + genre (genre written twice: it is the one curated field)."""
    name = "content"

    def song_texts(self, songs: pd.DataFrame) -> list[str]:
        tags = songs["tags"] if "tags" in songs else pd.Series([None] * len(songs))
        genre = songs["genre"].fillna("").astype(str) if "genre" in songs else pd.Series([""] * len(songs))
        # tags repeat a lot (a catalogue reuses a few thousand tag sets): each distinct set is read once
        seen: dict = {}

        def tag_text(value) -> str:
            key = value if isinstance(value, str) or value is None else \
                (repr(value) if isinstance(value, float) else tuple(str(v) for v in value))
            if key not in seen:
                seen[key] = f"{_tags_text(value)} {_canonical(value)}"
            return seen[key]

        return [f"{tag_text(t)} {g} {g}".strip() for t, g in zip(tags, genre)]


def _canonical(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return canonical_tag_text(split_tags(list(value) if not isinstance(value, str) else value))
