"""Batch normalization: a 10-layer ReLU MLP reaches the target in a fraction of the steps with batch norm,
and keeps training at learning rates where the same net without it diverges or stalls.

scikit-learn's digits (1347 train / 450 test), ten Linear layers (width 256, He-normal init, zero
biases), SGD with momentum 0.9, batch 64 with the last partial batch dropped (a batch of 3 would give
batch norm meaningless statistics), at most 5 epochs (105 steps). The plain net and the same net with a
`BatchNorm1d` after every hidden Linear are each trained at every learning rate of the same grid
(0.003 to 0.3, factors of about 3); test accuracy is measured every 5 steps, and a run stops when it
reaches 0.9 or its loss stops being finite. Each arm is judged at its own best rate, the one that
reaches 0.9 in the fewest steps (the spec: "diverges, or reaches the target in <= half the epochs";
counted here in steps, which is finer than epochs).

Checks: at their best rates, batch norm reaches 0.9 in at most half the plain net's steps; the largest
rate at which batch norm still reaches 0.9 is above every rate at which the plain net does; and the
comparison is not empty: the plain net reaches 0.9 too, at its own best rate. Where the plain net fails
at the larger rates it mostly diverges (non-finite loss) and sometimes only stalls far below 0.9: both
are recorded per rate. (He init matters: with PyTorch's default init the plain net never leaves chance,
and the comparison says nothing.) The best rate is chosen on the test accuracy the target is measured
on, the same way for both arms.

Thresholds: docs/experiments.md#batch-normalization.
"""

from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.nn import BatchNorm1d, Linear, ReLU
from dlterms.nn.init import kaiming_normal_, zeros_
from dlterms.optim import SGD
from dlterms.run import Run, experiment
from dlterms.training import Every, TrainState, accuracy, fit

TARGET = 0.9  # test accuracy
EVERY = 5  # steps between test-accuracy measurements


@dataclass(frozen=True)
class Config:
    """Parameters of the batch-normalization experiment; the defaults are the recorded run."""

    depth: int = 10  # Linear layers of the MLP
    width: int = 256  # units of each hidden layer
    epochs: int = 5  # training epochs at most (a run stops at the target)
    batch_size: int = 64  # minibatch size (the last partial batch is dropped)
    momentum: float = 0.9  # SGD momentum
    lrs: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3)  # the learning-rate grid both nets are trained at

    def __post_init__(self) -> None:
        if self.depth < 2 or self.width < 1:
            raise ValueError(f"depth must be >= 2 and width >= 1, got {self.depth!r} and {self.width!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs!r}")
        if not 2 <= self.batch_size <= 1347:
            raise ValueError(f"batch_size must be in [2, 1347] (batch statistics need 2), got {self.batch_size!r}")
        if not self.lrs or min(self.lrs) <= 0:
            raise ValueError(f"lrs must be positive step sizes, got {self.lrs!r}")


def _deep_mlp(batch_norm: bool, seed: int, cfg: Config) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    d = 64
    for _ in range(cfg.depth - 1):
        lin = Linear(d, cfg.width)
        kaiming_normal_(lin.weight, nonlinearity="relu")
        zeros_(lin.bias)
        layers += [lin, BatchNorm1d(cfg.width), ReLU()] if batch_norm else [lin, ReLU()]
        d = cfg.width
    layers.append(Linear(d, 10))
    return torch.nn.Sequential(*layers)


def _steps_to_target(x, y) -> Every:
    """Test accuracy every EVERY steps (`.at`, `.values`); training stops at the first one >= TARGET."""

    def measure(state: TrainState) -> float:
        a = accuracy(state.model, x, y)
        if a >= TARGET:
            state.stop, state.stop_reason = True, f"test accuracy >= {TARGET}"
        return a

    return Every(EVERY, measure)


