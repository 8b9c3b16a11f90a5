"""Offline evaluation on the sample catalogue, with quality scores from the pipeline's scoring path."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from recommender_data import pipeline_outputs

from sunorecsys.evaluation import evaluate_recommender, relevant_after_split, temporal_split
from sunorecsys.evaluation.metrics import (
    catalogue_coverage,
    gini_of_exposure,
    hit_rate_at_k,
    ndcg_at_k,
    recall_at_k,
)


@pytest.fixture(scope="module")
def pipeline(sample_data, tmp_path_factory):
    return pipeline_outputs(sample_data, tmp_path_factory.mktemp("recommender"))


@pytest.fixture(scope="module")
def report(pipeline, tmp_path_factory):
    plot = tmp_path_factory.mktemp("evaluation") / "tradeoff.png"
    # workers=2: the second protocol in a spawned worker (compared with one process below)
    return evaluate_recommender(pipeline.songs, pipeline.interactions, pipeline.quality,
                                damaged_song_ids=pipeline.damaged, plot_path=plot, workers=2)


def test_evaluation_table_fusion_beats_every_single_channel(report):
    pd.set_option("display.width", 250)
    print(f"\nsplit at {report.split_time}, {report.n_users} test users\n{report.to_text()}")
    print(report.sweep.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    table = report.table
    fused = table[(table["variant"] == "fusion") & table["quality_filter"]].iloc[0]
    singles = table[table["variant"] != "fusion"]
    best = singles.loc[singles["ndcg@10"].idxmax()]
    assert report.n_users >= 50
    # On a held-out test the fusion cannot be promised to beat every channel (it is learned on its
    # own validation split, see the next test); it must not lose to the best bare baseline beyond
    # the paired bootstrap interval, and it shows more of the catalogue than that baseline.
    print(f"best single variant: {best['variant']} {best['ndcg@10']:.4f}; fusion {fused['ndcg@10']:.4f}")
    assert not report.comparisons["fusion_loses"].any(), report.comparisons
    baseline = table[table["variant"] == report.comparisons.iloc[0]["best_baseline"]].iloc[0]
    assert fused["coverage"] > baseline["coverage"]
    for column in ("recall@10", "ndcg@10", "hit_rate@10", "coverage", "gini", "mean_quality"):
        assert table[column].between(0, 1).all(), column


def test_quality_filter_removes_every_damaged_song_from_the_lists(report, pipeline):
    table = report.table.set_index(["variant", "quality_filter"])
    assert table.loc[("fusion", True), "share_damaged"] == 0.0
    assert table.loc[("fusion", True), "share_below_threshold"] == 0.0
    # without the filter damaged songs do reach the lists (so the filter is what removes them)
    assert table.loc[("fusion", False), "share_damaged"] > 0.0
    assert table.loc[("fusion", True), "mean_quality"] >= table.loc[("fusion", False), "mean_quality"]
    # every variant that filters (each channel alone runs with the filter on) shows no damaged song
    assert (report.table[report.table["quality_filter"]]["share_damaged"] == 0.0).all()


def test_threshold_sweep_and_plot(report):
    sweep = report.sweep
    assert list(sweep["quality_threshold"]) == sorted(sweep["quality_threshold"])
    # a stricter threshold never lowers the mean quality of what is shown
    assert sweep["mean_quality"].is_monotonic_increasing
    assert report.plot_path.exists()
    assert report.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_temporal_split_fits_on_the_past_only(pipeline):
    split = temporal_split(pipeline.interactions, test_fraction=0.2)
    assert (pd.to_datetime(split.train["timestamp"], utc=True) < split.split_time).all()
    assert (pd.to_datetime(split.test["timestamp"], utc=True) >= split.split_time).all()
    assert len(split.train) + len(split.test) == len(pipeline.interactions)
    relevant = relevant_after_split(split)
    test_events = split.test.assign(w=split.test["weight"])
    sums = test_events.groupby(["user_id", "song_id"])["w"].sum()
    for user, songs in list(relevant.items())[:20]:
        for song in songs:
            assert sums[(user, song)] > 0  # skips alone never make a song relevant
    # a play followed by a skip (net weight 0) is never relevant
    skipped = sums[sums <= 0].index
    assert not any(song in relevant.get(user, set()) for user, song in skipped)


def test_ranking_metrics_by_hand():
    ranked = ["a", "b", "c", "d"]
    relevant = {"b", "d", "z"}
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 2)
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(dcg / ideal)
    assert hit_rate_at_k(ranked, relevant, 1) == 0.0 and hit_rate_at_k(ranked, relevant, 2) == 1.0
    assert catalogue_coverage([["a", "b"], ["b", "c"]], 10) == pytest.approx(0.3)
    assert gini_of_exposure([["a"], ["b"]], ["a", "b"]) == pytest.approx(0.0)
    # one song shown to everybody out of four: maximal inequality for n=4 is (n-1)/n
    assert gini_of_exposure([["a"]] * 5, ["a", "b", "c", "d"]) == pytest.approx(3 / 4)


def test_both_protocols_report_bare_baselines_and_the_fusion_never_loses_on_its_validation(report):
    import dagster as dg

    from sunorecsys_pipeline.checks import fusion_vs_baselines

    assert set(report.tables) == {"temporal", "leave_last_k"}
    for protocol, table in report.tables.items():
        variants = set(table["variant"])
        assert {"bare BM25 item-item (K=100)", "bare ALS (64 factors, 15 it.)",
                "EASE (closed form, lambda=200)"} <= variants, protocol
        assert table["cold_recall@10"].notna().any()
        # the sample proves plumbing: the learned fusion is at least its best channel on its own validation
        fusion = report.details["fit_stats"][protocol]["fusion"]
        for mode in ("user", "seeds"):
            assert fusion["validation_ndcg@10"][mode] >= max(fusion["single_channel_ndcg@10"][mode].values())
    print("\n" + report.comparisons.to_string(index=False))
    assert list(report.comparisons["protocol"]) == ["temporal", "leave_last_k"]
    assert (report.comparisons["ci_low"] <= report.comparisons["difference"]).all()
    result = fusion_vs_baselines(report.comparisons)
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert result.passed == (not report.comparisons["fusion_loses"].any())


def test_the_asset_check_warns_when_the_fusion_loses_to_a_bare_baseline(pipeline):
    from sunorecsys_pipeline.checks import fusion_vs_baselines

    # a fusion told to use the prompt channel alone (weights as given): far below bare item-item
    bad = {"item_cf_weight": 0.0, "item_content_weight": 0.0, "prompt_weight": 1.0, "user_weight": 0.0,
           "quality_weight": 0.0}
    report = evaluate_recommender(pipeline.songs, pipeline.interactions, pipeline.quality, params=bad,
                                  protocols=("leave_last_k",), thresholds=(0.4,))
    row = report.comparisons.iloc[0]
    assert row["fusion_loses"] and row["ci_high"] < 0
    result = fusion_vs_baselines(report.comparisons)
    assert not result.passed and "loses" in result.description and row["best_baseline"] in result.description


def test_a_bounded_sample_of_listeners_is_judged_and_said_so(pipeline, report):
    # every eligible listener judged (the sample catalogue has fewer than DEFAULT_MAX_USERS)
    full = report.tables["leave_last_k"]
    assert (full["users"] == full["eligible_users"]).all()
    sampled = evaluate_recommender(pipeline.songs, pipeline.interactions, pipeline.quality,
                                   protocols=("leave_last_k",), thresholds=(0.4,), max_users=20)
    table = sampled.tables["leave_last_k"]
    assert (table["users"] == 20).all()
    assert (table["eligible_users"] == full["eligible_users"].iloc[0]).all()
    assert sampled.details["judged_users"]["leave_last_k"] == {"judged": 20,
                                                               "eligible": int(full["eligible_users"].iloc[0])}
    # the bare baselines and the paired interval are still reported, on the sampled listeners
    assert table["variant"].str.startswith("bare").sum() >= 2
    row = sampled.comparisons.iloc[0]
    assert row["users"] == 20 and row["ci_low"] <= row["difference"] <= row["ci_high"]
    # the sweep at the model's own threshold is the filtered fusion's row (asked once, same lists)
    fused = table[(table["variant"] == "fusion") & table["quality_filter"]].iloc[0]
    assert sampled.sweep.iloc[0]["ndcg@10"] == fused["ndcg@10"]


def test_protocols_judged_in_worker_processes_give_the_same_report(pipeline, report):
    """The fixture's report judged its second protocol in a spawned worker; all in this process,
    every table, comparison and detail is the same."""
    here = evaluate_recommender(pipeline.songs, pipeline.interactions, pipeline.quality,
                                damaged_song_ids=pipeline.damaged, workers=1)
    assert list(here.tables) == list(report.tables) == ["temporal", "leave_last_k"]
    for protocol in here.tables:
        pd.testing.assert_frame_equal(here.tables[protocol], report.tables[protocol])
    pd.testing.assert_frame_equal(here.sweep, report.sweep)
    pd.testing.assert_frame_equal(here.comparisons, report.comparisons)
    assert here.details["judged_users"] == report.details["judged_users"]
    assert here.details["leave_last_k"] == report.details["leave_last_k"]
    assert here.split_time == report.split_time and here.n_users == report.n_users
