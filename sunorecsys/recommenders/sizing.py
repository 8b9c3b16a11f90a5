"""Channel sizes by a rule of the data's size (a full search at 1 M songs would break the time budget).

Each rule was checked on MovieLens-100K leave-last-10 (90,570 training pairs, 1,682 items;
``bench/recommender_real.py``) and keeps the fit bounded at 1 M songs / 10 M events
(``bench/recommender.py``):

* ALS factors ~ sqrt(pairs) / 10 as a power of two in [8, 128]: 32 on MovieLens (NDCG@10 0.134
  against 0.125 with 64 and 0.112 with 128), 8 on the sample; above 500 k pairs at most 64 and
  above 5 M at most 32 (the fit, done twice with the validation, has to stay within 15 minutes at
  10 M events on 2 cores);
  regularisation grows with the rank (factors / 16): more factors need more shrinkage.
* BM25 neighbours K = warm songs / 8 in [20, 200], and 100 above 100,000 warm songs (memory:
  K floats per song): on MovieLens K = 200 beat 100 (0.117 vs 0.114) and 20 (0.109).
* History half-life: a listener's songs weigh 0.5 ** (age / half_life) in ``user_id`` queries, age
  counted in songs from the newest; 10 on MovieLens lifted EASE from 0.137 to 0.154 and BM25 from
  0.117 to 0.137. The fitted recommender picks it on its own validation split.
"""

from __future__ import annotations

import numpy as np

HALF_LIFE_CHOICES: tuple[float | None, ...] = (5.0, 10.0, 20.0, 40.0, None)   # None = no decay


def als_factors(pairs: int) -> int:
    """ALS rank for ``pairs`` positive (user, song) pairs."""
    raw = np.sqrt(max(pairs, 1)) / 10.0
    cap = 32 if pairs > 5_000_000 else 64 if pairs > 500_000 else 128
    return int(np.clip(2 ** round(np.log2(max(raw, 1.0))), 8, cap))


def als_regularization(factors: int) -> float:
    return float(factors) / 16.0


def bm25_neighbours(warm_songs: int) -> int:
    if warm_songs > 100_000:
        return 100
    return int(np.clip(warm_songs // 8, 20, 200))


def recency_weights(n: int, half_life: float | None) -> np.ndarray:
    """Weights of a history of ``n`` songs ordered newest first (float32, newest = 1)."""
    if half_life is None:
        return np.ones(n, np.float32)
    return np.power(0.5, np.arange(n, dtype=np.float64) / half_life).astype(np.float32)


# The sequence channel's popularity exponent is picked among these on the fusion's validation split.
SEQUENCE_EXPONENTS: tuple[float, ...] = (0.3, 0.4, 0.5)
SEQUENCE_PAIR_BUDGET = 40_000_000


def sequence_window(pairs: int) -> int:
    """Songs apart that still count as "listened near": 10, shrunk on big logs to ~40 M counted pairs.

    Each window step adds two entries per positive pair; at 10 M events (~8 M pairs) the window is 2.
    """
    return int(np.clip(SEQUENCE_PAIR_BUDGET // max(2 * pairs, 1), 2, 10))


# The fusion's validation fit runs on at most this many positive pairs (a sample of listeners):
# the weights transfer, and the second fit of every log channel stays a fraction of the first.
VALIDATION_MAX_PAIRS = 2_000_000


def als_iterations(pairs: int) -> int:
    """15 sweeps, 10 above 2 M pairs (the fit budget at 10 M events; ALS gains little after 10)."""
    return 15 if pairs <= 2_000_000 else 10
