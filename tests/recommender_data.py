"""Pipeline outputs for the recommender tests, computed once per session from ``sample_data``.

The quality scores file is produced by the pipeline code path (run_audio_checks ->
combine_quality_scores -> guide_entries -> write_scores_file), never written by hand, and the
songs table by the real ingest (read_catalogue + write_songs). ``work_dir`` is a cwd for the guide's
snippets: ``data/processed/songs.parquet``, ``data/music_flamingo_scores.json``,
``data/raw/interactions.csv`` and ``data/audio`` (a link to the sample's audio) under it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sunorecsys.paths import DataPaths

_CACHE: dict[str, PipelineOutputs] = {}


@dataclass(frozen=True)
class PipelineOutputs:
    work_dir: Path                 # cwd for the guide's snippets
    paths: DataPaths               # work_dir / "data"
    songs: pd.DataFrame            # as read back from data/processed/songs.parquet
    interactions: pd.DataFrame
    audio_checks: pd.DataFrame
    quality: pd.DataFrame          # combine_quality_scores output
    scores_file: Path
    damaged: frozenset[str]        # ground truth: songs the generator damaged and the checks heard
    ground_truth: dict


def pipeline_outputs(sample_data: DataPaths, tmp_root: Path) -> PipelineOutputs:
    key = str(sample_data.root)
    if key in _CACHE:
        return _CACHE[key]
    from sunorecsys.audio.checks import run_audio_checks
    from sunorecsys.catalog.ingest import find_catalogue_files, read_catalogue, write_songs
    from sunorecsys.catalog.interactions import read_interactions
    from sunorecsys.quality.blend import combine_quality_scores
    from sunorecsys.quality.export import guide_entries
    from sunorecsys.quality.scores_file import write_scores_file

    work = Path(tmp_root) / "guide_cwd"
    paths = DataPaths(work / "data")
    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    for f in sample_data.raw_dir.iterdir():
        shutil.copy2(f, paths.raw_dir / f.name)
    os.symlink(sample_data.audio_dir.resolve(), paths.audio_dir)
    result = read_catalogue(find_catalogue_files(paths.raw_dir))
    write_songs(result, paths)
    songs = pd.read_parquet(paths.processed_songs)
    checks = run_audio_checks(songs, sample_data, workers=2, fetch=False)
    quality = combine_quality_scores(audio_checks=checks)
    scores_file = write_scores_file(guide_entries(quality, songs_df=songs), paths.flamingo_scores_file)
    interactions, _ = read_interactions(paths, known_song_ids=set(songs["song_id"]))
    truth = json.loads(sample_data.sample_ground_truth.read_text())
    # A song whose file the generator removed was never heard: it is unscored, not bad, and the
    # recommender keeps it by its missing_quality policy ("keep"), so it is not among the damaged.
    damaged = frozenset(s for s, v in truth.items() if v.get("damage") and v["damage"] != "missing_file")
    out = PipelineOutputs(work, paths, songs, interactions, checks, quality, scores_file, damaged, truth)
    _CACHE[key] = out
    return out


GENRES = {"lo-fi": ["lo-fi", "chill", "study"], "metal": ["metal", "heavy", "guitar"],
          "jazz": ["jazz", "swing", "sax"]}


def synthetic_catalogue(seed: int = 3):
    """36 songs (12 per genre, 6 creators), 60 listeners who stay in one genre, plus odd cases:
    a cold lo-fi song (no listens), events for a song that is not in the catalogue."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, (genre, tags) in enumerate(GENRES.items()):
        for i in range(12):
            rows.append({"song_id": f"{genre.replace('-', '')}-{i}", "title": f"{genre} song {i}",
                         "user_id": f"creator-{(g * 2 + i % 2)}", "handle": f"maker{g * 2 + i % 2}",
                         "tags": list(rng.choice(tags, size=2, replace=False)), "genre": genre,
                         "prompt": f"a {genre} track about the {['sea', 'city', 'night'][i % 3]}"})
    rows.append({"song_id": "cold-lofi", "title": "never played", "user_id": "creator-9", "handle": "newbie",
                 "tags": ["lofi", "chill", "study"], "genre": "lo-fi", "prompt": "a lo-fi track about the sea"})
    songs = pd.DataFrame(rows)
    events = []
    t0 = pd.Timestamp("2026-11-01", tz="UTC")
    for u in range(60):
        genre = list(GENRES)[u % 3]
        pool = [s for s in songs["song_id"] if s.startswith(genre.replace("-", "")) and s != "cold-lofi"]
        for k, song in enumerate(rng.choice(pool, size=6, replace=False)):
            ts = t0 + pd.Timedelta(hours=int(rng.integers(0, 300)))
            events.append((f"user-{u}", song, ts, "play", 1.0))
            events.append((f"user-{u}", song, ts + pd.Timedelta(minutes=3), "complete", 2.0))
        # one skipped song from another genre: a play then a skip adds up to nothing
        other = songs["song_id"][(u * 7) % 24 + (12 if genre == "lo-fi" else 0)]
        events.append((f"user-{u}", other, t0, "play", 1.0))
        events.append((f"user-{u}", other, t0 + pd.Timedelta(seconds=10), "skip", -1.0))
    events += [("user-0", "ghost-song", t0, "play", 1.0), ("user-1", "ghost-song", t0, "complete", 2.0)]
    interactions = pd.DataFrame(events, columns=["user_id", "song_id", "timestamp", "event", "weight"])
    quality = {s: 0.8 for s in songs["song_id"]}
    return songs, interactions, quality


WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "jasper", "krill",
         "lagoon", "marble", "nectar", "onyx", "pebble", "quartz", "russet", "sierra", "tundra"]


def clustered_catalogue(n_genres: int = 8, songs_per_genre: int = 30, n_users: int = 240,
                        listens: tuple[int, int] = (12, 30), informative_text: bool = True, seed: int = 5):
    """Songs in genres and listeners loyal to one genre (90 %), songs drawn by a power law within it.

    ``informative_text`` False: tags, genre and prompt are random words, independent of the genre
    the listeners follow (text channels are pure noise); True: they name the song's genre.
    Returns (songs, interactions) with one timestamped play per (listener, song).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_genres):
        for i in range(songs_per_genre):
            if informative_text:
                tags = [f"style{g}", f"mood{g}", WORDS[g % len(WORDS)]]
                prompt = f"a {WORDS[g % len(WORDS)]} song in style{g}"
            else:
                tags = list(rng.choice(WORDS, size=3, replace=False))
                prompt = "a " + " ".join(rng.choice(WORDS, size=4)) + " song"
            title = f"song {g}.{i}" if informative_text else f"song {rng.integers(10 ** 6)}"
            rows.append({"song_id": f"g{g}-s{i}", "title": title, "user_id": f"maker-{rng.integers(40)}",
                         "tags": tags, "genre": tags[0], "prompt": prompt})
    songs = pd.DataFrame(rows)
    events = []
    t0 = pd.Timestamp("2026-06-01", tz="UTC")
    for u in range(n_users):
        fav = u % n_genres
        count = int(rng.integers(*listens))
        picked: set[str] = set()
        for j in range(count * 3):
            if len(picked) >= count:
                break
            g = fav if rng.random() < 0.9 else int(rng.integers(n_genres))
            i = min(int(songs_per_genre * rng.random() ** 2), songs_per_genre - 1)
            song = f"g{g}-s{i}"
            if song in picked:
                continue
            picked.add(song)
            events.append((f"listener-{u}", song, t0 + pd.Timedelta(hours=u * 0.1 + j), "play", 1.0))
    interactions = pd.DataFrame(events, columns=["user_id", "song_id", "timestamp", "event", "weight"])
    return songs, interactions
