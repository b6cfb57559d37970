"""Data augmentation: random whole-pixel shifts help a small CNN trained on 10 % of the digits; they do
not help an MLP.

scikit-learn's digits, 10 % (179 images) for training and the other 90 % (1618) for testing. A CNN
(`dlterms.models.cnn.ConvNet`: 3x3 conv 16, ReLU, 3x3 conv 32, ReLU, 2x2 max-pool, linear; no batch norm)
is trained with Adam (batch 64, 200 epochs) on the plain images and on images shifted by a random whole
pixel in each direction, {-1, 0, 1}^2, drawn afresh for every batch (`RandomShift(1)`).

One split cannot carry a claim of a few points: from one 10 % split to another the gain ranges over
about +0.2 to +5 points, so the single paired run this experiment used to make fell below the spec's 2
points at some seeds (seed 3: +1.5). The claim is made on the mean over `splits` (8) random splits,
each a paired comparison: both arms train on the same 179 images from the same initialisation and batch
order and are tested on the same 1618. Each arm has its own step size, the best of {1e-3, 2e-3, 5e-3,
1e-2, 2e-2} by mean test accuracy over 8 probe splits that are not the ones run here: 1e-2 for the
plain CNN, 5e-3 with shifts (probe means, plain: 92.8, 93.0, 93.0, 93.4, 92.8 %; shifted at 100
epochs: 94.3, 95.0, 95.6, 95.4, 92.8 %). Both arms get 200 epochs: the shifted arm sees a new version
of each image in every epoch and was still improving at 100 (probe: 95.6 -> 96.5 %), while the plain
CNN had converged (93.4 % at 100 epochs, 93.2 % at 200), so the longer budget costs the plain arm
nothing. At the old recipe (one split, 100 epochs, one step size of 2e-3 for both) the gain was
understated; a mean over 16 splits at 100 epochs still gave +1.65 to +2.92 over seeds 0-4, and a
CNN with batch norm, a stronger baseline (95.8 %), gains only about +1.5 from the same shifts; a
narrower CNN (12 and 24 channels, 200 epochs) fell to +1.78 and +1.83 at seeds 1 and 2.

Measured at seeds 0-4 (mean over 8 splits, standard error 0.15-0.39): +3.11, +2.25, +2.35, +2.29, +2.82
points, and +2.80, +2.26, +2.09, +2.72 at seeds 5-8; single splits ranged from +0.19 to +5.13. The
check holds at these nine seeds, with a margin of 0.09-1.1 points: the honest size of the effect is
about 2.5 points (standard deviation 0.34 over seeds), not the 2.2-4 the spec's probe suggested, so
roughly one seed in twenty can be expected to fall below 2.

Two contrasts are measured, not assumed: the same shifts given to an MLP (64-256-10, Adam 2e-3 in both
arms), which has no notion of neighbouring pixels and must learn every shifted copy separately (check:
its mean gain is < 1 point; measured -1.4 to -2.0), and random rotations of up to 10 degrees for the
CNN on the first `rotation_splits` (1) split, which on 8x8 images are sub-pixel moves that blur strokes
through bilinear interpolation (reported, no check: -1.1 to +1.0 points at seeds 0-4; as a mean over 2
splits per seed, +0.1 to +0.5: they neither hurt nor help reliably at this step size).

Each CNN trains on its own (on a CPU our ungrouped convolution is faster per model than the grouped one
a `ConvNetStack` of several splits runs); the MLPs of all splits train at once as a `ModelStack`.
About 48 s on one thread.

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
from dlterms.stacked import ConvNetStack, ModelStack
from dlterms.training import batches


@dataclass(frozen=True)
class Config:
    """Parameters of the data-augmentation experiment; the defaults are the recorded run."""

    train_fraction: float = 0.1  # share of the 1797 digits used for training (the rest is the test set)
    splits: int = 8  # random train/test splits, each a paired comparison; the checks are on the means
    rotation_splits: int = 1  # the first splits of these also train the rotation contrast (reported only)
    shift: int = 1  # largest whole-pixel shift in each direction
    rotation: float = 10.0  # largest rotation of the CNN's rotation contrast, in degrees
    epochs: int = 200  # training epochs of every arm (600 steps of 64)
    lr: float = 1e-2  # Adam step size of the plain CNN (its best of the probe grid)
    aug_lr: float = 5e-3  # Adam step size of the CNNs trained on shifted or rotated images (their best)
    mlp_lr: float = 2e-3  # Adam step size of both MLP arms
    batch_size: int = 64  # examples per step
    mlp_hidden: int = 256  # hidden width of the MLP contrast
    cnn_channels: tuple[int, ...] = (16, 32)  # output channels of the CNN's two 3x3 convolutions

    def __post_init__(self) -> None:
        if not 0 < self.train_fraction < 1:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction!r}")
        if not 1 <= self.shift <= 3:
            raise ValueError(f"shift must be in 1..3 pixels, got {self.shift!r}")
        if not 0 < self.rotation <= 180:
            raise ValueError(f"rotation must be in (0, 180] degrees, got {self.rotation!r}")
        for name in ("splits", "rotation_splits", "epochs", "batch_size", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if len(self.cnn_channels) != 2 or min(self.cnn_channels) < 1:
            raise ValueError(f"cnn_channels must be two positive channel counts, got {self.cnn_channels!r}")
        for name in ("lr", "aug_lr", "mlp_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


def _cnn(channels: tuple[int, ...] = (16, 32)) -> ConvNet:
    return ConvNet(1, 10, (8, 8), channels=channels, pool=[1, 2])


def _mlp(hidden: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), MLP([64, hidden, 10]))


class _One:
    """One model behind a stack's interface: x (1, B, ...) -> (1, B, ...), no vmap or grouping."""

    def __init__(self, model: torch.nn.Module):
        self.module = model

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x[0])[None]

    def parameters(self):
        return list(self.module.parameters())

    def train(self, mode: bool = True):
        self.module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def model(self, i: int) -> torch.nn.Module:
        if i not in (0, -1):
            raise ValueError(f"i must be 0 for a single model, got {i}")
        return self.module

    def write_back(self) -> list[torch.nn.Module]:
        return [self.module]


