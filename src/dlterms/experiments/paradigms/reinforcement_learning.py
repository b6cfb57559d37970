"""Reinforcement learning: Q-learning and REINFORCE on a 5x5 grid world, checked against planning.

The grid world (`dlterms.rl.gridworld.DEFAULT_MAP`: walls, two holes at -1, a goal at +1, -0.01 per
step) has a known model, so value iteration gives the optimal action values Q*. Q-learning never
sees the model, only sampled transitions, with epsilon decaying linearly from 1 to 0.05. Claims:
its greedy policy picks an optimal action (Q*(s, a) = V*(s), ties allowed) in every reachable
non-terminal state, that policy's exact value equals V*, and returns rise over episodes; the
REINFORCE policy-gradient agent (tabular softmax policy) also raises its returns and its greedy
policy reaches the goal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.patches import Rectangle

from dlterms.optim import Adam
from dlterms.rl.gridworld import GridWorld
from dlterms.rl.loop import run_episode
from dlterms.rl.policy_gradient import REINFORCE
from dlterms.rl.tabular import QLearning, optimal_actions, policy_evaluation, value_iteration
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the reinforcement-learning experiment; the defaults are the recorded run."""

    gamma: float = 0.95  # discount, shared by planner and learners
    q_episodes: int = 2000  # Q-learning episodes
    q_lr: float = 0.5  # Q-learning step size (deterministic moves allow a large one)
    eps_start: float = 1.0  # epsilon at the first episode
    eps_end: float = 0.05  # epsilon after eps_decay of the episodes
    eps_decay: float = 0.6  # fraction of episodes over which epsilon decays linearly
    pg_episodes: int = 300  # REINFORCE episodes
    pg_lr: float = 0.1  # Adam step size of the policy logits
    window: int = 50  # moving-average window of the return curves

    def __post_init__(self) -> None:
        if not 0 < self.gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {self.gamma!r}")
        if not 0 <= self.eps_end <= self.eps_start <= 1:
            raise ValueError(f"need 0 <= eps_end <= eps_start <= 1, got {self.eps_end!r} and {self.eps_start!r}")
        if not 0 < self.eps_decay <= 1:
            raise ValueError(f"eps_decay must be in (0, 1], got {self.eps_decay!r}")
        if not 0 < self.q_lr <= 1 or not self.pg_lr > 0:
            raise ValueError(f"q_lr must be in (0, 1] and pg_lr > 0, got {self.q_lr!r} and {self.pg_lr!r}")
        if self.window < 1 or min(self.q_episodes, self.pg_episodes) < 2 * self.window:
            raise ValueError(
                f"window must be >= 1 and q_episodes, pg_episodes >= 2 * window, got {self.window!r}, "
                f"{self.q_episodes!r}, {self.pg_episodes!r}"
            )
        if int(self.eps_decay * self.q_episodes) < 1:
            raise ValueError(f"eps_decay * q_episodes must be >= 1, got {self.eps_decay!r} * {self.q_episodes!r}")


def _moving(x, w):
    x = np.asarray(x, dtype=float)
    return np.convolve(x, np.ones(w) / w, mode="valid")


