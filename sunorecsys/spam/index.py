"""A catalogue-wide fingerprint index that finds duplicate audio without comparing all pairs.

How (the AcoustID way): a sample of each song's fingerprint words goes into an inverted index
(word -> songs, positions). Two songs become a *candidate pair* when they share words at the same
relative offset; only candidates are *verified* by the bit error rate of the two fingerprints
aligned at that offset (the bit error rate of ``fingerprints.align``). Work grows with the number of postings and of
shared words, not with the square of the catalogue.

- Words are sampled by their value (a multiplicative hash of the word, kept when it falls in the
  lowest 1/``KEY_SAMPLING`` of the 32-bit range), so a copy samples the same words as its original wherever they
  survived re-encoding: no alignment is needed to find each other.
- A word held by more than ``MAX_SONGS_PER_KEY`` songs says nothing (silence, steady tones) and is
  skipped, which also bounds the pairs one word can produce.
- Runs of one repeated word count once (a held note would otherwise vote many times).

All of it is array work (numpy): postings of many fingerprints at once, candidate pairs counted as one
packed 63-bit integer per shared key (a sort, no per-pair Python), verification as XOR + popcount
over batches of padded fingerprints. Measured (bench/spam.py, 1 M songs of 120 s built from real
recordings with 10,000 planted real copies; shared 2-core machine): ~238 M postings, ~70 k
candidates, all duplicates in 94 s of wall time (58 s CPU), peak RSS 6.5 GB, precision 0.995, recall 0.999.

Persistence (``FingerprintIndex.save`` / ``load``): ``<dir>/fingerprints/part-NNNNN.parquet`` holds
``song_id, created_at, words`` (the uint32 words as little-endian bytes), one file per batch added, so an
update writes only the new songs; a song fingerprinted again is taken from its newest file.
``<dir>/matches.parquet`` holds every verified pair found so far (both directions of a pair once).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sunorecsys.spam.fingerprints import ITEM_SECONDS, MIN_ITEMS, SongFingerprint, seconds_to_items
from sunorecsys.warehouse.parquet import write_parquet_atomic

# Index one word in 4 (about one in 6-10 after runs of a repeated word count once): ~100-160 postings for
# 120 s of audio. A 5 s trim keeps ~15-20 % of words bit-exact (bench/spam.py, real recordings), i.e.
# ~20 shared keys for a 2-minute song and ~5 for a 30 s one; MIN_VOTES = 2 at one offset make a candidate.
KEY_SAMPLING = 4
MAX_SONGS_PER_KEY = 64
MIN_VOTES = 2
# Verified duplicate: at most 15 % of bits differ over at least 10 s of overlap. Measured on real
# recordings (bench/spam.py, calibration half): copies (MP3 64 kbps, +-3 dB, 5 s trim, combined) stay
# under ~7 %; different recordings sit at 30-50 % even at their best offset.
MAX_BIT_ERROR_RATE = 0.15
MIN_OVERLAP_SECONDS = 10.0
# Verification tries the voted offset and this many words either side (the frame grid of a trimmed
# copy sits between two whole offsets).
ALIGN_SLACK = 2
_HASH_MULT = np.uint64(0x9E3779B1)
_SLICE_MULT = np.uint64(0x85EBCA6B)
_SONGS_PER_BLOCK = 50_000
_PART_RE = re.compile(r"part-(\d+)\.parquet$")
MATCH_COLUMNS = ["song_a", "song_b", "offset", "offset_s", "bit_error_rate", "overlap_s", "votes"]


def index_keys(words: np.ndarray, sampling: int = KEY_SAMPLING) -> tuple[np.ndarray, np.ndarray]:
    """The sampled words of one fingerprint and their positions (uint32 keys, int32 positions)."""
    words = np.asarray(words, dtype=np.uint32)
    keep = _sampled(words, np.array([0]), sampling)
    positions = np.flatnonzero(keep).astype(np.int32)
    return words[positions], positions


def _sampled(flat: np.ndarray, starts: np.ndarray, sampling: int) -> np.ndarray:
    """Which words of ``flat`` (fingerprints laid end to end, each beginning at ``starts``) are index keys."""
    if len(flat) == 0:
        return np.zeros(0, bool)
    first_of_run = np.empty(len(flat), bool)
    first_of_run[0] = True
    np.not_equal(flat[1:], flat[:-1], out=first_of_run[1:])
    first_of_run[starts[starts < len(flat)]] = True  # a run never spans two songs
    # The top bits of the product mix every bit of the word; its low bits would only repeat the
    # word's own low bits (one Chromaprint classifier), which would sample words very unevenly.
    # uint32 arithmetic wraps: (word * mult) mod 2**32, the same as the 64-bit product's low half.
    hashed = flat * np.uint32(_HASH_MULT)
    return first_of_run & (hashed <= np.uint32((1 << 32) // sampling - 1))


@dataclass
class Postings:
    """Flat inverted-index input: one row per sampled word (``song`` is a row number of the index)."""

    keys: np.ndarray      # uint32
    songs: np.ndarray     # uint32
    positions: np.ndarray  # int32

    @classmethod
    def from_fingerprints(cls, fingerprints: Iterable[np.ndarray], first_song: int = 0,
                          sampling: int = KEY_SAMPLING) -> Postings:
        """Postings of the fingerprints, songs numbered from ``first_song`` (a 2-D array is one song per row)."""
        if isinstance(fingerprints, np.ndarray) and fingerprints.ndim == 2:
            n, length = fingerprints.shape
            flat = np.ascontiguousarray(fingerprints, dtype=np.uint32).reshape(-1)
            lengths = np.full(n, length, np.int64)
        else:
            arrays = [np.asarray(w, np.uint32) for w in fingerprints]
            if len(arrays) > _SONGS_PER_BLOCK:  # bounded temporaries: the words laid end to end per block
                return cls.concat([cls.from_fingerprints(arrays[s:s + _SONGS_PER_BLOCK], first_song + s, sampling)
                                   for s in range(0, len(arrays), _SONGS_PER_BLOCK)], consume=True)
            flat = np.concatenate(arrays) if arrays else np.empty(0, np.uint32)
            lengths = np.fromiter((len(w) for w in arrays), np.int64, len(arrays))
        starts = np.cumsum(lengths) - lengths
        where = np.flatnonzero(_sampled(flat, starts, sampling))
        song = np.searchsorted(starts, where, side="right") - 1
        return cls(flat[where], (song + first_song).astype(np.uint32), (where - starts[song]).astype(np.int32))

    @classmethod
    def concat(cls, parts: list[Postings], consume: bool = False) -> Postings:
        """All ``parts`` in one; ``consume`` empties the parts column by column on the way, so the peak
        is one column above the total instead of twice the total (1 M songs: ~2.9 GB of postings)."""
        columns = {}
        for name in ("keys", "songs", "positions"):
            columns[name] = np.concatenate([getattr(p, name) for p in parts])
            if consume:
                for p in parts:
                    setattr(p, name, np.empty(0, getattr(p, name).dtype))  # not a view: frees the part
        return cls(**columns)


def candidate_pairs(postings: Postings, is_new: np.ndarray | None = None, *,
                    max_songs_per_key: int = MAX_SONGS_PER_KEY, min_votes: int = MIN_VOTES,
                    key_chunks: int = 16) -> pd.DataFrame:
    """Song pairs sharing at least ``min_votes`` sampled words at one relative offset (+-1 word).

    ``is_new`` (bool per song) keeps only pairs with at least one new song: an incremental update
    verifies new-vs-all and new-vs-new, never old-vs-old again. The key space is processed in
    ``key_chunks`` slices, each turning its shared keys into packed ``(song_a, song_b, offset)``
    integers; all of them are then sorted once and counted (numpy only: ~8 bytes per shared key).
    Returns ``song_a < song_b`` (row numbers), ``offset`` (position in a minus position in b) and ``votes``.
    """
    n_songs = int(postings.songs.max()) + 1 if len(postings.songs) else 0
    max_pos = int(postings.positions.max()) + 1 if len(postings.positions) else 1
    song_bits = max(1, (n_songs - 1).bit_length())
    off_bits = (2 * max_pos + 1).bit_length()
    if 2 * song_bits + off_bits > 63:
        raise ValueError(f"{n_songs} songs of up to {max_pos} words do not fit a 63-bit pair code")
    # One uint64 per posting (key, then song and position) sorts faster than an argsort and gathers.
    packed = n_songs * max_pos <= 1 << 32
    hits: list[np.ndarray] = []
    slice_of = _key_slices(postings.keys, key_chunks)
    for chunk in range(key_chunks):
        sel = np.flatnonzero(slice_of == chunk)
        if len(sel) < 2:
            continue
        keys, where = _sorted_by_key(postings, sel, max_pos, packed)
        del sel
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], len(keys)]
        sizes = ends - starts
        ok = (sizes >= 2) & (sizes <= max_songs_per_key)
        if not ok.any():
            continue
        # every posting pairs with the later postings of its group: left index p, right p+1..end-1
        g_start, g_end = starts[ok], ends[ok]
        members = _ranges(g_start, g_end)
        group_end = np.repeat(g_end, g_end - g_start)
        counts = group_end - members - 1
        total = int(counts.sum())
        if total == 0:
            continue
        left = np.repeat(members, counts)
        right = left + 1 + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
        del members, group_end, counts
        song_l, pos_l = np.divmod(where[left], max_pos)
        song_r, pos_r = np.divmod(where[right], max_pos)
        keep = song_l != song_r
        if is_new is not None:
            keep &= is_new[song_l] | is_new[song_r]
        song_l, song_r, offset = song_l[keep], song_r[keep], pos_l[keep] - pos_r[keep]
        del left, right, pos_l, pos_r
        swap = song_l > song_r
        np.negative(offset, out=offset, where=swap)
        a = np.where(swap, song_r, song_l)
        b = np.where(swap, song_l, song_r)
        hits.append((((a << song_bits) | b) << off_bits) | (offset + max_pos))
    codes = np.concatenate(hits) if hits else np.empty(0, np.int64)
    del hits
    if len(codes) == 0:
        return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in ("song_a", "song_b", "offset", "votes")})
    codes.sort()
    first = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    n = np.diff(np.r_[first, len(codes)])
    codes = codes[first]
    pair = codes >> off_bits
    offset = (codes & ((1 << off_bits) - 1)) - max_pos
    del codes, first
    # Pool the votes of each offset and its two neighbours (a trimmed copy's exact matches straddle
    # two offsets); codes are sorted by pair then offset, so neighbours are adjacent.
    pooled = n.copy()
    same_prev = np.r_[False, (pair[1:] == pair[:-1]) & (offset[1:] - offset[:-1] == 1)]
    pooled[same_prev] += n[np.flatnonzero(same_prev) - 1]
    same_next = np.r_[same_prev[1:], False]
    pooled[same_next] += n[np.flatnonzero(same_next) + 1]
    # The best offset of each pair: highest pooled votes (ties: the most direct votes, then the first).
    rank = np.lexsort((-n, -pooled, pair))
    best = rank[np.r_[True, pair[rank][1:] != pair[rank][:-1]]]
    best = best[pooled[best] >= min_votes]
    return pd.DataFrame({"song_a": pair[best] >> song_bits, "song_b": pair[best] & ((1 << song_bits) - 1),
                         "offset": offset[best], "votes": pooled[best]})


def _sorted_by_key(postings: Postings, sel: np.ndarray, max_pos: int, packed: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Keys of the postings ``sel`` in order, and their ``song * max_pos + position`` (int64) in that order."""
    if not packed:
        order = sel[np.argsort(postings.keys[sel], kind="stable")]
        return postings.keys[order], postings.songs[order].astype(np.int64) * max_pos + postings.positions[order]
    codes = postings.songs[sel].astype(np.uint64)
    codes *= np.uint64(max_pos)
    codes += postings.positions[sel].astype(np.uint64)
    codes |= postings.keys[sel].astype(np.uint64) << np.uint64(32)
    codes.sort()
    return (codes >> np.uint64(32)).astype(np.uint32), (codes & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _key_slices(keys: np.ndarray, key_chunks: int, block: int = 1 << 22) -> np.ndarray:
    """Which of ``key_chunks`` slices of the key space each key falls in (uint8; by the top bits of a hash).

    Not the sampling hash: every indexed key has that one in the lowest 1/``KEY_SAMPLING`` of its range.
    Worked out ``block`` keys at a time: one byte per posting is all that is held for the whole index.
    """
    if not 1 <= key_chunks <= 256:
        raise ValueError(f"key_chunks must be in 1..256, got {key_chunks}")
    out = np.empty(len(keys), np.uint8)
    for s in range(0, len(keys), block):
        hashed = keys[s:s + block] * np.uint32(_SLICE_MULT)
        out[s:s + block] = (hashed.astype(np.uint64) * np.uint64(key_chunks)) >> np.uint64(32)
    return out


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, e)`` for every (s, e), vectorised."""
    lengths = ends - starts
    total = int(lengths.sum())
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(total) + offsets


def verify_pairs(candidates: pd.DataFrame, words_of, *, max_ber: float = MAX_BIT_ERROR_RATE,
                 min_overlap_s: float = MIN_OVERLAP_SECONDS, slack: int = ALIGN_SLACK,
                 batch: int = 2048) -> pd.DataFrame:
    """Align each candidate pair at its voted offset (+- ``slack``) and keep the ones under ``max_ber``.

    ``words_of(row)`` returns a song's fingerprint words. Pairs are compared ``batch`` at a time as
    padded 2-D arrays (XOR and popcount over all pairs and offsets at once). Returns ``song_a, song_b,
    offset, offset_s, bit_error_rate, overlap_s, votes`` (row numbers, not ids).
    """
    min_overlap = max(MIN_ITEMS, seconds_to_items(min_overlap_s))
    out = []
    cand = candidates[["song_a", "song_b", "offset", "votes"]].to_numpy(np.int64)
    for s in range(0, len(cand), batch):
        part = cand[s:s + batch]
        wa, la = _padded([words_of(int(r)) for r in part[:, 0]])
        wb, lb = _padded([words_of(int(r)) for r in part[:, 1]])
        best_ber, best_off, best_n = _best_alignment(wa, la, wb, lb, part[:, 2], slack, min_overlap)
        keep = (best_n > 0) & (best_ber <= max_ber)
        out.append(pd.DataFrame({
            "song_a": part[keep, 0], "song_b": part[keep, 1], "offset": best_off[keep],
            "offset_s": np.round(best_off[keep] * ITEM_SECONDS, 3), "bit_error_rate": np.round(best_ber[keep], 4),
            "overlap_s": np.round(best_n[keep] * ITEM_SECONDS, 2), "votes": part[keep, 3]}))
    if not out:
        return pd.DataFrame(columns=MATCH_COLUMNS)
    return pd.concat(out, ignore_index=True)[MATCH_COLUMNS]


def _padded(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints as one zero-padded (n, longest) uint32 array and their lengths."""
    lengths = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
    out = np.zeros((len(arrays), int(lengths.max(initial=0))), np.uint32)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out, lengths


