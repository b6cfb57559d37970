"""Timing comparisons that the load of a shared machine cannot flip.

A check such as "A is faster than B" or "the time grows like n log n" compares times. Timed one after
the other (all of A's repeats, then all of B's), a burst of other work on the machine can land on one
side only and flip the comparison. Here the candidates run in rounds, one after another within each
round (in a rotating order), each timed in CPU seconds of this process (time spent waiting for a core
does not count), and the statistic is the median over rounds of a ratio taken within a round. A burst
then disturbs one round, which the median ignores; slowing the whole machine down slows every
candidate of a round alike, which the ratio cancels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def interleaved_seconds(fns: Sequence[Callable[[], object]], rounds: int, warmup: int = 1) -> np.ndarray:
    """CPU seconds of each of `fns` in each of `rounds` rounds, shape (rounds, len(fns)).

    Every function runs once per round (after `warmup` untimed rounds), the order rotating from round
    to round so that none always runs first (a cold cache) or last.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if not fns:
        raise ValueError("fns must name at least one function")
    k = len(fns)
    for _ in range(warmup):
        for f in fns:
            f()
    out = np.empty((rounds, k))
    for r in range(rounds):
        for j in range(k):
            i = (r + j) % k
            t0 = time.process_time()
            fns[i]()
            out[r, i] = time.process_time() - t0
    return out


def median_ratio(times: np.ndarray, num: int, den: int) -> float:
    """Median over rounds of times[:, num] / times[:, den] (each ratio within one round)."""
    t = np.asarray(times, dtype=float)
    return float(np.median(t[:, num] / np.maximum(t[:, den], 1e-12)))


def median_slope(times: np.ndarray, sizes: Sequence[float]) -> float:
    """Median over rounds of the log-log slope of time against size (a least-squares line per round):
    about 1 for time ~ n, 2 for n^2."""
    t = np.log(np.maximum(np.asarray(times, dtype=float), 1e-12))
    x = np.log(np.asarray(sizes, dtype=float))
    if t.shape[1] != len(x) or len(x) < 2:
        raise ValueError(f"times must have one column per size (>= 2), got {t.shape[1]} for {len(x)} sizes")
    return float(np.median([np.polyfit(x, row, 1)[0] for row in t]))
