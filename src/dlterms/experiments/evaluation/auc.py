"""AUC: equals the probability that a random positive outranks a random negative (Mann-Whitney,
ties count 1/2), equals scikit-learn's, and costs O(n log n): its time grows like n log n while
counting pairs grows like n^2.

The growth is measured so that load on the machine cannot flip it: the three sizes of each method are
timed in rounds, one after another within a round (CPU time of this process), and the log-log slope is
taken per round; the checks use the median slope over 9 rounds (dlterms.timing). A burst of other work
disturbs one round; a machine slowed down as a whole slows every size of a round alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from dlterms import metrics
from dlterms.experiments.evaluation._common import N_CASES, random_score_cases
from dlterms.run import Run, experiment
from dlterms.timing import interleaved_seconds, median_slope


def _pair_count_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    d = pos[:, None] - neg[None, :]
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)


@dataclass(frozen=True)
class Config:
    """Parameters of the auc experiment; the defaults are the recorded run."""

    n_cases: int = N_CASES  # random label/score cases with ties compared with the pair count and scikit-learn
    sizes: tuple[int, ...] = (5_000, 20_000, 80_000)  # examples per timing of the rank-based AUC
    pair_sizes: tuple[int, ...] = (1000, 2000, 4000)  # examples per timing of the pair count (n^2 memory)
    rounds: int = 9  # interleaved timing rounds the median slope is taken over

    def __post_init__(self) -> None:
        if self.n_cases < 1:
            raise ValueError(f"n_cases must be >= 1, got {self.n_cases!r}")
        for name in ("sizes", "pair_sizes"):
            v = getattr(self, name)
            if len(v) < 2 or min(v) < 2 or list(v) != sorted(set(v)):
                raise ValueError(f"{name} must be >= 2 increasing sizes >= 2, got {v!r}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds!r}")


@experiment("auc", config=Config)
def auc(run: Run, cfg: Config) -> None:
    worst_mw, worst_sk, n = 0.0, 0.0, 0
    for y, s in random_score_cases(run.rng(0), cfg.n_cases):
        a = metrics.roc_auc_score(y, s)
        worst_mw = max(worst_mw, abs(a - _pair_count_auc(y, s)))
        worst_sk = max(worst_sk, abs(a - skm.roc_auc_score(y, s)))
        n += 1
    run.metric("cases", n)
    run.metric("max_diff_vs_pair_count", worst_mw)
    run.metric("max_diff_vs_sklearn", worst_sk)
    run.check(
        "AUC equals P(positive outranks negative) on >= 500 cases with ties",
        n >= 500 and worst_mw <= 1e-12,
        observed=f"{n} cases, max diff {worst_mw:.1e}",
        expected="<= 1e-12",
    )
    run.check_le("AUC equals scikit-learn's roc_auc_score", worst_sk, 1e-12)
    run.progress(0.4, "timing")

    rng = run.rng(1)
    sizes = np.array(cfg.sizes)
    # pair counts from 1000 up: below, the pair matrix fits in the CPU's caches and the timing shows the
    # cache (a step of 8x from 500 to 1000), not the n^2 work
    pair_sizes = np.array(cfg.pair_sizes)
    rank_fns, pair_fns = [], []
    for size in sizes:
        y = rng.integers(0, 2, size)
        s = rng.normal(size=size) + y
        rank_fns.append(lambda y=y, s=s: metrics.roc_auc_score(y, s))
    for size in pair_sizes:
        y = rng.integers(0, 2, size)
        s = rng.normal(size=size) + y
        pair_fns.append(lambda y=y, s=s: _pair_count_auc(y, s))
    k = len(sizes)
    times = interleaved_seconds(rank_fns + pair_fns, rounds=cfg.rounds)  # (rounds, k + k'): CPU seconds
    t_rank, t_pair = np.median(times[:, :k], axis=0), np.median(times[:, k:], axis=0)
    slope_rank, slope_pair = median_slope(times[:, :k], sizes), median_slope(times[:, k:], pair_sizes)
    run.metric("time_slope_rank_auc", slope_rank, key=True)
    run.metric("time_slope_pair_count", slope_pair)
    run.metric("time_slope_rounds", cfg.rounds)
    run.metric(f"cpu_seconds_rank_auc_{sizes[-1] // 1000}k", float(t_rank[-1]))
    # n log n has a log-log slope of about 1.1 here; memory traffic of the sort adds up to ~0.2. Counting
    # pairs is n^2 (slope 2). The check separates the two classes.
    run.check_le(
        "rank-based AUC time grows like n log n, not n^2 (median log-log slope over interleaved rounds)",
        slope_rank,
        1.6,
    )
    run.check_ge("counting every pair grows like n^2 (median log-log slope over interleaved rounds)", slope_pair, 1.7)
    with run.figure("scaling", alt="time to compute AUC against n, on log-log axes") as fig:
        ax = fig.subplots()
        ax.loglog(sizes, t_rank, "o-", label=f"ranks, O(n log n) (slope {slope_rank:.2f})")
        ax.loglog(pair_sizes, t_pair, "s-", label=f"all pairs, O(n^2) (slope {slope_pair:.2f})")
        ax.set_xlabel("examples n")
        ax.set_ylabel(f"CPU seconds (median of {cfg.rounds} interleaved rounds)")
        ax.legend()
