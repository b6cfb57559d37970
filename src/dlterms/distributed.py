"""Data-parallel training on PyTorch's own engine: `torch.distributed` + DistributedDataParallel.

Launch with torchrun, which starts one process per worker and sets RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT:

    torchrun --standalone --nproc_per_node 2 my_script.py

and in the script:

    from dlterms import distributed
    from dlterms.training import Callback, fit

    class CountExamples(Callback):
        seen = 0

        def on_batch_end(self, state) -> None:
            self.seen += len(state.batch_index)
    rank, world = distributed.init()              # gloo on CPU, nccl on GPU
    model = distributed.wrap(model)               # DistributedDataParallel
    fit(model, (x, y), batch_size=64, ...)        # each process takes its slice of each batch of 64
    distributed.shutdown()

Every process holds the whole dataset and draws the same seeded batches; `fit` keeps the
process's slice (`idx[rank::world]`) and DDP averages the gradients, which equals the gradient of
the mean loss over the global batch. So training with the same global batch size gives the same
weights as one process, up to floating-point summation order.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

__all__ = ["init", "wrap", "shutdown", "is_launched", "demo_train"]


def is_launched() -> bool:
    """True when this process was started by torchrun (or anything that sets WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init(backend: str | None = None) -> tuple[int, int]:
    """Join the process group that torchrun described; returns (rank, world size).

    backend: "gloo" (CPU) or "nccl" (GPU); by default nccl when CUDA is available, else gloo.
    """
    if not is_launched():
        raise RuntimeError("not launched by torchrun: RANK and WORLD_SIZE are not set")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist.get_rank(), dist.get_world_size()


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """Wrap `model` in DistributedDataParallel (on this process's GPU when using nccl)."""
    from torch.nn.parallel import DistributedDataParallel

    if not dist.is_initialized():
        raise RuntimeError("call distributed.init() before wrap()")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
        return DistributedDataParallel(model.to(device), device_ids=[device.index])
    return DistributedDataParallel(model)


def shutdown() -> None:
    """Leave the process group once every process has got here (none tears it down early)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def demo_train(seed: int = 0, epochs: int = 3, batch_size: int = 32) -> tuple[dict[str, torch.Tensor], int]:
    """A small MLP trained on two moons with `fit`; in a torchrun launch, data parallel.

    Returns the trained weights (of the unwrapped model) and how many examples this process
    computed gradients on. Used by the test that checks a two-process run gives the same weights
    as one process while each process does half the work.
    """
    from dlterms.data.datasets import moons
    from dlterms.losses import cross_entropy
    from dlterms.nn import MLP
    from dlterms.optim import SGD
    from dlterms.training import Callback, fit

    class CountExamples(Callback):
        seen = 0

        def on_batch_end(self, state) -> None:
            self.seen += len(state.batch_index)

    torch.manual_seed(seed)
    data = moons(n=640, seed=seed)  # 448 training examples: 14 batches of 32
    model = MLP([2, 32, 32, 2])
    net = wrap(model) if dist.is_initialized() else model
    opt = SGD(net.parameters(), lr=0.1, momentum=0.9)
    counter = CountExamples()
    fit(
        net,
        (data.x_train, data.y_train),
        loss_fn=cross_entropy,
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        callbacks=[counter],
    )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, counter.seen


def _main(argv: list[str]) -> int:  # pragma: no cover - runs under torchrun in the test
    """`torchrun --nproc_per_node N -m dlterms.distributed OUT.pt`: demo_train, rank 0 saves weights."""
    torch.set_num_threads(1)
    init("gloo")
    weights, seen = demo_train()
    counts = [None] * dist.get_world_size()
    dist.all_gather_object(counts, seen)
    if dist.get_rank() == 0:
        torch.save({"weights": weights, "seen": torch.tensor(counts)}, argv[0])
    shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover
    code = _main(sys.argv[1:])
    # Leave without the interpreter's teardown: on a loaded machine a gloo worker process sometimes
    # aborted there ("terminate called without an active exception", SIGABRT) after its work was
    # saved and the process group destroyed (2 of 10 runs with 4 busy processes beside it).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
