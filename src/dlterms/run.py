"""Experiments: registration, the `Run` context they receive, and the plain-data `Result` they leave.

An experiment is a function registered with `@experiment("<term id>")` in
`dlterms/experiments/<area>/<id_with_underscores>.py`. It receives a `Run`, trains or measures
something, and records what it found:

    @experiment("dropout")
    def dropout(run: Run) -> None:
        ...
        run.metric("test_acc_dropout", acc, key=True)
        run.check("dropout narrows the train-test gap", gap_d < gap_plain,
                  observed=gap_d, expected=f"< {gap_plain:.3f}")
        with run.figure("curves", alt="train and test accuracy per epoch") as fig:
            ax = fig.subplots(); ...

`run_experiment` calls it with a fixed seed and one torch thread, times it, catches any exception
(recorded as a failed Result with its traceback) and writes `results/<id>.json` and the figures
(SVG) beside it, each through a temporary file and a rename. `run_many` does the same for many
terms in separate worker processes, and with `seeds=[...]` for every (term, seed) pair, each pair its
own job.

Where results live (`out` is `results/` by default):

    <out>/<id>.json                  the result of a single-seed run (`dlterms run`, `--seed S`);
                                     seed 0, the default, is what the site, `show` and `summary` show
    <out>/<id>-<name>.svg            its figures
    <out>/seeds/<S>/<id>.json        seed S of a several-seed run (`dlterms run --seeds 0-4`), S != 0;
    <out>/seeds/<S>/<id>-<name>.svg  seed 0 of such a run is written to <out>/<id>.json as usual

so `--seeds 0-4` refreshes the default result and puts seeds 1-4 beside it (`seed_dir` gives the
folder). `dlterms.robustness` reads both places back and aggregates them per term.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import os
import platform
import random
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_SCHEMA = 1
DEFAULT_SEED = 0
SEEDS_DIR = "seeds"  # <out>/seeds/<S>/ holds seed S of a several-seed run (see the module docstring)

ProgressFn = Callable[[str, float, str], None]
"""progress(term_id, fraction_done in [0, 1], message)."""

_REGISTRY: dict[str, Callable[[Run], None]] = {}


# --------------------------------------------------------------------------- registration


def experiment(term_id: str) -> Callable[[Callable[[Run], None]], Callable[[Run], None]]:
    """Register `fn(run)` as the experiment of glossary entry `term_id`."""

    def register(fn: Callable[[Run], None]) -> Callable[[Run], None]:
        if term_id in _REGISTRY and _REGISTRY[term_id] is not fn:
            prev = _REGISTRY[term_id]
            if (prev.__module__, prev.__qualname__) != (fn.__module__, fn.__qualname__):
                raise ValueError(f"experiment {term_id!r} is registered twice")
        _REGISTRY[term_id] = fn
        fn.experiment_id = term_id  # type: ignore[attr-defined]
        return fn

    return register


def get_experiment(term_id: str) -> Callable[[Run], None]:
    """The registered function for `term_id`, importing its module on first use."""
    if term_id in _REGISTRY:
        return _REGISTRY[term_id]
    from dlterms import glossary

    entry = glossary.get(term_id)
    if not entry.experiment:
        raise LookupError(f"term {entry.id!r} has no experiment yet")
    importlib.import_module(entry.module_name)
    if entry.experiment not in _REGISTRY:
        raise LookupError(f"module {entry.module_name} does not register experiment {entry.experiment!r}")
    return _REGISTRY[entry.experiment]


def registered_ids() -> list[str]:
    """Ids of every entry that names an experiment, in glossary order."""
    from dlterms import glossary

    return [e.id for e in glossary.entries() if e.experiment]


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


def load_results(out: Path) -> dict[str, Result]:
    """Every readable Result in `out` by term; files that are corrupt are skipped (see `scan_results`)."""
    return scan_results(out)[0]


# --------------------------------------------------------------------------- the Run context


def resolve_device(device: str) -> str:
    """'cpu', 'cuda' or 'auto' (cuda when available) -> a torch device string."""
    if device not in ("cpu", "cuda", "auto") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "cpu":
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch sees no CUDA device")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    import numpy as np
    import torch

    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Run:
    """What an experiment receives: seed, device, progress, output folder, and the recorders.

    Attributes:
        term: the term id.
        seed: base seed; derive others with `run.rng(k)` / `run.generator(k)`.
        device: torch device string ("cpu" or "cuda").
        out: folder where figures are written.
        quick: True in smoke tests that only need the code path, not the claim.
    """

    def __init__(
        self,
        term: str,
        seed: int = DEFAULT_SEED,
        device: str = "cpu",
        out: Path | None = None,
        progress: ProgressFn | None = None,
        quick: bool = False,
    ):
        self.term = term
        self.seed = seed
        self.device = device
        self.out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="dlterms-"))
        self.quick = quick
        self._progress = progress
        self.metrics: dict[str, Any] = {}
        self.key_metric: str | None = None
        self.checks: list[Check] = []
        self.figures: list[Figure] = []

    # -- randomness
    def rng(self, offset: int = 0):
        """A NumPy Generator seeded from the run's seed plus `offset`."""
        import numpy as np

        return np.random.default_rng(self.seed * 1000 + offset)

    def generator(self, offset: int = 0):
        """A torch.Generator (on the CPU) seeded from the run's seed plus `offset`."""
        import torch

        return torch.Generator().manual_seed(self.seed * 1000 + offset)

    # -- recording
    def metric(self, name: str, value: Any, key: bool = False) -> Any:
        """Record a measured value. `key=True` marks the one shown in the summary table."""
        self.metrics[name] = _jsonable(value)
        if key or self.key_metric is None:
            self.key_metric = name
        return value

    def check(self, claim: str, passed: bool, observed: Any = None, expected: str = "") -> bool:
        """Record a claim and whether it held. Returns `passed` so callers can branch on it."""
        passed = bool(passed)
        self.checks.append(Check(claim=claim, passed=passed, observed=_jsonable(observed), expected=expected))
        return passed

    @contextlib.contextmanager
    def figure(self, name: str, alt: str = "", figsize: tuple[float, float] = (6.4, 4.0)) -> Iterator[Any]:
        """A matplotlib Figure that is saved as `<term>-<name>.svg` when the block ends."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure as MplFigure

        fig = MplFigure(figsize=figsize, layout="constrained")
        yield fig
        import io

        buf = io.BytesIO()
        # A fixed hash salt and no date keep SVGs byte-identical between runs.
        with matplotlib.rc_context({"svg.hashsalt": f"{self.term}-{name}"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
        filename = f"{self.term}-{name}.svg"
        atomic_write_bytes(self.out / filename, buf.getvalue())
        self.figures.append(Figure(name=name, path=filename, alt=alt or f"{self.term}: {name}"))

    # -- progress
    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the experiment is (0..1)."""
        if self._progress is not None:
            self._progress(self.term, min(max(float(fraction), 0.0), 1.0), message)

    def track(self, iterable: Iterable, total: int | None = None, message: str = "") -> Iterator:
        """Iterate while reporting progress: `for epoch in run.track(range(20), message="training")`."""
        if total is None:
            total = len(iterable)  # type: ignore[arg-type]
        for i, item in enumerate(iterable):
            yield item
            self.progress((i + 1) / max(total, 1), message)


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


