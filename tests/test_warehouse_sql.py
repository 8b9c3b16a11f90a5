"""`sunorecsys sql`: read-only queries, refused writes (file byte-identical), readable output."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from warehouse_data import write_small_warehouse

from sunorecsys.cli import main
from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import write_partition
from sunorecsys.warehouse.sql import QueryRefused, check_read_only, run_query

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def warehouse(tmp_data) -> DataPaths:
    return write_small_warehouse(tmp_data)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def cli(paths: DataPaths, *args: str, capsys) -> tuple[int, str, str]:
    code = main(["--data-dir", str(paths.root), "sql", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


WRITES = {
    "ATTACH": "ATTACH '{tmp}/other.duckdb' AS other",
    "COPY": "COPY (SELECT * FROM songs) TO '{tmp}/leak.csv'",
    "COPY into the warehouse": "COPY songs TO '{wh}/songs/leak.parquet'",
    "INSTALL": "INSTALL httpfs",
    "LOAD": "LOAD httpfs",
    "CREATE": "CREATE TABLE t AS SELECT 1",
    "CREATE VIEW": "CREATE OR REPLACE VIEW songs AS SELECT 1 AS x",
    "INSERT": "INSERT INTO songs VALUES ('x')",
    "UPDATE": "UPDATE songs SET genre = 'x'",
    "DELETE": "DELETE FROM songs",
    "DROP": "DROP VIEW songs",
    "SET": "SET enable_external_access = true",
    "EXPORT": "EXPORT DATABASE '{tmp}/export'",
    "PRAGMA": "PRAGMA enable_profiling",
    "CHECKPOINT": "CHECKPOINT",
    "a write hidden after a SELECT": "SELECT 1; DROP VIEW songs",
    "a write hidden behind a comment": "/* SELECT */ DROP VIEW songs -- SELECT",
    "EXPLAIN ANALYZE of a write": "EXPLAIN ANALYZE COPY songs TO '{tmp}/leak2.csv'",
}


@pytest.mark.parametrize("label", list(WRITES))
def test_statements_that_could_write_are_refused_and_nothing_changes(label, warehouse, tmp_path, capsys):
    sql = WRITES[label].format(tmp=tmp_path, wh=warehouse.warehouse_dir)
    before_hash, before_files = sha256(warehouse.warehouse_db), tree(tmp_path)
    code, out, err = cli(warehouse, sql, capsys=capsys)
    assert code == 2, (out, err)
    assert "refused" in err and "read-only" in err
    first_word = label.split()[0]
    if first_word.isupper() and first_word not in ("INSTALL",):
        assert first_word in err  # the message names the kind of statement refused
    with pytest.raises(QueryRefused):
        run_query(sql, warehouse)
    assert sha256(warehouse.warehouse_db) == before_hash  # byte-identical
    assert tree(tmp_path) == before_files  # nothing written anywhere under the test folder


def test_read_only_kinds_are_allowed():
    for sql in ("SELECT 1", "WITH x AS (SELECT 1) SELECT * FROM x", "FROM songs", "DESCRIBE songs",
                "SHOW TABLES", "SUMMARIZE songs", "VALUES (1)", "EXPLAIN SELECT 1",
                "explain analyze select 1"):
        check_read_only(sql)


def test_sandbox_blocks_files_outside_the_data_root_even_in_a_select(warehouse, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(QueryRefused, match="file access is switched off"):
        run_query(f"SELECT * FROM read_csv('{secret}')", warehouse)
    # ...inside the data root too: the views are the only way in (pyarrow reads their files).
    part = next(warehouse.warehouse_dir.glob("songs/date=*/part-0.parquet"))
    with pytest.raises(QueryRefused, match="disabled by configuration"):
        run_query(f"SELECT * FROM read_parquet('{part}')", warehouse)


def test_query_prints_a_readable_table(warehouse, capsys):
    code, out, err = cli(warehouse, "SELECT song_id, genre, quality_score FROM songs JOIN quality_scores "
                         "USING (song_id) ORDER BY song_id", capsys=capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["song_id", "genre", "quality_score"]
    assert lines[2].split() == ["a", "pop", "0.1"]
    assert any(line.split()[:2] == ["c", "NULL"] for line in lines)  # NULL is shown, not blank
    assert lines[-1] == "(5 rows)"


def test_max_rows_cuts_the_output_and_says_so(warehouse, capsys):
    code, out, _ = cli(warehouse, "SELECT song_id FROM songs ORDER BY 1", "--max-rows", "2", capsys=capsys)
    assert code == 0
    assert [line.strip() for line in out.splitlines()[2:4]] == ["a", "b"]
    assert "more not shown" in out.splitlines()[-1]
    assert run_query("SELECT * FROM songs", warehouse, max_rows=3).num_rows == 3


def test_csv_output_round_trips(warehouse, capsys):
    code, out, _ = cli(warehouse, "SELECT song_id, genre, play_count FROM songs ORDER BY 1", "--csv",
                       capsys=capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["song_id"] for r in rows] == ["a", "b", "c", "d", "e"]
    assert rows[2]["genre"] == "" and rows[1]["play_count"] == "1"


def test_errors_are_clear(warehouse, capsys):
    code, _, err = cli(warehouse, "SELECT no_such_column FROM songs", capsys=capsys)
    assert code == 1 and "no_such_column" in err
    code, _, err = cli(warehouse, "SELECT * FROM audiobox_scores", capsys=capsys)
    assert code == 1 and "no Parquet files yet" in err and "audiobox_scores" in err
    code, _, err = cli(warehouse, "SELEC 1", capsys=capsys)
    assert code == 1 and "syntax error" in err.lower()


def test_missing_warehouse_file_is_built_first(tmp_data, capsys):
    write_partition(pd.DataFrame({"song_id": ["a"], "genre": ["pop"]}), tmp_data.warehouse_dir, "songs",
                    "2026-11-01")
    assert not tmp_data.warehouse_db.exists()
    code, out, err = cli(tmp_data, "SELECT count(*) AS n FROM songs", capsys=capsys)
    assert code == 0 and out.splitlines()[2].strip() == "1"
    assert tmp_data.warehouse_db.exists() and "built" in err


def test_file_locked_by_a_writer_elsewhere_still_answers(warehouse):
    # An analyst opened the file read-write in another process: DuckDB locks everyone else out.
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(warehouse.warehouse_db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        # The query never opens the file: it reads the Parquet files through pyarrow.
        before = sha256(warehouse.warehouse_db)
        assert run_query("SELECT count(*) AS n FROM songs", warehouse).to_pylist() == [{"n": 5}]
        assert sha256(warehouse.warehouse_db) == before
    finally:
        holder.communicate("done\n", timeout=30)


def test_missing_data_root_is_an_error_not_a_new_folder(tmp_path, capsys):
    paths = DataPaths(tmp_path / "nowhere")
    code, _, err = cli(paths, "SELECT 1", capsys=capsys)
    assert code == 1 and "does not exist" in err
    assert not paths.root.exists()


def test_trusted_callers_may_export_but_the_warehouse_file_is_untouched(warehouse, tmp_path):
    before = sha256(warehouse.warehouse_db)
    target = tmp_path / "export.csv"
    run_query(f"COPY (SELECT song_id FROM songs ORDER BY 1) TO '{target}'", warehouse, read_only=False)
    assert target.read_text().split() == ["song_id", "a", "b", "c", "d", "e"]
    assert sha256(warehouse.warehouse_db) == before


def test_real_command_line_end_to_end(warehouse):
    proc = subprocess.run(
        [sys.executable, "-m", "sunorecsys", "sql",
         "SELECT genre, count(*) AS n FROM songs GROUP BY 1 ORDER BY 1"],
        check=False, cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "SUNORECSYS_DATA_DIR": str(warehouse.root)})
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[2:5]]
    assert rows == [["pop", "2"], ["rock", "2"], ["NULL", "1"]]
