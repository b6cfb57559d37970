r"""Deep Q-network (DQN) with a target network, learning from replay or online.

Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015. A network
$Q_\theta(s, \cdot)$ regresses onto the one-step target computed with a frozen copy
$Q_{\theta^-}$ that is refreshed every `target_update` steps:

$$y = r + \gamma\,(1 - d)\max_{a'} Q_{\theta^-}(s', a'), \qquad
  L(\theta) = \frac{1}{B}\sum_{b} w_b\,\mathrm{Huber}\big(Q_\theta(s_b, a_b) - y_b\big)$$

With `double=True` the next action is chosen by the online network and valued by the target one,
$y = r + \gamma(1-d)\,Q_{\theta^-}(s', \arg\max_{a'} Q_\theta(s', a'))$ (van Hasselt et al., 2016).
Actions are $\epsilon$-greedy, $\epsilon$ decaying linearly over the first steps.

With a `buffer` (uniform or prioritised `rl.replay`) each step trains on a random mini-batch of
stored transitions; with `buffer=None` the agent updates online, on the transition it just saw
(a batch of one), which is the ablation of the DQN paper.

`VectorDQN` is the same agent K times over, trained in lockstep on K environments (one per member of a
gymnasium vector env): the members' networks are stacked in an `rl.ensemble.EnsembleMLP`, each has its
own ring buffer in an `rl.replay.VectorReplayBuffer`, its own exploration draws, gradient clipping and
target network, and members in different groups may have different learning rates. Nothing is shared,
so member k learns exactly as a `DQN` would on its own environment, at a fraction of the cost.
A member whose buffer holds one transition is the online agent: each of its updates uses only the
transition just seen (copied batch_size times, which gives the batch-of-one gradient).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from dlterms.losses import huber_loss
from dlterms.optim import Adam, clip_grad_norm_
from dlterms.rl.ensemble import EnsembleMLP, clip_grad_norm_per_member_
from dlterms.rl.replay import ReplayBuffer, VectorReplayBuffer

__all__ = ["DQN", "VectorDQN", "td_target"]


def td_target(
    q: nn.Module,
    target: nn.Module,
    rewards: torch.Tensor,
    next_obs: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
    double: bool = False,
) -> torch.Tensor:
    """y = r + gamma (1 - d) max_a' Q_target(s', a'), or with `double` Q_target(s', argmax_a' Q(s', a'));
    actions on the last dimension of the networks' outputs, so any leading shape (B,) or (K, B)."""
    with torch.no_grad():
        q_next = target(next_obs)  # (..., A)
        if double:
            a_star = q(next_obs).argmax(-1, keepdim=True)  # (..., 1) chosen by the online net
            v_next = q_next.gather(-1, a_star).squeeze(-1)
        else:
            v_next = q_next.max(-1).values
        return rewards + gamma * (1.0 - terminated) * v_next


def _check_common(n_actions, gamma, eps_start, eps_end, tau, **positive) -> None:
    if n_actions < 1:
        raise ValueError(f"n_actions must be >= 1, got {n_actions}")
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    for name, v in positive.items():
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if not 0.0 <= eps_end <= eps_start <= 1.0:
        raise ValueError(f"need 0 <= eps_end <= eps_start <= 1, got eps_start={eps_start}, eps_end={eps_end}")
    if tau is not None and not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1] or None, got {tau}")


