"""Simulated listeners for the sample catalogue: a listening log with real signal in it.

Each listener has 1-3 favourite genres and an activity level. A listen happens at a random time
in the catalogue's window and picks a song that already exists then, favouring the listener's
genres, popular songs and fresh ones; a quarter of listens replay a song the listener already
completed or liked (people come back to what they like, which a temporal split can learn from).
Damaged songs are skipped most of the time and rarely completed or liked, so listening behaviour
carries the quality signal too.

Events and weights: ``play`` 1.0 at the start, then ``skip`` -1.0 (after 3-30 s) or
``complete`` 2.0 (after the song's length), and ``like`` 4.0 shortly after a completion.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

EVENT_WEIGHTS = {"play": 1.0, "complete": 2.0, "like": 4.0, "skip": -1.0}
REPLAY_SHARE = 0.25


@dataclass(frozen=True)
class SongForListening:
    song_id: str
    genre: str
    created_at: datetime      # UTC
    duration_s: float         # what the listener hears (a truncated file ends early)
    popularity: float         # > 0; e.g. 1 + play_count
    damaged: bool


@dataclass(frozen=True)
class ListenEvent:
    user_id: str
    song_id: str
    timestamp: datetime
    event: str
    weight: float


def seeded_uuid(rng: np.random.Generator) -> str:
    """A version-4 UUID string drawn from ``rng`` (Suno's id format, but repeatable)."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _reaction_odds(damaged: bool, favourite: bool) -> tuple[float, float, float]:
    """(P(skip), P(complete | not skipped), P(like | completed))."""
    if damaged:
        return 0.85, 0.25, 0.05
    if favourite:
        return 0.12, 0.85, 0.4
    return 0.45, 0.55, 0.1


def simulate_listening(songs: list[SongForListening], rng: np.random.Generator, start: datetime, end: datetime,
                       n_users: int = 150, genres: tuple[str, ...] | None = None) -> list[ListenEvent]:
    """Events of ``n_users`` listeners between ``start`` and ``end`` (UTC), sorted by time.

    Every event of a song happens after that song's ``created_at`` and before ``end``. Each listener
    makes 15-60 listens (about 30-120 events).
    """
    if not songs:
        return []
    genres = genres or tuple(sorted({s.genre for s in songs}))
    created = np.array([s.created_at.timestamp() for s in songs])
    popularity = np.array([s.popularity for s in songs], dtype=float) ** 0.7
    song_genre = np.array([genres.index(s.genre) if s.genre in genres else -1 for s in songs])
    t0, t1 = start.timestamp(), end.timestamp()
    events: list[ListenEvent] = []
    for _ in range(n_users):
        user_id = seeded_uuid(rng)
        n_fav = int(rng.integers(1, 4))
        favourites = set(rng.choice(len(genres), size=min(n_fav, len(genres)), replace=False).tolist())
        is_fav = np.isin(song_genre, list(favourites))
        taste = np.where(is_fav, 4.0, 0.3)
        n_listens = int(rng.integers(15, 61))
        # Listeners arrive over the window; later listens crowd toward the end like a growing app.
        times = np.sort(t0 + (t1 - t0 - 3600.0) * rng.random(n_listens) ** 0.8)
        kept: list[int] = []
        for t in times:
            available = created < t - 60.0
            if not available.any():
                continue
            if kept and rng.random() < REPLAY_SHARE:
                k = kept[int(rng.integers(len(kept)))]
            else:
                age_days = (t - created) / 86400.0
                w = popularity * taste * (0.4 + np.exp(-age_days / 4.0)) * available
                k = int(rng.choice(len(songs), p=w / w.sum()))
            song = songs[k]
            when = datetime.fromtimestamp(float(t), tz=UTC).replace(microsecond=0)
            events.append(ListenEvent(user_id, song.song_id, when, "play", EVENT_WEIGHTS["play"]))
            p_skip, p_complete, p_like = _reaction_odds(song.damaged, bool(is_fav[k]))
            if rng.random() < p_skip or song.duration_s < 5.0:
                later = when + timedelta(seconds=float(min(rng.uniform(3, 30), max(song.duration_s, 1.0))))
                events.append(ListenEvent(user_id, song.song_id, later, "skip", EVENT_WEIGHTS["skip"]))
            elif rng.random() < p_complete:
                done = when + timedelta(seconds=round(song.duration_s))
                events.append(ListenEvent(user_id, song.song_id, done, "complete", EVENT_WEIGHTS["complete"]))
                if k not in kept:
                    kept.append(k)
                if rng.random() < p_like:
                    liked = done + timedelta(seconds=int(rng.integers(1, 20)))
                    events.append(ListenEvent(user_id, song.song_id, liked, "like", EVENT_WEIGHTS["like"]))
    events.sort(key=lambda e: (e.timestamp, e.user_id, e.song_id, e.event))
    return [e for e in events if e.timestamp <= end]
