"""The tag vocabulary: Suno's free-form tags (words, phrases, whole sentences) -> genre, moods, instruments.

Suno tags are whatever the creator typed: "lo-fi", "Lo Fi", "chill hip hop beat", "A melancholic
lo-fi track with soft piano and rain sounds", "reggaetón romántico", "スムースジャズ". A tag names a
genre when it *contains* a known genre phrase (word-bounded for Latin scripts, anywhere for CJK),
after folding case, accents and joiners ("Hip-Hop" = "hip hop", "electrónica" = "electronica");
a song's genre is the genre of its first tag that names one, else ``other``. Moods, instruments
and vocals are read the same way (``tag_facets``). Spelling variants and languages are folded
here once, so every consumer (ingest, the content channel, the analysts' genre queries) agrees.

Stable API used by the ingest: ``normalise_tag``, ``split_tags``, ``genre_of_tags``.
"""

from __future__ import annotations

import re
from functools import cache

OTHER_GENRE = "other"

# canonical genre -> phrases that name it (any case, joiners and accents folded; several languages)
GENRE_TAGS: dict[str, tuple[str, ...]] = {
    "lo-fi": ("lo-fi", "lofi", "lo fi", "lo-fi hip hop", "lofi hip hop", "chillhop", "lo-fi beats", "lofi beats",
              "bedroom pop", "study beats", "ローファイ", "로파이"),
    "synthwave": ("synthwave", "synth wave", "retrowave", "outrun", "darksynth", "vaporwave", "80s synth",
                  "chillwave", "synth-wave", "dreamwave", "シンセウェーブ"),
    "rock": ("rock", "indie rock", "alt rock", "alternative rock", "hard rock", "punk", "punk rock", "pop punk",
             "grunge", "metal", "heavy metal", "metalcore", "death metal", "black metal", "nu metal", "thrash",
             "djent", "garage rock", "post-rock", "post rock", "emo", "shoegaze", "rockabilly", "rock and roll",
             "rock n roll", "rocknroll", "prog rock", "psychedelic rock", "surf rock", "stoner rock", "j-rock",
             "jrock", "rock en espanol", "rock nacional", "ロック", "メタル", "록", "摇滚"),
    "edm": ("edm", "electronic", "electronica", "house", "deep house", "tech house", "techno", "trance", "dubstep",
            "drum and bass", "drum & bass", "drum n bass", "dnb", "electro", "future bass", "big room",
            "hardstyle", "eurodance", "uk garage", "breakbeat", "idm", "jungle", "chiptune", "8-bit", "8 bit",
            "phonk", "hyperpop", "electro swing", "dance music", "club music", "rave", "musica electronica",
            "elektronisch", "テクノ", "エレクトロ", "일렉트로닉", "电子"),
    "jazz": ("jazz", "smooth jazz", "bebop", "swing", "jazz fusion", "bossa nova", "bossanova", "cool jazz",
             "nu jazz", "big band", "jazz manouche", "gypsy jazz", "acid jazz", "jazzy", "ジャズ", "재즈", "爵士"),
    "ambient": ("ambient", "dark ambient", "drone", "new age", "soundscape", "meditation", "chillout",
                "space ambient", "sleep music", "sleep", "healing music", "downtempo", "アンビエント", "앰비언트"),
    "hip-hop": ("hip-hop", "hip hop", "hiphop", "rap", "trap", "boom bap", "boom-bap", "drill", "grime",
                "trap latino", "cloud rap", "emo rap", "gangsta rap", "k-hip hop", "rap espanol", "rap francais",
                "ラップ", "ヒップホップ", "힙합", "랩", "说唱"),
    "folk": ("folk", "indie folk", "acoustic", "country", "bluegrass", "americana", "singer-songwriter",
             "singer songwriter", "folk rock", "celtic", "sea shanty", "shanty", "western", "country pop",
             "outlaw country", "volksmusik", "musica folk", "forro", "sertanejo", "フォーク", "포크"),
    "classical": ("classical", "orchestral", "baroque", "symphonic", "chamber music", "neoclassical",
                  "neo-classical", "string quartet", "romantic era", "opera", "piano sonata", "symphony",
                  "concerto", "requiem", "gregorian", "cinematic", "film score", "soundtrack", "epic orchestral",
                  "trailer music", "klassik", "musica clasica", "raga", "hindustani", "carnatic", "クラシック",
                  "클래식", "古典"),
    "pop": ("pop", "synthpop", "synth-pop", "synth pop", "dance pop", "k-pop", "kpop", "j-pop", "jpop", "c-pop",
            "cpop", "electropop", "indie pop", "power pop", "city pop", "dream pop", "art pop", "pop ballad",
            "teen pop", "europop", "pop latino", "pop rock", "schlager", "chanson", "mandopop", "cantopop",
            "anime", "anisong", "idol", "ballad", "power ballad", "ポップ", "シティポップ", "アニソン", "팝", "케이팝",
            "流行", "バラード", "발라드"),
    "r&b": ("r&b", "rnb", "r and b", "soul", "neo soul", "neo-soul", "funk", "motown", "gospel", "disco",
            "contemporary r&b", "quiet storm", "doo-wop", "doo wop", "ソウル", "알앤비"),
    "latin": ("latin", "reggaeton", "salsa", "bachata", "cumbia", "merengue", "dembow", "tango", "flamenco",
              "samba", "mariachi", "corridos", "corridos tumbados", "banda", "latin pop", "musica latina",
              "urbano latino", "kizomba", "afrobeat", "afrobeats", "amapiano"),
    "reggae": ("reggae", "dancehall", "ska", "dub", "roots reggae", "lovers rock", "レゲエ"),
    "blues": ("blues", "delta blues", "chicago blues", "blues rock", "ブルース", "블루스"),
    "children": ("lullaby", "nursery rhyme", "kids song", "children's song", "childrens music", "kids music",
                 "canción de cuna", "cancion infantil", "子守唄", "童谣", "동요", "자장가"),
}
GENRES: tuple[str, ...] = tuple(GENRE_TAGS)

