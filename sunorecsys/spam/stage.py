"""The spam stage over the whole catalogue, with state kept under the data root.

``run_spam_filter(songs, paths)`` fingerprints every song not yet in the fingerprint index, adds them
to the index (which reports the matches they reveal), judges *every* song of the catalogue again
(a late file can reveal an earlier original: the song that looked original becomes a duplicate),
applies the allow-list and records every change of a song's flags in the flag history.

Files under the data root:
- ``spam/index/``: the fingerprint index (``index.FingerprintIndex``),
- ``spam/flags_current.parquet``: the latest flags of every song (what the next run compares against),
- ``spam/allowlist.csv``: the operator's allow-list (``scope,id,who,why``; see ``flags``),
- ``warehouse/spam_flag_history/part-0.parquet``: every change, appended (a DuckDB view for analysts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sunorecsys.paths import DataPaths
from sunorecsys.spam.fingerprints import fingerprint_songs
from sunorecsys.spam.flags import FLAGS_SCHEMA, HISTORY_SCHEMA, combine_flags, flag_changes, read_allowlist
from sunorecsys.spam.index import FingerprintIndex
from sunorecsys.warehouse.parquet import partition_path, write_parquet_atomic

HISTORY_TABLE = "spam_flag_history"


def spam_dir(paths: DataPaths):
    return paths.root / "spam"


def allowlist_path(paths: DataPaths):
    return spam_dir(paths) / "allowlist.csv"


@dataclass
class SpamRun:
    """What one run found: ``flags`` (every song), ``changes`` (history rows added), counts."""

    flags: pd.DataFrame
    changes: pd.DataFrame
    fingerprinted: int
    not_fingerprinted: dict[str, int] = field(default_factory=dict)
    new_matches: int = 0
    rejected_allowlist: pd.DataFrame | None = None

    def counts(self) -> dict[str, int]:
        """Flagged songs per reason (a song may count under several)."""
        out = {}
        for reasons in self.flags["reasons"]:
            for r in reasons:
                out[r] = out.get(r, 0) + 1
        return out


def run_spam_filter(songs: pd.DataFrame, paths: DataPaths, *, fetch: bool = False, workers: int = 1,
                    now: pd.Timestamp | None = None, cause: str = "run") -> SpamRun:
    """Judge the whole ``songs`` table (all partitions), updating the index and the state on disk."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    songs = songs.drop_duplicates("song_id", keep="last").reset_index(drop=True)
    index_dir = spam_dir(paths) / "index"
    index = FingerprintIndex.load(index_dir)
    todo = songs[~songs["song_id"].astype(str).isin(index.row_of)]
    prints = fingerprint_songs(todo, paths, fetch=fetch, workers=workers) if len(todo) else []
    failed: dict[str, int] = {}
    for fp in prints:
        if fp.words is None:
            failed[fp.status] = failed.get(fp.status, 0) + 1
    created = dict(zip(songs["song_id"].astype(str), pd.to_datetime(songs["created_at"], utc=True)))
    found = index.add(prints, created)
    index.save(index_dir)

    allow, rejected = read_allowlist(allowlist_path(paths))
    flags = combine_flags(songs, index.matches, allow)
    state_file = spam_dir(paths) / "flags_current.parquet"
    previous = pd.read_parquet(state_file) if state_file.exists() else None
    changes = flag_changes(previous, flags, now, cause)
    write_parquet_atomic(flags, state_file, schema=FLAGS_SCHEMA)
    if len(changes):
        history_file = partition_path(paths.warehouse_dir, HISTORY_TABLE)
        history = pd.read_parquet(history_file) if history_file.exists() else None
        write_parquet_atomic(changes if history is None else pd.concat([history, changes], ignore_index=True),
                             history_file, schema=HISTORY_SCHEMA)
    return SpamRun(flags=flags, changes=changes, fingerprinted=sum(fp.words is not None for fp in prints),
                   not_fingerprinted=failed, new_matches=len(found), rejected_allowlist=rejected)