class DQN:
    """DQN agent for vector observations and discrete actions (the `rl.loop` agent protocol).

    Args:
        q_net: module (B, D) -> (B, A) action values.
        n_actions: A.
        lr: Adam step size.
        gamma: discount.
        buffer: replay buffer, or None for online updates.
        batch_size: transitions per update when replaying.
        learning_starts: steps of acting before the first update.
        train_every: environment steps between updates.
        target_update: steps between copies of the online weights into the target network.
        tau: if given, update the target softly every step instead (Polyak averaging with weight tau).
        eps_start, eps_end, eps_decay_steps: linear epsilon schedule.
        double: Double-DQN targets.
        max_grad_norm: gradient clipping (None: off).
        generator: torch generator for exploration and sampling.
    """

    def __init__(
        self,
        q_net: nn.Module,
        n_actions: int,
        lr: float = 1e-3,
        gamma: float = 0.99,
        buffer: ReplayBuffer | None = None,
        batch_size: int = 64,
        learning_starts: int = 500,
        train_every: int = 1,
        target_update: int = 500,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        eps_decay_steps: int = 5000,
        double: bool = False,
        tau: float | None = None,
        max_grad_norm: float | None = 10.0,
        generator: torch.Generator | None = None,
    ):
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        _check_common(
            n_actions,
            gamma,
            eps_start,
            eps_end,
            tau,
            batch_size=batch_size,
            train_every=train_every,
            target_update=target_update,
            eps_decay_steps=eps_decay_steps,
        )
        self.tau = tau
        self.q = q_net
        self.target = copy.deepcopy(q_net).requires_grad_(False)
        self.n_actions, self.gamma, self.buffer = n_actions, gamma, buffer
        self.batch_size, self.learning_starts, self.train_every = batch_size, learning_starts, train_every
        self.target_update, self.double, self.max_grad_norm = target_update, double, max_grad_norm
        self.eps_start, self.eps_end, self.eps_decay_steps = eps_start, eps_end, eps_decay_steps
        self.optimizer = Adam(self.q.parameters(), lr=lr)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.steps = 0  # environment steps observed
        self.updates = 0  # gradient steps taken
        self.losses: list[float] = []

    @property
    def epsilon(self) -> float:
        frac = min(1.0, self.steps / self.eps_decay_steps)
        return self.eps_start + frac * (self.eps_end - self.eps_start)

    def _device(self) -> torch.device:
        return next(self.q.parameters()).device

    @torch.no_grad()
    def act(self, obs, greedy: bool = False) -> int:
        if not greedy and float(torch.rand((), generator=self.generator)) < self.epsilon:
            return int(torch.randint(self.n_actions, (), generator=self.generator))
        x = torch.as_tensor(obs, dtype=torch.float32, device=self._device()).unsqueeze(0)  # (1, D)
        return int(self.q(x).argmax(1))

    def observe(self, obs, action: int, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        self.steps += 1
        if self.buffer is not None:
            self.buffer.push(obs, action, reward, next_obs, terminated)
            if self.steps >= self.learning_starts and self.steps % self.train_every == 0:
                self.update(self.buffer.sample(self.batch_size, self.generator))
        elif self.steps >= self.learning_starts and self.steps % self.train_every == 0:
            o, o2 = (torch.as_tensor(np.asarray(v, dtype=np.float32)).reshape(1, -1) for v in (obs, next_obs))
            self.update(
                {
                    "obs": o,
                    "actions": torch.tensor([int(action)]),
                    "rewards": torch.tensor([float(reward)]),
                    "next_obs": o2,
                    "terminated": torch.tensor([float(terminated)]),
                    "weights": torch.ones(1),
                }
            )
        if self.tau is not None:
            # Polyak averaging every step: theta^- <- tau theta + (1 - tau) theta^-
            with torch.no_grad():
                for pt, p in zip(self.target.parameters(), self.q.parameters()):
                    pt.lerp_(p, self.tau)
        elif self.steps % self.target_update == 0:
            self.target.load_state_dict(self.q.state_dict())  # hard copy every C steps

    def td_target(self, rewards: torch.Tensor, next_obs: torch.Tensor, terminated: torch.Tensor) -> torch.Tensor:
        """y = r + gamma (1 - d) max_a' Q_target(s', a') (or the Double-DQN variant); (B,)."""
        return td_target(self.q, self.target, rewards, next_obs, terminated, self.gamma, self.double)

    def update(self, batch: dict[str, torch.Tensor]) -> float:
        """One gradient step on a batch of transitions; returns the loss."""
        dev = self._device()
        b = {k: v.to(dev) for k, v in batch.items()}
        y = self.td_target(b["rewards"], b["next_obs"], b["terminated"])  # (B,)
        q_sa = self.q(b["obs"]).gather(1, b["actions"].unsqueeze(1)).squeeze(1)  # (B,) Q(s_b, a_b)
        td = q_sa - y
        loss = (b["weights"] * huber_loss(q_sa, y, reduction="none")).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            clip_grad_norm_(self.q.parameters(), self.max_grad_norm)
        self.optimizer.step()
        if self.buffer is not None and "indices" in batch:
            self.buffer.update_priorities(batch["indices"], td.detach())
        self.updates += 1
        value = float(loss.detach())
        self.losses.append(value)
        return value


class VectorDQN:
    """K independent DQN agents in lockstep: act on (K, D) observations, learn from one transition each.

    Args:
        q_net: an `EnsembleMLP` of K members (its groups may get different learning rates).
        n_actions: A.
        lr: Adam step size, one for all groups or one per group of `q_net`.
        gamma: discount.
        capacities: replay capacity per member (a list of K) or one for all; 1 = online updates.
        batch_size: transitions per member per update.
        learning_starts: steps of acting before the first update.
        train_every: environment steps between updates.
        target_update: steps between hard copies into the target networks (when tau is None).
        tau: soft target update weight per step (Polyak averaging), or None for hard copies.
        eps_start, eps_end, eps_decay_steps: linear epsilon schedule, the same for every member.
        double: Double-DQN targets.
        max_grad_norm: per-member gradient clipping (None: off).
        generator: torch generator for exploration and sampling.
    """

    def __init__(
        self,
        q_net: EnsembleMLP,
        n_actions: int,
        lr: float | list[float] = 1e-3,
        gamma: float = 0.99,
        capacities: int | list[int] = 10_000,
        batch_size: int = 64,
        learning_starts: int = 500,
        train_every: int = 1,
        target_update: int = 500,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        eps_decay_steps: int = 5000,
        double: bool = False,
        tau: float | None = None,
        max_grad_norm: float | None = 10.0,
        generator: torch.Generator | None = None,
    ):
        if not isinstance(q_net, EnsembleMLP):
            raise ValueError(f"q_net must be an EnsembleMLP, got {type(q_net).__name__}")
        lrs = [float(lr)] * len(q_net.groups) if isinstance(lr, int | float) else [float(v) for v in lr]
        if len(lrs) != len(q_net.groups) or min(lrs) <= 0:
            raise ValueError(f"lr must be > 0, one value or one per group ({len(q_net.groups)}), got {lr}")
        _check_common(
            n_actions,
            gamma,
            eps_start,
            eps_end,
            tau,
            batch_size=batch_size,
            train_every=train_every,
            target_update=target_update,
            eps_decay_steps=eps_decay_steps,
        )
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm}")
        self.q = q_net
        self.members = q_net.members
        self.target = copy.deepcopy(q_net).requires_grad_(False)
        self._q_params, self._target_params = list(q_net.parameters()), list(self.target.parameters())
        self.buffer = VectorReplayBuffer(capacities, q_net.sizes[0], members=self.members)
        if self.buffer.members != self.members:
            raise ValueError(f"capacities must list {self.members} members, got {self.buffer.members}")
        self.n_actions, self.gamma, self.lrs = n_actions, gamma, lrs
        self.batch_size, self.learning_starts, self.train_every = batch_size, learning_starts, train_every
        self.target_update, self.tau, self.double = target_update, tau, double
        self.max_grad_norm = max_grad_norm
        self.eps_start, self.eps_end, self.eps_decay_steps = eps_start, eps_end, eps_decay_steps
        groups = q_net.group_parameters()
        self.optimizer = Adam([{"params": ps, "lr": v} for ps, v in zip(groups, lrs)])
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.steps = 0  # environment steps observed (by every member)
        self.updates = 0
        self.losses: list[torch.Tensor] = []  # per-member loss of each update, (K,)

    @property
    def epsilon(self) -> float:
        frac = min(1.0, self.steps / self.eps_decay_steps)
        return self.eps_start + frac * (self.eps_end - self.eps_start)

    @torch.no_grad()
    def act(self, obs, greedy: bool = False) -> np.ndarray:
        """Actions for (K, D) observations (one per member) -> (K,), or greedy for (K, B, D) -> (K, B)."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        single = x.dim() == 2
        if single:
            x = x[:, None]  # (K, 1, D)
        a = self.q(x).argmax(-1)  # (K, B) greedy actions
        if not greedy:
            explore = torch.rand(a.shape, generator=self.generator) < self.epsilon
            a = torch.where(explore, torch.randint(self.n_actions, a.shape, generator=self.generator), a)
        a = a.numpy()
        return a[:, 0] if single else a

    def observe(self, obs, actions, rewards, next_obs, terminated) -> None:
        """One transition per member (arrays with K rows); next_obs is the true next state, also when the
        episode ended (vector envs return the reset observation in its place)."""
        self.steps += 1
        self.buffer.push(obs, actions, rewards, next_obs, terminated)
        if self.steps >= self.learning_starts and self.steps % self.train_every == 0:
            self.update(self.buffer.sample(self.batch_size, self.generator))
        if self.tau is not None:
            with torch.no_grad():  # theta^- <- tau theta + (1 - tau) theta^-, every member, in one call
                torch._foreach_lerp_(self._target_params, self._q_params, self.tau)
        elif self.steps % self.target_update == 0:
            self.target.load_state_dict(self.q.state_dict())

    def update(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One gradient step for every member on its own (K, B) batch; returns the K losses."""
        y = td_target(
            self.q, self.target, batch["rewards"], batch["next_obs"], batch["terminated"], self.gamma, self.double
        )
        q_sa = self.q(batch["obs"]).gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)  # (K, B)
        per_member = huber_loss(q_sa, y, reduction="none").mean(1)  # L^(k), (K,)
        self.optimizer.zero_grad(set_to_none=True)
        per_member.sum().backward()  # d(sum_k L^(k)) / d theta^(k) = d L^(k) / d theta^(k)
        if self.max_grad_norm is not None:
            for ps in self.q.group_parameters():
                clip_grad_norm_per_member_(ps, self.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        loss = per_member.detach()
        self.losses.append(loss)
        return loss
