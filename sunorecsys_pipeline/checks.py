"""Asset checks on each partition's data.

The checks run inside the asset's own step, on the frame it has just written (``check_specs`` +
``MaterializeResult(check_results=...)``): that way they know their partition and never load
other partitions (an ``@asset_check`` loading a partitioned input loads all of them).

Blocking checks guard against *broken outputs* (duplicate ids, values out of range, songs lost,
unparseable model answers): a day that fails one is written aside and the last good partition
stays (tables.py), and the run stops before the recommender is refitted. An audio *outage* is not
a broken output: ``heard_share`` (warning severity, not blocking) flags a day where too few songs
were heard and names the reasons; those songs are unscored and retried by later runs.

Each function takes one day's frame and returns an ``AssetCheckResult`` whose description names
the offending songs; :func:`combine` folds the days of a multi-day step into one result.
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


def songs_accounted_for(quality: pd.DataFrame, song_ids: Iterable[object],
                        check_name: str = "songs_accounted_for") -> dg.AssetCheckResult:
    """Fails when a song of the songs partition has no row, or a row with neither a score nor an
    ``unscored_reason`` other than ``no_source`` (a song silently lost). Songs unscored because
    their audio could not be had (``audio_unavailable: ...``) are accounted for."""
    expected = {str(s) for s in song_ids}
    present = set(quality["song_id"].astype(str)) if len(quality) else set()
    lost = sorted(expected - present)
    if len(quality):
        score = pd.to_numeric(quality["quality_score"], errors="coerce")
        reason = quality["unscored_reason"] if "unscored_reason" in quality else pd.Series(None, index=quality.index)
        # "no_source": heard audio always gets a signal score, so no source at all means a scorer's
        # output lost the song (e.g. audio_checks is missing its row): a broken output, not a reason
        silent = sorted(quality.loc[score.isna() & (reason.isna() | (reason == "no_source")), "song_id"].astype(str))
    else:
        silent = []
    problems = []
    if lost:
        problems.append(f"{len(lost)} song(s) of the songs partition have no quality row: {_names(lost)}")
    if silent:
        problems.append(f"{len(silent)} song(s) have no score and no audio_unavailable reason (a scorer "
                        f"lost them): {_names(silent)}")
    return dg.AssetCheckResult(
        check_name=check_name, passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or f"all {len(expected)} songs scored or unscored with a reason",
        metadata={"songs": len(expected), "lost": len(lost), "without_reason": len(silent)})


def heard_share(quality: pd.DataFrame, floor: float, check_name: str = "heard_share") -> dg.AssetCheckResult:
    """Warns (not blocking) when the share of the day's songs whose audio was heard is below ``floor``.

    A song was not heard when its ``unscored_reason`` starts with ``audio_unavailable:``; the
    description counts the reasons. An empty day passes.
    """
    n = len(quality)
    reasons = (quality["unscored_reason"].dropna().astype(str) if n and "unscored_reason" in quality
               else pd.Series(dtype=str))
    unheard = reasons[reasons.str.startswith("audio_unavailable:")]
    heard = n - len(unheard)
    share = heard / n if n else 1.0
    counts = unheard.value_counts()
    named = ", ".join(f"{reason} ({count})" for reason, count in counts.items())
    return dg.AssetCheckResult(
        check_name=check_name, passed=bool(share >= floor), severity=dg.AssetCheckSeverity.WARN,
        description=(f"{heard} of {n} songs heard ({share:.0%}, floor {floor:.0%})"
                     + (f"; unscored: {named}" if named else "")),
        metadata={"heard": heard, "songs": n, "share": float(share), "floor": float(floor),
                  **{f"reason/{k}": int(v) for k, v in counts.items()}})


def songs_within_partitions(n_outside: int, message: str,
                            check_name: str = "songs_within_partitions") -> dg.AssetCheckResult:
    """Warns when ingested songs fall on days outside the partitions (``message`` says what to set)."""
    return dg.AssetCheckResult(
        check_name=check_name, passed=n_outside == 0, severity=dg.AssetCheckSeverity.WARN,
        description=message if n_outside else "every song falls on a daily partition",
        metadata={"songs_outside_partitions": int(n_outside)})


def combine(results: Sequence[tuple[str, dg.AssetCheckResult]]) -> dg.AssetCheckResult:
    """One result for a multi-day step: passed when every day passed; the description names the
    days that failed (or summarises when all passed); numeric metadata is summed over days."""
    if len(results) == 1:
        return results[0][1]
    first = results[0][1]
    failed = [(day, r) for day, r in results if not r.passed]
    meta: dict[str, float] = {}
    for _, r in results:
        for k, v in (r.metadata or {}).items():
            value = getattr(v, "value", v)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and k not in {"floor", "ceiling", "share", "rate"}:
                meta[k] = meta.get(k, 0) + value
    text = ("; ".join(f"{day}: {r.description}" for day, r in failed[:MAX_NAMED])
            + (f"; and {len(failed) - MAX_NAMED} more days" if len(failed) > MAX_NAMED else "")
            if failed else f"passed on all {len(results)} days")
    return dg.AssetCheckResult(check_name=first.check_name, passed=not failed, severity=first.severity,
                               description=text, metadata={**meta, "days": len(results),
                                                           "days_failed": len(failed)})


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
        "songs_accounted_for": "every song of the songs partition has a quality row with a score or an "
                               "unscored_reason (nothing silently lost)",
        "heard_share": "warning: the share of the day's songs whose audio was heard is above the floor "
                       "(QualityGatesResource.min_heard_share); names the reasons of the unheard songs",
        "parse_failure_rate": "the share of unparseable Music Flamingo answers is below the configured ceiling",
        "songs_within_partitions": "warning: every ingested song falls on a daily partition (else set "
                                   "SUNORECSYS_PARTITIONS_START)",
        "fusion_vs_baselines": "the fusion does not lose to the best bare baseline (BM25, ALS, EASE) beyond the "
                               "paired bootstrap 95% interval, in any evaluation protocol (WARN)",
    }
    return [dg.AssetCheckSpec(name=name, asset=asset, blocking=blocking, description=descriptions[name])
            for name in names]


RAW_SONGS_CHECKS = specs("raw_songs", ["songs_within_partitions"])
SONGS_CHECKS = specs("songs", ["unique_song_ids"])
AUDIO_CHECKS_CHECKS = specs("audio_checks", ["unique_song_ids", "scores_in_range"])
FLAMINGO_CHECKS = specs("flamingo_scores", ["unique_song_ids", "scores_in_range", "parse_failure_rate"])
AUDIOBOX_CHECKS = specs("audiobox_scores", ["unique_song_ids", "scores_in_range"])
# These guard the recommender against broken outputs: blocking, so a bad partition stops the run
# before the refit (and is not promoted). heard_share only warns: an outage is not a broken output.
QUALITY_CHECKS = (specs("quality_scores",
                        ["unique_song_ids", "scores_in_range", "songs_accounted_for", "parse_failure_rate"],
                        blocking=True)
                  + specs("quality_scores", ["heard_share"]))
EVALUATION_CHECKS = specs("recommender_evaluation", ["fusion_vs_baselines"])
FLAMINGO_SCORE_COLUMNS = [*DIMENSIONS, "overall_quality_score"]
QUALITY_SCORE_COLUMNS = ["quality_score", "flamingo_score", "audiobox_score", "technical_score"]
