"""Claims over seeds: parse a seed SPEC, load the saved results of several seeds, and aggregate them.

An experiment's checks must hold at every seed, not only at the default seed 0. `dlterms run
--seeds 0-4` runs each (term, seed) pair as its own job and saves the results side by side:

    results/<id>.json                  seed 0, the result the site, `show` and `summary` display
                                       (also where a plain `dlterms run` or `--seed S` writes)
    results/<id>-<name>.svg            its figures
    results/seeds/<S>/<id>.json        seed S != 0 of a `--seeds` run
    results/seeds/<S>/<id>-<name>.svg  its figures (relative paths, as at the top level)

`load_seed_results(results)` gathers both places into {term: {seed: Result}}: each file's seed is
the `seed` field it records (a top-level file run with `--seed 3` counts as seed 3). When two files
hold the same (term, seed), the one started last wins.

`aggregate(by_seed)` summarises one term (a pure function of the loaded Results):

- `seeds`: the seeds found, sorted.
- `checks`: per check, on how many of those seeds it held (`held` of `of`, where `of` is always the
  number of seeds found: a check that a seed did not record, because the experiment raised before it
  or never reached it, counts as not held there). Checks are matched across seeds by their claim with
  every number replaced by `#` (some claims embed a measured value or a seed, e.g. "seed 3: >= 80 %
  ..."), plus the occurrence of that normalised claim in the run, so repeated claims pair up by
  position. The claim text shown is the one from the lowest seed that recorded it; checks are listed
  in that seed's order.
- `metrics`: per numeric metric (ints and finite floats; lists, strings and booleans are skipped),
  mean, std, min and max over the seeds that recorded it. `std` is the sample standard deviation
  (n - 1 in the denominator) and is None when only one seed recorded the metric.

`report(results)` does this for every term found, in glossary order.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dlterms.run import DEFAULT_SEED, SEEDS_DIR, Check, Result

__all__ = [
    "parse_seeds",
    "format_seeds",
    "claim_key",
    "CheckTally",
    "MetricSpread",
    "Robustness",
    "aggregate",
    "load_seed_results",
    "report",
]

_SPEC_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


MAX_SEED = 2**32 - 1  # numpy's and torch's seeds are 32-bit here
MAX_SEEDS = 1000


def parse_seeds(spec: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2,7' -> [0, 2, 7]; '0-2,5' -> [0, 1, 2, 5].

    Items are separated by commas; each is a seed (a non-negative integer) or an inclusive range
    `a-b` with a <= b. The result is sorted, without repeats. Anything else raises ValueError."""
    text = spec if isinstance(spec, str) else ""
    items = text.split(",")
    seeds: set[int] = set()
    for item in items:
        m = _SPEC_ITEM.match(item)
        if not m:
            raise ValueError(
                f"seeds must be a range like 0-4 or a list like 0,2,7 of non-negative integers, got {spec!r}"
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"seeds range {item.strip()!r} is empty (the first seed is above the last), got {spec!r}")
        if hi > MAX_SEED:
            raise ValueError(f"seeds must be at most {MAX_SEED}, got {spec!r}")
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS} seeds in one run, got {spec!r}")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def format_seeds(seeds: Iterable[int]) -> str:
    """[0, 1, 2, 4] -> '0-2,4': the shortest SPEC that `parse_seeds` reads back as the same seeds."""
    s = sorted(set(seeds))
    parts: list[str] = []
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        parts.append(str(s[i]) if i == j else f"{s[i]}-{s[j]}" if j > i + 1 else f"{s[i]},{s[j]}")
        i = j + 1
    return ",".join(parts)


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def claim_key(claim: str) -> str:
    """The claim with every number replaced by '#' and runs of whitespace collapsed."""
    return " ".join(_NUMBER.sub("#", claim).split())


def _check_keys(checks: Iterable[Check]) -> list[tuple[str, int]]:
    """(normalised claim, how many earlier checks of the run share it) for each check, in order."""
    seen: dict[str, int] = {}
    keys = []
    for c in checks:
        k = claim_key(c.claim)
        keys.append((k, seen.get(k, 0)))
        seen[k] = seen.get(k, 0) + 1
    return keys


@dataclass
class CheckTally:
    """One check over the seeds: `held` of `of` seeds, and the seeds where it did not hold."""

    claim: str
    held: int
    of: int
    failed_seeds: list[int] = field(default_factory=list)
    key: tuple[str, int] = ("", 0)

    @property
    def always(self) -> bool:
        return self.held == self.of

    def to_dict(self) -> dict:
        return {"claim": self.claim, "held": self.held, "of": self.of, "failed_seeds": list(self.failed_seeds)}


@dataclass
class MetricSpread:
    """A numeric metric over the seeds that recorded it (n of them)."""

    mean: float
    std: float | None
    min: float
    max: float
    n: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max}

    def text(self, digits: int = 3) -> str:
        """'0.771 ± 0.012, min 0.75, max 0.79 (5 seeds)'; one seed: '0.771 (1 seed)'."""

        def g(v: float) -> str:
            return f"{v:.{digits}g}"

        if self.n == 1 or self.std is None:
            return f"{g(self.mean)} (1 seed)"
        return f"{g(self.mean)} ± {g(self.std)}, min {g(self.min)}, max {g(self.max)} ({self.n} seeds)"


