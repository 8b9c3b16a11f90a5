"""Real music for calibrating and judging the signal checks: Debian's music packages, fetched at run time.

Nothing here is committed audio. :func:`fetch_package` runs ``apt-get download <pkg>`` into a cache
folder (``$SUNORECSYS_REAL_AUDIO_CACHE`` or ``~/.cache/sunorecsys/debian-music``; ``apt-get update``
first when apt has no list yet) and unpacks it with ``dpkg-deb -x``. :func:`list_tracks` finds the
decodable recordings (OGG/Opus/MP3/FLAC/WAV, also inside Quake-style ``.pk3`` zips; tracker modules
and sound effects are skipped). :func:`build_calibration_set` cuts seeded excerpts, applies damage
with realistic parameters, writes every excerpt the way a catalogue would hold it (an MP3 at
192 kbps unless the damage says otherwise) and returns the ground truth, split BY TRACK into a
``tune`` half (thresholds may be set on it) and a ``report`` half (figures are reported on it).

Licences (read in each package's ``/usr/share/doc/<pkg>/copyright``; :func:`fetch_package`
checks the expected words are still there):

================================ ==================================================================
package                          licence of the music
================================ ==================================================================
wesnoth-1.16-music               GPL-2+ (orchestral/folk game score)
hyperrogue-music                 GPL-2+ (ambient/electronic; 22.05/32/44.1/48 kHz files)
drascula-music                   Drascula licence: freeware, BSD-like, DFSG-free (1990s game score)
asc-music                        GPL-2+ (rock; three 22.05 kHz 80 kbps MP3s: natively band-limited)
fretsonfire-songs-muldjord       CC BY-SA 3.0 (metal band, multitrack stems mixed here)
fretsonfire-songs-sectoid        Expat/MIT-style (metal/rock band stems mixed here)
singularity-music                CC BY-SA 3.0 (ambient electronic, 48 kHz)
planetblupi-music-ogg            GPL-3+ (light orchestral/pop game score)
warzone2100-music                CC BY-SA 3.0 or GPL-2+ (Opus, electronic/ambient)
ufoai-music                      GPL-2+, CC BY-SA 3.0, CC BY 3.0 per file (orchestral/ambient)
nexuiz-music                     GPL-2+ (electronic/industrial)
================================ ==================================================================

Vocals: no package in Debian bookworm describes its music as sung (``apt-cache search`` for
vocal/singing/song/karaoke finds only performous, which ships no songs and suggests the two
fretsonfire packages). The fretsonfire packages are full band recordings (the closest to a Suno
song's make-up: Muldjord's and Sectoid's metal/rock songs, mixed here from song + guitar + rhythm
stems; 8 tracks, 24 excerpts, split across both halves); the rest are game scores, mostly
instrumental. So the set holds no music labelled as sung: how the detectors behave on a lead vocal
(sibilance in the 4-16 kHz noise bands, held sung notes for the repeat detector) is measured only as
far as those band recordings carry one; the sample catalogue's synthesised songs have none either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal
import soundfile as sf
import soxr

DEFAULT_CACHE = Path(os.environ.get("SUNORECSYS_REAL_AUDIO_CACHE",
                                    Path.home() / ".cache" / "sunorecsys" / "debian-music"))
AUDIO_SUFFIXES = (".ogg", ".oga", ".opus", ".mp3", ".flac", ".wav")
# Ground-truth format of the set; bump when an excerpt or a damage is made differently.
SET_VERSION = "debian-music-set/1"


class RealAudioUnavailable(RuntimeError):
    """The Debian packages could not be had (no apt, no network): a clear message, never a silent skip."""


@dataclass(frozen=True)
class Package:
    """One Debian music package: its name, the music's licence and what must be in its copyright file."""

    name: str
    licence: str
    licence_words: tuple[str, ...]
    style: str
    # Substrings of member paths that are not music (sound effects, stems mixed elsewhere).
    skip: tuple[str, ...] = ()


