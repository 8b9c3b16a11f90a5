"""Text spam: mass near-duplicate uploads within one account, and keyword stuffing.

Near duplicates are found by *normalised-key grouping*, linear in the catalogue: a song's key is its
account plus its title, tags and prompt with case, digits, punctuation, emoji and spacing folded
away ("Lofi Beats #12 🔥" and "lofi beats 13" share a key). Suno returns two clips per request with the
same title, prompt and tags, and creators reuse a style, so pairs and small families are normal:
only a family of at least ``MIN_TEXT_FAMILY`` songs is flagged, and its first request (the two
earliest songs) is kept as the original.

Keyword stuffing: a title or tag list naming several famous artists (one "in the style of" name is a
common, legitimate style cue) or many unrelated canonical genres.
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

from sunorecsys.catalog.genres import TAG_TO_GENRE, normalise_tag, split_tags

# Conservative: 8 near-identical uploads = four requests of the same text from one account. The clean
# sample (86 songs sharing titles, one creator with 40 of 200 songs) has no family above 2.
MIN_TEXT_FAMILY = 8
ORIGINAL_CLIPS = 2  # one Suno request = two clips with the same text: the first request is the original
MIN_ARTIST_NAMES = 2
MIN_STUFFED_GENRES = 4
MAX_TAGS = 20

# A small list of the most streamed artists (names that SEO spam borrows); lower case, as normalised.
FAMOUS_ARTISTS: tuple[str, ...] = (
    "taylor swift", "drake", "the weeknd", "ed sheeran", "billie eilish", "ariana grande", "bad bunny",
    "beyonce", "rihanna", "eminem", "kanye west", "travis scott", "dua lipa", "post malone", "justin bieber",
    "bts", "coldplay", "imagine dragons", "bruno mars", "lady gaga", "kendrick lamar", "sza",
    "olivia rodrigo", "harry styles", "adele", "daft punk", "avicii", "calvin harris", "david guetta",
    "marshmello", "skrillex", "metallica", "nirvana", "queen", "the beatles", "michael jackson",
    "frank ocean", "hans zimmer", "lana del rey", "shakira", "karol g", "blackpink", "doja cat",
    "sabrina carpenter", "morgan wallen", "peso pluma", "arctic monkeys", "linkin park",
)
_ARTIST_RE = re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(a) for a in FAMOUS_ARTISTS) + r")(?![a-z0-9])")
_NOT_WORD = re.compile(r"[^\w]+|[\d_]+")


def normalise_text(value: object) -> str:
    """Lower case, accents and emoji kept apart, digits/punctuation/spacing folded: a grouping key."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    text = unicodedata.normalize("NFKC", str(value)).lower()
    return " ".join(_NOT_WORD.sub(" ", text).split())


def _tag_list(tags: object) -> list[str]:
    if tags is None or (isinstance(tags, float) and pd.isna(tags)):
        return []
    if hasattr(tags, "tolist"):
        tags = tags.tolist()
    return split_tags(tags)


def text_key(row: dict) -> str:
    tags = sorted(normalise_text(t) for t in _tag_list(row.get("tags")))
    return "\x1f".join([str(row.get("user_id") or ""), normalise_text(row.get("title")), ",".join(tags),
                        normalise_text(row.get("prompt"))])


def near_duplicate_text(songs: pd.DataFrame, min_family: int = MIN_TEXT_FAMILY) -> pd.DataFrame:
    """Songs in a same-account family of >= ``min_family`` near-identical uploads, beyond its first request.

    Needs ``song_id, user_id, created_at, title, tags, prompt``. Returns ``song_id, family_original,
    family_size`` for each flagged song (the original is the family's earliest upload).
    """
    cols = ["song_id", "family_original", "family_size"]
    if songs.empty:
        return pd.DataFrame(columns=cols)
    frame = songs[["song_id", "user_id", "created_at"]].copy()
    frame["key"] = [text_key(r) for r in songs.to_dict("records")]
    frame = frame[frame["user_id"].notna()].sort_values(["created_at", "song_id"], kind="stable")
    frame["size"] = frame.groupby("key")["song_id"].transform("size")
    frame["rank"] = frame.groupby("key").cumcount()
    frame["family_original"] = frame.groupby("key")["song_id"].transform("first")
    hit = frame[(frame["size"] >= min_family) & (frame["rank"] >= ORIGINAL_CLIPS)]
    return hit.rename(columns={"size": "family_size"})[cols].reset_index(drop=True)


def keyword_stuffing(songs: pd.DataFrame) -> pd.DataFrame:
    """Songs whose title + tags name >= 2 famous artists, whose tags name >= 4 canonical genres, or
    that carry more than ``MAX_TAGS`` tags. Returns ``song_id, artists, genres, n_tags``."""
    rows = []
    for record in songs[["song_id", "title", "tags"]].to_dict("records"):
        tags = _tag_list(record.get("tags"))
        text = " | ".join([normalise_tag(str(record.get("title") or "")), *tags])
        artists = sorted(set(_ARTIST_RE.findall(text)))
        genres = sorted({TAG_TO_GENRE[t] for t in tags if t in TAG_TO_GENRE})
        if len(artists) >= MIN_ARTIST_NAMES or len(genres) >= MIN_STUFFED_GENRES or len(tags) > MAX_TAGS:
            rows.append({"song_id": record["song_id"], "artists": artists, "genres": genres, "n_tags": len(tags)})
    return pd.DataFrame(rows, columns=["song_id", "artists", "genres", "n_tags"])
