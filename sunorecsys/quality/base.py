"""What every scorer returns, and the protocol every scorer follows.

A scorer turns songs into :class:`ScoreResult` rows, one per song, in input order. A result is
either a score (``ok``: every dimension the scorer measures is present; ``partial``: some are) or a
failure with a reason (``failed``). Failures are recorded in results tables but never cached as
scores and never turned into a default number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Status = Literal["ok", "partial", "failed"]
STATUSES: tuple[str, ...] = ("ok", "partial", "failed")


@dataclass
class ScoreResult:
    """One song's outcome from one scorer.

    ``scores``: the scorer's dimensions (Music Flamingo: the guide's five, each in [0, 1]).
    ``overall_quality_score``: in [0, 1], ``None`` when ``status == 'failed'``.
    ``fields``: descriptive extras (genre, tempo, ... ; ``missing_dimensions``), scorer-specific.
    ``raw_response``: the model's text, when the scorer generates text.
    ``error``: why it failed (or what was missing), ``None`` when ok.
    ``audio_sha256``: hex digest of the audio file's bytes the score belongs to.
    ``cached``: True when read back from a cache rather than computed in this run.
    """

    song_id: str
    status: Status
    scores: dict[str, float] = field(default_factory=dict)
    overall_quality_score: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    raw_response: str | None = None
    error: str | None = None
    scorer_version: str | None = None
    audio_sha256: str | None = None
    cached: bool = False

    @property
    def succeeded(self) -> bool:
        """True for ``ok`` and ``partial`` (a usable score exists)."""
        return self.status in ("ok", "partial")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Scorer(Protocol):
    """A quality scorer: ``name`` (short, e.g. ``music_flamingo``), ``version`` (changes whenever
    scores could change: model identity + prompt hash + parser version), ``score_batch``.
    """

    name: str

    @property
    def version(self) -> str: ...

    def score_batch(self, songs: Iterable[Mapping[str, Any]]) -> list[ScoreResult]:
        """One result per song, in input order; one bad song never raises for the batch."""
        ...