PACKAGES: tuple[Package, ...] = (
    Package("wesnoth-1.16-music", "GPL-2+", ("GPL-2",), "orchestral/folk game score"),
    Package("hyperrogue-music", "GPL-2+", ("GPL-2+",), "ambient/electronic", skip=("/sounds/",)),
    Package("drascula-music", "Drascula licence (freeware, BSD-like)", ("Drascula-License",),
            "1990s adventure-game score"),
    Package("asc-music", "GPL-2+", ("GPL-2+",), "rock, 22.05 kHz 80 kbps MP3"),
    Package("fretsonfire-songs-muldjord", "CC BY-SA 3.0", ("Attribution-ShareAlike 3.0",), "metal band"),
    Package("fretsonfire-songs-sectoid", "Expat/MIT-style", ("Permission is hereby granted",), "metal/rock band"),
    Package("singularity-music", "CC BY-SA 3.0", ("Attribution, ShareAlike",), "ambient electronic"),
    Package("planetblupi-music-ogg", "GPL-3+", ("GPL-3+",), "light orchestral/pop game score"),
    Package("warzone2100-music", "CC BY-SA 3.0 / GPL-2+", ("GPL-2+",), "electronic/ambient (Opus)"),
    Package("ufoai-music", "GPL-2+ / CC BY-SA 3.0 / CC BY 3.0", ("CC-BY-SA-3.0",), "orchestral/ambient"),
    Package("nexuiz-music", "GPL-2+", ("GNU General Public License",), "electronic/industrial"),
)
PACKAGE_BY_NAME = {p.name: p for p in PACKAGES}

# Damage types and what a detector is expected to do with them.
#   hard: the song must be hard-failed (never recommended).
#   degraded: must score below its clean twin, must NOT be hard-failed (low_bitrate).
HARD_DAMAGE: tuple[str, ...] = (
    "clipped", "truncated", "band_limited", "resampled_16k", "dc_offset", "dropouts", "stuck_buffer",
    "noise", "near_silent",
)
SOFT_DAMAGE: tuple[str, ...] = ("low_bitrate",)
DAMAGE_TYPES: tuple[str, ...] = HARD_DAMAGE + SOFT_DAMAGE

CLEAN_MP3_KBPS = 192


# --- fetching ---------------------------------------------------------------------------------------

def _run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    except FileNotFoundError as exc:
        raise RealAudioUnavailable(f"{cmd[0]} is not installed (a Debian system is needed): {exc}") from exc


def fetch_package(name: str, cache: Path = DEFAULT_CACHE) -> Path:
    """Download (``apt-get download``) and unpack (``dpkg-deb -x``) one package; its root folder.

    Cached: a second call costs nothing. Raises :class:`RealAudioUnavailable` with apt's message when
    the package cannot be had, and ValueError when its copyright file no longer holds the licence
    recorded in :data:`PACKAGES`.
    """
    cache = Path(cache)
    root = cache / "x" / name
    done = root / ".unpacked"
    if not done.exists():
        debs = cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        found = sorted(debs.glob(f"{name}_*.deb"))
        if not found:
            result = _run(["apt-get", "download", name], cwd=debs)
            if result.returncode != 0:
                # A fresh machine may have no package lists yet.
                update = _run(["apt-get", "update", "-qq"])
                result = _run(["apt-get", "download", name], cwd=debs)
                if result.returncode != 0:
                    raise RealAudioUnavailable(
                        f"apt-get download {name} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}"
                        f" (apt-get update said: {update.stderr.strip()[-300:]})")
            found = sorted(debs.glob(f"{name}_*.deb"))
        if not found:
            raise RealAudioUnavailable(f"apt-get download {name} left no .deb in {debs}")
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        result = _run(["dpkg-deb", "-x", str(found[-1]), str(root)])
        if result.returncode != 0:
            raise RealAudioUnavailable(f"dpkg-deb -x {found[-1].name} failed: {result.stderr.strip()}")
        _unzip_pk3(root)
        done.write_text(found[-1].name, encoding="utf-8")
    package = PACKAGE_BY_NAME.get(name)
    if package is not None:
        copyright_file = root / "usr" / "share" / "doc" / name / "copyright"
        text = copyright_file.read_text(encoding="utf-8", errors="replace") if copyright_file.exists() else ""
        missing = [w for w in package.licence_words if w not in text]
        if missing:
            raise ValueError(f"{name}: copyright file no longer mentions {missing}; re-check its licence")
    return root


