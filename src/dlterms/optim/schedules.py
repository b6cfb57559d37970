r"""Learning-rate schedules: step decay, cosine annealing, linear warm-up, and their composition.

Each schedule is a multiplier $f(t)$ of every group's base learning rate $\eta_0$, so
$\eta_t = \eta_0 f(t)$ with $t$ the number of `step()` calls so far (epochs or iterations, as the
caller steps it), as `torch.optim.lr_scheduler` does:

Step decay: $f(t) = \gamma^{\lfloor t / s \rfloor}$ (multiply by $\gamma$ every $s$ steps).

Cosine annealing (Loshchilov & Hutter, 2017, *SGDR*), from $\eta_0$ down to $\eta_{\min}$ over $T$ steps:

$$\eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})\left(1 + \cos\frac{\pi t}{T}\right)$$

Linear warm-up (Goyal et al., 2017): $f(t) = f_0 + (f_1 - f_0)\min(t, T_w)/T_w$, rising from $f_0$ to
$f_1$ over $T_w$ steps, then constant.

`SequentialLR` chains them: schedule $i$ runs from milestone $i-1$ with its own clock restarted at 0,
so warm-up then cosine is `SequentialLR(opt, [LinearLR(...), CosineAnnealingLR(...)], milestones=[T_w])`.
The schedules compute $\eta_t$ in closed form (no drift from repeated multiplication) and work with
any torch optimiser, so `fit(..., scheduler=...)` steps them once per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["LRSchedule", "StepLR", "CosineAnnealingLR", "LinearLR", "SequentialLR", "LambdaLR"]


class LRSchedule:
    """Base class: subclasses define `lr_at(base_lr, t)`; `step()` advances t and sets every group's lr."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            # eta_0 is remembered once, so a second schedule on the same optimiser starts from it too
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, base_lr: float, t: int) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one step (epoch or iteration) and set the new learning rates."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch, self.base_lrs = state["last_epoch"], list(state["base_lrs"])
        self._apply()


class StepLR(LRSchedule):
    """eta_t = eta_0 * gamma ** (t // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        # eta_0 gamma^{floor(t / s)}
        return base_lr * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(LRSchedule):
    """Half a cosine from eta_0 (t = 0) to eta_min (t = T_max); constant at eta_min after T_max."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"T_max must be an integer >= 1, got {T_max!r}")
        if eta_min < 0:
            raise ValueError(f"eta_min must be >= 0, got {eta_min}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        t = min(t, self.T_max)
        # eta_min + (eta_0 - eta_min) (1 + cos(pi t / T)) / 2
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearLR(LRSchedule):
    """Linear change of the multiplier from start_factor to end_factor over total_iters steps (warm-up)."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5):
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor}")
        if not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError(f"total_iters must be an integer >= 1, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        # f(t) = f_0 + (f_1 - f_0) min(t, T_w) / T_w
        f0, f1, tw = self.start_factor, self.end_factor, self.total_iters
        f = f0 + (f1 - f0) * min(t, tw) / tw
        return base_lr * f


class LambdaLR(LRSchedule):
    """eta_t = eta_0 * lr_lambda(t) for any function (e.g. the LR range test's exponential ramp)."""

    def __init__(self, optimizer, lr_lambda):
        if not callable(lr_lambda):
            raise ValueError(f"lr_lambda must be callable, got {type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * self.lr_lambda(t)


class SequentialLR(LRSchedule):
    """Run `schedulers[i]` from `milestones[i-1]` on, each with its own clock restarted at 0."""

    def __init__(self, optimizer, schedulers: Sequence[LRSchedule], milestones: Sequence[int]):
        if len(schedulers) < 1 or len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"need n schedulers and n - 1 milestones, got {len(schedulers)} schedulers and "
                f"{len(milestones)} milestones"
            )
        if any(b <= a for a, b in zip(milestones, milestones[1:])) or any(m < 1 for m in milestones):
            raise ValueError(f"milestones must be increasing positive integers, got {list(milestones)}")
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise ValueError("every scheduler in SequentialLR must act on the same optimizer")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        i = sum(t >= m for m in self.milestones)  # which schedule is active
        start = self.milestones[i - 1] if i > 0 else 0
        return self.schedulers[i].lr_at(base_lr, t - start)
