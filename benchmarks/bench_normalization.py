"""Our BatchNorm1d/2d and LayerNorm (the equations in a few tensor calls, the closed-form backward written out
in an autograd.Function) against torch's fused kernels, forward and backward in training mode, at the sizes the
experiments use and at 10x."""

from __future__ import annotations

import torch

import dlterms.nn as dnn
from benchmarks._harness import Case

# (name, ours, torch's, constructor argument, input shape, where it is used)
_SIZES = [
    ("BatchNorm1d", dnn.BatchNorm1d, torch.nn.BatchNorm1d, 256, (64, 256), "batch-normalization experiment"),
    ("BatchNorm2d", dnn.BatchNorm2d, torch.nn.BatchNorm2d, 16, (64, 16, 8, 8), "digits CNN"),
    ("LayerNorm", dnn.LayerNorm, torch.nn.LayerNorm, 768, (311, 768), "normalization experiment"),
]

_NOTE = (
    "one Python autograd.Function and separate tensor passes (mean, centre, norm, scale forward; about six "
    "backward), where torch runs one fused loop each way; both write one full-size tensor per direction, so the "
    "gap is per-call cost and shows most at the smallest size"
)


def _case(name, ours_cls, ref_cls, arg, shape, label, scale):
    torch.manual_seed(0)
    ref, ours = ref_cls(arg), ours_cls(arg)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(shape[0] * scale, *shape[1:]) * 2 + 1

    def run(m):
        def go():
            m.zero_grad(set_to_none=True)
            xi = x.clone().requires_grad_()
            (m(xi) * x).sum().backward()

        return go

    def diff():
        with torch.no_grad():
            return (ours(x) - ref(x)).abs().max().item()

    size = f"{tuple(x.shape)}" + (f" ({label})" if scale == 1 else " (10x)")
    return Case(f"{name} fwd+bwd (train)", size, run(ours), run(ref), diff=diff, note=_NOTE)


def cases() -> list[Case]:
    return [_case(*spec, scale=s) for spec in _SIZES for s in (1, 10)]