@experiment("reinforcement-learning", config=Config)
def reinforcement_learning(run: Run, cfg: Config) -> None:
    env = GridWorld()
    nS, nA = env.observation_space.n, env.action_space.n
    V_star, Q_star = value_iteration(env.P, nS, nA, cfg.gamma)
    best = optimal_actions(Q_star, atol=1e-6)
    states = [s for s in range(nS) if not env.is_terminal(s) and env.cell(s) != "#"]

    agent = QLearning(nS, nA, lr=cfg.q_lr, gamma=cfg.gamma, epsilon=cfg.eps_start, seed=run.seed)
    q_returns = []
    decay_eps = int(cfg.eps_decay * cfg.q_episodes)
    for i in range(cfg.q_episodes):
        agent.epsilon = cfg.eps_end + (cfg.eps_start - cfg.eps_end) * max(0.0, 1 - i / decay_eps)
        q_returns.append(run_episode(env, agent, seed=run.seed * 100_000 + i).ret)
        if i % 200 == 0:
            run.progress(0.5 * i / cfg.q_episodes, "Q-learning")
    policy = agent.greedy_policy()
    wrong = [s for s in states if policy[s] not in best[s]]
    V_q = policy_evaluation(env.P, policy, cfg.gamma)
    gap = float(np.abs(V_q - V_star)[states].max())
    q_first, q_last = float(np.mean(q_returns[: cfg.window])), float(np.mean(q_returns[-cfg.window :]))
    run.metric("q_states_optimal", len(states) - len(wrong), key=True)
    run.metric("q_states_total", len(states))
    run.metric("q_value_gap_max", gap)
    run.metric("q_return_first", q_first)
    run.metric("q_return_last", q_last)
    run.metric("v_star_start", float(V_star[env.start]))
    run.check(
        "Q-learning's greedy policy is optimal in every non-terminal state (value iteration's Q*)",
        not wrong,
        observed=f"{len(states) - len(wrong)}/{len(states)}",
        expected=f"{len(states)}/{len(states)}",
    )
    run.check_le("the greedy policy's exact value equals V* in every state", gap, 1e-6, strict=True)
    run.check_ge("Q-learning's returns rise over episodes (first vs last 50)", q_last - q_first, 0.3, strict=True)

    torch.manual_seed(run.seed)
    net = torch.nn.Linear(nS, nA, bias=False)  # a softmax policy with one logit per (state, action)
    torch.nn.init.zeros_(net.weight)  # uniform policy at the start
    pg = REINFORCE(
        net.to(run.device),
        Adam(net.parameters(), lr=cfg.pg_lr),
        gamma=cfg.gamma,
        obs_fn=lambda o: torch.nn.functional.one_hot(torch.tensor(o), nS).float(),
        generator=run.generator(7),
    )
    pg_returns = []
    for i in range(cfg.pg_episodes):
        pg_returns.append(run_episode(env, pg, seed=run.seed * 100_000 + i).ret)
        if i % 50 == 0:
            run.progress(0.5 + 0.5 * i / cfg.pg_episodes, "REINFORCE")
    greedy_ret = run_episode(env, pg, learn=False, greedy=True).ret
    pg_first, pg_last = float(np.mean(pg_returns[: cfg.window])), float(np.mean(pg_returns[-cfg.window :]))
    run.metric("pg_return_first", pg_first)
    run.metric("pg_return_last", pg_last)
    run.metric("pg_greedy_return", greedy_ret)
    run.check_ge("REINFORCE's returns rise over episodes (first vs last 50)", pg_last - pg_first, 0.3, strict=True)
    run.check_ge("REINFORCE's greedy policy reaches the goal", greedy_ret, 0.5, strict=True)

    with run.figure(
        "returns",
        alt="moving average of the return per episode for Q-learning and REINFORCE "
        "on the grid world, and the greedy Q-learning policy drawn on the grid",
        figsize=(9, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[3, 2])
        w = cfg.window
        ax1.plot(np.arange(w, cfg.q_episodes + 1), _moving(q_returns, w), label="Q-learning")
        ax1.plot(np.arange(w, cfg.pg_episodes + 1), _moving(pg_returns, w), label="REINFORCE")
        ax1.axhline(
            run_episode(env, agent, learn=False, greedy=True).ret, ls="--", c="gray", label="optimal policy's return"
        )
        ax1.set_xscale("log")
        ax1.set_xlabel("episode")
        ax1.set_ylabel(f"return (mean of {cfg.window})")
        ax1.legend()
        arrows = {0: (-0.3, 0), 1: (0, 0.3), 2: (0.3, 0), 3: (0, -0.3)}
        for s in range(nS):
            r, c = divmod(s, env.n_cols)
            cell = env.cell(s)
            color = {"#": "k", "H": "tab:red", "G": "tab:green"}.get(cell)
            if color:
                ax2.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color=color, alpha=0.6))
            elif s in states:
                dx, dy = arrows[int(policy[s])]
                ax2.arrow(c - dx / 2, r - dy / 2, dx, dy, head_width=0.15, length_includes_head=True)
        ax2.set_xlim(-0.5, env.n_cols - 0.5)
        ax2.set_ylim(env.n_rows - 0.5, -0.5)
        ax2.set_aspect("equal")
        ax2.set_xticks([])
        ax2.set_yticks([])
        ax2.set_title("greedy Q-learning policy (= optimal)")
