"""Settings of the code location, one resource per concern (Dagster ``ConfigurableResource``).

Every value can be changed in the launchpad or in ``definitions.py``; defaults come from the
environment so ``make ui`` and ``make demo`` need no config:

- ``SUNORECSYS_DATA_DIR``: data root (default ``./data``)
- ``SUNORECSYS_FETCH_AUDIO``: ``0`` never fetches ``audio_url`` (the demo has no network)
- ``SUNORECSYS_AUDIO_HOSTS`` / ``SUNORECSYS_AUDIO_SCHEMES``: fetch allow-list, comma-separated
  (default Suno's CDN hosts, ``https``)
- ``SUNORECSYS_FETCH_DEADLINE_S`` (30), ``SUNORECSYS_FETCH_WORKERS`` (8), ``SUNORECSYS_FETCH_BREAKER``
  (3): per-download deadline, parallel downloads, consecutive failures that mark a host down
- ``SUNORECSYS_AUDIO_GIVE_UP_DAYS`` (7): unheard songs are retried until their day is this old
- ``SUNORECSYS_MIN_HEARD_SHARE`` (0.9): below it the ``heard_share`` warning check flags a day
- ``SUNORECSYS_FLAMINGO_MODEL``: local Music Flamingo folder (or a hub id already in the HF cache)
- ``SUNORECSYS_FLAMINGO_DEVICE``: ``cuda`` / ``cpu`` (default: the scorer picks)
- ``SUNORECSYS_AUDIOBOX_CHECKPOINT``: local Audiobox Aesthetics checkpoint folder or file
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg

from sunorecsys.paths import DataPaths

GUIDE_MODEL_ID = "nvidia/music-flamingo-hf"


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


class DataRootResource(dg.ConfigurableResource):
    """Where every file lives: one data root (None = ``$SUNORECSYS_DATA_DIR`` or ``./data``)."""

    data_dir: str | None = None

    @property
    def paths(self) -> DataPaths:
        return DataPaths.from_env(self.data_dir)


class AudioChecksResource(dg.ConfigurableResource):
    """Signal checks and how their audio is fetched.

    ``workers``: decode/measure processes per step. ``fetch_audio``: whether ``audio_url`` may be
    fetched at all. ``allowed_hosts`` / ``allowed_schemes``: the fetch allow-list (None = Suno's CDN
    and https). ``fetch_deadline_s``: hard wall-clock limit per download. ``fetch_workers``:
    downloads at once. ``breaker_threshold``: consecutive failures after which a host's remaining
    songs of the run are ``host_down``. ``give_up_days``: a song whose audio could not be had is
    retried by later runs until its day is this many days old, then stays unscored with its reason.
    """

    workers: int = 1
    fetch_audio: bool = True
    allowed_hosts: list[str] | None = None
    allowed_schemes: list[str] | None = None
    fetch_deadline_s: float = 30.0
    fetch_workers: int = 8
    breaker_threshold: int = 3
    give_up_days: int = 7

    def check_kwargs(self) -> dict[str, Any]:
        return {"workers": self.workers, "fetch": self.fetch_audio}

    def fetch_settings(self):
        """The :class:`~sunorecsys.audio.fetching.FetchSettings` these values describe."""
        from sunorecsys.audio.fetching import FetchSettings

        kw: dict[str, Any] = {"deadline_s": self.fetch_deadline_s, "workers": self.fetch_workers,
                              "breaker_threshold": self.breaker_threshold}
        if self.allowed_hosts is not None:
            kw["allowed_hosts"] = frozenset(h.lower() for h in self.allowed_hosts)
        if self.allowed_schemes is not None:
            kw["schemes"] = frozenset(s.lower() for s in self.allowed_schemes)
        return FetchSettings(**kw)


class QualityGatesResource(dg.ConfigurableResource):
    """Thresholds of the asset checks (shares in [0, 1]).

    ``min_heard_share``: below it the warning check ``heard_share`` flags a partition (an audio
    outage; not blocking). ``max_parse_failure_rate``: above it the blocking check
    ``parse_failure_rate`` stops the partition (a broken model output).
    """

    min_heard_share: float = 0.9
    max_parse_failure_rate: float = 0.2


class MusicFlamingoResource(dg.ConfigurableResource):
    """The Music Flamingo scorer (the guide's model) as configured for this deployment.

    ``model_path``: a local checkpoint folder; None means ``model_id`` from the local Hugging Face
    cache. Weights are never downloaded (``local_files_only``). ``prompt`` None = the guide's prompt.
    """

    model_id: str = GUIDE_MODEL_ID
    model_path: str | None = None
    device: str | None = None
    batch_size: int = 1
    max_new_tokens: int | None = None
    prompt: str | None = None

    @property
    def model_ref(self) -> str:
        return self.model_path or self.model_id

    def weights_available(self) -> bool:
        """True when weights can be loaded without a download (checked without loading them)."""
        if self.model_path:
            return (Path(self.model_path) / "config.json").is_file()
        try:
            from huggingface_hub import try_to_load_from_cache

            return isinstance(try_to_load_from_cache(self.model_id, "config.json"), str)
        except Exception:  # noqa: BLE001 - an unusable cache means "not available"
            return False

    def build_scorer(self, paths: DataPaths, fetch: bool = True):
        """A ``MusicFlamingoQualityScorer`` (the model loads lazily, on the first uncached song)."""
        from sunorecsys.quality.flamingo import MusicFlamingoQualityScorer
        from sunorecsys.quality.prompt import QUALITY_PROMPT_TEMPLATE

        kwargs: dict[str, Any] = {"model_id": self.model_ref, "device": self.device,
                                  "batch_size": self.batch_size, "local_files_only": True,
                                  "prompt": self.prompt or QUALITY_PROMPT_TEMPLATE, "paths": paths,
                                  "fetch": fetch}
        if self.max_new_tokens is not None:
            kwargs["max_new_tokens"] = self.max_new_tokens
        return MusicFlamingoQualityScorer(**kwargs)

    def current_version(self, paths: DataPaths) -> str:
        """The scorer version (model id + prompt hash + parser version); never loads the model."""
        return str(self.build_scorer(paths).version)


class AudioboxResource(dg.ConfigurableResource):
    """The Audiobox Aesthetics scorer: a local checkpoint (never downloaded), device, batch size."""

    checkpoint_path: str | None = None
    device: str = "cpu"
    batch_size: int = 4

    def weights_available(self) -> bool:
        if not self.checkpoint_path:
            return False
        from sunorecsys.quality.audiobox import checkpoint_file

        try:
            checkpoint_file(self.checkpoint_path)
        except FileNotFoundError:
            return False
        return True

    def build_scorer(self, paths: DataPaths, **fetch_kw: Any):
        """An ``AudioboxAestheticsScorer``; raises ``AudioboxWeightsMissing`` (how-to message) without weights."""
        from sunorecsys.quality.audiobox import AudioboxAestheticsScorer

        return AudioboxAestheticsScorer(self.checkpoint_path, device=self.device,
                                        batch_size=self.batch_size, paths=paths, **fetch_kw)

    def current_version(self, paths: DataPaths) -> str:
        """Weights hash + code version (reads the weights file once, never loads the model)."""
        return str(self.build_scorer(paths).version)


def audio_checks_from_env() -> AudioChecksResource:
    """AudioChecksResource from the environment (module docstring); unset values keep the defaults."""
    from sunorecsys.audio.fetching import FetchSettings

    fetch = FetchSettings.from_env()
    return AudioChecksResource(
        # Default: the cores this process may run on (signal checks are CPU-bound per song).
        workers=int(os.environ.get("SUNORECSYS_AUDIO_WORKERS") or len(os.sched_getaffinity(0))),
        fetch_audio=_env_flag("SUNORECSYS_FETCH_AUDIO", True),
        allowed_hosts=sorted(fetch.allowed_hosts), allowed_schemes=sorted(fetch.schemes),
        fetch_deadline_s=fetch.deadline_s, fetch_workers=fetch.workers,
        breaker_threshold=fetch.breaker_threshold,
        give_up_days=int(os.environ.get("SUNORECSYS_AUDIO_GIVE_UP_DAYS", "7")))


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location, with defaults from the environment (module docstring)."""
    return {
        # data_dir None: read $SUNORECSYS_DATA_DIR when a run starts, not when the module is imported
        "data_root": DataRootResource(),
        "audio_checks_settings": audio_checks_from_env(),
        "quality_gates": QualityGatesResource(
            min_heard_share=float(os.environ.get("SUNORECSYS_MIN_HEARD_SHARE", "0.9"))),
        "flamingo": MusicFlamingoResource(
            model_path=os.environ.get("SUNORECSYS_FLAMINGO_MODEL") or None,
            device=os.environ.get("SUNORECSYS_FLAMINGO_DEVICE") or None),
        "audiobox": AudioboxResource(
            checkpoint_path=os.environ.get("SUNORECSYS_AUDIOBOX_CHECKPOINT") or None,
            device=os.environ.get("SUNORECSYS_AUDIOBOX_DEVICE", "cpu")),
    }