def _best_alignment(wa: np.ndarray, la: np.ndarray, wb: np.ndarray, lb: np.ndarray, offsets: np.ndarray,
                    slack: int, min_overlap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair, the offset in ``offsets +- slack`` with the lowest bit error rate (``b[j] ~ a[j + offset]``).

    Overlaps under ``min_overlap`` words are skipped; a pair with none left gets (1.0, offset, 0).
    """
    n = len(offsets)
    best_ber = np.ones(n)
    best_off = offsets.copy()
    best_n = np.zeros(n, np.int64)
    j = np.arange(wb.shape[1])
    rows = np.arange(n)[:, None]
    for delta in range(-slack, slack + 1):
        off = offsets + delta
        ia = j[None, :] + off[:, None]
        valid = (ia >= 0) & (ia < la[:, None]) & (j[None, :] < lb[:, None])
        x = wa[rows, np.clip(ia, 0, max(wa.shape[1] - 1, 0))] ^ wb
        x[~valid] = 0
        errors = np.bitwise_count(x).sum(axis=1, dtype=np.int64)
        overlap = valid.sum(axis=1)
        ber = np.where(overlap > 0, errors / (32.0 * np.maximum(overlap, 1)), 1.0)
        better = (overlap >= min_overlap) & (ber < best_ber)
        best_ber[better], best_off[better], best_n[better] = ber[better], off[better], overlap[better]
    return best_ber, best_off, best_n


class FingerprintIndex:
    """Every fingerprinted song of the catalogue, its postings, and the verified matches so far.

    ``add`` takes new fingerprints and returns the matches they reveal (against every song already
    indexed and among themselves); ``matches`` accumulates all of them. Song ids, not row numbers,
    appear in every returned table.
    """

    def __init__(self, sampling: int = KEY_SAMPLING) -> None:
        self.sampling = sampling
        self.song_ids: list[str] = []
        self.created_at: list[pd.Timestamp] = []
        self.words: list[np.ndarray] = []
        self.row_of: dict[str, int] = {}
        self.matches = pd.DataFrame(columns=MATCH_COLUMNS)
        self._postings = Postings(np.empty(0, np.uint32), np.empty(0, np.uint32), np.empty(0, np.int32))
        self._pending_parts: list[pa.Table] = []

    def __len__(self) -> int:
        return len(self.song_ids)

    def add(self, fingerprints: Iterable[SongFingerprint], created_at: dict[str, pd.Timestamp]) -> pd.DataFrame:
        """Index the fingerprints with words (others are ignored) and return the matches they reveal.

        ``created_at`` maps song id -> upload time (UTC). A song already indexed is replaced: its old
        postings stay but point at its row, whose words are the new ones.
        """
        new_rows: list[int] = []
        batch_ids, batch_times, batch_words = [], [], []
        for fp in fingerprints:
            if fp.words is None:
                continue
            when = pd.Timestamp(created_at[fp.song_id])
            row = self.row_of.get(fp.song_id)
            if row is None:
                row = len(self.song_ids)
                self.row_of[fp.song_id] = row
                self.song_ids.append(fp.song_id)
                self.created_at.append(when)
                self.words.append(fp.words)
            else:
                self.created_at[row], self.words[row] = when, fp.words
            new_rows.append(row)
            batch_ids.append(fp.song_id)
            batch_times.append(when)
            batch_words.append(fp.words)
        if not new_rows:
            return self.matches.iloc[0:0].copy()
        fresh = Postings.from_fingerprints((self.words[r] for r in new_rows), sampling=self.sampling)
        fresh.songs = np.asarray(new_rows, np.uint32)[fresh.songs] if len(fresh.songs) else fresh.songs
        self._postings = Postings(np.concatenate([self._postings.keys, fresh.keys]),
                                  np.concatenate([self._postings.songs, fresh.songs]),
                                  np.concatenate([self._postings.positions, fresh.positions]))
        is_new = np.zeros(len(self.song_ids), bool)
        is_new[new_rows] = True
        found = self._matches_for(is_new)
        self._pending_parts.append(_fingerprint_table(batch_ids, batch_times, batch_words))
        if len(found):
            replaced = set(batch_ids)
            old = self.matches[~(self.matches["song_a"].isin(replaced) | self.matches["song_b"].isin(replaced))]
            self.matches = pd.concat([old, found], ignore_index=True) if len(old) else found
        return found

    def _matches_for(self, is_new: np.ndarray) -> pd.DataFrame:
        candidates = candidate_pairs(self._postings, is_new)
        verified = verify_pairs(candidates, lambda r: self.words[r])
        ids = np.asarray(self.song_ids, dtype=object)
        verified["song_a"] = ids[verified["song_a"].to_numpy(np.int64)] if len(verified) else []
        verified["song_b"] = ids[verified["song_b"].to_numpy(np.int64)] if len(verified) else []
        return verified

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the batches added since the last save (one new part file each) and all matches."""
        directory = Path(directory)
        parts = directory / "fingerprints"
        parts.mkdir(parents=True, exist_ok=True)
        next_part = max((int(m.group(1)) for p in parts.iterdir() if (m := _PART_RE.search(p.name))), default=-1) + 1
        for table in self._pending_parts:
            write_parquet_atomic(table, parts / f"part-{next_part:05d}.parquet")
            next_part += 1
        self._pending_parts = []
        write_parquet_atomic(self.matches.astype({"votes": "int64", "offset": "int64"}), directory / "matches.parquet")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, sampling: int = KEY_SAMPLING) -> FingerprintIndex:
        """The index saved under ``directory`` (an empty one when nothing was saved yet)."""
        directory = Path(directory)
        index = cls(sampling=sampling)
        files = sorted((p for p in (directory / "fingerprints").glob("part-*.parquet") if _PART_RE.search(p.name)),
                       key=lambda p: int(_PART_RE.search(p.name).group(1)))
        latest: dict[str, tuple[pd.Timestamp, np.ndarray]] = {}
        for path in files:
            table = pq.read_table(path)
            for sid, when, blob in zip(table.column("song_id").to_pylist(), table.column("created_at").to_pylist(),
                                       table.column("words").to_pylist()):
                latest[sid] = (pd.Timestamp(when), np.frombuffer(blob, dtype="<u4").astype(np.uint32))
        for sid, (when, words) in latest.items():
            index.row_of[sid] = len(index.song_ids)
            index.song_ids.append(sid)
            index.created_at.append(when)
            index.words.append(words)
        index._postings = Postings.from_fingerprints(index.words, sampling=sampling)
        matches_file = directory / "matches.parquet"
        if matches_file.exists():
            index.matches = pd.read_parquet(matches_file)
        return index


def _fingerprint_table(ids: list[str], times: list[pd.Timestamp], words: list[np.ndarray]) -> pa.Table:
    return pa.table({
        "song_id": pa.array(ids, pa.string()),
        "created_at": pa.array([t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC") for t in times],
                               pa.timestamp("us", tz="UTC")),
        "words": pa.array([np.asarray(w, "<u4").tobytes() for w in words], pa.binary()),
    })
