"""The listening log reader: three file formats, unknown songs and malformed rows counted, never a crash."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sunorecsys.catalog.interactions import read_interactions
from sunorecsys.catalog.schema import INTERACTIONS_SCHEMA

ROWS = [
    {"user_id": "u1", "song_id": "s1", "timestamp": "2026-11-02T10:00:00Z", "event": "play", "weight": 1.0},
    {"user_id": "u1", "song_id": "s1", "timestamp": "2026-11-02T10:00:30Z", "event": "complete", "weight": 2.0},
    {"user_id": "u2", "song_id": "s2", "timestamp": "2026-11-01T09:00:00+01:00", "event": "SKIP", "weight": -1},
]


def write_log(paths, fmt: str, rows: list[dict]) -> None:
    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if fmt == "csv":
        frame.to_csv(paths.raw_dir / "interactions.csv", index=False)
    elif fmt == "parquet":
        frame.to_parquet(paths.raw_dir / "interactions.parquet")
    else:
        (paths.raw_dir / "interactions.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_every_format_reads_to_the_same_events(tmp_data, fmt):
    write_log(tmp_data, fmt, ROWS)
    events, stats = read_interactions(tmp_data)
    assert list(events.columns) == INTERACTIONS_SCHEMA.names
    assert stats["rows"] == 3 and stats["malformed_rows"] == 0 and stats["kept"] == 3
    # Sorted by time, UTC, events lower-cased.
    assert list(events["song_id"]) == ["s2", "s1", "s1"]
    assert events["timestamp"].iloc[0] == pd.Timestamp("2026-11-01T08:00:00Z")
    assert list(events["event"]) == ["skip", "play", "complete"]
    assert list(events["weight"]) == [-1.0, 1.0, 2.0]
    assert str(events["timestamp"].dt.tz) == "UTC"


def test_unknown_songs_are_counted_and_dropped(tmp_data):
    write_log(tmp_data, "csv", ROWS)
    events, stats = read_interactions(tmp_data, known_song_ids={"s1"})
    assert set(events["song_id"]) == {"s1"}
    assert stats["unknown_song_events"] == 1 and stats["kept"] == 2


def test_malformed_rows_are_counted_by_reason_and_dropped(tmp_data):
    tmp_data.raw_dir.mkdir(parents=True)
    (tmp_data.raw_dir / "interactions.csv").write_text(
        "user_id,song_id,timestamp,event,weight\n"
        "u1,s1,2026-11-02T10:00:00Z,play,1\n"
        ",s1,2026-11-02T10:00:00Z,play,1\n"          # no user
        "u1,,2026-11-02T10:00:00Z,play,1\n"          # no song
        "u1,s1,not-a-time,play,1\n"                  # bad timestamp
        "u1,s1,2026-11-02T10:00:00Z,like,heavy\n"    # bad weight
        "u1,s1,2026-11-02T10:00:00Z,like\n"          # too few fields: weight defaults from the event
        "u1,s1,2026-11-02,play,1,extra,fields\n"     # too many fields
        "u1,s1,1762077600,like,\n"                   # epoch seconds, empty weight -> like's default
    )
    events, stats = read_interactions(tmp_data)
    assert stats["malformed_reasons"] == {"missing_user_id": 1, "missing_song_id": 1, "bad_timestamp": 1,
                                          "bad_weight": 1, "wrong_field_count": 1}
    assert stats["malformed_rows"] == 5 and stats["rows"] == 8 and stats["kept"] == 3
    assert sorted(events["weight"]) == [1.0, 4.0, 4.0]
    assert pd.Timestamp("2025-11-02T10:00:00Z") in set(events["timestamp"])


def test_bad_json_lines_are_counted_not_fatal(tmp_data):
    tmp_data.raw_dir.mkdir(parents=True)
    (tmp_data.raw_dir / "interactions.jsonl").write_text(
        json.dumps(ROWS[0]) + "\n{broken\n[1, 2]\n" + json.dumps(ROWS[1]) + "\n")
    events, stats = read_interactions(tmp_data)
    assert len(events) == 2 and stats["malformed_reasons"] == {"bad_json_line": 2}


def test_no_log_gives_no_events(tmp_data):
    events, stats = read_interactions(tmp_data)
    assert events.empty and list(events.columns) == INTERACTIONS_SCHEMA.names
    assert stats["files"] == [] and stats["rows"] == 0


def test_the_sample_log_reads_completely(sample_data):
    from sunorecsys.catalog.ingest import read_catalogue

    songs = read_catalogue(sample_data.raw_dir).songs
    events, stats = read_interactions(sample_data, known_song_ids=songs["song_id"])
    assert stats["malformed_rows"] == 0 and stats["unknown_song_events"] == 0
    assert len(events) == stats["rows"] > 150 * 30 * 0.8
    assert events["user_id"].nunique() == 150
