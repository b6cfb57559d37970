"""The agent-environment loop on gymnasium's API.

At each step $t$ the agent sees $s_t$, picks $a_t \\sim \\pi(\\cdot \\mid s_t)$, and the environment
returns $r_{t+1}$, $s_{t+1}$ and whether the episode ended (`terminated`: a terminal state of the
MDP; `truncated`: a time limit, after which the agent must still bootstrap from $s_{t+1}$).
An agent is any object with

    act(obs, greedy: bool) -> action
    observe(obs, action, reward, next_obs, terminated, truncated) -> None   # learn from one step

The loop owns no learning; it only moves data between the two. The return of an episode is
$G = \\sum_t r_{t+1}$ (undiscounted, the number people report; agents discount internally).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Agent", "Episode", "run_episode", "evaluate"]


class Agent(Protocol):
    def act(self, obs: Any, greedy: bool = False) -> Any: ...

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool,
                truncated: bool) -> None: ...


@dataclass
class Episode:
    """What one episode produced."""

    ret: float  # undiscounted return
    length: int  # steps taken
    terminated: bool  # ended in a terminal state (False: truncated)


def run_episode(env, agent: Agent, *, learn: bool = True, greedy: bool = False,
                seed: int | None = None) -> Episode:
    """Play one episode of `env` with `agent`; with `learn` the agent observes every transition."""
    obs, _ = env.reset(seed=seed)
    ret, length = 0.0, 0
    while True:
        action = agent.act(obs, greedy=greedy)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        if learn:
            agent.observe(obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
        ret += float(reward)
        length += 1
        obs = next_obs
        if terminated or truncated:
            return Episode(ret, length, bool(terminated))


def evaluate(env, agent: Agent, episodes: int, seed: int = 0) -> list[float]:
    """Greedy returns of `episodes` episodes with env seeds seed, seed+1, ... and no learning."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    return [run_episode(env, agent, learn=False, greedy=True, seed=seed + i).ret for i in range(episodes)]
