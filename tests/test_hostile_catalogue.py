"""An adversarial catalogue: hostile records and hostile files, each with its expected outcome, run
through the real ``read_catalogue`` / ``sunorecsys ingest`` / sensor / ``raw_songs`` asset on real
files in temporary folders.

The rule under test (issue 8): one bad record is one rejected row with a reason, one bad file is
one rejected file with a reason, every other record and file lands, nothing raises, and nothing
in the data root changes except the ingest outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from sunorecsys.catalog.ingest import read_catalogue
from sunorecsys.catalog.record_rules import MAX_DEPTH

GOOD_CREATED = '"2026-11-03T14:22:05.123Z"'


def record(song_id: str = '"h1"', meta: dict[str, str] | None = None, metadata_text: str | None = None,
           **fields: str) -> str:
    """A Suno clip as JSON text; every value is given as raw JSON text, so anything can be planted."""
    metadata = {"tags": '"lo-fi, chill"', "prompt": '"[Verse] la la"', "duration": "31.5"}
    metadata.update(meta or {})
    top = {"id": song_id, "title": '"Neon Rain"', "user_id": '"u-1"', "handle": '"neon"',
           "created_at": GOOD_CREATED, "play_count": "12", "upvote_count": "3", "comment_count": "1",
           "is_public": "true"}
    top.update(fields)
    top["metadata"] = metadata_text or "{" + ", ".join(f'"{k}": {v}' for k, v in metadata.items()) + "}"
    return "{" + ", ".join(f'"{k}": {v}' for k, v in top.items() if v is not None) + "}"


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


FUTURE = json.dumps((datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))

# name -> (record text, expected reason; None = the record lands)
HOSTILE_RECORDS: dict[str, tuple[str, str | None]] = {
    # numbers out of range (each used to end the whole ingest with OverflowError / ValueError)
    "play_count 1e19 (above int64)": (record(play_count="10000000000000000000"), "bad_count"),
    "play_count 1e30": (record(play_count="1e30"), "bad_count"),
    "play_count with 5,000 digits": (record(play_count="9" * 5000), "bad_count"),
    "play_count -1e30": (record(play_count="-1e30"), "bad_count"),
    "negative play_count": (record(play_count="-5"), "bad_count"),
    "play_count as a string": (record(play_count='"12"'), "bad_count"),
    "play_count as a boolean": (record(play_count="true"), "bad_count"),
    "play_count 12.5": (record(play_count="12.5"), "bad_count"),
    "upvote_count NaN": (record(upvote_count="NaN"), "bad_count"),
    "comment_count as an object": (record(comment_count='{"n": 1}'), "bad_count"),
    "duration 1e400": (record(meta={"duration": "1e400"}), "bad_duration"),
    "duration NaN": (record(meta={"duration": "NaN"}), "bad_duration"),
    "duration Infinity": (record(meta={"duration": "Infinity"}), "bad_duration"),
    "duration -Infinity": (record(meta={"duration": "-Infinity"}), "bad_duration"),
    "duration 1e308": (record(meta={"duration": "1e308"}), "bad_duration"),
    "duration true": (record(meta={"duration": "true"}), "bad_duration"),
    "duration 0": (record(meta={"duration": "0"}), "bad_duration"),
    "duration above the cap": (record(meta={"duration": "3600.5"}), "bad_duration"),
    "duration negative": (record(meta={"duration": "-3"}), "negative_duration"),
    "duration as a list": (record(meta={"duration": "[31.5]"}), "bad_duration"),
    # wrong types
    "tags as an object": (record(meta={"tags": '{"a": 1}'}), "bad_tags"),
    "tags as a number": (record(meta={"tags": "42"}), "bad_tags"),
    "tags list holding a number": (record(meta={"tags": '["rock", 5]'}), "bad_tags"),
    "title as a list": (record(title='["a", "list"]'), "bad_field"),
    "title as a number": (record(title="12"), "bad_field"),
    "title with a NUL character": (record(title='"a\\u0000b"'), "bad_field"),
    "title of 100,000 characters": (record(title=json.dumps("x" * 100_000)), "bad_field"),
    "prompt of 1 MB": (record(meta={"prompt": json.dumps("la " * 350_000)}), "bad_field"),
    "handle as an object": (record(handle='{"h": 1}'), "bad_field"),
    "is_public as a string": (record(is_public='"yes"'), "bad_field"),
    "metadata as a string": (record(metadata_text='"oops"'), "bad_field"),
    "metadata as a list": (record(metadata_text="[]"), "bad_field"),
    # dates
    "created_at year 1": (record(created_at='"0001-01-01T00:00:00Z"'), "bad_timestamp"),
    "created_at year 9999": (record(created_at='"9999-12-31T00:00:00Z"'), "bad_timestamp"),
    "created_at before 2023": (record(created_at='"2022-12-31T23:59:59Z"'), "bad_timestamp"),
    "created_at three days ahead": (record(created_at=FUTURE), "bad_timestamp"),
    "created_at 'infinity'": (record(created_at='"infinity"'), "bad_timestamp"),
    "created_at as a number": (record(created_at="1731000000"), "bad_timestamp"),
    "created_at 31 February": (record(created_at='"2026-02-31T00:00:00Z"'), "bad_timestamp"),
    # ids
    "id ../../etc/x": (record(song_id='"../../etc/x"'), "unsafe_id"),
    "id with a NUL": (record(song_id='"a\\u0000b"'), "unsafe_id"),
    "id as a number": (record(song_id="12345"), "unsafe_id"),
    "id as a list": (record(song_id='["h1"]'), "unsafe_id"),
    "id of 200 characters": (record(song_id=json.dumps("a" * 200)), "unsafe_id"),
    "id blank": (record(song_id='"   "'), "missing_id"),
    "id null": (record(song_id="null"), "missing_id"),
    "an empty object": ("{}", "missing_id"),
    # structure
    "duplicate id key": (record().replace('"id": "h1"', '"id": "h1", "id": "h9"'), "duplicate_key"),
    "10,000 levels in an unread field": (record(extra=nested(10_000)), "too_deep"),
    "10,000 levels in metadata.history": (record(meta={"history": nested(10_000)}), "too_deep"),
    "10,000 levels in an unread metadata field": (record(meta={"x": nested(10_000)}), "too_deep"),
    "10,000 levels in the title": (record(title=nested(10_000)), "too_deep"),
    f"{MAX_DEPTH + 1} levels (one too many)": (record(extra=nested(MAX_DEPTH)), "too_deep"),
    "a string, not a record": ('"just a string"', "not_an_object"),
    "a number, not a record": ("7", "not_an_object"),
    "null, not a record": ("null", "not_an_object"),
    "a list, not a record": ("[]", "not_an_object"),
    "a raw NUL byte in a string": (record(title='"a\x00b"'), "malformed_json"),
    "a lone surrogate": (record(title='"x\\ud800y"'), "not_utf8"),
    "a record cut by garbage": (record()[:40] + " oops", "malformed_json"),
    # records that land, maybe unusual but valid
    "play_count 12.0 (a whole number)": (record(play_count="12.0"), None),
    "duration as a numeric string": (record(meta={"duration": '"42.5"'}), None),
    "duration at the cap": (record(meta={"duration": "3600"}), None),
    "created_at on 2023-01-01": (record(created_at='"2023-01-01T00:00:00Z"'), None),
    "created_at with an offset": (record(created_at='"2026-11-03T23:30:00+05:30"'), None),
    "tags as a list with a null": (record(meta={"tags": '["Rock", null, " Indie_Rock "]'}), None),
    f"{MAX_DEPTH} levels (the limit)": (record(extra=nested(MAX_DEPTH - 1)), None),
    "a duplicate unread key": (record().replace('"title"', '"foo": 1, "foo": 2, "title"'), None),
    "a duplicate key inside metadata": (record(meta={"tags": '"rock", "tags": "jazz"'}), "duplicate_key"),
    "a duplicate unread key inside metadata": (record(meta={"x": '1, "x": 2'}), None),
    "an emoji title": (record(title='"夜空 🌙✨"'), None),
}


def _good(i: int) -> str:
    return record(song_id=f'"good{i}"')


def _batch_file(path: Path, hostile: str, lines: bool) -> Path:
    parts = [_good(0), hostile, _good(1)]
    text = "\n".join(parts) + "\n" if lines else "[\n" + ",\n".join(parts) + "\n]\n"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


# Each of these used to end the whole ingest with a traceback (issue 8); alone among good records.
USED_TO_CRASH = ["play_count 1e19 (above int64)", "play_count 1e30", "play_count with 5,000 digits",
                 "duration 1e400", "10,000 levels in an unread field", "10,000 levels in metadata.history"]


@pytest.mark.parametrize("lines", [False, True], ids=["json-list", "json-lines"])
@pytest.mark.parametrize("name", USED_TO_CRASH)
def test_a_record_that_used_to_crash_ingest_is_one_rejected_row(tmp_path, name, lines):
    text, reason = HOSTILE_RECORDS[name]
    path = _batch_file(tmp_path / ("c.jsonl" if lines else "c.json"), text, lines)
    result = read_catalogue(path)
    assert not result.rejected_files and result.records == 3
    assert list(result.songs["song_id"]) == ["good0", "good1"]
    assert len(result.rejected) == 1, result.rejected.to_dict("records")
    row = result.rejected.iloc[0]
    assert (row["reason"], row["position"], row["source_file"]) == (reason, 2 if lines else 1, str(path))
    assert row["detail"]


def _all_records_file(path: Path, lines: bool, names: list[str]) -> Path:
    """Every named hostile record (id h<k>) followed by a good record (id good<k>)."""
    texts = []
    for k, name in enumerate(names):
        texts.append(HOSTILE_RECORDS[name][0].replace('"id": "h1"', f'"id": "h{k}"'))
        texts.append(_good(k))
    body = "\n".join(texts) + "\n" if lines else "[\n" + ",\n".join(texts) + "\n]\n"
    path.write_bytes(body.encode("utf-8", "surrogatepass"))
    return path


@pytest.mark.parametrize("lines", [False, True], ids=["json-list", "json-lines"])
def test_every_hostile_record_gets_its_reason_and_every_good_record_lands(tmp_path, lines):
    """One file holding all of them: DuckDB refuses it, the tolerant path judges each record."""
    names = list(HOSTILE_RECORDS)
    path = _all_records_file(tmp_path / ("all.jsonl" if lines else "all.json"), lines, names)
    result = read_catalogue(path)
    assert not result.rejected_files and result.records == 2 * len(names)
    expected_songs = {f"good{k}" for k in range(len(names))}
    expected_songs |= {f"h{k}" for k, name in enumerate(names) if HOSTILE_RECORDS[name][1] is None}
    assert set(result.songs["song_id"]) == expected_songs
    position = (lambda k: 2 * k + 1) if lines else (lambda k: 2 * k)
    got = dict(zip(result.rejected["position"].astype(int), result.rejected["reason"]))
    want = {position(k): HOSTILE_RECORDS[name][1] for k, name in enumerate(names) if HOSTILE_RECORDS[name][1]}
    assert {names[(p - 1) // 2 if lines else p // 2]: r for p, r in got.items()} == {
        names[(p - 1) // 2 if lines else p // 2]: r for p, r in want.items()}
    assert result.rejected["detail"].str.len().gt(0).all()


def test_values_that_land_are_normalised_as_documented(tmp_path):
    names = ["play_count 12.0 (a whole number)", "duration as a numeric string", "created_at with an offset",
             "tags as a list with a null"]
    texts = [HOSTILE_RECORDS[n][0].replace('"id": "h1"', f'"id": "v{k}"') for k, n in enumerate(names)]
    path = tmp_path / "c.json"
    path.write_text("[" + ",".join(texts) + "]", encoding="utf-8")
    songs = read_catalogue(path).songs.set_index("song_id")
    assert songs.loc["v0", "play_count"] == 12 and songs["play_count"].dtype == "int64"
    assert songs.loc["v1", "duration_s"] == 42.5
    assert songs.loc["v2", "created_at"] == pd.Timestamp("2026-11-03T18:00:00Z")
    assert list(songs.loc["v3", "tags"]) == ["rock", "indie rock"] and songs.loc["v3", "genre"] == "rock"


# Records only the tolerant path can judge: DuckDB refuses the whole file for these.
TOLERANT_ONLY = {"not_an_object", "malformed_json", "not_utf8", "duplicate_key", "too_deep"}
METADATA_NOT_AN_OBJECT = {"metadata as a string", "metadata as a list"}


def test_the_fast_and_the_tolerant_path_give_every_record_the_same_verdict(tmp_path):
    from sunorecsys.catalog.fast_reader import read_fast
    from sunorecsys.catalog.ingest import _connect
    from sunorecsys.catalog.record_rules import latest_allowed_created_at
    from sunorecsys.catalog.source_files import inspect_catalogue_file
    from sunorecsys.catalog.tolerant_reader import read_tolerant

    # Left to the tolerant path on purpose: "{}" looks like a null list element to the fast path, and
    # the nesting limit is checked on the file's bytes, where the enclosing list adds one level.
    names = [n for n, (text, reason) in HOSTILE_RECORDS.items()
             if reason not in TOLERANT_ONLY and text != "{}" and n != f"{MAX_DEPTH} levels (the limit)"
             and n not in METADATA_NOT_AN_OBJECT]
    file = inspect_catalogue_file(_all_records_file(tmp_path / "fast.json", False, names))
    con = _connect(1)
    latest = latest_allowed_created_at()
    fast = read_fast(con, file, latest)
    tolerant, pre_rejected, n = read_tolerant(con, file, latest, tmp_path)
    assert fast is not None, "DuckDB refused a file of records it is meant to read"
    assert pre_rejected == [] and n == fast.num_rows == tolerant.num_rows == 2 * len(names)
    compared = ["pos", "reason", "detail", "song_id", "title", "created_at", "duration_s", "tags_key",
                "play_count", "upvote_count", "comment_count", "is_public", "is_remix"]
    assert fast.select(compared).to_pylist() == tolerant.select(compared).to_pylist()
    verdicts = dict(zip(fast["pos"].to_pylist(), fast["reason"].to_pylist()))
    assert {names[p // 2]: r for p, r in verdicts.items() if r} == {
        n: HOSTILE_RECORDS[n][1] for n in names if HOSTILE_RECORDS[n][1]}


# --- hostile files ------------------------------------------------------------------------------------

def _good_file(path: Path, prefix: str) -> Path:
    path.write_text("[" + ",".join(_good(i).replace('"good', f'"{prefix}') for i in range(2)) + "]",
                    encoding="utf-8")
    return path


def _utf16_without_bom(path: Path) -> None:
    path.write_bytes(("[" + _good(0) + "]").encode("utf-16-le"))


# name -> (how to make it in a folder, expected: "bad_file: <words in the detail>" or the song ids that land)
def _make_fifo(path: Path) -> None:
    os.mkfifo(path)


def _make_loop(path: Path) -> None:
    os.symlink(path.with_name("loop_b.json"), path)
    os.symlink(path, path.with_name("loop_b.json"))


HOSTILE_FILES = {
    "empty.json": (lambda p: p.write_bytes(b""), "bad_file: is empty (0 bytes)"),
    "blanks.json": (lambda p: p.write_text(" \n\t\n"), "bad_file: holds only blanks"),
    "empty_list.json": (lambda p: p.write_text("[]"), []),
    "empty_object.json": (lambda p: p.write_text("{}"), "bad_file: must hold a \"songs\" list"),
    "scalar.json": (lambda p: p.write_text("42"), "bad_file: is a JSON scalar"),
    "string.json": (lambda p: p.write_text('"songs"'), "bad_file: is a JSON scalar"),
    "null.json": (lambda p: p.write_text("null"), "bad_file: is a JSON scalar"),
    "text.json": (lambda p: p.write_text("hello, world"), "bad_file: is not JSON"),
    "png.json": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256))), "bad_file: is not JSON"),
    "utf16le.json": (lambda p: p.write_text("[" + _good(0) + "]", encoding="utf-16"), "bad_file: UTF-16 LE"),
    "utf16be.json": (lambda p: p.write_bytes(b"\xfe\xff" + ("[" + _good(0) + "]").encode("utf-16-be")),
                     "bad_file: UTF-16 BE"),
    "utf16_no_bom.json": (_utf16_without_bom, "bad_file: looks like UTF-16 LE"),
    "utf32.json": (lambda p: p.write_text("[" + _good(0) + "]", encoding="utf-32"), "bad_file: UTF-32 LE"),
    "fifo.json": (_make_fifo, "bad_file: a FIFO"),
    "folder.json": (lambda p: p.mkdir(), "bad_file: a directory"),
    "loop_a.json": (_make_loop, "bad_file: symlink loop"),
    "loop_b.json": (lambda p: None, "bad_file: symlink loop"),  # made with loop_a.json
    "dangling.json": (lambda p: os.symlink(p.with_name("nowhere.json"), p), "bad_file: does not exist"),
    "songs_not_a_list.json": (lambda p: p.write_text('{"songs": {"id": "x"}}'), "bad_file: must be a list"),
    "bom.json": (lambda p: p.write_bytes(b"\xef\xbb\xbf[" + _good(0).replace("good0", "bom0").encode() + b"]"),
                 ["bom0"]),
    "crlf.jsonl": (lambda p: p.write_bytes(b"\r\n".join(_good(i).replace("good", "crlf").encode()
                                                         for i in range(2)) + b"\r\n"), ["crlf0", "crlf1"]),
    "lines_in.json": (lambda p: p.write_text("\n".join(_good(i).replace("good", "jl") for i in range(2))),
                      ["jl0", "jl1"]),
    "one_record.json": (lambda p: p.write_text(_good(0).replace("good0", "single")), ["single"]),
    "songs_later.json": (lambda p: p.write_text('{"source": "api", "songs": [' + _good(0).replace("good0", "sl")
                                                + "]}"), ["sl"]),
    "truncated.json": (lambda p: p.write_text("[" + _good(0).replace("good0", "tr") + "," + _good(1)[:50]),
                       ["tr"]),
    "wrapper_with_bad.json": (lambda p: p.write_text('{"songs": [' + _good(0).replace("good0", "w0") + ", 7, "
                                                     + _good(1).replace("good1", "w1") + "]}"), ["w0", "w1"]),
}


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: its kind, and the hash of a regular file's bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                out[str(p)] = "link -> " + os.readlink(p)
            else:
                out[str(p)] = f"mode {stat.S_IFMT(st.st_mode):o}"
    return out


@pytest.fixture
def hostile_root(tmp_path) -> Path:
    root = tmp_path / "data"
    raw = root / "raw"
    raw.mkdir(parents=True)
    _good_file(raw / "a_good.json", "ga")
    for name, (make, _) in HOSTILE_FILES.items():
        make(raw / name)
    _good_file(raw / "z_good.json", "gz")
    return root


def _expected_files(raw: Path) -> tuple[dict[str, str], set[str]]:
    bad, songs = {}, {"ga0", "ga1", "gz0", "gz1"}
    for name, (_, expected) in HOSTILE_FILES.items():
        if isinstance(expected, str):
            bad[str(raw / name)] = expected.removeprefix("bad_file: ")
        else:
            songs |= set(expected)
    return bad, songs


def _read_in_thread(raw: Path):
    """read_catalogue with a deadline: a FIFO must never block it."""
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=read_catalogue(raw)), daemon=True)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "read_catalogue blocked (on the FIFO?)"
    return box["result"]


def test_each_hostile_file_is_one_rejected_file_and_the_others_land(hostile_root):
    raw = hostile_root / "raw"
    result = _read_in_thread(raw)
    bad, songs = _expected_files(raw)
    assert set(result.rejected_files) == set(bad)
    for file, words in bad.items():
        assert words in result.rejected_files[file], (file, result.rejected_files[file])
    assert set(result.songs["song_id"]) == songs
    file_rows = result.rejected[result.rejected["reason"] == "bad_file"]
    assert sorted(file_rows["source_file"]) == sorted(bad) and file_rows["song_id"].isna().all()
    assert file_rows["position"].isna().all()
    record_rows = result.rejected[result.rejected["reason"] != "bad_file"]
    assert sorted(zip(record_rows["source_file"].map(lambda f: Path(f).name), record_rows["reason"])) == [
        ("truncated.json", "malformed_json"), ("wrapper_with_bad.json", "not_an_object")]
    assert "UTF-16 LE" in result.summary() and "fifo.json" in result.summary()


def test_sunorecsys_ingest_changes_nothing_but_its_outputs(hostile_root, capsys):
    from sunorecsys.cli import main

    before = _snapshot(hostile_root)
    assert main(["--data-dir", str(hostile_root), "ingest"]) == 3  # songs written, some files rejected
    after = _snapshot(hostile_root)
    outputs = {str(hostile_root / "processed"), str(hostile_root / "processed" / "songs.parquet"),
               str(hostile_root / "processed" / "rejected_songs.parquet")}
    assert {k: v for k, v in after.items() if k not in outputs} == before
    assert set(after) - set(before) == outputs
    err = capsys.readouterr().err
    bad, songs = _expected_files(hostile_root / "raw")
    assert [Path(f).name for f in bad if Path(f).name not in err] == []
    written = pd.read_parquet(hostile_root / "processed" / "songs.parquet")
    assert set(written["song_id"]) == songs
    rejected = pd.read_parquet(hostile_root / "processed" / "rejected_songs.parquet")
    assert (rejected["reason"] == "bad_file").sum() == len(bad)


def test_an_unreadable_file_is_rejected_for_permission(tmp_path):
    """As root (the tests' usual user) any file is readable: the reader then runs without the
    capabilities that let root ignore file modes (util-linux ``setpriv``)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _good_file(raw / "good.json", "ok")
    secret = _good_file(raw / "secret.json", "no")
    secret.chmod(0o000)
    code = ("import json, sys; from sunorecsys.catalog.ingest import read_catalogue; "
            "r = read_catalogue(sys.argv[1]); "
            "print(json.dumps([sorted(r.songs['song_id']), r.rejected_files]))")
    command = [sys.executable, "-c", code, str(raw)]
    if os.geteuid() == 0:
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    songs, rejected_files = json.loads(done.stdout.strip().splitlines()[-1])
    assert songs == ["ok0", "ok1"] and rejected_files == {str(secret): "permission denied"}


def test_the_sensor_and_the_raw_songs_asset_report_rejected_files(hostile_root):
    import dagster as dg
    from pipeline_support import materialize, pipeline_resources

    from sunorecsys.paths import DataPaths
    from sunorecsys_pipeline.sensors import catalogue_run_requests

    raw = hostile_root / "raw"
    requests, cursor = catalogue_run_requests(raw, None, flamingo=False, audiobox=False)
    versioned = {Path(p).name for p in json.loads(cursor)}
    assert requests and {"fifo.json", "loop_a.json", "dangling.json", "folder.json"} <= versioned
    assert any(r.partition_key == "2026-11-03" for r in requests)  # the good songs' day is scored

    with dg.instance_for_test() as instance:
        run = materialize(["raw_songs"], pipeline_resources(DataPaths(hostile_root)), instance)
    assert run.success
    meta = next(e.materialization.metadata for e in run.get_asset_materialization_events()
                if e.materialization.asset_key.to_user_string() == "raw_songs")
    bad, _ = _expected_files(raw)
    listed = meta["rejected_files"].value
    assert all(Path(f).name in listed for f in bad)
