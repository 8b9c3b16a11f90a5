"""Music Flamingo scorer on tiny offline checkpoints (real transformers classes, real audio).

'random' checkpoints reply with garbage (the "nothing usable" path); 'scripted' ones always reply
with tiny_models.SCRIPTED_REPLY (a parseable answer), so the success path runs end to end too.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from sunorecsys.audio import decode_audio
from sunorecsys.paths import DataPaths
from sunorecsys.quality.base import Scorer
from sunorecsys.quality.dimensions import get_overall_quality_score
from sunorecsys.quality.flamingo import ModelWeightsMissing, MusicFlamingoQualityScorer
from sunorecsys.quality.prompt import prompt_version
from sunorecsys.quality.results import FLAMINGO_COLUMNS, results_to_frame
from sunorecsys.utils.music_flamingo_quality import QUALITY_PROMPT_TEMPLATE
from sunorecsys.utils.music_flamingo_quality import MusicFlamingoQualityScorer as GuideImport

# What tiny_models.SCRIPTED_REPLY says, read off its text.
SCRIPTED_SCORES = {"content_usefulness": 0.7, "production_quality": 0.8, "content_enjoyment": 0.6,
                   "production_complexity": 0.5, "overall_recommendation_score": 0.9}


def _songs(paths: DataPaths, n: int) -> pd.DataFrame:
    from sunorecsys.catalog.ingest import read_catalogue

    return read_catalogue(paths.raw_dir / "all_songs.json").songs.head(n).reset_index(drop=True)


@pytest.fixture
def catalogue(small_catalogue, tmp_path) -> DataPaths:
    """A writable copy of the small catalogue."""
    root = tmp_path / "data"
    shutil.copytree(small_catalogue.root, root)
    return DataPaths(root)


def _waveforms(paths: DataPaths, songs: pd.DataFrame) -> list:
    return [decode_audio(next(paths.audio_dir.glob(f"{sid}.*")), sample_rate=16000).samples
            for sid in songs["song_id"]]


def test_guide_import_path_and_prompt():
    assert GuideImport is MusicFlamingoQualityScorer
    assert QUALITY_PROMPT_TEMPLATE.startswith("Describe this Suno AI generated track in full detail")
    assert '"overall_recommendation_score": 0.0\n}' in QUALITY_PROMPT_TEMPLATE


@pytest.mark.parametrize("kind, class_name", [("audioflamingo3", "AudioFlamingo3ForConditionalGeneration"),
                                              ("musicflamingo", "MusicFlamingoForConditionalGeneration")])
def test_model_class_follows_checkpoint_model_type(tiny_flamingo, kind, class_name):
    scorer = MusicFlamingoQualityScorer(str(tiny_flamingo[(kind, "random")]), device="cpu")
    assert not scorer.model_loaded  # the constructor only stores parameters
    assert isinstance(scorer, Scorer) and scorer.name == "music_flamingo"
    loaded = scorer.load()
    assert type(loaded.model).__name__ == class_name and loaded.model_type == kind
    assert str(loaded.model.dtype) == "torch.float32"  # fp32 on CPU by default
    assert loaded.max_audio_seconds == {"audioflamingo3": 600, "musicflamingo": 1200}[kind]
    assert prompt_version() in scorer.version and "parser-" in scorer.version


@pytest.mark.parametrize("kind", ["audioflamingo3", "musicflamingo"])
def test_batched_generation_gives_the_same_tokens_as_one_by_one(tiny_flamingo, small_catalogue, kind):
    songs = _songs(small_catalogue, 3)  # 20-40 s each: different lengths, partial last windows
    waves = _waveforms(small_catalogue, songs)
    assert len({w.shape[0] for w in waves}) == 3
    scorer = MusicFlamingoQualityScorer(str(tiny_flamingo[(kind, "random")]), device="cpu", max_new_tokens=12)
    batched = scorer.generate_token_ids(waves)
    single = [scorer.generate_token_ids([w])[0] for w in waves]
    assert batched == single
    assert all(len(ids) > 0 for ids in batched)


def test_decode_batch_carries_the_features_and_generation_uses_them(tiny_flamingo, catalogue):
    """The decode thread makes the processor's features: they equal what generation would make,
    and the tokens generated from them equal the tokens of a batch decoded without them."""
    import torch

    songs = _songs(catalogue, 3)
    scorer = MusicFlamingoQualityScorer(str(tiny_flamingo[("audioflamingo3", "random")]), device="cpu",
                                        batch_size=3, max_new_tokens=8, paths=catalogue, fetch=False)
    batch = scorer.decode_batch(songs)
    assert batch.inputs is not None and len(batch.waveforms) == 3
    fresh = scorer.prepare_inputs(batch.waveforms)
    assert set(batch.inputs.keys()) == set(fresh.keys())
    for key, value in fresh.items():
        assert torch.equal(batch.inputs[key], value), key
    from_thread = scorer.generate_token_ids(batch.waveforms, batch.inputs)
    assert from_thread == scorer.generate_token_ids(batch.waveforms)
    batch.inputs = None  # e.g. the processor failed in the decode thread: generation makes them
    assert [r.raw_response for r in scorer.generate_batch(batch)] == \
        [r.raw_response for r in scorer.score_batch(songs)]


def test_bf16_inputs_are_cast_to_the_model_dtype(tiny_flamingo, small_catalogue):
    import torch

    scorer = MusicFlamingoQualityScorer(str(tiny_flamingo[("audioflamingo3", "scripted")]), device="cpu",
                                        dtype="bf16", max_new_tokens=4)
    waves = _waveforms(small_catalogue, _songs(small_catalogue, 1))
    inputs = scorer.prepare_inputs(waves)
    assert inputs["input_features"].dtype == torch.bfloat16  # floating tensors follow the model
    assert inputs["input_ids"].dtype == torch.int64  # token ids stay integers
    assert scorer.generate_replies(waves)[0].startswith('{"genre": "Synthpop"')


def test_random_weights_reply_garbage_which_fails_and_is_not_cached(tiny_flamingo, catalogue, tmp_path):
    songs = _songs(catalogue, 3)
    scorer = MusicFlamingoQualityScorer(str(tiny_flamingo[("musicflamingo", "random")]), device="cpu",
                                        batch_size=2, max_new_tokens=16, paths=catalogue, fetch=False)
    cache = tmp_path / "cache"
    results = scorer.score_songs(songs, cache_dir=cache, progress=False)
    assert [r.song_id for r in results] == list(songs["song_id"])
    for r in results:
        assert r.status == "failed" and r.overall_quality_score is None and r.scores == {}
        assert "no quality scores" in r.error and r.raw_response is not None and len(r.audio_sha256) == 64
    assert not list(cache.glob("*.json"))  # failures are never cached as scores
    assert scorer.last_run["failed"] == 3 and scorer.last_run["scored"] == 0


def test_scripted_model_scores_caches_and_a_cached_rerun_needs_no_model(tiny_flamingo, catalogue, tmp_path):
    songs = _songs(catalogue, 5)
    missing_id = songs["song_id"][4]
    next(catalogue.audio_dir.glob(f"{missing_id}.*")).unlink()  # one song without audio
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_flamingo[("musicflamingo", "scripted")], model_dir)
    cache = tmp_path / "cache"
    scorer = MusicFlamingoQualityScorer(str(model_dir), device="cpu", batch_size=2, max_new_tokens=4,
                                        paths=catalogue, fetch=False)
    results = scorer.score_songs(songs, cache_dir=cache, progress=False)
    ok = [r for r in results if r.status == "ok"]
    assert len(ok) == 4
    for r in ok:
        assert r.scores == pytest.approx(SCRIPTED_SCORES)
        assert r.overall_quality_score == pytest.approx(get_overall_quality_score(SCRIPTED_SCORES))
        assert r.fields["genre"] == "Synthpop" and not r.cached
    failed = results[4]
    assert failed.status == "failed" and failed.error.startswith("audio missing")
    assert sorted(p.stem for p in cache.glob("*.json")) == sorted(songs["song_id"][:4])
    frame = results_to_frame(results)
    assert list(frame.columns) == FLAMINGO_COLUMNS and frame["missing_dimensions"][0] == []

    # The weights are gone: a fully cached run must not need them.
    shutil.rmtree(model_dir)
    rerun = MusicFlamingoQualityScorer(str(model_dir), device="cpu", paths=catalogue, fetch=False)
    again = rerun.score_songs(songs.head(4), cache_dir=cache, progress=False)
    assert all(r.cached and r.status == "ok" for r in again)
    assert [r.scores for r in again] == [r.scores for r in ok]
    assert not rerun.model_loaded and rerun.last_run["cached"] == 4 and rerun.last_run["hashed_files"] == 0


def test_corrupt_and_stale_cache_entries_are_rescored(tiny_flamingo, catalogue, tmp_path):
    songs = _songs(catalogue, 3)
    cache = tmp_path / "cache"
    scorer = MusicFlamingoQualityScorer(str(tiny_flamingo[("audioflamingo3", "scripted")]), device="cpu",
                                        batch_size=3, max_new_tokens=4, paths=catalogue, fetch=False)
    scorer.score_songs(songs, cache_dir=cache, progress=False)
    a, b, c = songs["song_id"]
    (cache / f"{a}.json").write_text('{"content_usefulness": 0.7, "production_qu')  # half-written file
    entry = json.loads((cache / f"{b}.json").read_text())
    (cache / f"{b}.json").write_text(json.dumps({**entry, "production_quality": 7.5}))  # out of range
    before_c = (cache / f"{c}.json").stat().st_mtime_ns
    again = MusicFlamingoQualityScorer(str(tiny_flamingo[("audioflamingo3", "scripted")]), device="cpu",
                                       batch_size=3, max_new_tokens=4, paths=catalogue, fetch=False)
    results = again.score_songs(songs, cache_dir=cache, progress=False)
    assert [r.cached for r in results] == [False, False, True]
    assert again.last_run["not_cached_because"] == {"corrupt JSON": 1, "production_quality not a number in [0, 1]": 1}
    assert json.loads((cache / f"{b}.json").read_text())["production_quality"] == 0.8  # rewritten, valid
    assert (cache / f"{c}.json").stat().st_mtime_ns == before_c

    # Changing the prompt changes the version: everything is rescored.
    other = MusicFlamingoQualityScorer(str(tiny_flamingo[("audioflamingo3", "scripted")]), device="cpu",
                                       batch_size=3, max_new_tokens=4, paths=catalogue, fetch=False,
                                       prompt=QUALITY_PROMPT_TEMPLATE + "\nBe concise.")
    assert other.version != again.version
    assert not any(r.cached for r in other.score_songs(songs, cache_dir=cache, progress=False))


def test_unsafe_song_id_fails_alone(tiny_flamingo, catalogue, tmp_path):
    songs = _songs(catalogue, 1)
    bad = songs.iloc[[0]].assign(song_id="../../etc/evil", audio_path=str(next(catalogue.audio_dir.iterdir())))
    scorer = MusicFlamingoQualityScorer(str(tiny_flamingo[("audioflamingo3", "scripted")]), device="cpu",
                                        max_new_tokens=4, paths=catalogue, fetch=False)
    results = scorer.score_songs(pd.concat([bad, songs]), cache_dir=tmp_path / "cache", progress=False)
    assert results[0].status == "failed" and "unsafe" in results[0].error
    assert results[1].status == "ok"
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.json")) == [f"{songs['song_id'][0]}.json"]


def test_missing_weights_say_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    for model_id in (str(tmp_path / "no-such-model"), "nvidia/music-flamingo-hf"):
        scorer = MusicFlamingoQualityScorer(model_id, device="cpu")
        with pytest.raises(ModelWeightsMissing) as info:
            scorer.load()
        message = str(info.value)
        assert "huggingface-cli download nvidia/music-flamingo-hf" in message
        assert "--model" in message and "HF_HOME" in message
