"""Meta's Audiobox Aesthetics as a scorer: CE, CU, PC, PQ per song from a local checkpoint.

Inference follows the package's own (``audiobox_aesthetics.infer.AesPredictor``): 16 kHz mono,
10-second windows with a 10-second hop, the last window zero-padded with a mask, the model's
outputs de-normalised with the checkpoint's ``target_transform`` (``pred * std + mean``) and the
window predictions averaged weighted by each window's real length. The differences: audio is
decoded by :mod:`sunorecsys.audio` (soundfile + soxr; torchaudio is never used), and the weights
come only from a local path (never downloaded).

Scores: ``ce, cu, pc, pq`` on the model's human 1-10 scale (not clamped, as the model gives them);
``*_norm = clip((x - 1) / 9, 0, 1)``; ``audiobox_score`` = mean of the four norms, in [0, 1].

A :class:`~sunorecsys.quality.base.ScoreResult` from this scorer holds those nine numbers in
``scores``, ``audiobox_score`` as ``overall_quality_score``, and ``fields`` = ``{"windows": int,
"duration_s": float}`` (seconds scored).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sunorecsys.audio import AudioUnavailable, load_song_audio
from sunorecsys.paths import DataPaths

if TYPE_CHECKING:  # torch and the model load only when a scorer is used
    from audiobox_aesthetics.model.aes import AesMultiOutput

    from sunorecsys.quality.base import ScoreResult

CODE_VERSION = "audiobox-scorer/1"
AXES: tuple[str, ...] = ("CE", "CU", "PC", "PQ")
SAMPLE_RATE = 16000
WINDOW_S = 10.0
HF_REPO_ID = "facebook/audiobox-aesthetics"
WEIGHT_FILES = ("model.safetensors", "checkpoint.pt")
TABLE_COLUMNS: list[str] = [
    "song_id", "status", "ce", "cu", "pc", "pq", "ce_norm", "cu_norm", "pc_norm", "pq_norm",
    "audiobox_score", "scorer_version", "audio_sha256", "error",
]


# The audiobox_scores table's Arrow schema (for write_partition(..., schema=AUDIOBOX_SCORES_SCHEMA)).
AUDIOBOX_SCORES_SCHEMA = pa.schema([
    pa.field(name, pa.float64()) if name in TABLE_COLUMNS[2:11] else pa.field(name, pa.string())
    for name in TABLE_COLUMNS
])


class AudioboxWeightsMissing(FileNotFoundError):
    """The Audiobox Aesthetics checkpoint is not where we were told (we never download it)."""


def _missing_message(path: object, what: str) -> str:
    return (
        f"Audiobox Aesthetics weights not found: {what} ({path!s}). sunorecsys never downloads model "
        f"weights. On a machine with internet run `huggingface-cli download {HF_REPO_ID} --local-dir "
        f"audiobox-aesthetics` (a folder with config.json and model.safetensors; the package's "
        f"checkpoint.pt also works), copy it here and pass its path: --audiobox-checkpoint PATH "
        f"(or AudioboxAestheticsScorer(checkpoint_path=PATH))."
    )


def checkpoint_file(checkpoint_path: str | os.PathLike | None) -> Path:
    """The weights file behind ``checkpoint_path`` (a folder from the hub or a ``.pt`` file).

    Raises :class:`AudioboxWeightsMissing` with how to provide the weights.
    """
    if checkpoint_path is None or str(checkpoint_path) == "":
        raise AudioboxWeightsMissing(_missing_message(checkpoint_path, "no checkpoint path given"))
    path = Path(checkpoint_path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file():
                if name == "model.safetensors" and not (path / "config.json").is_file():
                    raise AudioboxWeightsMissing(_missing_message(path, "model.safetensors without config.json"))
                return path / name
        raise AudioboxWeightsMissing(_missing_message(path, f"folder holds none of {', '.join(WEIGHT_FILES)}"))
    raise AudioboxWeightsMissing(_missing_message(path, "path does not exist"))


def load_audiobox_model(checkpoint_path: str | os.PathLike, device: str = "cpu") -> AesMultiOutput:
    """The package's ``AesMultiOutput`` with local weights, in eval mode on ``device``.

    A folder is loaded with ``from_pretrained`` (config.json + model.safetensors, as on the hub);
    a ``.pt`` file (the package's original format) with ``torch.load(weights_only=True)``, which
    reads tensors and plain containers only and never runs code.
    """
    import torch
    from audiobox_aesthetics.model.aes import AesMultiOutput

    weights = checkpoint_file(checkpoint_path)
    with warnings.catch_warnings():
        # WavLM's weight_norm deprecation notice, once per load: the package's code, not ours.
        warnings.simplefilter("ignore", FutureWarning)
        model = _build_model(AesMultiOutput, weights, torch)
    if not model.target_transform or any(axis not in model.target_transform for axis in AXES):
        raise ValueError(f"{weights}: checkpoint has no target_transform for {AXES}; cannot de-normalise")
    return model.to(device).eval()


def _build_model(AesMultiOutput, weights: Path, torch):
    if weights.suffix == ".safetensors":
        model = AesMultiOutput.from_pretrained(str(weights.parent), local_files_only=True)
    else:
        ckpt = torch.load(weights, map_location="cpu", weights_only=True)
        cfg_keys = ("proj_num_layer", "proj_ln", "proj_act_fn", "proj_dropout", "nth_layer",
                    "use_weighted_layer_sum", "precision", "normalize_embed", "output_dim")
        model = AesMultiOutput(**{k: ckpt["model_cfg"][k] for k in cfg_keys if k in ckpt["model_cfg"]},
                               target_transform=ckpt["target_transform"])
        state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
        model.load_state_dict(state)
    return model


def windows(wav: np.ndarray, sample_rate: int = SAMPLE_RATE, window_s: float = WINDOW_S
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut mono ``wav`` into consecutive windows of ``window_s`` seconds (hop = window).

    Returns ``(frames (k, L) float32, mask (k, L) bool True on real samples, weights (k,) =
    real length / L)``; the last window is zero-padded. ``wav`` must be non-empty.
    """
    length = round(window_s * sample_rate)
    count = max(1, math.ceil(wav.shape[0] / length))
    frames = np.zeros((count, length), dtype=np.float32)
    mask = np.zeros((count, length), dtype=bool)
    weights = np.zeros(count, dtype=np.float64)
    for i in range(count):
        piece = wav[i * length:(i + 1) * length]
        frames[i, : piece.shape[0]] = piece
        mask[i, : piece.shape[0]] = True
        weights[i] = piece.shape[0] / length
    return frames, mask, weights


def normalise(value: float) -> float:
    """A 1-10 model score to [0, 1]: ``clip((value - 1) / 9, 0, 1)``."""
    return float(min(max((value - 1.0) / 9.0, 0.0), 1.0))


def _checkpoint_identity(weights: Path) -> str:
    stat = weights.stat()
    return _hash_file(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _hash_file(weights: str, size: int, mtime_ns: int) -> str:
    # Keyed by size and mtime too: a replaced file is hashed again (hashing 380 MB takes ~1 s).
    digest = hashlib.sha256()
    with open(weights, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class AudioboxAestheticsScorer:
    """Scores songs with Audiobox Aesthetics (see the module docstring for the numbers produced).

    checkpoint_path: a local folder (``config.json`` + ``model.safetensors``) or ``checkpoint.pt``;
    checked at construction, loaded on first use. batch_size: 10-second windows per forward pass.
    max_seconds: score only the first seconds of each song (None = all). window_s: window length
    (10 s as the model was trained; other values are for tests only). ``fetch_kw`` go to
    :func:`sunorecsys.audio.resolve_audio_path` (e.g. ``fetch=False``).
    """

    name = "audiobox"

    def __init__(self, checkpoint_path: str | os.PathLike, device: str = "cpu", batch_size: int = 4,
                 paths: DataPaths | None = None, max_seconds: float | None = None,
                 window_s: float = WINDOW_S, **fetch_kw: Any) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.device = device
        self.batch_size = batch_size
        self.paths = paths
        self.max_seconds = max_seconds
        self.window_s = window_s
        self.fetch_kw = fetch_kw
        self._weights = checkpoint_file(checkpoint_path)
        self._identity: str | None = None
        self._model: AesMultiOutput | None = None

    @property
    def version(self) -> str:
        """``audiobox-aesthetics@<sha256[:16] of the weights file>+<code version>[+window]``."""
        if self._identity is None:
            self._identity = _checkpoint_identity(self._weights)
        window = "" if self.window_s == WINDOW_S else f"+w{self.window_s:g}s"
        return f"audiobox-aesthetics@{self._identity}+{CODE_VERSION}{window}"

    @property
    def model(self) -> AesMultiOutput:
        if self._model is None:
            self._model = load_audiobox_model(self.checkpoint_path, self.device)
        return self._model

    def predict_windows(self, frames: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """De-normalised predictions (1-10 scale) per window, ``{axis: (k,) float64}``."""
        import torch

        model = self.model
        outputs: dict[str, list[np.ndarray]] = {axis: [] for axis in AXES}
        with torch.inference_mode(), warnings.catch_warnings():
            # torch's notice about WavLM's mixed bool/float attention masks (the package's code).
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            for start in range(0, frames.shape[0], self.batch_size):
                wav = torch.from_numpy(frames[start:start + self.batch_size]).unsqueeze(1).to(self.device)
                msk = torch.from_numpy(mask[start:start + self.batch_size]).unsqueeze(1).to(self.device)
                preds = model({"wav": wav, "mask": msk})
                for axis in AXES:
                    transform = model.target_transform[axis]
                    raw = preds[axis].float().cpu().numpy().astype(np.float64).reshape(-1)
                    outputs[axis].append(raw * float(transform["std"]) + float(transform["mean"]))
        return {axis: np.concatenate(parts) for axis, parts in outputs.items()}

    def score_waveforms(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """Length-weighted window means per 16 kHz mono waveform, ``[{CE, CU, PC, PQ}]`` (1-10 scale).

        Windows of all waveforms share batches, as in the package's own inference.
        """
        cut = [windows(w, SAMPLE_RATE, self.window_s) for w in waveforms]
        if not cut:
            return []
        frames = np.concatenate([c[0] for c in cut])
        mask = np.concatenate([c[1] for c in cut])
        preds = self.predict_windows(frames, mask)
        results, offset = [], 0
        for _, _, weights in cut:
            sl = slice(offset, offset + weights.shape[0])
            offset += weights.shape[0]
            results.append({axis: float(np.sum(preds[axis][sl] * weights) / np.sum(weights)) for axis in AXES})
        return results

    def score_batch(self, songs: pd.DataFrame | Iterable[Mapping], paths: DataPaths | None = None
                    ) -> list[ScoreResult]:
        """One :class:`ScoreResult` per song, in order; a song without usable audio is ``failed``
        with the AudioUnavailable reason in ``error`` (never an exception for one bad song).

        Songs are decoded and scored ``batch_size`` at a time, so memory stays bounded however
        many songs are passed. The model is loaded first: missing or broken weights raise.
        """
        paths = paths or self.paths or DataPaths.from_env()
        records = songs.to_dict("records") if isinstance(songs, pd.DataFrame) else [dict(s) for s in songs]
        version = self.version
        _ = self.model  # fail fast (and once) on weights, before any audio is decoded
        results: list[ScoreResult] = []
        for start in range(0, len(records), self.batch_size):
            results.extend(self._score_group(records[start:start + self.batch_size], paths, version))
        return results

    def _score_group(self, records: list[dict], paths: DataPaths, version: str) -> list[ScoreResult]:
        from sunorecsys.quality.base import ScoreResult

        def failed(song_id: str, error: str, sha256: str | None = None) -> ScoreResult:
            return ScoreResult(song_id=song_id, status="failed", error=error, scorer_version=version,
                               audio_sha256=sha256)

        decoded: dict[int, Any] = {}
        errors: dict[int, str] = {}
        for i, song in enumerate(records):
            try:
                decoded[i] = load_song_audio(song, paths, sample_rate=SAMPLE_RATE, mono=True,
                                             max_seconds=self.max_seconds, **self.fetch_kw)
            except AudioUnavailable as exc:
                errors[i] = f"{exc.reason}: {exc.detail}"
        order = sorted(decoded)
        scored: dict[int, dict[str, float]] = {}
        if order:
            try:
                scored = dict(zip(order, self.score_waveforms([decoded[i].samples for i in order])))
            except RuntimeError as exc:  # e.g. out of memory on a device: these songs fail, not the run
                errors.update({i: f"model error: {exc}" for i in order})
        results = []
        window_len = round(self.window_s * SAMPLE_RATE)
        for i, song in enumerate(records):
            song_id = str(song.get("song_id"))
            audio = decoded.get(i)
            sha256 = audio.sha256 if audio is not None else None
            if i in errors:
                results.append(failed(song_id, errors[i], sha256))
                continue
            raw = scored[i]
            if not all(math.isfinite(v) for v in raw.values()):
                results.append(failed(song_id, f"non-finite prediction {raw}", sha256))
                continue
            scores = {axis.lower(): raw[axis] for axis in AXES}
            scores.update({f"{axis.lower()}_norm": normalise(raw[axis]) for axis in AXES})
            overall = float(np.mean([scores[f"{axis.lower()}_norm"] for axis in AXES]))
            results.append(ScoreResult(
                song_id=song_id, status="ok", scores=scores, overall_quality_score=overall,
                fields={"windows": math.ceil(audio.samples.shape[0] / window_len), "duration_s": audio.duration_s},
                scorer_version=version, audio_sha256=sha256))
        return results


def audiobox_results_to_frame(results: Iterable[ScoreResult]) -> pd.DataFrame:
    """The audiobox_scores table (:data:`TABLE_COLUMNS`): 1-10 axes, [0, 1] norms and audiobox_score."""
    rows = []
    for r in results:
        scores = r.scores or {}
        row = {"song_id": r.song_id, "status": r.status, "scorer_version": r.scorer_version,
               "audio_sha256": r.audio_sha256, "error": r.error, "audiobox_score": r.overall_quality_score}
        for axis in AXES:
            for key in (axis.lower(), f"{axis.lower()}_norm"):
                row[key] = scores.get(key)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for col in TABLE_COLUMNS[2:11]:
        frame[col] = frame[col].astype(float)
    return frame
