"""The sample catalogue generator: determinism, shape, real audio with known damage, a listening log
with signal in it. The default catalogue comes from the session fixture ``sample_data``."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

import sunorecsys
from sunorecsys.catalog.schema import is_safe_song_id
from sunorecsys.sample.audio import DAMAGE_KINDS
from sunorecsys.sample.catalogue import generate_sample_catalogue

SHIPPED_CATALOGUE = Path(sunorecsys.__file__).parent / "data" / "curl" / "all_songs.json"


@pytest.fixture(scope="module")
def catalogue(sample_data):
    records = json.loads((sample_data.raw_dir / "all_songs.json").read_text(encoding="utf-8"))
    truth = json.loads(sample_data.sample_ground_truth.read_text(encoding="utf-8"))
    return records, truth


def _songs_with(truth: dict, damage: str | None) -> list[str]:
    return [sid for sid, t in truth.items() if t["damage"] == damage]


def _audio(sample_data, song_id: str) -> tuple[np.ndarray, int]:
    data, sr = sf.read(sample_data.audio_dir / f"{song_id}.flac", dtype="float32", always_2d=True)
    return data, sr


def _energy_above(data: np.ndarray, sr: int, hz: float) -> float:
    freqs, psd = signal.welch(data.mean(axis=1), fs=sr, nperseg=4096)
    return float(psd[freqs >= hz].sum() / max(psd.sum(), 1e-30))


# --- determinism ------------------------------------------------------------------------------------

def test_same_seed_gives_byte_identical_files(tmp_path):
    a = generate_sample_catalogue(tmp_path / "a", n_songs=5, days=3, seed=11, n_users=12)
    b = generate_sample_catalogue(tmp_path / "b", n_songs=5, days=3, seed=11, n_users=12, workers=1)
    files_a = sorted(p.relative_to(a.paths.root) for p in a.paths.root.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.paths.root) for p in b.paths.root.rglob("*") if p.is_file())
    assert files_a == files_b
    assert any(str(f).endswith(".flac") for f in files_a)
    for rel in files_a:
        assert (a.paths.root / rel).read_bytes() == (b.paths.root / rel).read_bytes(), rel


def test_a_different_seed_gives_a_different_catalogue(tmp_path):
    a = generate_sample_catalogue(tmp_path / "a", n_songs=10, days=3, seed=1, with_audio=False, n_users=5)
    b = generate_sample_catalogue(tmp_path / "b", n_songs=10, days=3, seed=2, with_audio=False, n_users=5)
    assert a.catalogue_file.read_bytes() != b.catalogue_file.read_bytes()


def test_shipped_catalogue_equals_a_fresh_default_generation(tmp_path):
    fresh = generate_sample_catalogue(tmp_path / "data", with_audio=False)
    assert SHIPPED_CATALOGUE.read_bytes() == fresh.catalogue_file.read_bytes(), (
        "sunorecsys/data/curl/all_songs.json is stale: regenerate it with "
        "`sunorecsys sample --out /tmp/s --no-audio` and copy raw/all_songs.json")


def test_without_audio_the_metadata_and_log_are_unchanged(sample_data, tmp_path):
    fresh = generate_sample_catalogue(tmp_path / "data", with_audio=False)
    assert fresh.catalogue_file.read_bytes() == (sample_data.raw_dir / "all_songs.json").read_bytes()
    assert fresh.interactions_file.read_bytes() == (sample_data.raw_dir / "interactions.csv").read_bytes()
    assert not (tmp_path / "data" / "audio").exists() or not any((tmp_path / "data" / "audio").iterdir())


def test_rerun_replaces_any_earlier_file_of_a_song(tmp_path):
    # A stale file of another extension would be found by the audio resolver; a rerun removes it
    # (this matters for missing_file songs, which must stay without any file).
    first = generate_sample_catalogue(tmp_path / "d", n_songs=6, days=2, seed=3, n_users=3)
    song_id = next(iter(json.loads(first.ground_truth_file.read_text())))
    stale = first.paths.audio_dir / f"{song_id}.wav"
    stale.write_bytes(b"RIFF....")
    generate_sample_catalogue(tmp_path / "d", n_songs=6, days=2, seed=3, n_users=3)
    assert not stale.exists()


# --- shape of the default catalogue -------------------------------------------------------------------

def test_default_catalogue_has_200_songs_from_30_to_50_creators_over_14_days(catalogue):
    records, truth = catalogue
    assert len(records) == 200 == len(truth)
    assert len({r["id"] for r in records}) == 200
    assert 30 <= len({r["user_id"] for r in records}) <= 50
    days = {datetime.fromisoformat(r["created_at"]).date().isoformat() for r in records}
    assert min(days) == "2026-11-01" and max(days) == "2026-11-14" and len(days) == 14


def test_records_are_raw_suno_clips_without_ground_truth(catalogue):
    records, _ = catalogue
    for r in records:
        assert is_safe_song_id(r["id"]) and len(r["id"]) == 36
        assert r["audio_url"] == f"https://cdn1.suno.ai/{r['id']}.mp3"
        assert r["created_at"].endswith("Z")
        meta = r["metadata"]
        assert isinstance(meta["tags"], str) and meta["tags"]
        assert 20.0 <= meta["duration"] <= 40.0
        assert "damage" not in json.dumps(r) and "audio_path" not in r
    prompts = [r["metadata"]["prompt"] for r in records]
    assert all("\n" in p for p in prompts)
    text = json.dumps(records, ensure_ascii=False)
    assert any(ch in text for ch in "ñçãé")                    # Spanish / Portuguese
    assert any("\u3040" <= ch <= "\u30ff" for ch in text)      # Japanese kana
    assert any(ord(ch) > 0xFFFF for r in records for ch in r["title"])  # emoji in some titles
    tags = " | ".join(r["metadata"]["tags"].lower() for r in records)
    assert ("lo-fi" in tags or "lofi" in tags) and ("hip hop" in tags or "hip-hop" in tags)
    plays = np.array([r["play_count"] for r in records])
    assert plays.max() > 10 * max(np.median(plays), 1)      # heavy tail


def test_every_damage_kind_is_present_and_about_a_fifth_is_damaged(catalogue):
    _, truth = catalogue
    counts = Counter(t["damage"] for t in truth.values())
    assert set(DAMAGE_KINDS) <= set(counts)
    assert sum(v for k, v in counts.items() if k is not None) == 40


def test_clean_songs_are_44k_stereo_with_the_catalogue_duration(sample_data, catalogue):
    records, truth = catalogue
    duration = {r["id"]: r["metadata"]["duration"] for r in records}
    for sid in _songs_with(truth, None)[:20]:
        info = sf.info(sample_data.audio_dir / f"{sid}.flac")
        assert info.samplerate == 44100 and info.channels == 2
        assert info.duration == pytest.approx(duration[sid], abs=0.01)
        data, _ = _audio(sample_data, sid)
        peak = np.abs(data).max()
        assert 0.05 < peak < 0.95                            # audible, never clipped
        assert np.mean(np.abs(data) < 1e-4) < 0.05          # not silent


def test_clean_songs_have_a_beat_and_full_band_energy(sample_data, catalogue):
    _, truth = catalogue
    for sid in [s for s in _songs_with(truth, None) if truth[s]["genre"] in ("edm", "rock", "pop")][:3]:
        data, sr = _audio(sample_data, sid)
        assert _energy_above(data, sr, 5000) > 1e-4
        # Onset envelope periodicity at the tempo: autocorrelation peaks at one beat.
        mono = data.mean(axis=1)
        hop = 441
        env = np.sqrt(np.add.reduceat(mono ** 2, np.arange(0, mono.size, hop)))
        flux = np.maximum(np.diff(env), 0)
        flux -= flux.mean()
        ac = np.correlate(flux, flux, mode="full")[flux.size - 1:]
        beat_lag = 60.0 / truth[sid]["bpm"] * sr / hop
        lag = round(beat_lag)
        assert ac[lag - 1: lag + 2].max() > 3 * np.median(np.abs(ac[5: 4 * lag]))


def test_clipped_songs_sit_at_full_scale(sample_data, catalogue):
    _, truth = catalogue
    for sid in _songs_with(truth, "clipped"):
        data, _ = _audio(sample_data, sid)
        assert np.mean(np.abs(data) > 0.999) > 0.05


def test_silent_songs_are_mostly_silent(sample_data, catalogue):
    _, truth = catalogue
    for sid in _songs_with(truth, "silent"):
        data, _ = _audio(sample_data, sid)
        frames = data[: data.shape[0] // 2205 * 2205].reshape(-1, 2205, 2)
        frame_db = 10 * np.log10(np.mean(frames ** 2, axis=(1, 2)) + 1e-20)
        assert np.mean(frame_db < -60) > 0.85


def test_band_limited_songs_have_no_energy_above_5k(sample_data, catalogue):
    _, truth = catalogue
    clean = [_energy_above(*_audio(sample_data, sid), 5000) for sid in _songs_with(truth, None)[:10]]
    for sid in _songs_with(truth, "band_limited"):
        above = _energy_above(*_audio(sample_data, sid), 5000)
        assert above < 0.01 * float(np.median(clean)) and above < 0.1 * min(clean)


def test_noisy_songs_are_buried_in_noise(sample_data, catalogue):
    _, truth = catalogue
    for sid in _songs_with(truth, "noisy"):
        data, sr = _audio(sample_data, sid)
        freqs, psd = signal.welch(data.mean(axis=1), fs=sr, nperseg=4096)
        band = (freqs > 50) & (freqs < 16000)
        flatness = np.exp(np.mean(np.log(psd[band] + 1e-20))) / np.mean(psd[band])
        assert flatness > 0.05


def test_truncated_songs_hold_only_seconds_while_metadata_says_more(sample_data, catalogue):
    records, truth = catalogue
    duration = {r["id"]: r["metadata"]["duration"] for r in records}
    for sid in _songs_with(truth, "truncated"):
        info = sf.info(sample_data.audio_dir / f"{sid}.flac")
        assert 1.5 <= info.duration <= 3.0 < duration[sid]


def test_corrupt_files_do_not_decode_and_missing_files_are_absent(sample_data, catalogue):
    _, truth = catalogue
    for sid in _songs_with(truth, "corrupt"):
        path = sample_data.audio_dir / f"{sid}.flac"
        assert path.is_file()
        with pytest.raises(sf.LibsndfileError):
            sf.read(path)
    for sid in _songs_with(truth, "missing_file"):
        assert not list(sample_data.audio_dir.glob(f"{sid}.*"))
        assert truth[sid]["audio_file"] is None


# --- listening log ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def listening_log(sample_data):
    with (sample_data.raw_dir / "interactions.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_log_has_150_users_with_30_to_about_120_events_each(listening_log):
    per_user = Counter(row["user_id"] for row in listening_log)
    assert len(per_user) == 150
    counts = np.array(list(per_user.values()))
    assert counts.min() >= 20 and np.median(counts) >= 30 and counts.max() <= 160
    assert {row["event"] for row in listening_log} == {"play", "complete", "like", "skip"}


def test_events_happen_after_the_song_exists_and_inside_the_window(listening_log, catalogue):
    records, _ = catalogue
    created = {r["id"]: datetime.fromisoformat(r["created_at"]) for r in records}
    end = datetime(2026, 11, 14, 23, 59, 59, tzinfo=UTC)
    for row in listening_log:
        ts = datetime.fromisoformat(row["timestamp"])
        assert created[row["song_id"]] < ts <= end


def test_damaged_songs_are_skipped_more_and_liked_less(listening_log, catalogue):
    _, truth = catalogue
    by_kind: dict[bool, Counter] = defaultdict(Counter)
    for row in listening_log:
        by_kind[truth[row["song_id"]]["damage"] is not None][row["event"]] += 1
    skip_rate = {k: c["skip"] / c["play"] for k, c in by_kind.items()}
    like_rate = {k: c["like"] / c["play"] for k, c in by_kind.items()}
    assert skip_rate[True] > 2 * skip_rate[False]
    assert like_rate[True] < 0.5 * like_rate[False]


def test_listeners_stick_to_their_genres(listening_log, catalogue):
    _, truth = catalogue
    genres_by_user: dict[str, Counter] = defaultdict(Counter)
    for row in listening_log:
        if row["event"] == "play":
            genres_by_user[row["user_id"]][truth[row["song_id"]]["genre"]] += 1
    # Top-3 genres of a listener cover most of their plays (10 genres exist).
    shares = [sum(v for _, v in c.most_common(3)) / sum(c.values()) for c in genres_by_user.values()]
    assert np.median(shares) > 0.6
