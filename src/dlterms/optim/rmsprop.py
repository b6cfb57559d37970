r"""RMSprop: divide each coordinate's step by a running root-mean-square of its gradients.

Tieleman & Hinton (2012), *Lecture 6.5, Neural Networks for Machine Learning* (Coursera); the
centred variant and momentum follow Graves (2013), *Generating Sequences with Recurrent Neural
Networks*. The equations are those of `torch.optim.RMSprop` (note $\epsilon$ is added *outside*
the square root).

With gradient $g_t$, smoothing constant $\alpha$, learning rate $\eta$, momentum $\mu$ and weight
decay $\lambda$:

$$g_t \leftarrow g_t + \lambda \theta_{t-1}$$

$$v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2$$

centred: $\bar g_t = \alpha \bar g_{t-1} + (1 - \alpha) g_t$ and $\tilde v_t = v_t - \bar g_t^2$;
otherwise $\tilde v_t = v_t$

$$b_t = \mu b_{t-1} + \frac{g_t}{\sqrt{\tilde v_t} + \epsilon}, \qquad \theta_t = \theta_{t-1} - \eta b_t$$

(with $\mu = 0$: $\theta_t = \theta_{t-1} - \eta\, g_t / (\sqrt{\tilde v_t} + \epsilon)$).
"""

from __future__ import annotations

import torch

from dlterms.optim._base import _check_lr, _check_nonneg, _grad, _step_grad_mode, _torch_flags

__all__ = ["RMSprop"]


class RMSprop(torch.optim.Optimizer):
    """RMSprop with torch's arguments, in torch's order: lr, alpha, eps, weight_decay, momentum, centered,
    capturable, foreach, maximize, differentiable (see `dlterms.optim._base._torch_flags`: capturable=True
    raises a ValueError)."""

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        _check_lr(lr)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        _check_nonneg("eps", eps)
        _check_nonneg("weight_decay", weight_decay)
        _check_nonneg("momentum", momentum)
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
            **_torch_flags("RMSprop", foreach=foreach, capturable=capturable, differentiable=differentiable),
        )
        super().__init__(params, defaults)

    @_step_grad_mode
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            lam, mu = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _grad(p, group["maximize"], "RMSprop")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = torch.zeros_like(p)
                    if mu > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(p)
                state["step"] += 1
                # g_t <- g_t + lambda theta_{t-1}
                if lam != 0:
                    g = g.add(p, alpha=lam)
                v = state["square_avg"]
                # v_t = alpha v_{t-1} + (1 - alpha) g_t^2
                v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
                if group["centered"]:
                    gbar = state["grad_avg"]
                    # gbar_t = alpha gbar_{t-1} + (1 - alpha) g_t
                    gbar.mul_(alpha).add_(g, alpha=1 - alpha)
                    # sqrt(v_t - gbar_t^2) + eps   (+ eps out of place: sqrt's backward keeps its output)
                    denom = v.addcmul(gbar, gbar, value=-1).sqrt_().add(eps)
                else:
                    # sqrt(v_t) + eps
                    denom = v.sqrt().add(eps)
                if mu > 0:
                    b = state["momentum_buffer"]
                    # b_t = mu b_{t-1} + g_t / (sqrt(v~_t) + eps);  theta_t = theta_{t-1} - eta b_t
                    b.mul_(mu).addcdiv_(g, denom)
                    p.add_(b, alpha=-lr)
                else:
                    # theta_t = theta_{t-1} - eta g_t / (sqrt(v~_t) + eps)
                    p.addcdiv_(g, denom, value=-lr)
        return loss
