"""Underfitting: a linear classifier cannot separate two concentric circles; a small MLP can.

scikit-learn's `make_circles` (1000 points, noise 0.1, inner radius 0.5; 70/30 split). A logistic
regression (one linear layer) has a straight-line boundary, so no setting of its weights gets far
above chance on either split: the spec asks for train and test accuracy both <= 0.65. The same
training with two hidden layers of 16 ReLU units must reach >= 0.95 on both.

Thresholds: docs/experiments.md#underfitting.
"""

from dataclasses import dataclass

import torch

from dlterms.data.datasets import circles
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the underfitting experiment; the defaults are the recorded run."""

    hidden: tuple[int, ...] = (16, 16)  # the MLP's hidden layer widths (the linear model has none)
    epochs: int = 60  # training epochs of each model
    lr: float = 0.01  # Adam step size of each model
    n: int = 1000  # points of the two circles (70 % train, 30 % test)
    noise: float = 0.1  # std of the Gaussian noise on each point

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be one or more widths >= 1, got {self.hidden!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs!r}")
        if self.n < 20:
            raise ValueError(f"n must be >= 20, got {self.n!r}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise!r}")


def _train(sizes, split, seed, device, cfg: Config):
    torch.manual_seed(seed)
    model = MLP(sizes).to(device)
    h = fit(
        model,
        (split.x_train, split.y_train),
        loss_fn=cross_entropy,
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=64,
        val=(split.x_test, split.y_test),
        seed=seed,
    )
    return model, h


@experiment(
    "underfitting",
    config=Config,
    sweeps=(
        Sweep(
            "hidden",
            ((1,), (2,), (4,), (16, 16)),
            "How much capacity does the MLP need before it stops underfitting the circles?",
            metric="test_acc_mlp",
        ),
    ),
)
def underfitting(run: Run, cfg: Config) -> None:
    split = circles(n=cfg.n, noise=cfg.noise, factor=0.5, seed=run.seed).to(run.device)
    lin, h_lin = _train([2, 2], split, run.seed, run.device, cfg)
    mlp, h_mlp = _train([2, *cfg.hidden, 2], split, run.seed, run.device, cfg)
    res = {}
    for name, m in (("linear", lin), ("mlp", mlp)):
        for part, x, y in (("train", split.x_train, split.y_train), ("test", split.x_test, split.y_test)):
            res[f"{name}_{part}"] = accuracy(m, x, y)
            run.metric(f"{part}_acc_{name}", res[f"{name}_{part}"], key=(name, part) == ("linear", "test"))
    run.check_le("the linear model underfits: train accuracy <= 0.65", res["linear_train"], 0.65)
    run.check_le("the linear model underfits: test accuracy <= 0.65", res["linear_test"], 0.65)
    run.check_ge("a small MLP fits: train accuracy >= 0.95", res["mlp_train"], 0.95)
    run.check_ge("a small MLP fits: test accuracy >= 0.95", res["mlp_test"], 0.95)

    with run.figure(
        "boundaries",
        alt="decision regions on the two circles: the linear model's single straight "
        "boundary leaves both classes mixed, the MLP's closed boundary separates the rings",
        figsize=(9, 4),
    ) as fig:
        axes = fig.subplots(1, 2)
        g = torch.linspace(-1.5, 1.5, 121)
        gx, gy = torch.meshgrid(g, g, indexing="xy")
        grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(run.device)  # (121*121, 2)
        x, y = split.x_test.cpu(), split.y_test.cpu()
        for ax, (name, m) in zip(
            axes, (("linear (logistic regression)", lin), (f"MLP {cfg.hidden}", mlp)), strict=True
        ):
            with torch.no_grad():
                m.eval()
                z = m(grid).argmax(1).reshape(121, 121).cpu()
            ax.contourf(gx, gy, z, levels=[-0.5, 0.5, 1.5], colors=["#cfe2f3", "#f9d9c5"])
            ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=6)
            key = "linear" if name.startswith("linear") else "mlp"
            ax.set_title(f"{name}: train {res[key + '_train']:.2f}, test {res[key + '_test']:.2f}", fontsize=9)
            ax.set_aspect("equal")
