r"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay.

Kingma & Ba (2015), *Adam: A Method for Stochastic Optimization*; AMSGrad from Reddi et al. (2018),
*On the Convergence of Adam and Beyond*; AdamW from Loshchilov & Hutter (2019), *Decoupled Weight
Decay Regularization*. The equations are those of `torch.optim.Adam`/`AdamW`.

With gradient $g_t$, learning rate $\eta$, decay rates $\beta_1, \beta_2$ and weight decay $\lambda$:

Adam (L2 penalty folded into the gradient): $g_t \leftarrow g_t + \lambda \theta_{t-1}$

AdamW (decoupled, shrinks the weights directly): $\theta_{t-1} \leftarrow \theta_{t-1}(1 - \eta\lambda)$

$$m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t$$

$$v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2$$

$$\hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad \hat v_t = \frac{v_t}{1 - \beta_2^t}
\qquad (\text{AMSGrad: } v_t \leftarrow \max(v_{t-1}^{\max}, v_t))$$

$$\theta_t = \theta_{t-1} - \eta \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}$$

The difference matters: under Adam the penalty's gradient is divided by $\sqrt{\hat v_t}$ like any
other, so heavily-updated weights are barely regularised; AdamW's decay is the same for all weights.
"""

from __future__ import annotations

import math

import torch

from dlterms.optim._base import _check_lr, _check_nonneg, _check_unit, _grad

__all__ = ["Adam", "AdamW"]


class Adam(torch.optim.Optimizer):
    """Adam with torch's arguments: lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        _check_lr(lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas}")
        _check_unit("betas[0]", betas[0])
        _check_unit("betas[1]", betas[1])
        _check_nonneg("eps", eps)
        _check_nonneg("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, lam = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _grad(p, group["maximize"], type(self).__name__)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)  # m
                    state["exp_avg_sq"] = torch.zeros_like(p)  # v
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                if lam != 0:
                    if group["decoupled_weight_decay"]:
                        # theta_{t-1} <- theta_{t-1} (1 - eta lambda)
                        p.mul_(1 - lr * lam)
                    else:
                        # g_t <- g_t + lambda theta_{t-1}
                        g = g.add(p, alpha=lam)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                # m_t = beta1 m_{t-1} + (1 - beta1) g_t
                m.lerp_(g, 1 - beta1)
                # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                if group["amsgrad"]:
                    # v_t^max = max(v_{t-1}^max, v_t)
                    torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                    v = state["max_exp_avg_sq"]
                # bias corrections 1 - beta1^t and 1 - beta2^t
                bc1 = 1 - beta1**t
                bc2 = 1 - beta2**t
                # sqrt(v_hat_t) + eps = sqrt(v_t) / sqrt(1 - beta2^t) + eps
                denom = (v.sqrt() / math.sqrt(bc2)).add_(eps)
                # theta_t = theta_{t-1} - eta m_hat_t / (sqrt(v_hat_t) + eps),  m_hat_t = m_t / (1 - beta1^t)
                p.addcdiv_(m, denom, value=-lr / bc1)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default weight_decay=1e-2, as in torch.optim.AdamW)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)
