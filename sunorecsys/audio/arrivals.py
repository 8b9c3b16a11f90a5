"""Audio still being written by a producer in this process: the signal checks wait for it.

``make demo`` synthesises the sample's audio on threads while its pipeline run already checks
the songs written so far (the two share the machine's cores instead of taking turns). A song whose
file is not written *yet* must not be checked as ``missing``: the producer registers the audio
folder (:func:`producing`) and settles each song once its audio is final (its file written, or
none will be: a song made without audio); :func:`~sunorecsys.audio.checks.run_audio_checks` waits
for a song's settlement before checking it. Only a producer of this process is seen: a run in
another process (the daemon's, the UI's, a test's) finds no producer and never waits.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path


class Arrivals:
    """The songs of one audio folder whose audio is final, and whether the producer has finished."""

    def __init__(self) -> None:
        self._settled: set[str] = set()
        self._closed = False
        self._changed = threading.Condition()

    def settle(self, song_id: str) -> None:
        """``song_id``'s audio is final: its file is written (or none will be)."""
        with self._changed:
            self._settled.add(str(song_id))
            self._changed.notify_all()

    def close(self) -> None:
        """The producer has finished (or failed): nobody waits any longer."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait(self, song_id: str, timeout: float | None = None) -> bool:
        """Block until ``song_id`` is settled or the producer has finished; False on ``timeout`` (s)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._closed or str(song_id) in self._settled, timeout)


_producers: dict[Path, Arrivals] = {}
_lock = threading.Lock()


def _key(audio_dir: str | Path) -> Path:
    return Path(audio_dir).resolve()  # one key however the root was spelt (relative, via a symlink)


@contextlib.contextmanager
def producing(audio_dir: str | Path) -> Iterator[Arrivals]:
    """Register this process as the writer of ``audio_dir`` until the block ends (even by an error)."""
    key = _key(audio_dir)
    arrivals = Arrivals()
    with _lock:
        if key in _producers:
            raise RuntimeError(f"{key} already has a producer in this process")
        _producers[key] = arrivals
    try:
        yield arrivals
    finally:
        arrivals.close()
        with _lock:
            _producers.pop(key, None)


def arriving(audio_dir: str | Path) -> Arrivals | None:
    """The producer writing ``audio_dir`` in this process, or None (the folder is as it will stay)."""
    with _lock:
        return _producers.get(_key(audio_dir))
