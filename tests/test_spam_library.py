"""The spam library on real fingerprints of real (synthesised) audio and real Parquet state:
re-encoded copies are found through the index, the clean sample flags nothing, the allow-list
overrides, a late original changes the flags and the change is recorded."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sunorecsys.catalog.ingest import read_catalogue
from sunorecsys.paths import DataPaths
from sunorecsys.sample.audio import choose_spec, synthesize_song
from sunorecsys.sample.spam_cohort import MP3_64K_LEVEL
from sunorecsys.spam import index as spam_index
from sunorecsys.spam.fingerprints import SongFingerprint, align, fingerprint_pcm
from sunorecsys.spam.flags import read_allowlist
from sunorecsys.spam.index import FingerprintIndex, Postings, candidate_pairs, index_keys, verify_pairs
from sunorecsys.spam.stage import HISTORY_TABLE, allowlist_path, run_spam_filter
from sunorecsys.warehouse.parquet import partition_path

SR = 44100
T0 = pd.Timestamp("2026-11-01", tz="UTC")


def _song(seed: int, genre: str = "pop", seconds: float = 35.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return synthesize_song(choose_spec(rng, genre, seconds), rng)


def _mp3_64k(audio: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    sf.write(buffer, audio, SR, format="MP3", compression_level=MP3_64K_LEVEL, bitrate_mode="CONSTANT")
    assert 60_000 < len(buffer.getvalue()) * 8 / (len(audio) / SR) < 70_000  # really ~64 kbps
    buffer.seek(0)
    return sf.read(buffer, dtype="float32", always_2d=True)[0]


@pytest.fixture(scope="module")
def originals():
    return {f"o{i}": _song(100 + i, genre) for i, genre in enumerate(["pop", "edm", "jazz", "rock", "lo-fi"])}


def test_reencoded_gain_changed_and_trimmed_copies_align_with_their_original(originals):
    audio = originals["o0"]
    a = fingerprint_pcm(audio, SR)
    copies = {"mp3": _mp3_64k(audio), "gain+3": audio * 10 ** (3 / 20), "gain-3": audio * 10 ** (-3 / 20),
              "trim5": audio[5 * SR:], "all": _mp3_64k(audio[5 * SR:] * 10 ** (-3 / 20))}
    for name, copy in copies.items():
        found = align(a, fingerprint_pcm(np.clip(copy, -1, 1), SR), range(-60, 61))
        assert found.bit_error_rate < 0.15, name
        assert abs(found.offset_seconds - (5.0 if "trim" in name or name == "all" else 0.0)) < 0.2, name
    other = fingerprint_pcm(originals["o1"], SR)
    assert align(a, other, range(-60, 61)).bit_error_rate > 0.25


def test_index_finds_copies_incrementally_and_never_pairs_different_songs(originals, tmp_path):
    times = {}
    first = []
    for i, (sid, audio) in enumerate(originals.items()):
        first.append(SongFingerprint(sid, fingerprint_pcm(audio, SR), 35.0))
        times[sid] = T0 + pd.Timedelta(hours=i)
    index = FingerprintIndex()
    assert index.add(first, times).empty
    index.save(tmp_path / "index")

    later = [SongFingerprint("c0", fingerprint_pcm(_mp3_64k(originals["o0"][5 * SR:]), SR), 30.0),
             SongFingerprint("c3", fingerprint_pcm(originals["o3"] * 10 ** (-3 / 20), SR), 35.0),
             SongFingerprint("n9", fingerprint_pcm(_song(999, "folk"), SR), 35.0)]
    times.update({"c0": T0 + pd.Timedelta(days=1), "c3": T0 + pd.Timedelta(days=1), "n9": T0 + pd.Timedelta(days=2)})
    reloaded = FingerprintIndex.load(tmp_path / "index")
    assert len(reloaded) == len(originals)
    found = reloaded.add(later, times)
    pairs = {frozenset(p) for p in zip(found["song_a"], found["song_b"])}
    assert pairs == {frozenset({"o0", "c0"}), frozenset({"o3", "c3"})}
    reloaded.save(tmp_path / "index")
    assert len(list((tmp_path / "index" / "fingerprints").glob("part-*.parquet"))) == 2  # one file per batch
    again = FingerprintIndex.load(tmp_path / "index")
    assert len(again) == 8 and len(again.matches) == 2


@pytest.fixture(scope="module")
def clean_run(sample_data, tmp_path_factory):
    paths = DataPaths(tmp_path_factory.mktemp("spam_clean") / "data")
    shutil.copytree(sample_data.raw_dir, paths.raw_dir)
    paths.audio_dir.symlink_to(sample_data.audio_dir.resolve(), target_is_directory=True)
    songs = read_catalogue([paths.raw_dir / "all_songs.json"]).songs
    return paths, songs, run_spam_filter(songs, paths, workers=2, now=T0)


def test_the_clean_sample_flags_nothing(clean_run):
    paths, songs, run = clean_run
    assert len(run.flags) == len(songs) == 200
    assert run.fingerprinted > 150  # damaged files that cannot be decoded are counted, not fingerprinted
    assert sum(run.not_fingerprinted.values()) == len(songs) - run.fingerprinted
    assert not run.flags["flagged"].any() and run.counts() == {}
    assert run.changes.empty and not partition_path(paths.warehouse_dir, HISTORY_TABLE).exists()


def _with_songs(songs: pd.DataFrame, extra: list[dict]) -> pd.DataFrame:
    return pd.concat([songs, pd.DataFrame(extra)], ignore_index=True)


def test_allow_list_overrides_a_flag_and_bad_rows_are_rejected_with_a_reason(clean_run, tmp_path):
    paths, songs, _ = clean_run
    stuffed = songs.iloc[0].to_dict() | {"song_id": "stuffed-1", "tags": ["pop", "taylor swift", "drake", "sza"]}
    stuffed2 = songs.iloc[1].to_dict() | {"song_id": "stuffed-2", "tags": ["rock", "metallica", "nirvana"]}
    catalogue = _with_songs(songs, [stuffed, stuffed2])
    allow = allowlist_path(paths)
    allow.write_text("scope,id,who,why\nsong,stuffed-1,ops@example.org,tribute album cleared by label\n"
                     "creator,someone,,\nteam,x,me,because\n", encoding="utf-8")
    valid, rejected = read_allowlist(allow)
    assert list(valid["id"]) == ["stuffed-1"]
    assert sorted(rejected["reason"]) == ["an allow-list entry needs who and why", "scope must be one of ('creator', 'song')"]
    try:
        run = run_spam_filter(catalogue, paths, now=T0 + pd.Timedelta(days=1))
    finally:
        allow.unlink()
    flags = run.flags.set_index("song_id")
    assert not flags.loc["stuffed-1", "flagged"] and flags.loc["stuffed-1", "detected_reasons"] == ["keyword_stuffing"]
    assert flags.loc["stuffed-1", "allowed_by"] == "ops@example.org"
    assert flags.loc["stuffed-2", "flagged"] and flags.loc["stuffed-2", "reasons"] == ["keyword_stuffing"]
    assert json.loads(flags.loc["stuffed-2", "evidence"])["keyword_stuffing"]["artists"] == ["metallica", "nirvana"]
    assert run.flags["flagged"].sum() == 1
    history = pd.read_parquet(partition_path(paths.warehouse_dir, HISTORY_TABLE))
    assert set(history["song_id"]) == {"stuffed-2"}, history.head(3).to_dict("records")


def test_a_late_original_turns_the_earlier_seen_song_into_the_duplicate_and_the_change_is_recorded(
        originals, tmp_path):
    paths = DataPaths(tmp_path / "data")
    paths.audio_dir.mkdir(parents=True)
    base = {"user_id": "u1", "title": "Song", "tags": ["pop"], "prompt": "", "duration_s": 35.0}
    # Day 5: a re-upload (MP3, trimmed) arrives first; nothing to compare it with yet.
    sf.write(paths.audio_dir / "reupload.mp3", np.clip(originals["o2"][5 * SR:], -1, 1), SR, format="MP3",
             compression_level=MP3_64K_LEVEL, bitrate_mode="CONSTANT")
    sf.write(paths.audio_dir / "other.flac", originals["o4"], SR)
    day5 = pd.DataFrame([base | {"song_id": "reupload", "user_id": "u2", "created_at": T0 + pd.Timedelta(days=5)},
                         base | {"song_id": "other", "created_at": T0 + pd.Timedelta(days=5, hours=1)}])
    first = run_spam_filter(day5, paths, now=T0 + pd.Timedelta(days=5))
    assert not first.flags["flagged"].any()
    # A late catalogue file: the real original, created on day 3.
    sf.write(paths.audio_dir / "original.flac", originals["o2"], SR)
    late = _with_songs(day5, [base | {"song_id": "original", "created_at": T0 + pd.Timedelta(days=3)}])
    second = run_spam_filter(late, paths, now=T0 + pd.Timedelta(days=7), cause="late file")
    assert second.fingerprinted == 1  # only the new song was decoded
    flags = second.flags.set_index("song_id")
    assert flags.loc["reupload", "reasons"] == ["audio_duplicate"]
    assert flags.loc["reupload", "duplicate_of"] == "original"
    assert not flags.loc["original", "flagged"] and not flags.loc["other", "flagged"]
    evidence = json.loads(flags.loc["reupload", "evidence"])["audio_duplicate"]
    assert evidence["bit_error_rate"] < 0.15 and abs(evidence["offset_s"] - 5.0) < 0.2
    history = pd.read_parquet(partition_path(paths.warehouse_dir, HISTORY_TABLE))
    change = history.set_index("song_id").loc["reupload"]
    assert list(change["reasons_before"]) == [] and list(change["reasons_after"]) == ["audio_duplicate"]
    assert change["cause"] == "late file" and change["duplicate_of_after"] == "original"


def test_postings_of_many_fingerprints_at_once_equal_those_of_each_alone(originals, monkeypatch):
    prints = [fingerprint_pcm(audio, SR) for audio in originals.values()]
    length = min(len(p) for p in prints)
    block = np.stack([p[:length] for p in prints])
    block[1, 0] = block[0, -1]  # a run of one word across two songs is two postings, one per song
    alone = [index_keys(row) for row in block]
    whole = [Postings.from_fingerprints(block, first_song=10), Postings.from_fingerprints(list(block), 10)]
    monkeypatch.setattr(spam_index, "_SONGS_PER_BLOCK", 2)  # a long list is done a few songs at a time
    for postings in (*whole, Postings.from_fingerprints(list(block), 10)):
        for i, (keys, positions) in enumerate(alone):
            mine = postings.songs == 10 + i
            assert np.array_equal(postings.keys[mine], keys) and np.array_equal(postings.positions[mine], positions)
        assert len(postings.keys) == sum(len(k) for k, _ in alone) > 5 * len(block)


def test_batched_verification_agrees_with_pairwise_alignment(originals):
    audio = list(originals.values())
    # Unequal lengths (a trimmed, re-encoded copy is shorter) and pairs at several voted offsets.
    prints = [fingerprint_pcm(a, SR) for a in audio] + [fingerprint_pcm(_mp3_64k(audio[0][5 * SR:]), SR)]
    pairs = pd.DataFrame([(a, b, off, 2) for a in range(len(prints)) for b in range(a + 1, len(prints))
                          for off in (-41, -3, 0, 7, 40)], columns=["song_a", "song_b", "offset", "votes"])
    got = verify_pairs(pairs, lambda r: prints[r], max_ber=1.0, batch=7)
    assert len(got) == len(pairs)
    for row, want in zip(got.itertuples(), pairs.itertuples()):
        expected = align(prints[want.song_a], prints[want.song_b], range(want.offset - 2, want.offset + 3), 81)
        assert row.offset == expected.offset and row.bit_error_rate == round(expected.bit_error_rate, 4)
    copy = got[(got["song_a"] == 0) & (got["song_b"] == 5)].sort_values("bit_error_rate").iloc[0]
    assert copy["bit_error_rate"] < 0.15 and abs(copy["offset_s"] - 5.0) < 0.2
    assert verify_pairs(pairs, lambda r: prints[r]).shape[0] == 1  # default threshold: only the copy at +40


def test_candidates_count_votes_per_offset_and_find_the_copy_among_many_songs(originals):
    rng = np.random.default_rng(3)
    # 400 other "songs": real fingerprint words of the other originals in shuffled order (common
    # words: a key held by more than MAX_SONGS_PER_KEY songs is skipped).
    base = np.concatenate([fingerprint_pcm(a, SR) for sid, a in originals.items() if sid != "o3"])
    others = [rng.permutation(base)[:250] for _ in range(400)]
    original = fingerprint_pcm(originals["o3"], SR)
    copy = fingerprint_pcm(_mp3_64k(originals["o3"][5 * SR:] * 10 ** (-3 / 20)), SR)
    cands = candidate_pairs(Postings.from_fingerprints([*others, original, copy]))
    assert ((cands["song_a"] < cands["song_b"]) & (cands["votes"] >= 2)).all()
    found = verify_pairs(cands, lambda r: ([*others, original, copy])[r])
    assert [tuple(x) for x in found[["song_a", "song_b"]].to_numpy()] == [(400, 401)]
    assert abs(found["offset_s"].iloc[0] - 5.0) < 0.2
