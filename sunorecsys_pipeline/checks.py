"""Asset checks on each partition's data.

The checks run inside the asset's own step, on the frame it has just written (``check_specs`` +
``MaterializeResult(check_results=...)``): that way they know their partition and never load
other partitions (an ``@asset_check`` loading a partitioned input loads all of them). The checks of
``quality_scores`` are blocking: when one fails, the run stops before the recommender is refitted.

Each function takes the partition's frame and returns an ``AssetCheckResult`` whose description
names the offending songs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg
import numpy as np
import pandas as pd

from sunorecsys.quality.dimensions import DIMENSIONS

MAX_NAMED = 10  # songs named in a failure message


def _names(ids: Iterable[object]) -> str:
    ids = [str(i) for i in ids]
    more = f" and {len(ids) - MAX_NAMED} more" if len(ids) > MAX_NAMED else ""
    return ", ".join(ids[:MAX_NAMED]) + more


def unique_song_ids(frame: pd.DataFrame, check_name: str = "unique_song_ids") -> dg.AssetCheckResult:
    """Fails when a song_id occurs more than once in the partition."""
    counts = frame["song_id"].value_counts() if len(frame) else pd.Series(dtype=int)
    duplicated = counts[counts > 1]
    return dg.AssetCheckResult(
        check_name=check_name, passed=bool(duplicated.empty),
        severity=dg.AssetCheckSeverity.ERROR,
        description=("no duplicate song_id" if duplicated.empty else
                     f"{len(duplicated)} song_id(s) occur more than once: {_names(duplicated.index)}"),
        metadata={"duplicate_ids": len(duplicated), "rows": len(frame)})


def values_in_range(frame: pd.DataFrame, columns: Sequence[str], low: float, high: float,
                    check_name: str) -> dg.AssetCheckResult:
    """Fails when a present (non-null) value of ``columns`` lies outside ``[low, high]`` or is infinite."""
    bad_ids: list[object] = []
    details: list[str] = []
    for column in columns:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        present = values.notna()
        outside = present & ~((values >= low) & (values <= high))
        if outside.any():
            ids = frame.loc[outside, "song_id"].tolist()
            bad_ids.extend(ids)
            details.append(f"{column} outside [{low:g}, {high:g}] for {_names(ids)} "
                           f"(e.g. {values[outside].iloc[0]!r})")
    return dg.AssetCheckResult(
        check_name=check_name, passed=not details, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(details) or f"all of {', '.join(columns)} within [{low:g}, {high:g}]",
        metadata={"songs_out_of_range": len(set(map(str, bad_ids)))})


def scored_share(quality: pd.DataFrame, n_songs: int, floor: float,
                 check_name: str = "scored_share") -> dg.AssetCheckResult:
    """Fails when the share of the partition's songs with a quality score is below ``floor``.

    ``n_songs`` is the number of songs in the songs partition; an empty partition passes.
    """
    scored = int(pd.to_numeric(quality.get("quality_score", pd.Series(dtype=float)),
                               errors="coerce").notna().sum()) if len(quality) else 0
    share = scored / n_songs if n_songs else 1.0
    unscored = (quality.loc[pd.to_numeric(quality["quality_score"], errors="coerce").isna(), "song_id"]
                if len(quality) and "quality_score" in quality else [])
    return dg.AssetCheckResult(
        check_name=check_name, passed=bool(share >= floor), severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{scored} of {n_songs} songs scored ({share:.0%}, floor {floor:.0%})"
                     + (f"; unscored: {_names(unscored)}" if len(unscored) else "")),
        metadata={"scored": scored, "songs": int(n_songs), "share": float(share), "floor": float(floor)})


def parse_failures(flamingo: pd.DataFrame) -> pd.Series:
    """Rows where the model answered but no score could be parsed from its answer."""
    if not len(flamingo) or "status" not in flamingo:
        return pd.Series(False, index=flamingo.index, dtype=bool)
    answered = flamingo["raw_response"].notna() if "raw_response" in flamingo else flamingo["status"].notna()
    return answered & (flamingo["status"] == "failed")


def parse_failure_rate(flamingo: pd.DataFrame | None, ceiling: float,
                       check_name: str = "parse_failure_rate") -> dg.AssetCheckResult:
    """Fails when more than ``ceiling`` of the model's answers in the partition could not be parsed."""
    if flamingo is None or not len(flamingo):
        return dg.AssetCheckResult(check_name=check_name, passed=True,
                                   description="no Music Flamingo scores for this partition",
                                   metadata={"answers": 0, "parse_failures": 0, "rate": 0.0})
    failed = parse_failures(flamingo)
    answered = int(flamingo["raw_response"].notna().sum()) if "raw_response" in flamingo else len(flamingo)
    rate = int(failed.sum()) / answered if answered else 0.0
    return dg.AssetCheckResult(
        check_name=check_name, passed=bool(rate <= ceiling), severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{int(failed.sum())} of {answered} answers unparseable ({rate:.0%}, ceiling {ceiling:.0%})"
                     + (f": {_names(flamingo.loc[failed, 'song_id'])}" if failed.any() else "")),
        metadata={"answers": answered, "parse_failures": int(failed.sum()), "rate": float(rate),
                  "ceiling": float(ceiling)})


