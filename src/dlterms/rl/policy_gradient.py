r"""REINFORCE: the Monte-Carlo policy-gradient agent.

Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
learning", Machine Learning 1992. A softmax policy $\pi_\theta(a \mid s)$ is moved along the policy
gradient theorem's estimate, after each episode:

$$G_t = \sum_{k \ge 0} \gamma^k r_{t+k+1}, \qquad
  \nabla_\theta J \approx \frac{1}{T}\sum_{t=0}^{T-1} \nabla_\theta \log \pi_\theta(a_t \mid s_t)\,(G_t - b)$$

The baseline $b$ (a running mean of past returns-to-go) does not depend on the current actions,
so it leaves the gradient unbiased while lowering its variance. The loss minimised is the
negative of the sum, $-\frac{1}{T}\sum_t \log\pi_\theta(a_t \mid s_t)(G_t - b)$.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlterms.nn.activations import log_softmax, softmax

__all__ = ["REINFORCE", "discounted_returns"]


def discounted_returns(rewards: list[float] | torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = r_{t+1} + gamma G_{t+1}, computed backwards; (T,) float32."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    out = torch.zeros_like(rewards)
    g = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        out[t] = g
    return out


class REINFORCE:
    """Policy-gradient agent for discrete actions (the `rl.loop` agent protocol).

    Args:
        policy: module mapping a batch of features (B, F) to action logits (B, A).
        optimizer: optimizer over the policy's parameters.
        gamma: discount.
        obs_fn: turns one observation into a (F,) float tensor (e.g. one-hot of a state index).
        baseline_momentum: weight of the past in the running-mean baseline (0 disables the baseline).
        generator: torch generator for sampling actions.
    """

    def __init__(
        self,
        policy: nn.Module,
        optimizer: torch.optim.Optimizer,
        gamma: float = 0.99,
        obs_fn: Callable[[object], torch.Tensor] | None = None,
        baseline_momentum: float = 0.9,
        generator: torch.Generator | None = None,
    ):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if not 0.0 <= baseline_momentum < 1.0:
            raise ValueError(f"baseline_momentum must be in [0, 1), got {baseline_momentum}")
        self.policy, self.optimizer, self.gamma = policy, optimizer, gamma
        self.obs_fn = obs_fn or (lambda o: torch.as_tensor(o, dtype=torch.float32))
        self.baseline_momentum = baseline_momentum
        self.baseline: float | None = None
        self.generator = generator
        self._obs: list[torch.Tensor] = []
        self._actions: list[int] = []
        self._rewards: list[float] = []
        self.losses: list[float] = []

    def _device(self) -> torch.device:
        return next(self.policy.parameters()).device

    @torch.no_grad()
    def act(self, obs, greedy: bool = False) -> int:
        logits = self.policy(self.obs_fn(obs).to(self._device()).unsqueeze(0))[0]  # (A,)
        if greedy:
            return int(logits.argmax())
        probs = softmax(logits, dim=-1).cpu()
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def observe(self, obs, action: int, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        self._obs.append(self.obs_fn(obs))
        self._actions.append(int(action))
        self._rewards.append(float(reward))
        if terminated or truncated:
            self.update()

    def update(self) -> None:
        """One gradient step on the stored episode, then forget it."""
        if not self._rewards:
            return
        dev = self._device()
        G = discounted_returns(self._rewards, self.gamma).to(dev)  # (T,)
        b = 0.0 if self.baseline is None or self.baseline_momentum == 0 else self.baseline
        logits = self.policy(torch.stack(self._obs).to(dev))  # (T, A)
        logp = log_softmax(logits, dim=-1)
        logp_a = logp.gather(1, torch.tensor(self._actions, device=dev).unsqueeze(1)).squeeze(1)  # (T,)
        # loss = -(1/T) sum_t log pi(a_t | s_t) (G_t - b)
        loss = -(logp_a * (G - b)).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.losses.append(float(loss.detach()))
        m = float(G.mean())
        self.baseline = (
            m if self.baseline is None else self.baseline_momentum * self.baseline + (1 - self.baseline_momentum) * m
        )
        self._obs, self._actions, self._rewards = [], [], []
