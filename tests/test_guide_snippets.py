"""The SEED_GUIDE's snippets that use QualityFilter / HybridRecommender, run as written.

Each snippet is copied verbatim from the guide and executed in a cwd holding the files the guide
names (``data/processed/songs.parquet`` from the real ingest, ``data/music_flamingo_scores.json``
from the pipeline's scoring path). Where a snippet names placeholder ids ("song-1",
"seed-song-1") it runs verbatim first (placeholders are reported as unknown), then again with
real sample ids swapped in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from recommender_data import pipeline_outputs

PRECOMPUTED_FILTER = '''
from sunorecsys.recommenders.quality_filter import QualityFilter
import pandas as pd

# Load your songs
songs_df = pd.read_parquet("data/processed/songs.parquet")

# Initialize quality filter with precomputed Music Flamingo scores
quality_filter = QualityFilter(
    quality_threshold=0.4,  # Filter songs below this score
    quality_scores_file="data/music_flamingo_scores.json",
)

# Fit the filter
quality_filter.fit(songs_df)

# Use in recommendations
filtered_songs = quality_filter.filter(['song-1', 'song-2', 'song-3'])
'''

OPTION_1 = '''
from sunorecsys.recommenders.hybrid import HybridRecommender

# Initialize with Music Flamingo quality scores
recommender = HybridRecommender(
    quality_weight=0.10,  # Weight for quality channel
    quality_threshold=0.4,  # Minimum quality score
    use_quality_filter=True,
)

# Fit with songs and quality scores file
recommender.fit(
    songs_df,
    quality_scores_file="data/music_flamingo_scores.json",
)
'''

OPTION_2 = '''
from sunorecsys.recommenders.quality_filter import QualityFilter
from sunorecsys.utils.music_flamingo_quality import MusicFlamingoQualityScorer

# Initialize Music Flamingo scorer
scorer = MusicFlamingoQualityScorer(
    model_id="nvidia/music-flamingo-hf",
    device="cuda",  # or "cpu"
)

# Create quality filter with Music Flamingo
quality_filter = QualityFilter(
    quality_threshold=0.4,
    use_music_flamingo=True,
    music_flamingo_model_id="nvidia/music-flamingo-hf",
    device="cuda",
)

# Fit (will compute scores on-the-fly)
quality_filter.fit(songs_df)
'''

COMPLETE_PIPELINE = '''
# Step 1: Compute quality scores (run once)
# python compute_music_flamingo_quality.py \\
#     --input sunorecsys/data/curl/all_songs.json \\
#     --output data/music_flamingo_scores.json

# Step 2: Use in hybrid recommender
from sunorecsys.recommenders.hybrid import HybridRecommender
import pandas as pd

# Load processed songs
songs_df = pd.read_parquet("data/processed/songs.parquet")

# Initialize recommender with Music Flamingo quality scores
recommender = HybridRecommender(
    item_cf_weight=0.25,
    item_content_weight=0.30,
    prompt_weight=0.20,
    user_weight=0.20,
    quality_weight=0.10,  # Quality filter weight
    quality_threshold=0.4,  # Minimum quality
    use_quality_filter=True,
)

# Fit with quality scores
recommender.fit(
    songs_df,
    quality_scores_file="data/music_flamingo_scores.json",
)

# Get recommendations (quality filter automatically applied)
recommendations = recommender.recommend(
    song_ids=["seed-song-1", "seed-song-2"],
    n=10
)

# Recommendations are already filtered by quality
print(f"Got {len(recommendations)} high-quality recommendations")
'''


@pytest.fixture(scope="module")
def pipeline(sample_data, tmp_path_factory):
    return pipeline_outputs(sample_data, tmp_path_factory.mktemp("recommender"))


@pytest.fixture
def guide_cwd(pipeline, monkeypatch):
    monkeypatch.chdir(pipeline.work_dir)
    monkeypatch.delenv("SUNORECSYS_DATA_DIR", raising=False)
    return pipeline


def _run(code: str, namespace: dict | None = None) -> dict:
    namespace = {} if namespace is None else namespace
    exec(compile(code, "<SEED_GUIDE snippet>", "exec"), namespace)  # noqa: S102 - the guide's own code
    return namespace


def _clean_and_damaged(pipeline, n_clean=2):
    clean = [s for s in pipeline.songs["song_id"] if s not in pipeline.damaged][:n_clean]
    damaged = sorted(pipeline.damaged)[:2]
    return clean, damaged


def test_precomputed_filter_snippet_runs_and_drops_damaged_songs(guide_cwd):
    ns = _run(PRECOMPUTED_FILTER)
    # the guide's placeholder ids are not songs of this catalogue: reported, not passed through
    assert ns["filtered_songs"] == []
    assert ns["quality_filter"].last_unknown_ids_ == ["song-1", "song-2", "song-3"]

    clean, damaged = _clean_and_damaged(guide_cwd)
    ids = [damaged[0], clean[0], damaged[1], clean[1]]
    ns = _run(PRECOMPUTED_FILTER.replace("['song-1', 'song-2', 'song-3']", repr(ids)))
    assert ns["filtered_songs"] == clean
    quality_filter = ns["quality_filter"]
    for song_id in damaged:
        assert quality_filter.get_quality_score(song_id) < 0.4


def test_option_1_snippet_fits_and_recommends_without_damaged_songs(guide_cwd):
    ns = _run("import pandas as pd\nsongs_df = pd.read_parquet('data/processed/songs.parquet')\n" + OPTION_1)
    recommender = ns["recommender"]
    # the listening log was found under ./data/raw by the default reader
    assert recommender.fit_stats_["events"] == len(guide_cwd.interactions)
    seeds = [s for s in guide_cwd.songs["song_id"] if s not in guide_cwd.damaged][:3]
    recs = recommender.recommend(song_ids=seeds, n=10)
    assert len(recs) == 10
    assert not {r["song_id"] for r in recs} & (guide_cwd.damaged | set(seeds))


def test_complete_pipeline_snippet_reports_placeholder_seeds_then_recommends(guide_cwd, capsys):
    ns = _run(COMPLETE_PIPELINE)
    assert "Got 0 high-quality recommendations" in capsys.readouterr().out
    assert ns["recommender"].last_unknown_seeds == ["seed-song-1", "seed-song-2"]

    # every damaged song as a seed companion: the recommendations still never include one
    clean, damaged = _clean_and_damaged(guide_cwd)
    code = COMPLETE_PIPELINE.replace('["seed-song-1", "seed-song-2"]', repr([clean[0], damaged[0]]))
    ns = _run(code)
    out = capsys.readouterr().out
    recs = ns["recommendations"]
    assert f"Got {len(recs)} high-quality recommendations" in out
    assert len(recs) == 10
    scores = pd.Series({r["song_id"]: r["quality_score"] for r in recs})
    assert (scores >= 0.4).all()
    assert not set(scores.index) & guide_cwd.damaged
    for r in recs:
        assert r["channels"] and np.isfinite(r["score"])
        assert set(r["channels"]) <= {"item_cf", "content", "prompt", "user", "quality"}


def test_option_2_snippet_scores_on_the_fly_with_a_local_music_flamingo(guide_cwd, tiny_flamingo):
    from tiny_models import SCRIPTED_REPLY

    from sunorecsys.quality.dimensions import get_overall_quality_score
    from sunorecsys.quality.parsing import parse_quality_response

    model_dir = tiny_flamingo[("audioflamingo3", "scripted")]
    clean, _ = _clean_and_damaged(guide_cwd)
    missing = [s for s, v in guide_cwd.ground_truth.items() if v.get("damage") == "missing_file"][:1]
    few = guide_cwd.songs[guide_cwd.songs["song_id"].isin(clean + missing)]
    code = (OPTION_2.replace("nvidia/music-flamingo-hf", str(model_dir)).replace('"cuda"', '"cpu"'))
    ns = _run(code, {"songs_df": few})
    quality_filter = ns["quality_filter"]
    expected = get_overall_quality_score(parse_quality_response(SCRIPTED_REPLY).scores)
    for song_id in clean:
        assert quality_filter.get_quality_score(song_id) == pytest.approx(expected)
        assert (guide_cwd.paths.flamingo_cache_dir / f"{song_id}.json").exists()
    # a song whose audio is missing cannot be scored: unscored, kept by the default policy, reason recorded
    assert quality_filter.get_quality_score(missing[0]) is None
    assert missing[0] in quality_filter.unscored_ and missing[0] in quality_filter.failures_
    assert quality_filter.filter(clean + missing) == clean + missing

    # as written (the real checkpoint id, a GPU): a clear error instead of silently unscored songs
    with pytest.raises(Exception, match="(?i)cuda|weights|not found|missing"):
        _run(OPTION_2, {"songs_df": few.head(1)})
