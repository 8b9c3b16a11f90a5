"""Synthesised songs for the sample catalogue, and the damage applied to some of them.

Each song is real (if simple) music: a chord progression played by a pad, a bass line on the chord
roots, a lead melody on the key's scale, and drums (kick, snare, hi-hat) built from tones and noise
bursts, with tempo, key, mode, timbre and groove chosen from the genre. Everything is vectorised
numpy (one cumulative phase per voice, percussion by convolving onset trains with one hit each),
so a 30-second 44.1 kHz stereo song takes a few tens of milliseconds.

Damage mimics what breaks in real catalogues; ``apply_damage`` documents each kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr
from scipy import signal

SAMPLE_RATE = 44100
CHANNELS = 2

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# progressions as 0-based scale degrees, one chord per bar
PROGRESSIONS = {
    "major": ([0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 3], [0, 3, 0, 4], [5, 3, 0, 4]),
    "minor": ([0, 5, 2, 6], [0, 3, 4, 0], [0, 6, 5, 6], [0, 5, 3, 4], [0, 3, 6, 2]),
}
# 16 steps per bar: (kick steps, snare steps, hat steps)
GROOVES = {
    "four": ((0, 4, 8, 12), (4, 12), (2, 6, 10, 14)),
    "backbeat": ((0, 8, 10), (4, 12), (0, 2, 4, 6, 8, 10, 12, 14)),
    "boombap": ((0, 7, 10), (4, 12), (0, 2, 4, 6, 8, 10, 12, 14)),
    "trap": ((0, 6, 11), (8,), tuple(range(16))),
    "swing": ((0, 8), (6, 14), (0, 4, 6, 8, 12, 14)),
    "folk": ((0, 8), (4, 12), (0, 2, 4, 6, 8, 10, 12, 14)),
    "none": ((), (), ()),
}


@dataclass(frozen=True)
class GenreStyle:
    bpm: tuple[float, float]
    minor_share: float          # probability of a minor key
    groove: str
    swing: float                # delay of off-beat 8ths, as a fraction of a 16th
    lead_harmonics: tuple[float, ...]
    pad_harmonics: tuple[float, ...]
    bass_drive: float           # tanh saturation of the bass (0 = clean)
    pad_drive: float            # tanh saturation of the pad (distorted guitar-ish chords)
    notes_per_beat: int         # lead melody grid
    sevenths: bool
    reverb_s: float             # 0 = dry
    levels: tuple[float, float, float, float]  # pad, bass, lead, drums


_SAW = tuple(1.0 / h for h in range(1, 9))
_SOFT = (1.0, 0.35, 0.12, 0.05)
_SQUARE = tuple((1.0 / h if h % 2 else 0.0) for h in range(1, 10))
_PIANO = (1.0, 0.5, 0.3, 0.2, 0.1, 0.06)

STYLES: dict[str, GenreStyle] = {
    "lo-fi": GenreStyle((70, 90), 0.5, "boombap", 0.45, _SOFT, _PIANO, 0.0, 0.0, 2, True, 0.0,
                        (0.5, 0.7, 0.35, 0.8)),
    "synthwave": GenreStyle((85, 115), 0.6, "backbeat", 0.0, _SAW, _SAW, 0.3, 0.0, 2, False, 0.6,
                            (0.55, 0.7, 0.4, 0.8)),
    "rock": GenreStyle((110, 150), 0.4, "backbeat", 0.0, _SQUARE, _SAW, 0.6, 2.5, 2, False, 0.0,
                       (0.6, 0.7, 0.35, 0.9)),
    "edm": GenreStyle((120, 130), 0.5, "four", 0.0, _SAW, _SAW, 0.4, 0.0, 4, False, 0.4,
                      (0.5, 0.8, 0.35, 1.0)),
    "jazz": GenreStyle((90, 160), 0.3, "swing", 0.6, _PIANO, _PIANO, 0.0, 0.0, 2, True, 0.0,
                       (0.55, 0.7, 0.45, 0.5)),
    "ambient": GenreStyle((60, 80), 0.5, "none", 0.0, _SOFT, _SOFT, 0.0, 0.0, 1, True, 1.5,
                          (0.8, 0.4, 0.3, 0.0)),
    "hip-hop": GenreStyle((80, 96), 0.7, "trap", 0.2, _SQUARE, _SOFT, 0.5, 0.0, 2, False, 0.0,
                          (0.45, 0.9, 0.35, 1.0)),
    "folk": GenreStyle((90, 125), 0.3, "folk", 0.0, _PIANO, _PIANO, 0.0, 0.0, 2, False, 0.3,
                       (0.6, 0.5, 0.45, 0.45)),
    "classical": GenreStyle((60, 110), 0.5, "none", 0.0, _PIANO, _SOFT, 0.0, 0.0, 4, False, 1.2,
                            (0.7, 0.5, 0.5, 0.0)),
    "pop": GenreStyle((100, 128), 0.3, "backbeat", 0.0, _SQUARE, _SAW, 0.2, 0.0, 2, False, 0.4,
                      (0.5, 0.7, 0.45, 0.85)),
}


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


TABLE_SIZE = 4096


def _wavetable(harmonics: tuple[float, ...]) -> np.ndarray:
    """One cycle of a harmonic sum (float32, peak-normalised): oscillators read it by phase."""
    phase = 2.0 * np.pi * np.arange(TABLE_SIZE) / TABLE_SIZE
    table = sum(amp * np.sin(h * phase) for h, amp in enumerate(harmonics, start=1) if amp)
    return (table / np.abs(table).max()).astype(np.float32)


# Oscillator phase as a 32-bit fixed-point fraction of a cycle (direct digital synthesis): unsigned
# additions wrap at exactly one cycle, and the table index is the top TABLE_BITS bits.
TABLE_BITS = 12
assert TABLE_SIZE == 1 << TABLE_BITS
_PHASE_ONE = 2.0 ** 32


def _oscillator(freq: np.ndarray, seg_len: int, n: int, table: np.ndarray, sr: int,
                phase0: float = 0.0) -> np.ndarray:
    """A wavetable oscillator whose frequency (Hz) is constant over segments of ``seg_len`` samples.

    ``freq`` holds one frequency per segment (``n`` samples in all, the last segment cut). The phase
    runs on continuously across segments (no clicks at a change of note) as a uint32 fraction of a
    cycle: one integer cumulative sum, wrapping by itself, instead of a float phase per sample
    (frequency resolution sr / 2**32, far below a cent).
    """
    step = np.round(np.asarray(freq, dtype=np.float64) * (_PHASE_ONE / sr)).astype(np.uint32)
    phase = np.cumsum(np.repeat(step, seg_len)[:n], dtype=np.uint32)
    phase += np.uint32(int(phase0 * _PHASE_ONE) & 0xFFFFFFFF)
    phase >>= 32 - TABLE_BITS
    return table[phase]


def _hit_templates(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One kick, snare and hi-hat hit: a pitch-swept sine, a noise burst with a tone, a high-passed click."""
    t = np.arange(int(0.35 * sr)) / sr
    f = 45.0 + 110.0 * np.exp(-t / 0.035)
    kick = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
    ts = t[: int(0.22 * sr)]
    noise = rng.standard_normal(ts.size)
    snare = (0.8 * np.diff(noise, prepend=0.0) * np.exp(-ts / 0.05)
             + 0.6 * np.sin(2 * np.pi * 185 * ts) * np.exp(-ts / 0.04))
    th = t[: int(0.06 * sr)]
    hat_noise = np.diff(rng.standard_normal(th.size + 2), n=2)  # second difference: a bright high-pass
    hat = 0.35 * hat_noise * np.exp(-th / 0.012)
    return kick, snare, hat


