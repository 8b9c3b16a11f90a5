"""Materialization metadata people read in the UI: row counts, a Markdown preview, histograms.

Histograms are PNGs drawn with matplotlib's Agg backend and embedded in Markdown as a base64 data
URI (``MetadataValue.md``), so they show in the asset page with no file server.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

PREVIEW_ROWS = 10
PREVIEW_CELL_CHARS = 60


def _short(value: object) -> object:
    if isinstance(value, (list, tuple, np.ndarray)):
        value = ", ".join(map(str, list(value)))
    if isinstance(value, str) and len(value) > PREVIEW_CELL_CHARS:
        return value[:PREVIEW_CELL_CHARS - 1] + "…"
    return value


def preview_md(frame: pd.DataFrame, columns: Iterable[str] | None = None, rows: int = PREVIEW_ROWS
               ) -> dg.MetadataValue:
    """The first ``rows`` rows as a Markdown table (long cells and lists shortened)."""
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    head = frame.head(rows).map(_short) if len(frame) else frame
    if not len(head):
        return dg.MetadataValue.md("_(no rows)_")
    return dg.MetadataValue.md(head.to_markdown(index=False))


def counts_md(counts: Mapping[str, object], key: str = "value", value: str = "count") -> dg.MetadataValue:
    """A two-column Markdown table from a mapping (e.g. failure reason -> songs)."""
    if not counts:
        return dg.MetadataValue.md("_(none)_")
    return dg.MetadataValue.md(pd.DataFrame({key: list(counts), value: list(counts.values())})
                               .to_markdown(index=False))


def png_md(png: bytes, title: str) -> dg.MetadataValue:
    """Markdown that shows a PNG inline (base64 data URI)."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def histogram_png(values: Iterable[float], title: str, xlabel: str, bins: int = 20,
                  value_range: tuple[float, float] | None = (0.0, 1.0)) -> bytes:
    """A histogram of the finite ``values`` as PNG bytes (empty input draws an empty axis)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    data = np.asarray([v for v in values if v is not None], dtype=float)
    data = data[np.isfinite(data)]
    fig = Figure(figsize=(5, 3), dpi=90)
    ax = fig.subplots()
    ax.hist(data, bins=bins, range=value_range, color="#4c72b0", edgecolor="white")
    ax.set_title(f"{title} (n={data.size})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("songs")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def histogram_md(values: Iterable[float], title: str, xlabel: str = "score",
                 value_range: tuple[float, float] | None = (0.0, 1.0)) -> dg.MetadataValue:
    """A histogram embedded as Markdown (see :func:`histogram_png`)."""
    return png_md(histogram_png(values, title, xlabel, value_range=value_range), title)


def table_metadata(frame: pd.DataFrame, path: Path | None = None) -> dict[str, dg.MetadataValue]:
    """Row count (``dagster/row_count``, shown in the asset catalog), preview and file path."""
    meta: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(len(frame)),
        "preview": preview_md(frame),
    }
    if path is not None:
        meta["path"] = dg.MetadataValue.path(str(path))
    return meta


# Dagster copies a multi-day step's metadata onto every partition's materialization event (and
# its index): a 365-day backfill with histograms and previews would store ~60 KB x 365 per asset.
RANGE_DETAIL_DAYS = 7
MAX_RANGE_MD_CHARS = 2000


def for_days(meta: dict[str, dg.MetadataValue | Callable[[], dg.MetadataValue]],
             days: int) -> dict[str, dg.MetadataValue]:
    """``meta`` as is for up to :data:`RANGE_DETAIL_DAYS` days; for a longer range, without the
    large Markdown values (histograms, previews, long tables), with a note saying so.

    A value may be a zero-argument callable (a histogram): it is drawn only when it is kept, so a
    long range does not pay matplotlib for a picture it drops (about a second per histogram)."""
    if days <= RANGE_DETAIL_DAYS:
        return {k: v() if callable(v) else v for k, v in meta.items()}
    slim = {k: v for k, v in meta.items()
            if not callable(v) and not (isinstance(v, dg.MetadataValue) and isinstance(getattr(v, "value", None), str)
                                        and len(v.value) > MAX_RANGE_MD_CHARS)}
    slim["detail"] = dg.MetadataValue.text(
        f"a {days}-day range: histograms and previews left out (this metadata is stored once per "
        "partition); query the Parquet partitions for detail")
    return slim
