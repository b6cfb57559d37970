"""One torch thread for the paradigms tests, as the experiment runner uses (the tests train small
models, for which a second thread only adds contention)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
