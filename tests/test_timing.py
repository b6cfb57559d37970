"""dlterms.timing with a fake clock: rounds, rotation, per-round ratios and slopes, and a burst of load
on one round that a one-after-the-other best-of comparison would let flip the result."""

from __future__ import annotations

import numpy as np
import pytest

from dlterms import timing


class FakeClock:
    """process_time() for timing, advanced by the work the fake functions 'do'."""

    def __init__(self):
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def work(self, name: str, seconds: float):
        def f():
            self.calls.append(name)
            self.now += seconds

        return f


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(timing.time, "process_time", c)
    return c


def test_every_function_runs_once_per_round_in_a_rotating_order(clock):
    fns = [clock.work(n, s) for n, s in (("a", 1.0), ("b", 2.0), ("c", 4.0))]
    t = timing.interleaved_seconds(fns, rounds=3, warmup=1)
    assert t.shape == (3, 3)
    np.testing.assert_array_equal(t, [[1.0, 2.0, 4.0]] * 3)
    assert clock.calls == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_median_ratio_and_slope_ignore_one_disturbed_round(clock):
    """A burst of other work lands on one round only: the median over rounds does not move."""
    burst = {"round": 0}

    def slow_once(name, seconds):
        def f():
            clock.calls.append(name)
            clock.now += seconds * (50.0 if name == "big" and burst["round"] == 3 else 1.0)

        return f

    def tick():
        burst["round"] += 1

    fns = [slow_once("small", 1.0), slow_once("big", 4.0), tick]
    t = timing.interleaved_seconds(fns, rounds=7, warmup=0)
    assert timing.median_ratio(t, 1, 0) == pytest.approx(4.0)
    assert t[:, 1].max() > 100  # the burst was there
    sizes = [10, 100, 1000]
    times = np.array([[1.0, 10.0, 100.0]] * 6 + [[1.0, 10.0, 1e6]])  # one round far off
    assert timing.median_slope(times, sizes) == pytest.approx(1.0)
    assert timing.median_slope(np.array([[1.0, 100.0, 1e4]] * 3), sizes) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(fns=[lambda: None], rounds=0), "rounds must be >= 1, got 0"),
        (dict(fns=[lambda: None], rounds=1, warmup=-1), "warmup must be >= 0, got -1"),
        (dict(fns=[], rounds=1), "at least one function"),
    ],
)
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        timing.interleaved_seconds(**kw)
    with pytest.raises(ValueError, match="one column per size"):
        timing.median_slope(np.ones((3, 2)), [1, 2, 3])
