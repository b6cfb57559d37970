r"""Tabular planning and learning: value iteration (model known) and Q-learning (model unknown).

Value iteration (Bellman, 1957) applies the Bellman optimality operator until it stops changing:

$$Q(s, a) = \sum_{s', r} p(s', r \mid s, a)\,\big[r + \gamma\,(1 - d)\,V(s')\big]$$

$$V(s) = \max_a Q(s, a)$$

($d = 1$ when $s'$ is terminal). The fixed point is $Q^*$, and any action with $Q^*(s, a) = V^*(s)$
is optimal. `policy_evaluation` solves $V^\pi = r_\pi + \gamma P_\pi V^\pi$ exactly as a linear
system, to score a given policy.

Q-learning (Watkins, 1989) learns $Q^*$ from sampled transitions only, with an
$\epsilon$-greedy behaviour policy:

$$Q(s, a) \leftarrow Q(s, a) + \alpha\,\big[r + \gamma\,(1 - d)\max_{a'} Q(s', a') - Q(s, a)\big]$$

It is off-policy: the target uses the greedy $\max_{a'}$ whatever the agent did next.
"""

from __future__ import annotations

import numpy as np

__all__ = ["value_iteration", "policy_evaluation", "optimal_actions", "QLearning"]


def _check_gamma(gamma: float) -> None:
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")


def _bellman_q(P, V: np.ndarray, gamma: float, n_actions: int) -> np.ndarray:
    Q = np.zeros((len(V), n_actions))
    for s in range(len(V)):
        for a in range(n_actions):
            # Q(s, a) = sum p (r + gamma (1 - d) V(s'))
            Q[s, a] = sum(p * (r + gamma * (0.0 if done else V[s2])) for p, s2, r, done in P[s][a])
    return Q


def value_iteration(
    P, n_states: int, n_actions: int, gamma: float = 0.95, tol: float = 1e-10, max_iter: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """(V*, Q*) for the MDP `P[s][a] = [(prob, s', r, terminated), ...]` (gymnasium's toy-text format)."""
    _check_gamma(gamma)
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    V = np.zeros(n_states)
    for _ in range(max_iter):
        Q = _bellman_q(P, V, gamma, n_actions)
        V_new = Q.max(axis=1)  # V(s) = max_a Q(s, a)
        if np.max(np.abs(V_new - V)) < tol:
            return V_new, Q
        V = V_new
    raise RuntimeError(f"value iteration did not converge to tol={tol} in {max_iter} sweeps")


def optimal_actions(Q: np.ndarray, atol: float = 1e-8) -> list[set[int]]:
    """For each state, the set of actions whose value is within `atol` of the best (ties are common)."""
    return [set(np.flatnonzero(q >= q.max() - atol).tolist()) for q in Q]


def policy_evaluation(P, policy: np.ndarray, gamma: float = 0.95) -> np.ndarray:
    """Exact V^pi of a deterministic policy (one action per state): solve (I - gamma P_pi) V = r_pi."""
    _check_gamma(gamma)
    n = len(policy)
    P_pi, r_pi = np.zeros((n, n)), np.zeros(n)
    for s in range(n):
        for p, s2, r, done in P[s][int(policy[s])]:
            r_pi[s] += p * r
            if not done:
                P_pi[s, s2] += p
    return np.linalg.solve(np.eye(n) - gamma * P_pi, r_pi)


class QLearning:
    """Tabular Q-learning agent for discrete observations and actions (the `rl.loop` agent protocol).

    Args:
        n_states, n_actions: table size.
        lr: step size alpha.
        gamma: discount.
        epsilon: probability of a uniformly random action while learning.
        seed: seeds the exploration generator.
    """

    def __init__(
        self, n_states: int, n_actions: int, lr: float = 0.5, gamma: float = 0.95, epsilon: float = 0.1, seed: int = 0
    ):
        if n_states < 1 or n_actions < 1:
            raise ValueError(f"n_states and n_actions must be >= 1, got {n_states}, {n_actions}")
        if not 0.0 < lr <= 1.0:
            raise ValueError(f"lr must be in (0, 1], got {lr}")
        _check_gamma(gamma)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.lr, self.gamma, self.epsilon = lr, gamma, epsilon
        self.Q = np.zeros((n_states, n_actions))
        self.rng = np.random.default_rng(seed)

    def act(self, obs: int, greedy: bool = False) -> int:
        if not greedy and self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.Q.shape[1]))
        q = self.Q[obs]
        return int(self.rng.choice(np.flatnonzero(q == q.max())))  # break ties at random

    def observe(self, obs: int, action: int, reward: float, next_obs: int, terminated: bool, truncated: bool) -> None:
        # TD target r + gamma (1 - d) max_a' Q(s', a'); a time-limit truncation still bootstraps
        target = reward + (0.0 if terminated else self.gamma * self.Q[next_obs].max())
        self.Q[obs, action] += self.lr * (target - self.Q[obs, action])

    def greedy_policy(self) -> np.ndarray:
        return self.Q.argmax(axis=1)