def train_arm(make, x, y, augment, lr: float, seeds, cfg: Config, device: str = "cpu"):
    """Model k built by `make()` after `torch.manual_seed(seeds[k])` and trained on (x[k], y[k]): Adam
    at `lr`, `cfg.epochs` epochs of mini-batches of `cfg.batch_size` in one shuffled order for all
    (from seeds[0], as `fit(seed=seeds[0])` draws it), each batch transformed by `augment(images,
    generator)` when given (the generator from seeds[0] + 1). Several models train at once: CNNs as a
    `ConvNetStack`, other models as a `ModelStack`; one model trains as itself. x (M, N, 1, 8, 8),
    y (M, N); returns the stack."""
    models = []
    for s in seeds:
        torch.manual_seed(int(s))
        models.append(make().to(device))
    if len(models) == 1:
        stack = _One(models[0])
    else:
        stack = ConvNetStack(models) if isinstance(models[0], ConvNet) else ModelStack(models)
    if hasattr(stack, "train"):
        stack.train()
    opt = Adam(stack.parameters(), lr=lr)
    order = torch.Generator().manual_seed(int(seeds[0]))
    gen = torch.Generator().manual_seed(int(seeds[0]) + 1)  # the augmentation's own stream
    m, n = y.shape
    for _ in range(cfg.epochs):
        for idx in batches(n, cfg.batch_size, order):
            idx = idx.to(x.device)
            xb = x[:, idx]  # (M, b, 1, 8, 8): model k's own examples
            if augment is not None:
                xb = augment(xb.flatten(0, 1), gen).view_as(xb)
            logits = stack(xb)  # (M, b, 10)
            loss = m * cross_entropy(logits.flatten(0, 1), y[:, idx].flatten())  # sum of the M mean losses
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return stack


@torch.no_grad()
def stack_accuracy(stack, x, y) -> torch.Tensor:
    """Each model's accuracy on its own test set: x (M, N, ...), y (M, N) -> (M,)."""
    if hasattr(stack, "eval"):
        stack.eval()
    return (stack(x).argmax(-1) == y).double().mean(1)


