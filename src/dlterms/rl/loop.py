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

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = [
    "Agent",
    "Episode",
    "TrainLog",
    "VectorTrainLog",
    "run_episode",
    "evaluate",
    "evaluate_vector",
    "train",
    "train_vector",
]


class Agent(Protocol):
    def act(self, obs: Any, greedy: bool = False) -> Any: ...

    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None: ...


@dataclass
class Episode:
    """What one episode produced."""

    ret: float  # undiscounted return
    length: int  # steps taken
    terminated: bool  # ended in a terminal state (False: truncated)


def run_episode(env, agent: Agent, *, learn: bool = True, greedy: bool = False, seed: int | None = None) -> Episode:
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


@dataclass
class TrainLog:
    """What `train` recorded: one entry per training episode, and the greedy evaluations."""

    returns: list[float]  # training (exploring) return of each episode
    end_steps: list[int]  # environment steps taken when each episode ended
    evals: list[tuple[int, float]]  # (steps, mean greedy return of the quick check)
    solved_step: int | None = None  # steps when the confirmed evaluation first reached the threshold
    confirm_returns: list[float] | None = None  # the confirming evaluation's returns
    steps: int = 0


def train(
    env,
    agent: Agent,
    *,
    max_steps: int,
    seed: int = 0,
    eval_env=None,
    eval_every: int = 20,
    eval_episodes: int = 5,
    confirm_episodes: int = 20,
    threshold: float | None = None,
    eval_seed: int = 1_000_000,
    on_episode=None,
) -> TrainLog:
    """Train `agent` on `env` for at most `max_steps` environment steps (whole episodes).

    Stopping rule: after every `eval_every` training episodes the greedy policy plays `eval_episodes`
    episodes on `eval_env` (env seeds eval_seed, eval_seed+1, ...); if their mean return reaches
    `threshold`, `confirm_episodes` greedy episodes (seeds eval_seed, ...) decide, and training stops
    when their mean reaches it too. Training episode i uses env seed seed + i.
    `agent.steps` is not assumed: steps are counted here.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if eval_every < 1 or eval_episodes < 1 or confirm_episodes < 1:
        raise ValueError(
            "eval_every, eval_episodes and confirm_episodes must be >= 1, got "
            f"{eval_every}, {eval_episodes}, {confirm_episodes}"
        )
    log = TrainLog([], [], [])
    steps, i = 0, 0
    while steps < max_steps:
        ep = run_episode(env, agent, learn=True, seed=seed + i)
        i += 1
        steps += ep.length
        log.returns.append(ep.ret)
        log.end_steps.append(steps)
        if on_episode is not None:
            on_episode(steps, ep)
        if eval_env is not None and i % eval_every == 0:
            quick = sum(evaluate(eval_env, agent, eval_episodes, eval_seed)) / eval_episodes
            log.evals.append((steps, quick))
            if threshold is not None and quick >= threshold:
                confirm = evaluate(eval_env, agent, confirm_episodes, eval_seed)
                if sum(confirm) / confirm_episodes >= threshold:
                    log.solved_step, log.confirm_returns = steps, confirm
                    break
    log.steps = steps
    return log


def evaluate_vector(env, agent, episodes: int, seed: int = 0) -> np.ndarray:
    """Greedy returns of `episodes` episodes for each of the agent's K members, (K, episodes), no learning.

    `env` is a vector env with K * episodes environments (member k plays environments k * episodes, ...,
    (k + 1) * episodes - 1), reset with `seed`; each environment's first episode counts.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    k = agent.members
    if env.num_envs != k * episodes:
        raise ValueError(f"env must have members * episodes = {k * episodes} environments, got {env.num_envs}")
    obs, _ = env.reset(seed=seed)
    done = np.zeros(env.num_envs, dtype=bool)
    ret = np.zeros(env.num_envs)
    while not done.all():
        a = agent.act(obs.reshape(k, episodes, -1), greedy=True).reshape(-1)  # (K, E) -> (K * E,)
        obs, reward, terminated, truncated, _ = env.step(a)
        ret += np.where(done, 0.0, reward)  # G = sum of rewards until each env's first episode ends
        done |= terminated | truncated
    return ret.reshape(k, episodes)


@dataclass
class VectorTrainLog:
    """What `train_vector` recorded, per member: training episodes and the greedy evaluations."""

    returns: list[list[float]]  # returns[k]: member k's training (exploring) return of each episode
    end_steps: list[list[int]]  # steps when each of member k's episodes ended
    eval_steps: list[int] = field(default_factory=list)  # steps at which the evaluations were made
    eval_returns: list[np.ndarray] = field(default_factory=list)  # one (K, episodes) array per evaluation
    steps: int = 0


def train_vector(
    env,
    agent,
    *,
    steps: int,
    seed: int = 0,
    eval_env=None,
    eval_every: int = 1000,
    eval_episodes: int = 20,
    eval_seed: int = 1_000_000,
) -> VectorTrainLog:
    """Train the K members of `agent` for exactly `steps` environment steps each, on `env`, a vector env
    of K environments that resets an environment in the same step its episode ends (gymnasium's
    `AutoresetMode.SAME_STEP`, which returns the final observation in `info["final_obs"]`).

    Environment k is seeded seed + k. Every `eval_every` steps (and after the last) each member's greedy
    policy plays `eval_episodes` episodes on `eval_env` (`evaluate_vector`, reset with `eval_seed`).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")
    k = agent.members
    if env.num_envs != k:
        raise ValueError(f"env must have one environment per member ({k}), got {env.num_envs}")
    log = VectorTrainLog([[] for _ in range(k)], [[] for _ in range(k)])
    obs, _ = env.reset(seed=[seed + i for i in range(k)])
    ret = np.zeros(k)
    for t in range(1, steps + 1):
        actions = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(actions)
        ended = terminated | truncated
        true_next = next_obs
        if ended.any():  # the env has already reset these; the transition's s' is the final observation
            true_next = next_obs.copy()
            for i in np.flatnonzero(ended):
                true_next[i] = info["final_obs"][i]
        agent.observe(obs, actions, reward, true_next, terminated)
        ret += reward
        for i in np.flatnonzero(ended):
            log.returns[i].append(float(ret[i]))
            log.end_steps[i].append(t)
            ret[i] = 0.0
        obs = next_obs
        if eval_env is not None and (t % eval_every == 0 or t == steps):
            log.eval_steps.append(t)
            log.eval_returns.append(evaluate_vector(eval_env, agent, eval_episodes, eval_seed))
    log.steps = steps
    return log
