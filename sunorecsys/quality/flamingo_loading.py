"""Load a Music Flamingo / Audio Flamingo 3 checkpoint from a local path or the Hugging Face cache.

Never downloads unless asked (``local_files_only=True`` by default), and fails with
:class:`ModelWeightsMissing` saying how to provide the weights. The model class is chosen by the
checkpoint's ``model_type`` (FIELD_NOTES: the guide's ``nvidia/music-flamingo-hf`` is the preview
checkpoint in Audio Flamingo 3 format, ``nvidia/music-flamingo-2601-hf`` uses Music Flamingo classes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MODEL_ID = "nvidia/music-flamingo-hf"

# model_type -> (transformers model class name, longest audio the checkpoint takes, seconds)
MODEL_CLASSES: dict[str, tuple[str, float]] = {
    "audioflamingo3": ("AudioFlamingo3ForConditionalGeneration", 600.0),
    "musicflamingo": ("MusicFlamingoForConditionalGeneration", 1200.0),
}

_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
           "half": "float16", "fp32": "float32", "float32": "float32", "float": "float32"}


class ModelWeightsMissing(RuntimeError):
    """The checkpoint is not available locally (and downloading was not allowed)."""


def how_to_provide(model_id: str) -> str:
    hub_id = model_id if not looks_like_path(model_id) else DEFAULT_MODEL_ID
    return (
        f"Music Flamingo weights not found for {model_id!r} (downloads are off by default).\n"
        "Provide them in one of these ways:\n"
        f"  1. on a machine with internet: huggingface-cli download {hub_id} --local-dir /path/to/music-flamingo\n"
        "     then copy that folder here and pass --model /path/to/music-flamingo\n"
        "  2. set HF_HOME to a Hugging Face cache that already holds the model\n"
        "  3. allow a download explicitly (allow_download=True / --allow-download) where internet is available"
    )


def looks_like_path(model_id: str | os.PathLike) -> bool:
    """True for anything that exists on disk or is spelled like a path (not an ``org/name`` hub id)."""
    text = str(model_id)
    return (Path(text).expanduser().exists() or text.startswith(("/", ".", "~")) or os.sep + os.sep in text
            or text.count("/") > 1 or "\\" in text)


def resolve_device(device: str | None) -> str:
    """``cuda`` when available and not told otherwise, else ``cpu``."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
    return str(device)


def resolve_dtype(dtype: Any, device: str):
    """bf16 on GPU, fp32 on CPU unless told otherwise; accepts torch dtypes or names ('bf16', 'float32')."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    return getattr(torch, name)


@dataclass
class LoadedFlamingo:
    processor: Any
    model: Any
    model_type: str
    max_audio_seconds: float


def read_model_type(model_id: str, *, local_files_only: bool = True) -> str:
    """The checkpoint's ``model_type`` from its config (no weights read); ModelWeightsMissing if absent."""
    from transformers import AutoConfig

    if looks_like_path(model_id):
        path = Path(model_id).expanduser()
        if not (path / "config.json").is_file():
            raise ModelWeightsMissing(f"no config.json under {path}\n" + how_to_provide(str(model_id)))
    try:
        config = AutoConfig.from_pretrained(str(model_id), local_files_only=local_files_only)
    except OSError as exc:  # transformers raises OSError (EnvironmentError) for missing files
        raise ModelWeightsMissing(f"{exc}\n\n" + how_to_provide(str(model_id))) from exc
    model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_CLASSES:
        raise ValueError(f"{model_id}: model_type {model_type!r} is not a Music Flamingo checkpoint "
                         f"(expected one of {sorted(MODEL_CLASSES)})")
    return model_type


def load_flamingo(model_id: str, *, device: str = "cpu", dtype: Any = None,
                  local_files_only: bool = True) -> LoadedFlamingo:
    """Processor + model (eval mode, on ``device``, in ``dtype``) for ``model_id`` (hub id or path)."""
    import transformers
    from transformers import AutoProcessor

    model_type = read_model_type(model_id, local_files_only=local_files_only)
    class_name, cap = MODEL_CLASSES[model_type]
    model_class = getattr(transformers, class_name)
    torch_dtype = resolve_dtype(dtype, device)
    try:
        processor = AutoProcessor.from_pretrained(str(model_id), local_files_only=local_files_only)
        model = model_class.from_pretrained(str(model_id), local_files_only=local_files_only, dtype=torch_dtype)
    except OSError as exc:
        raise ModelWeightsMissing(f"{exc}\n\n" + how_to_provide(str(model_id))) from exc
    model.to(device)
    model.eval()
    cap = float(getattr(processor, "max_audio_len", cap) or cap)
    return LoadedFlamingo(processor=processor, model=model, model_type=model_type, max_audio_seconds=cap)
