"""Side-by-side timing of our hand-written components against the libraries people would use.

A benchmark module `benchmarks/bench_<area>.py` defines `cases() -> list[Case]`. Each Case holds two
zero-argument callables doing the same work (ours and the reference) and a `diff` callable that
returns the largest absolute difference of their outputs. `measure` runs both after warm-up,
several times, in one process with one torch thread, and reports medians and the ratio
ours/reference (< 1 means ours is faster).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    component: str  # e.g. "LSTM fwd+bwd"
    size: str  # e.g. "B=64 T=40 H=128 (experiment)" or "... (10x)"
    ours: Callable[[], object]
    reference: Callable[[], object]
    diff: Callable[[], float] | None = None  # max |ours - reference| of the outputs
    reference_name: str = "torch"
    note: str = ""  # what remains slower and why, when it does
    repeats: int = 7
    warmup: int = 2


@dataclass
class Measurement:
    component: str
    size: str
    reference_name: str
    ours_s: float
    reference_s: float
    ratio: float
    diff: float | None
    note: str = ""
    samples: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "component": self.component,
            "size": self.size,
            "reference": self.reference_name,
            "ours_s": self.ours_s,
            "reference_s": self.reference_s,
            "ratio": self.ratio,
            "diff": self.diff,
            "note": self.note,
        }


def _median_time(fn: Callable[[], object], repeats: int, warmup: int, budget_s: float = 5.0) -> tuple[float, list]:
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s and len(times) >= 3:
            break
    return statistics.median(times), times


def measure(case: Case) -> Measurement:
    ours, ts_o = _median_time(case.ours, case.repeats, case.warmup)
    ref, ts_r = _median_time(case.reference, case.repeats, case.warmup)
    diff = float(case.diff()) if case.diff is not None else None
    ratio = ours / ref if ref > 0 else float("inf")
    return Measurement(
        case.component,
        case.size,
        case.reference_name,
        ours,
        ref,
        ratio,
        diff,
        case.note,
        {"ours": ts_o, "reference": ts_r},
    )
