r"""Experience replay: a fixed-size ring buffer of transitions, sampled uniformly or by priority.

Lin, "Self-improving reactive agents based on reinforcement learning, planning and teaching",
Machine Learning 1992; used by DQN (Mnih et al., Nature 2015). Transitions
$(s_t, a_t, r_{t+1}, s_{t+1}, d_{t+1})$ go into slot $i = n \bmod N$ (the oldest is overwritten once
the buffer is full) and mini-batches are drawn from all stored slots, which breaks the correlation
between consecutive steps and reuses each transition many times.

Prioritised replay (Schaul et al., ICLR 2016) samples slot $i$ with probability
$P(i) = p_i^\alpha / \sum_k p_k^\alpha$, where $p_i = |\delta_i| + \epsilon$ is its last TD error, and
corrects the bias with importance weights $w_i = (N P(i))^{-\beta} / \max_j w_j$. A sum tree keeps
sampling and updates at O(log N).

`VectorReplayBuffer` holds one uniform ring buffer per member of a group of agents trained in lockstep
(`dqn.VectorDQN`), each with its own capacity $N_k$: member $k$'s n-th transition goes to its slot
$n \bmod N_k$ and its mini-batches are drawn from its own slots only. A capacity of 1 keeps only the
transition just seen, so "replay" from it is the online update.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["ReplayBuffer", "PrioritizedReplayBuffer", "SumTree", "VectorReplayBuffer"]


class ReplayBuffer:
    """Ring buffer of (obs, action, reward, next_obs, terminated) for vector observations.

    Args:
        capacity: N, the number of transitions kept.
        obs_dim: length of one observation vector.
    """

    def __init__(self, capacity: int, obs_dim: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if obs_dim < 1:
            raise ValueError(f"obs_dim must be >= 1, got {obs_dim}")
        self.capacity = int(capacity)
        self.obs = torch.zeros(capacity, obs_dim)  # (N, D)
        self.next_obs = torch.zeros(capacity, obs_dim)  # (N, D)
        self.actions = torch.zeros(capacity, dtype=torch.int64)
        self.rewards = torch.zeros(capacity)
        self.terminated = torch.zeros(capacity)
        self.pushed = 0  # transitions ever pushed, n

    def __len__(self) -> int:
        return min(self.pushed, self.capacity)

    def push(self, obs, action: int, reward: float, next_obs, terminated: bool) -> int:
        """Store one transition in slot n mod N (overwriting the oldest when full); returns the slot."""
        i = self.pushed % self.capacity
        self.obs[i] = torch.as_tensor(obs, dtype=torch.float32)
        self.next_obs[i] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.actions[i] = int(action)
        self.rewards[i] = float(reward)
        self.terminated[i] = float(terminated)
        self.pushed += 1
        return i

    def _check(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(self) == 0:
            raise ValueError("cannot sample from an empty buffer: push transitions first")

    def _gather(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "obs": self.obs[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_obs": self.next_obs[idx],
            "terminated": self.terminated[idx],
            "indices": idx,
            "weights": torch.ones(len(idx)),
        }

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A uniform mini-batch (with replacement) of stored transitions; weights are all 1."""
        self._check(batch_size)
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        return self._gather(idx)

    def update_priorities(self, indices: torch.Tensor, td_errors: torch.Tensor) -> None:
        """Uniform replay ignores TD errors (kept so agents can call it on either buffer)."""