def _unzip_pk3(root: Path) -> None:
    """Quake-style games (ufoai, nexuiz) ship their music inside .pk3 zips: unpack the audio members."""
    for pk3 in root.rglob("*.pk3"):
        with zipfile.ZipFile(pk3) as archive:
            for member in archive.namelist():
                if member.lower().endswith(AUDIO_SUFFIXES):
                    archive.extract(member, pk3.parent / (pk3.stem + "_pk3"))


@dataclass(frozen=True)
class Track:
    """One recording: ``files`` are stems mixed into one (fretsonfire ships song + guitar + rhythm)."""

    package: str
    track_id: str
    files: tuple[Path, ...]
    duration_s: float
    sample_rate: int


def list_tracks(name: str, root: Path, min_seconds: float = 40.0) -> list[Track]:
    """The recordings of one unpacked package that soundfile decodes and that last >= ``min_seconds``."""
    package = PACKAGE_BY_NAME.get(name, Package(name, "?", (), "?"))
    # Symlinks are the same recording under another name (drascula links each track 5 times).
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                   and not p.is_symlink() and not any(s in p.as_posix() for s in package.skip))
    seen: set[str] = set()
    unique = []
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            unique.append(path)
    files = unique
    groups: dict[str, list[Path]] = {}
    for path in files:
        if name.startswith("fretsonfire"):
            # song.ogg + guitar.ogg (+ rhythm.ogg) of one song folder make one recording.
            if path.stem not in ("song", "guitar", "rhythm"):
                continue
            key = path.parent.name
        else:
            key = path.relative_to(root).with_suffix("").as_posix().split("/usr/share/")[-1]
        groups.setdefault(key, []).append(path)
    tracks = []
    for key, paths in sorted(groups.items()):
        try:
            infos = [sf.info(str(p)) for p in paths]
        except (sf.LibsndfileError, RuntimeError):
            continue  # tracker modules and anything libsndfile cannot read
        rates = {int(i.samplerate) for i in infos}
        duration = min(i.frames / i.samplerate for i in infos)
        if len(rates) != 1 or duration < min_seconds:
            continue
        track_id = f"{name}:{key}"
        tracks.append(Track(name, track_id, tuple(paths), float(duration), rates.pop()))
    return tracks


def load_excerpt(track: Track, start_s: float, seconds: float) -> tuple[np.ndarray, int]:
    """``seconds`` of ``track`` from ``start_s`` as float32 (n, 2) at the track's rate (stems summed)."""
    out = None
    for path in track.files:
        with sf.SoundFile(str(path)) as fh:
            fh.seek(int(start_s * fh.samplerate))
            data = fh.read(int(seconds * fh.samplerate), dtype="float32", always_2d=True)
        if data.shape[1] == 1:
            data = np.repeat(data, 2, axis=1)
        data = data[:, :2]
        if out is None:
            out = data
        else:
            n = min(out.shape[0], data.shape[0])
            out = out[:n] + data[:n]
    assert out is not None
    peak = float(np.abs(out).max(initial=0.0))
    if peak > 0.99:  # summed stems can exceed full scale: bring the mix back under it, as a mix engineer would
        out = out * (0.99 / peak)
    return np.ascontiguousarray(out, dtype=np.float32), track.sample_rate


# --- writing and damaging ---------------------------------------------------------------------------

# libsndfile's ``compression_level`` for a constant-bitrate MP3 (layer III at 32/44.1/48 kHz): it maps
# the level onto LAME's bitrate ladder in steps; measured here (file size of 10 s of white noise).
MP3_LEVEL_FOR_KBPS: dict[int, float] = {32: 0.99, 40: 0.97, 48: 0.94, 56: 0.91, 64: 0.875, 80: 0.83, 96: 0.775,
                                        112: 0.72, 128: 0.65, 160: 0.55, 192: 0.42, 320: 0.0}


