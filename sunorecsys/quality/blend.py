"""One quality score per song from whatever sources exist for it.

Sources are joined by ``song_id`` (never by position). The model sources are weighted (guide:
0.6 Music Flamingo, 0.4 Audiobox) and the weights renormalised over the sources a song has; when a
song has no model score its signal technical score stands in (source ``signal``); a signal
hard fail (silent, undecodable, ...) forces the score to 0 whatever the models said.

Unscored is not bad: a song whose audio could not be had (missing file, fetch failed, host down)
was never heard, so it gets no score (NaN, never 0.0) and ``unscored_reason``
``"audio_unavailable: <reason>"``; recommenders treat it by their ``missing_quality`` policy.
A song no source covers at all is ``"no_source"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from sunorecsys.audio.errors import UNAVAILABLE_REASONS

DEFAULT_WEIGHTS: dict[str, float] = {"music_flamingo": 0.6, "audiobox": 0.4}
BLEND_COLUMNS = ["song_id", "quality_score", "sources", "coverage", "hard_fail",
                 "flamingo_score", "audiobox_score", "technical_score", "unscored_reason"]
# Arrow types of the blend's columns, so an empty day writes the same schema as a full one.
BLEND_SCHEMA = pa.schema([
    pa.field("song_id", pa.string()), pa.field("quality_score", pa.float64()),
    pa.field("sources", pa.list_(pa.string())), pa.field("coverage", pa.float64()),
    pa.field("hard_fail", pa.bool_()), pa.field("flamingo_score", pa.float64()),
    pa.field("audiobox_score", pa.float64()), pa.field("technical_score", pa.float64()),
    pa.field("unscored_reason", pa.string()),
])
UNAVAILABLE_PREFIX = "audio_unavailable: "
NO_SOURCE = "no_source"
_OK = ("ok", "partial")


def _one_per_song(frame: pd.DataFrame, name: str, value_col: str) -> pd.DataFrame:
    if "song_id" not in frame.columns or value_col not in frame.columns:
        raise ValueError(f"{name}: needs columns song_id and {value_col}, has {list(frame.columns)}")
    dupes = frame["song_id"][frame["song_id"].duplicated()].unique()
    if len(dupes):
        raise ValueError(f"{name}: duplicate song_id {list(dupes[:5])} (one row per song expected)")
    return frame


def _usable(frame: pd.DataFrame, value_col: str) -> pd.Series:
    """song_id -> score for rows that succeeded and hold a finite score in [0, 1]."""
    ok = frame["status"].isin(_OK) if "status" in frame.columns else pd.Series(True, index=frame.index)
    values = pd.to_numeric(frame[value_col], errors="coerce")
    ok &= values.between(0.0, 1.0)
    return pd.Series(values[ok].to_numpy(dtype=float), index=frame.loc[ok, "song_id"].astype(str))


def combine_quality_scores(audio_checks: pd.DataFrame | None = None, flamingo: pd.DataFrame | None = None,
                           audiobox: pd.DataFrame | None = None,
                           weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Blend per-song scores (see module docstring); columns :data:`BLEND_COLUMNS`, sorted by song_id.

    audio_checks: needs song_id, technical_score, hard_fail. flamingo: song_id, status,
    overall_quality_score. audiobox: song_id, status, audiobox_score. weights: over 'music_flamingo'
    and 'audiobox' (non-negative, not all zero). quality_score in [0, 1], NaN when no source;
    coverage = sum of the model weights present / their total (0 for signal-only).
    unscored_reason: None when scored; ``"audio_unavailable: <status>"`` when audio_checks' status
    says the audio could not be had (it needs a ``status`` column for that), else ``"no_source"``.
    """
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    unknown = set(w) - set(DEFAULT_WEIGHTS)
    if unknown or any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"weights must be non-negative over {sorted(DEFAULT_WEIGHTS)}, not all zero: {w}")
    w = {k: float(w.get(k, 0.0)) for k in DEFAULT_WEIGHTS}
    ids: set[str] = set()
    flam = pd.Series(dtype=float)
    abox = pd.Series(dtype=float)
    tech = pd.Series(dtype=float)
    hard = pd.Series(dtype=bool)
    unheard = pd.Series(dtype=object)
    if flamingo is not None:
        flam = _usable(_one_per_song(flamingo, "flamingo", "overall_quality_score"), "overall_quality_score")
        ids |= set(flamingo["song_id"].astype(str))
    if audiobox is not None:
        abox = _usable(_one_per_song(audiobox, "audiobox", "audiobox_score"), "audiobox_score")
        ids |= set(audiobox["song_id"].astype(str))
    if audio_checks is not None:
        checks = _one_per_song(audio_checks, "audio_checks", "technical_score")
        sid = checks["song_id"].astype(str)
        tech = pd.Series(pd.to_numeric(checks["technical_score"], errors="coerce").to_numpy(float), index=sid)
        hard = pd.Series(checks["hard_fail"].astype("boolean").fillna(False).to_numpy(dtype=bool)
                         if "hard_fail" in checks.columns else np.zeros(len(checks), bool), index=sid)
        if "status" in checks.columns:
            status = pd.Series(checks["status"].astype(object).to_numpy(), index=sid)
            unheard = status[status.isin(UNAVAILABLE_REASONS)]
            # rows written before unheard audio stopped counting as a hard fail: not a defect either
            hard = hard & ~hard.index.isin(unheard.index)
        ids |= set(sid)
    # object dtype even when empty: an empty day must not turn song_id into float64
    out = pd.DataFrame({"song_id": pd.Series(sorted(ids), dtype=object)})
    out["flamingo_score"] = out["song_id"].map(flam).astype(float)
    out["audiobox_score"] = out["song_id"].map(abox).astype(float)
    out["technical_score"] = out["song_id"].map(tech).astype(float)
    out["hard_fail"] = out["song_id"].isin(hard.index[hard.to_numpy(dtype=bool)])
    has_f = out["flamingo_score"].notna() & (w["music_flamingo"] > 0)
    has_a = out["audiobox_score"].notna() & (w["audiobox"] > 0)
    weight_sum = has_f * w["music_flamingo"] + has_a * w["audiobox"]
    weighted = (out["flamingo_score"].fillna(0) * has_f * w["music_flamingo"]
                + out["audiobox_score"].fillna(0) * has_a * w["audiobox"])
    model_score = (weighted / weight_sum.where(weight_sum > 0)).astype(float)
    signal_only = (weight_sum == 0) & out["technical_score"].notna()
    quality = model_score.where(weight_sum > 0, out["technical_score"].where(signal_only))
    quality = quality.where(~out["hard_fail"], 0.0)
    quality = quality.where(~(out["song_id"].isin(unheard.index) & (weight_sum == 0)), np.nan)  # old rows: 0
    out["quality_score"] = quality.clip(0.0, 1.0).astype(float)
    out["coverage"] = (weight_sum / sum(w.values())).astype(float)
    out["sources"] = pd.Series([
        [name for name, present in (("music_flamingo", f), ("audiobox", a), ("signal", s or h)) if present]
        for f, a, s, h in zip(has_f, has_a, signal_only, out["hard_fail"])
    ], index=out.index, dtype=object)
    reason = out["song_id"].map(unheard).map(lambda r: f"{UNAVAILABLE_PREFIX}{r}", na_action="ignore")
    out["unscored_reason"] = reason.where(out["quality_score"].isna(), None).astype(object)
    out.loc[out["quality_score"].isna() & out["unscored_reason"].isna(), "unscored_reason"] = NO_SOURCE
    return out[BLEND_COLUMNS]
