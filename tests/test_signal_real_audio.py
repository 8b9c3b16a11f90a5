"""Signal checks on REAL music: a small slice of the calibration set of bench/real_audio.py.

Four recordings of Debian's ``fretsonfire-songs-sectoid`` (a rock/metal band's multitrack stems,
Expat-style licence, ~29 MB) are fetched with ``apt-get download`` at test time, cut into 20 s
excerpts, written as 192 kbps MP3s and damaged in every way the set knows. Clean excerpts must
pass; every damage must be hard-failed for the right reason (a low bitrate must score below its
192 kbps twin without a hard fail). The full figures (AUC, detection rates on a held-apart half)
are printed by bench/scoring_signal.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from real_audio import (  # bench/ is not a package: put on sys.path above
    DAMAGE_TYPES,
    RealAudioUnavailable,
    SetSpec,
    build_calibration_set,
)

from sunorecsys.audio.checks import COLUMNS, SUB_SCORES, run_audio_checks
from sunorecsys.paths import DataPaths

PACKAGE = "fretsonfire-songs-sectoid"
EXPECTED_REASON = {
    "clipped": "heavy_clipping", "truncated": "truncated", "band_limited": "band_limited",
    "resampled_16k": "band_limited", "dc_offset": "dc_offset", "dropouts": "dropouts",
    "stuck_buffer": "stuck_buffer", "noise": "noisy", "near_silent": "mostly_silent",
}


@pytest.fixture(scope="module")
def real_checks(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-set")
    # 4 tracks x 5 damages, dealt round-robin per half: every damage type twice, on two tracks.
    spec = SetSpec(packages=(PACKAGE,), excerpt_s=20.0, damaged_per_track=5, seed=3, clean_flac_share=0.0)
    try:
        truth = build_calibration_set(root, spec)
    except RealAudioUnavailable as exc:
        pytest.fail(f"the real-music slice needs Debian's apt (apt-get download {PACKAGE}): {exc}")
    checks = run_audio_checks(truth[["song_id", "duration_s"]], DataPaths(root), fetch=False)
    return truth, checks.merge(truth[["song_id", "damage", "twin", "track_id"]], on="song_id")


def test_the_slice_holds_every_damage_type_on_real_recordings(real_checks):
    truth, checks = real_checks
    assert set(truth["damage"].dropna()) == set(DAMAGE_TYPES)
    assert truth["track_id"].nunique() == 4
    assert list(checks.columns[: len(COLUMNS)]) == COLUMNS
    assert (checks["status"] == "ok").all(), checks.loc[checks["status"] != "ok", ["song_id", "detail"]]


def test_clean_real_excerpts_pass(real_checks):
    _, checks = real_checks
    clean = checks[checks["damage"].isna()]
    assert len(clean) == 4
    assert not clean["hard_fail"].any(), clean.loc[clean["hard_fail"], ["song_id", "hard_fail_detail"]]
    assert (clean["technical_score"] > 0.5).all(), clean[["song_id", "technical_score"]]
    # An ordinary 192 kbps MP3's own ~16-19 kHz low-pass is not a band limit (one of these band
    # recordings' content ends at 15.5 kHz: still far above the 12 kHz hard-fail threshold).
    assert (clean["bandwidth_hz"] >= 15000).all()


@pytest.mark.parametrize("damage", sorted(EXPECTED_REASON))
def test_each_damage_on_real_music_is_hard_failed_for_its_reason(real_checks, damage):
    _, checks = real_checks
    rows = checks[checks["damage"] == damage]
    assert len(rows) == 2
    for row in rows.itertuples():
        assert EXPECTED_REASON[damage] in row.hard_fail_reasons, (row.song_id, row.hard_fail_detail)
        assert EXPECTED_REASON[damage] in row.hard_fail_detail
        assert row.technical_score < 0.5 or row.hard_fail


def test_a_low_bitrate_mp3_scores_below_its_192_kbps_twin_without_a_hard_fail(real_checks):
    _, checks = real_checks
    by_id = checks.set_index("song_id")
    rows = checks[checks["damage"] == "low_bitrate"]
    assert len(rows) == 2
    for row in rows.itertuples():
        assert not row.hard_fail, row.hard_fail_detail
        assert row.bitrate_kbps <= 70
        assert row.technical_score < by_id.loc[row.twin, "technical_score"]


def test_every_sub_score_is_stored_per_song_in_range(real_checks):
    _, checks = real_checks
    scores = checks[[f"score_{name}" for name in SUB_SCORES]]
    assert scores.notna().all().all() and ((scores >= 0) & (scores <= 1)).all().all()
    product = pd.Series(1.0, index=checks.index)
    from sunorecsys.audio.checks import EXPONENTS

    for name in SUB_SCORES:
        product *= checks[f"score_{name}"] ** EXPONENTS[name]
    # A stream shorter than its own header claims (a partial download) gets no score at all: its
    # measures describe only what was left of it.
    cut = checks["detail"].str.contains("its header claims", na=False)
    assert (checks.loc[cut, "technical_score"] == 0).all()
    assert (product - checks["technical_score"])[~cut].abs().max() < 1e-9


def test_a_32_kbps_encode_of_clean_real_music_is_marked_down_not_hard_failed(real_checks, tmp_path):
    # Above the codec's own low-pass (5.5 kHz at 32 kbps) only the decoder's faint, flat residue is
    # left: it must not read as hiss in the music (it did: 'noisy' on 5 of 22 real 32-48 kbps encodes).
    import soundfile as sf
    from real_audio import write_mp3

    from sunorecsys.audio.checks import check_song

    truth, checks = real_checks
    paths = DataPaths(tmp_path)
    paths.audio_dir.mkdir(parents=True)
    set_root = Path(checks["audio_path"].iloc[0]).parent
    by_id = checks.set_index("song_id")
    for song_id in truth.loc[truth["damage"].isna(), "song_id"]:
        data, rate = sf.read(str(set_root / f"{song_id}.mp3"), dtype="float32", always_2d=True)
        write_mp3(paths.audio_dir / f"{song_id}.mp3", data, rate, kbps=32)
        row = check_song({"song_id": song_id, "duration_s": data.shape[0] / rate}, paths, fetch=False)
        assert row["status"] == "ok" and not row["hard_fail"], (song_id, row["hard_fail_detail"])
        assert row["bitrate_kbps"] < 40
        assert row["technical_score"] < by_id.loc[song_id, "technical_score"]



def test_a_short_stuck_buffer_survives_an_mp3_encode(real_checks, tmp_path):
    # signal-checks/4: after a 192 kbps encode a 1024-sample stuck buffer's high band no longer
    # repeats cleanly (/3 missed such excerpts); its first difference still repeats at the exact
    # integer lag, which a played note or a synth loop does not.
    from real_audio import fetch_package, list_tracks, load_excerpt, write_mp3

    from sunorecsys.audio.checks import check_song

    truth, _ = real_checks
    tracks = {t.track_id: t for t in list_tracks(PACKAGE, fetch_package(PACKAGE))}
    paths = DataPaths(tmp_path)
    paths.audio_dir.mkdir(parents=True)
    for row in truth[truth["damage"].isna()].itertuples():
        data, rate = load_excerpt(tracks[row.track_id], row.start_s, row.duration_s)  # the slice's source
        start = 5 * rate
        for r in range(1, 17):  # one 1024-sample buffer played 17 times in a row (0.4 s)
            data[start + r * 1024:start + (r + 1) * 1024] = data[start:start + 1024]
        write_mp3(paths.audio_dir / f"{row.song_id}-stuck.mp3", data, rate)
        out = check_song({"song_id": f"{row.song_id}-stuck", "duration_s": row.duration_s}, paths, fetch=False)
        assert out["status"] == "ok" and "stuck_buffer" in out["hard_fail_reasons"], (row.song_id, out["hard_fail_detail"])
