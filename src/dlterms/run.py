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
    <out>/custom/<id>/<tag>/         a run with non-default parameters (`config=...`, see
                                     `dlterms.params`), never over <out>/<id>.json
    <out>/sweeps/<id>/<name>.json    a sweep over parameter values x seeds and its .svg; its runs
                                     under <out>/sweeps/<id>/runs/ (see `dlterms.sweep`)

so `--seeds 0-4` refreshes the default result and puts seeds 1-4 beside it (`seed_dir` gives the
folder). `dlterms.robustness` reads both places back and aggregates them per term.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import random
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dlterms.results import (  # noqa: F401 - the plain data, re-exported: experiments import it from here
    DEFAULT_SEED,
    RESULT_SCHEMA,
    SEEDS_DIR,
    Check,
    Figure,
    Result,
    ResultFileError,
    _jsonable,
    atomic_write_bytes,
    atomic_write_text,
    load_result,
    load_results,
    save_result,
    scan_results,
    seed_dir,
    versions,
)

DIGITS = 5
"""Significant digits a recorded metric or observed value keeps (floats only; integers stay exact)."""


def rounded(value: Any, digits: int | None = DIGITS) -> Any:
    """`value` (JSON-like) with every float kept to `digits` significant digits; None keeps all."""
    if digits is None:
        return value
    if not isinstance(digits, int) or isinstance(digits, bool) or digits < 1:
        raise ValueError(f"digits must be an integer >= 1 or None, got {digits!r}")
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    return value


def _number(x: float) -> str:
    """A threshold as written in `expected`: 0.95, 1e-06, 200."""
    return f"{x:g}" if isinstance(x, float) else str(x)


ProgressFn = Callable[[str, float, str], None]
"""progress(term_id, fraction_done in [0, 1], message)."""

_REGISTRY: dict[str, Callable[[Run], None]] = {}


# --------------------------------------------------------------------------- registration


