r"""Checking gradients: central finite differences.

For a scalar function $f$ and each entry $\theta_i$ of a parameter,
$$\frac{\partial f}{\partial \theta_i} \approx \frac{f(\theta + h e_i) - f(\theta - h e_i)}{2h},$$
with truncation error $O(h^2)$ (the one-sided difference has $O(h)$). In float64 with $h \approx 10^{-6}$
both truncation and rounding errors stay near $10^{-10}$ relative, so a correct backward pass agrees to
far better than $10^{-6}$.

The relative error between two gradients is
$$\mathrm{rel}(a, b) = \frac{\lVert a - b \rVert}{\max(\lVert a \rVert, \lVert b \rVert, \epsilon)}.$$
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dlterms.autograd.tensor import Tensor, no_grad

__all__ = ["numerical_gradient", "relative_error"]


def numerical_gradient(f: Callable[[], Tensor], params: Sequence[Tensor], h: float = 1e-6) -> list[np.ndarray]:
    """Central-difference estimates of d f() / d p for each p in `params` (moved in place, then restored)."""
    if not h > 0:
        raise ValueError(f"h must be > 0, got {h}")
    grads = []
    with no_grad():
        for p in params:
            g = np.zeros_like(p.data)
            flat, gflat = p.data.reshape(-1), g.reshape(-1)  # views into p.data and g
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + h
                f_plus = f().item()
                flat[i] = old - h
                f_minus = f().item()
                flat[i] = old
                gflat[i] = (f_plus - f_minus) / (2 * h)  # (f(x + h) - f(x - h)) / 2h
            grads.append(g)
    return grads


def relative_error(a: np.ndarray, b: np.ndarray, eps: float = 1e-300) -> float:
    """||a - b|| / max(||a||, ||b||): 0 for equal arrays, scale-free otherwise."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), eps))