@contextlib.contextmanager
def caller_state_kept() -> Iterator[None]:
    """Restore torch's thread count and the global Python, NumPy and torch (CPU, and CUDA when in use)
    random states when the block ends, so that a run leaves its caller's process as it found it."""
    import numpy as np
    import torch

    threads = torch.get_num_threads()
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def run_experiment(
    term_id: str,
    seed: int = DEFAULT_SEED,
    device: str = "cpu",
    out: Path | str = "results",
    progress: ProgressFn | None = None,
    save: bool = True,
    quick: bool = False,
) -> Result:
    """Run one experiment and return (and by default save) its Result. Never raises for the experiment's
    own errors: they become a Result with status "error" and the traceback. The run has one torch
    thread and global RNGs seeded with `seed`; the caller's thread count and RNG states are restored
    afterwards."""
    import torch

    from dlterms import glossary

    entry = glossary.get(term_id)
    device = resolve_device(device)
    out = Path(out)
    run = Run(entry.id, seed=seed, device=device, out=out, progress=progress, quick=quick)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    error = None
    with caller_state_kept():
        torch.set_num_threads(1)
        seed_everything(seed)
        t0 = time.perf_counter()
        try:
            fn = get_experiment(entry.id)
            fn(run)
            if not run.checks:
                raise RuntimeError(f"experiment {entry.id!r} recorded no checks")
        except Exception:  # noqa: BLE001 - an experiment's failure is data, not a crash of the runner
            error = traceback.format_exc()
        seconds = time.perf_counter() - t0
    if error is not None:
        status = "error"
    else:
        status = "passed" if all(c.passed for c in run.checks) else "failed"
    result = Result(
        term=entry.id,
        number=entry.number,
        title=entry.title,
        area=entry.area,
        status=status,
        seconds=round(seconds, 3),
        seed=seed,
        device=device,
        metrics=run.metrics,
        key_metric=run.key_metric,
        checks=run.checks,
        figures=run.figures,
        error=error,
        versions=versions(),
        started=started,
    )
    if save:
        save_result(result, out)
    return result