def write_mp3(path: Path, samples: np.ndarray, sample_rate: int, kbps: int = CLEAN_MP3_KBPS) -> None:
    """Write a constant-bitrate MP3 at ``kbps`` (a key of :data:`MP3_LEVEL_FOR_KBPS`) with libsndfile's LAME."""
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sample_rate, format="MP3", subtype="MPEG_LAYER_III",
             compression_level=MP3_LEVEL_FOR_KBPS[kbps], bitrate_mode="CONSTANT")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _lowpass(x: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    sos = scipy.signal.butter(8, cutoff_hz, fs=sample_rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, x, axis=0).astype(np.float32)


def _via_rate(x: np.ndarray, sample_rate: int, low_rate: int) -> np.ndarray:
    """Down to ``low_rate`` and back (what a file made from a ``low_rate`` source holds)."""
    down = soxr.resample(x, sample_rate, low_rate, quality="HQ")
    up = soxr.resample(down, low_rate, sample_rate, quality="HQ")
    n = x.shape[0]
    if up.shape[0] < n:
        up = np.concatenate([up, np.zeros((n - up.shape[0], x.shape[1]), np.float32)])
    return np.ascontiguousarray(up[:n], dtype=np.float32)


def _pink(n: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) Gaussian noise, unit RMS, shaped in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal((n, channels)), axis=0)
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f)[:, None]
    noise = np.fft.irfft(spec, n=n, axis=0)
    return (noise / noise.std()).astype(np.float32)


