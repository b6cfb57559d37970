r"""Gradient clipping, by global L2 norm and by value.

By norm (Pascanu et al., 2013): with $g$ all gradients concatenated,

$$g \leftarrow g \cdot \min\!\left(1, \frac{\text{max\_norm}}{\lVert g \rVert_2 + \epsilon}\right)$$

By value: every component is clamped to $[-c, c]$.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[torch.Tensor] | torch.Tensor, max_norm: float,
                    eps: float = 1e-6) -> torch.Tensor:
    """Scale all gradients together so their global L2 norm is at most `max_norm`.

    Returns the norm before clipping (as torch.nn.utils.clip_grad_norm_ does).
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    grads = _grads(parameters)
    if not grads:
        return torch.tensor(0.0)
    # ||g||_2 over every parameter's gradient at once
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads]))
    coef = torch.clamp(max_norm / (total + eps), max=1.0)
    for g in grads:
        g.detach().mul_(coef.to(g.device))
    return total


def clip_grad_value_(parameters: Iterable[torch.Tensor] | torch.Tensor, clip_value: float) -> None:
    """Clamp every gradient component to [-clip_value, clip_value] in place."""
    if not clip_value > 0:
        raise ValueError(f"clip_value must be > 0, got {clip_value}")
    for g in _grads(parameters):
        g.detach().clamp_(-clip_value, clip_value)
