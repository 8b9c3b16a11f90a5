"""``sunorecsys sample`` and ``sunorecsys ingest`` through the real command-line entry point."""

from __future__ import annotations

import json

import pandas as pd

from sunorecsys.cli import main


def test_sample_then_ingest_on_the_command_line(tmp_path, capsys):
    root = tmp_path / "data"
    assert main(["sample", "--out", str(root), "--songs", "12", "--days", "3", "--users", "5", "--no-audio"]) == 0
    out = capsys.readouterr().out
    assert "songs: 12" in out and "all_songs.json" in out and "interactions.csv" in out
    assert len(json.loads((root / "raw" / "all_songs.json").read_text(encoding="utf-8"))) == 12

    # A record with an unsafe id is added: ingest reports it and still writes the good songs.
    extra = root / "raw" / "more.jsonl"
    extra.write_text(json.dumps({"id": "../../etc/x", "created_at": "2026-11-14T00:00:00Z"}) + "\n")
    assert main(["--data-dir", str(root), "ingest"]) == 0
    out = capsys.readouterr().out
    assert "12 songs" in out and "unsafe_id 1" in out
    assert len(pd.read_parquet(root / "processed" / "songs.parquet")) == 12
    assert list(pd.read_parquet(root / "processed" / "rejected_songs.parquet")["reason"]) == ["unsafe_id"]


def test_ingest_rejects_a_malformed_record_and_an_unreadable_file_and_writes_the_rest(tmp_path, capsys):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "all_songs.json").write_text('[{"id": "a", "created_at": "2026-11-01T00:00:00Z"}, {"id": "b",]')
    (raw / "utf16.json").write_text('[{"id": "c"}]', encoding="utf-16")
    assert main(["--data-dir", str(tmp_path / "data"), "ingest"]) == 3
    out, err = capsys.readouterr()
    assert "1 songs" in out and "malformed_json 1" in out and "bad_file 1" in out
    assert "utf16.json is encoded as UTF-16 LE" in err
    rejected = pd.read_parquet(tmp_path / "data" / "processed" / "rejected_songs.parquet")
    assert sorted(rejected["reason"]) == ["bad_file", "malformed_json"]
    assert list(pd.read_parquet(tmp_path / "data" / "processed" / "songs.parquet")["song_id"]) == ["a"]


def test_ingest_without_catalogue_files_says_how_to_get_one(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "empty"), "ingest"]) == 1
    assert "sunorecsys sample" in capsys.readouterr().err