MOOD_TAGS: dict[str, tuple[str, ...]] = {
    "chill": ("chill", "chilled", "relaxing", "relaxed", "laid back", "laid-back", "calm", "mellow", "peaceful",
              "soothing", "tranquilo", "relajante", "calme", "リラックス", "잔잔한"),
    "sad": ("sad", "melancholic", "melancholy", "melancolico", "triste", "heartbreak", "sorrowful", "somber",
            "bittersweet", "切ない", "悲しい", "슬픈", "伤感"),
    "happy": ("happy", "upbeat", "uplifting", "cheerful", "joyful", "feel good", "feel-good", "alegre", "fun",
              "playful", "bright", "明るい", "신나는"),
    "energetic": ("energetic", "high energy", "powerful", "intense", "aggressive", "driving", "hard-hitting",
                  "hype", "energico", "激しい"),
    "dark": ("dark", "haunting", "ominous", "eerie", "sinister", "gothic", "creepy", "oscuro", "ダーク"),
    "dreamy": ("dreamy", "ethereal", "atmospheric", "hazy", "floating", "spacey", "lush", "幻想的"),
    "romantic": ("romantic", "love song", "sensual", "romantico", "romantique", "ラブソング"),
    "nostalgic": ("nostalgic", "nostalgia", "retro", "vintage", "throwback", "懐かしい"),
    "epic": ("epic", "anthemic", "heroic", "grand", "triumphant", "majestic"),
    "emotional": ("emotional", "heartfelt", "sentimental", "soulful", "touching", "emotivo", "감성"),
    "groovy": ("groovy", "funky", "danceable", "bouncy", "catchy"),
}