# --------------------------------------------------------------------------- many at once

_worker_queue = None
_worker_seed = DEFAULT_SEED  # the seed of the job this worker process runs now (one at a time)


def _worker_init(queue) -> None:  # pragma: no cover - runs in a child process
    global _worker_queue
    _worker_queue = queue
    import signal

    # Ctrl-C goes to the parent, which cancels what has not started and keeps what has finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_progress(term: str, fraction: float, message: str) -> None:  # pragma: no cover
    if _worker_queue is not None:
        _worker_queue.put((term, _worker_seed, fraction, message))


def _worker_run(term_id: str, seed: int, device: str, out: str) -> dict:  # pragma: no cover
    """One (term, seed) job. Progress messages carry the seed, so the parent can tell two seeds of one
    term apart while they run side by side. run_many looks this function up when it submits a job (the
    runner's own tests put a stand-in in its place)."""
    global _worker_seed
    _worker_seed = seed
    _worker_progress(term_id, 0.0, "started")
    result = run_experiment(term_id, seed=seed, device=device, out=out, progress=_worker_progress)
    return result.to_dict()


def _crash_result(term_id: str, seed: int, device: str, message: str) -> Result:
    from dlterms import glossary

    e = glossary.get(term_id)
    return Result(
        term=e.id,
        number=e.number,
        title=e.title,
        area=e.area,
        status="error",
        seconds=0.0,
        seed=seed,
        device=device,
        error=message,
    )


def pair_label(term: str, seed: int) -> str:
    """How a (term, seed) job is named in progress reports of a several-seed run: 'gan@3'."""
    return f"{term}@{seed}"


