"""Underfitting: a linear classifier cannot separate two concentric circles; a small MLP can.

scikit-learn's `make_circles` (1000 points, noise 0.1, inner radius 0.5; 70/30 split). A logistic
regression (one linear layer) has a straight-line boundary, so no setting of its weights gets far
above chance on either split: the spec asks for train and test accuracy both <= 0.65. The same
training with two hidden layers of 16 ReLU units must reach >= 0.95 on both.

Thresholds: docs/experiments.md#underfitting.
"""

import torch

from dlterms.data.datasets import circles
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit

EPOCHS = 60
HIDDEN = (16, 16)


def _train(sizes, split, seed, device):
    torch.manual_seed(seed)
    model = MLP(sizes).to(device)
    h = fit(
        model,
        (split.x_train, split.y_train),
        loss_fn=cross_entropy,
        optimizer=Adam(model.parameters(), lr=0.01),
        epochs=EPOCHS,
        batch_size=64,
        val=(split.x_test, split.y_test),
        seed=seed,
    )
    return model, h


@experiment("underfitting")
def underfitting(run: Run) -> None:
    split = circles(n=1000, noise=0.1, factor=0.5, seed=run.seed).to(run.device)
    lin, h_lin = _train([2, 2], split, run.seed, run.device)
    mlp, h_mlp = _train([2, *HIDDEN, 2], split, run.seed, run.device)
    res = {}
    for name, m in (("linear", lin), ("mlp", mlp)):
        for part, x, y in (("train", split.x_train, split.y_train), ("test", split.x_test, split.y_test)):
            res[f"{name}_{part}"] = round(accuracy(m, x, y), 4)
            run.metric(f"{part}_acc_{name}", res[f"{name}_{part}"], key=(name, part) == ("linear", "test"))
    run.check(
        "the linear model underfits: train accuracy <= 0.65",
        res["linear_train"] <= 0.65,
        observed=res["linear_train"],
        expected="<= 0.65",
    )
    run.check(
        "the linear model underfits: test accuracy <= 0.65",
        res["linear_test"] <= 0.65,
        observed=res["linear_test"],
        expected="<= 0.65",
    )
    run.check(
        "a small MLP fits: train accuracy >= 0.95",
        res["mlp_train"] >= 0.95,
        observed=res["mlp_train"],
        expected=">= 0.95",
    )
    run.check(
        "a small MLP fits: test accuracy >= 0.95", res["mlp_test"] >= 0.95, observed=res["mlp_test"], expected=">= 0.95"
    )

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
        for ax, (name, m) in zip(axes, (("linear (logistic regression)", lin), (f"MLP {HIDDEN}", mlp)), strict=True):
            with torch.no_grad():
                m.eval()
                z = m(grid).argmax(1).reshape(121, 121).cpu()
            ax.contourf(gx, gy, z, levels=[-0.5, 0.5, 1.5], colors=["#cfe2f3", "#f9d9c5"])
            ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=6)
            key = "linear" if name.startswith("linear") else "mlp"
            ax.set_title(f"{name}: train {res[key + '_train']:.2f}, test {res[key + '_test']:.2f}", fontsize=9)
            ax.set_aspect("equal")
