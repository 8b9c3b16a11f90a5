"""Parsing of realistic Music Flamingo replies (tests/fixtures/replies/).

Expected values below were worked out by reading each reply (scale rules in
sunorecsys/quality/parsing.py's docstring), not copied from a run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sunorecsys.quality.dimensions import DIMENSIONS, get_overall_quality_score
from sunorecsys.quality.parsing import parse_quality_response

REPLIES = Path(__file__).parent / "fixtures" / "replies"
CU, PQ, CE, PC, ORS = DIMENSIONS  # guide order

# file -> (status, {dimension: value}, {field: value})
EXPECTED = {
    "01_clean_json.txt": ("ok", {CU: 0.8, PQ: 0.9, CE: 0.7, PC: 0.6, ORS: 0.75},
                          {"genre": "Synthwave", "key": "A minor"}),
    "02_code_fence.txt": ("ok", {CU: 0.6, PQ: 0.5, CE: 0.7, PC: 0.3, ORS: 0.6}, {"genre": "Lo-fi hip hop"}),
    "03_prose_around_json.txt": ("ok", {CU: 0.7, PQ: 0.6, CE: 0.8, PC: 0.5, ORS: 0.7}, {"tempo": "170 BPM"}),
    "04_single_quotes.txt": ("ok", {CU: 0.5, PQ: 0.8, CE: 0.6, PC: 0.4, ORS: 0.55},
                             {"tempo": "slow, around 60 BPM"}),
    "05_trailing_commas.txt": ("ok", {CU: 0.65, PQ: 0.85, CE: 0.7, PC: 0.45, ORS: 0.7}, {"mood": "wistful"}),
    "06_ten_point_scale.txt": ("ok", {CU: 0.7, PQ: 0.8, CE: 0.9, PC: 0.6, ORS: 0.8}, {}),
    "07_hundred_point_scale.txt": ("ok", {CU: 0.7, PQ: 0.85, CE: 0.9, PC: 0.8, ORS: 0.75}, {}),
    "08_percent_strings.txt": ("ok", {CU: 0.6, PQ: 0.9, CE: 0.8, PC: 0.5, ORS: 0.75}, {"genre": "EDM"}),
    "09_missing_keys.txt": ("partial", {PQ: 0.4, CE: 0.6}, {"genre": "Folk"}),
    "10_prose_out_of_ten.txt": ("ok", {CU: 0.7, PQ: 0.8, CE: 0.6, PC: 0.9, ORS: 0.7}, {}),
    "11_garbage.txt": ("failed", {}, {}),
    "12_empty.txt": ("failed", {}, {}),
    "13_truncated_json.txt": ("partial", {CU: 0.6, PQ: 0.7}, {"genre": "Trap"}),
    "14_markdown_bold_prose.txt": ("ok", {CU: 0.6, PQ: 0.5, CE: 0.7, PC: 0.4, ORS: 0.6},
                                   {"genre": "Indie rock", "production_style": "lo-fi garage"}),
    "15_nested_scores.txt": ("ok", {CU: 0.7, PQ: 0.75, CE: 0.8, PC: 0.5, ORS: 0.8}, {"genre": "Reggaeton"}),
    "16_capitalised_keys.txt": ("ok", {CU: 0.6, PQ: 0.7, CE: 0.8, PC: 0.3, ORS: 0.7},
                                {"production_style": "vintage"}),
    "17_out_of_range.txt": ("partial", {CU: 0.5, CE: 0.6, ORS: 0.5}, {}),
    "18_string_numbers.txt": ("ok", {CU: 0.7, PQ: 0.8, CE: 0.9, PC: 0.4, ORS: 0.85}, {"tempo": "124"}),
    "19_refusal.txt": ("failed", {}, {}),
    "20_echoed_template.txt": ("failed", {}, {}),
    "21_python_literals.txt": ("ok", {CU: 0.4, PQ: 0.6, CE: 0.7, PC: 0.3, ORS: 0.5},
                               {"instruments": "square wave lead, noise channel drums, triangle bass"}),
    "22_two_objects.txt": ("ok", {CU: 0.75, PQ: 0.8, CE: 0.85, PC: 0.55, ORS: 0.8}, {"genre": "Soul"}),
    "23_score_objects.txt": ("ok", {CU: 0.8, PQ: 0.9, CE: 0.7, PC: 0.6, ORS: 0.8}, {}),
    "24_out_of_five_prose.txt": ("partial", {CU: 0.8, PQ: 0.9, CE: 0.6}, {"genre": "K-pop", "tempo": "126 BPM"}),
    "25_integer_scale_with_one.txt": ("ok", {CU: 0.1, PQ: 0.3, CE: 0.1, PC: 0.7, ORS: 0.2}, {}),
    "26_mixed_bare_scale.txt": ("ok", {CU: 0.7, PQ: 0.8, CE: 0.9, PC: 0.65, ORS: 0.8}, {}),
    "27_alias_keys.txt": ("ok", {CU: 0.5, PQ: 0.6, CE: 0.65, PC: 0.7, ORS: 0.6}, {"mood": "dreamy"}),
    "28_nan_and_text_values.txt": ("partial", {PQ: 0.7, PC: 0.2, ORS: 0.4}, {}),
}

# Overall scores worked out by hand with the guide's weights (0.15/0.30/0.25/0.10/0.20), renormalised.
HAND_OVERALL = {
    "01_clean_json.txt": 0.775,
    "09_missing_keys.txt": (0.3 * 0.4 + 0.25 * 0.6) / 0.55,
    "13_truncated_json.txt": (0.15 * 0.6 + 0.3 * 0.7) / 0.45,
    "17_out_of_range.txt": (0.15 * 0.5 + 0.25 * 0.6 + 0.2 * 0.5) / 0.6,
    "24_out_of_five_prose.txt": (0.15 * 0.8 + 0.3 * 0.9 + 0.25 * 0.6) / 0.7,
    "25_integer_scale_with_one.txt": 0.24,
}


def test_fixture_set_is_complete():
    files = sorted(p.name for p in REPLIES.glob("*.txt"))
    assert len(files) >= 25
    assert files == sorted(EXPECTED), "every fixture reply has an expected outcome, and vice versa"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reply_parses_to_expected_outcome(name):
    status, scores, fields = EXPECTED[name]
    parsed = parse_quality_response((REPLIES / name).read_text(encoding="utf-8"))
    assert parsed.status == status, parsed
    assert parsed.scores == pytest.approx(scores)
    assert parsed.missing == [d for d in DIMENSIONS if d not in scores]
    for key, value in fields.items():
        assert parsed.fields.get(key) == value
    if status == "failed":
        assert parsed.overall_quality_score is None  # never a default score
        assert parsed.error
    else:
        assert parsed.overall_quality_score == pytest.approx(get_overall_quality_score(scores))
        assert all(0.0 <= v <= 1.0 for v in parsed.scores.values())


@pytest.mark.parametrize("name", sorted(HAND_OVERALL))
def test_overall_score_renormalises_guide_weights(name):
    parsed = parse_quality_response((REPLIES / name).read_text(encoding="utf-8"))
    assert parsed.overall_quality_score == pytest.approx(HAND_OVERALL[name])


def test_failures_say_why():
    parsed = parse_quality_response((REPLIES / "20_echoed_template.txt").read_text(encoding="utf-8"))
    assert any("template" in note for note in parsed.notes)
    assert parse_quality_response(None).status == "failed"
    parsed = parse_quality_response((REPLIES / "17_out_of_range.txt").read_text(encoding="utf-8"))
    assert any(PQ in note for note in parsed.notes) and any(PC in note for note in parsed.notes)


def test_partial_reply_reports_its_missing_dimensions_in_error():
    parsed = parse_quality_response((REPLIES / "09_missing_keys.txt").read_text(encoding="utf-8"))
    assert CU in parsed.error and PC in parsed.error and ORS in parsed.error
