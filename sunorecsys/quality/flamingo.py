"""Music Flamingo quality scorer: the guide's prompt, batched greedy generation, parse, cache.

``score_songs`` is cache-first: every song's audio hash is taken from the file's bytes (memoised by
path, size and mtime) and checked against ``<cache_dir>/<song_id>.json`` before any model is
loaded, so a fully cached run never loads a model. Uncached songs are decoded with the project's
one audio loader (16 kHz mono float32, capped at the checkpoint's limit), scored in batches of
``batch_size`` (left padding, one conversation per song), and cached as each batch finishes, so a
killed run loses at most the batch in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sunorecsys.audio import AudioUnavailable, decode_audio, resolve_audio_path
from sunorecsys.paths import DataPaths
from sunorecsys.quality.base import ScoreResult
from sunorecsys.quality.cache import AudioHashMemo, UnsafeSongId, read_cached, write_cached
from sunorecsys.quality.dimensions import DESCRIPTIVE_FIELDS
from sunorecsys.quality.flamingo_loading import (
    DEFAULT_MODEL_ID,
    MODEL_CLASSES,
    LoadedFlamingo,
    ModelWeightsMissing,
    load_flamingo,
    resolve_device,
)
from sunorecsys.quality.parsing import PARSER_VERSION, parse_quality_response
from sunorecsys.quality.prompt import QUALITY_PROMPT_TEMPLATE, prompt_version

__all__ = ["DEFAULT_MODEL_ID", "SAMPLE_RATE", "ModelWeightsMissing", "MusicFlamingoQualityScorer"]

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000  # Hz, what the Whisper-style feature extractor expects (arrays are not resampled)
DEFAULT_MAX_NEW_TOKENS = 512  # the guide's JSON reply with descriptions fits in ~250 Qwen2 tokens


@dataclass
class DecodedBatch:
    """One batch ready for the model: the songs, the failed results of songs without audio (by
    position), the waveforms with their hashes and positions, and the processor's output for the
    waveforms on the CPU (None when it has not been made or failed: generation then makes it)."""

    records: list[dict[str, Any]]
    results: list[ScoreResult | None] = field(default_factory=list)
    waveforms: list = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    inputs: Any = None

    def __post_init__(self) -> None:
        self.results = self.results or [None] * len(self.records)


def _records(songs: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(songs, pd.DataFrame):
        return songs.to_dict("records")
    return [dict(s) for s in songs]


class MusicFlamingoQualityScorer:
    """Scores songs with Music Flamingo on the guide's five dimensions (each in [0, 1]).

    model_id: hub id (looked up in the local Hugging Face cache) or a local checkpoint directory.
    device: 'cuda' / 'cpu' / None (cuda when available). dtype: None -> bf16 on GPU, fp32 on CPU.
    batch_size: songs per generate() call. max_new_tokens: reply length cap (tokens).
    local_files_only / allow_download: weights are never downloaded unless allow_download=True.
    paths: the data root used to find audio (default: DataPaths.from_env()).
    fetch: allow fetching audio_url under the allow-list (sunorecsys.audio).
    """

    name = "music_flamingo"

    def __init__(self, model_id: str = DEFAULT_MODEL_ID, device: str | None = None, dtype: Any = None,
                 batch_size: int = 1, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 prompt: str = QUALITY_PROMPT_TEMPLATE, local_files_only: bool = True,
                 paths: DataPaths | None = None, allow_download: bool = False, fetch: bool = True,
                 max_audio_seconds: float | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.model_id = str(model_id)
        self.device = device
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.prompt = prompt
        self.local_files_only = bool(local_files_only) and not allow_download
        self.paths = paths
        self.fetch = fetch
        self.max_audio_seconds = max_audio_seconds
        self._loaded: LoadedFlamingo | None = None
        self.last_run: dict[str, Any] = {}
        # The decode thread runs the processor (tokenizer included) while the main thread decodes
        # replies: a fast tokenizer used from two threads at once can fail ("Already borrowed").
        self._tokenizer_lock = threading.Lock()

    # ---- identity -------------------------------------------------------------------------------
    @property
    def prompt_version(self) -> str:
        return prompt_version(self.prompt)

    @property
    def version(self) -> str:
        """``<model id or path as given>+prompt-<hash>+parser-<n>``.

        The model part is the name you pass, not a hash of the weights, so that a fully cached run
        needs no weights at all; point at a different id/path to force rescoring.
        """
        return f"{self.model_id}+prompt-{self.prompt_version}+parser-{PARSER_VERSION}"

    @property
    def model_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> LoadedFlamingo:
        """Load processor and model now (ModelWeightsMissing with a how-to when absent)."""
        if self._loaded is None:
            device = resolve_device(self.device)
            t0 = time.perf_counter()
            self._loaded = load_flamingo(self.model_id, device=device, dtype=self.dtype,
                                         local_files_only=self.local_files_only)
            log.info("loaded %s (%s) on %s in %.1f s", self.model_id, self._loaded.model_type, device,
                     time.perf_counter() - t0)
        return self._loaded

    # ---- generation ------------------------------------------------------------------------------
    def _conversation(self, samples) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"type": "text", "text": self.prompt},
                                             {"type": "audio", "audio": samples}]}]

    def processor_inputs(self, waveforms: list) -> Any:
        """The processor's output (features, prompt tokens, masks) for a batch of 16 kHz mono float32
        arrays, on the CPU: the CPU part of the model's input, made in the decode thread."""
        loaded = self.load()
        with self._tokenizer_lock:
            return loaded.processor.apply_chat_template(
                [self._conversation(w) for w in waveforms], tokenize=True, add_generation_prompt=True,
                return_dict=True)

    def to_model(self, inputs: Any) -> dict[str, Any]:
        """``inputs`` on the model's device, floating tensors cast to the model's dtype (bf16
        pitfall, upstream issue 42259)."""
        import torch

        model = self.load().model
        return {k: (v.to(model.device, dtype=model.dtype) if torch.is_floating_point(v) else v.to(model.device))
                if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    def prepare_inputs(self, waveforms: list) -> Any:
        """Processor output for a batch of 16 kHz mono float32 arrays, on the model's device."""
        return self.to_model(self.processor_inputs(waveforms))

    def generate_token_ids(self, waveforms: list, inputs: Any = None) -> list[list[int]]:
        """Greedy (do_sample=False) new token ids per waveform, one generate() call for the batch.
        inputs: ``processor_inputs(waveforms)`` when already made (else made here)."""
        import torch

        loaded = self.load()
        inputs = self.to_model(inputs) if inputs is not None else self.prepare_inputs(waveforms)
        prompt_len = inputs["input_ids"].shape[1]  # left padding: every row's prompt ends here
        with torch.inference_mode():
            out = loaded.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                        temperature=None, top_p=None, top_k=None)
        pad_id = loaded.processor.tokenizer.pad_token_id
        eos = loaded.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        rows = []
        for row in out[:, prompt_len:].tolist():
            # Finished rows are padded to the batch's longest reply; cut at the first end token.
            cut = next((i for i, t in enumerate(row) if t in eos_ids or t == pad_id), len(row))
            rows.append(row[:cut])
        return rows

    def generate_replies(self, waveforms: list, inputs: Any = None) -> list[str]:
        """The model's text reply per waveform (special tokens removed)."""
        tokenizer = self.load().processor.tokenizer
        ids = self.generate_token_ids(waveforms, inputs)
        with self._tokenizer_lock:
            return [tokenizer.decode(row, skip_special_tokens=True) for row in ids]

    # ---- scoring ---------------------------------------------------------------------------------
    def _failed(self, song_id: str, error: str, audio_sha256: str | None = None,
                raw: str | None = None, fields: dict | None = None) -> ScoreResult:
        return ScoreResult(song_id=song_id, status="failed", scores={}, overall_quality_score=None,
                           fields=fields or self._meta(), raw_response=raw, error=error,
                           scorer_version=self.version, audio_sha256=audio_sha256, cached=False)

    def _meta(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "prompt_version": self.prompt_version}

    def result_from_reply(self, song_id: str, reply: str, audio_sha256: str | None) -> ScoreResult:
        """Parse one reply into a result (ok / partial / failed; never a default score)."""
        parsed = parse_quality_response(reply)
        fields = {**self._meta(), **{k: parsed.fields[k] for k in DESCRIPTIVE_FIELDS if k in parsed.fields},
                  "missing_dimensions": list(parsed.missing), "parse_source": parsed.source}
        if parsed.status == "failed":
            return self._failed(song_id, parsed.error or "unparseable reply", audio_sha256, reply, fields)
        return ScoreResult(song_id=song_id, status=parsed.status, scores=dict(parsed.scores),
                           overall_quality_score=round(parsed.overall_quality_score, 6), fields=fields,
                           raw_response=reply, error=parsed.error, scorer_version=self.version,
                           audio_sha256=audio_sha256, cached=False)

    def _audio_cap(self) -> float:
        if self.max_audio_seconds is not None:
            return float(self.max_audio_seconds)
        if self._loaded is not None:
            return self._loaded.max_audio_seconds
        return min(cap for _, cap in MODEL_CLASSES.values())

    def decode_batch(self, songs: pd.DataFrame | Iterable[Mapping[str, Any]], paths: DataPaths | None = None,
                     hashes: list[str | None] | None = None) -> DecodedBatch:
        """The model's inputs for ``songs``: 16 kHz mono arrays (capped at the checkpoint's limit), the
        processor's features for them, and, for songs whose audio is unavailable, their ``failed`` results. ``hashes`` (the files' sha256, in
        the order of ``songs``) spares a second read of files the caller already hashed. No model call: safe to run in a
        thread while the previous batch generates."""
        records = _records(songs)
        paths = paths or self.paths or DataPaths.from_env()
        batch = DecodedBatch(records)
        self.load()  # before decoding: the checkpoint decides the audio cap
        for i, song in enumerate(records):
            song_id = str(song.get("song_id"))
            try:
                path = resolve_audio_path(song, paths, fetch=self.fetch)
                # Straight to 16 kHz mono in blocks; nothing past the model's cap is decoded.
                audio = decode_audio(path, sample_rate=SAMPLE_RATE, mono=True, max_seconds=self._audio_cap(),
                                     to_end=False, sha256=hashes[i] if hashes else None)
            except AudioUnavailable as exc:
                batch.results[i] = self._failed(song_id, f"audio {exc.reason}: {exc.detail}")
                continue
            batch.waveforms.append(audio.samples)
            batch.hashes.append(audio.sha256)
            batch.index.append(i)
        if batch.waveforms:
            try:
                # The features too, so that the model's thread only runs the model.
                batch.inputs = self.processor_inputs(batch.waveforms)
            except Exception as exc:  # noqa: BLE001 - generate_batch makes them again and records the error
                log.warning("processor failed on a decoded batch (%s); retried at generation", exc)
        return batch

    def generate_batch(self, batch: DecodedBatch) -> list[ScoreResult]:
        """Generate and parse the replies of a decoded batch, one result per song in input order.
        A generate() error on a batch is retried song by song, so one bad input fails alone."""
        results = list(batch.results)
        if batch.waveforms:
            try:
                replies = self.generate_replies(batch.waveforms, batch.inputs)
            except Exception as exc:  # noqa: BLE001 - retried one by one below, then recorded
                if len(batch.waveforms) == 1:
                    replies = [exc]
                else:
                    log.warning("batched generation failed (%s); retrying song by song", exc)
                    replies = []
                    for w in batch.waveforms:
                        try:
                            replies.extend(self.generate_replies([w]))
                        except Exception as one_exc:  # noqa: BLE001
                            replies.append(one_exc)
            for i, sha, reply in zip(batch.index, batch.hashes, replies):
                song_id = str(batch.records[i].get("song_id"))
                if isinstance(reply, Exception):
                    results[i] = self._failed(song_id, f"generation failed: {type(reply).__name__}: {reply}", sha)
                else:
                    results[i] = self.result_from_reply(song_id, reply, sha)
        return [r for r in results if r is not None]

    def score_batch(self, songs: pd.DataFrame | Iterable[Mapping[str, Any]],
                    paths: DataPaths | None = None) -> list[ScoreResult]:
        """Score songs with the model (no cache), one result per song in input order.

        Songs whose audio is unavailable are ``failed`` with the reason; they do not stop the batch.
        A generate() error on a batch is retried song by song, so one bad input fails alone.
        """
        return self.generate_batch(self.decode_batch(songs, paths))

    def score_songs(self, songs: pd.DataFrame | Iterable[Mapping[str, Any]],
                    cache_dir: str | Path | None = None, progress: bool = True,
                    paths: DataPaths | None = None,
                    on_batch: Callable[[list[ScoreResult]], None] | None = None) -> list[ScoreResult]:
        """Cache-first scoring of every song, results in input order.

        cache_dir: per-song cache (None: no cache). on_batch(results_so_far) is called after each
        model batch (for periodic output writes). ``self.last_run`` then holds counts:
        songs, cached, scored, failed, model_loaded, hashed_files, seconds.
        """
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        records = _records(songs)
        paths = paths or self.paths or DataPaths.from_env()
        version = self.version
        memo = AudioHashMemo(cache_dir)
        results: list[ScoreResult | None] = [None] * len(records)
        todo: list[int] = []
        hashes: dict[int, str] = {}
        stale: dict[str, int] = {}
        for i, song in enumerate(records):
            song_id = song.get("song_id")
            try:
                path = resolve_audio_path(song, paths, fetch=self.fetch)
                sha = hashes[i] = memo.sha256(path)
            except AudioUnavailable as exc:
                results[i] = self._failed(str(song_id), f"audio {exc.reason}: {exc.detail}")
                continue
            except OSError as exc:
                results[i] = self._failed(str(song_id), f"audio unreadable: {exc}")
                continue
            if cache_dir is not None:
                try:
                    hit, why = read_cached(cache_dir, song_id, version, sha)
                except UnsafeSongId as exc:
                    results[i] = self._failed(str(song_id), str(exc), sha)
                    continue
                if hit is not None:
                    results[i] = hit
                    continue
                stale[why] = stale.get(why, 0) + 1
            todo.append(i)
        memo.save()
        n_cached = sum(1 for r in results if r is not None and r.cached)
        bar = tqdm(total=len(records), initial=len(records) - len(todo), unit="song",
                   desc="music flamingo", disable=not progress, dynamic_ncols=True)
        chunks = [todo[start:start + self.batch_size] for start in range(0, len(todo), self.batch_size)]
        # The next batch is decoded and featurised in a thread while this one generates (dr_mp3, soxr
        # and torch release the GIL), so the model does not wait for the CPU path between batches.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flamingo-decode")
        try:
            pending = (pool.submit(self.decode_batch, [records[i] for i in chunks[0]], paths,
                                   [hashes[i] for i in chunks[0]])
                       if chunks else None)
            for n, chunk in enumerate(chunks):
                decoded = pending.result()
                pending = (pool.submit(self.decode_batch, [records[i] for i in chunks[n + 1]], paths,
                                   [hashes[i] for i in chunks[n + 1]])
                           if n + 1 < len(chunks) else None)
                for i, result in zip(chunk, self.generate_batch(decoded)):
                    results[i] = result
                    if cache_dir is not None and result.succeeded:
                        write_cached(cache_dir, result)
                bar.update(len(chunk))
                if on_batch is not None:
                    on_batch([r for r in results if r is not None])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
            done = [r for r in results if r is not None]
            self.last_run = {
                "songs": len(records), "cached": n_cached,
                "scored": sum(1 for r in done if not r.cached and r.succeeded),
                "failed": sum(1 for r in done if r.status == "failed"),
                "not_cached_because": stale, "model_loaded": self.model_loaded,
                "hashed_files": memo.hashed, "seconds": round(time.perf_counter() - t0, 3),
            }
        return [r for r in results if r is not None]
