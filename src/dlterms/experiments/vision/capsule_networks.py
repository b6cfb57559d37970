"""Capsule networks: a small CapsNet with dynamic routing on 8x8 digits.

Trained with the margin loss for 10 epochs (the spec: >= 95 % test accuracy). Then measured on the
test set: (1) capsule length behaves as a class probability: the true class's capsule is long (mean
near 0.9) and the others short (near 0.1 or below), and when the network is wrong its longest capsule
is shorter than when it is right; (2) routing by agreement sharpens the coupling coefficients: their
mean entropy, log 10 = 2.303 nats after one iteration (uniform), falls with every further iteration.

Thresholds: docs/experiments.md#capsule-networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.models.cnn import CapsNet, count_parameters
from dlterms.nn.capsules import coupling_entropy, margin_loss
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the capsule-networks experiment; the defaults are the recorded run."""

    epochs: int = 10  # training epochs
    routing: int = 3  # routing-by-agreement iterations used in training
    lr: float = 3e-3  # Adam step size
    batch_size: int = 64  # mini-batch size
    iterations: tuple[int, ...] = (1, 2, 3, 4, 5)  # routing iterations whose coupling entropy is measured

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.routing < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs, routing, batch_size must be >= 1, got {self.epochs!r}, {self.routing!r}, {self.batch_size!r}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if len(self.iterations) < 2 or self.iterations[0] != 1 or list(self.iterations) != sorted(set(self.iterations)):
            raise ValueError(f"iterations must start at 1 and rise strictly, got {self.iterations!r}")


@experiment("capsule-networks", config=Config)
def capsule_networks(run: Run, cfg: Config) -> None:
    ITERATIONS = cfg.iterations
    d = digits(images=True).to(run.device)
    torch.manual_seed(run.seed)
    model = CapsNet(iterations=cfg.routing).to(run.device)
    opt = Adam(model.parameters(), lr=cfg.lr)
    fit(
        model,
        (d.x_train, d.y_train),
        loss_fn=margin_loss,
        optimizer=opt,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=run.seed,
    )
    model.eval()
    acc = accuracy(model, d.x_test, d.y_test)
    run.progress(0.8, "CapsNet trained")

    with torch.no_grad():
        lengths = model(d.x_test)  # (N, 10)
        true_len = lengths.gather(1, d.y_test.view(-1, 1))[:, 0]
        other = lengths.scatter(1, d.y_test.view(-1, 1), float("nan"))
        other_len = other[~other.isnan()]
        top, pred = lengths.max(1)
        right = pred == d.y_test
        top_right, top_wrong = top[right].mean().item(), top[~right].mean().item() if (~right).any() else math.nan
        entropy = []
        for r in ITERATIONS:
            model.capsules(d.x_test, iterations=r)
            entropy.append(coupling_entropy(model.digits.last_coupling).item())

    run.metric("test_acc", acc, key=True)
    run.metric("params", count_parameters(model))
    run.metric("mean_length_true_class_capsule", true_len.mean().item())
    run.metric("mean_length_other_capsules", other_len.mean().item())
    run.metric("mean_top_length_when_right", top_right)
    run.metric("mean_top_length_when_wrong", top_wrong)
    run.metric("coupling_entropy_by_iterations", dict(zip(ITERATIONS, entropy)))
    run.check_ge("the CapsNet reaches >= 95 % on digits", acc, 0.95)
    run.check_ge("the true class's capsule is long (mean length >= 0.8)", true_len.mean().item(), 0.8)
    run.check_le("the other capsules are short (mean length <= 0.2)", other_len.mean().item(), 0.2)
    run.check_le(
        "wrong predictions come with shorter winning capsules than right ones", top_wrong, top_right, strict=True
    )
    run.metric("coupling_entropy_one_iteration_minus_log10", entropy[0] - math.log(10))
    run.check_le(
        "one routing iteration leaves the couplings uniform (entropy log 10)",
        abs(entropy[0] - math.log(10)),
        1e-5,
        strict=True,
    )
    run.check(
        "each further routing iteration lowers the coupling entropy",
        all(b < a for a, b in zip(entropy, entropy[1:])),
        observed=entropy,
        expected="strictly decreasing",
    )

    with run.figure(
        "capsules",
        alt="capsule lengths for the true class and the others, and coupling entropy against routing iterations",
        figsize=(9, 3.4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        ax1.hist(other_len.cpu(), bins=30, range=(0, 1), alpha=0.6, density=True, label="other classes")
        ax1.hist(true_len.cpu(), bins=30, range=(0, 1), alpha=0.6, density=True, label="true class")
        ax1.set(xlabel="capsule length |v|", ylabel="density", title="length as probability")
        ax1.legend()
        ax2.plot(ITERATIONS, entropy, "o-")
        ax2.axhline(math.log(10), ls=":", c="grey", label="uniform (log 10)")
        ax2.set(
            xlabel="routing iterations",
            ylabel="mean coupling entropy (nats)",
            title="routing sharpens c_ij",
            xticks=ITERATIONS,
        )
        ax2.legend()