def run_many(
    term_ids: list[str],
    jobs: int = 1,
    seed: int = DEFAULT_SEED,
    device: str = "cpu",
    out: Path | str = "results",
    progress: ProgressFn | None = None,
    on_result: Callable[[Result], None] | None = None,
    isolate: bool = False,
    seeds: Sequence[int] | None = None,
) -> list[Result]:
    """Run several experiments, `jobs` at a time in worker processes (in-process when jobs == 1 and
    there is one job, unless `isolate`). A crash of one worker is reported as that job's error and
    the rest go on.

    Without `seeds`, every term runs at `seed` and is saved in `out`; results come back in the order
    of `term_ids`. With `seeds`, every (term, seed) pair is its own job, saved in `seed_dir(out, seed)`
    (see the module docstring); results come back term by term, each term's seeds in the given order,
    and `progress` is called with `pair_label(term, seed)` in place of the term."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if seeds is not None:
        seeds = list(seeds)
        if not seeds:
            raise ValueError("seeds must name at least one seed, got []")
        for s in seeds:
            seed_dir(out, s)  # validates s
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must not repeat, got {seeds}")
        pairs = [(t, s) for t in term_ids for s in seeds]
        folder = {s: seed_dir(out, s) for s in seeds}
    else:
        pairs = [(t, seed) for t in term_ids]
        folder = {seed: Path(out)}
    labelled = seeds is not None
    device = resolve_device(device)
    for f in folder.values():
        f.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, int], Result] = {}

    def label(term: str, s: int) -> str:
        return pair_label(term, s) if labelled else term

    def done(key: tuple[str, int], r: Result) -> None:
        results[key] = r
        if on_result is not None:
            on_result(r)

    def lost_one(key: tuple[str, int], message: str) -> None:
        # saved like any result, so an older file of this (term, seed) does not pass for this run's
        r = _crash_result(key[0], key[1], device, message)
        save_result(r, folder[key[1]])
        done(key, r)

    if jobs == 1 and len(pairs) == 1 and not isolate:
        (t, s) = pairs[0]

        def progress_one(term: str, fraction: float, message: str) -> None:
            if progress is not None:
                progress(label(term, s), fraction, message)

        done((t, s), run_experiment(t, seed=s, device=device, out=folder[s], progress=progress_one))
        return [results[k] for k in pairs]

    import concurrent.futures as cf
    import multiprocessing as mp
    import queue as queue_mod
    import threading

    ctx = mp.get_context("spawn")  # torch and fork do not mix; spawn is the same on every OS
    manager_queue = ctx.Queue()
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            try:
                item = manager_queue.get(timeout=0.1)
            except queue_mod.Empty:
                continue
            except (EOFError, OSError, ValueError):
                return
            pump_item(item)

    started: set[tuple[str, int]] = set()

    def pump_item(item) -> None:
        term, s, fraction, message = item
        if message == "started":
            started.add((term, s))
        if progress is not None:
            progress(label(term, s), fraction, message)

    pump_thread = threading.Thread(target=pump, daemon=True)
    pump_thread.start()
    pending = list(pairs)
    solo: list[tuple[str, int]] = []  # jobs that were running when a worker died: retried one at a time
    try:
        while pending:
            batch = [solo[0]] if solo else pending
            workers = 1 if solo else min(jobs, len(pending))
            with cf.ProcessPoolExecutor(
                max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(manager_queue,)
            ) as pool:
                futures = {pool.submit(_worker_run, t, s, device, str(folder[s])): (t, s) for (t, s) in batch}
                broken = False
                try:
                    for fut in cf.as_completed(futures):
                        key = futures[fut]
                        try:
                            done(key, Result.from_dict(fut.result()))
                        except cf.process.BrokenProcessPool:
                            broken = True
                            break
                        except Exception:  # noqa: BLE001 - e.g. a result that failed to pickle
                            lost_one(key, traceback.format_exc())
                except KeyboardInterrupt:
                    for f in futures:
                        f.cancel()
                    raise
            if broken:
                time.sleep(0.3)  # let the pump see the last "started" messages
                lost = [k for k in batch if k in started and k not in results]
                if len(batch) == 1 or len(lost) <= 1:
                    for k in lost or [k for k in batch if k not in results][:1]:
                        lost_one(k, "worker process crashed (killed or segfault)")
                else:
                    solo.extend(k for k in lost if k not in solo)
            pending = [k for k in pending if k not in results]
            solo = [k for k in solo if k not in results]
    finally:
        stop.set()
        pump_thread.join(timeout=1)
    return [results[k] for k in pairs]
