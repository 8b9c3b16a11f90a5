"""``sunorecsys recommend`` and ``sunorecsys evaluate`` on the sample catalogue."""

from __future__ import annotations

import json
import shutil

import pytest
from recommender_data import pipeline_outputs

from sunorecsys.cli import main
from sunorecsys.paths import DataPaths
from sunorecsys.recommenders.training_data import fit_from_paths, model_dir


@pytest.fixture(scope="module")
def data_root(sample_data, tmp_path_factory):
    pipeline = pipeline_outputs(sample_data, tmp_path_factory.mktemp("recommender"))
    root = tmp_path_factory.mktemp("cli") / "data"
    shutil.copytree(pipeline.paths.root, root, symlinks=True)
    return DataPaths(root), pipeline


def test_recommend_fits_when_no_model_is_saved_then_uses_the_saved_one(data_root, capsys):
    paths, pipeline = data_root
    seeds = [s for s in pipeline.songs["song_id"] if s not in pipeline.damaged][:2]
    argv = ["--data-dir", str(paths.root), "recommend", "--seed", seeds[0], "--seed", seeds[1], "-n", "5"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "fitted from" in err
    assert "channels" in out and len([line for line in out.splitlines() if line.strip()]) == 2 + 5

    fit_from_paths(paths).save(model_dir(paths))
    assert main(argv + ["--json", "--seed", "not-a-song"]) == 0
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert payload["model"].startswith("loaded")
    assert payload["unknown_seeds"] == ["not-a-song"]
    recs = payload["recommendations"]
    assert len(recs) == 5 and not {r["song_id"] for r in recs} & (set(seeds) | pipeline.damaged)
    assert all(r["channels"] for r in recs)
    assert "not-a-song" in err


def test_recommend_for_a_listener_and_for_nothing(data_root, capsys):
    paths, pipeline = data_root
    user = pipeline.interactions["user_id"].iloc[0]
    assert main(["--data-dir", str(paths.root), "recommend", "--user", user, "-n", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["recommendations"]) == 3
    assert main(["--data-dir", str(paths.root), "recommend"]) == 2
    assert main(["--data-dir", str(paths.root), "recommend", "--seed", "unknown-id"]) == 1


def test_evaluate_prints_the_metrics_table(data_root, capsys):
    paths, _ = data_root
    assert main(["--data-dir", str(paths.root), "evaluate"]) == 0
    out = capsys.readouterr().out
    print(out)
    for word in ("variant", "ndcg@10", "recall@10", "coverage", "gini", "fusion", "item_cf", "scores_file"):
        assert word in out
    assert (paths.models_dir / "evaluation" / "quality_tradeoff.png").exists()
