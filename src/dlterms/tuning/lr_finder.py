r"""The learning-rate range test: one short run with the learning rate growing exponentially.

Smith (2017), *Cyclical Learning Rates for Training Neural Networks*, section 3.3; the exponential
ramp and the smoothed loss are those popularised by fastai. Over $n$ mini-batch steps the learning
rate grows geometrically from $\eta_{\text{start}}$ to $\eta_{\text{end}}$,

$$\eta_i = \eta_{\text{start}} \left(\frac{\eta_{\text{end}}}{\eta_{\text{start}}}\right)^{i/(n-1)}$$

and the loss is smoothed by a bias-corrected exponential moving average,
$a_i = \beta a_{i-1} + (1 - \beta)\ell_i$, $\bar\ell_i = a_i / (1 - \beta^{i+1})$.
The test stops once $\bar\ell_i$ exceeds `diverge_threshold` times its minimum (or the loss turns
non-finite). The suggested learning rate is where the smoothed loss falls fastest against
$\log\eta$ (steepest negative slope, before its minimum): large enough to learn quickly, still below the point where
it diverges. The model's weights and the optimiser's state are put back afterwards.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

__all__ = ["LRFinderResult", "lr_range_test"]


@dataclass
class LRFinderResult:
    """The learning rates tried, the raw and smoothed losses, the suggestion and why the test stopped."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None
    stop_reason: str = ""


def lr_range_test(
    model: torch.nn.Module,
    train,
    *,
    loss_fn,
    optimizer: torch.optim.Optimizer,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    num_iter: int = 100,
    batch_size: int | None = 32,
    beta: float = 0.9,
    diverge_threshold: float = 4.0,
    seed: int = 0,
) -> LRFinderResult:
    """Run the LR range test on `train` = (x, y) with `dlterms.training.fit`; restore the model after."""
    from dlterms.training import Callback, fit

    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if not isinstance(num_iter, int) or num_iter < 2:
        raise ValueError(f"num_iter must be an integer >= 2, got {num_iter!r}")
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    if not diverge_threshold > 1:
        raise ValueError(f"diverge_threshold must be > 1, got {diverge_threshold}")
    result = LRFinderResult()
    ratio = end_lr / start_lr

    def lr_of(i: int) -> float:
        # eta_i = eta_start (eta_end / eta_start)^{i / (n - 1)}
        return start_lr * ratio ** (i / (num_iter - 1))

    def set_lr(lr: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr

    class _Ramp(Callback):
        avg, best = 0.0, math.inf

        def on_train_begin(self, state) -> None:
            set_lr(lr_of(0))

        def on_batch_end(self, state) -> None:
            i = state.step - 1  # the step that just ran used lr_of(i)
            loss = state.batch_loss
            # a_i = beta a_{i-1} + (1 - beta) l_i ;  smoothed = a_i / (1 - beta^{i+1})
            self.avg = beta * self.avg + (1 - beta) * loss
            smooth = self.avg / (1 - beta ** (i + 1))
            result.lrs.append(lr_of(i))
            result.losses.append(loss)
            result.smoothed.append(smooth)
            self.best = min(self.best, smooth)
            if smooth > diverge_threshold * self.best:
                state.stop, state.stop_reason = True, "diverged"
            else:
                set_lr(lr_of(i + 1))

    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(optimizer.state_dict())
    n = len(train[-1]) if isinstance(train, tuple | list) else len(train)
    per_epoch = 1 if batch_size is None else math.ceil(n / batch_size)
    try:
        hist = fit(
            model,
            train,
            loss_fn=loss_fn,
            optimizer=optimizer,
            epochs=math.ceil(num_iter / per_epoch),
            batch_size=batch_size,
            seed=seed,
            max_steps=num_iter,
            callbacks=[_Ramp()],
        )
        result.stop_reason = hist.stop_reason
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
    result.suggestion = _steepest(result.lrs, result.smoothed)
    return result


def _steepest(lrs: list[float], smoothed: list[float]) -> float | None:
    """The learning rate where d(smoothed loss)/d(log lr) is most negative, searched only up to the
    smoothed loss's minimum (past it the loss is already blowing up and its slope means nothing)."""
    end = int(torch.tensor(smoothed).argmin()) + 1 if smoothed else 0
    if end < 3:
        return None
    x = torch.log(torch.tensor(lrs[:end], dtype=torch.float64))
    y = torch.tensor(smoothed[:end], dtype=torch.float64)
    slope = (y[2:] - y[:-2]) / (x[2:] - x[:-2])  # central differences, one per interior point
    return lrs[int(slope.argmin()) + 1]
