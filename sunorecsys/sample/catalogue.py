"""The sample catalogue: a small, deterministic Suno-like catalogue with real audio and listeners.

``generate_sample_catalogue`` writes, under one data root:

- ``raw/all_songs.json``: raw Suno clip records (the format the pipeline ingests, nothing more),
- ``audio/<song_id>.flac``: synthesised music for every song (44.1 kHz stereo, 16-bit FLAC, 20-40 s),
  about a fifth of it damaged in known ways (see ``sunorecsys.sample.audio.apply_damage``),
- ``raw/interactions.csv``: a listening log of simulated users (``sunorecsys.sample.users``),
- ``sample_ground_truth.json``: ``{song_id: {"damage": null | kind, ...}}`` -- for tests and
  evaluation only; the pipeline never reads it. With ``spam_cohort=True`` every song also gets
  ``"spam": [reasons]`` (empty for clean songs) and the cohort of ``spam_cohort.py`` is added.

The same seed gives byte-identical files. Random streams are split by purpose (metadata, each
song's audio, listeners), so ``with_audio=False`` writes the same JSON and listening log.
FLAC rather than Ogg Vorbis: it is lossless (a clipped plateau or digital silence survives the
round trip exactly) and encodes about 8x faster here.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf

from sunorecsys.audio.arrivals import producing
from sunorecsys.machine import available_cores
from sunorecsys.paths import DataPaths
from sunorecsys.sample import text
from sunorecsys.sample.audio import (
    DAMAGE_KINDS,
    SAMPLE_RATE,
    SongSpec,
    apply_damage,
    choose_spec,
    synthesize_song,
)
from sunorecsys.sample.spam_cohort import CohortSong, make_spam_cohort, render_duplicate
from sunorecsys.sample.users import SongForListening, seeded_uuid, simulate_listening

AUDIO_EXTENSION = "flac"
# libFLAC's fastest level (0 of 0..1 in libsndfile's scale): lossless all the same, about twice as
# fast to encode as the default level for files about 14 % larger.
FLAC_COMPRESSION = 0.0
CATALOGUE_FILE_NAME = "all_songs.json"
INTERACTIONS_FILE_NAME = "interactions.csv"
DURATION_RANGE_S = (20.0, 40.0)
DAMAGED_SHARE = 0.2
# Genre shares of the catalogue (popular genres more common).
GENRE_SHARES = {"lo-fi": 0.14, "pop": 0.14, "edm": 0.12, "hip-hop": 0.12, "synthwave": 0.1, "rock": 0.1,
                "ambient": 0.08, "jazz": 0.07, "folk": 0.07, "classical": 0.06}
MODELS = (("chirp-v3-5", "v3.5"), ("chirp-v4", "v4"), ("chirp-auk", "v4.5"), ("chirp-bluejay", "v5"))


@dataclass
class SampleCatalogue:
    """What ``generate_sample_catalogue`` wrote (paths) and how much of it."""
    paths: DataPaths
    catalogue_file: Path
    interactions_file: Path
    ground_truth_file: Path
    n_songs: int
    n_creators: int
    n_users: int
    n_events: int
    n_audio_files: int
    damage_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        damage = ", ".join(f"{k} {v}" for k, v in sorted(self.damage_counts.items())) or "none"
        audio = (f"{self.n_audio_files} files -> {self.paths.audio_dir}" if self.n_audio_files
                 else "none written (--no-audio)")
        return (f"songs: {self.n_songs} from {self.n_creators} creators -> {self.catalogue_file}\n"
                f"audio: {audio}\n"
                f"damaged (ground truth, never read by the pipeline): {damage} -> {self.ground_truth_file}\n"
                f"listening log: {self.n_events} events from {self.n_users} users -> {self.interactions_file}\n"
                f"generated in {self.seconds:.1f} s")


def _iso_z(moment: datetime) -> str:
    """Suno's timestamp style: milliseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _power_law_counts(rng: np.random.Generator, n: int, scale: float, alpha: float) -> np.ndarray:
    """Pareto-distributed counts: most songs get little, a few get a lot."""
    return np.floor(scale * (rng.pareto(alpha, size=n))).astype(np.int64)


