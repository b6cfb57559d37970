r"""Gradient clipping, by global norm and by value.

By norm (Pascanu, Mikolov & Bengio, 2013, *On the difficulty of training recurrent neural
networks*): with $g$ all gradients concatenated into one vector and threshold $c$,

$$g \leftarrow g \cdot \min\!\left(1, \frac{c}{\lVert g \rVert + \epsilon}\right)$$

which keeps the direction of $g$ and caps its length. By value: every component is clamped,
$g_i \leftarrow \min(\max(g_i, -c), c)$, which can change the direction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _check_foreach(foreach) -> None:
    # torch's choice between a per-tensor loop and multi-tensor kernels, which compute the same values;
    # here it is always the loop
    if foreach is not None and not isinstance(foreach, bool):
        raise ValueError(f"foreach must be None, False or True, got foreach={foreach!r}")


def clip_grad_norm_(
    parameters: Iterable[torch.Tensor] | torch.Tensor,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
    *,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Scale all gradients together so their global `norm_type`-norm is at most `max_norm`.

    Arguments as torch.nn.utils.clip_grad_norm_'s: `norm_type` may be a number > 0, `inf`, or a string
    that `float()` reads ('inf', '2'); `foreach` is accepted and changes nothing (the result is the same).
    Returns the total norm before clipping (as torch does).
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    try:
        norm_type = float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(f"norm_type must be a number > 0 or inf, got {norm_type!r}") from None
    if not (norm_type == math.inf or norm_type > 0):
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    _check_foreach(foreach)
    grads = _grads(parameters)
    if not grads:
        return torch.tensor(0.0)
    # ||g|| over every parameter's gradient at once: the norm of the per-tensor norms
    dev = grads[0].device
    per_tensor = torch.stack([torch.linalg.vector_norm(g.detach(), norm_type).to(dev) for g in grads])
    total = torch.linalg.vector_norm(per_tensor, norm_type)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError(
            f"the total gradient norm is {total.item()}; pass error_if_nonfinite=False to "
            "clip anyway, or find where the loss became non-finite"
        )
    # min(1, c / (||g|| + eps))
    coef = torch.clamp(max_norm / (total + eps), max=1.0)
    for g in grads:
        g.detach().mul_(coef.to(g.device, g.dtype))
    return total


def clip_grad_value_(
    parameters: Iterable[torch.Tensor] | torch.Tensor, clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient component to [-clip_value, clip_value] in place (`foreach` as in clip_grad_norm_)."""
    if not clip_value > 0:
        raise ValueError(f"clip_value must be > 0, got {clip_value}")
    _check_foreach(foreach)
    for g in _grads(parameters):
        # g_i <- min(max(g_i, -c), c)
        g.detach().clamp_(-clip_value, clip_value)
