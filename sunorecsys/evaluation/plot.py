"""The quality/accuracy trade-off plot (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


def plot_quality_tradeoff(sweep: pd.DataFrame, path: str | os.PathLike, *, k: int = 10,
                          current_threshold: float | None = None) -> Path:
    """Accuracy (NDCG@k, Recall@k) and quality (mean quality, share damaged) across thresholds."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    x = sweep["quality_threshold"]
    ax.plot(x, sweep[f"ndcg@{k}"], "o-", color="tab:blue", label=f"NDCG@{k}")
    ax.plot(x, sweep[f"recall@{k}"], "s--", color="tab:cyan", label=f"Recall@{k}")
    ax.set_xlabel("quality threshold")
    ax.set_ylabel("accuracy")
    right = ax.twinx()
    right.plot(x, sweep["mean_quality"], "^-", color="tab:green", label="mean quality of recommended")
    if "share_damaged" in sweep:
        right.plot(x, sweep["share_damaged"], "v:", color="tab:red", label="share damaged")
    right.plot(x, sweep["coverage"], "d-.", color="tab:gray", label="catalogue coverage")
    right.set_ylabel("quality / share")
    right.set_ylim(0, 1)
    if current_threshold is not None:
        ax.axvline(current_threshold, color="black", lw=0.8, alpha=0.5)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(handles, labels, loc="lower left", fontsize=8)
    ax.set_title("Quality filter: accuracy vs quality of recommendations")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
