"""Saving a fitted ``HybridRecommender`` without pickle: arrays (npz), tables (Parquet), JSON manifest.

Layout of a model directory::

    manifest.json      format version, library versions, parameters, fit statistics, data fingerprint
    songs.parquet      song_id, title, creator label, creator code (catalogue order = matrix rows)
    users.parquet      user_id (rows of the listening matrix and of the ALS user factors)
    <part>.npz         numeric arrays only, read with ``allow_pickle=False``

Loading therefore never runs code from the files. A directory is written beside its target and
swapped in at the end, so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from sunorecsys.recommenders.base import SongIndex, csr_from_arrays, csr_to_arrays

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def data_fingerprint(model) -> str:
    """sha256 over the catalogue ids and the listening matrix: same data, same fingerprint."""
    h = hashlib.sha256()
    h.update("\n".join(model.songs_.ids.astype(str)).encode())
    h.update("\n".join(model.users_.astype(str)).encode())
    for arr in (model.user_items_.indptr, model.user_items_.indices, model.user_items_.data):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(np.nan_to_num(model.quality_.quality_, nan=-1.0).astype(np.float32).tobytes())
    return h.hexdigest()


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        if np.asarray(arr).dtype.kind == "O":
            raise TypeError(f"{path.name}:{name} is an object array; it would need pickle")
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_recommender(model, directory: str | os.PathLike) -> Path:
    """Write ``model`` to ``directory`` (replaced as a whole); returns the directory."""
    model._check_fitted()
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        pd.DataFrame({"song_id": model.songs_.ids.astype(str), "title": model.titles_.astype(str),
                      "creator": model.creator_names_.astype(str), "creator_code": model.creators_,
                      "spam_flagged": getattr(model, "spam_flagged_", np.zeros(len(model.songs_.ids), bool))}
                     ).to_parquet(tmp / "songs.parquet", index=False)
        pd.DataFrame({"user_id": model.users_.astype(str)}).to_parquet(tmp / "users.parquet", index=False)
        _save_npz(tmp / "user_items.npz", csr_to_arrays("user_items", model.user_items_))
        channel_params = {}
        for name, channel in model.channels().items():
            _save_npz(tmp / f"{name}.npz", channel.to_arrays())
            channel_params[name] = channel.params()
        params = model.get_params()
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": "HybridRecommender",
            "versions": {p: _version(p) for p in ("sunorecsys", "implicit", "numpy", "scipy", "scikit-learn",
                                                  "pandas")},
            "params": params,
            "weights": model.weights,
            "channel_params": channel_params,
            "fit_stats": model.fit_stats_,
            "fitted_at": model.fit_stats_.get("fitted_at"),
            "data_fingerprint": data_fingerprint(model),
            "quality_scorer": getattr(model.quality_filter_, "scorer_version_", None),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_manifest(directory: str | os.PathLike) -> dict:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no saved recommender at {directory} (missing {MANIFEST})")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {manifest.get('format_version')} is not {FORMAT_VERSION}")
    return manifest


def load_recommender(directory: str | os.PathLike):
    """Rebuild a ``HybridRecommender`` from ``directory`` (arrays only; ``allow_pickle=False``)."""
    from sunorecsys.recommenders.content import ContentChannel
    from sunorecsys.recommenders.hybrid import HybridRecommender
    from sunorecsys.recommenders.item_cf import ItemCFChannel
    from sunorecsys.recommenders.prompt_similarity import PromptChannel
    from sunorecsys.recommenders.quality_channel import QualityChannel
    from sunorecsys.recommenders.quality_filter import QualityFilter
    from sunorecsys.recommenders.user import UserChannel

    directory = Path(directory)
    manifest = read_manifest(directory)
    model = HybridRecommender(**manifest["params"])
    songs = pd.read_parquet(directory / "songs.parquet")
    model.songs_ = SongIndex(songs["song_id"])
    model.titles_ = songs["title"].astype(str).to_numpy()
    model.creator_names_ = songs["creator"].astype(str).to_numpy()
    model.creators_ = songs["creator_code"].to_numpy(np.int64)
    if "spam_flagged" in songs:  # models saved before the spam stage have no flags
        model.spam_flagged_ = songs["spam_flagged"].to_numpy(bool)
    model.users_ = pd.Index(pd.read_parquet(directory / "users.parquet")["user_id"].astype(str))
    model.user_items_ = csr_from_arrays("user_items", _load_npz(directory / "user_items.npz"))
    classes = {"item_cf": ItemCFChannel, "content": ContentChannel, "prompt": PromptChannel,
               "user": UserChannel, "quality": QualityChannel}
    cp = manifest["channel_params"]
    for name, cls in classes.items():
        params = dict(cp.get(name, {}))
        if "char_ngrams" in params:
            params["char_ngrams"] = tuple(params["char_ngrams"])
        setattr(model, f"{name}_", cls.from_arrays(_load_npz(directory / f"{name}.npz"), params))
    quality = model.quality_.quality_
    scored = np.isfinite(quality)
    qf = QualityFilter(quality_threshold=model.quality_threshold, missing_quality=model.missing_quality)
    qf.scores_ = dict(zip(model.songs_.ids[scored].astype(str), quality[scored].astype(float)))
    qf.unscored_ = sorted(model.songs_.ids[~scored].astype(str))
    qf.failures_ = {}
    model.quality_filter_ = qf
    model.fit_stats_ = manifest["fit_stats"]
    model.manifest_ = manifest
    model.last_unknown_seeds = []
    model.last_unknown_user = None
    return model
