r"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and weight decay.

Robbins & Monro (1951) for the stochastic step; Polyak (1964) for momentum ("heavy ball");
Sutskever et al. (2013), *On the importance of initialization and momentum in deep learning*,
for the Nesterov form used here (the same form as `torch.optim.SGD`).

With $g_t = \nabla_\theta L(\theta_{t-1})$ on the current mini-batch, learning rate $\eta$,
momentum $\mu$, dampening $\tau$ and weight decay $\lambda$:

$$g_t \leftarrow g_t + \lambda \theta_{t-1}$$

$$b_t = \mu b_{t-1} + (1 - \tau) g_t \qquad (b_1 = g_1)$$

$$d_t = \begin{cases} g_t + \mu b_t & \text{Nesterov} \\ b_t & \text{otherwise} \end{cases}$$

$$\theta_t = \theta_{t-1} - \eta d_t$$

With $\mu = 0$ it is plain (stochastic) gradient descent, $\theta_t = \theta_{t-1} - \eta g_t$. Whether the
step is full-batch, mini-batch or stochastic is decided by how many examples the loss that
produced $g_t$ averaged over, not by the optimiser.
"""

from __future__ import annotations

import torch

from dlterms.optim._base import _check_lr, _check_nonneg, _grad, _step_grad_mode, _torch_flags

__all__ = ["SGD"]


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    Args:
        params: parameters or parameter groups (dicts), as for any torch optimiser.
        lr: learning rate $\\eta$.
        momentum: momentum factor $\\mu$ (0 disables it).
        dampening: $\\tau$, how much of the new gradient is damped when added to the buffer.
        weight_decay: L2 penalty $\\lambda$ added to the gradient.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend instead of descend.
        foreach, differentiable, fused: torch's implementation switches; see `dlterms.optim._base._torch_flags`
            (fused=True raises a ValueError, differentiable=True records the step for autograd).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        _check_lr(lr)
        _check_nonneg("momentum", momentum)
        _check_nonneg("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening = 0, got momentum={momentum}, dampening={dampening}"
            )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            **_torch_flags("SGD", foreach=foreach, fused=fused, differentiable=differentiable),
        )
        super().__init__(params, defaults)

    @_step_grad_mode
    def step(self, closure=None):
        """One update of every parameter that has a gradient. Returns the closure's loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, tau = group["lr"], group["momentum"], group["dampening"]
            lam, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _grad(p, group["maximize"], "SGD")
                # g_t <- g_t + lambda theta_{t-1}
                if lam != 0:
                    g = g.add(p, alpha=lam)
                if mu != 0:
                    state = self.state[p]
                    b = state.get("momentum_buffer")
                    if b is None:
                        # b_1 = g_1
                        b = state["momentum_buffer"] = g.detach().clone()
                    else:
                        # b_t = mu b_{t-1} + (1 - tau) g_t
                        b.mul_(mu).add_(g, alpha=1 - tau)
                    # d_t = g_t + mu b_t (Nesterov) or b_t
                    g = g.add(b, alpha=mu) if nesterov else b
                # theta_t = theta_{t-1} - eta d_t
                p.add_(g, alpha=-lr)
        return loss
