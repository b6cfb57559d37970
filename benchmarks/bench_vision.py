"""Our im2col convolution and window pooling against torch's native kernels, forward + backward, at the
sizes the vision experiments use (digits CNN, MNIST-1D CNN, the STN's 24x24 canvas) and at 10x the batch;
and our bilinear grid_sample against torch's."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import dlterms.nn as dnn
from benchmarks._harness import Case
from dlterms.nn.spatial_transformer import affine_grid, grid_sample

_CONV_NOTE = (
    "im2col copies every window (k*k times the input) into a cache-sized buffer, a batch chunk at a time, "
    "and three matmuls per step (forward, weight and input gradients) do the arithmetic; with 16 or 32 "
    "output channels these are narrow products that BLAS runs at about 100 GFLOP/s on one core (measured "
    "for the digits block); col2im is one strided add per kernel offset; torch's oneDNN kernel convolves "
    "in place, without the copy"
)
_POOL_NOTE = (
    "the windows are gathered by the same im2col copy and reduced with max/sum; torch's pooling "
    "kernel reads each window in place"
)

# (name, ours, torch's, constructor kwargs, input shape, where it is used)
_LAYERS = [
    (
        "Conv2d 3x3",
        dnn.Conv2d,
        torch.nn.Conv2d,
        dict(in_channels=16, out_channels=32, kernel_size=3, padding=1),
        (64, 16, 8, 8),
        "digits CNN block 2",
    ),
    (
        "Conv2d 3x3",
        dnn.Conv2d,
        torch.nn.Conv2d,
        dict(in_channels=1, out_channels=16, kernel_size=3, padding=1),
        (128, 1, 24, 24),
        "STN experiment block 1",
    ),
    (
        "Conv1d k=3",
        dnn.Conv1d,
        torch.nn.Conv1d,
        dict(in_channels=32, out_channels=32, kernel_size=3, padding=1),
        (100, 32, 20),
        "MNIST-1D CNN block 2",
    ),
    (
        "Conv1d k=3 d=8",
        dnn.Conv1d,
        torch.nn.Conv1d,
        dict(in_channels=16, out_channels=16, kernel_size=3, padding=8, dilation=8),
        (100, 16, 64),
        "dilated stack layer 4",
    ),
    ("MaxPool2d 2", dnn.MaxPool2d, torch.nn.MaxPool2d, dict(kernel_size=2), (64, 16, 8, 8), "digits CNN"),
    ("AvgPool2d 2", dnn.AvgPool2d, torch.nn.AvgPool2d, dict(kernel_size=2), (64, 16, 8, 8), "pooling-layer"),
    ("MaxPool1d 2", dnn.MaxPool1d, torch.nn.MaxPool1d, dict(kernel_size=2), (100, 32, 40), "MNIST-1D CNN"),
]


def _layer_case(name, ours_cls, ref_cls, kwargs, shape, label, scale) -> Case:
    torch.manual_seed(0)
    ref, ours = ref_cls(**kwargs), ours_cls(**kwargs)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(shape[0] * scale, *shape[1:])

    def run(m):
        def go():
            xi = x.clone().requires_grad_(True)
            m(xi).square().sum().backward()

        return go

    size = f"{tuple(x.shape)} ({label})" if scale == 1 else f"{tuple(x.shape)} (10x)"
    return Case(
        f"{name} fwd+bwd",
        size,
        run(ours),
        run(ref),
        diff=lambda: (ours(x) - ref(x)).abs().max().item(),
        note=_CONV_NOTE if name.startswith("Conv") else _POOL_NOTE,
    )


def _sampler_case(scale) -> Case:
    torch.manual_seed(0)
    b = 128 * scale
    x = torch.randn(b, 1, 24, 24)
    theta = torch.eye(2, 3).expand(b, 2, 3) + 0.2 * torch.randn(b, 2, 3)

    def ours():
        t = theta.clone().requires_grad_(True)
        grid_sample(x, affine_grid(t, x.shape)).sum().backward()

    def ref():
        t = theta.clone().requires_grad_(True)
        F.grid_sample(x, F.affine_grid(t, list(x.shape), align_corners=False), align_corners=False).sum().backward()

    def diff():
        return (
            (
                grid_sample(x, affine_grid(theta, x.shape))
                - F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
            )
            .abs()
            .max()
            .item()
        )

    return Case(
        "affine_grid + grid_sample fwd+bwd",
        f"{tuple(x.shape)} ({'STN experiment' if scale == 1 else '10x'})",
        ours,
        ref,
        diff=diff,
        note="four gathers and weighted sums, each a full-size intermediate, where "
        "torch has one bilinear kernel forward and one backward",
    )


def cases() -> list[Case]:
    out = [_layer_case(*spec, scale) for spec in _LAYERS for scale in (1, 10)]
    out += [_sampler_case(scale) for scale in (1, 10)]
    return out