def finite_or_nan(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").astype(float).to_numpy()


def fusion_vs_baselines(comparisons: pd.DataFrame,
                        check_name: str = "fusion_vs_baselines") -> dg.AssetCheckResult:
    """WARN when, in some protocol, the whole 95 % interval of fusion minus the best bare baseline is below 0."""
    rows = comparisons.to_dict(orient="records") if comparisons is not None else []
    judged = [r for r in rows if r.get("best_baseline")]
    losing = [r for r in judged if r.get("fusion_loses")]
    lines = [f"{r['protocol']}: fusion - {r['best_baseline']} = {r['difference']:+.4f} "
             f"(95% CI {r['ci_low']:+.4f}..{r['ci_high']:+.4f}, {r['users']} users)" for r in judged]
    return dg.AssetCheckResult(
        check_name=check_name, passed=not losing, severity=dg.AssetCheckSeverity.WARN,
        description=("the fusion loses to a bare baseline: " if losing else "no loss beyond the interval: ")
        + ("; ".join(lines) if lines else "nothing to compare (no judged users)"),
        metadata={"protocols_compared": len(judged), "protocols_losing": len(losing)})


# --- the specs each asset declares (names used by the assets and the tests) ---

def specs(asset: str, names: Sequence[str], blocking: bool = False) -> list[dg.AssetCheckSpec]:
    descriptions = {
        "unique_song_ids": "no song_id twice in a partition",
        "scores_in_range": "every score present lies in its range ([0, 1]; Audiobox axes 1-10 are not clamped)",
        "scored_share": "the share of the partition's songs with a quality score is above the configured floor",
        "parse_failure_rate": "the share of unparseable Music Flamingo answers is below the configured ceiling",
        "fusion_vs_baselines": "the fusion does not lose to the best bare baseline (BM25, ALS, EASE) beyond the "
                               "paired bootstrap 95% interval, in any evaluation protocol (WARN)",
    }
    return [dg.AssetCheckSpec(name=name, asset=asset, blocking=blocking, description=descriptions[name])
            for name in names]


SONGS_CHECKS = specs("songs", ["unique_song_ids"])
AUDIO_CHECKS_CHECKS = specs("audio_checks", ["unique_song_ids", "scores_in_range"])
FLAMINGO_CHECKS = specs("flamingo_scores", ["unique_song_ids", "scores_in_range", "parse_failure_rate"])
AUDIOBOX_CHECKS = specs("audiobox_scores", ["unique_song_ids", "scores_in_range"])
# These guard the recommender: blocking, so a bad partition stops the run before the refit.
QUALITY_CHECKS = specs("quality_scores",
                       ["unique_song_ids", "scores_in_range", "scored_share", "parse_failure_rate"],
                       blocking=True)
EVALUATION_CHECKS = specs("recommender_evaluation", ["fusion_vs_baselines"])
FLAMINGO_SCORE_COLUMNS = [*DIMENSIONS, "overall_quality_score"]
QUALITY_SCORE_COLUMNS = ["quality_score", "flamingo_score", "audiobox_score", "technical_score"]
