"""Shared fixtures.

`suite_results` runs every registered experiment once per test session at each of the seeds in
`CI_SEEDS` (0 and 1), every (term, seed) pair its own job, two at a time (as `dlterms run --all
--seeds 0-1 --jobs 2` does), into a temporary folder: seed 0 at `<folder>/<id>.json`, seed 1 at
`<folder>/seeds/1/<id>.json` (`dlterms.run.seed_dir`). The experiment tests read each pair; the website
tests build from the folder (the seed-0 results, with robustness over both seeds). Set
DLTERMS_TEST_JOBS to change the number of worker processes, or DLTERMS_TEST_RESULTS to a folder of
saved results (in the same layout) to reuse them instead of running (for quick iteration on the
website tests; `make test` never sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

CI_SEEDS = (0, 1)  # every experiment must pass every check at each of these seeds

# Property tests draw the same examples on every run, so CI cannot fail on a draw no one has seen.
# New counter-examples are found by running with HYPOTHESIS_PROFILE=explore.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_generate_tests(metafunc) -> None:
    """A test that takes `ci_seed` runs once per seed of CI_SEEDS."""
    if "ci_seed" in metafunc.fixturenames:
        metafunc.parametrize("ci_seed", CI_SEEDS)


@pytest.fixture
def float64():
    """float64 as torch's default dtype for one test (reference comparisons), restored after."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(scope="session")
def ci_seeds() -> tuple[int, ...]:
    return CI_SEEDS


def pytest_configure(config) -> None:
    """One torch thread, as experiments run: faster on a shared 2-core machine, and reproducible."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def suite_results(tmp_path_factory) -> Path:
    from dlterms.run import registered_ids, run_many

    reuse = os.environ.get("DLTERMS_TEST_RESULTS")
    if reuse:
        return Path(reuse)
    out = tmp_path_factory.mktemp("results")
    ids = registered_ids()
    if ids:
        run_many(ids, jobs=int(os.environ.get("DLTERMS_TEST_JOBS", "2")), seeds=CI_SEEDS, out=out)
    return out