def apply_damage(kind: str, x: np.ndarray, sample_rate: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, dict]:
    """A damaged copy of ``x`` (float32 (n, 2)) and the parameters used (the ground truth).

    Parameters are drawn from ranges seen in delivered audio: clipping from +6 to +15 dB of
    over-drive before encoding; band limits of 3-10 kHz (low-pass) or a 22.05/11.025 kHz source;
    DC offsets of 3-12 % of full scale; 3-8 gaps of 20-400 ms; one to three stuck buffers of
    1024-8192 samples repeated 4-20 times; white or pink noise at 6-20 dB SNR; 45-60 dB of
    attenuation for near-silence. Truncation and low bitrate act on the encoded file (see
    :func:`write_excerpt`), so they return ``x`` unchanged here.
    """
    n = x.shape[0]
    if kind == "clipped":
        gain_db = float(rng.uniform(6.0, 15.0))
        peak = float(np.abs(x).max(initial=1e-9))
        y = np.clip(x / peak * 10 ** (gain_db / 20), -1.0, 1.0)
        return y.astype(np.float32), {"overdrive_db": round(gain_db, 2)}
    if kind == "band_limited":
        mode = str(rng.choice(["lowpass", "source_22k", "source_11k"], p=[0.5, 0.3, 0.2]))
        if mode == "lowpass":
            cutoff = float(rng.uniform(3000.0, 10000.0))
            return _lowpass(x, sample_rate, cutoff), {"mode": mode, "cutoff_hz": round(cutoff)}
        low = 22050 if mode == "source_22k" else 11025
        return _via_rate(x, sample_rate, low), {"mode": mode, "cutoff_hz": low // 2}
    if kind == "resampled_16k":
        return _via_rate(x, sample_rate, 16000), {"cutoff_hz": 8000}
    if kind == "dc_offset":
        offset = float(rng.uniform(0.03, 0.12)) * float(rng.choice([-1.0, 1.0]))
        return np.clip(x + offset, -1.0, 1.0).astype(np.float32), {"offset": round(offset, 4)}
    if kind == "dropouts":
        y = x.copy()
        gaps = []
        for _ in range(int(rng.integers(3, 9))):
            length = int(rng.uniform(0.02, 0.4) * sample_rate)
            start = int(rng.integers(sample_rate, n - length - sample_rate))
            y[start:start + length] = 0.0
            gaps.append([round(start / sample_rate, 3), round(length / sample_rate, 3)])
        return y, {"gaps_s": gaps}
    if kind == "stuck_buffer":
        y = x.copy()
        events = []
        for _ in range(int(rng.integers(1, 4))):
            size = int(rng.choice([1024, 2048, 4096, 8192]))
            repeats = int(rng.integers(4, 21))
            start = int(rng.integers(sample_rate, n - size * (repeats + 1) - sample_rate))
            block = y[start:start + size].copy()
            for r in range(1, repeats + 1):
                y[start + r * size:start + (r + 1) * size] = block
            events.append([round(start / sample_rate, 3), size, repeats])
        return y, {"events": events}
    if kind == "noise":
        snr_db = float(rng.uniform(6.0, 20.0))
        colour = str(rng.choice(["white", "pink"]))
        noise = (rng.standard_normal(x.shape).astype(np.float32) if colour == "white"
                 else _pink(n, x.shape[1], rng))
        noise *= _rms(x) / max(_rms(noise), 1e-12) * 10 ** (-snr_db / 20)
        return np.clip(x + noise, -1.0, 1.0).astype(np.float32), {"snr_db": round(snr_db, 2), "colour": colour}
    if kind == "near_silent":
        gain_db = float(rng.uniform(45.0, 60.0))
        return (x * 10 ** (-gain_db / 20)).astype(np.float32), {"attenuation_db": round(gain_db, 2)}
    if kind in ("truncated", "low_bitrate"):
        return x, {}
    raise ValueError(f"unknown damage {kind!r}; known: {DAMAGE_TYPES}")


def write_excerpt(path_stem: Path, kind: str | None, x: np.ndarray, sample_rate: int,
                  rng: np.random.Generator, params: dict, clean_format: str = "mp3") -> Path:
    """Write one (damaged) excerpt; returns the file. Updates ``params`` with the file-level damage."""
    if kind is None and clean_format != "mp3":
        path = path_stem.with_suffix(f".{clean_format}")
        sf.write(str(path), x, sample_rate)
        return path
    path = path_stem.with_suffix(".mp3")
    if kind == "low_bitrate":
        kbps = int(rng.choice([32, 48, 64]))
        write_mp3(path, x, sample_rate, kbps)
        params["kbps"] = kbps
        return path
    write_mp3(path, x, sample_rate)
    if kind == "truncated":
        # A partial download: the first part of the MP3's bytes, cut mid-frame.
        data = path.read_bytes()
        keep = float(rng.uniform(0.3, 0.75))
        path.write_bytes(data[: int(len(data) * keep)])
        params["kept_bytes_fraction"] = round(keep, 3)
    return path


# --- the set ------------------------------------------------------------------------------------------

@dataclass
class SetSpec:
    """What :func:`build_calibration_set` makes (all deterministic for a given spec)."""

    packages: tuple[str, ...] = tuple(p.name for p in PACKAGES)
    excerpt_s: float = 30.0
    damaged_per_track: int = 2
    seed: int = 11
    max_tracks_per_package: int | None = None
    clean_flac_share: float = 0.25  # the rest of the clean excerpts are 192 kbps MP3s
    damage_types: tuple[str, ...] = DAMAGE_TYPES
    extra: dict = field(default_factory=dict)

    def key(self) -> str:
        blob = json.dumps([SET_VERSION, self.packages, self.excerpt_s, self.damaged_per_track, self.seed,
                           self.max_tracks_per_package, self.clean_flac_share, self.damage_types, self.extra],
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _stable_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


def split_tracks(tracks: Iterable[Track], seed: int) -> dict[str, str]:
    """track_id -> 'tune' | 'report': per package, a seeded shuffle dealt alternately (so both halves
    hold every package and no track is in both)."""
    halves: dict[str, str] = {}
    by_package: dict[str, list[Track]] = {}
    for t in tracks:
        by_package.setdefault(t.package, []).append(t)
    for name, group in sorted(by_package.items()):
        order = np.random.default_rng(_stable_seed(seed, "split", name)).permutation(len(group))
        first = "tune" if _stable_seed(seed, "first", name) % 2 == 0 else "report"
        second = "report" if first == "tune" else "tune"
        for rank, i in enumerate(order):
            halves[sorted(group, key=lambda t: t.track_id)[i].track_id] = first if rank % 2 == 0 else second
    return halves


def build_calibration_set(out_root: Path, spec: SetSpec | None = None, cache: Path = DEFAULT_CACHE,
                          progress: bool = False) -> pd.DataFrame:
    """Fetch the packages, cut and damage the excerpts under ``out_root/audio`` and return the truth.

    One row per excerpt: song_id, package, licence, track_id, half ('tune'|'report'), damage (None
    for clean), expect ('pass' | 'hard_fail' | 'degraded'), params (JSON), duration_s (the excerpt's
    intended length, as a catalogue's metadata would give it), twin (the clean song_id of the same
    excerpt), native_rate. Reuses a finished set in ``out_root`` made from the same spec.
    """
    spec = spec or SetSpec()
    out_root = Path(out_root)
    truth_path = out_root / f"truth-{spec.key()}.parquet"
    if truth_path.exists():
        truth = pd.read_parquet(truth_path)
        if "native_checked" not in truth.columns:  # a set cached before native defects were labelled
            truth = label_native_defects(truth, out_root / "audio")
            truth.to_parquet(truth_path, index=False)
        return mark_native_twins(truth)
    audio_dir = out_root / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    tracks: list[Track] = []
    for name in spec.packages:
        found = list_tracks(name, fetch_package(name, cache))
        if spec.max_tracks_per_package is not None:
            found = found[: spec.max_tracks_per_package]
        tracks += found
    if not tracks:
        raise RealAudioUnavailable(f"no decodable recordings in {spec.packages}")
    halves = split_tracks(tracks, spec.seed)
    rows = []
    counters = {h: 0 for h in ("tune", "report")}
    # Damage dealt round-robin per half over a seeded order of the tracks, so each type lands on
    # about the same number of tracks, from as many packages as possible.
    deal_order = sorted(tracks, key=lambda t: _stable_seed(spec.seed, "deal", t.track_id))
    iterator = deal_order
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(deal_order, desc="excerpts", unit="track")
    for track in iterator:
        half = halves[track.track_id]
        rng = np.random.default_rng(_stable_seed(spec.seed, "excerpt", track.track_id))
        margin = min(10.0, max(track.duration_s - spec.excerpt_s, 0.0) / 4)
        start = float(rng.uniform(margin, max(track.duration_s - spec.excerpt_s - margin, margin)))
        x, rate = load_excerpt(track, start, spec.excerpt_s)
        base = f"{_slug(track.track_id)}"
        licence = PACKAGE_BY_NAME[track.package].licence if track.package in PACKAGE_BY_NAME else "?"
        common = {"package": track.package, "licence": licence, "track_id": track.track_id, "half": half,
                  "duration_s": x.shape[0] / rate, "native_rate": rate, "start_s": round(start, 2)}
        # A track sampled below 32 kHz is itself band-limited (content ends below 16 kHz): its excerpt
        # is a real band-limited example, not a clean one.
        natively_limited = rate < 32000
        clean_id = f"{base}--clean"
        clean_kind = "band_limited" if natively_limited else None
        fmt = "flac" if (not natively_limited and rng.uniform() < spec.clean_flac_share) else "mp3"
        params = {"mode": "native", "sample_rate": rate} if natively_limited else {}
        write_excerpt(audio_dir / clean_id, None, x, rate, rng, params, clean_format=fmt)
        rows.append(common | {"song_id": clean_id, "damage": clean_kind, "params": json.dumps(params),
                              "format": fmt, "twin": None})
        if natively_limited:
            continue
        for _ in range(spec.damaged_per_track):
            kind = spec.damage_types[counters[half] % len(spec.damage_types)]
            counters[half] += 1
            d_rng = np.random.default_rng(_stable_seed(spec.seed, "damage", track.track_id, kind))
            y, params = apply_damage(kind, x, rate, d_rng)
            song_id = f"{base}--{kind}"
            write_excerpt(audio_dir / song_id, kind, y, rate, d_rng, params)
            rows.append(common | {"song_id": song_id, "damage": kind, "params": json.dumps(params),
                                  "format": "mp3", "twin": clean_id})
    truth = label_native_defects(pd.DataFrame(rows), audio_dir)
    truth.to_parquet(truth_path, index=False)
    return mark_native_twins(truth)


# Music averages to zero: on the tune half the clean excerpts' |channel mean| stayed <= 0.013 except
# for tracks whose master carries a constant (up to 0.086, e.g. singularity's "Media Threat" right
# channel 0.075 over the whole file). A mean of 2 % of full scale or more is a DC offset by definition.
NATIVE_DC_OFFSET = 0.02


def label_native_defects(truth: pd.DataFrame, audio_dir: Path) -> pd.DataFrame:
    """Relabel clean excerpts whose source already has a defect defined by the signal alone: a DC
    offset (|channel mean| >= :data:`NATIVE_DC_OFFSET`, measured on the decoded clean excerpt).
    Natively band-limited sources (sample rate < 32 kHz) are labelled when the set is built."""
    truth = truth.copy()
    for i, row in truth[truth["damage"].isna()].iterrows():
        path = next(Path(audio_dir).glob(f"{row['song_id']}.*"))
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
        dc = float(np.abs(data.mean(axis=0)).max())
        if dc >= NATIVE_DC_OFFSET:
            truth.loc[i, "damage"] = "dc_offset"
            truth.loc[i, "params"] = json.dumps({"mode": "native", "dc": round(dc, 4)})
    truth["expect"] = [("pass" if d is None or (isinstance(d, float) and np.isnan(d)) else
                        "degraded" if d in SOFT_DAMAGE else "hard_fail") for d in truth["damage"]]
    truth["native_checked"] = True
    return truth


def mark_native_twins(truth: pd.DataFrame) -> pd.DataFrame:
    """Column ``native_defect``: the defect the SOURCE already has (its clean excerpt was relabelled
    by :func:`label_native_defects`), on every excerpt of that source, else None. A 64 kbps encode
    of a master with a 5 % DC offset still has the offset: such an excerpt carries two defects and
    is expected to hard-fail (``expect`` = 'hard_fail'), so the figures of its own damage type
    (low bitrate: never a hard fail) leave it out and say how many were left out."""
    truth = truth.copy()
    clean_ids = {f"{slug}--clean" for slug in truth["song_id"].str.rsplit("--", n=1).str[0]}
    native = {row.song_id: row.damage for row in truth.itertuples()
              if row.song_id in clean_ids and isinstance(row.damage, str)
              and json.loads(row.params or "{}").get("mode") == "native"}
    truth["native_defect"] = [native.get(t if isinstance(t, str) else s)
                              for s, t in zip(truth["song_id"], truth["twin"])]
    truth.loc[truth["native_defect"].notna(), "expect"] = "hard_fail"
    return truth


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
    return f"{keep[-60:]}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def band_limited_copies(truth: pd.DataFrame, out_root: Path, half: str = "tune", copies: int = 2, seed: int = 99,
                        cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """More band-limited excerpts for one half: each clean excerpt of ``half`` band-limited ``copies``
    more times with :func:`apply_damage` (fresh seeds), written as 192 kbps MP3s under
    ``out_root/band-limited-<half>``. The set deals band limits to ~24 tracks per half, too few to see
    how a detector fares on dark tracks; this puts one on every track of the half (the ``tune`` half
    was used so for signal-checks/4's floor cut). Returns song_id, track_id, path, params (JSON)."""
    out = Path(out_root) / f"band-limited-{half}"
    out.mkdir(parents=True, exist_ok=True)
    tracks = {t.track_id: t for name in sorted(set(truth["package"])) for t in list_tracks(name, fetch_package(name, cache))}
    rows = []
    for row in truth[(truth["half"] == half) & truth["damage"].isna()].itertuples():
        x = None
        for copy in range(copies):
            song_id = f"{row.song_id}-bl{copy}"
            rng = np.random.default_rng(_stable_seed(seed, "aug", row.track_id, copy))
            path = out / f"{song_id}.mp3"
            meta = path.with_suffix(".json")
            if not meta.exists():
                if x is None:
                    x, rate = load_excerpt(tracks[row.track_id], row.start_s, float(row.duration_s))
                y, params = apply_damage("band_limited", x, rate, rng)
                write_mp3(path, y, rate)
                meta.write_text(json.dumps(params), encoding="utf-8")
            rows.append({"song_id": song_id, "track_id": row.track_id, "path": str(path),
                         "params": meta.read_text(encoding="utf-8")})
    return pd.DataFrame(rows)
