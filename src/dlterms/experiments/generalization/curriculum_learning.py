"""Curriculum learning: a GRU learns the parity of bit strings in far fewer steps when short strings
come first, but the saving shrinks on an easy setting and mostly disappears when the pacing is slow.

Task: the parity (sum mod 2) of a bit string of length 1..T, left-padded to T with a pad token (one-hot
inputs: pad, 0, 1). A pool of 20 000 training strings with lengths uniform in 1..T; a test set of 500
more. Difficulty = length. Model: `RecurrentClassifier("gru", 3, 32, 2)` (a `dlterms.nn.GRU` read out
from its last state), Adam lr 3e-3, batch 32. The curriculum (`CurriculumSampler` with
`step_pacing(2, 1, 20)`) draws each batch from strings no longer than 2 + floor(step / 20); random order
draws from the whole pool. Test accuracy is measured every 25 steps; "steps to target" is the first
measurement at >= 0.95 (cap 1000, or 1500 for slow pacing).

Every condition runs from three seeds (run.seed, +1, +2), and the 15 runs are trained as two stacks
(`dlterms.stacked.ModelStack`): the nine at T = 40 (fast curriculum, random order, slow pacing) side
by side in one, the six at T = 3 in another. Each run is trained exactly as it would be alone (its own
initialisation, sampler stream and Adam state); only the tensor operations are issued once for all.

Checks, each on medians of the three seeds: at T = 40 the curriculum reaches the target in fewer steps
than random order (the spec; measured at seed 0: 250 vs 575). Both sides of the condition are measured
too: on an easy setting (T = 3) the saving, in steps, is smaller than at T = 40 (measured: none, 150 vs
150); and pacing five times slower (+1 every 100 steps) keeps less than half of the fast curriculum's
saving. (Slow pacing is about as fast as random order: per seed 0-4 it needed 675, 600, 575, 550, 550
steps against 575, 575, 525, 625, 650 at random, so "at least as many steps as random order", checked
here on one seed before, held at seeds 0-2 and failed at 3 and 4.) Once the GRU has learnt the
flip-flop that parity needs on short strings it generalises to long ones, which is why a fast
curriculum wins: random order faces mostly long strings, whose gradient says little until that
mechanism exists, and a slow curriculum is still on strings of 7 bits when random order gets there.

Thresholds: docs/experiments.md#curriculum-learning.
"""

import statistics
from dataclasses import dataclass, field

import torch

from dlterms.data.samplers import CurriculumSampler, step_pacing
from dlterms.data.seqtasks import parity_strings
from dlterms.losses import cross_entropy
from dlterms.models.sequence_classifier import RecurrentClassifier
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.stacked import ModelStack

TARGET, EVAL_EVERY = 0.95, 25  # test accuracy that counts as learnt; steps between test measurements


@dataclass(frozen=True)
class Config:
    """Parameters of the curriculum-learning experiment; the defaults are the recorded run."""

    hidden: int = 32  # GRU hidden units
    batch: int = 32  # strings per training batch
    lr: float = 3e-3  # Adam step size
    n_train: int = 20_000  # training strings in each pool
    n_test: int = 500  # test strings
    fast_every: int = 20  # fast curriculum: the longest allowed length grows by 1 every this many steps
    slow_every: int = 100  # slow curriculum: the same, this many steps
    cap: int = 1000  # step cap of the fast curriculum and random order (1 more: not reached)
    slow_cap: int = 1500  # step cap of the slow curriculum
    repeats: int = 3  # seeds (run.seed + k) per condition; the checks use their median

    def __post_init__(self) -> None:
        for name in ("hidden", "batch", "n_train", "n_test", "fast_every", "slow_every", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.cap < EVAL_EVERY or self.slow_cap < EVAL_EVERY:
            raise ValueError(f"cap and slow_cap must be >= {EVAL_EVERY}, got {self.cap!r} and {self.slow_cap!r}")


@dataclass
class _Arm:
    """One training run: its pacing (None: random order), seed and step cap; what it measured."""

    pacing: tuple[int, int, int] | None
    seed: int
    cap: int = 1000
    reached: int | None = None  # first evaluated step at >= TARGET test accuracy
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, test accuracy)

    @property
    def steps(self) -> int:
        return self.reached if self.reached is not None else self.cap + 1  # not reached: past the cap