@experiment("batch-normalization", config=Config)
def batch_normalization(run: Run, cfg: Config) -> None:
    split = digits(seed=run.seed).to(run.device)
    results = {}
    for i, (bn, lr) in enumerate((bn, lr) for bn in (False, True) for lr in cfg.lrs):
        model = _deep_mlp(bn, run.seed, cfg).to(run.device)
        track = _steps_to_target(split.x_test, split.y_test)
        h = fit(
            model,
            (split.x_train, split.y_train),
            loss_fn=cross_entropy,
            optimizer=SGD(model.parameters(), lr=lr, momentum=cfg.momentum),
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            drop_last=True,
            seed=run.seed,
            callbacks=[track],
        )
        hit = next((step for step, a in zip(track.at, track.values) if a >= TARGET), None)
        results[(bn, lr)] = dict(hit=hit, acc=list(zip(track.at, track.values)), h=h)
        run.progress((i + 1) / (2 * len(cfg.lrs)), f"lr {lr} {'with' if bn else 'without'} BN")
    for bn in (False, True):
        tag = "bn" if bn else "plain"
        run.metric(f"steps_to_{TARGET}_{tag}_per_lr", {str(lr): results[(bn, lr)]["hit"] for lr in cfg.lrs})
        run.metric(
            f"best_test_acc_{tag}_per_lr",
            {str(lr): max((a for _, a in results[(bn, lr)]["acc"]), default=0) for lr in cfg.lrs},
        )
        run.metric(
            f"nonfinite_loss_step_{tag}_per_lr", {str(lr): results[(bn, lr)]["h"].nonfinite_step for lr in cfg.lrs}
        )

    def best(bn: bool):
        hits = [lr for lr in cfg.lrs if results[(bn, lr)]["hit"] is not None]
        return min(hits, key=lambda lr: results[(bn, lr)]["hit"]) if hits else None

    b_plain, b_bn = best(False), best(True)
    s_plain = results[(False, b_plain)]["hit"] if b_plain is not None else None
    s_bn = results[(True, b_bn)]["hit"] if b_bn is not None else None
    run.metric("best_lr_plain_vs_bn", [b_plain, b_bn])
    run.metric(f"steps_to_{TARGET}_at_best_lr_plain_vs_bn", [s_plain, s_bn], key=True)
    run.check(
        f"each at its best learning rate, batch norm reaches {TARGET} test accuracy in <= half the plain net's steps",
        s_bn is not None and (s_plain is None or 2 * s_bn <= s_plain),
        observed=f"{s_bn} steps (lr {b_bn}) vs {s_plain} steps (lr {b_plain})",
        expected="bn <= plain / 2",
    )
    top = {
        bn: max((lr for lr in cfg.lrs if results[(bn, lr)]["hit"] is not None), default=None) for bn in (False, True)
    }
    run.metric(f"largest_lr_reaching_{TARGET}_plain_vs_bn", [top[False], top[True]])
    run.check(
        f"batch norm still reaches {TARGET} at a larger learning rate than any at which the plain net does",
        top[True] is not None and (top[False] is None or top[True] > top[False]),
        observed=f"{top[True]} vs {top[False]}",
        expected="bn > plain",
    )
    run.check(
        "the comparison is not empty: the plain net reaches the target too, at its best rate",
        s_plain is not None,
        observed=f"{s_plain} steps at lr {b_plain}" if s_plain is not None else "never",
        expected=f">= {TARGET} within {cfg.epochs} epochs",
    )

    with run.figure(
        "curves",
        alt="test accuracy against steps of a 10-layer MLP with and without batch norm at each "
        "learning rate: batch norm passes 0.9 within about 20 steps at 0.1 and still trains at 0.3, where the "
        "plain net diverges or stalls; the plain net's best needs 40-65 steps",
        figsize=(10, 4),
    ) as fig:
        axes = fig.subplots(1, 2, sharey=True)
        for ax, bn in zip(axes, (False, True)):
            for j, lr in enumerate(cfg.lrs):
                r = results[(bn, lr)]
                steps = [s for s, _ in r["acc"]]
                label = f"lr {lr}" + (" (diverged)" if r["h"].diverged else "")
                ax.plot(steps, [a for _, a in r["acc"]], marker="o", ms=2, color=f"C{j}", label=label)
            ax.axhline(TARGET, color="grey", linestyle="--", linewidth=0.8)
            ax.set_xlabel("step")
            ax.set_title(f"{'with' if bn else 'without'} batch norm", fontsize=10)
            ax.legend(fontsize=7)
            ax.set_ylim(0, 1)
        axes[0].set_ylabel("test accuracy")
        fig.suptitle("10-layer MLP, He init, SGD momentum 0.9", fontsize=10)
