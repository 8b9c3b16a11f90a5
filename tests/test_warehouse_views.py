"""data/warehouse.duckdb: views only, atomic rebuild, missing tables listed, moved data roots noticed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from sunorecsys.catalog.schema import SONGS_SCHEMA
from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import write_parquet_atomic, write_partition
from sunorecsys.warehouse.sql import run_query
from sunorecsys.warehouse.views import ANALYST_TABLES, MANIFEST_VIEW, build_analyst_views

REPO = Path(__file__).resolve().parents[1]


def songs_frame(day: str, ids: list[str], genre: str = "pop") -> pd.DataFrame:
    return pd.DataFrame({
        "song_id": ids, "title": [f"t-{i}" for i in ids], "user_id": "u1", "handle": "h1",
        "created_at": pd.Timestamp(f"{day}T12:00:00Z"), "duration_s": 120.0, "model_version": "v4",
        "tags": [["x"] for _ in ids], "genre": genre, "prompt": "p", "audio_url": None, "audio_path": None,
        "play_count": 1, "upvote_count": 0, "comment_count": 0, "is_public": True, "is_remix": False,
    })


def write_songs(paths: DataPaths, day: str, ids: list[str]) -> None:
    write_partition(songs_frame(day, ids), paths.warehouse_dir, "songs", day, schema=SONGS_SCHEMA)


def scores(ids: list[str], score: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame({"song_id": ids, "quality_score": score, "hard_fail": False})


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_file_holds_only_views_and_lists_tables_without_files(tmp_data):
    write_songs(tmp_data, "2026-11-01", ["a", "b"])
    write_songs(tmp_data, "2026-11-02", ["c"])
    write_partition(scores(["a", "b"]), tmp_data.warehouse_dir, "quality_scores", "2026-11-01")
    write_parquet_atomic(pd.DataFrame({"user_id": ["u"], "song_id": ["a"]}),
                         tmp_data.warehouse_dir / "interactions" / "part-0.parquet")

    made = build_analyst_views(tmp_data)

    assert set(made["views"]) == {"songs", "quality_scores", "interactions"}
    assert set(made["skipped"]) == set(ANALYST_TABLES) - set(made["views"])
    assert "materialize asset 'audiobox_scores'" in made["skipped"]["audiobox_scores"]
    assert made["views"]["songs"]["files"] == 2 and "genre" in made["views"]["songs"]["columns"]
    db = tmp_data.warehouse_db
    kinds = query(db, "SELECT DISTINCT table_type FROM information_schema.tables")
    assert kinds == [("VIEW",)]  # no table: the file stores no data, only view definitions
    assert query(db, "SELECT count(*) FROM duckdb_tables()") == [(0,)]
    manifest = dict(query(db, f"SELECT table_name, has_view FROM {MANIFEST_VIEW}"))
    assert manifest == {t: t in made["views"] for t in ANALYST_TABLES}
    # Views read absolute paths: querying from another working directory works.
    assert query(db, "SELECT count(*), min(date)::VARCHAR FROM songs") == [(3, "2026-11-01")]
    assert [p for p in db.parent.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


def test_new_partitions_appear_without_rebuild(tmp_data):
    write_songs(tmp_data, "2026-11-01", ["a"])
    build_analyst_views(tmp_data)
    write_songs(tmp_data, "2026-11-03", ["b", "c"])
    assert query(tmp_data.warehouse_db, "SELECT count(*) FROM songs") == [(3,)]


def test_a_column_added_in_later_partitions_reads_as_null_in_older_ones(tmp_data):
    write_partition(scores(["a"]), tmp_data.warehouse_dir, "quality_scores", "2026-11-01")
    write_partition(scores(["b"]).assign(audiobox_score=0.7), tmp_data.warehouse_dir,
                    "quality_scores", "2026-11-02")
    build_analyst_views(tmp_data)
    rows = query(tmp_data.warehouse_db, "SELECT song_id, audiobox_score FROM quality_scores ORDER BY 1")
    assert rows == [("a", None), ("b", 0.7)]


def test_an_empty_partition_with_untyped_columns_does_not_break_the_view(tmp_data):
    # An empty pandas frame is written with Parquet "null" columns; the view must still read.
    write_partition(pd.DataFrame({"song_id": ["a"], "status": ["ok"], "hard_fail_reasons": [["x"]]}),
                    tmp_data.warehouse_dir, "audio_checks", "2026-11-01")
    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in ("song_id", "status", "hard_fail_reasons")})
    write_partition(empty, tmp_data.warehouse_dir, "audio_checks", "2026-11-02")
    made = build_analyst_views(tmp_data)
    assert made["views"]["audio_checks"]["files"] == 2
    rows = query(tmp_data.warehouse_db, "SELECT song_id, status, hard_fail_reasons FROM audio_checks")
    assert rows == [("a", "ok", ["x"])]


def test_unreadable_table_is_skipped_with_reason_and_others_still_built(tmp_data):
    write_songs(tmp_data, "2026-11-01", ["a"])
    broken = tmp_data.warehouse_dir / "audio_checks" / "date=2026-11-01" / "part-0.parquet"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not parquet at all")
    made = build_analyst_views(tmp_data)
    assert "songs" in made["views"]
    assert "audio_checks" not in made["views"]
    assert "unreadable Parquet" in made["skipped"]["audio_checks"]
    assert query(tmp_data.warehouse_db, "SELECT count(*) FROM songs") == [(1,)]


def test_songs_fall_back_to_the_processed_file_of_a_bare_ingest(tmp_data):
    write_parquet_atomic(songs_frame("2026-11-01", ["a", "b"]), tmp_data.processed_songs, schema=SONGS_SCHEMA)
    made = build_analyst_views(tmp_data)
    assert made["views"]["songs"]["source"] == str(tmp_data.processed_songs.resolve())
    assert query(tmp_data.warehouse_db, "SELECT count(*) FROM songs") == [(2,)]


def test_rebuild_swaps_the_file_while_another_process_reads_the_old_one(tmp_data):
    write_songs(tmp_data, "2026-11-01", ["a"])
    build_analyst_views(tmp_data)
    # An analyst in another process holds the file open (DuckDB locks it for that process).
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({str(tmp_data.warehouse_db)!r}, read_only=True)
            print(con.execute("SELECT count(*) FROM songs").fetchall()[0][0], flush=True)
            sys.stdin.readline()
            print(con.execute("SELECT count(*) FROM songs").fetchall()[0][0], flush=True)
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "1"
        write_partition(scores(["a"]), tmp_data.warehouse_dir, "quality_scores", "2026-11-01")
        made = build_analyst_views(tmp_data)  # not blocked by the reader's open file
        assert "quality_scores" in made["views"]
        out, err = reader.communicate("go\n", timeout=30)
        assert reader.returncode == 0, err
        assert out.strip() == "1"  # the old file's views still answer
    finally:
        if reader.poll() is None:
            reader.kill()
    assert query(tmp_data.warehouse_db, "SELECT count(*) FROM quality_scores") == [(1,)]


def test_moved_data_root_is_noticed_and_rebuilt(tmp_path, caplog):
    old = DataPaths(tmp_path / "old")
    write_songs(old, "2026-11-01", ["a", "b"])
    build_analyst_views(old)
    new = DataPaths(tmp_path / "new")
    shutil.move(old.root, new.root)

    # The file still points at the old absolute paths...
    with pytest.raises(duckdb.Error, match="No files found"):
        query(new.warehouse_db, "SELECT count(*) FROM songs")
    # ...run_query notices the recorded root differs and reads fresh in-memory views instead...
    with caplog.at_level("WARNING", logger="sunorecsys.warehouse.sql"):
        assert run_query("SELECT count(*) AS n FROM songs", new).to_pylist() == [{"n": 2}]
    assert "built for data root" in caplog.text
    # ...and a rebuild fixes the file for direct DuckDB users.
    assert build_analyst_views(new)["data_root"] == str(new.root.resolve())
    assert query(new.warehouse_db, "SELECT count(*) FROM songs") == [(2,)]


def test_data_root_with_glob_characters_is_refused_clearly(tmp_path):
    paths = DataPaths(tmp_path / "data[1]")
    with pytest.raises(ValueError, match="glob characters"):
        build_analyst_views(paths)


def test_views_command_rebuilds_and_reports(tmp_data):
    write_songs(tmp_data, "2026-11-01", ["a"])
    proc = subprocess.run([sys.executable, "-m", "sunorecsys", "--data-dir", str(tmp_data.root), "views"],
                          check=False, cwd=REPO, capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert "rebuilt" in proc.stdout and "skipped" in proc.stdout
    assert query(tmp_data.warehouse_db, "SELECT count(*) FROM songs") == [(1,)]
