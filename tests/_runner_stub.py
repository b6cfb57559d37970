"""A stand-in for the runner's worker function, for the runner's own tests (not part of the library).

`run_many` sends `dlterms.run._worker_run` to its worker processes. A test replaces it with
`worker_run` below (monkeypatch) and names, in the environment variable DLTERMS_TEST_STUB, which terms
the stand-in handles: "crash=<id>,stub=<id>,...". `crash` kills the worker mid-run (as a segfault or
the OOM killer would); `stub` returns a trivial passing Result after a second, whose metric
`stub_metric` is the seed plus the numeric (not boolean) parameters it was given. Other terms run for
real. The workers are spawned: they import this module by name from `tests/` (on the path through
pytest's `pythonpath` setting) and inherit the environment.
"""

from __future__ import annotations

import inspect
import os
import time

from dlterms import run as runmod

ENV = "DLTERMS_TEST_STUB"


def _roles() -> dict[str, str]:
    spec = os.environ.get(ENV, "")
    return {term: role for role, term in (part.split("=", 1) for part in spec.split(",") if "=" in part)}


def worker_run(term_id: str, *args, **kwargs) -> dict:  # pragma: no cover - runs in a worker process
    role = _roles().get(term_id)
    if role is None:
        return runmod._worker_run(term_id, *args, **kwargs)
    bound = inspect.signature(runmod._worker_run).bind(term_id, *args, **kwargs).arguments
    runmod._worker_seed = bound.get("seed", 0)
    runmod._worker_index = bound.get("index", 0)
    runmod._worker_progress(term_id, 0.0, "started")
    if role == "crash":
        time.sleep(0.5)  # let the "started" message reach the parent
        os.kill(os.getpid(), 9)
    time.sleep(1.0)
    r = runmod._crash_result(term_id, bound.get("seed", 0), bound.get("device", "cpu"), "")
    r.status, r.error, r.checks = "passed", None, [runmod.Check("stub", True)]
    config = bound.get("config") or {}
    # a metric a sweep's test can compute by hand: the seed plus the numeric parameters given
    r.metrics = {
        "stub_metric": float(r.seed)
        + sum(float(v) for v in config.values() if isinstance(v, int | float) and not isinstance(v, bool))
    }
    # what the worker's environment held: the runner's malloc setting (-1: not set)
    r.metrics["malloc_trim_threshold"] = float(os.environ.get("MALLOC_TRIM_THRESHOLD_", -1))
    r.key_metric = "stub_metric"
    r.config, r.default = (dict(config) if config else None), not config
    return r.to_dict()
