"""The plain data an experiment leaves, and the files it lives in: `Check`, `Figure`, `Result`, writes
through a temporary file and a rename, saving and loading results (one seed or several), the
package versions a result records, and the cache folder.

Nothing here imports torch or the runner, so the site, the glossary's coverage and the data modules can
read and write results without loading the experiments. `dlterms.run` re-exports these names.

Where results live (`out` is `results/` by default):

    <out>/<id>.json                  the result of a single-seed run (`dlterms run`, `--seed S`);
                                     seed 0, the default, is what the site, `show` and `summary` show
    <out>/<id>-<name>.svg            its figures
    <out>/seeds/<S>/<id>.json        seed S of a several-seed run (`dlterms run --seeds 0-4`), S != 0;
    <out>/seeds/<S>/<id>-<name>.svg  seed 0 of such a run is written to <out>/<id>.json as usual
    <out>/custom/<id>/<tag>/         a run with non-default parameters (`dlterms.params`)
    <out>/sweeps/<id>/<name>.json    a sweep over parameter values and seeds, and its .svg
                                     (`dlterms.sweep`; its runs under <out>/sweeps/<id>/runs/)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_SCHEMA = 1
DEFAULT_SEED = 0
SEEDS_DIR = "seeds"  # <out>/seeds/<S>/ holds seed S of a several-seed run


def cache_dir() -> Path:
    """Where generated data and text embeddings are cached: $DLTERMS_CACHE, else ~/.cache/dlterms."""
    return Path(os.environ.get("DLTERMS_CACHE", Path.home() / ".cache" / "dlterms"))


# --------------------------------------------------------------------------- plain data


@dataclass
class Check:
    """A claim an experiment tests, what it observed, the threshold, and whether it held."""

    claim: str
    passed: bool
    observed: Any = None
    expected: str = ""

    def to_dict(self) -> dict:
        return {
            "claim": self.claim,
            "passed": self.passed,
            "observed": _jsonable(self.observed),
            "expected": self.expected,
        }


@dataclass
class Figure:
    name: str
    path: str  # relative to the results folder
    alt: str = ""


@dataclass
class Result:
    """Everything one experiment run leaves behind, JSON-serialisable."""

    term: str
    number: int
    title: str
    area: str
    status: str  # "passed" (every check held), "failed" (a check failed), "error" (it raised)
    seconds: float
    seed: int
    device: str
    metrics: dict[str, Any] = field(default_factory=dict)
    key_metric: str | None = None
    checks: list[Check] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    started: str = ""
    config: dict[str, Any] | None = None  # the parameters it ran with (None: it declares none)
    default: bool = True  # False when a parameter differs from its declared default
    schema: int = RESULT_SCHEMA

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def n_passed(self) -> int:
        return sum(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["checks"] = [c.to_dict() for c in self.checks]
        d["metrics"] = {k: _jsonable(v) for k, v in self.metrics.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Result:
        d = dict(d)
        d["checks"] = [Check(**c) for c in d.get("checks", [])]
        d["figures"] = [Figure(**f) for f in d.get("figures", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts as JSON can hold them (numpy/torch scalars unwrapped)."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan; keep them readable
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --------------------------------------------------------------------------- atomic files


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_result(result: Result, out: Path) -> Path:
    path = Path(out) / f"{result.term}.json"
    atomic_write_text(path, json.dumps(result.to_dict(), indent=2, sort_keys=False) + "\n")
    return path


class ResultFileError(ValueError):
    """A results file that is not valid JSON or not a valid Result; the message names the file."""


_RESULT_FIELDS = {
    "term": str,
    "number": int,
    "title": str,
    "area": str,
    "status": str,
    "seconds": (int, float),
    "seed": int,
    "device": str,
}


def _result_problem(d: Any) -> str | None:
    """Why a parsed results file cannot be read as a Result (None when it can)."""
    if not isinstance(d, dict):
        return "not a JSON object"
    for name, kind in _RESULT_FIELDS.items():
        if not isinstance(d.get(name), kind) or isinstance(d.get(name), bool):
            return f"field {name!r} is missing or has the wrong type"
    if d["status"] not in ("passed", "failed", "error"):
        return f"status must be passed, failed or error, got {d['status']!r}"
    if not isinstance(d.get("metrics", {}), dict):
        return "field 'metrics' is not an object"
    if d.get("config") is not None and not isinstance(d["config"], dict):
        return "field 'config' is not an object"
    if not isinstance(d.get("default", True), bool):
        return "field 'default' is not a boolean"
    for name in ("key_metric", "error", "started"):
        if d.get(name) is not None and not isinstance(d[name], str):
            return f"field {name!r} has the wrong type"
    checks, figures = d.get("checks"), d.get("figures", [])
    if not isinstance(checks, list) or not all(
        isinstance(c, dict)
        and set(c) <= {"claim", "passed", "observed", "expected"}
        and "claim" in c
        and isinstance(c.get("passed"), bool)
        for c in checks
    ):
        return "field 'checks' is not a list of checks"
    if not isinstance(figures, list) or not all(
        isinstance(f, dict)
        and set(f) <= {"name", "path", "alt"}
        and all(isinstance(f.get(k, ""), str) for k in ("name", "path", "alt"))
        and "path" in f
        and "name" in f
        for f in figures
    ):
        return "field 'figures' is not a list of figures"
    return None


def _read_result(path: Path) -> Result | None:
    """The Result in `path`; None for a JSON file that is not a result (e.g. suite-timing.json);
    ResultFileError for one that is truncated, corrupt or unreadable."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    except ValueError as exc:
        raise ResultFileError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(d, dict) and not ("term" in d and "checks" in d):
        return None
    problem = _result_problem(d)
    if problem is not None:
        raise ResultFileError(f"{path}: not a valid result ({problem})")
    return Result.from_dict(d)


