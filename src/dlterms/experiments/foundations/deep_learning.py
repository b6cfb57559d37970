"""Deep learning: learned representations against a linear model on raw input, on MNIST-1D.

MNIST-1D (Greydanus, 2020, "Scaling down deep learning") turns the ten digits into 1-D templates,
then pads, stretches, shifts (circularly), shears and adds correlated and white noise, giving 4000
training and 1000 test signals of length 40. A linear model on the raw 40 numbers cannot undo a
shift; layers that learn their own features can. The paper's row is: logistic regression 32 %,
MLP 68 %, CNN 94 % test accuracy. We reproduce it (the spec: logistic within 2 points of 32 %,
MLP >= 68 %, CNN >= 94 %) on the paper's dataset (generator seed 42), with weights and batch order
seeded by the run's seed:

- logistic regression: one `dlterms.nn.Linear` 40 -> 10, softmax cross-entropy;
- MLP: `dlterms.nn.MLP` 40-256-256-256-256-10, ReLU, dropout 0.2 (a 100-unit MLP stalls near 65 %
  in this budget; depth and dropout get past 68 %);
- CNN: three blocks Conv1d -> BatchNorm1d -> ReLU -> MaxPool1d(2) (16, 32, 32 channels; lengths
  40 -> 20 -> 10 -> 5), then a Linear 160 -> 10, all from `dlterms.nn`. The paper's ConvBase
  (strided convolutions, no normalisation) needs far more steps; batch normalisation reaches 94 %
  in 8 epochs on every seed we tried (0, 1, 2: 96-97 %).

All three use Adam with a cosine-annealed step size and batches of 100, through `dlterms.training.fit`.

Thresholds: docs/experiments.md#deep-learning.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import mnist1d
from dlterms.experiments.foundations._common import mnist1d_cnn_bn, mnist1d_mlp, train_classifier
from dlterms.nn import MLP
from dlterms.run import Run, experiment
from dlterms.training import count_parameters

PAPER = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94}  # Greydanus (2020), table 1


@dataclass(frozen=True)
class Config:
    """Parameters of the deep-learning experiment; the defaults are the recorded run."""

    data_seed: int = 42  # MNIST-1D generator seed: the paper's dataset
    batch_size: int = 100  # minibatch size of all three models
    epochs_logistic: int = 30  # training epochs of logistic regression
    lr_logistic: float = 1e-2  # Adam step size of logistic regression (cosine-annealed to 0)
    epochs_mlp: int = 25  # training epochs of the MLP
    lr_mlp: float = 2e-3  # Adam step size of the MLP (cosine-annealed to 0)
    epochs_cnn: int = 8  # training epochs of the CNN
    lr_cnn: float = 1e-2  # Adam step size of the CNN (cosine-annealed to 0)

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs_logistic", "epochs_mlp", "epochs_cnn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


@experiment("deep-learning", config=Config)
def deep_learning(run: Run, cfg: Config) -> None:
    flat = mnist1d(seed=cfg.data_seed).to(run.device)  # (N, 40)
    signals = mnist1d(seed=cfg.data_seed, channels=True).to(run.device)  # (N, 1, 40)
    run.progress(0.1, "MNIST-1D ready")

    models = {"logistic": lambda: MLP([40, 10]), "mlp": mnist1d_mlp, "cnn": mnist1d_cnn_bn}
    plan = {
        "logistic": (flat, cfg.lr_logistic, cfg.epochs_logistic),
        "mlp": (flat, cfg.lr_mlp, cfg.epochs_mlp),
        "cnn": (signals, cfg.lr_cnn, cfg.epochs_cnn),
    }
    accs, curves, n_params = {}, {}, {}
    for i, (name, build) in enumerate(models.items()):
        torch.manual_seed(run.seed)
        model = build()
        data, lr, epochs = plan[name]
        accs[name], hist = train_classifier(
            model,
            data,
            lr=lr,
            epochs=epochs,
            batch_size=cfg.batch_size,
            seed=run.seed,
            device=run.device,
            cosine=True,
            val=True,
        )
        curves[name] = hist.val_acc
        n_params[name] = count_parameters(model)
        run.progress(0.1 + 0.3 * (i + 1), f"{name} trained")

    for name in models:
        run.metric(f"test_acc_{name}", accs[name], key=name == "cnn")
        run.metric(f"parameters_{name}", n_params[name])
    gap = abs(accs["logistic"] - PAPER["logistic"])
    run.check(
        "logistic regression on raw signals is within 2 points of the paper's 32 %",
        gap <= 0.02,
        observed=accs["logistic"],
        expected="0.30 to 0.34",
    )
    run.check_ge("an MLP's learned features reach the paper's 68 %", accs["mlp"], PAPER["mlp"])
    run.check_ge("a CNN's learned, shift-tolerant features reach the paper's 94 %", accs["cnn"], PAPER["cnn"])
    run.check(
        "deeper learned representations rank logistic < MLP < CNN",
        accs["logistic"] < accs["mlp"] < accs["cnn"],
        observed=[accs[k] for k in models],
        expected="increasing",
    )

    with run.figure(
        "mnist1d",
        alt="test accuracy per epoch on MNIST-1D for logistic regression, an MLP and a "
        "CNN, with the paper's 32, 68 and 94 percent as dashed lines",
    ) as fig:
        ax = fig.subplots()
        colors = {"logistic": "tab:grey", "mlp": "tab:blue", "cnn": "tab:red"}
        labels = {"logistic": "logistic regression", "mlp": "MLP (4x256, dropout)", "cnn": "CNN (3 conv blocks)"}
        for name, curve in curves.items():
            ax.plot(
                range(1, len(curve) + 1),
                curve,
                color=colors[name],
                lw=1.8,
                label=f"{labels[name]}: {accs[name]:.1%} ({n_params[name]:,} params)",
            )
            ax.axhline(PAPER[name], color=colors[name], ls="--", lw=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.set_title("MNIST-1D: learned representations vs a linear model (dashed: paper)", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