def experiment(
    term_id: str, config: type | None = None, sweeps: Sequence[Any] = ()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register `fn(run)` as the experiment of glossary entry `term_id`; with `config` (a frozen
    dataclass of its parameters, see `dlterms.params`), `fn(run, cfg)`, called with `config()` or
    the user's overrides. `sweeps` are the `params.Sweep`s it declares (they need a config)."""
    if config is not None or sweeps:
        from dlterms import params

        if config is None:
            raise ValueError(f"experiment {term_id!r} declares sweeps but no config")
        params.params(config)  # validates the declaration when the module is imported
        for sw in sweeps:
            if not isinstance(sw, params.Sweep):
                raise ValueError(f"sweeps of {term_id!r} must be params.Sweep, got {sw!r}")
            sw.validate(config, term=term_id)

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        if term_id in _REGISTRY and _REGISTRY[term_id] is not fn:
            prev = _REGISTRY[term_id]
            if (prev.__module__, prev.__qualname__) != (fn.__module__, fn.__qualname__):
                raise ValueError(f"experiment {term_id!r} is registered twice")
        _REGISTRY[term_id] = fn
        fn.experiment_id = term_id  # type: ignore[attr-defined]
        fn.config_class = config  # type: ignore[attr-defined]
        fn.sweeps = tuple(sweeps)  # type: ignore[attr-defined]
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


def config_class(term_id: str) -> type | None:
    """The Config dataclass `term_id`'s experiment declares, or None when it declares none."""
    return getattr(get_experiment(term_id), "config_class", None)


def declared_sweeps(term_id: str) -> tuple:
    """The `params.Sweep`s `term_id`'s experiment declares."""
    return getattr(get_experiment(term_id), "sweeps", ())


def registered_ids() -> list[str]:
    """Ids of every entry that names an experiment, in glossary order."""
    from dlterms import glossary

    return [e.id for e in glossary.entries() if e.experiment]


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
        config: the experiment's parameters (its Config instance), or None when it declares none.
    """

    def __init__(
        self,
        term: str,
        seed: int = DEFAULT_SEED,
        device: str = "cpu",
        out: Path | None = None,
        progress: ProgressFn | None = None,
        quick: bool = False,
        config: Any = None,
    ):
        self.term = term
        self.config = config
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
    def metric(self, name: str, value: Any, key: bool = False, digits: int | None = DIGITS) -> Any:
        """Record a measured value, its floats kept to `digits` significant digits (None: all of
        them). `key=True` marks the one shown in the summary table. Returns `value` unrounded."""
        self.metrics[name] = rounded(_jsonable(value), digits)
        if key or self.key_metric is None:
            self.key_metric = name
        return value

    def check(
        self, claim: str, passed: bool, observed: Any = None, expected: str = "", digits: int | None = DIGITS
    ) -> bool:
        """Record a claim and whether it held (`observed` kept to `digits` significant digits).
        Returns `passed` so callers can branch on it."""
        passed = bool(passed)
        self.checks.append(
            Check(claim=claim, passed=passed, observed=rounded(_jsonable(observed), digits), expected=expected)
        )
        return passed

    def check_ge(self, claim: str, observed: float, threshold: float, strict: bool = False) -> bool:
        """Check `observed >= threshold` (`>` when `strict`); `expected` is written from the comparison."""
        passed = observed > threshold if strict else observed >= threshold
        return self.check(claim, passed, observed=observed, expected=f"{'>' if strict else '>='} {_number(threshold)}")

    def check_le(self, claim: str, observed: float, threshold: float, strict: bool = False) -> bool:
        """Check `observed <= threshold` (`<` when `strict`); `expected` is written from the comparison."""
        passed = observed < threshold if strict else observed <= threshold
        return self.check(claim, passed, observed=observed, expected=f"{'<' if strict else '<='} {_number(threshold)}")

    def check_between(self, claim: str, observed: float, low: float, high: float) -> bool:
        """Check `low <= observed <= high`; `expected` is written from the bounds."""
        if not low <= high:
            raise ValueError(f"low must be <= high, got low={low!r}, high={high!r}")
        return self.check(
            claim, low <= observed <= high, observed=observed, expected=f"in [{_number(low)}, {_number(high)}]"
        )

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
    config: dict[str, Any] | None = None,
) -> Result:
    """Run one experiment and return (and by default save) its Result. Never raises for the experiment's
    own errors: they become a Result with status "error" and the traceback. The run has one torch
    thread and global RNGs seeded with `seed`; the caller's thread count and RNG states are restored
    afterwards.

    `config` maps parameter names to values (text, parsed by type, or Python values) that replace the
    declared defaults; a bad name or value raises ValueError before anything runs. A run whose
    parameters differ from the defaults is saved in `params.custom_dir(out, term, cfg)`, never over
    the default result."""
    import torch

    from dlterms import glossary, params

    entry = glossary.get(term_id)
    device = resolve_device(device)
    out = Path(out)
    cls = config_class(entry.id)
    if cls is None:
        if config:
            raise ValueError(f"experiment {entry.id!r} declares no parameters, got {sorted(config)}")
        cfg = None
    else:
        cfg = params.build_config(cls, config, term=entry.id)
    default = params.is_default(cfg)
    if not default:
        out = params.custom_dir(out, entry.id, cfg)
    run = Run(entry.id, seed=seed, device=device, out=out, progress=progress, quick=quick, config=cfg)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    error = None
    with caller_state_kept():
        torch.set_num_threads(1)
        seed_everything(seed)
        t0 = time.perf_counter()
        try:
            fn = get_experiment(entry.id)
            fn(run) if cfg is None else fn(run, cfg)
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
        config=None if cfg is None else params.config_dict(cfg),
        default=default,
    )
    if save:
        save_result(result, out)
    return result


# --------------------------------------------------------------------------- many at once

_worker_queue = None
_worker_seed = DEFAULT_SEED  # the seed of the job this worker process runs now (one at a time)
_worker_index = 0  # which of run_many's `configs` that job runs (0 without them)


# glibc's malloc gives the top of its heap back to the kernel whenever more than its trim threshold
# (128 KiB by default) lies free there, so a training loop that frees and reallocates the same large
# activations every step keeps paying for fresh zeroed pages: system time. A high trim threshold and a
# top pad keep that memory in the process. Measured (with an mmap threshold too, above glibc's
# maximum, so ignored): seq2seq-learning 26.2 -> 19.3 s, transformer 33.1 -> 31.0 s, the others within
# noise; the results of seq2seq-learning and sequence-modeling were bit-identical with and without.
# Only the worker processes get it (glibc reads the variables when a process starts): they are set
# while run_many's pool lives, where the caller has not set them, and removed afterwards; other C
# libraries ignore them.
_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": str(1 << 31), "MALLOC_TOP_PAD_": str(1 << 28)}


def _worker_malloc_env() -> list[str]:
    """Set the `_MALLOC_ENV` variables the caller has not set; returns their names, for
    `_drop_env`."""
    import os

    added = [name for name in _MALLOC_ENV if name not in os.environ]
    for name in added:
        os.environ[name] = _MALLOC_ENV[name]
    return added


def _drop_env(names: list[str]) -> None:
    import os

    for name in names:
        os.environ.pop(name, None)


def _worker_init(queue) -> None:  # pragma: no cover - runs in a child process
    global _worker_queue
    _worker_queue = queue
    import signal

    # Ctrl-C goes to the parent, which cancels what has not started and keeps what has finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_progress(term: str, fraction: float, message: str) -> None:  # pragma: no cover
    if _worker_queue is not None:
        _worker_queue.put((term, _worker_seed, _worker_index, fraction, message))


def _worker_run(
    term_id: str, seed: int, device: str, out: str, config: dict | None = None, index: int = 0
) -> dict:  # pragma: no cover
    """One (term, seed) job (with run_many's `configs`, one (term, config, seed) job: `index` is the
    config's place in that list). Progress messages carry the seed and the index, so the parent can
    tell two jobs of one term apart while they run side by side. run_many looks this function up when
    it submits a job (the runner's own tests put a stand-in in its place)."""
    global _worker_seed, _worker_index
    _worker_seed, _worker_index = seed, index
    _worker_progress(term_id, 0.0, "started")
    result = run_experiment(term_id, seed=seed, device=device, out=out, progress=_worker_progress, config=config)
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
    config: dict[str, Any] | None = None,
    configs: Sequence[dict[str, Any]] | None = None,
) -> list[Result]:
    """Run several experiments, `jobs` at a time in worker processes (in-process when jobs == 1 and
    there is one job, unless `isolate`). A crash of one worker is reported as that job's error and
    the rest go on.

    Without `seeds`, every term runs at `seed` and is saved in `out`; results come back in the order
    of `term_ids`. With `seeds`, every (term, seed) pair is its own job, saved in `seed_dir(out, seed)`
    (see the module docstring); results come back term by term, each term's seeds in the given order,
    and `progress` is called with `pair_label(term, seed)` in place of the term.

    `config` (parameter overrides, as in `run_experiment`) applies to every term; it is validated for
    each term before any job starts, and a non-default run is saved under `custom/` (see
    `dlterms.params`). `configs`, a list of such overrides (a sweep's grid), makes every (term,
    config, seed) its own job: results come back term by term, config by config, seed by seed, and
    `progress` names a job `<term>(<changed values>)@<seed>`."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if config is not None and configs is not None:
        raise ValueError("give config or configs, not both")
    from dlterms import params

    grid = [config] if configs is None else [dict(c) for c in configs]
    if not grid:
        raise ValueError("configs must hold at least one set of parameters, got []")
    built: dict[tuple[str, int], Any] = {}
    for t in term_ids:
        for ci, overrides in enumerate(grid):
            if not overrides:
                continue
            cls = config_class(t)
            if cls is None:
                raise ValueError(f"experiment {t!r} declares no parameters, got {sorted(overrides)}")
            built[t, ci] = params.build_config(cls, overrides, term=t)
    if seeds is not None:
        seeds = list(seeds)
        if not seeds:
            raise ValueError("seeds must name at least one seed, got []")
        for s in seeds:
            seed_dir(out, s)  # validates s
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must not repeat, got {seeds}")
        keys = [(t, s, ci) for t in term_ids for ci in range(len(grid)) for s in seeds]
        folder = {s: seed_dir(out, s) for s in seeds}
    else:
        keys = [(t, seed, ci) for t in term_ids for ci in range(len(grid))]
        folder = {seed: Path(out)}
    labelled = seeds is not None
    device = resolve_device(device)
    for f in folder.values():
        f.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, int, int], Result] = {}

    def label(term: str, s: int, ci: int = 0) -> str:
        name = term
        if configs is not None:
            cfg = built.get((term, ci))
            name = f"{term}({(params.describe(cfg) if cfg is not None else '') or 'defaults'})"
        return pair_label(name, s) if labelled else name

    def done(key: tuple[str, int, int], r: Result) -> None:
        results[key] = r
        if on_result is not None:
            on_result(r)

    def lost_one(key: tuple[str, int, int], message: str) -> None:
        # saved like any result, so an older file of this (term, seed) does not pass for this run's
        r = _crash_result(key[0], key[1], device, message)
        cfg = built.get((key[0], key[2]))
        where = folder[key[1]]
        if cfg is not None:
            r.config, r.default = params.config_dict(cfg), params.is_default(cfg)
            if not r.default:
                where = params.custom_dir(where, key[0], cfg)
        save_result(r, where)
        done(key, r)

    if jobs == 1 and len(keys) == 1 and not isolate:
        (t, s, ci) = keys[0]

        def progress_one(term: str, fraction: float, message: str) -> None:
            if progress is not None:
                progress(label(term, s, ci), fraction, message)

        done(
            keys[0],
            run_experiment(t, seed=s, device=device, out=folder[s], progress=progress_one, config=grid[ci]),
        )
        return [results[k] for k in keys]

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

    started: set[tuple[str, int, int]] = set()

    def pump_item(item) -> None:
        term, s, ci, fraction, message = item
        if message == "started":
            started.add((term, s, ci))
        if progress is not None:
            progress(label(term, s, ci), fraction, message)

    pump_thread = threading.Thread(target=pump, daemon=True)
    pump_thread.start()
    pending = list(keys)
    solo: list[tuple[str, int, int]] = []  # jobs that were running when a worker died: retried one at a time
    malloc_env = _worker_malloc_env()  # read by the workers as they start
    try:
        while pending:
            batch = [solo[0]] if solo else pending
            workers = 1 if solo else min(jobs, len(pending))
            with cf.ProcessPoolExecutor(
                max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(manager_queue,)
            ) as pool:
                futures = {
                    pool.submit(_worker_run, t, s, device, str(folder[s]), grid[ci], ci): (t, s, ci)
                    for (t, s, ci) in batch
                }
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
        _drop_env(malloc_env)
        stop.set()
        pump_thread.join(timeout=1)
    return [results[k] for k in keys]
