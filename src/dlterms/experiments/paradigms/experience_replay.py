"""Experience replay: DQN on CartPole-v1 with a replay buffer, against the same agent updating online.

Agent: Double DQN, MLP 4-64-64-2, Adam lr 1e-3, Huber loss, gradient norm clipped at 10, soft target
updates (tau = 0.01), epsilon 1 -> 0.05 over 3000 steps, first update after 500 steps, one update every
2 steps. With replay it trains on mini-batches of 64 drawn uniformly from the last 20 000 transitions;
online it trains on the transition it just saw (the DQN paper's ablation). Nothing else differs.

Stopping and evaluation rule (`dlterms.rl.loop.train`): every 5 training episodes the greedy policy
plays 5 episodes; when their mean return reaches 195, 20 greedy episodes (fixed env seeds, no
exploration, no learning, capped at CartPole-v1's 500 steps) decide, and the run stops as soon as
their mean is >= 195. A replay run may use at most 25 000 environment steps. The online agent of
the same seed gets exactly the environment steps the replay agent needed (same budget, same rule).
Three seeds (3 * run.seed + 0, 1, 2). After its success each replay agent trains 2000 more steps
and is evaluated again (20 episodes), to show whether it stays solved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from dlterms.nn import MLP
from dlterms.rl.dqn import DQN
from dlterms.rl.loop import evaluate, train
from dlterms.rl.replay import ReplayBuffer
from dlterms.run import Run, experiment


@dataclass
class Config:
    seeds: int = 3  # independent runs
    max_steps: int = 25_000  # environment steps allowed to one replay run
    threshold: float = 195.0  # mean greedy return over 20 episodes that counts as solved
    hidden: int = 64  # units in each of the two hidden layers
    capacity: int = 20_000  # replay buffer size
    batch_size: int = 64  # replayed transitions per update
    lr: float = 1e-3  # Adam step size
    tau: float = 0.01  # soft target update weight
    eps_decay_steps: int = 3000  # steps over which epsilon falls from 1 to 0.05
    learning_starts: int = 500  # steps of acting before the first update
    train_every: int = 2  # environment steps per gradient update
    eval_every: int = 5  # training episodes between greedy checks
    after_steps: int = 2000  # extra training steps after success, to probe stability


def _agent(cfg: Config, seed: int, replay: bool, device: str) -> DQN:
    torch.manual_seed(seed)
    q = MLP([4, cfg.hidden, cfg.hidden, 2]).to(device)
    buf = ReplayBuffer(cfg.capacity, 4) if replay else None
    return DQN(
        q,
        2,
        lr=cfg.lr,
        gamma=0.99,
        buffer=buf,
        batch_size=cfg.batch_size,
        learning_starts=cfg.learning_starts,
        train_every=cfg.train_every,
        tau=cfg.tau,
        eps_decay_steps=cfg.eps_decay_steps,
        eps_end=0.05,
        double=True,
        max_grad_norm=10.0,
        generator=torch.Generator().manual_seed(seed),
    )


@experiment("experience-replay")
def experience_replay(run: Run) -> None:
    cfg = Config()
    env, eval_env = gym.make("CartPole-v1"), gym.make("CartPole-v1")
    seeds = [3 * run.seed + k for k in range(cfg.seeds)]
    rows = []
    for k, seed in enumerate(seeds):
        t0, c0 = time.perf_counter(), time.process_time()
        agent = _agent(cfg, seed, True, run.device)
        log_r = train(
            env,
            agent,
            max_steps=cfg.max_steps,
            seed=seed * 100_000,
            eval_env=eval_env,
            threshold=cfg.threshold,
            eval_every=cfg.eval_every,
        )
        secs_r, cpu_r = time.perf_counter() - t0, time.process_time() - c0
        run.progress((k + 0.5) / cfg.seeds, f"seed {seed}: replay done")
        after = None
        if log_r.solved_step is not None:
            train(env, agent, max_steps=cfg.after_steps, seed=seed * 100_000 + 50_000)
            after = float(np.mean(evaluate(eval_env, agent, 20, 1_000_000)))
        t1 = time.perf_counter()
        online = _agent(cfg, seed, False, run.device)
        log_o = train(
            env,
            online,
            max_steps=log_r.steps,
            seed=seed * 100_000,
            eval_env=eval_env,
            threshold=cfg.threshold,
            eval_every=cfg.eval_every,
        )
        secs_o = time.perf_counter() - t1
        run.progress((k + 1) / cfg.seeds, f"seed {seed}: online done")
        rows.append(
            {
                "seed": seed,
                "replay": log_r,
                "online": log_o,
                "secs_replay": secs_r,
                "secs_online": secs_o,
                "cpu_replay": cpu_r,
                "after": after,
            }
        )

    solved_r = [r["replay"].solved_step is not None for r in rows]
    solved_o = [r["online"].solved_step is not None for r in rows]
    for r in rows:
        s = r["seed"]
        lr_, lo = r["replay"], r["online"]
        run.metric(f"seed{s}_replay_steps_to_solve", lr_.solved_step)
        run.metric(f"seed{s}_replay_seconds", round(r["secs_replay"], 2))
        run.metric(f"seed{s}_replay_cpu_seconds", round(r["cpu_replay"], 2))
        run.metric(
            f"seed{s}_replay_eval20_mean",
            round(float(np.mean(lr_.confirm_returns)), 2) if lr_.confirm_returns else None,
        )
        run.metric(f"seed{s}_replay_eval20_after_2000_more_steps", r["after"])
        run.metric(f"seed{s}_online_budget_steps", lr_.steps)
        run.metric(f"seed{s}_online_solved", lo.solved_step is not None)
        run.metric(f"seed{s}_online_best_quick_eval", max((e for _, e in lo.evals), default=None))
        run.metric(f"seed{s}_online_seconds", round(r["secs_online"], 2))
    run.metric("replay_seeds_solved", sum(solved_r), key=True)
    run.metric("online_seeds_solved", sum(solved_o))
    run.metric("replay_steps_to_solve_spread", [r["replay"].solved_step for r in rows])
    stayed = [r["after"] is not None and r["after"] >= cfg.threshold for r in rows]
    run.metric("replay_still_solved_after_2000_more_steps", f"{sum(stayed)}/{len(rows)}")

    run.check(
        "DQN with replay reaches a greedy 20-episode mean return >= 195 on every seed",
        all(solved_r),
        observed=f"{sum(solved_r)}/{len(rows)}",
        expected=f"{len(rows)}/{len(rows)}",
    )
    worst = max(r["secs_replay"] for r in rows)
    run.check("each replay run reaches it within 60 s", worst < 60, observed=round(worst, 2), expected="< 60 s")
    run.check(
        "with the same environment steps, replay solves at least as many seeds as online updates",
        sum(solved_r) >= sum(solved_o),
        observed=f"replay {sum(solved_r)}, online {sum(solved_o)}",
        expected="replay >= online",
    )

    with run.figure(
        "returns",
        alt="training return per episode (smoothed) against environment steps for DQN "
        "with replay and online, one line per seed, and the greedy evaluations",
        figsize=(9, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2, sharey=True)
        for r, color in zip(rows, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]):
            for ax, key in ((ax1, "replay"), (ax2, "online")):
                log = r[key]
                ret = np.asarray(log.returns)
                w = min(10, len(ret))
                sm = np.convolve(ret, np.ones(w) / w, mode="valid")
                ax.plot(log.end_steps[w - 1 :], sm, color=color, label=f"seed {r['seed']}")
                if log.evals:
                    xs, ys = zip(*log.evals)
                    ax.scatter(xs, ys, color=color, s=10, marker="x")
        for ax, title in ((ax1, "with replay"), (ax2, "online (no replay), same steps")):
            ax.axhline(cfg.threshold, ls="--", c="gray")
            ax.set_title(title)
            ax.set_xlabel("environment steps")
        ax1.set_ylabel("return (lines: training, mean of 10; x: greedy checks)")
        ax1.legend()
