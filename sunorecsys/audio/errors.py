"""Why a song's audio could not be had: one exception, one machine-readable reason."""

from __future__ import annotations

# Machine-readable reasons. They become the ``status`` of a failed row in the audio_checks table.
MISSING = "missing"            # no audio_path, no data/audio/<song_id>.<ext>, no usable audio_url
UNREADABLE = "unreadable"      # a file exists but soundfile cannot decode it
EMPTY = "empty"                # decodes to zero samples
TOO_SHORT = "too_short"        # decodes to fewer than the minimum seconds asked for
FETCH_REFUSED = "fetch_refused"  # URL scheme/host outside the allow-list, or an unsafe song_id
FETCH_FAILED = "fetch_failed"  # network error, HTTP error status, timeout
TOO_LARGE = "too_large"        # the remote file exceeds the size cap
OUTSIDE_ROOTS = "audio_path_outside_roots"  # audio_path resolves outside the configured audio roots
HOST_DOWN = "host_down"        # not tried: its host failed repeatedly in this run (circuit breaker open)

REASONS: frozenset[str] = frozenset(
    {MISSING, UNREADABLE, EMPTY, TOO_SHORT, FETCH_REFUSED, FETCH_FAILED, TOO_LARGE, OUTSIDE_ROOTS, HOST_DOWN}
)
# The audio could not be had at all: nobody heard it, so it says nothing about the song's quality.
# Such a song is *unscored* (reason "audio_unavailable: <reason>"), never scored 0, and later runs
# retry it. The other reasons (unreadable, empty, too_short) are audio that was had and is broken.
UNAVAILABLE_REASONS: frozenset[str] = frozenset(
    {MISSING, FETCH_REFUSED, FETCH_FAILED, TOO_LARGE, HOST_DOWN, OUTSIDE_ROOTS})


class AudioUnavailable(Exception):
    """A song's audio cannot be used.

    ``reason`` is one of :data:`REASONS`; ``detail`` says what exactly (path, URL, error);
    ``song_id`` is filled in when the failure is about a known song.
    """

    def __init__(self, reason: str, detail: str = "", song_id: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown AudioUnavailable reason {reason!r}; expected one of {sorted(REASONS)}")
        self.reason = reason
        self.detail = detail
        self.song_id = song_id
        super().__init__(self._message())

    def _message(self) -> str:
        who = f"song {self.song_id}: " if self.song_id else ""
        return f"{who}{self.reason}" + (f" ({self.detail})" if self.detail else "")

    def with_song_id(self, song_id: str | None) -> AudioUnavailable:
        """The same failure, naming the song (keeps an id already set)."""
        if self.song_id is None and song_id is not None:
            self.song_id = song_id
            self.args = (self._message(),)
        return self
