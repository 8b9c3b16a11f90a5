"""The environment the Makefile builds: what must be there and what must stay out."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_torchaudio_stays_out_of_the_environment():
    # transformers imports torchaudio whenever it is installed; the only release left is a CUDA
    # build that fails beside the CPU torch and would break the Audio Flamingo processor.
    assert importlib.util.find_spec("torchaudio") is None


def test_transformers_has_music_flamingo_classes():
    version = tuple(int(p) for p in md.version("transformers").split(".")[:2])
    assert version >= (5, 5), "transformers < 5.5 leaks audio embeddings between batched tracks"
    import transformers

    for name in ("MusicFlamingoForConditionalGeneration", "AudioFlamingo3ForConditionalGeneration",
                 "AutoProcessor"):
        assert hasattr(transformers, name), name


def test_library_never_imports_dagster():
    # The library must stay usable without the orchestrator: import every module and check.
    code = (
        "import importlib, pkgutil, sys\n"
        "import sunorecsys\n"
        "for m in pkgutil.walk_packages(sunorecsys.__path__, 'sunorecsys.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "bad = sorted(k for k in sys.modules if k == 'dagster' or k.startswith('dagster.'))\n"
        "print(bad[:5]); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", ["sunorecsys", "sunorecsys_pipeline", "compute_music_flamingo_quality.py"])
def test_no_pickle_in_model_persistence(path):
    # Loading a model file must never run code: no pickle / torch.load of our own artefacts.
    target = REPO / path
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    offenders = [
        f"{f.relative_to(REPO)}:{i}"
        for f in files if f.exists()
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if ("import pickle" in line or "allow_pickle=True" in line or "joblib" in line)
    ]
    assert not offenders, offenders
