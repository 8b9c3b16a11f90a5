"""Saving a fitted ``HybridRecommender`` without pickle, and loading it only after checking every array.

Layout of a model directory::

    manifest.json      format version, library versions, parameters, fit statistics, data
                       fingerprint, and the sha256 and size of every other file
    songs.parquet      song_id, title, creator label, creator code (catalogue order = matrix rows)
    users.parquet      user_id (rows of the listening matrix and of the ALS user factors)
    <part>.npz         numeric arrays only, read with ``allow_pickle=False``

Loading never runs code from the files, and refuses (``ModelFileError``, a ``ValueError`` naming
the file and the array) anything the query code could not survive: a file whose checksum differs
from the manifest, missing or unexpected arrays, wrong dtypes or shapes, sparse-matrix index
pointers or indices out of bounds (scipy does not check them, and an out-of-range TF-IDF index
crashed the process with a segmentation fault), non-finite values (a quality of inf gave infinite
scores), unknown manifest keys or parameters, and file names that are not plain names.

A directory is written beside its target and swapped in at the end, so a reader never sees half a
model. This module never imports ``hybrid`` (no import circle): ``load_recommender`` is given the
class to build.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sunorecsys.fileio import follow_umask
from sunorecsys.recommenders.base import SongIndex, csr_to_arrays
from sunorecsys.recommenders.content import ContentChannel
from sunorecsys.recommenders.ease import EaseChannel
from sunorecsys.recommenders.item_cf import ItemCFChannel
from sunorecsys.recommenders.prompt_similarity import PromptChannel
from sunorecsys.recommenders.quality_channel import QualityChannel
from sunorecsys.recommenders.quality_filter import QualityFilter
from sunorecsys.recommenders.random_walk import RP3betaChannel
from sunorecsys.recommenders.sequence import SequenceChannel
from sunorecsys.recommenders.user import UserChannel

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
MANIFEST_KEYS = {"format_version", "model", "versions", "params", "weights", "channel_params", "fit_stats",
                 "fitted_at", "data_fingerprint", "quality_scorer", "fusion", "files"}
CHANNEL_CLASSES = {"item_cf": ItemCFChannel, "content": ContentChannel, "prompt": PromptChannel,
                   "user": UserChannel, "quality": QualityChannel, "ease": EaseChannel,
                   "sequence": SequenceChannel, "rp3": RP3betaChannel}
MAX_MANIFEST_BYTES = 50_000_000


class ModelFileError(ValueError):
    """A saved model that cannot be loaded safely; the message names the file and what is wrong."""


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        if np.asarray(arr).dtype.kind == "O":
            raise TypeError(f"{path.name}:{name} is an object array; it would need pickle")
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})


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
        times = model.pair_times_ if model.pair_times_ is not None else np.zeros(model.user_items_.nnz, np.int64)
        _save_npz(tmp / "user_items.npz", {**csr_to_arrays("user_items", model.user_items_),
                                           "user_items_times": np.asarray(times, np.int64)})
        channel_params = {}
        for name, channel in model.channels().items():
            _save_npz(tmp / f"{name}.npz", channel.to_arrays())
            channel_params[name] = channel.params()
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": "HybridRecommender",
            "versions": {p: _version(p) for p in ("sunorecsys", "implicit", "numpy", "scipy", "scikit-learn",
                                                  "pandas")},
            "params": model.get_params(),
            "weights": model.weights,
            "fusion": model.fusion_,
            "channel_params": channel_params,
            "fit_stats": model.fit_stats_,
            "fitted_at": model.fit_stats_.get("fitted_at"),
            "data_fingerprint": data_fingerprint(model),
            "quality_scorer": getattr(model.quality_filter_, "scorer_version_", None),
            "files": {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in sorted(tmp.iterdir())},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        follow_umask(tmp, directory=True)  # mkdtemp's 0700 -> the umask's mode
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


# -- loading: every check raises ModelFileError -----------------------------------------------------

def expected_files(manifest: dict) -> set[str]:
    channels = set(manifest.get("channel_params", {}))
    return {"songs.parquet", "users.parquet", "user_items.npz"} | {f"{c}.npz" for c in channels}


def read_manifest(directory: str | os.PathLike) -> dict:
    """The manifest, checked: version, keys, file list (plain names, the expected set)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no saved recommender at {directory} (missing {MANIFEST})")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ModelFileError(f"{path}: {path.stat().st_size} bytes, larger than any manifest we write")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not a JSON manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{path}: the manifest is not a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format_version {manifest.get('format_version')!r} is not {FORMAT_VERSION} "
                             "(saved by another version of sunorecsys: fit and save the model again)")
    extra = set(manifest) - MANIFEST_KEYS
    missing = {"params", "channel_params", "files", "fit_stats"} - set(manifest)
    if extra or missing:
        raise ModelFileError(f"{path}: unexpected keys {sorted(extra)} / missing keys {sorted(missing)}")
    channels = manifest["channel_params"]
    if not isinstance(channels, dict) or set(channels) - set(CHANNEL_CLASSES) or not \
            {"item_cf", "content", "prompt", "user", "quality"} <= set(channels):
        raise ModelFileError(f"{path}: channel_params names {sorted(channels) if isinstance(channels, dict) else channels!r};"
                             f" expected the channels {sorted(CHANNEL_CLASSES)}")
    files = manifest["files"]
    if not isinstance(files, dict):
        raise ModelFileError(f"{path}: 'files' is not an object")
    for name in files:
        if not isinstance(name, str) or name != Path(name).name or name in ("", ".", "..") or "\\" in name:
            raise ModelFileError(f"{path}: file name {name!r} is not a plain file name")
    if set(files) != expected_files(manifest):
        raise ModelFileError(f"{path}: files {sorted(files)} are not the expected {sorted(expected_files(manifest))}")
    return manifest


