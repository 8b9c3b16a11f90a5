"""The sample's spam cohort (``generate_sample_catalogue(spam_cohort=True)``): songs that a spam filter
should flag, each recorded with its reasons in the ground truth.

- ``audio_duplicate``: clean songs re-uploaded by other accounts under other titles, after MP3
  re-encoding at 64 kbps, a gain change of +-3 dB, a 5 s trim, or all three;
- ``mass_upload``: one account uploading ``MASS_SONGS`` distinct songs within three hours;
- ``text_duplicate``: one account uploading ``TEXT_FAMILY`` songs with the same title template,
  tags and prompt at a normal pace (the first request, two clips, is legitimate);
- ``short_tracks``: one account uploading ``SHORT_SONGS`` tracks of 31 s;
- ``keyword_stuffing``: tags or titles stuffed with famous artist names or unrelated genres.

Cohort songs come from their own random stream, after the clean songs: the clean part of the
catalogue is the same with or without the cohort. The cohort proves plumbing, not thresholds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf

from sunorecsys.sample import text
from sunorecsys.sample.audio import SAMPLE_RATE
from sunorecsys.sample.users import seeded_uuid

DUPLICATE_VARIANTS = ("mp3_64k", "gain_plus_3db", "gain_minus_3db", "trim_5s", "mp3_64k_gain_trim")
N_DUPLICATES = 10
MASS_SONGS = 36
TEXT_FAMILY = 12
SHORT_SONGS = 14
STUFFED_TAGS = (
    "lofi, taylor swift, drake, the weeknd, billie eilish, study",
    "pop, rock, jazz, edm, classical, hip hop, folk, ambient",
    "trap, Bad Bunny, Travis Scott, Kanye West, viral",
    "synthwave, daft punk, the weeknd, 80s",
    "chill, lofi, house, techno, jazz, bossa nova, drill, orchestral, country",
    "ed sheeran, ariana grande, dua lipa, pop hits 2026",
)
MP3_64K_LEVEL = (320 - 64) / 288  # libsndfile maps compression 0..1 to 320..32 kbps (CBR)


@dataclass
class CohortSong:
    """One cohort record and how to make its audio (``source`` = original's id for a duplicate)."""
    record: dict
    genre: str
    reasons: list[str]
    source: str | None = None
    variant: str | None = None
    extra: dict = field(default_factory=dict)


def _record(rng: np.random.Generator, template: dict, account: dict, created: datetime, *, title: str,
            tags: str, prompt: str, duration: float) -> dict:
    song_id = seeded_uuid(rng)
    record = {k: v for k, v in template.items() if k != "metadata"}
    record["metadata"] = dict(template["metadata"], tags=tags, prompt=prompt, duration=round(duration, 2),
                              history=None, type="gen")
    record.update({
        "id": song_id, "video_url": f"https://cdn1.suno.ai/{song_id}.mp4",
        "audio_url": f"https://cdn1.suno.ai/{song_id}.mp3", "image_url": f"https://cdn2.suno.ai/image_{song_id}.jpeg",
        "user_id": account["user_id"], "handle": account["handle"], "display_name": account["display_name"],
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z",
        "title": title, "play_count": int(rng.integers(0, 40)), "upvote_count": 0, "comment_count": 0,
        "is_public": True,
    })
    return record


def _account(rng: np.random.Generator) -> dict:
    handle = text.make_handle(rng)
    return {"user_id": seeded_uuid(rng), "handle": handle, "display_name": handle.capitalize()}


def make_spam_cohort(rng: np.random.Generator, records: list[dict], genres: list[str], damaged: dict[int, str],
                     start: datetime, days: int) -> list[CohortSong]:
    """The cohort's records (audio is made later by ``render_duplicate`` or synthesised like any song)."""
    end = start + timedelta(days=days) - timedelta(seconds=1)
    span = (end - start).total_seconds()
    out: list[CohortSong] = []
    template = records[0]

    # Re-uploads of clean, long-enough songs from two re-upload accounts, always after the original.
    uploaders = [_account(rng), _account(rng)]
    eligible = [i for i, r in enumerate(records) if i not in damaged and r["metadata"]["duration"] >= 28.0]
    for j, i in enumerate(sorted(rng.choice(eligible, size=N_DUPLICATES, replace=False).tolist())):
        original = records[i]
        variant = DUPLICATE_VARIANTS[j % len(DUPLICATE_VARIANTS)]
        made = datetime.fromisoformat(original["created_at"])
        created = min(end, made + timedelta(seconds=float(rng.uniform(600, max(601.0, (end - made).total_seconds())))))
        duration = original["metadata"]["duration"] - (5.0 if "trim" in variant else 0.0)
        record = _record(rng, original, uploaders[j % 2], created, title=text.make_title(rng, "en", False),
                         tags=original["metadata"]["tags"], prompt=original["metadata"]["prompt"], duration=duration)
        out.append(CohortSong(record, genres[i], ["audio_duplicate"], source=original["id"], variant=variant))

    # A mass uploader: distinct songs, all within three hours of one day.
    mass = _account(rng)
    burst = start + timedelta(seconds=float(rng.uniform(0, span - 4 * 3600)))
    for _ in range(MASS_SONGS):
        genre = text.pick(rng, list(text.GENRE_SPELLINGS))
        created = burst + timedelta(seconds=float(rng.uniform(0, 3 * 3600)))
        out.append(CohortSong(_record(rng, template, mass, created, title=text.make_title(rng, "en", False),
                                      tags=text.make_tags(rng, genre), prompt=text.make_prompt(rng, "en", False),
                                      duration=float(rng.uniform(20, 26))), genre, ["mass_upload"]))

    # A text family: one title template, tags and prompt, two uploads a day (a normal pace).
    family = _account(rng)
    prompt = text.make_prompt(rng, "en", False)
    for k in range(TEXT_FAMILY):
        created = start + timedelta(seconds=span * (k + 0.5) / TEXT_FAMILY)
        out.append(CohortSong(_record(rng, template, family, created, title=f"Lofi Beats To Study #{k + 1}",
                                      tags="lofi, study, chill beats", prompt=prompt,
                                      duration=float(rng.uniform(22, 38))), "lo-fi",
                              ["text_duplicate"] if k >= 2 else []))

    # Artificially short tracks: 31 s each, spread over the period.
    short = _account(rng)
    for k in range(SHORT_SONGS):
        genre = text.pick(rng, list(text.GENRE_SPELLINGS))
        created = start + timedelta(seconds=span * (k + 0.3) / SHORT_SONGS)
        out.append(CohortSong(_record(rng, template, short, created, title=text.make_title(rng, "en", False),
                                      tags=text.make_tags(rng, genre), prompt=text.make_prompt(rng, "en", False),
                                      duration=float(rng.uniform(31.0, 31.9))), genre, ["short_tracks"]))

    # Keyword stuffing, one song per account.
    for tags in STUFFED_TAGS:
        created = start + timedelta(seconds=float(rng.uniform(0, span)))
        out.append(CohortSong(_record(rng, template, _account(rng), created, title=text.make_title(rng, "en", False),
                                      tags=tags, prompt=text.make_prompt(rng, "en", True),
                                      duration=float(rng.uniform(22, 38))), "pop", ["keyword_stuffing"]))
    return out


def render_duplicate(source_file: Path, variant: str, target_stem: Path) -> tuple[Path, float]:
    """Write the re-upload of ``source_file`` as ``variant``; returns (file written, seconds of audio)."""
    audio, sr = sf.read(source_file, dtype="float32", always_2d=True)
    if "trim" in variant:
        audio = audio[5 * sr:]
    if "plus_3db" in variant:
        audio = audio * np.float32(10 ** (3 / 20))
    if "minus_3db" in variant or variant == "mp3_64k_gain_trim":
        audio = audio * np.float32(10 ** (-3 / 20))
    audio = np.clip(audio, -1.0, 1.0)
    if variant.startswith("mp3"):
        target = target_stem.with_suffix(".mp3")
        buffer = io.BytesIO()
        sf.write(buffer, audio, sr, format="MP3", compression_level=MP3_64K_LEVEL, bitrate_mode="CONSTANT")
        target.write_bytes(buffer.getvalue())
    else:
        target = target_stem.with_suffix(".flac")
        sf.write(target, audio, sr, format="FLAC", subtype="PCM_16")
    return target, audio.shape[0] / (sr or SAMPLE_RATE)
