r"""Adversarial examples: FGSM, PGD, and adversarial training.

An adversarial example is an input $x' = x + \delta$ with an imperceptibly small perturbation,
here bounded in the $L_\infty$ norm, $\|\delta\|_\infty \le \epsilon$, that changes a classifier's
output (Szegedy et al., 2014, "Intriguing properties of neural networks").

Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, 2015, "Explaining and Harnessing
Adversarial Examples"): one step up the loss $\mathcal{L}(f(x), y)$, using only the gradient's sign,

$$x' = \mathrm{clip}_{[0, 1]}\big(x + \epsilon\, \mathrm{sign}(\nabla_x \mathcal{L}(f(x), y))\big).$$

Projected Gradient Descent (Madry et al., 2018, "Towards Deep Learning Models Resistant to
Adversarial Attacks"): from a random start in the $\epsilon$-ball, repeat a signed step of size
$\alpha$ and project back onto the ball (and the valid pixel range),

$$x^{t+1} = \Pi_{\|x' - x\|_\infty \le \epsilon}\Big(x^t + \alpha\,
    \mathrm{sign}\big(\nabla_x \mathcal{L}(f(x^t), y)\big)\Big).$$

Adversarial training (Madry et al.) minimises the loss on the worst case found by the attack,
$\min_\theta \mathbb{E}\,\max_{\|\delta\|_\infty \le \epsilon} \mathcal{L}(f_\theta(x + \delta), y)$;
`adversarial_forward` plugs the inner maximisation into `dlterms.training.fit`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlterms.losses import cross_entropy

__all__ = ["fgsm", "pgd", "adversarial_forward", "robust_accuracy"]


def _check(eps: float, clip: tuple[float, float] | None) -> None:
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if clip is not None and not clip[0] < clip[1]:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip}")


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(loss_fn(model(x), y), x)  # nabla_x L(f(x), y)
    return g


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    loss_fn: Callable = cross_entropy,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """x' = clip(x + eps * sign(grad_x L(f(x), y))). The model's mode (train/eval) is left as it is."""
    _check(eps, clip)
    x_adv = x + eps * _input_grad(model, x, y, loss_fn).sign()
    return (x_adv.clamp(*clip) if clip is not None else x_adv).detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float | None = None,
    steps: int = 10,
    random_start: bool = True,
    loss_fn: Callable = cross_entropy,
    clip: tuple[float, float] | None = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`steps` signed-gradient steps of size `alpha` (default 2.5 eps / steps), each projected onto the
    L-infinity ball of radius eps around x and onto the `clip` range."""
    _check(eps, clip)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    alpha = 2.5 * eps / steps if alpha is None else alpha
    if not alpha > 0 and eps > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    x = x.detach()
    x_adv = x
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)  # U[0, 1)
        x_adv = x + eps * (2 * noise - 1)  # uniform in the eps-ball
    for _ in range(steps):
        x_adv = x_adv + alpha * _input_grad(model, x_adv, y, loss_fn).sign()  # ascend the loss
        x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)  # Pi: back into the eps-ball
        if clip is not None:
            x_adv = x_adv.clamp(*clip)
    return x_adv.detach()


def adversarial_forward(attack: Callable[..., torch.Tensor], **attack_kwargs) -> Callable:
    """A `forward` for `fit` that trains on attacked inputs: call
    `fit(model, (x, y, y), forward=adversarial_forward(pgd, eps=0.1, steps=3), ...)`
    (the labels are passed twice: once as an input the attack needs, once as the target)."""

    def forward(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_adv = attack(model, x, y, **attack_kwargs)  # max_delta L(f(x + delta), y)
        return model(x_adv)  # then min_theta: fit back-propagates the loss on f(x_adv)

    return forward


def robust_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Callable, batch_size: int = 512, **attack_kwargs
) -> float:
    """Accuracy on `attack(model, x, y, **attack_kwargs)`, in eval mode and in batches."""
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            x_adv = attack(model, xb, yb, **attack_kwargs)
            with torch.no_grad():
                correct += (model(x_adv).argmax(1) == yb).sum().item()
    finally:
        model.train(was_training)
    return correct / len(x)
