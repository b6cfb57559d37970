"""Float32 comparisons with a tolerance scaled to the work behind each value (the suite's rule).

Two float32 computations of one quantity (ours and torch's, or the same code on two CPUs whose
kernels block or vectorise a sum differently) round differently. Each operation rounds to within
eps32/2 of its exact result, so an output that took n roundings in a chain or a sum carries an
error that grows like a random walk of n steps, about eps32 * sqrt(n) times the size of the values
involved. A fixed atol such as 1e-4 is therefore too tight for a long sum of large values on some
machine, and needlessly loose for short ones. The rule, for every float32 comparison in tests/:

    atol = C * eps32 * sqrt(n) * scale,    rtol = 0

- n: the number of roundings behind one output value: the length of the longest sum feeding it
  (a dot product's length; for a convolution C_in*kH*kW for the output, N*H_out*W_out for the weight
  gradient), plus the operations of a chain (a layer after a layer adds its own sum length; a formula
  of k elementwise operations adds k). n = 1 for one elementwise operation.
- scale: the size of the values, max |expected| by default; pass a larger one where the output is a
  small difference of larger terms (a mean of centred data, a gradient that sums to ~0).
- C = 8: two implementations each contribute an error (a factor of 2), and the random walk's maximum
  over thousands of elements stays within ~4 standard deviations. Measured across this suite on
  the machine where the old fixed 1e-4 failed, the largest error was 1.5 * eps32 * sqrt(n) * scale
  (a distillation loss at temperature 20), a fifth of the bound; most use under a twentieth.
  Set DLTERMS_TOLERANCE_LOG=<file> to record, for each call, the error in units of eps32*sqrt(n)*scale.

Exact comparisons (atol = rtol = 0) stay exact where the result is exact on any machine: copies,
gathers, max, masks, the same code run twice. float64 comparisons keep their tight tolerances.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import torch

EPS32 = float(torch.finfo(torch.float32).eps)  # 2**-23: the gap between 1 and the next float32
C = 8.0


def _as_double(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _scale(expected: torch.Tensor, scale) -> torch.Tensor | float:
    if scale is None:
        finite = expected[torch.isfinite(expected)]
        return float(finite.abs().max()) if finite.numel() else 0.0
    if isinstance(scale, torch.Tensor | np.ndarray):
        return _as_double(scale)
    return float(scale)


def f32_atol(expected, n: int, scale=None, c: float = C):
    """The absolute tolerance of the rule for a float32 result `expected` built from `n` roundings (a
    tensor when `scale` is one: per-element scales, for elementwise functions over a wide range)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return c * EPS32 * math.sqrt(n) * _scale(_as_double(expected), scale)


def assert_close_f32(actual, expected, *, n: int, scale=None, c: float = C, msg: str | None = None) -> None:
    """Assert that float32 `actual` matches `expected` (float32, or a float64 reference) within the rule's
    atol, rtol 0. Tensors, NumPy arrays and numbers are accepted; shapes must match; infinities and NaNs
    must sit in the same places. `scale` is a number, or a tensor of per-element scales."""
    a, e = _as_double(actual), _as_double(expected)
    if a.shape != e.shape:
        raise AssertionError(f"shapes differ: {tuple(a.shape)} and {tuple(e.shape)}")
    atol = f32_atol(e, n, scale, c)
    if os.environ.get("DLTERMS_TOLERANCE_LOG"):  # calibration: how much of the bound each comparison uses
        _log(a, e, atol / c)
    same = (a == e) | (torch.isnan(a) & torch.isnan(e))
    bad = ~same & ~((a - e).abs() <= atol)  # a NaN or an infinity on one side only is a mismatch too
    if bad.any():
        diff = torch.where(bad, (a - e).abs().nan_to_num(nan=math.inf), torch.zeros_like(a))
        i = int(diff.argmax())
        where = tuple(int(k) for k in np.unravel_index(i, tuple(a.shape))) if a.dim() else ()
        bound = float(atol.reshape(-1)[i] if isinstance(atol, torch.Tensor) and atol.numel() > 1 else atol)
        raise AssertionError(
            (f"{msg}: " if msg else "")
            + f"{int(bad.sum())} of {a.numel()} values differ by more than the float32 rule allows "
            f"(n={n}, C={c}); worst at {where}: {float(a.reshape(-1)[i])!r} vs {float(e.reshape(-1)[i])!r}, "
            f"difference {float(diff.reshape(-1)[i]):.3g} > {bound:.3g}"
        )


def _log(a: torch.Tensor, e: torch.Tensor, unit) -> None:
    frame = sys._getframe(2)
    both = torch.isfinite(a) & torch.isfinite(e)
    unit = torch.as_tensor(unit, dtype=torch.float64).expand_as(a)
    ok = both & (unit > 0)
    used = float(((a - e).abs()[ok] / unit[ok]).max()) if ok.any() else 0.0
    with open(os.environ["DLTERMS_TOLERANCE_LOG"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"at": f"{frame.f_code.co_filename}:{frame.f_lineno}", "used": used}) + "\n")
