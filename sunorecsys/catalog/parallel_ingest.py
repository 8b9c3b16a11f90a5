"""Big list-shaped catalogue files on several cores: parse and normalise pieces in worker processes.

Parsing JSON and turning records into columns is pure-Python work bound to one core by the GIL,
so a big file is cut into pieces of whole records (``iter_list_text_pieces``) and each piece is
parsed and normalised in a worker process; the main process only cuts text and stitches the
results in order (positions and input order are offset per piece, so the result is identical to
the serial reader's). A piece cut inside a record is glued to the next one and parsed again; if
that does not help (a malformed file), the parallel attempt is abandoned and the caller reads
the file serially, which places errors exactly.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pandas as pd

from sunorecsys.catalog.jsonfiles import iter_list_text_pieces

PARALLEL_MIN_BYTES = 64 << 20  # below this, starting worker processes costs more than it saves
MAX_MERGES = 8


def normalise_piece(file: str, text: str, is_last: bool) -> tuple[int, pd.DataFrame | None, list[dict]] | None:
    """Parse one piece and normalise its records: (records, song rows, rejected rows), None if it does not parse.

    Positions in the result are relative to the piece.
    """
    from sunorecsys.catalog.ingest import _Normaliser

    try:
        values = json.loads("[" + text + ("" if is_last else "]"))
    except json.JSONDecodeError:
        return None
    if not isinstance(values, list):
        return None
    normaliser = _Normaliser()
    normaliser.add_batch(file, range(len(values)), values)
    frame = pd.concat(normaliser.song_frames, ignore_index=True) if normaliser.song_frames else None
    return len(values), frame, normaliser.rejected


def read_list_file_parallel(path: Path, normaliser, workers: int) -> int | None:
    """Add ``path``'s records to ``normaliser`` using ``workers`` processes; the record count, or
    None (and nothing added) when a piece did not parse."""
    # fork: workers start at once and need no importable __main__ (Arrow's thread pool is fork-safe);
    # spawn where fork does not exist. A pool that breaks means "read it serially", never a failure.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    try:
        return _run(path, normaliser, workers, multiprocessing.get_context(method))
    except (BrokenProcessPool, OSError):
        return None


def _run(path: Path, normaliser, workers: int, context) -> int | None:
    frames: list[pd.DataFrame] = []
    rejected: list[dict] = []
    offset = 0
    order = normaliser.order
    pieces = iter_list_text_pieces(path)

    def add(result) -> None:
        nonlocal offset, order
        n, frame, piece_rejected = result
        if frame is not None:
            frame["src_position"] += offset
            frame["src_order"] = np.arange(order, order + len(frame), dtype=np.int64)
            order += len(frame)
            frames.append(frame)
        for row in piece_rejected:
            row["position"] += offset
        rejected.extend(piece_rejected)
        offset += n

    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        # (future, text, is_last) in file order; a few in flight for bounded memory.
        in_flight: deque[tuple[Future, str, bool]] = deque()

        def submit_next() -> bool:
            piece = next(pieces, None)
            if piece is None:
                return False
            text, is_last = piece
            in_flight.append((pool.submit(normalise_piece, str(path), text, is_last), text, is_last))
            return True

        first = True
        while True:
            while len(in_flight) < 2 * workers and submit_next():
                pass
            if not in_flight:
                break
            future, text, is_last = in_flight.popleft()
            result = future.result()
            merges = 0
            # A piece that does not parse was cut inside a record (e.g. between two objects of a
            # remix history): glue the next piece on and try again, a few times at most.
            while result is None and not is_last and merges < MAX_MERGES:
                if not in_flight and not submit_next():
                    break
                next_future, next_text, is_last = in_flight.popleft()
                next_future.cancel()
                text = text + "," + next_text
                result = normalise_piece(str(path), text, is_last)
                merges += 1
            if result is None:
                return None  # malformed (or unlucky): the serial reader decides and places the error
            if is_last and not first and text.lstrip(" \t\r\n").startswith("]"):
                return None  # a trailing comma: let the serial reader say where
            first = False
            add(result)
    normaliser.song_frames.extend(frames)
    normaliser.rejected.extend(rejected)
    normaliser.order = order
    return offset
