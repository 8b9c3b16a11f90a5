"""The genre vocabulary: free-form Suno tags -> one of a few canonical genres.

Suno tags are whatever the creator typed ("lo-fi", "lofi", "Lo Fi", "chill hip hop beat"), so a
song's genre is the first of its tags that names a known genre; a song with none is ``other``.
Spelling variants are folded here once, so every consumer (ingest, content channel, sample
generator) agrees on them.
"""

from __future__ import annotations

import re

OTHER_GENRE = "other"

# canonical genre -> tags (already normalised by ``normalise_tag``) that name it
GENRE_TAGS: dict[str, tuple[str, ...]] = {
    "lo-fi": ("lo-fi", "lofi", "lo fi", "lo-fi hip hop", "lofi hip hop", "chillhop", "lo-fi beats",
              "lofi beats", "bedroom pop"),
    "synthwave": ("synthwave", "synth wave", "retrowave", "outrun", "darksynth", "vaporwave",
                  "80s synth", "chillwave"),
    "rock": ("rock", "indie rock", "alt rock", "alternative rock", "hard rock", "punk", "punk rock",
             "grunge", "metal", "heavy metal", "garage rock", "post-rock", "post rock"),
    "edm": ("edm", "electronic", "electronica", "house", "deep house", "techno", "trance", "dubstep",
            "drum and bass", "drum & bass", "dnb", "electro", "future bass", "big room"),
    "jazz": ("jazz", "smooth jazz", "bebop", "swing", "jazz fusion", "bossa nova", "cool jazz", "nu jazz"),
    "ambient": ("ambient", "dark ambient", "drone", "new age", "soundscape", "meditation", "chillout",
                "space ambient"),
    "hip-hop": ("hip-hop", "hip hop", "hiphop", "rap", "trap", "boom bap", "boom-bap", "drill", "grime"),
    "folk": ("folk", "indie folk", "acoustic", "country", "bluegrass", "americana", "singer-songwriter"),
    "classical": ("classical", "orchestral", "baroque", "symphonic", "chamber music", "neoclassical",
                  "string quartet", "romantic era"),
    "pop": ("pop", "synthpop", "synth-pop", "dance pop", "k-pop", "kpop", "j-pop", "jpop", "electropop",
            "indie pop", "power pop"),
}
GENRES: tuple[str, ...] = tuple(GENRE_TAGS)

_SPACES = re.compile(r"[\s_]+")


def normalise_tag(tag: str) -> str:
    """Lower-case, trim, and fold runs of spaces/underscores into one space ("Lo_Fi " -> "lo fi")."""
    return _SPACES.sub(" ", tag.strip().lower())


TAG_TO_GENRE: dict[str, str] = {tag: genre for genre, tags in GENRE_TAGS.items() for tag in tags}


def split_tags(tags: object) -> list[str]:
    """Suno's ``metadata.tags`` (a comma-separated string, or already a list) -> normalised tags.

    Empty pieces are dropped; order is kept; duplicates after normalisation are dropped.
    """
    if tags is None:
        return []
    pieces = tags if isinstance(tags, (list, tuple)) else str(tags).split(",")
    out: list[str] = []
    for piece in pieces:
        if piece is None:
            continue
        tag = normalise_tag(str(piece))
        if tag and tag not in out:
            out.append(tag)
    return out


def genre_of_tags(tags: list[str]) -> str:
    """The canonical genre named by the first tag that names one, else ``other``."""
    for tag in tags:
        genre = TAG_TO_GENRE.get(tag)
        if genre is not None:
            return genre
    return OTHER_GENRE