@experiment("data-augmentation", config=Config)
def data_augmentation(run: Run, cfg: Config) -> None:
    split_seeds = torch.randint(0, 2**31 - 1, (cfg.splits,), generator=torch.Generator().manual_seed(run.seed))
    splits = [digits(test_size=1 - cfg.train_fraction, seed=int(s), images=True).to(run.device) for s in split_seeds]
    sizes = {(len(d.y_train), len(d.y_test)) for d in splits}
    if len(sizes) != 1:  # pragma: no cover - the split sizes depend only on train_fraction
        raise RuntimeError(f"splits of different sizes: {sorted(sizes)}")
    xs, ys = torch.stack([d.x_train for d in splits]), torch.stack([d.y_train for d in splits])
    xt, yt = torch.stack([d.x_test for d in splits]), torch.stack([d.y_test for d in splits])
    shift, rotate = RandomShift(cfg.shift), RandomRotation(cfg.rotation)
    init_seeds = [run.seed * 1000 + k for k in range(cfg.splits)]  # split k: every arm starts alike

    def train(name, make, aug, lr, n, one_at_a_time):
        # CNNs one split at a time: on a CPU our ungrouped convolution is still a little faster per model
        # (about 11 against 12 ms per epoch; 20 before the grouped one had its own backward) than the
        # grouped one a ConvNetStack of eight splits runs; MLPs all at once
        parts = [slice(k, k + 1) for k in range(n)] if one_at_a_time else [slice(0, n)]
        out = []
        for part in parts:
            stack = train_arm(make, xs[part], ys[part], aug, lr, init_seeds[part], cfg, run.device)
            out.append(stack_accuracy(stack, xt[part], yt[part]).cpu())
        acc[name] = torch.cat(out)  # (n,): one test accuracy per split
        run.metric(f"test_acc_{name}", float(acc[name].mean()))

    acc: dict[str, torch.Tensor] = {}

    def cnn() -> ConvNet:
        return _cnn(cfg.cnn_channels)

    runs = [
        ("cnn", cnn, None, cfg.lr, cfg.splits, True),
        ("cnn_shift", cnn, shift, cfg.aug_lr, cfg.splits, True),
        ("mlp", lambda: _mlp(cfg.mlp_hidden), None, cfg.mlp_lr, cfg.splits, False),
        ("mlp_shift", lambda: _mlp(cfg.mlp_hidden), shift, cfg.mlp_lr, cfg.splits, False),
        ("cnn_rotate", cnn, rotate, cfg.aug_lr, min(cfg.rotation_splits, cfg.splits), True),
    ]
    for i, (name, *spec) in enumerate(runs):
        train(name, *spec)
        run.progress((i + 1) / len(runs), f"{name}: {len(acc[name])} splits")

    def gain(a: str, b: str) -> torch.Tensor:
        return acc[a] - acc[b]  # per split, paired

    g_cnn, g_mlp, g_rot = (
        gain("cnn_shift", "cnn"),
        gain("mlp_shift", "mlp"),
        acc["cnn_rotate"] - acc["cnn"][: len(acc["cnn_rotate"])],
    )
    sem = float(g_cnn.std() / cfg.splits**0.5) if cfg.splits > 1 else float("nan")
    run.metric("gain_cnn_shift", float(g_cnn.mean()), key=True)
    run.metric("gain_cnn_shift_sem", sem)
    run.metric("gain_cnn_shift_min", float(g_cnn.min()))
    run.metric("gain_cnn_shift_max", float(g_cnn.max()))
    run.metric("splits_cnn_shift_gain_ge_2pt", int((g_cnn >= 0.02).sum()))
    run.metric("gain_mlp_shift", float(g_mlp.mean()))
    run.metric("gain_cnn_rotate", float(g_rot.mean()))
    run.metric("gain_cnn_rotate_min", float(g_rot.min()))
    run.metric("gain_cnn_rotate_max", float(g_rot.max()))
    run.metric("train_size", len(splits[0].y_train))
    run.metric("splits", cfg.splits)
    run.metric("rotation_splits", len(g_rot))
    run.check_ge(
        f"shifts of +-{cfg.shift} px: gain in the CNN's test accuracy, mean over {cfg.splits} paired splits",
        float(g_cnn.mean()),
        0.02,
    )
    run.check_le(
        "the same shifts do not help an MLP: gain in its test accuracy, mean over the splits",
        float(g_mlp.mean()),
        0.01,
        strict=True,
    )
    split = splits[0]
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
        ax.bar(range(len(names)), [float(acc[n].mean()) for n in names], color=["C0", "C1", "C2", "C0", "C1"])
        ax.set_xticks(range(len(names)), ["CNN", "CNN+shift", "CNN+rot", "MLP", "MLP+shift"], rotation=60, fontsize=7)
        ax.set_ylim(0.8, 1.0)
        ax.set_title(f"test accuracy, mean of {cfg.splits} splits\n(rotation: {len(g_rot)})", fontsize=8)
