"""Multilayer perceptron: the configurable `dlterms.nn.MLP` counted, on XOR, and on MNIST-1D.

1. Parameters: for several layer-size lists the MLP's parameter count equals
   sum(n_in * n_out + n_out) over its layers (weights plus biases), and sum(n_in * n_out) without biases.
2. XOR: the four points (0,0), (0,1), (1,0), (1,1) with labels 0, 1, 1, 0 are not linearly separable
   (a linear classifier gets at most 3 of 4). A 2-8-2 tanh MLP classifies all four correctly ("solved
   exactly", the spec), with probability >= 0.9 on the right class; logistic regression is shown beside.
3. MNIST-1D: the 40-256-256-256-256-10 ReLU MLP with dropout 0.2 (the one `deep-learning` uses),
   Adam with a cosine-annealed step size, 25 epochs: test accuracy >= 68 % (the paper's MLP row).

Thresholds: docs/experiments.md#mlp.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import Split, mnist1d
from dlterms.experiments.foundations._common import mnist1d_mlp, plot_decision_regions, train_classifier
from dlterms.nn import MLP, softmax
from dlterms.run import Run, experiment
from dlterms.training import count_parameters, predict

SIZE_CASES = [[2, 2], [2, 8, 2], [40, 256, 256, 256, 256, 10], [784, 512, 128, 10], [3, 1, 1, 1]]


@dataclass(frozen=True)
class Config:
    """Parameters of the mlp experiment; the defaults are the recorded run."""

    xor_hidden: int = 8  # hidden tanh units for XOR
    xor_epochs: int = 300  # full-batch Adam steps on the 4 XOR points
    xor_lr: float = 0.05  # Adam step size on XOR (MLP and linear model)
    mnist_epochs: int = 25  # training epochs on MNIST-1D
    mnist_lr: float = 2e-3  # Adam step size on MNIST-1D (cosine-annealed to 0)
    batch_size: int = 100  # minibatch size on MNIST-1D

    def __post_init__(self) -> None:
        for name in ("xor_hidden", "xor_epochs", "mnist_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


@experiment("mlp", config=Config)
def mlp(run: Run, cfg: Config) -> None:

    # 1. Parameter count = sum(n_in * n_out + n_out).
    mismatches = []
    for sizes in SIZE_CASES:
        for use_bias in (True, False):
            counted = count_parameters(MLP(sizes, bias=use_bias))
            formula = sum(i * o + (o if use_bias else 0) for i, o in zip(sizes[:-1], sizes[1:], strict=True))
            if counted != formula:
                mismatches.append((sizes, use_bias, counted, formula))
    run.metric("parameters_mnist1d_mlp", count_parameters(mnist1d_mlp()))
    run.check(
        "parameter count equals sum(in*out + out) (and sum(in*out) without biases)",
        not mismatches,
        observed=f"{2 * len(SIZE_CASES) - len(mismatches)}/{2 * len(SIZE_CASES)} layer-size lists agree",
        expected=f"{2 * len(SIZE_CASES)}/{2 * len(SIZE_CASES)}",
    )

    # 2. XOR.
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1, 0])
    xor = Split(x, y, x, y)  # the task is to fit these four points; "test" = the same four
    torch.manual_seed(run.seed)
    net = MLP([2, cfg.xor_hidden, 2], activation="tanh")
    acc_xor, _ = train_classifier(
        net, xor, lr=cfg.xor_lr, epochs=cfg.xor_epochs, batch_size=None, seed=run.seed, device=run.device
    )
    p_right = softmax(predict(net, x.to(run.device)), -1).cpu()[torch.arange(4), y].min().item()
    torch.manual_seed(run.seed)
    linear = MLP([2, 2])
    acc_lin, _ = train_classifier(
        linear, xor, lr=cfg.xor_lr, epochs=cfg.xor_epochs, batch_size=None, seed=run.seed, device=run.device
    )
    run.metric("xor_acc_mlp", acc_xor)
    run.metric("xor_min_prob_correct", p_right)
    run.metric("xor_acc_linear", acc_lin)
    run.check(
        "a 2-8-2 MLP solves XOR exactly (4/4, each with probability >= 0.9)",
        acc_xor == 1.0 and p_right >= 0.9,
        observed=f"{int(round(acc_xor * 4))}/4, min p = {p_right:.3f}",
        expected="4/4, min p >= 0.9",
    )
    run.progress(0.2, "XOR solved")

    # 3. MNIST-1D.
    data = mnist1d().to(run.device)
    torch.manual_seed(run.seed)
    model = mnist1d_mlp()
    acc, hist = train_classifier(
        model,
        data,
        lr=cfg.mnist_lr,
        epochs=cfg.mnist_epochs,
        batch_size=cfg.batch_size,
        seed=run.seed,
        device=run.device,
        cosine=True,
        val=True,
    )
    run.metric("test_acc_mnist1d", acc, key=True)
    run.check_ge("the MLP reaches the paper's 68 % on MNIST-1D", acc, 0.68)

    with run.figure(
        "xor-and-mnist1d",
        alt="left: XOR's four points with the MLP's curved decision regions; right: "
        "MNIST-1D test accuracy per epoch, crossing 68 percent",
        figsize=(10, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        plot_decision_regions(ax1, net, x, y, f"XOR: MLP {acc_xor:.0%}, linear model {acc_lin:.0%}", point_size=60)
        ax2.plot(range(1, len(hist.val_acc) + 1), hist.val_acc, color="tab:blue", label="MLP 4x256, dropout 0.2")
        ax2.axhline(0.68, color="tab:blue", ls="--", lw=1, label="paper: 68 %")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("test accuracy")
        ax2.set_title(f"MNIST-1D: {acc:.1%}", fontsize=10)
        ax2.legend(fontsize=8)