@dataclass
class Robustness:
    """What one term's results over several seeds say."""

    id: str
    seeds: list[int]
    checks: list[CheckTally]
    metrics: dict[str, MetricSpread]
    key_metric: str | None = None
    passed_seeds: list[int] = field(default_factory=list)  # seeds where the run passed every check
    error_seeds: list[int] = field(default_factory=list)  # seeds where the experiment raised

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def n_passed(self) -> int:
        return len(self.passed_seeds)

    @property
    def holds_everywhere(self) -> bool:
        return bool(self.seeds) and self.n_passed == self.n_seeds

    @property
    def key_spread(self) -> MetricSpread | None:
        return self.metrics.get(self.key_metric) if self.key_metric else None

    def tallies_for(self, result: Result) -> list[CheckTally | None]:
        """The tally of each check of `result` (one of the seeds), in its order."""
        by_key = {t.key: t for t in self.checks}
        return [by_key.get(k) for k in _check_keys(result.checks)]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "seeds": list(self.seeds),
            "checks": [c.to_dict() for c in self.checks],
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "key_metric": self.key_metric,
            "passed_seeds": list(self.passed_seeds),
            "error_seeds": list(self.error_seeds),
        }


def _spread(values: list[float]) -> MetricSpread:
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return MetricSpread(mean=mean, std=std, min=min(values), max=max(values), n=n)


def _numeric(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def aggregate(by_seed: Mapping[int, Result] | Iterable[Result], term: str | None = None) -> Robustness:
    """Summarise one term's Results over seeds: a mapping {seed: Result} or Results that each record
    their seed (a later duplicate seed replaces an earlier one). An empty input gives no seeds."""
    if not isinstance(by_seed, Mapping):
        by_seed = {r.seed: r for r in by_seed}
    seeds = sorted(by_seed)
    results = [by_seed[s] for s in seeds]
    terms = {r.term for r in results}
    if len(terms) > 1:
        raise ValueError(f"by_seed must hold one term's results, got the terms {sorted(terms)}")
    term_id = term if term is not None else (results[0].term if results else "")

    # Checks: key -> per-seed outcome; listed in the order of the lowest seed that recorded them.
    order: list[tuple[str, int]] = []
    claim_of: dict[tuple[str, int], str] = {}
    held_at: dict[tuple[str, int], set[int]] = {}
    for s, r in zip(seeds, results, strict=True):
        for key, c in zip(_check_keys(r.checks), r.checks, strict=True):
            if key not in claim_of:
                order.append(key)
                claim_of[key] = c.claim
                held_at[key] = set()
            if c.passed:
                held_at[key].add(s)
    checks = [
        CheckTally(
            claim=claim_of[k],
            held=len(held_at[k]),
            of=len(seeds),
            failed_seeds=[s for s in seeds if s not in held_at[k]],
            key=k,
        )
        for k in order
    ]

    # Metrics: in the order the reference seed recorded them, then any others.
    values: dict[str, list[float]] = {}
    for r in results:
        for name, v in r.metrics.items():
            x = _numeric(v)
            if x is not None:
                values.setdefault(name, []).append(x)
    metrics = {name: _spread(vs) for name, vs in values.items()}

    ref = by_seed[DEFAULT_SEED] if DEFAULT_SEED in by_seed else (results[0] if results else None)
    key_metric = ref.key_metric if ref is not None and ref.key_metric in metrics else None
    return Robustness(
        id=term_id,
        seeds=seeds,
        checks=checks,
        metrics=metrics,
        key_metric=key_metric,
        passed_seeds=[s for s, r in zip(seeds, results, strict=True) if r.status == "passed"],
        error_seeds=[s for s, r in zip(seeds, results, strict=True) if r.status == "error"],
    )


def _read(path: Path) -> Result | None:
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        d = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(d, dict) and "term" in d and "checks" in d and isinstance(d.get("seed"), int):
            return Result.from_dict(d)
    return None


def load_seed_results(results: Path | str, term: str | None = None) -> dict[str, dict[int, Result]]:
    """{term: {seed: Result}} from `results/<id>.json` and `results/seeds/<S>/<id>.json` (only the
    files of `term` when it is given).

    A missing folder gives {}. Files that are not Results are ignored. Of two files for the same
    (term, seed), the one whose `started` time is later is kept (ties: the one under seeds/)."""
    root = Path(results)
    found: dict[str, dict[int, Result]] = {}
    if not root.is_dir():
        return found
    pattern = f"{term}.json" if term is not None else "*.json"
    paths = sorted(root.glob(pattern))
    seeds_root = root / SEEDS_DIR
    if seeds_root.is_dir():
        for d in sorted(seeds_root.iterdir(), key=lambda p: (len(p.name), p.name)):
            if d.is_dir() and d.name.isdigit():
                paths += sorted(d.glob(pattern))
    for p in paths:
        r = _read(p)
        if r is None or (term is not None and r.term != term):
            continue
        per_term = found.setdefault(r.term, {})
        old = per_term.get(r.seed)
        if old is None or r.started >= old.started:
            per_term[r.seed] = r
    return found


def report(results: Path | str | Mapping[str, Mapping[int, Result]]) -> list[Robustness]:
    """`aggregate` for every term found (a results folder, or what `load_seed_results` returns), in
    glossary order (terms the glossary does not know come last, by id)."""
    from dlterms import glossary

    loaded = load_seed_results(results) if isinstance(results, str | Path) else results
    rank = {e.id: e.number for e in glossary.entries()}
    ids = sorted(loaded, key=lambda t: (rank.get(t, 10**6), t))
    return [aggregate(loaded[t], term=t) for t in ids if loaded[t]]
