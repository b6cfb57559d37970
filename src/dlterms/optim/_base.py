"""Helpers the optimisers share: hyper-parameter validation and gradient access."""

from __future__ import annotations

import torch

__all__: list[str] = []


def _check_lr(lr) -> None:
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1:
            raise ValueError(f"lr as a tensor must have one element, got shape {tuple(lr.shape)}")
        lr = float(lr)
    if not 0.0 <= lr:
        raise ValueError(f"lr must be >= 0, got {lr}")


def _check_nonneg(name: str, value: float) -> None:
    if not 0.0 <= value:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_unit(name: str, value: float, closed_right: bool = False) -> None:
    ok = 0.0 <= value <= 1.0 if closed_right else 0.0 <= value < 1.0
    if not ok:
        raise ValueError(f"{name} must be in [0, 1{']' if closed_right else ')'}, got {value}")


def _grad(p: torch.Tensor, maximize: bool, who: str) -> torch.Tensor:
    """The gradient of `p` (negated when maximising), rejecting sparse gradients."""
    g = p.grad
    if g.is_sparse:
        raise RuntimeError(f"{who} does not support sparse gradients; convert them with .to_dense() first")
    return -g if maximize else g
