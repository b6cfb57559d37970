"""Helpers the optimisers share: hyper-parameter validation and gradient access."""

from __future__ import annotations

import functools

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


def _torch_flags(who: str, **flags) -> dict[str, object]:
    """torch.optim's implementation switches, checked: the ones we can honour are returned (to go into
    `defaults`, so that state dicts carry them as torch's do), the others raise a ValueError naming the
    argument. Each optimiser passes the switches its torch counterpart has.

    - foreach (None, False, True): in torch a choice between a per-parameter loop and multi-tensor kernels
      that compute the same update. Adam and AdamW honour it (False: the per-parameter loop; None or True:
      one `torch._foreach_*` call per operation for all parameters, tested equal to the loop to the bit);
      the other optimisers always run the per-parameter loop. The update, hence the result, is the same
      (tested against torch with foreach=True), so every value is accepted.
    - fused=True: torch's single fused kernel. Not available here (None and False are accepted).
    - capturable=True: keeps the step count on the device for CUDA-graph capture. Not available here.
    - differentiable=True: the step is recorded by autograd, so a loss after the step can be
      differentiated through it (with respect to the gradients, the starting weights, the state).
    """
    for name in ("foreach", "fused"):
        value = flags.get(name)
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"{name} must be None, False or True, got {name}={value!r}")
    for name in ("capturable", "differentiable"):
        value = flags.get(name, False)
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be False or True, got {name}={value!r}")
    if flags.get("fused"):
        raise ValueError(
            f"fused=True is not supported by dlterms.optim.{who}: there is no fused kernel here; "
            "pass fused=None or False (the per-parameter update computes the same result)"
        )
    if flags.get("capturable"):
        raise ValueError(
            f"capturable=True is not supported by dlterms.optim.{who}: the step count is a Python number, "
            "not a device tensor, so the step cannot be captured in a CUDA graph; pass capturable=False"
        )
    return flags


def _step_grad_mode(step):
    """Decorate `step`: run it without recording autograd (torch.no_grad()), unless the optimiser was built
    with differentiable=True, as torch.optim does."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            return step(self, *args, **kwargs)

    return wrapper
