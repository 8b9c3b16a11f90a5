"""Suno catalogue files -> validated songs table."""

from sunorecsys.catalog.schema import INTERACTIONS_SCHEMA, REJECTED_SCHEMA, SONGS_SCHEMA, is_safe_song_id

__all__ = ["INTERACTIONS_SCHEMA", "REJECTED_SCHEMA", "SONGS_SCHEMA", "is_safe_song_id"]
