"""The shared overfitting setup of the generalisation experiments (overfitting, dropout, regularization).

A large MLP (64-512-512-10) trained with Adam on 200 of scikit-learn's 8x8 digits whose training labels
are 30 % wrong (each corrupted label replaced by a different class, drawn uniformly). The other 1597
digits, with their true labels, are the test set. The network has far more parameters (300 k) than
there are examples, so it can memorise the noisy labels: training accuracy (measured against the noisy
labels it is given) climbs to 1 while test accuracy stalls, the textbook picture of overfitting.
docs/experiments.md measured the train-test gap at 0.30-0.41 on this setup; at 20 % noise the dropout and L2
effects are not reliable, which is why the noise is 30 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from dlterms.data.datasets import Split, digits
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.training import Callback, TrainState, accuracy, fit


@dataclass
class OverfitConfig:
    n_train: int = 200  # training digits; the remaining 1597 are the test set
    label_noise: float = 0.3  # fraction of training labels replaced by a different class
    hidden: tuple[int, ...] = (512, 512)  # MLP hidden widths
    epochs: int = 150  # long enough for the noisy labels to be memorised
    batch_size: int = 64
    lr: float = 1e-3  # Adam
    eval_every: int = 5  # epochs between accuracy measurements (evaluating 1797 digits costs ~ a training epoch)


@dataclass
class OverfitRun:
    """Per-epoch curves of one training run and its final numbers."""

    epochs: list[int] = field(default_factory=list)  # epochs (1-based) at which accuracies were measured
    train_acc: list[float] = field(default_factory=list)  # against the (noisy) training labels
    test_acc: list[float] = field(default_factory=list)  # against the true test labels
    weight_norm: float = 0.0  # L2 norm of all weight matrices at the end

    @property
    def gap(self) -> list[float]:
        return [a - b for a, b in zip(self.train_acc, self.test_acc, strict=True)]


def noisy_digits(cfg: OverfitConfig, seed: int) -> tuple[Split, torch.Tensor]:
    """The split (true labels everywhere) and the noisy training labels the model is trained on."""
    split = digits(test_size=1797 - cfg.n_train, seed=seed)
    rng = np.random.default_rng(seed)
    y = split.y_train.numpy().copy()
    n_noisy = int(round(cfg.label_noise * len(y)))
    idx = rng.choice(len(y), n_noisy, replace=False)
    y[idx] = (y[idx] + rng.integers(1, 10, n_noisy)) % 10  # a different class, uniformly
    return split, torch.as_tensor(y)


class _Accuracies(Callback):
    """Training accuracy (against the labels trained on) and test accuracy every `every` epochs and at the end."""

    def __init__(self, split: Split, y_train: torch.Tensor, every: int):
        self.split, self.y_train, self.every = split, y_train, every

    def on_epoch_end(self, state: TrainState) -> None:
        epoch = state.epoch + 1
        if epoch % self.every and epoch != state.epochs:
            return
        h = state.history
        h.log("epoch", epoch)
        h.log("train_acc", accuracy(state.model, self.split.x_train, self.y_train))
        h.log("test_acc", accuracy(state.model, self.split.x_test, self.split.y_test))


def train_overfit(
    cfg: OverfitConfig, seed: int, device: str = "cpu", dropout: float | None = None, penalty=None, callbacks=()
) -> OverfitRun:
    """Train the setup's MLP once. `penalty(model) -> scalar` is added to the training loss (e.g. L2);
    `dropout` puts a Dropout layer after every hidden activation."""
    split, y_noisy = noisy_digits(cfg, seed)
    split, y_noisy = split.to(device), y_noisy.to(device)
    torch.manual_seed(seed)
    model = MLP([64, *cfg.hidden, 10], dropout=dropout).to(device)

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = cross_entropy(out, y)
        if penalty is not None and model.training:  # the penalty shapes training, not the reported val loss
            loss = loss + penalty(model)
        return loss

    history = fit(
        model,
        (split.x_train, y_noisy),
        loss_fn=loss_fn,
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=seed,
        callbacks=[_Accuracies(split, y_noisy, cfg.eval_every), *callbacks],
    )
    weights = [layer.weight for layer in model.linear_layers]
    norm = float(torch.sqrt(sum((w.detach() ** 2).sum() for w in weights)))
    ex = history.extra
    return OverfitRun(
        epochs=[int(e) for e in ex["epoch"]], train_acc=ex["train_acc"], test_acc=ex["test_acc"], weight_norm=norm
    )


def plot_curves(ax, runs: dict[str, OverfitRun]) -> None:
    """Train (solid) and test (dashed) accuracy per epoch, one colour per run."""
    for i, (label, r) in enumerate(runs.items()):
        epochs = r.epochs
        ax.plot(epochs, r.train_acc, color=f"C{i}", label=f"{label}: train (noisy labels)")
        ax.plot(epochs, r.test_acc, color=f"C{i}", linestyle="--", label=f"{label}: test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