INSTRUMENT_TAGS: dict[str, tuple[str, ...]] = {
    "piano": ("piano", "keys", "rhodes", "electric piano", "grand piano", "felt piano", "ピアノ", "피아노"),
    "guitar": ("guitar", "acoustic guitar", "electric guitar", "nylon guitar", "guitarra", "ギター", "기타"),
    "bass": ("bass", "bassline", "808", "808s", "sub bass", "slap bass", "bajo"),
    "drums": ("drums", "drum", "percussion", "breakbeat drums", "drum machine", "beat", "beats"),
    "synth": ("synth", "synths", "synthesizer", "analog synth", "arpeggiator", "pads", "シンセ"),
    "strings": ("strings", "violin", "cello", "viola", "string section", "orchestra", "violin solo", "バイオリン"),
    "brass": ("brass", "trumpet", "trombone", "horns", "saxophone", "sax", "tuba"),
    "winds": ("flute", "clarinet", "oboe", "shakuhachi", "pan flute"),
    "plucked": ("ukulele", "banjo", "mandolin", "harp", "koto", "sitar", "shamisen", "charango"),
    "organ": ("organ", "hammond", "accordion", "harmonica"),
    "vocals": ("female vocals", "male vocals", "female vocal", "male vocal", "vocals", "singer", "choir",
               "duet", "rap vocals", "falsetto", "whisper", "humming", "voz femenina", "voz masculina",
               "女性ボーカル", "男性ボーカル", "여성 보컬", "남성 보컬"),
    "instrumental": ("instrumental", "no vocals", "without vocals", "インスト"),
}

_SPACES = re.compile(r"[\s_]+")
_JOINERS = re.compile(r"[-‐‑‒–—/'’.]+")
_ACCENTS = str.maketrans("áàâäãåéèêëíìîïóòôöõúùûüñçý", "aaaaaaeeeeiiiiooooouuuuncy")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def normalise_tag(tag: str) -> str:
    """Lower-case, trim, and fold runs of spaces/underscores into one space ("Lo_Fi " -> "lo fi")."""
    return _SPACES.sub(" ", tag.strip().lower())


def fold_text(text: str) -> str:
    """What matching compares: lower case, accents and joiners folded ("Hip-Hop" -> "hip hop")."""
    return _SPACES.sub(" ", _JOINERS.sub(" ", normalise_tag(text).translate(_ACCENTS))).strip()


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


class _Matcher:
    """Finds the known phrases of one facet inside a tag (longest phrase first at each position)."""

    def __init__(self, vocabulary: dict[str, tuple[str, ...]]) -> None:
        self.term_of: dict[str, str] = {}
        for term, phrases in vocabulary.items():
            for phrase in (term, *phrases):
                self.term_of.setdefault(fold_text(phrase), term)
        latin = sorted((p for p in self.term_of if not _CJK.search(p)), key=len, reverse=True)
        cjk = sorted((p for p in self.term_of if _CJK.search(p)), key=len, reverse=True)
        self.latin = re.compile(r"(?<![\w&])(" + "|".join(map(re.escape, latin)) + r")(?![\w&])") if latin else None
        self.cjk = re.compile("|".join(map(re.escape, cjk))) if cjk else None

    def find(self, tag: str) -> list[str]:
        """Terms named in ``tag``, in order of appearance, without repeats."""
        folded = fold_text(tag)
        hits = []
        for pattern in (self.latin, self.cjk):
            if pattern is not None:
                hits += [(m.start(), self.term_of[m.group(0)]) for m in pattern.finditer(folded)]
        out: list[str] = []
        for _, term in sorted(hits):
            if term not in out:
                out.append(term)
        return out


@cache
def _matchers() -> dict[str, _Matcher]:
    return {"genre": _Matcher(GENRE_TAGS), "mood": _Matcher(MOOD_TAGS), "instrument": _Matcher(INSTRUMENT_TAGS)}


def genre_of_tags(tags: list[str]) -> str:
    """The canonical genre named by the first tag that names one (anywhere in it), else ``other``."""
    matcher = _matchers()["genre"]
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            continue
        exact = TAG_TO_GENRE.get(tag)
        if exact is not None:
            return exact
        found = matcher.find(tag)
        if found:
            return found[0]
    return OTHER_GENRE


def tag_facets(tags: list[str]) -> dict[str, list[str]]:
    """Every genre, mood and instrument the tags name, in order of appearance (canonical names)."""
    out: dict[str, list[str]] = {"genre": [], "mood": [], "instrument": []}
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            continue
        for facet, matcher in _matchers().items():
            for term in matcher.find(tag):
                if term not in out[facet]:
                    out[facet].append(term)
    return out


def canonical_tag_text(tags: list[str]) -> str:
    """The facets as one string of canonical words (for text similarity): "lo-fi chill piano"."""
    facets = tag_facets(tags)
    return " ".join(facets["genre"] + facets["mood"] + facets["instrument"])
