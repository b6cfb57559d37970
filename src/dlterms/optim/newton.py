r"""Newton's method: a second-order step that uses the Hessian as well as the gradient.

Near a minimum the loss is close to its second-order Taylor expansion
$L(\theta + d) \approx L(\theta) + g^\top d + \tfrac12 d^\top H d$, with gradient $g = \nabla L(\theta)$
and Hessian $H = \nabla^2 L(\theta)$. Setting the derivative in $d$ to zero gives the Newton step

$$H d = -g, \qquad \theta_{t+1} = \theta_t + \eta\, d$$

with $\eta = 1$ the pure method. Close to a minimum with $H$ positive definite it converges
quadratically: the number of correct digits roughly doubles every iteration. Damping
(Levenberg, 1944) solves $(H + \lambda I) d = -g$ instead, which keeps the step defined when $H$
is singular and shortens it where the quadratic model is poor. Each step needs the $P \times P$
Hessian and an $O(P^3)$ solve for $P$ parameters, so it is for small models (logistic regression,
a few hundred weights), not for deep networks. See Nocedal & Wright, *Numerical Optimization*, ch. 3.
"""

from __future__ import annotations

import torch

from dlterms.optim._base import _check_lr, _check_nonneg

__all__ = ["Newton", "hessian"]


def hessian(loss: torch.Tensor, params: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(g, H): the gradient (P,) and Hessian (P, P) of a scalar `loss` over all `params` flattened.

    Row i of H is the gradient of g_i, found by differentiating the gradient a second time.
    """
    grads = torch.autograd.grad(loss, params, create_graph=True)
    g = torch.cat([gr.reshape(-1) for gr in grads])  # (P,)
    rows = []
    for i in range(g.numel()):
        # H_i = d g_i / d theta
        row = torch.autograd.grad(g[i], params, retain_graph=True, allow_unused=True)
        row = [torch.zeros_like(p) if r is None else r for r, p in zip(row, params)]
        rows.append(torch.cat([r.reshape(-1) for r in row]))
    return g.detach(), torch.stack(rows).detach()  # (P,), (P, P)


class Newton(torch.optim.Optimizer):
    """Damped Newton's method. `step(closure)` needs a closure returning the loss (no backward needed).

    Args:
        lr: step length eta on the Newton direction (1 = the full Newton step).
        damping: lambda >= 0 added to the Hessian's diagonal.
    """

    needs_closure = True  # `fit` passes a closure that recomputes the loss instead of calling backward

    def __init__(self, params, lr: float = 1.0, damping: float = 0.0):
        _check_lr(lr)
        _check_nonneg("damping", damping)
        super().__init__(params, dict(lr=lr, damping=damping))
        if len(self.param_groups) != 1:
            raise ValueError(
                f"Newton takes one parameter group (the Hessian couples all parameters), got {len(self.param_groups)}"
            )

    def step(self, closure=None):
        if closure is None:
            raise ValueError("Newton.step needs a closure that recomputes and returns the loss")
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.requires_grad]
        with torch.enable_grad():
            loss = closure()
            g, H = hessian(loss, params)
        # (H + lambda I) d = -g
        H = H + group["damping"] * torch.eye(len(g), dtype=H.dtype, device=H.device)
        d = torch.linalg.solve(H, -g)  # (P,)
        self.last_grad_norm = float(g.norm())  # ||g|| at the point the step started from
        with torch.no_grad():
            offset = 0
            for p in params:
                n = p.numel()
                # theta_{t+1} = theta_t + eta d
                p.add_(d[offset : offset + n].view_as(p), alpha=group["lr"])
                offset += n
        return loss
