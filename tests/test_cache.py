"""The per-song score cache: layout, validation (corrupt / stale entries are not trusted), atomic writes."""

from __future__ import annotations

import json
import os

import pytest

from sunorecsys.quality.base import ScoreResult
from sunorecsys.quality.cache import (
    AudioHashMemo,
    UnsafeSongId,
    cache_path,
    read_cached,
    write_cached,
)
from sunorecsys.quality.dimensions import DIMENSIONS

VERSION = "model-x+prompt-abc+parser-1"
SHA = "a" * 64


def _result(song_id="song-1", status="ok", scores=None) -> ScoreResult:
    scores = scores if scores is not None else dict(zip(DIMENSIONS, (0.7, 0.8, 0.6, 0.5, 0.9)))
    return ScoreResult(song_id=song_id, status=status, scores=scores, overall_quality_score=0.725,
                       fields={"genre": "Synthpop", "model_id": "model-x", "prompt_version": "abc"},
                       raw_response="{...}", scorer_version=VERSION, audio_sha256=SHA)


def test_cache_file_follows_guide_layout_and_reads_back(tmp_path):
    path = write_cached(tmp_path, _result())
    assert path == tmp_path / "song-1.json"
    entry = json.loads(path.read_text())
    for dim, value in zip(DIMENSIONS, (0.7, 0.8, 0.6, 0.5, 0.9)):
        assert entry[dim] == value  # the guide's five dimensions at the top level
    assert entry["overall_quality_score"] == 0.725 and entry["genre"] == "Synthpop"
    hit, why = read_cached(tmp_path, "song-1", VERSION, SHA)
    assert why == "" and hit.cached and hit.status == "ok"
    assert hit.scores == dict(zip(DIMENSIONS, (0.7, 0.8, 0.6, 0.5, 0.9)))
    assert [p.name for p in tmp_path.iterdir()] == ["song-1.json"]  # no temporary files left


def test_partial_results_are_cached_with_their_missing_dimensions(tmp_path):
    write_cached(tmp_path, _result(status="partial", scores={"production_quality": 0.4}))
    hit, _ = read_cached(tmp_path, "song-1", VERSION, SHA)
    assert hit.status == "partial" and hit.fields["missing_dimensions"] == [d for d in DIMENSIONS
                                                                           if d != "production_quality"]


def test_failed_results_are_never_cached(tmp_path):
    with pytest.raises(ValueError, match="failures are not scores"):
        write_cached(tmp_path, _result(status="failed", scores={}))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("version, sha, reason", [
    ("model-y+prompt-abc+parser-1", SHA, "stale scorer version"),
    (VERSION, "b" * 64, "audio changed"),
])
def test_stale_entries_miss(tmp_path, version, sha, reason):
    write_cached(tmp_path, _result())
    hit, why = read_cached(tmp_path, "song-1", version, sha)
    assert hit is None and why == reason


@pytest.mark.parametrize("mutate, reason_part", [
    (lambda e: "{not json", "corrupt JSON"),
    (lambda e: {**e, "production_quality": "0.8"}, "production_quality"),
    (lambda e: {**e, "content_enjoyment": True}, "content_enjoyment"),
    (lambda e: {**e, "production_complexity": 1.5}, "production_complexity"),
    (lambda e: {**e, "overall_quality_score": -0.1}, "overall_quality_score"),
    (lambda e: {**e, "status": "failed"}, "status"),
    (lambda e: {k: v for k, v in e.items() if k != "content_usefulness"}, "inconsistent"),
    (lambda e: [e], "not a JSON object"),
])
def test_corrupt_or_out_of_range_entries_are_not_trusted(tmp_path, mutate, reason_part):
    path = write_cached(tmp_path, _result())
    bad = mutate(json.loads(path.read_text()))
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    hit, why = read_cached(tmp_path, "song-1", VERSION, SHA)
    assert hit is None and reason_part in why


@pytest.mark.parametrize("song_id", ["../escape", "a/b", "", "song.json", None, "x" * 200])
def test_unsafe_song_ids_never_become_file_names(tmp_path, song_id):
    with pytest.raises(UnsafeSongId):
        cache_path(tmp_path, song_id)


def test_audio_hash_memo_skips_unchanged_files_and_rehashes_changed_ones(tmp_path):
    import hashlib

    audio = tmp_path / "song.bin"
    audio.write_bytes(b"first version")
    memo = AudioHashMemo(tmp_path / "cache")
    assert memo.sha256(audio) == hashlib.sha256(b"first version").hexdigest()
    memo.save()
    again = AudioHashMemo(tmp_path / "cache")  # a new run reads the memo back
    assert again.sha256(audio) == hashlib.sha256(b"first version").hexdigest() and again.hashed == 0
    audio.write_bytes(b"second, longer version")
    os.utime(audio, ns=(1, 10**18))
    assert again.sha256(audio) == hashlib.sha256(b"second, longer version").hexdigest() and again.hashed == 1


def test_corrupt_hash_memo_costs_only_time(tmp_path):
    (tmp_path / ".audio_sha256_memo").write_text("{oops")
    audio = tmp_path / "a.bin"
    audio.write_bytes(b"x")
    memo = AudioHashMemo(tmp_path)
    assert len(memo.sha256(audio)) == 64 and memo.hashed == 1
