"""Catalogue ingest: the three file shapes, folders, every rejection reason, duplicates, malformed
files, Unicode through Parquet, partitions, and the sample catalogue end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sunorecsys.catalog.ingest import (
    find_catalogue_files,
    partition_songs,
    read_catalogue,
    write_songs,
)
from sunorecsys.catalog.schema import REJECTED_SCHEMA, SONGS_SCHEMA


def clip(song_id: str = "abc-123", created_at: str = "2026-11-03T14:22:05.123Z", **overrides) -> dict:
    """A raw Suno clip record as the API returns it."""
    record = {
        "id": song_id,
        "title": "Neon Rain",
        "user_id": "u-1",
        "handle": "neonmaker",
        "display_name": "Neon Maker",
        "created_at": created_at,
        "audio_url": f"https://cdn1.suno.ai/{song_id}.mp3",
        "model_name": "chirp-v4",
        "major_model_version": "v4",
        "play_count": 12,
        "upvote_count": 3,
        "comment_count": 1,
        "is_public": True,
        "metadata": {
            "tags": "Lo-Fi, chill , Study",
            "prompt": "[Verse]\nline one\nline two",
            "gpt_description_prompt": "a chill lofi song",
            "duration": 31.5,
            "type": "gen",
            "history": None,
        },
    }
    record.update(overrides)
    return record


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def rejected_reasons(result) -> dict[str, str]:
    return dict(zip(result.rejected["song_id"].fillna("<none>"), result.rejected["reason"]))


# --- shapes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["list", "songs_object", "jsonl", "jsonl_named_json"])
def test_all_file_shapes_give_the_same_songs(tmp_path, shape):
    records = [clip("a1"), clip("b2", created_at="2026-11-04T01:00:00Z")]
    if shape == "list":
        path = write_json(tmp_path / "all_songs.json", records)
    elif shape == "songs_object":
        path = write_json(tmp_path / "all_songs.json", {"songs": records})
    elif shape == "jsonl":
        path = write_jsonl(tmp_path / "all_songs.jsonl", records)
    else:
        path = write_jsonl(tmp_path / "all_songs.json", records)
    result = read_catalogue(path)
    assert list(result.songs["song_id"]) == ["a1", "b2"]
    assert result.rejected.empty and result.duplicates == 0 and result.records == 2
    assert list(result.songs.columns) == SONGS_SCHEMA.names


def test_a_record_is_normalised_to_the_songs_table(tmp_path):
    record = clip("s1", metadata={"tags": "Hip Hop, Boom-Bap,  lofi ,", "prompt": "", "gpt_description_prompt":
                                   "a gritty beat", "duration": "42.5", "history": [{"id": "p"}]})
    row = read_catalogue(write_json(tmp_path / "c.json", [record])).songs.iloc[0]
    assert list(row["tags"]) == ["hip hop", "boom-bap", "lofi"]
    assert row["genre"] == "hip-hop"
    assert row["prompt"] == "a gritty beat"           # no lyrics: the description prompt
    assert row["duration_s"] == 42.5
    assert row["model_version"] == "v4"
    assert bool(row["is_remix"]) is True
    assert row["created_at"] == pd.Timestamp("2026-11-03T14:22:05.123Z")
    assert str(row["created_at"].tz) == "UTC"


def test_unknown_tags_give_genre_other_and_offsets_become_utc(tmp_path):
    record = clip("s1", created_at="2026-11-03T23:30:00-02:00",
                  metadata={"tags": "vocaloid, weird", "duration": 20})
    row = read_catalogue(write_json(tmp_path / "c.json", [record])).songs.iloc[0]
    assert row["genre"] == "other"
    assert row["created_at"] == pd.Timestamp("2026-11-04T01:30:00Z")


def test_a_folder_of_files_is_read_and_interactions_are_not_a_catalogue(tmp_path):
    write_json(tmp_path / "part1.json", [clip("a1")])
    write_jsonl(tmp_path / "part2.jsonl", [clip("b2")])
    write_jsonl(tmp_path / "interactions.jsonl", [{"user_id": "u", "song_id": "a1"}])
    (tmp_path / "notes.txt").write_text("not a catalogue")
    assert [p.name for p in find_catalogue_files(tmp_path)] == ["part1.json", "part2.jsonl"]
    result = read_catalogue(tmp_path)
    assert sorted(result.songs["song_id"]) == ["a1", "b2"]
    assert len(result.files) == 2


def test_a_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_catalogue(tmp_path / "nope.json")


# --- rejections -------------------------------------------------------------------------------------

def test_missing_id_is_rejected(tmp_path):
    record = clip()
    del record["id"]
    result = read_catalogue(write_json(tmp_path / "c.json", [record, clip("ok1", id="")]))
    assert list(result.rejected["reason"]) == ["missing_id", "missing_id"]
    assert result.songs.empty
    assert list(result.rejected["position"]) == [0, 1]


@pytest.mark.parametrize("bad_id", ["../../etc/x", "a/b", "a b", "x.mp3", "é", 12345, "a" * 129])
def test_unsafe_ids_are_rejected_and_never_become_songs(tmp_path, bad_id):
    result = read_catalogue(write_json(tmp_path / "c.json", [clip(song_id=bad_id), clip("fine_id-1")]))
    assert list(result.songs["song_id"]) == ["fine_id-1"]
    row = result.rejected.iloc[0]
    assert row["reason"] == "unsafe_id" and row["song_id"] == str(bad_id)
    assert json.loads(row["raw"])["id"] == bad_id


@pytest.mark.parametrize("created_at", [None, "yesterday", "2026-13-45T00:00:00Z", 1731000000, ""])
def test_bad_timestamps_are_rejected(tmp_path, created_at):
    record = clip("t1", created_at=created_at)
    if created_at is None:
        del record["created_at"]
    result = read_catalogue(write_json(tmp_path / "c.json", [record]))
    assert rejected_reasons(result) == {"t1": "bad_timestamp"}
    assert result.songs.empty


def test_negative_and_non_numeric_durations_are_rejected_but_a_missing_one_is_not(tmp_path):
    records = [clip("neg", metadata={"tags": "rock", "duration": -3}),
               clip("txt", metadata={"tags": "rock", "duration": "long"}),
               clip("none", metadata={"tags": "rock"})]
    result = read_catalogue(write_json(tmp_path / "c.json", records))
    assert rejected_reasons(result) == {"neg": "negative_duration", "txt": "bad_duration"}
    assert list(result.songs["song_id"]) == ["none"]
    assert pd.isna(result.songs["duration_s"].iloc[0])


def test_non_objects_in_the_list_are_rejected(tmp_path):
    result = read_catalogue(write_json(tmp_path / "c.json", [clip("a1"), "just a string", 7, None, []]))
    assert list(result.rejected["reason"]) == ["not_an_object"] * 4
    assert list(result.rejected["position"]) == [1, 2, 3, 4]
    assert list(result.songs["song_id"]) == ["a1"]


def test_missing_counts_become_zero_without_rejection(tmp_path):
    record = clip("c1")
    for key in ("play_count", "upvote_count", "comment_count", "is_public"):
        del record[key]
    result = read_catalogue(write_json(tmp_path / "c.json", [record, clip("c2", play_count=None)]))
    assert result.rejected.empty
    assert result.songs[["play_count", "upvote_count", "comment_count"]].sum().sum() == 3 + 1  # from c2 only
    assert result.songs.set_index("song_id").loc["c1", "play_count"] == 0
    assert pd.isna(result.songs.set_index("song_id").loc["c1", "is_public"])


def test_a_duplicate_id_keeps_the_newest_record_and_reports_the_rest(tmp_path):
    old = clip("dup", created_at="2026-11-01T00:00:00Z", title="old")
    new = clip("dup", created_at="2026-11-05T00:00:00Z", title="new")
    write_json(tmp_path / "a.json", [new])
    write_json(tmp_path / "b.json", [old, clip("other")])
    result = read_catalogue(tmp_path)
    assert result.duplicates == 1
    assert result.songs.set_index("song_id").loc["dup", "title"] == "new"
    row = result.rejected.iloc[0]
    assert row["reason"] == "duplicate_superseded" and row["song_id"] == "dup"
    assert row["source_file"].endswith("b.json") and row["position"] == 0
    assert "a.json" in row["detail"]
    assert json.loads(row["raw"])["title"] == "old"


def test_a_duplicate_with_the_same_timestamp_keeps_the_later_record(tmp_path):
    result = read_catalogue(write_json(tmp_path / "c.json", [clip("d", title="first"), clip("d", title="second")]))
    assert result.duplicates == 1
    assert list(result.songs["title"]) == ["second"]


def test_one_bad_record_never_stops_the_others(tmp_path):
    records = [clip("good1"), clip("../../etc/passwd"), {"title": "no id"}, clip("bad_ts", created_at="?"),
               clip("good2")]
    result = read_catalogue(write_json(tmp_path / "c.json", records))
    assert sorted(result.songs["song_id"]) == ["good1", "good2"]
    assert sorted(result.rejected["reason"]) == ["bad_timestamp", "missing_id", "unsafe_id"]
    assert result.reasons == {"bad_timestamp": 1, "missing_id": 1, "unsafe_id": 1}


# --- malformed files: the bad part is rejected, the rest lands ----------------------------------------

@pytest.mark.parametrize("chunk_bytes", [None, 5, 64])
def test_a_malformed_record_is_one_rejected_row_naming_the_line_and_column(tmp_path, monkeypatch, chunk_bytes):
    from sunorecsys.catalog import tolerant_reader

    if chunk_bytes:  # the place must be right wherever the streaming window happens to start
        monkeypatch.setattr(tolerant_reader, "CHUNK_BYTES", chunk_bytes)
    path = tmp_path / "broken.json"
    text = ('[\n  {"id": "a1", "created_at": "2026-11-01T00:00:00Z"},\n  {"id": "b2", oops},\n'
            '  {"id": "c3", "created_at": "2026-11-02T00:00:00Z"}\n]\n')
    path.write_text(text)
    with pytest.raises(json.JSONDecodeError) as expected:  # where the standard parser places the error
        json.loads(text)
    result = read_catalogue(path)
    assert list(result.songs["song_id"]) == ["a1", "c3"]
    row = result.rejected.iloc[0]
    assert (row["reason"], row["position"], row["song_id"]) == ("malformed_json", 1, "b2")
    assert f"at line 3, column {expected.value.colno};" in row["detail"] and "oops" in row["raw"]
    assert "the record starts at line 3, column 3" in row["detail"]
    assert len(result.rejected) == 1 and result.records == 3 and not result.rejected_files


def test_a_list_cut_short_keeps_the_records_before_the_cut(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps([clip("a1"), clip("b2")])[:-40])
    result = read_catalogue(path)
    assert list(result.songs["song_id"]) == ["a1"]
    assert list(result.rejected["reason"]) == ["malformed_json"]
    assert result.rejected["position"].tolist() == [1] and "truncated" in result.rejected["detail"].iloc[0]


def test_a_malformed_json_line_is_one_rejected_row(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(clip("a1")) + "\n\n" + '{"id": "b2", \n' + json.dumps(clip("c3")) + "\n")
    result = read_catalogue(path)
    assert list(result.songs["song_id"]) == ["a1", "c3"]
    row = result.rejected.iloc[0]
    assert (row["reason"], row["position"]) == ("malformed_json", 3) and "line 3" in row["detail"]


@pytest.mark.parametrize("content, message", [("", "is empty (0 bytes)"),
                                              ("42", "is a JSON scalar"),
                                              ('{"data": []}', "must hold a \"songs\" list"),
                                              ('{"songs": {}}', "must be a list")])
def test_a_file_of_the_wrong_shape_is_one_rejected_file(tmp_path, content, message):
    (tmp_path / "odd.json").write_text(content)
    write_json(tmp_path / "fine.json", [clip("a1")])
    result = read_catalogue(tmp_path)
    assert list(result.songs["song_id"]) == ["a1"]
    assert list(result.rejected_files) == [str(tmp_path / "odd.json")]
    assert message in result.rejected_files[str(tmp_path / "odd.json")]
    row = result.rejected.iloc[0]
    assert row["reason"] == "bad_file" and pd.isna(row["position"]) and pd.isna(row["song_id"])
    assert message in row["detail"] and "odd.json" in result.summary()


@pytest.mark.parametrize("content, detail, songs", [
    ('[{"id": "a", "created_at": "2026-11-01T00:00:00Z"},\n]', "trailing comma", ["a"]),
    ('[{"id": "a", "created_at": "2026-11-01T00:00:00Z"}] [1]', "extra data after the list", ["a"]),
    ('[{"id": "a", "created_at": "2026-11-01T00:00:00Z"} {"id": "b", "created_at": "2026-11-01T00:00:00Z"}]',
     "expected ',' or ']'", ["a", "b"]),
])
def test_damage_between_records_is_reported_and_the_records_land(tmp_path, content, detail, songs):
    path = tmp_path / "odd.json"
    path.write_text(content)
    result = read_catalogue(path)
    assert list(result.songs["song_id"]) == songs
    assert list(result.rejected["reason"]) == ["malformed_json"] and detail in result.rejected["detail"].iloc[0]
    assert pd.isna(result.rejected["song_id"].iloc[0])


def test_the_tolerant_reader_handles_records_across_window_boundaries(tmp_path, monkeypatch):
    from sunorecsys.catalog import tolerant_reader

    monkeypatch.setattr(tolerant_reader, "CHUNK_BYTES", 37)  # far smaller than one record
    records = [clip(f"id{i}", title=f"Título {i} 🎧", play_count=10 ** i) for i in range(12)]
    records.insert(5, "not a record")  # DuckDB refuses the file: the tolerant path reads it
    result = read_catalogue(write_json(tmp_path / "c.json", records))
    assert list(result.songs.sort_values("play_count")["play_count"]) == [10 ** i for i in range(12)]
    assert result.songs["title"].str.contains("🎧").all()
    assert list(result.rejected["reason"]) == ["not_an_object"] and result.rejected["position"].tolist() == [5]


# --- Unicode, Parquet, partitions ---------------------------------------------------------------------

def test_unicode_and_emoji_survive_a_parquet_round_trip(tmp_data):
    title = "夜空のメロディー 🌙✨ — Corazón"
    prompt = "[Verse]\nCanción del mar 🌊\n星が降る夜に\nSaudade, coração"
    tmp_data.raw_dir.mkdir(parents=True)
    write_json(tmp_data.raw_dir / "all_songs.json",
               [clip("u1", title=title, metadata={"tags": "J-Pop, 日本語", "prompt": prompt, "duration": 30})])
    result = read_catalogue(tmp_data.raw_dir)
    written = write_songs(result, tmp_data)
    back = pd.read_parquet(written["songs_file"])
    assert back.loc[0, "title"] == title and back.loc[0, "prompt"] == prompt
    assert list(back.loc[0, "tags"]) == ["j-pop", "日本語"] and back.loc[0, "genre"] == "pop"


def test_written_files_follow_the_schemas_and_leave_no_temporary_files(tmp_data):
    tmp_data.raw_dir.mkdir(parents=True)
    write_json(tmp_data.raw_dir / "all_songs.json", [clip("a1"), clip("../x")])
    written = write_songs(read_catalogue(tmp_data.raw_dir), tmp_data)
    assert pq.read_schema(written["songs_file"]).remove_metadata() == SONGS_SCHEMA
    assert pq.read_schema(written["rejected_file"]).remove_metadata() == REJECTED_SCHEMA
    assert written["songs"] == 1 and written["rejected"] == 1
    assert sorted(p.name for p in tmp_data.processed_songs.parent.iterdir()) == [
        "rejected_songs.parquet", "songs.parquet"]


def test_partitions_split_by_utc_day(tmp_path):
    records = [clip("a", created_at="2026-11-01T23:59:59Z"), clip("b", created_at="2026-11-02T00:00:00Z"),
               clip("c", created_at="2026-11-02T01:30:00+02:00"), clip("d", created_at="2026-11-02T12:00:00Z")]
    parts = partition_songs(read_catalogue(write_json(tmp_path / "c.json", records)).songs)
    assert {day: sorted(df["song_id"]) for day, df in parts.items()} == {
        "2026-11-01": ["a", "c"], "2026-11-02": ["b", "d"]}


def test_the_sample_catalogue_ingests_cleanly_with_the_genres_it_was_made_with(sample_data):
    result = read_catalogue(sample_data.raw_dir)
    truth = json.loads(sample_data.sample_ground_truth.read_text(encoding="utf-8"))
    assert len(result.songs) == 200 and result.rejected.empty
    genres = dict(zip(result.songs["song_id"], result.songs["genre"]))
    assert all(genres[sid] == t["genre"] for sid, t in truth.items())
    parts = partition_songs(result.songs)
    assert len(parts) == 14 and sum(len(p) for p in parts.values()) == 200


# --- the fast path and the tolerant path agree ---------------------------------------------------------------

def _mixed_catalogue(path: Path) -> Path:
    records = []
    for i in range(60):
        rec = clip(f"id{i}", created_at=f"2026-11-{1 + i % 14:02d}T10:00:{i % 60:02d}Z", title=f"Canción {i} 🎵")
        if i % 9 == 0:  # remixes with a list of several objects: "}, {" inside a record
            rec["metadata"] = dict(rec["metadata"], history=[{"id": "p1", "x": {}}, {"id": "p2"}])
        records.append(rec)
    records[7]["id"] = "../../etc/x"
    records[11]["created_at"] = "soon"
    records[12]["play_count"] = -4
    records[13]["metadata"] = dict(records[13]["metadata"], tags=["Rock", None, "  Indie_Rock "])
    records[14]["metadata"] = dict(records[14]["metadata"], duration=float("inf"))
    records[15]["title"] = ["a", "list"]
    records[30] = clip("id3", created_at="2026-11-20T00:00:00Z", title="newer id3")
    return write_json(path, records)


def test_the_fast_and_the_tolerant_path_give_the_same_verdicts(tmp_path):
    from sunorecsys.catalog.fast_reader import read_fast
    from sunorecsys.catalog.ingest import _connect
    from sunorecsys.catalog.record_rules import latest_allowed_created_at
    from sunorecsys.catalog.source_files import inspect_catalogue_file
    from sunorecsys.catalog.tolerant_reader import read_tolerant

    path = _mixed_catalogue(tmp_path / "mixed.json")
    file = inspect_catalogue_file(path)
    con = _connect(1)
    latest = latest_allowed_created_at()
    fast = read_fast(con, file, latest)
    tolerant, pre_rejected, n = read_tolerant(con, file, latest, tmp_path)
    assert fast is not None and pre_rejected == [] and n == fast.num_rows == 60
    compared = [c for c in fast.column_names if not c.startswith("raw_")]
    assert fast.select(compared).to_pylist() == tolerant.select(compared).to_pylist()
    reasons = dict(zip(fast["pos"].to_pylist(), fast["reason"].to_pylist()))
    assert {p: r for p, r in reasons.items() if r} == {7: "unsafe_id", 11: "bad_timestamp", 12: "bad_count",
                                                       14: "bad_duration", 15: "bad_field"}
    result = read_catalogue(path)
    assert result.songs.set_index("song_id").loc["id13", "tags"] == ["rock", "indie rock"]
    assert result.songs.set_index("song_id").loc["id13", "genre"] == "rock"
    assert result.duplicates == 1 and result.songs.set_index("song_id").loc["id3", "title"] == "newer id3"


def test_json_lines_positions_are_line_numbers_with_blank_lines_and_crlf(tmp_path):
    lines = [json.dumps(clip("a1")), "", json.dumps(clip("b2")), "   ", json.dumps(clip("../x")),
             json.dumps(clip("c3"))]
    path = tmp_path / "c.jsonl"
    path.write_bytes("\r\n".join(lines).encode("utf-8") + b"\r\n")
    result = read_catalogue(path)
    assert list(result.songs["song_id"]) == ["a1", "b2", "c3"]
    assert result.rejected[["position", "reason"]].values.tolist() == [[5, "unsafe_id"]]
