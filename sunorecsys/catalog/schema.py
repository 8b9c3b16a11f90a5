"""The songs table (ARCHITECTURE.md) and the rule for safe song ids."""

from __future__ import annotations

import re

import pyarrow as pa

# Song ids become file names (audio, cache): only these characters, never a path.
SONG_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def is_safe_song_id(song_id: object) -> bool:
    return isinstance(song_id, str) and bool(SONG_ID_PATTERN.fullmatch(song_id))


SONGS_SCHEMA = pa.schema([
    pa.field("song_id", pa.string(), nullable=False),
    pa.field("title", pa.string()),
    pa.field("user_id", pa.string()),
    pa.field("handle", pa.string()),
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    pa.field("duration_s", pa.float64()),
    pa.field("model_version", pa.string()),
    pa.field("tags", pa.list_(pa.string())),
    pa.field("genre", pa.string()),
    pa.field("prompt", pa.string()),
    pa.field("audio_url", pa.string()),
    pa.field("audio_path", pa.string()),
    pa.field("play_count", pa.int64()),
    pa.field("upvote_count", pa.int64()),
    pa.field("comment_count", pa.int64()),
    pa.field("is_public", pa.bool_()),
    pa.field("is_remix", pa.bool_()),
])

REJECTED_SCHEMA = pa.schema([
    pa.field("source_file", pa.string()),
    pa.field("position", pa.int64()),      # record index in a list, or line number in JSON Lines; null: the whole file
    pa.field("song_id", pa.string()),      # as found (may be unsafe or missing)
    pa.field("reason", pa.string()),       # machine-readable code, e.g. "unsafe_id" (record_rules.REASONS)
    pa.field("detail", pa.string()),       # human-readable explanation
    pa.field("raw", pa.string()),          # the record as JSON, for the curious
])

INTERACTIONS_SCHEMA = pa.schema([
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("song_id", pa.string(), nullable=False),
    pa.field("timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("event", pa.string()),        # play, complete, like, skip, ...
    pa.field("weight", pa.float64()),      # implicit-feedback strength; skips may be <= 0
])