def _check_file(directory: Path, name: str, manifest: dict) -> Path:
    path = directory / name
    if path.is_symlink() or not path.is_file():
        raise ModelFileError(f"{path}: missing (or not a regular file)")
    entry = manifest["files"][name]
    if not isinstance(entry, dict) or path.stat().st_size != entry.get("bytes") or _sha256(path) != entry.get("sha256"):
        raise ModelFileError(f"{path}: size or sha256 differs from the manifest (truncated or changed since saved)")
    return path


def _load_npz(path: Path, expected: set[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            if names != expected:
                raise ModelFileError(f"{path.name}: arrays {sorted(names)} are not the expected {sorted(expected)}")
            return {k: data[k] for k in data.files}
    except ModelFileError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ModelFileError(f"{path.name}: unreadable npz ({exc})") from None


def _arr(arrays: dict, file: str, name: str, kind: str, shape: tuple, *, low=None, high=None,
         nan_ok: bool = False) -> np.ndarray:
    """``arrays[name]`` checked: dtype kind ("f" float, "i" integer), shape (None = any), bounds, finite."""
    a = arrays[name]
    where = f"{file}:{name}"
    if kind == "f" and a.dtype.kind != "f":
        raise ModelFileError(f"{where}: dtype {a.dtype}, expected floating point")
    if kind == "i" and a.dtype.kind not in "iu":
        raise ModelFileError(f"{where}: dtype {a.dtype}, expected integers")
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise ModelFileError(f"{where}: shape {a.shape}, expected {tuple('any' if s is None else s for s in shape)}")
    if a.size:
        if kind == "f":
            bad = np.isinf(a) if nan_ok else ~np.isfinite(a)
            if bad.any():
                raise ModelFileError(f"{where}: {int(bad.sum())} non-finite value(s) (inf{'' if nan_ok else '/NaN'})")
        vals = a[~np.isnan(a)] if kind == "f" else a
        if vals.size and low is not None and vals.min() < low:
            raise ModelFileError(f"{where}: value {vals.min()} below {low}")
        if vals.size and high is not None and vals.max() > high:
            raise ModelFileError(f"{where}: value {vals.max()} above {high}")
    return a


def _csr(arrays: dict, file: str, prefix: str, rows: int | None, cols: int | None, *,
         positive: bool = False) -> sp.csr_matrix:
    """A CSR matrix whose shape, index pointers and indices are checked before scipy sees them."""
    shape = _arr(arrays, file, f"{prefix}_shape", "i", (2,), low=0)
    n_rows, n_cols = int(shape[0]), int(shape[1])
    if (rows is not None and n_rows != rows) or (cols is not None and n_cols != cols):
        raise ModelFileError(f"{file}:{prefix}_shape is {(n_rows, n_cols)}, expected "
                             f"{(rows if rows is not None else 'any', cols if cols is not None else 'any')}")
    data = _arr(arrays, file, f"{prefix}_data", "f", (None,), low=1e-30 if positive else None)
    indptr = _arr(arrays, file, f"{prefix}_indptr", "i", (n_rows + 1,), low=0, high=len(data))
    indices = _arr(arrays, file, f"{prefix}_indices", "i", (len(data),), low=0, high=max(n_cols - 1, 0))
    if len(data) and n_cols == 0:
        raise ModelFileError(f"{file}:{prefix}: values in a matrix with no columns")
    if indptr[0] != 0 or indptr[-1] != len(data) or (np.diff(indptr) < 0).any():
        raise ModelFileError(f"{file}:{prefix}_indptr: not a valid index pointer (must rise from 0 to {len(data)})")
    return sp.csr_matrix((data, indices.astype(np.int32), indptr.astype(np.int64)), shape=(n_rows, n_cols))


def _check_params(manifest: dict, model_class) -> dict:
    params = manifest["params"]
    allowed = [p for p in inspect.signature(model_class.__init__).parameters if p != "self"]
    if not isinstance(params, dict) or set(params) - set(allowed):
        extra = sorted(set(params) - set(allowed)) if isinstance(params, dict) else params
        raise ModelFileError(f"{MANIFEST}: unknown parameters {extra!r}")
    for name, value in params.items():
        if name.endswith("_weight") and value is not None and not (
                isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
            raise ModelFileError(f"{MANIFEST}: {name} = {value!r} is not a finite weight >= 0")
    for name, cls in CHANNEL_CLASSES.items():
        cp = manifest["channel_params"].get(name)
        if cp is None:
            continue
        ok = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        if not isinstance(cp, dict) or set(cp) - set(ok):
            raise ModelFileError(f"{MANIFEST}: channel_params[{name!r}] has unknown keys")
    return params


def _channel_arrays(name: str, arrays: dict, n_songs: int, n_users: int) -> None:
    """Checks of one channel's arrays against the catalogue (``n_songs``) and the listeners (``n_users``)."""
    f = f"{name}.npz"
    if name in ("item_cf", "sequence", "rp3"):
        _csr(arrays, f, "similarity", n_songs, n_songs)
    elif name in ("content", "prompt"):
        _csr(arrays, f, "tfidf", n_songs, None)
    elif name == "quality":
        _arr(arrays, f, "quality", "f", (n_songs,), low=0.0, high=1.0, nan_ok=True)
        _arr(arrays, f, "ranking", "i", (None,), low=0, high=n_songs - 1)
        _arr(arrays, f, "neutral", "f", (1,), low=0.0, high=1.0)
    elif name == "user":
        factors = arrays["item_factors"].shape[1] if arrays["item_factors"].ndim == 2 else -1
        _arr(arrays, f, "item_factors", "f", (n_songs, None))
        _arr(arrays, f, "user_factors", "f", (n_users, factors))
        _arr(arrays, f, "pool", "i", (None,), low=0, high=n_songs - 1)
        _arr(arrays, f, "popularity", "f", (n_songs,), low=0.0)
        creators = _arr(arrays, f, "creators", "i", (n_songs,), low=-1)
        _arr(arrays, f, "seed_confidence", "f", (1,), low=1e-12)
        n_creators = int(creators.max()) + 1 if creators.size and creators.max() >= 0 else 0
        _csr(arrays, f, "creator_songs", n_creators, n_songs)
    elif name == "ease":
        pool = _arr(arrays, f, "pool", "i", (None,), low=0, high=n_songs - 1)
        if (np.diff(pool) <= 0).any():
            raise ModelFileError(f"{f}:pool: not strictly increasing song indices")
        _arr(arrays, f, "weights", "f", (len(pool), len(pool)))
        _arr(arrays, f, "l2", "f", (1,), low=0.0)


ARRAY_NAMES = {
    "item_cf": {"similarity_data", "similarity_indices", "similarity_indptr", "similarity_shape"},
    "content": {"tfidf_data", "tfidf_indices", "tfidf_indptr", "tfidf_shape"},
    "prompt": {"tfidf_data", "tfidf_indices", "tfidf_indptr", "tfidf_shape"},
    "quality": {"quality", "ranking", "neutral"},
    "user": {"item_factors", "user_factors", "pool", "popularity", "creators", "seed_confidence",
             "creator_songs_data", "creator_songs_indices", "creator_songs_indptr", "creator_songs_shape"},
    "ease": {"pool", "weights", "l2"},
    "sequence": {"similarity_data", "similarity_indices", "similarity_indptr", "similarity_shape"},
    "rp3": {"similarity_data", "similarity_indices", "similarity_indptr", "similarity_shape"},
}


def load_recommender(directory: str | os.PathLike, model_class):
    """Rebuild a ``model_class`` (``HybridRecommender``) from ``directory``; refuses a damaged folder.

    Raises ``FileNotFoundError`` when there is no manifest, ``ModelFileError`` (a ``ValueError``)
    naming the file and array when anything fails a check.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    params = _check_params(manifest, model_class)
    paths = {name: _check_file(directory, name, manifest) for name in sorted(manifest["files"])}
    try:
        songs = pd.read_parquet(paths["songs.parquet"])
        users = pd.read_parquet(paths["users.parquet"])
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for damaged files
        raise ModelFileError(f"{directory}: unreadable Parquet table ({exc})") from None
    if {"song_id", "title", "creator", "creator_code"} - set(songs) or "user_id" not in users:
        raise ModelFileError(f"{directory}: songs.parquet / users.parquet lack their columns")
    if songs["creator_code"].dtype.kind not in "iu" or (len(songs) and songs["creator_code"].min() < -1):
        raise ModelFileError("songs.parquet: creator_code must be integers >= -1")
    try:
        song_index = SongIndex(songs["song_id"])
    except ValueError as exc:
        raise ModelFileError(f"songs.parquet: {exc}") from None
    n_songs, n_users = len(songs), len(users)

    ui = _load_npz(paths["user_items.npz"], {"user_items_data", "user_items_indices", "user_items_indptr",
                                             "user_items_shape", "user_items_times"})
    user_items = _csr(ui, "user_items.npz", "user_items", n_users, n_songs, positive=True)
    times = _arr(ui, "user_items.npz", "user_items_times", "i", (user_items.nnz,))
    channels = {}
    for name, cp in manifest["channel_params"].items():
        arrays = _load_npz(paths[f"{name}.npz"], ARRAY_NAMES[name])
        _channel_arrays(name, arrays, n_songs, n_users)
        cp = dict(cp)
        if "char_ngrams" in cp:
            cp["char_ngrams"] = tuple(cp["char_ngrams"])
        try:
            channels[name] = CHANNEL_CLASSES[name].from_arrays(arrays, cp)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{name}.npz: {exc}") from None
    if not np.array_equal(channels["user"].creators_, songs["creator_code"].to_numpy(np.int64)):
        raise ModelFileError("user.npz:creators differs from songs.parquet creator_code")

    model = model_class(**params)
    model.songs_ = song_index
    model.titles_ = songs["title"].astype(str).to_numpy()
    model.creator_names_ = songs["creator"].astype(str).to_numpy()
    model.creators_ = songs["creator_code"].to_numpy(np.int64)
    if "spam_flagged" in songs:  # models saved before the spam stage have no flags
        if songs["spam_flagged"].dtype.kind != "b":
            raise ModelFileError("songs.parquet: spam_flagged must be booleans")
        model.spam_flagged_ = songs["spam_flagged"].to_numpy(bool)
    model.users_ = pd.Index(users["user_id"].astype(str))
    model.user_items_ = user_items
    model.pair_times_ = times.astype(np.int64)
    for name, channel in channels.items():
        setattr(model, f"{name}_", channel)
    quality = model.quality_.quality_
    scored = np.isfinite(quality)
    qf = QualityFilter(quality_threshold=model.quality_threshold, missing_quality=model.missing_quality)
    qf.scores_ = dict(zip(model.songs_.ids[scored].astype(str), quality[scored].astype(float)))
    qf.unscored_ = sorted(model.songs_.ids[~scored].astype(str))
    qf.failures_ = {}
    qf.catalogue_ = set(model.songs_.ids.astype(str))
    qf.last_unknown_ids_ = []
    model.quality_filter_ = qf
    model.fusion_ = manifest.get("fusion") or {}
    model.fit_stats_ = manifest["fit_stats"]
    model.manifest_ = manifest
    model._set_query_state()
    model.last_unknown_seeds = []
    model.last_unknown_user = None
    return model