class SumTree:
    """Binary tree whose leaves hold priorities and whose inner nodes hold sums of their children."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.tree = np.zeros(2 * capacity)  # node k has children 2k and 2k+1; leaves at capacity..2capacity-1

    def total(self) -> float:
        return float(self.tree[1])

    def update(self, i: int, value: float) -> None:
        k = i + self.capacity
        self.tree[k] = value
        k //= 2
        while k >= 1:
            self.tree[k] = self.tree[2 * k] + self.tree[2 * k + 1]
            k //= 2

    def find(self, u: float) -> int:
        """The leaf i with cumsum(p)[i-1] <= u < cumsum(p)[i]."""
        k = 1
        while k < self.capacity:
            left = 2 * k
            if u < self.tree[left] or self.tree[left + 1] == 0:
                k = left
            else:
                u -= self.tree[left]
                k = left + 1
        return k - self.capacity


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritised replay; new transitions get the largest priority seen so far.

    Args:
        alpha: how strongly priorities shape sampling (0 = uniform).
        beta: importance-weight exponent (1 = full bias correction).
        eps: added to |TD error| so no transition has zero probability.
    """

    def __init__(self, capacity: int, obs_dim: int, alpha: float = 0.6, beta: float = 0.4, eps: float = 1e-3):
        super().__init__(capacity, obs_dim)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        size = 1
        while size < capacity:
            size *= 2
        self.tree = SumTree(size)
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self.max_priority = 1.0

    def push(self, obs, action: int, reward: float, next_obs, terminated: bool) -> int:
        i = super().push(obs, action, reward, next_obs, terminated)
        self.tree.update(i, self.max_priority**self.alpha)
        return i

    def probabilities(self) -> np.ndarray:
        """P(i) = p_i^alpha / sum_k p_k^alpha over the stored slots."""
        leaves = self.tree.tree[self.tree.capacity : self.tree.capacity + len(self)]
        return leaves / leaves.sum()

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        self._check(batch_size)
        total = self.tree.total()
        # stratified: one uniform draw in each of batch_size equal slices of [0, total)
        u = (torch.arange(batch_size) + torch.rand(batch_size, generator=generator, dtype=torch.float64)) * (
            total / batch_size
        )
        idx = torch.tensor([min(self.tree.find(float(x)), len(self) - 1) for x in u])
        batch = self._gather(idx)
        p = torch.as_tensor(self.tree.tree[self.tree.capacity + idx.numpy()] / total)  # P(i)
        # w_i = (N P(i))^-beta / max_j w_j
        w = (len(self) * p) ** (-self.beta)
        batch["weights"] = (w / w.max()).float()
        return batch

    def update_priorities(self, indices: torch.Tensor, td_errors: torch.Tensor) -> None:
        # p_i = |delta_i| + eps
        pr = td_errors.detach().abs().cpu().double().numpy() + self.eps
        for i, p in zip(indices.tolist(), pr):
            self.tree.update(int(i), float(p) ** self.alpha)
            self.max_priority = max(self.max_priority, float(p))


class VectorReplayBuffer:
    """One uniform ring buffer per member, stored together: (K, N, D) observations for K members.

    Args:
        capacities: N_k for each member (a list of K ints), or one int for all.
        obs_dim: D.
        members: K, when `capacities` is one int.
    """

    def __init__(self, capacities, obs_dim: int, members: int | None = None):
        if isinstance(capacities, int):
            if members is None or members < 1:
                raise ValueError(f"with one capacity, members must be >= 1, got {members}")
            capacities = [capacities] * members
        caps = torch.as_tensor(list(capacities), dtype=torch.int64)
        if caps.dim() != 1 or len(caps) == 0 or int(caps.min()) < 1:
            raise ValueError(f"capacities must be >= 1 for every member, got {list(capacities)}")
        if obs_dim < 1:
            raise ValueError(f"obs_dim must be >= 1, got {obs_dim}")
        self.capacities, self.members = caps, len(caps)
        k, n = self.members, int(caps.max())
        self.obs = torch.zeros(k, n, obs_dim)  # (K, N, D)
        self.next_obs = torch.zeros(k, n, obs_dim)  # (K, N, D)
        self.actions = torch.zeros(k, n, dtype=torch.int64)
        self.rewards = torch.zeros(k, n)
        self.terminated = torch.zeros(k, n)
        self.pushed = torch.zeros(k, dtype=torch.int64)  # transitions ever pushed per member, n_k

    def __len__(self) -> int:
        """Transitions stored by the member that holds the fewest."""
        return int(self.sizes().min())

    def sizes(self) -> torch.Tensor:
        """min(n_k, N_k) for every member, (K,)."""
        return torch.minimum(self.pushed, self.capacities)

    def push(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Store one transition per member (arrays with K rows) in slots n_k mod N_k."""
        rows = torch.arange(self.members)
        slot = self.pushed % self.capacities  # (K,)
        self.obs[rows, slot] = torch.as_tensor(obs, dtype=torch.float32)
        self.next_obs[rows, slot] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.actions[rows, slot] = torch.as_tensor(actions, dtype=torch.int64)
        self.rewards[rows, slot] = torch.as_tensor(rewards, dtype=torch.float32)
        self.terminated[rows, slot] = torch.as_tensor(terminated, dtype=torch.float32)
        self.pushed += 1

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """batch_size transitions per member, uniform (with replacement) over that member's own slots;
        every tensor is (K, batch_size, ...)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        size = self.sizes()
        if int(size.min()) == 0:
            raise ValueError("cannot sample from an empty buffer: push transitions first")
        u = torch.rand(self.members, batch_size, generator=generator, dtype=torch.float64)
        idx = (u * size[:, None]).long().clamp_max(size[:, None] - 1)  # uniform in {0, ..., size_k - 1}
        rows = torch.arange(self.members)[:, None]
        return {
            "obs": self.obs[rows, idx],
            "actions": self.actions[rows, idx],
            "rewards": self.rewards[rows, idx],
            "next_obs": self.next_obs[rows, idx],
            "terminated": self.terminated[rows, idx],
            "indices": idx,
        }
