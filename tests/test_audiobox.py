"""Audiobox Aesthetics scorer on a real AesMultiOutput with random weights built offline.

The package's constructor always builds the full WavLM-base encoder (94 M parameters: it reads a
module-level config), so the model here is full size with random weights; audio is kept short.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
aes = pytest.importorskip("audiobox_aesthetics.model.aes")

from sunorecsys.audio.synth import synth_song
from sunorecsys.paths import DataPaths
from sunorecsys.quality.audiobox import (
    AUDIOBOX_SCORES_SCHEMA,
    AXES,
    CODE_VERSION,
    TABLE_COLUMNS,
    AudioboxAestheticsScorer,
    AudioboxWeightsMissing,
    audiobox_results_to_frame,
)
from sunorecsys.warehouse.parquet import read_table, write_partition

# Different means and spreads per axis, so a de-normalisation mix-up between axes shows.
TARGET_TRANSFORM = {"CE": {"mean": 5.6, "std": 1.3}, "CU": {"mean": 6.4, "std": 0.9},
                    "PC": {"mean": 4.1, "std": 1.7}, "PQ": {"mean": 7.2, "std": 0.6}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = aes.AesMultiOutput(target_transform=TARGET_TRANSFORM)
    # Random heads give outputs near 0; larger head biases spread them so the axes differ clearly.
    with torch.no_grad():
        for i, axis in enumerate(AXES):
            model.proj_layer[axis][-1].bias.fill_(0.5 * (i - 1.5))
    folder = tmp_path_factory.mktemp("audiobox-ckpt")
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def scorer(checkpoint):
    return AudioboxAestheticsScorer(checkpoint, device="cpu", batch_size=4, fetch=False)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> DataPaths:
    paths = DataPaths(tmp_path_factory.mktemp("data"))
    paths.audio_dir.mkdir(parents=True)
    # Two short real files in two formats at 44.1 kHz stereo: our decode downmixes and resamples.
    sf.write(paths.audio_dir / "song-a.mp3", synth_song(2.0, 44100, 2, seed=1), 44100)
    sf.write(paths.audio_dir / "song-b.flac", synth_song(3.0, 44100, 2, seed=2), 44100)
    # A 12-second 16 kHz mono file: two windows (10 s + 2 s padded), no resampling involved.
    sf.write(paths.audio_dir / "song-long.flac", synth_song(12.0, 16000, 1, seed=3), 16000, subtype="PCM_24")
    return paths


def test_scores_two_real_files_on_the_model_scale_and_normalised(scorer, data_root):
    songs = pd.DataFrame({"song_id": ["song-a", "song-b", "song-gone"]})
    results = scorer.score_batch(songs, data_root)
    assert [r.song_id for r in results] == ["song-a", "song-b", "song-gone"]
    for r in results[:2]:
        assert r.status == "ok" and r.error is None and len(r.audio_sha256) == 64
        for axis in AXES:
            raw, norm = r.scores[axis.lower()], r.scores[f"{axis.lower()}_norm"]
            assert math.isfinite(raw) and 1.0 <= raw <= 10.0
            assert norm == pytest.approx(min(max((raw - 1) / 9, 0), 1))
        assert r.overall_quality_score == pytest.approx(np.mean([r.scores[f"{a.lower()}_norm"] for a in AXES]))
        assert r.fields["windows"] == 1
    # Different audio, different scores.
    assert results[0].scores["ce"] != results[1].scores["ce"]
    gone = results[2]
    assert gone.status == "failed" and gone.error.startswith("missing") and gone.overall_quality_score is None

    table = audiobox_results_to_frame(results)
    assert list(table.columns) == TABLE_COLUMNS
    assert table.loc[2, "status"] == "failed" and np.isnan(table.loc[2, "audiobox_score"])
    ok = table.iloc[:2]
    assert ok[["ce_norm", "cu_norm", "pc_norm", "pq_norm", "audiobox_score"]].apply(
        lambda c: c.between(0, 1).all()).all()
    assert (ok["scorer_version"] == scorer.version).all()
    path = write_partition(table, data_root.warehouse_dir, "audiobox_scores", "2026-11-14",
                           schema=AUDIOBOX_SCORES_SCHEMA)
    back = read_table(data_root.warehouse_dir, "audiobox_scores")
    assert path.exists() and list(back["song_id"]) == ["song-a", "song-b", "song-gone"]
    assert back["ce"].iloc[0] == pytest.approx(results[0].scores["ce"])


def test_multi_window_song_is_the_length_weighted_mean_of_its_windows(scorer, checkpoint, data_root):
    [result] = scorer.score_batch([{"song_id": "song-long"}], data_root)
    assert result.status == "ok" and result.fields["windows"] == 2

    # By hand, straight through the model: one window per forward pass, padded and masked.
    wav, sr = sf.read(data_root.audio_dir / "song-long.flac", dtype="float32")
    assert sr == 16000 and wav.shape[0] == 192000
    model = scorer.model
    pieces = [wav[:160000], wav[160000:]]
    by_axis = {axis: [] for axis in AXES}
    for piece in pieces:
        frame = np.zeros(160000, dtype=np.float32)
        frame[: piece.shape[0]] = piece
        mask = np.zeros(160000, dtype=bool)
        mask[: piece.shape[0]] = True
        with torch.inference_mode():
            out = model({"wav": torch.from_numpy(frame)[None, None], "mask": torch.from_numpy(mask)[None, None]})
        for axis in AXES:
            t = TARGET_TRANSFORM[axis]
            by_axis[axis].append(float(out[axis][0]) * t["std"] + t["mean"])
    weights = np.array([1.0, 0.2])
    for axis in AXES:
        expected = float(np.dot(by_axis[axis], weights) / weights.sum())
        assert result.scores[axis.lower()] == pytest.approx(expected, abs=1e-4)
        # The padded window really counts less: the mean is not the plain average.
        if abs(by_axis[axis][0] - by_axis[axis][1]) > 1e-3:
            assert result.scores[axis.lower()] != pytest.approx(np.mean(by_axis[axis]), abs=1e-5)


def test_package_checkpoint_pt_loads_to_the_same_model(scorer, tmp_path):
    # The package's original format: {"state_dict": {"model.<key>": tensor}, "model_cfg", "target_transform"}.
    model = scorer.model
    pt = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "model_cfg": {"proj_num_layer": 1, "proj_ln": False, "proj_act_fn": "gelu", "proj_dropout": 0,
                              "nth_layer": 13, "use_weighted_layer_sum": True, "precision": "32",
                              "normalize_embed": True, "output_dim": 1},
                "target_transform": TARGET_TRANSFORM}, pt)
    other = AudioboxAestheticsScorer(pt)
    assert other.version != scorer.version  # another file, another identity
    wav = torch.from_numpy(synth_song(1.0, 16000, 1, seed=9))[None, None]
    batch = {"wav": wav, "mask": torch.ones_like(wav, dtype=torch.bool)}
    with torch.inference_mode():
        expected, got = model(batch), other.model(batch)
    assert other.model.target_transform == TARGET_TRANSFORM
    for axis in AXES:
        assert float(got[axis][0]) == pytest.approx(float(expected[axis][0]), abs=1e-6)


def test_version_names_the_weights_and_the_code(scorer, checkpoint):
    version = scorer.version
    assert version.startswith("audiobox-aesthetics@") and CODE_VERSION in version
    assert AudioboxAestheticsScorer(checkpoint).version == version
    assert AudioboxAestheticsScorer(checkpoint, window_s=1.0).version != version


@pytest.mark.parametrize("where", ["nowhere", "empty-folder", None])
def test_missing_weights_say_how_to_provide_them(tmp_path, where):
    if where == "empty-folder":
        (tmp_path / "empty-folder").mkdir()
    path = None if where is None else tmp_path / where
    with pytest.raises(AudioboxWeightsMissing) as err:
        AudioboxAestheticsScorer(path)
    message = str(err.value)
    assert "huggingface-cli download facebook/audiobox-aesthetics" in message
    assert "--audiobox-checkpoint" in message and "never downloads" in message
    if path is not None:
        assert str(path) in message