def _place_hits(out: np.ndarray, hit: np.ndarray, bar_len: float, step_len: float, steps: tuple[int, ...],
                n_bars: int, swing: float, velocity: np.ndarray, sr: int) -> None:
    """Add ``hit`` at every (bar, step) onset; off-beat 8ths are delayed by ``swing`` of a 16th.

    A few hundred slice-adds per song: cheaper than convolving a whole onset train.
    """
    n = out.shape[0]
    k = 0
    for bar in range(n_bars):
        for step in steps:
            start = round((bar * bar_len + (step + (swing if step % 4 == 2 else 0.0)) * step_len) * sr)
            if start >= n:
                return
            end = min(start + hit.size, n)
            out[start:end] += velocity[k % velocity.size] * hit[: end - start]
            k += 1


@dataclass(frozen=True)
class SongSpec:
    """What a synthesised song is made of (kept in the ground truth for the curious)."""
    genre: str
    bpm: float
    key: str
    mode: str
    progression: tuple[int, ...]
    duration_s: float


def choose_spec(rng: np.random.Generator, genre: str, duration_s: float) -> SongSpec:
    style = STYLES[genre]
    mode = "minor" if rng.random() < style.minor_share else "major"
    progressions = PROGRESSIONS[mode]
    prog = progressions[int(rng.integers(len(progressions)))]
    return SongSpec(genre=genre, bpm=float(round(rng.uniform(*style.bpm), 1)),
                    key=KEY_NAMES[int(rng.integers(12))], mode=mode,
                    progression=tuple(int(d) for d in prog), duration_s=float(duration_s))


