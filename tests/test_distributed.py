"""Data-parallel training: two CPU processes launched by torchrun give the weights of one process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms import distributed


def test_two_processes_equal_one(tmp_path):
    torch.set_num_threads(1)
    single, seen_single = distributed.demo_train()
    out = tmp_path / "ddp.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "dlterms.distributed",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(out, weights_only=True)
    parallel, seen = saved["weights"], saved["seen"].tolist()
    # Each process computed gradients on half of every batch, not on all of it.
    assert seen == [seen_single // 2, seen_single // 2]
    assert parallel.keys() == single.keys()
    for k in single:
        # Same updates; only the order of floating-point sums differs (the all-reduce): 42 SGD steps, each a
        # gradient through the 2-32-32-2 MLP and back, summed over a batch of 32
        assert_close_f32(parallel[k], single[k], n=42 * (2 * (2 + 32 + 32) + 32))
    assert any((parallel[k] != 0).any() for k in parallel)


def test_uneven_batches_are_refused(monkeypatch):
    from dlterms import training

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 0)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    with pytest.raises(ValueError, match="batch_size=33 over 100 examples does not split evenly across 2"):
        training._data_parallel_shard(100, 33, False)
    assert training._data_parallel_shard(100, 10, False) == (0, 2)


def test_init_outside_torchrun_is_an_error(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="not launched by torchrun"):
        distributed.init()
