"""Activations: our relu and leaky_relu (z times a [z > 0] mask from sign and clamp) against torch's
fused kernels, forward and backward, at a GAN hidden layer's size (128 x 256) and at 10x.

The mask used to be `z > 0` (relu) and `torch.where(z > 0, z, a z)` (leaky_relu); on this CPU build
those bool kernels cost 5-20x an arithmetic pass over the same tensor, which made the activations the
largest cost of the gan experiment. `diff` is the largest difference of the outputs and of the input
gradients (both are bit-identical to torch's).
"""

from __future__ import annotations

import torch

from benchmarks._harness import Case
from dlterms.nn.activations import leaky_relu, relu


def _case(name: str, ours, ref, shape: tuple[int, int], label: str) -> Case:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g).requires_grad_(True)
    up = torch.randn(*shape, generator=g)

    def run(f):
        return lambda: torch.autograd.grad(f(x), x, up)

    def diff() -> float:
        (ga,) = torch.autograd.grad(ours(x), x, up)
        (gb,) = torch.autograd.grad(ref(x), x, up)
        return max((ours(x) - ref(x)).abs().max().item(), (ga - gb).abs().max().item())

    return Case(
        f"{name} fwd+bwd",
        f"{shape[0]}x{shape[1]} ({label})",
        run(ours),
        run(ref),
        diff=diff,
        note=(
            "two arithmetic passes (mask, product) and autograd's generic product backward, "
            "where torch has one fused kernel each way"
        ),
    )


def cases() -> list[Case]:
    out = []
    for shape, label in (((128, 256), "gan hidden layer"), ((1280, 256), "10x")):
        out.append(_case("relu", relu, torch.relu, shape, label))
        out.append(
            _case(
                "leaky_relu",
                lambda z: leaky_relu(z, 0.2),
                lambda z: torch.nn.functional.leaky_relu(z, 0.2),
                shape,
                label,
            )
        )
    return out