def seed_dir(out: Path | str, seed: int) -> Path:
    """The folder of seed `seed`'s results in a several-seed run: `out` itself for the default seed 0
    (where the site reads), `out/seeds/<seed>/` for any other."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return Path(out) if seed == DEFAULT_SEED else Path(out) / SEEDS_DIR / str(seed)


def load_result(term_id: str, out: Path) -> Result | None:
    """The last saved Result of `term_id` in `out`, or None; ResultFileError when the file is corrupt."""
    path = Path(out) / f"{term_id}.json"
    if not path.exists():
        return None
    return _read_result(path)


def scan_results(out: Path) -> tuple[dict[str, Result], list[tuple[Path, str]]]:
    """Every readable Result in `out` by term, and (file, problem) for each results file skipped."""
    out = Path(out)
    results: dict[str, Result] = {}
    problems: list[tuple[Path, str]] = []
    if out.is_dir():
        for p in sorted(out.glob("*.json")):
            try:
                r = _read_result(p)
            except ResultFileError as exc:
                problems.append((p, str(exc).removeprefix(f"{p}: ")))
                continue
            if r is not None:
                results[r.term] = r
    return results, problems


def custom_results(out: Path, term_id: str) -> list[tuple[str, Result]]:
    """(tag, Result) of each saved run of `term_id` with non-default parameters
    (`<out>/custom/<id>/<tag>/<id>.json`, see `dlterms.params`), by tag; corrupt files are skipped."""
    folder = Path(out) / "custom" / term_id
    found: list[tuple[str, Result]] = []
    if folder.is_dir():
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            with contextlib.suppress(ResultFileError):
                r = load_result(term_id, sub)
                if r is not None:
                    found.append((sub.name, r))
    return found


def load_results(out: Path) -> dict[str, Result]:
    """Every readable Result in `out` by term; files that are corrupt are skipped (see `scan_results`)."""
    return scan_results(out)[0]


# --------------------------------------------------------------------------- versions


def versions() -> dict[str, str]:
    import numpy
    import torch

    import dlterms

    v = {
        "python": platform.python_version(),
        "dlterms": dlterms.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }
    with contextlib.suppress(ImportError):
        import sklearn

        v["scikit-learn"] = sklearn.__version__
    return v
