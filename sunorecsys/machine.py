"""What the machine gives this process: its cores, and pools of worker processes on them."""

from __future__ import annotations

import contextlib
import os
import sys
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or taskset narrows)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _worker_ready() -> None:
    """A no-op task: submitting one per worker starts the workers at once (see :func:`spawn_pool`)."""


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """While workers start, ``__main__`` is an empty module, so they do not import the parent's.

    A spawned worker re-imports the parent's main module before its first task (multiprocessing's
    "safe importing of main module"): under ``python -m sunorecsys_pipeline.demo`` or Dagster's
    command line that is Dagster and the whole code location, about as much again as the worker's
    own imports. The workers' tasks are functions of library modules, never of ``__main__``, so
    they need none of it. The swap lasts only while the workers are started, in the calling thread.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is None:
            del sys.modules["__main__"]
        else:
            sys.modules["__main__"] = main


@contextlib.contextmanager
def spawn_pool(workers: int, initializer: Callable[..., None] | None = None,
               initargs: tuple = ()) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes (safe beside threads in the parent, e.g. torch's or
    Dagster's), all started here, with the parent's ``__main__`` out of sight (:func:`_bare_main`)."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=initializer,
                             initargs=initargs) as pool:
        with _bare_main():
            # The executor starts one process per submit until it has ``workers`` (all of them
            # in this thread, here): none is started later, when __main__ is back.
            for _ in range(workers):
                pool.submit(_worker_ready)  # not waited for: the real tasks queue behind them
        yield pool
