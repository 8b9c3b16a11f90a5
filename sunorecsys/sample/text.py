"""Words for the sample catalogue: tags, titles, lyrics prompts and descriptions.

Tags deliberately mix spelling variants ("lo-fi"/"lofi", "hip hop"/"hip-hop") and case, the way
Suno creators type them. Some songs are in Spanish, Japanese or Portuguese, and a few titles carry
emoji, so every consumer has to keep Unicode intact.
"""

from __future__ import annotations

import numpy as np

# The first tag always names the genre (in one of its spellings); the rest add mood/instrument.
GENRE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "lo-fi": ("lo-fi", "lofi", "Lo-Fi", "lofi hip hop", "chillhop"),
    "synthwave": ("synthwave", "Synthwave", "retrowave", "outrun"),
    "rock": ("rock", "indie rock", "Alt Rock", "punk rock"),
    "edm": ("edm", "EDM", "house", "techno", "future bass"),
    "jazz": ("jazz", "smooth jazz", "bebop", "bossa nova"),
    "ambient": ("ambient", "Ambient", "drone", "new age"),
    "hip-hop": ("hip-hop", "hip hop", "Hip Hop", "boom bap", "trap"),
    "folk": ("folk", "indie folk", "acoustic", "americana"),
    "classical": ("classical", "orchestral", "neoclassical", "string quartet"),
    "pop": ("pop", "synthpop", "dance pop", "k-pop", "indie pop"),
}
EXTRA_TAGS: dict[str, tuple[str, ...]] = {
    "lo-fi": ("chill", "study", "rainy", "mellow", "dusty piano", "vinyl"),
    "synthwave": ("80s", "neon", "nostalgic", "analog synth", "driving"),
    "rock": ("electric guitar", "energetic", "anthemic", "raw", "distorted"),
    "edm": ("club", "uplifting", "drop", "festival", "energetic"),
    "jazz": ("saxophone", "late night", "piano trio", "swing", "smoky"),
    "ambient": ("atmospheric", "ethereal", "calm", "pads", "meditative"),
    "hip-hop": ("808", "gritty", "street", "bass heavy", "dark"),
    "folk": ("acoustic guitar", "warm", "storytelling", "banjo", "campfire"),
    "classical": ("piano", "strings", "cinematic", "epic", "romantic"),
    "pop": ("catchy", "upbeat", "summer", "female vocals", "male vocals"),
}
MOODS = ("dreamy", "melancholic", "euphoric", "calm", "dark", "hopeful", "nostalgic", "playful", "intense")
TOPICS = ("city lights at night", "a summer road trip", "lost love", "the ocean", "rainy mornings",
          "space travel", "a small-town festival", "missing home", "dancing until sunrise", "old friends")

TITLE_WORDS_A = ("Midnight", "Neon", "Golden", "Silent", "Electric", "Broken", "Velvet", "Paper", "Crimson",
                 "Lunar", "Wild", "Hidden", "Distant", "Frozen", "Burning", "Quiet", "Endless", "Lost")
TITLE_WORDS_B = ("Skyline", "Rain", "Heart", "Drive", "Echoes", "Garden", "Signal", "Waves", "Dreams",
                 "Highway", "Letters", "Horizon", "Static", "Fire", "Tides", "Streets", "Memories", "Bloom")
EMOJI = ("🌙", "🔥", "✨", "🎧", "🌊", "💔", "🚀", "🌸")

LANGUAGES = ("en", "es", "ja", "pt")
LANGUAGE_WEIGHTS = (0.7, 0.1, 0.1, 0.1)

TITLES_BY_LANGUAGE = {
    "es": ("Noche de Verano", "Corazón Perdido", "Luces de la Ciudad", "Canción del Mar", "Añoranza"),
    "ja": ("夜空のメロディー", "さくらの雨", "東京ナイト", "遠い約束", "星の記憶"),
    "pt": ("Saudade do Mar", "Noite Tropical", "Coração de Papel", "Estrada Sem Fim", "Canção da Manhã"),
}
LYRIC_LINES = {
    "en": ("I keep driving through the neon rain", "Every heartbeat sounds like your name",
           "We were young and the night was ours", "Counting echoes under falling stars",
           "Hold the moment, don't let it go", "The city hums a song we used to know",
           "Turn the lights down, let the bass roll in", "Nothing ends where the waves begin"),
    "es": ("Bailamos bajo la luna llena", "Tu voz me lleva como la marea",
           "No quiero despertar de este sueño", "La ciudad canta cuando te veo",
           "Corazón, no me dejes solo", "Cada estrella guarda tu nombre"),
    "ja": ("夜の街を歩いてる", "君の声が聞こえる", "星が降る夜に", "涙はもう見せない",
           "明日へ走り出そう", "風が歌っている"),
    "pt": ("A saudade bate no meu peito", "Dançando na areia até o sol nascer",
           "Teu sorriso ilumina a cidade", "O mar me chama pelo nome",
           "Vem comigo nessa estrada", "A noite é nossa outra vez"),
}
SECTIONS = ("[Intro]", "[Verse]", "[Chorus]", "[Verse 2]", "[Bridge]", "[Chorus]", "[Outro]")
HANDLE_WORDS = ("beat", "wave", "sound", "echo", "dream", "pixel", "lunar", "vinyl", "neon", "chord",
                "groove", "synth", "tape", "cloud", "river", "static")


def pick(rng: np.random.Generator, options: tuple | list):
    return options[int(rng.integers(len(options)))]


def make_tags(rng: np.random.Generator, genre: str) -> str:
    """Suno's comma-separated tag string: a genre spelling first, then 1-3 extra tags."""
    extras = list(EXTRA_TAGS[genre])
    k = int(rng.integers(1, 4))
    chosen = [extras[j] for j in rng.choice(len(extras), size=k, replace=False)]
    return ", ".join([pick(rng, GENRE_SPELLINGS[genre]), *chosen])


def make_title(rng: np.random.Generator, language: str, with_emoji: bool) -> str:
    if language == "en":
        title = f"{pick(rng, TITLE_WORDS_A)} {pick(rng, TITLE_WORDS_B)}"
    else:
        title = pick(rng, TITLES_BY_LANGUAGE[language])
    if with_emoji:
        title = f"{title} {pick(rng, EMOJI)}"
    return title


def make_prompt(rng: np.random.Generator, language: str, instrumental: bool) -> str:
    """A multi-line Suno lyrics prompt with [Section] markers (or an instrumental cue sheet)."""
    if instrumental:
        return "[Instrumental]\n[Intro]\n[Build]\n[Drop]\n[Outro]"
    lines = LYRIC_LINES[language]
    out: list[str] = []
    for section in SECTIONS[: int(rng.integers(3, len(SECTIONS) + 1))]:
        out.append(section)
        for _ in range(int(rng.integers(2, 5))):
            out.append(pick(rng, lines))
        out.append("")
    return "\n".join(out).rstrip()


def make_description(rng: np.random.Generator, genre: str, language: str) -> str:
    lang = {"en": "", "es": " sung in Spanish", "ja": " sung in Japanese", "pt": " sung in Portuguese"}[language]
    return f"a {pick(rng, MOODS)} {genre} song about {pick(rng, TOPICS)}{lang}"


def make_handle(rng: np.random.Generator) -> str:
    return f"{pick(rng, HANDLE_WORDS)}{pick(rng, HANDLE_WORDS)}{int(rng.integers(10, 9999))}"
