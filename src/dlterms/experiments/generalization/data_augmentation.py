"""Data augmentation: random whole-pixel shifts help a small CNN trained on 10 % of the digits; they do
not help an MLP.

scikit-learn's digits, 10 % (180 images) for training and the other 90 % (1617) for testing. A CNN
(`dlterms.models.cnn.ConvNet`: 3x3 conv 16, ReLU, 3x3 conv 32, ReLU, 2x2 max-pool, linear; no batch norm)
is trained with Adam (lr 2e-3, batch 64, 100 epochs) on the plain images and on images shifted by a
random whole pixel in each direction, {-1, 0, 1}^2, drawn afresh for every batch (`RandomShift(1)`).
the spec asks for >= 2 points of test accuracy from augmentation (measured on seeds 0, 1, 2 with this
recipe: +3.0, +3.2, +3.7 points; but seed 3 gives +1.5 and fails the check, and further splits gave
about 0 to +4 points, mean about +2.5: with this recipe the gain is near the threshold, and a mean over 3
paired splits with the augmented arms at 200 epochs still fell to +1.2 to +2.0 at 3 of 7 seeds).
Two contrasts are measured, not assumed: the same shifts given to an
MLP (64-256-10), which has no notion of neighbouring pixels and must learn every shifted copy
separately (check: it gains < 1 point; measured -1.6 to -4.4), and random rotations of up to 10 degrees for
the CNN, which on 8x8 images are sub-pixel moves that blur strokes through bilinear interpolation
(reported, no check: on these images they change accuracy by about a point either way).

Thresholds: docs/experiments.md#data-augmentation.
"""

from dataclasses import dataclass

import torch

from dlterms.data.augment import RandomRotation, RandomShift
from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.models.cnn import ConvNet
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the data-augmentation experiment; the defaults are the recorded run."""

    train_fraction: float = 0.1  # share of the 1797 digits used for training (the rest is the test set)
    shift: int = 1  # largest whole-pixel shift in each direction
    rotation: float = 10.0  # largest rotation of the CNN's rotation contrast, in degrees
    epochs: int = 100  # training epochs of every arm
    lr: float = 2e-3  # Adam step size
    batch_size: int = 64  # examples per step
    mlp_hidden: int = 256  # hidden width of the MLP contrast

    def __post_init__(self) -> None:
        if not 0 < self.train_fraction < 1:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction!r}")
        if not 1 <= self.shift <= 3:
            raise ValueError(f"shift must be in 1..3 pixels, got {self.shift!r}")
        if not 0 < self.rotation <= 180:
            raise ValueError(f"rotation must be in (0, 180] degrees, got {self.rotation!r}")
        for name in ("epochs", "batch_size", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


def _cnn() -> torch.nn.Module:
    return ConvNet(1, 10, (8, 8), channels=(16, 32), pool=[1, 2])


def _train(make, split, augment, seed: int, device: str, cfg: Config) -> float:
    torch.manual_seed(seed)
    model = make().to(device)
    gen = torch.Generator().manual_seed(seed + 1)  # the augmentation's own stream

    def forward(m, x):
        return m(augment(x, gen)) if (augment is not None and m.training) else m(x)

    fit(
        model,
        (split.x_train, split.y_train),
        loss_fn=cross_entropy,
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=seed,
        forward=forward,
    )
    return accuracy(model, split.x_test, split.y_test)


@experiment("data-augmentation", config=Config)
def data_augmentation(run: Run, cfg: Config) -> None:
    split = digits(test_size=1 - cfg.train_fraction, seed=run.seed, images=True).to(run.device)
    shift, rotate = RandomShift(cfg.shift), RandomRotation(cfg.rotation)

    def _mlp() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Flatten(), MLP([64, cfg.mlp_hidden, 10]))

    runs = [
        ("cnn", _cnn, None),
        ("cnn_shift", _cnn, shift),
        ("mlp", _mlp, None),
        ("mlp_shift", _mlp, shift),
        ("cnn_rotate", _cnn, rotate),
    ]
    acc = {}
    for i, (name, make, aug) in enumerate(runs):
        acc[name] = _train(make, split, aug, run.seed, run.device, cfg)
        run.metric(f"test_acc_{name}", acc[name])
        run.progress((i + 1) / len(runs), name)
    gain_cnn = acc["cnn_shift"] - acc["cnn"]
    gain_mlp = acc["mlp_shift"] - acc["mlp"]
    run.metric("gain_cnn_shift", gain_cnn, key=True)
    run.metric("gain_mlp_shift", gain_mlp)
    run.metric("gain_cnn_rotate", acc["cnn_rotate"] - acc["cnn"])
    run.metric("train_size", len(split.x_train))
    run.check_ge(f"shifts of +-{cfg.shift} px: gain in the CNN's test accuracy", gain_cnn, 0.02)
    run.check_le("the same shifts do not help an MLP: gain in its test accuracy", gain_mlp, 0.01, strict=True)

    with run.figure(
        "samples",
        alt="a training digit and eight augmented copies (four random one-pixel shifts, "
        "four random rotations), and test accuracy of the CNN and MLP with and without augmentation",
        figsize=(10, 3.6),
    ) as fig:
        grid = fig.add_gridspec(2, 6)
        x0 = split.x_train[:1].cpu().repeat(4, 1, 1, 1)
        g = torch.Generator().manual_seed(run.seed)
        panels = [("original", split.x_train[0, 0].cpu())]
        panels += [(f"shift {k + 1}", im[0]) for k, im in enumerate(shift(x0, g))]
        panels += [(f"rotation {k + 1}", im[0]) for k, im in enumerate(rotate(x0, g))]
        for k, (title, im) in enumerate(panels):
            ax = fig.add_subplot(grid[k // 5 if k < 5 else 1, k % 5 if k < 5 else (k - 5) % 4 + 1])
            ax.imshow(im, cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(title, fontsize=7)
            ax.axis("off")
        ax = fig.add_subplot(grid[:, 5])
        names = ["cnn", "cnn_shift", "cnn_rotate", "mlp", "mlp_shift"]
        ax.bar(range(len(names)), [acc[n] for n in names], color=["C0", "C1", "C2", "C0", "C1"])
        ax.set_xticks(range(len(names)), ["CNN", "CNN+shift", "CNN+rot", "MLP", "MLP+shift"], rotation=60, fontsize=7)
        ax.set_ylim(0.8, 1.0)
        ax.set_title("test accuracy", fontsize=8)
