"""Shared fixtures.

`suite_results` runs every registered experiment once per test session (two at a time, as
`dlterms run --all --jobs 2` does) into a temporary folder; the experiment tests and the website
tests read from it. Set DLTERMS_TEST_JOBS to change the number of worker processes, or
DLTERMS_TEST_RESULTS to a folder of saved results to reuse them instead of running (for quick
iteration on the website tests; `make test` never sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so CI cannot fail on a draw no one has seen.
# New counter-examples are found by running with HYPOTHESIS_PROFILE=explore.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
        run_many(ids, jobs=int(os.environ.get("DLTERMS_TEST_JOBS", "2")), out=out)
    return out