def synthesize_song(spec: SongSpec, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A clean master of ``spec``: float32 array (n, 2) in [-0.89, 0.89], RMS about -14 to -18 dBFS.

    Draws from ``rng`` in a fixed order and number (a song's later draws, its damage, depend on it).
    """
    style = STYLES[spec.genre]
    n = round(spec.duration_s * sr)
    # Everything sits on a grid of 16th notes of a whole number of samples, so positions are
    # integer arithmetic and envelopes are periodic templates (tiled) or per-note look-ups: no
    # per-sample index arithmetic, everything float32.
    step = round(60.0 / spec.bpm / 4 * sr)
    bar = 16 * step
    n_bars = n // bar + 2
    scale = MINOR if spec.mode == "minor" else MAJOR
    root = 48 + KEY_NAMES.index(spec.key)  # C3..B3

    def degree_to_midi(deg: np.ndarray) -> np.ndarray:
        deg = np.asarray(deg)
        return root + scale[deg % 7] + 12 * (deg // 7)

    prog = np.asarray(spec.progression)
    chord_deg = prog[np.arange(n_bars) % prog.size]                      # (bars,)
    voices = (0, 2, 4, 6) if style.sevenths else (0, 2, 4)
    chord_hz = np.stack([midi_to_hz(degree_to_midi(chord_deg + v)) for v in voices], axis=1)  # (bars, voices)

    # Pad: chord tones with a slow attack each bar.
    tb = np.arange(bar) / sr
    pad_env = np.resize((np.minimum(tb / 0.25, 1.0) * (1.0 - 0.35 * tb / tb[-1])).astype(np.float32), n)
    pad_table = _wavetable(style.pad_harmonics)
    pad = _oscillator(chord_hz[:, 0], bar, n, pad_table, sr, rng.random())
    for v in range(1, chord_hz.shape[1]):
        pad += _oscillator(chord_hz[:, v], bar, n, pad_table, sr, rng.random())
    if style.pad_drive:
        pad = np.tanh(style.pad_drive * pad)
    pad_env *= np.float32(1.0 / chord_hz.shape[1])
    pad *= pad_env

    # Bass: chord root two octaves down, re-struck every beat (8ths at faster grooves).
    bass_len = 2 * step if style.groove in ("four", "backbeat") else 4 * step
    ts = np.arange(bass_len) / sr
    bass_env = np.minimum(ts / 0.005, 1.0) * np.exp(-ts / (0.6 * bass_len / sr + 0.05))
    bass = _oscillator(chord_hz[:, 0] / 4.0, bar, n, _wavetable((1.0, 0.3, 0.1)), sr)
    if style.bass_drive:
        bass = np.tanh((1 + 3 * style.bass_drive) * bass)
    bass *= np.resize(bass_env.astype(np.float32), n)

    # Lead: a random walk on the scale, on a grid of notes_per_beat, with rests and ties;
    # silent in the first bar so the song has an intro.
    slot = 4 // style.notes_per_beat * step
    n_slots = n // slot + 2
    walk = rng.choice([-2, -1, -1, 0, 1, 1, 2], size=n_slots)
    degrees = np.minimum(7 + np.abs((np.cumsum(walk) + 11) % 22 - 11), 14)  # folded into 7..14
    new_note = rng.random(n_slots) < 0.7
    new_note[0] = True
    rest = rng.random(n_slots) < 0.15
    rest[: bar // slot] = True
    note_id = np.cumsum(new_note) - 1                       # note of each slot
    note_start = np.flatnonzero(new_note)                   # slot index of each note's attack
    note_hz = midi_to_hz(degree_to_midi(degrees[note_start]))
    note_len = np.diff(np.append(note_start, n_slots)).max() * slot
    tn = np.arange(note_len) / sr
    note_env = (np.minimum(tn / 0.01, 1.0) * np.exp(-tn / (1.5 * slot / sr + 0.1))).astype(np.float32)
    # Each slot reads the note's envelope from its offset into the note; a rest reads a silent tail.
    note_env = np.append(note_env, np.zeros(slot, dtype=np.float32))
    slot_offset = (np.arange(n_slots) - note_start[note_id]) * slot
    slot_offset[rest] = note_len
    lead_env = note_env[(slot_offset[:, None] + np.arange(slot)[None, :]).ravel()[:n]]
    lead = _oscillator(note_hz[note_id], slot, n, _wavetable(style.lead_harmonics), sr)
    lead *= lead_env

    # Drums: one kick, snare and hat hit placed at the groove's onsets; velocities vary a little.
    kick_steps, snare_steps, hat_steps = GROOVES[style.groove]
    drums = np.zeros(n, dtype=np.float32)
    hats = np.zeros(n, dtype=np.float32)
    if kick_steps:
        kick_hit, snare_hit, hat_hit = _hit_templates(rng, sr)
        for hit, steps_, out, lo in ((kick_hit, kick_steps, drums, 0.75), (snare_hit, snare_steps, drums, 0.75),
                                     (hat_hit, hat_steps, hats, 0.4)):
            vel = rng.uniform(lo, 1.0, size=n_bars * len(steps_))
            _place_hits(out, hit.astype(np.float32), bar / sr, step / sr, steps_, n_bars, style.swing, vel, sr)

    lv_pad, lv_bass, lv_lead, lv_drums = style.levels
    lead_pan = rng.uniform(0.35, 0.65)
    # centre = bass + drums; the pad's right channel is its left delayed by 12 ms: cheap stereo width.
    bass *= np.float32(lv_bass)
    bass += np.float32(lv_drums) * drums
    centre = bass
    pad *= np.float32(lv_pad)
    delay = int(0.012 * sr)
    # The mix is planar, (channel, sample), until the master: every pass runs over contiguous memory.
    mix = np.empty((2, n), dtype=np.float32)
    for ch, lead_gain, hat_gain in ((0, 2 * lv_lead * (1 - lead_pan), 0.8 * lv_drums),
                                    (1, 2 * lv_lead * lead_pan, 1.2 * lv_drums)):
        out = mix[ch]
        np.multiply(lead, np.float32(lead_gain), out=out)
        out += centre
        out += np.float32(hat_gain) * hats
        if ch == 0:
            out += pad
        else:
            out[delay:] += pad[:-delay]
    if style.reverb_s:
        mix = _reverb(mix, style.reverb_s, rng, sr)
    # Air: the breath, bow, pick and room noise that carries a real master's spectrum up to 20 kHz.
    # It follows the music (its level tracks the dry mix's 10 ms envelope, expanded 1.5x, so it
    # swells with the notes and falls away between them) and rolls off like real highs (about
    # -12 dB per octave above 3 kHz), about 30 dB under the music: never a stationary hiss floor.
    rms = _rms(mix)
    # n + 1 draws as the earlier white air took: the song's later draws (its damage) stay the same.
    white = rng.standard_normal((n + 1, 2), dtype=np.float32)[1:]
    # One third-order float32 filter (scipy filters in the input's precision): 1.6x faster than the
    # float64 sections, the same noise to -110 dB.
    b, a = (c.astype(np.float32) for c in signal.sos2tf(_air_filter(sr)))
    air = signal.lfilter(b, a, white.T, axis=1)
    air *= _follow(mix, sr)[None, :]
    air *= np.float32(rms * (0.03 if spec.genre != "lo-fi" else 0.06) / max(_rms(air), 1e-12))
    mix += air
    if spec.genre == "lo-fi":
        clicks = rng.integers(0, n, size=(int(n * 2e-4), 2))
        mix[0, clicks[:, 0]] += np.float32(3 * rms)
        mix[1, clicks[:, 1]] -= np.float32(3 * rms)
    # Phrase dynamics (8-bar swells) and fades.
    tp = np.arange(8 * bar, dtype=np.float32) * np.float32(1.0 / (8 * bar - 1))
    shape = np.resize(np.float32(0.75) + np.float32(0.25) * np.sin(np.float32(np.pi) * tp) ** 2, n)
    fade_in, fade_out = int(0.05 * sr), int(1.5 * sr)
    shape[:fade_in] *= np.linspace(0, 1, fade_in, dtype=np.float32)
    shape[n - fade_out:] *= np.linspace(1, 0, fade_out, dtype=np.float32)
    mix *= shape[None, :]
    return master(mix.T, target_dbfs=float(rng.uniform(-18.0, -14.0)))


def _rms(x: np.ndarray) -> float:
    """Root mean square of all samples of ``x`` (any shape and memory layout)."""
    flat = x.reshape(-1, order="A")  # a view for C- and Fortran-ordered arrays alike
    return math.sqrt(float(np.dot(flat, flat)) / max(flat.size, 1))


def _reverb(mix: np.ndarray, seconds: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A plain convolution reverb (decaying noise, 30 % wet), run at an eighth of the rate.

    The tail of a real room is dark anyway, so convolving a copy resampled to an eighth of the rate
    costs 1/64 of a full-rate convolution. soxr's band-limited down- and up-sampling keeps the tail
    below 2.7 kHz: holding each low-rate sample 8 times (the earlier way) mirrored it into a steady,
    flat hiss across 4-16 kHz, which reads as a noise floor, not as a room.
    """
    k = 8
    n = mix.shape[1]  # planar: (channel, sample)
    low = [soxr.resample(channel, sr, sr // k, quality="LQ") for channel in mix]
    tr = np.arange(int(seconds * sr / k)) / (sr / k)
    ir = rng.standard_normal((tr.size, 2)) * np.exp(-tr / (seconds / 6.9))[:, None]  # -60 dB at `seconds`
    ir /= np.sqrt(np.sum(ir ** 2, axis=0, keepdims=True))
    # float32 both sides: scipy's FFT then works in single precision (the tail is -30 dB anyway)
    out = np.multiply(mix, np.float32(0.75), dtype=np.float32)
    for ch, channel in enumerate(low):
        wet = signal.fftconvolve(channel, ir[:, ch].astype(np.float32))[: channel.size]
        wet_full = soxr.resample(np.ascontiguousarray(wet, dtype=np.float32), sr // k, sr, quality="LQ")
        m = min(n, wet_full.size)
        wet_full = wet_full[:m]
        wet_full *= np.float32(0.35)
        out[ch, :m] += wet_full
    return out


def _air_filter(sr: int) -> np.ndarray:
    """The air's colour (second-order sections): flat 1-3 kHz, then -12 dB per octave, as real highs roll off."""
    return np.concatenate([signal.butter(1, 1000.0, btype="high", fs=sr, output="sos"),
                           signal.butter(2, 3000.0, btype="low", fs=sr, output="sos")])


def _follow(mix: np.ndarray, sr: int, frame_s: float = 0.01, expand: float = 1.5) -> np.ndarray:
    """The RMS envelope of the planar mix ``(channel, sample)`` (10 ms frames, linearly interpolated
    to every sample), raised to ``expand`` and scaled to a peak of 1: what a level-following exciter
    or a player's own noise does.

    Float32 (n,). The frames' centres sit half a frame in, so every stretch between two centres
    has the same ``hop`` samples at the same fractional offsets: the interpolation is one broadcast.
    """
    hop = max(1, int(frame_s * sr))
    channels, n = mix.shape
    frames = n // hop
    if frames < 2:
        return np.ones(n, dtype=np.float32)
    power = np.zeros(frames)
    for channel in mix:
        blocks = channel[: frames * hop].reshape(frames, hop)
        power += np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
    power /= hop * channels
    env = np.sqrt(power) ** expand
    env = (env / max(float(env.max()), 1e-12)).astype(np.float32)
    first = hop // 2 + 1 if hop % 2 else hop // 2     # the first sample at or after the first centre
    weights = (np.arange(hop, dtype=np.float32) + np.float32(first - hop / 2)) / np.float32(hop)
    out = np.empty(n, dtype=np.float32)
    out[:first] = env[0]
    inner = out[first: first + (frames - 1) * hop].reshape(frames - 1, hop)
    np.multiply(np.diff(env)[:, None], weights[None, :], out=inner)
    inner += env[:-1, None]
    out[first + (frames - 1) * hop:] = env[-1]
    return out


def master(mix: np.ndarray, target_dbfs: float = -16.0, max_peak: float = 0.89) -> np.ndarray:
    """Scale to an RMS of ``target_dbfs`` but never above ``max_peak``: a clean master never clips.

    Returns a new C-ordered float32 array of ``mix``'s shape (the caller's array is left alone).
    """
    rms = _rms(mix)
    gain = 10 ** (target_dbfs / 20) / max(rms, 1e-12)
    peak = float(max(mix.max(), -mix.min())) * gain if mix.size else 0.0
    if peak > max_peak:
        gain *= max_peak / peak
    out = np.empty(mix.shape, dtype=np.float32)
    if mix.ndim == 2 and not mix.flags.c_contiguous:
        # a planar mix seen as (sample, channel): a column at a time reads contiguous memory
        # (6x faster than numpy's element-wise transpose with an inner loop of two)
        for ch in range(mix.shape[1]):
            np.multiply(mix[:, ch], gain, out=out[:, ch], casting="unsafe")
    else:
        np.multiply(mix, gain, out=out, casting="unsafe")
    return out


# --- damage ---------------------------------------------------------------------------------------

DAMAGE_KINDS = ("clipped", "noisy", "band_limited", "silent", "truncated", "corrupt", "missing_file")


def apply_damage(audio: np.ndarray, kind: str, rng: np.random.Generator,
                 sr: int = SAMPLE_RATE) -> tuple[np.ndarray | bytes | None, dict]:
    """Damage a clean master in a known way -> (float32 array | raw bytes for corrupt | None, details).

    - clipped: +18..24 dB of gain, then hard-clipped at full scale (long plateaus at +-1.0).
    - noisy: buried in white or pink noise at an SNR of about 0 dB.
    - band_limited: made from a 6-8 kHz source: nothing above 3-4 kHz (a steep resampler cut).
    - silent: > 85 % digital silence (a short intro then zeros), or the whole song at about -70 dBFS.
    - truncated: only the first 1.5-3 s are kept (the catalogue still says the full duration).
    - corrupt: bytes that no decoder accepts (a FLAC/OGG magic then garbage, or a cut header).
    - missing_file: None (no file is written).
    """
    n = audio.shape[0]
    x = audio.astype(np.float64)
    if kind == "clipped":
        gain_db = float(rng.uniform(18, 24))
        out = np.clip(x * 10 ** (gain_db / 20), -1.0, 1.0)
        return out.astype(np.float32), {"gain_db": round(gain_db, 2)}
    if kind == "noisy":
        colour = "pink" if rng.random() < 0.5 else "white"
        noise = rng.standard_normal(x.shape)
        if colour == "pink":  # 1/f power: shape white noise in the frequency domain
            spec = np.fft.rfft(noise, axis=0)
            f = np.fft.rfftfreq(n, 1 / sr)
            spec *= (1.0 / np.sqrt(np.maximum(f, 20.0)))[:, None]
            noise = np.fft.irfft(spec, n=n, axis=0)
        snr_db = float(rng.uniform(-2, 2))
        noise *= np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2)) * 10 ** (-snr_db / 20)
        return master(x + noise, target_dbfs=-16.0), {"noise": colour, "snr_db": round(snr_db, 2)}
    if kind == "band_limited":
        # A source made at 6-8 kHz (a telephone-grade or very-low-bitrate encode), resampled back to
        # 44.1 kHz: nothing above its Nyquist frequency, a cut as steep as an encoder's or a resampler's.
        low_rate = int(rng.uniform(6000, 8000))
        down = soxr.resample(x, sr, low_rate, quality="HQ")
        out = soxr.resample(down, low_rate, sr, quality="HQ")[:n]
        if out.shape[0] < n:
            out = np.concatenate([out, np.zeros((n - out.shape[0], x.shape[1]))])
        return master(out, target_dbfs=-16.0), {"cutoff_hz": round(low_rate / 2, 1), "source_rate": low_rate}
    if kind == "silent":
        if rng.random() < 0.6:
            keep = int(rng.uniform(0.03, 0.1) * n)
            out = np.zeros_like(x)
            out[:keep] = x[:keep] * np.linspace(1.0, 0.0, keep)[:, None]
            return out.astype(np.float32), {"variant": "digital_silence", "audible_fraction": round(keep / n, 3)}
        level = float(rng.uniform(-72, -68))
        return master(x, target_dbfs=level), {"variant": "very_quiet", "rms_dbfs": round(level, 1)}
    if kind == "truncated":
        keep_s = float(rng.uniform(1.5, 3.0))
        return audio[: int(keep_s * sr)].copy(), {"kept_s": round(keep_s, 2)}
    if kind == "corrupt":
        variant = ("garbage", "cut_header")[int(rng.integers(2))]
        if variant == "garbage":
            raw = b"fLaC" + rng.bytes(int(rng.integers(2000, 20000)))
        else:
            raw = b"fLaC\x00\x00\x00\x22" + rng.bytes(10)  # STREAMINFO promised, 34 bytes, only 10 given
        return raw, {"variant": variant}
    if kind == "missing_file":
        return None, {}
    raise ValueError(f"unknown damage kind {kind!r}; expected one of {DAMAGE_KINDS}")
