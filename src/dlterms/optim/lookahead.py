r"""Lookahead: k steps forward with any optimiser, then one step back toward where you started.

Zhang, Lucas, Hinton & Ba (2019), *Lookahead Optimizer: k steps forward, 1 step back*.

The inner ("fast") optimiser updates the weights $\theta$ as usual. Lookahead keeps a copy of
slow weights $\phi$. Every $k$ inner steps, with $\theta_{t,k}$ the fast weights after those steps,

$$\phi_{t+1} = \phi_t + \alpha(\theta_{t,k} - \phi_t)$$

$$\theta_{t+1,0} = \phi_{t+1}$$

so the model's weights jump to the interpolation and the fast weights restart from there. The inner
optimiser's own state (momentum, Adam's moments) is kept as it is (the paper's default). When
training ends between two synchronisations, the fast weights are the model's weights; call
`sync()` first to evaluate the slow weights instead.
"""

from __future__ import annotations

import torch

__all__ = ["Lookahead"]


class Lookahead(torch.optim.Optimizer):
    """Wrap `optimizer` (any torch.optim.Optimizer) with Lookahead's slow weights.

    Args:
        optimizer: the inner, fast optimiser; its param_groups are shared (a scheduler may act
            on either).
        k: inner steps between synchronisations (>= 1).
        alpha: slow-weight step size in [0, 1] (1 is the inner optimiser alone).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.optimizer, self.k, self.alpha = optimizer, k, alpha
        self.fast_steps = 0
        # the inner optimiser's group dicts themselves, so lr changes reach it
        super().__init__(optimizer.param_groups, dict(optimizer.defaults))
        for p in self._params():
            # phi_0 = theta_0
            self.state[p]["slow"] = p.detach().clone()

    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    @torch.no_grad()
    def sync(self) -> None:
        """Apply the slow-weight update now: phi <- phi + alpha (theta - phi); theta <- phi."""
        for p in self._params():
            phi = self.state[p]["slow"]
            # phi_{t+1} = phi_t + alpha (theta_{t,k} - phi_t)
            phi.add_(p.detach() - phi, alpha=self.alpha)
            # theta_{t+1,0} = phi_{t+1}
            p.copy_(phi)

    def step(self, closure=None):
        """One inner step; every k-th one is followed by the slow-weight update."""
        loss = self.optimizer.step(closure)
        self.fast_steps += 1
        if self.fast_steps % self.k == 0:
            self.sync()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {
            "lookahead": super().state_dict(),
            "inner": self.optimizer.state_dict(),
            "fast_steps": self.fast_steps,
            "k": self.k,
            "alpha": self.alpha,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.optimizer.load_state_dict(state_dict["inner"])
        super().load_state_dict(state_dict["lookahead"])
        self.param_groups = self.optimizer.param_groups  # torch's loader made new group dicts; share again
        self.fast_steps, self.k, self.alpha = state_dict["fast_steps"], state_dict["k"], state_dict["alpha"]

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha}, optimizer={self.optimizer!r})"
