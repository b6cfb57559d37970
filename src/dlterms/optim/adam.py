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

SparseAdam ("lazy" Adam, as `torch.optim.SparseAdam`) is for sparse gradients, e.g. of an embedding
table where a batch touches a few rows: only the rows $I$ present in the gradient update their moments
and weights; the other rows keep theirs unchanged (not decayed), and $t$ counts the optimiser's steps,
so the bias corrections are the same for every row:

$$m_I \leftarrow m_I + (1 - \beta_1)(g_I - m_I), \qquad v_I \leftarrow v_I + (1 - \beta_2)(g_I^2 - v_I),
\qquad \theta_I \leftarrow \theta_I - \eta \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}
\frac{m_I}{\sqrt{v_I} + \epsilon}$$

(torch adds $\epsilon$ to $\sqrt{v}$ before the bias correction here, unlike in Adam; we follow it.)
"""

from __future__ import annotations

import math

import torch

from dlterms.optim._base import _check_lr, _check_nonneg, _check_unit, _grad, _step_grad_mode, _torch_flags

__all__ = ["Adam", "AdamW", "SparseAdam"]


class Adam(torch.optim.Optimizer):
    """Adam with torch's arguments: lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay,
    and torch's implementation switches foreach, capturable, differentiable, fused (see
    `dlterms.optim._base._torch_flags`: fused=True and capturable=True raise a ValueError)."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ):
        _check_lr(lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas}")
        _check_unit("betas[0]", betas[0])
        _check_unit("betas[1]", betas[1])
        _check_nonneg("eps", eps)
        _check_nonneg("weight_decay", weight_decay)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
            **_torch_flags(
                type(self).__name__, foreach=foreach, fused=fused, capturable=capturable, differentiable=differentiable
            ),
        )
        super().__init__(params, defaults)

    @_step_grad_mode
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, lam = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            if group["foreach"] is not False and not group["differentiable"] and not group["amsgrad"]:
                _adam_multi_tensor(self, group)  # the same update, one call per operation for all parameters
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _grad(p, group["maximize"], type(self).__name__)
                state = _state(self.state[p], p, group["amsgrad"])
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
                differentiable = group["differentiable"]
                if group["amsgrad"]:
                    # v_t^max = max(v_{t-1}^max, v_t); when the step is recorded (differentiable), the old
                    # v^max is a copy and the update a copy_, since autograd keeps what `maximum` read
                    vmax = state["max_exp_avg_sq"]
                    v = vmax.copy_(torch.maximum(vmax.clone() if differentiable else vmax, v))
                # bias corrections 1 - beta1^t and 1 - beta2^t
                bc1 = 1 - beta1**t
                bc2 = 1 - beta2**t
                # sqrt(v_hat_t) + eps = sqrt(v_t) / sqrt(1 - beta2^t) + eps
                denom = (v.sqrt() / math.sqrt(bc2)).add_(eps)
                # theta_t = theta_{t-1} - eta m_hat_t / (sqrt(v_hat_t) + eps),  m_hat_t = m_t / (1 - beta1^t)
                # (a recorded step reads a copy of m_t, which the next step changes in place, as torch does)
                p.addcdiv_(m.clone() if differentiable else m, denom, value=-lr / bc1)
        return loss


def _state(state: dict, p: torch.Tensor, amsgrad: bool) -> dict:
    """A parameter's Adam state, created at its first step: step 0 and zero moments."""
    if not state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p)  # m
        state["exp_avg_sq"] = torch.zeros_like(p)  # v
        if amsgrad:
            state["max_exp_avg_sq"] = torch.zeros_like(p)
    return state


def _adam_multi_tensor(opt: Adam, group: dict) -> None:
    """`Adam.step`'s update for one parameter group, each operation issued once for all its parameters
    (torch's `_foreach_*` calls, which apply the same per-tensor operation to every tensor of a list):
    the same operations in the same order as the per-parameter loop above, so the same result to the
    bit, with a few calls per step instead of a few per parameter. Parameters at different step counts
    (one that had no gradient at some step) are updated in separate batches."""
    lr, (beta1, beta2), eps, lam = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    batches: dict[int, tuple[list, list, list, list]] = {}
    for p in group["params"]:
        if p.grad is None:
            continue
        g = _grad(p, group["maximize"], type(opt).__name__)
        state = _state(opt.state[p], p, amsgrad=False)
        state["step"] += 1
        ps, gs, ms, vs = batches.setdefault(state["step"], ([], [], [], []))
        ps.append(p)
        gs.append(g)
        ms.append(state["exp_avg"])
        vs.append(state["exp_avg_sq"])
    for t, (ps, gs, ms, vs) in batches.items():
        if lam != 0:
            if group["decoupled_weight_decay"]:
                torch._foreach_mul_(ps, 1 - lr * lam)  # theta_{t-1} <- theta_{t-1} (1 - eta lambda)
            else:
                gs = torch._foreach_add(gs, ps, alpha=lam)  # g_t <- g_t + lambda theta_{t-1}
        torch._foreach_lerp_(ms, gs, 1 - beta1)  # m_t = beta1 m_{t-1} + (1 - beta1) g_t
        torch._foreach_mul_(vs, beta2)  # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)
        bc1, bc2 = 1 - beta1**t, 1 - beta2**t
        denom = torch._foreach_sqrt(vs)  # sqrt(v_hat_t) + eps = sqrt(v_t) / sqrt(1 - beta2^t) + eps
        torch._foreach_div_(denom, math.sqrt(bc2))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(ps, ms, denom, value=-lr / bc1)  # theta_t = theta_{t-1} - eta m_hat / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (default weight_decay=1e-2, as in torch.optim.AdamW)."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )


class SparseAdam(torch.optim.Optimizer):
    """Lazy Adam for sparse gradients (torch.optim.SparseAdam's arguments: lr, betas, eps, maximize).

    Parameters must receive sparse gradients (e.g. `Embedding(..., sparse=True)`); a dense gradient is
    an error, since updating every row would make this plain Adam without weight decay.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ):
        _check_lr(lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas}")
        _check_unit("betas[0]", betas[0])
        _check_unit("betas[1]", betas[1])
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError(
                        "SparseAdam needs sparse gradients (e.g. Embedding(..., sparse=True)); "
                        "for dense gradients use Adam"
                    )
                if p.grad.sparse_dim() != 1:
                    raise RuntimeError(
                        f"SparseAdam updates whole rows: expected a gradient sparse in its first "
                        f"dimension only, got sparse_dim={p.grad.sparse_dim()}"
                    )
                grad = p.grad.coalesce()  # one entry per touched row
                rows, g = grad.indices()[0], grad.values()  # I, (|I|, ...) g_I
                if group["maximize"]:
                    g = -g
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)  # m
                    state["exp_avg_sq"] = torch.zeros_like(p)  # v
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                # m_I <- m_I + (1 - beta1)(g_I - m_I)
                m_I = m[rows].lerp_(g, 1 - beta1)
                # v_I <- v_I + (1 - beta2)(g_I^2 - v_I)
                v_I = v[rows].lerp_(g * g, 1 - beta2)
                m[rows], v[rows] = m_I, v_I
                # step size eta sqrt(1 - beta2^t) / (1 - beta1^t)
                step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                # theta_I <- theta_I - step_size m_I / (sqrt(v_I) + eps)
                p.index_add_(0, rows, m_I / (v_I.sqrt() + eps), alpha=-step_size)
        return loss
