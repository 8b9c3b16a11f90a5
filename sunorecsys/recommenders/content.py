"""Item content: songs whose tags and genre read alike (TF-IDF, word + character n-grams)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sunorecsys.recommenders.text_index import TextSimilarityChannel


def _tags_text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, str):
        return value.replace(",", " ")
    return " ".join(str(t) for t in value if t is not None)


class ContentChannel(TextSimilarityChannel):
    """Tags + genre (genre written twice: it is the one curated field)."""
    name = "content"

    def song_texts(self, songs: pd.DataFrame) -> list[str]:
        tags = songs["tags"] if "tags" in songs else pd.Series([None] * len(songs))
        genre = songs["genre"].fillna("").astype(str) if "genre" in songs else pd.Series([""] * len(songs))
        return [f"{_tags_text(t)} {g} {g}".strip() for t, g in zip(tags, genre)]