def _make_records(rng: np.random.Generator, n_songs: int, start: datetime, days: int,
                  damaged: dict[int, str]) -> tuple[list[dict], list[str], int]:
    """The raw Suno records (sorted by created_at), each song's genre, and the number of creators."""
    genres = list(GENRE_SHARES)
    shares = np.array(list(GENRE_SHARES.values()))
    n_creators = max(1, min(n_songs, round(n_songs * rng.uniform(0.15, 0.25))))
    creators = []
    for _ in range(n_creators):
        handle = text.make_handle(rng)
        fav = rng.choice(len(genres), size=2, replace=False, p=shares)
        creators.append({"user_id": seeded_uuid(rng), "handle": handle,
                         "display_name": handle.capitalize(), "genres": [genres[j] for j in fav]})
    # Some creators are prolific: Zipf-like choice of creator per song.
    creator_w = 1.0 / np.arange(1, n_creators + 1) ** 0.8
    song_creator = rng.choice(n_creators, size=n_songs, p=creator_w / creator_w.sum())
    offsets = np.sort(rng.uniform(0, days * 86400.0, size=n_songs))
    plays = _power_law_counts(rng, n_songs, 40.0, 1.1)
    records: list[dict] = []
    song_genres: list[str] = []
    for i in range(n_songs):
        creator = creators[song_creator[i]]
        genre = creator["genres"][0] if rng.random() < 0.6 else creator["genres"][1]
        if rng.random() < 0.15:  # creators also wander outside their genres
            genre = genres[int(rng.choice(len(genres), p=shares))]
        song_id = seeded_uuid(rng)
        created = start + timedelta(seconds=float(offsets[i]))
        language = text.LANGUAGES[int(rng.choice(len(text.LANGUAGES), p=text.LANGUAGE_WEIGHTS))]
        instrumental = genre in ("ambient", "classical") or rng.random() < 0.15
        duration = round(float(rng.uniform(*DURATION_RANGE_S)), 2)
        play_count = int(plays[i]) if i not in damaged else int(plays[i] // 3)
        upvote_rate = rng.uniform(0.02, 0.15) if i not in damaged else rng.uniform(0.0, 0.03)
        is_remix = i > 10 and rng.random() < 0.1
        model_name, major = MODELS[int(rng.choice(len(MODELS), p=[0.1, 0.3, 0.35, 0.25]))]
        history = None
        if is_remix:
            parent = records[int(rng.integers(len(records)))]
            history = [{"id": parent["id"], "continue_at": round(float(rng.uniform(5, 20)), 2),
                        "type": "gen", "source": "web", "infill": False}]
        record = {
            "id": song_id,
            "video_url": f"https://cdn1.suno.ai/{song_id}.mp4",
            "audio_url": f"https://cdn1.suno.ai/{song_id}.mp3",
            "image_url": f"https://cdn2.suno.ai/image_{song_id}.jpeg",
            "major_model_version": major,
            "model_name": model_name,
            "metadata": {
                "tags": text.make_tags(rng, genre),
                "prompt": text.make_prompt(rng, language, instrumental),
                "gpt_description_prompt": text.make_description(rng, genre, language),
                "type": "concat" if is_remix else "gen",
                "duration": duration,
                "refund_credits": False,
                "stream": True,
                "history": history,
                "concat_history": None,
                "error_type": None,
                "error_message": None,
            },
            "is_liked": False,
            "user_id": creator["user_id"],
            "display_name": creator["display_name"],
            "handle": creator["handle"],
            "is_handle_updated": False,
            "is_trashed": False,
            "reaction": None,
            "created_at": _iso_z(created),
            "status": "complete",
            "title": text.make_title(rng, language, with_emoji=rng.random() < 0.12),
            "play_count": play_count,
            "upvote_count": int(rng.binomial(play_count, upvote_rate)),
            "comment_count": int(rng.poisson(play_count * 0.01)),
            "is_public": bool(rng.random() < 0.95),
        }
        records.append(record)
        song_genres.append(genre)
    return records, song_genres, n_creators


def _clear_audio(audio_dir: Path, song_id: str) -> None:
    """Remove any earlier file of this song, so a rerun cannot leave a stale file behind."""
    for old in audio_dir.glob(f"{song_id}.*"):
        old.unlink()


def _render_song(record: dict, genre: str, kind: str | None, seed: np.random.SeedSequence, audio_dir: Path,
                 with_audio: bool) -> tuple[SongSpec, dict, str | None, float]:
    """Synthesise (and maybe damage) one song and write its file.

    Returns (spec, damage details, file path relative to the data root or None, seconds a listener hears).
    """
    song_id = record["id"]
    duration = record["metadata"]["duration"]
    song_rng = np.random.default_rng(seed)
    spec = choose_spec(song_rng, genre, duration)
    details: dict = {}
    audio_file: str | None = None
    heard_s = duration
    if with_audio:
        _clear_audio(audio_dir, song_id)
        audio = synthesize_song(spec, song_rng)
        payload, details = apply_damage(audio, kind, song_rng) if kind else (audio, {})
        target = audio_dir / f"{song_id}.{AUDIO_EXTENSION}"
        if isinstance(payload, np.ndarray):
            sf.write(target, payload, SAMPLE_RATE, format="FLAC", subtype="PCM_16",
                     compression_level=FLAC_COMPRESSION)
            heard_s = payload.shape[0] / SAMPLE_RATE
        elif isinstance(payload, bytes):
            target.write_bytes(payload)
        if payload is not None:
            audio_file = f"{audio_dir.name}/{target.name}"
    elif kind == "truncated":
        heard_s = 2.0
    if kind in ("corrupt", "missing_file"):
        heard_s = 0.0
    return spec, details, audio_file, heard_s


def _heard_seconds(record: dict, kind: str | None, with_audio: bool) -> float:
    """What a listener hears of a song that is not truncated, as ``_render_song`` finds it: its
    whole length (the samples of its metadata duration), nothing of a corrupt or missing file."""
    if kind in ("corrupt", "missing_file"):
        return 0.0
    duration = record["metadata"]["duration"]
    return round(float(duration) * SAMPLE_RATE) / SAMPLE_RATE if with_audio else duration


def _write_listening_log(path: Path, listening: list[SongForListening], rng: np.random.Generator,
                         start: datetime, end: datetime, n_users: int) -> list:
    """Simulate the listeners and write their log (CSV); returns the events."""
    events = simulate_listening(listening, rng, start, end, n_users=n_users, genres=tuple(GENRE_SHARES))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["user_id", "song_id", "timestamp", "event", "weight"])
        for e in events:
            writer.writerow([e.user_id, e.song_id, e.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"), e.event, e.weight])
    return events


def _render_cohort(cohort: list[CohortSong], seed: int, paths: DataPaths, with_audio: bool,
                   ground_truth: dict[str, dict], listening: list[SongForListening]) -> int:
    """Audio, ground truth and listening entries of the spam cohort; returns the audio files written."""
    n_audio = 0
    popularity = {s.song_id: s.popularity for s in listening}
    for k, song in enumerate(cohort):
        record = song.record
        song_id = record["id"]
        audio_file, heard_s, extra = None, record["metadata"]["duration"], {}
        if song.source is not None:
            source_file = paths.audio_dir / f"{song.source}.{AUDIO_EXTENSION}"
            if with_audio:
                _clear_audio(paths.audio_dir, song_id)
                target, heard_s = render_duplicate(source_file, song.variant, paths.audio_dir / song_id)
                audio_file = f"{paths.audio_dir.name}/{target.name}"
            extra = {"duplicate_of": song.source, "variant": song.variant}
        else:
            spec, _details, audio_file, heard_s = _render_song(
                record, song.genre, None, np.random.SeedSequence([seed, 3, k]), paths.audio_dir, with_audio)
            extra = {"bpm": spec.bpm, "key": spec.key, "mode": spec.mode}
        n_audio += audio_file is not None
        ground_truth[song_id] = {"damage": None, "details": {}, "genre": song.genre, "spam": list(song.reasons),
                                 "metadata_duration_s": record["metadata"]["duration"], "audio_file": audio_file,
                                 **extra}
        listening.append(SongForListening(
            song_id=song_id, genre=song.genre, created_at=datetime.fromisoformat(record["created_at"]),
            duration_s=heard_s, popularity=popularity.get(song.source, 1.0 + record["play_count"]), damaged=False))
    return n_audio


def generate_sample_catalogue(data_root: str | os.PathLike, n_songs: int = 200, days: int = 14, seed: int = 7,
                              end_date: str = "2026-11-14", with_audio: bool = True,
                              n_users: int = 150, workers: int | None = None,
                              spam_cohort: bool = False,
                              on_catalogue_written: Callable[[Path], None] | None = None) -> SampleCatalogue:
    """Write a sample catalogue under ``data_root`` (see the module docstring); deterministic in ``seed``.

    Songs are created over ``days`` UTC days ending on ``end_date`` (inclusive); durations are
    20-40 s; about 20 % of songs are damaged, cycling through every damage kind. ``workers`` threads
    synthesise audio (default: the cores this process may run on). ``spam_cohort`` adds the
    songs of ``spam_cohort.py`` (re-uploads, a mass uploader, a text family, 31 s tracks, stuffed tags)
    from their own random stream: the clean songs stay exactly those of the default catalogue.
    ``on_catalogue_written(path)`` is called once the catalogue file (and, without a spam cohort,
    the listening log) is complete, before most of the audio is made: a caller may ingest it
    meanwhile, and check the audio as it comes, as ``make demo`` does. While the audio is written a
    reader in this process waits for each song's file (:mod:`sunorecsys.audio.arrivals`).
    """
    workers = workers if workers is not None else available_cores()
    started = time.perf_counter()
    if n_songs < 1 or days < 1:
        raise ValueError("n_songs and days must be at least 1")
    paths = DataPaths(Path(data_root))
    end_day = date.fromisoformat(end_date)
    start = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC) - timedelta(days=days - 1)
    end = start + timedelta(days=days) - timedelta(seconds=1)
    meta_rng, users_rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0]).spawn(2))

    n_damaged = round(n_songs * DAMAGED_SHARE)
    damaged_idx = meta_rng.choice(n_songs, size=n_damaged, replace=False)
    damaged = {int(i): DAMAGE_KINDS[j % len(DAMAGE_KINDS)] for j, i in enumerate(sorted(damaged_idx.tolist()))}
    # Shuffle which kind goes to which damaged song, so kinds do not follow creation order.
    kinds = [damaged[i] for i in sorted(damaged)]
    meta_rng.shuffle(kinds)
    damaged = dict(zip(sorted(damaged), kinds))
    records, song_genres, n_creators = _make_records(meta_rng, n_songs, start, days, damaged)
    cohort: list[CohortSong] = []
    if spam_cohort:
        cohort = make_spam_cohort(np.random.default_rng(np.random.SeedSequence([seed, 2])), records, song_genres,
                                  damaged, start, days)
    written = records + [c.record for c in cohort]
    if cohort:
        written = sorted(written, key=lambda r: r["created_at"])

    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    catalogue_file = paths.raw_dir / CATALOGUE_FILE_NAME
    interactions_file = paths.raw_dir / INTERACTIONS_FILE_NAME
    if with_audio:
        paths.audio_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(i, record, song_genres[i], damaged.get(i)) for i, record in enumerate(records)]

    def render(job: tuple[int, dict, str, str | None]) -> tuple[SongSpec, dict, str | None, float]:
        i, record, genre, kind = job
        out = _render_song(record, genre, kind, np.random.SeedSequence([seed, 1, i]), paths.audio_dir,
                           with_audio)
        arrivals.settle(record["id"])
        return out

    def listening_entry(record: dict, genre: str, kind: str | None, heard_s: float) -> SongForListening:
        return SongForListening(song_id=record["id"], genre=genre,
                                created_at=datetime.fromisoformat(record["created_at"]), duration_s=heard_s,
                                popularity=1.0 + record["play_count"], damaged=kind is not None)

    # While the audio is written, readers of this process wait for each song's file instead of
    # finding it missing (sunorecsys.audio.arrivals: `make demo` checks songs as they are written).
    with producing(paths.audio_dir) as arrivals, ThreadPoolExecutor(max_workers=workers) as pool:
        catalogue_file.write_text(json.dumps(written, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        # numpy and libsndfile release the GIL, so threads use both cores without copying audio around;
        # every song has its own random stream and file, so the result does not depend on scheduling.
        run = pool.map if workers > 1 else map
        rendered: dict[int, tuple[SongSpec, dict, str | None, float]] = {}
        if not cohort:
            # The listening log before the audio: what a listener hears of a song is known from its
            # metadata, but for a truncated file (its length is drawn after the synthesis): those
            # few are made first, the rest of the audio after the log (so a reader of the log and
            # the catalogue need not wait for the audio). A re-upload's length needs its source's
            # audio: with a spam cohort the log comes last.
            early = [job for job in jobs if job[3] == "truncated"]
            rendered.update(zip((job[0] for job in early), run(render, early)))
            heard = {i: rendered[i][3] if i in rendered else _heard_seconds(record, kind, with_audio)
                     for i, record, _, kind in jobs}
            events = _write_listening_log(
                interactions_file, [listening_entry(record, genre, kind, heard[i]) for i, record, genre, kind in jobs],
                users_rng, start, end, n_users)
        if on_catalogue_written is not None:
            on_catalogue_written(catalogue_file)
        late = [job for job in jobs if job[0] not in rendered]
        rendered.update(zip((job[0] for job in late), run(render, late)))

        ground_truth: dict[str, dict] = {}
        listening: list[SongForListening] = []
        for i, record, genre, kind in jobs:
            spec, details, audio_file, heard_s = rendered[i]
            if not cohort and heard_s != heard[i]:  # the log above would be wrong: a bug, never a silent one
                raise RuntimeError(f"song {record['id']}: {heard_s} s heard, {heard[i]} s in the listening log")
            ground_truth[record["id"]] = {
                "damage": kind, "details": details, "genre": genre, "bpm": spec.bpm, "key": spec.key,
                "mode": spec.mode, "metadata_duration_s": record["metadata"]["duration"], "audio_file": audio_file,
            }
            listening.append(listening_entry(record, genre, kind, heard_s))
        n_audio = sum(1 for r in rendered.values() if r[2] is not None)
        if cohort:
            for gt in ground_truth.values():
                gt["spam"] = []
            n_audio += _render_cohort(cohort, seed, paths, with_audio, ground_truth, listening)
            n_creators += len({c.record["user_id"] for c in cohort})
            events = _write_listening_log(interactions_file, listening, users_rng, start, end, n_users)

    paths.sample_ground_truth.parent.mkdir(parents=True, exist_ok=True)
    paths.sample_ground_truth.write_text(json.dumps(ground_truth, ensure_ascii=False, indent=2) + "\n",
                                         encoding="utf-8")
    return SampleCatalogue(
        paths=paths, catalogue_file=catalogue_file, interactions_file=interactions_file,
        ground_truth_file=paths.sample_ground_truth, n_songs=len(written), n_creators=n_creators,
        n_users=len({e.user_id for e in events}), n_events=len(events), n_audio_files=n_audio,
        damage_counts=dict(Counter(damaged.values())), seconds=time.perf_counter() - started)