def _train_side_by_side(max_len: int, arms: list[_Arm], device: str, cfg: Config, progress=None) -> None:
    """Train one GRU per arm on the parity pool of strings up to `max_len`, all arms in lockstep as one
    `ModelStack` (each arm exactly as if trained alone: its own initialisation from its seed, its own
    sampler stream, its own Adam state; see `dlterms.stacked`). Every EVAL_EVERY steps each arm still
    running is tested; an arm stops counting at the target or its cap (it may go on training in the
    stack, unobserved, while others run). Fills each arm's `reached` and `curve`."""
    x, y, length = parity_strings(cfg.n_train, max_len, seed=10_000 + max_len)
    xt, yt, _ = parity_strings(cfg.n_test, max_len, seed=20_000 + max_len)
    x, y, xt, yt = x.to(device), y.to(device), xt.to(device), yt.to(device)
    horizon = max(a.cap for a in arms)
    # (M, horizon, BATCH): arm i's batch at each step (a sampler's stream does not depend on its length)
    idx = torch.stack(
        [
            CurriculumSampler(length, cfg.batch, step_pacing(*a.pacing) if a.pacing else None, seed=a.seed)
            .indices(horizon)
            .view(horizon, cfg.batch)
            for a in arms
        ]
    ).to(device)
    models = []
    for a in arms:
        torch.manual_seed(a.seed)
        models.append(RecurrentClassifier("gru", 3, cfg.hidden, 2))
    stack = ModelStack(models).to(device)
    opt = Adam(stack.parameters(), lr=cfg.lr)
    running = [True] * len(arms)
    for step in range(1, horizon + 1):
        b = idx[:, step - 1]  # (M, BATCH)
        logits = stack(x[b])  # (M, BATCH, 2)
        # the sum over arms of each arm's mean loss: each arm's parameters get that arm's gradient
        loss = cross_entropy(logits.reshape(-1, 2), y[b].reshape(-1), reduction="none").view(len(arms), -1)
        opt.zero_grad(set_to_none=True)
        loss.mean(1).sum().backward()
        opt.step()
        if step % EVAL_EVERY:
            continue
        with torch.no_grad():
            acc = (stack(xt, shared=True).argmax(-1) == yt).float().mean(1).tolist()  # (M,)
        for i, a in enumerate(arms):
            if not running[i]:
                continue
            a.curve.append((step, acc[i]))
            if acc[i] >= TARGET:
                a.reached, running[i] = step, False
            elif step >= a.cap:
                running[i] = False
        if progress is not None:
            progress(step / horizon)
        if not any(running):
            break


@experiment("curriculum-learning", config=Config)
def curriculum_learning(run: Run, cfg: Config) -> None:
    seeds = [run.seed + k for k in range(cfg.repeats)]
    fast, slow = (2, 1, cfg.fast_every), (2, 1, cfg.slow_every)  # step_pacing(start, increment, every)
    res: dict[str, list[_Arm]] = {
        name: [_Arm(pacing, s, cap=cfg.cap) for s in seeds]
        for name, pacing in (
            ("curriculum_T40", fast),
            ("random_T40", None),
            ("curriculum_T3", fast),
            ("random_T3", None),
        )
    }
    res["slow_T40"] = [_Arm(slow, s, cap=cfg.slow_cap) for s in seeds]
    # every T = 40 run (three seeds of each pacing) side by side, then every T = 3 run
    _train_side_by_side(
        40,
        res["curriculum_T40"] + res["random_T40"] + res["slow_T40"],
        run.device,
        cfg,
        lambda f: run.progress(0.8 * f, "T = 40"),
    )
    _train_side_by_side(
        3, res["curriculum_T3"] + res["random_T3"], run.device, cfg, lambda f: run.progress(0.8 + 0.2 * f, "T = 3")
    )
    med = {}
    for name, arms in res.items():
        steps = [a.steps for a in arms]
        med[name] = statistics.median(steps)
        run.metric(f"steps_{name}", steps)
        run.metric(f"median_steps_{name}", med[name], key=name == "curriculum_T40")
    run.check(
        "T = 40: the curriculum reaches 0.95 test accuracy in fewer steps than random order (median of 3 seeds)",
        med["curriculum_T40"] < med["random_T40"],
        observed=f"{med['curriculum_T40']} vs {med['random_T40']}",
        expected="curriculum < random",
    )
    save40, save3 = med["random_T40"] - med["curriculum_T40"], med["random_T3"] - med["curriculum_T3"]
    run.metric("median_saving_T40", save40)
    run.metric("median_saving_T3", save3)
    run.check(
        "easy setting (T = 3): the saving in steps shrinks",
        save3 < save40,
        observed=f"{save3} steps saved at T = 3",
        expected=f"< {save40} (saved at T = 40)",
    )
    save_slow = med["random_T40"] - med["slow_T40"]
    run.metric("median_saving_slow_T40", save_slow)
    run.check(
        "slow pacing (+1 length every 100 steps) loses most of the advantage: it saves less than half the "
        "steps the fast curriculum saves over random order (medians of 3 seeds)",
        save_slow < save40 / 2,
        observed=f"{save_slow} steps saved (median {med['slow_T40']} vs {med['random_T40']} at random)",
        expected=f"< {save40 / 2} (half of the fast curriculum's {save40})",
    )

    with run.figure(
        "curves",
        alt="test accuracy against training steps on parity of strings up to 40 bits: the "
        "fast curriculum passes 0.95 first, random order later, slow pacing last",
    ) as fig:
        ax = fig.subplots()
        for name, r, colour in (
            (f"curriculum (+1 / {cfg.fast_every} steps)", res["curriculum_T40"][0], "C1"),
            ("random order", res["random_T40"][0], "C0"),
            (f"slow curriculum (+1 / {cfg.slow_every} steps)", res["slow_T40"][0], "C2"),
        ):
            steps, acc = zip(*r.curve, strict=True)
            ax.plot(steps, acc, color=colour, label=name)
        ax.axhline(TARGET, color="grey", linestyle=":")
        ax.set_xlabel(f"training step (batch of {cfg.batch})")
        ax.set_ylabel("test accuracy (lengths 1..40)")
        ax.set_ylim(0.4, 1.02)
        ax.legend(fontsize=8)
        ax.set_title(f"parity with a GRU, seed {run.seed}")
