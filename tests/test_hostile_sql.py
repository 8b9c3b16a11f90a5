"""Hostile queries against `sunorecsys sql` on a real warehouse: each one is refused (or answered,
or stopped) with the expected message, and after EACH one every file under the test folder (the
data root, the temp folder DuckDB spills to, the targets the attacks aim at) is byte-identical and
no file or folder has appeared or gone.

Most run through the CLI's entry point in-process; the ones that need a process of their own (stdin,
Ctrl-C, the console script itself) run the installed `sunorecsys` console script.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from warehouse_data import write_small_warehouse

from sunorecsys.cli import main
from sunorecsys.paths import DataPaths

CONSOLE_SCRIPT = Path(sys.executable).parent / "sunorecsys"
REFUSED, FAILED, OK, INTERRUPTED = 2, 1, 0, 130
SANDBOX = "file access is switched off"  # the refusal of DuckDB's switched-off file system
RUNAWAY = "SELECT sum(hash(i)) FROM range(1000000000000) t(i)"  # hours of work, no memory
# Builds one string far larger than the memory limit: string_agg cannot spill.
MEMORY_BOMB = "SELECT length(string_agg(repeat('x', 1000), '')) FROM range(10000000)"


def snapshot(root: Path) -> dict[str, str | None]:
    """Every path under ``root`` -> sha256 of its bytes (None for a folder)."""
    out: dict[str, str | None] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = None if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def scene(tmp_path, monkeypatch) -> tuple[DataPaths, Path, Path]:
    """(data root with a real warehouse, temp folder for DuckDB's spills, a folder attacks aim at)."""
    paths = write_small_warehouse(DataPaths(tmp_path / "data"))
    spill = tmp_path / "tmp"
    spill.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a\n1\n")
    monkeypatch.setattr(tempfile, "tempdir", str(spill))  # the in-process runs' spill folder
    return paths, spill, outside


# label -> (SQL with {data}/{wh}/{out} placeholders, expected exit code, fragment of stderr)
ATTACKS: dict[str, tuple[str, int, str]] = {
    "data-modifying CTE: COPY PARTITION_BY OVERWRITE over a table": (
        ("WITH x AS (COPY (SELECT 1 k, 2 v) TO '{wh}/songs' (FORMAT csv, PARTITION_BY (k), OVERWRITE)) "
        "SELECT * FROM x"), REFUSED, SANDBOX),
    "data-modifying CTE: plant a quality partition": (
        ("WITH x AS (COPY (SELECT 'z' AS song_id, 1.0 AS quality_score) TO "
        "'{wh}/quality_scores/date=2026-11-03/part-0.parquet' (FORMAT parquet)) SELECT * FROM x"),
        REFUSED, SANDBOX),
    "data-modifying CTE: write outside the data root": (
        "WITH x AS (COPY (SELECT 1 k) TO '{out}/leak.csv') SELECT * FROM x", REFUSED, SANDBOX),
    "EXPLAIN ANALYZE of a data-modifying CTE": (
        "EXPLAIN ANALYZE WITH x AS (COPY (SELECT 1 k) TO '{wh}/x.csv') SELECT * FROM x", REFUSED, SANDBOX),
    "EXPLAIN ANALYZE COPY": ("EXPLAIN ANALYZE COPY songs TO '{out}/leak.csv'", REFUSED, "EXPLAIN COPY"),
    "plain COPY TO": ("COPY (SELECT * FROM songs) TO '{out}/leak.csv'", REFUSED, "COPY statement"),
    "COPY over a partition": ("COPY songs TO '{wh}/songs/date=2026-11-01/part-0.parquet' (FORMAT parquet)",
                              REFUSED, "COPY statement"),
    "COPY FROM DATABASE": ("COPY FROM DATABASE memory TO other", REFUSED, "refused"),
    "EXPORT DATABASE": ("EXPORT DATABASE '{out}/export'", REFUSED, "EXPORT"),
    "ATTACH a new file": ("ATTACH '{data}/new.duckdb' AS other", REFUSED, "ATTACH"),
    "ATTACH the views file read-write": ("ATTACH '{data}/warehouse.duckdb' AS w", REFUSED, "ATTACH"),
    "CREATE TABLE": ("CREATE TABLE t AS SELECT * FROM songs", REFUSED, "CREATE"),
    "CREATE OR REPLACE VIEW": ("CREATE OR REPLACE VIEW songs AS SELECT 1 AS x", REFUSED, "CREATE"),
    "CREATE SECRET": ("CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')", REFUSED, "CREATE"),
    "INSERT": ("INSERT INTO songs VALUES ('x')", REFUSED, "INSERT"),
    "DELETE": ("DELETE FROM songs", REFUSED, "DELETE"),
    "DROP VIEW": ("DROP VIEW songs", REFUSED, "DROP"),
    "INSTALL an extension": ("INSTALL httpfs", REFUSED, "INSTALL/LOAD"),
    "LOAD an extension": ("LOAD parquet", REFUSED, "INSTALL/LOAD"),
    "UPDATE EXTENSIONS": ("UPDATE EXTENSIONS", REFUSED, "UPDATE EXTENSIONS statement"),
    "SET enable_external_access": ("SET enable_external_access = true", REFUSED, "SET"),
    "SET allowed_directories": ("SET allowed_directories = ['/']", REFUSED, "SET"),
    "SET temp_directory into the data root": ("SET temp_directory = '{data}/spill'", REFUSED, "SET"),
    "RESET enable_external_access": ("RESET enable_external_access", REFUSED, "SET"),
    "PRAGMA": ("PRAGMA enable_profiling", REFUSED, "PRAGMA"),
    "CALL": ("CALL pragma_version()", REFUSED, "CALL"),
    "CHECKPOINT": ("CHECKPOINT", REFUSED, "refused"),
    "VACUUM": ("VACUUM", REFUSED, "VACUUM"),
    "two statements": ("SELECT 1; COPY (SELECT 1) TO '{out}/leak.csv'", REFUSED, "2 statements"),
    "a write behind a comment": ("/* SELECT */ DROP VIEW songs -- SELECT", REFUSED, "DROP"),
    "read_csv of /etc/passwd": ("SELECT * FROM read_csv('/etc/passwd')", REFUSED, SANDBOX),
    "read_text of /etc/passwd": ("SELECT * FROM read_text('/etc/passwd')", REFUSED, SANDBOX),
    "read_blob of a file outside": ("SELECT * FROM read_blob('{out}/secret.csv')", REFUSED, SANDBOX),
    "glob of /etc": ("SELECT * FROM glob('/etc/*')", REFUSED, SANDBOX),
    "read_parquet of a warehouse file directly": (
        "SELECT * FROM read_parquet('{wh}/songs/date=2026-11-01/part-0.parquet')", REFUSED, SANDBOX),
    "extension list (reads the extension folder)": ("SELECT * FROM duckdb_extensions()", REFUSED, SANDBOX),
    "syntax error": ("SELEC 1", FAILED, "syntax error"),
    "runaway query hits the time limit": (RUNAWAY, FAILED, "time limit of 1 s"),
    "memory bomb hits the memory limit": (MEMORY_BOMB, FAILED, "more memory than its limit"),
    # Read-only queries are answered, on the same sandboxed connection.
    "a join": ("SELECT count(*) AS n FROM songs JOIN quality_scores USING (song_id)", OK, ""),
    "SUMMARIZE": ("SUMMARIZE songs", OK, ""),
    "EXPLAIN ANALYZE SELECT": ("EXPLAIN ANALYZE SELECT count(*) FROM songs", OK, ""),
    "settings are readable": ("SELECT value FROM duckdb_settings() WHERE name = 'enable_external_access'",
                              OK, ""),
}
LIMITS = ["--timeout", "1", "--memory-limit", "64MB"]  # what the runaway and the bomb run under


def run_cli(paths: DataPaths, sql: str, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(paths.root), "sql", sql, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("label", list(ATTACKS))
def test_hostile_query_changes_nothing(label, scene, tmp_path, capsys):
    paths, _, outside = scene
    template, expected_code, message = ATTACKS[label]
    sql = template.format(data=paths.root, wh=paths.warehouse_dir, out=outside)
    before = snapshot(tmp_path)
    code, out, err = run_cli(paths, sql, capsys, *LIMITS)
    assert code == expected_code, (out, err)
    assert message in err
    if code == REFUSED:
        assert err.startswith("sunorecsys sql: refused")
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before  # byte-identical, nothing new, nothing gone


def test_the_answers_still_come(scene, capsys):
    paths, _, _ = scene
    code, out, _ = run_cli(paths, ATTACKS["a join"][0], capsys)
    assert code == OK and out.splitlines()[2].strip() == "5"
    code, out, _ = run_cli(paths, ATTACKS["settings are readable"][0], capsys)
    assert out.splitlines()[2].strip() == "false"  # the sandbox is on for real


def console(paths: DataPaths, spill: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(CONSOLE_SCRIPT), "sql", *args], input=stdin, capture_output=True, text=True,
                          check=False, timeout=120,
                          env={**os.environ, "SUNORECSYS_DATA_DIR": str(paths.root), "TMPDIR": str(spill)})


def long_query() -> str:
    """A valid query of about 250 KiB (over the 128 KiB one argument may hold): a long IN list."""
    ids = ", ".join(f"'id-{i:06d}'" for i in range(20_000))
    return f"SELECT count(*) AS n FROM songs WHERE song_id IN ({ids}, 'a', 'e')"


def test_console_script_refuses_the_cte_copy_and_update_extensions(scene, tmp_path):
    paths, spill, _ = scene
    before = snapshot(tmp_path)
    attack = ATTACKS["data-modifying CTE: COPY PARTITION_BY OVERWRITE over a table"][0]
    proc = console(paths, spill, attack.format(wh=paths.warehouse_dir))
    assert proc.returncode == REFUSED and SANDBOX in proc.stderr, proc.stderr
    proc = console(paths, spill, "UPDATE EXTENSIONS")
    assert proc.returncode == REFUSED and "Traceback" not in proc.stderr
    assert "refused: UPDATE EXTENSIONS statement" in proc.stderr
    assert snapshot(tmp_path) == before


def test_query_over_128_kib_from_a_file_and_from_stdin(scene, tmp_path):
    paths, spill, outside = scene
    sql = long_query()
    assert len(sql.encode()) > 128 * 1024
    query_file = outside / "long.sql"
    query_file.write_text(sql)
    before = snapshot(tmp_path)
    for args, stdin in ((["--file", str(query_file)], None), (["-"], sql), (["--file", "-"], sql)):
        proc = console(paths, spill, *args, stdin=stdin)
        assert proc.returncode == OK, proc.stderr
        assert proc.stdout.splitlines()[2].strip() == "2"  # 'a' and 'e'
        assert snapshot(tmp_path) == before


def test_a_hostile_query_from_stdin_is_refused_the_same_way(scene, tmp_path):
    paths, spill, outside = scene
    before = snapshot(tmp_path)
    sql = f"WITH x AS (COPY (SELECT 1 k) TO '{outside}/leak.csv') SELECT * FROM x"
    proc = console(paths, spill, "-", stdin=sql)
    assert proc.returncode == REFUSED and SANDBOX in proc.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args", [[], ["--file", "/no/such/file.sql"], ["SELECT 1", "--file", "-"],
                                  ["--memory-limit", "lots", "SELECT 1"], ["--timeout", "-1", "SELECT 1"]])
def test_bad_invocations_are_clear(args, scene, capsys):
    paths, _, _ = scene
    code = main(["--data-dir", str(paths.root), "sql", *args])
    err = capsys.readouterr().err
    assert code == REFUSED and err.startswith("sunorecsys sql: ") and "Traceback" not in err


@pytest.mark.usefixtures("sigint_reaches_children")
def test_ctrl_c_stops_a_running_query(scene, tmp_path):
    paths, spill, _ = scene
    before = snapshot(tmp_path)
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), "sql", "--timeout", "0", RUNAWAY], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SUNORECSYS_DATA_DIR": str(paths.root), "TMPDIR": str(spill)})
    try:
        # The query has started once its private spill folder exists; give DuckDB a moment more.
        give_up = time.monotonic() + 60
        while not list(spill.glob("sunorecsys-sql-*")) and proc.poll() is None and time.monotonic() < give_up:
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        # A runaway left alone would run for hours. How fast it stops is a bench/warehouse.py figure
        # (0.36-0.62 s at load 12), not an assertion.
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == INTERRUPTED, err
    assert "interrupted (Ctrl-C): the query was stopped" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before  # the spill folder is gone too
