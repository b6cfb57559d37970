"""Dilated convolutions: a receptive field of 31 from four 3-wide layers, and what it buys.

Measured: (1) the receptive field of four 3-wide layers, read off as the support of the input
gradient of one output position (union over 16 random inputs), is 9 with dilations 1,1,1,1 and 31
with 1,2,4,8, as 1 + sum d (k - 1) predicts, with identical parameter counts; (2) on a per-position
task that needs context 12 steps away on both sides, y_t = [x_{t-12} > x_{t+12}] for Gaussian noise
x of length 64, the plain stack cannot see the two inputs and stays near chance while the dilated
stack of equal parameters learns it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.losses import cross_entropy
from dlterms.models.cnn import DilatedStack, count_parameters
from dlterms.nn.conv import receptive_field
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import fit, predict

STACKS = {"plain (1,1,1,1)": (1, 1, 1, 1), "dilated (1,2,4,8)": (1, 2, 4, 8)}


@dataclass(frozen=True)
class Config:
    """Parameters of the dilated-convolutions experiment; the defaults are the recorded run."""

    gap: int = 12  # the task compares x[t - gap] with x[t + gap]
    length: int = 64  # sequence length
    n_train: int = 1000  # training sequences
    n_test: int = 500  # test sequences
    epochs: int = 8  # training epochs of each stack
    channels: int = 16  # channels of every conv layer
    lr: float = 3e-3  # Adam step size

    def __post_init__(self) -> None:
        if self.length < 16:
            raise ValueError(f"length must be >= 16, got {self.length!r}")
        if not 1 <= self.gap < self.length // 2:
            raise ValueError(f"gap must be in [1, length / 2 = {self.length // 2}), got {self.gap!r}")
        for name in ("n_train", "n_test", "epochs", "channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


def _task(n: int, gen: torch.Generator, length: int, gap: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 1, length, generator=gen)
    t = torch.arange(gap, length - gap)  # positions whose two inputs both exist
    y = (x[:, 0, t - gap] > x[:, 0, t + gap]).long()  # (n, length - 2 gap)
    return x, y, t


def _gradient_support(model: torch.nn.Module, gen: torch.Generator, device, length: int) -> int:
    x = torch.randn(16, 1, length, generator=gen).to(device).requires_grad_(True)
    model(x)[:, :, length // 2].sum().backward()  # d(outputs at the centre) / d(input)
    return int((x.grad.abs().sum(dim=(0, 1)) > 0).sum())


@experiment(
    "dilated-convolutions",
    config=Config,
    sweeps=(
        Sweep(
            "gap",
            (4, 8, 12, 15, 16),
            "How far apart can the two compared inputs be before the dilated stack (receptive field 31, i.e. "
            "+-15) fails too?",
            metric="test_acc_dilated",
        ),
    ),
)
def dilated_convolutions(run: Run, cfg: Config) -> None:
    dev = run.device
    LENGTH, GAP = cfg.length, cfg.gap
    x_tr, y_tr, t = _task(cfg.n_train, run.generator(1), LENGTH, GAP)
    x_te, y_te, _ = _task(cfg.n_test, run.generator(2), LENGTH, GAP)
    x_tr, y_tr, x_te, y_te = x_tr.to(dev), y_tr.to(dev), x_te.to(dev), y_te.to(dev)

    def loss_fn(out, y):  # logits only at the positions that have a label
        return cross_entropy(out[:, :, GAP : LENGTH - GAP], y)

    res = {}
    for i, (name, dil) in enumerate(STACKS.items()):
        torch.manual_seed(run.seed)
        m = DilatedStack(1, 2, channels=cfg.channels, kernel_size=3, dilations=dil).to(dev)
        support = _gradient_support(m, run.generator(3), dev, LENGTH)
        opt = Adam(m.parameters(), lr=cfg.lr)
        fit(m, (x_tr, y_tr), loss_fn=loss_fn, optimizer=opt, epochs=cfg.epochs, batch_size=100, seed=run.seed)
        pred = predict(m, x_te)[:, :, GAP : LENGTH - GAP].argmax(1)
        acc = (pred == y_te).float().mean().item()
        res[name] = {
            "rf": receptive_field([3] * 4, dil),
            "support": support,
            "params": count_parameters(m),
            "acc": acc,
            "model": m,
        }
        run.progress((i + 1) / len(STACKS), f"{name} trained")

    plain, dilated = (res[n] for n in STACKS)
    for name, r in res.items():
        short = name.split()[0]
        run.metric(f"receptive_field_measured_{short}", r["support"])
        run.metric(f"receptive_field_formula_{short}", r["rf"])
        run.metric(f"params_{short}", r["params"])
        run.metric(f"test_acc_{short}", r["acc"], key=short == "dilated")

    run.check(
        "dilations 1,2,4,8 give a receptive field of 31 (input-gradient support)",
        dilated["support"] == 31,
        observed=dilated["support"],
        expected="31",
    )
    run.check("the plain stack's receptive field is 9", plain["support"] == 9, observed=plain["support"], expected="9")
    run.check(
        "same number of parameters",
        dilated["params"] == plain["params"],
        observed=f"{dilated['params']} vs {plain['params']}",
        expected="equal",
    )
    run.check_le(f"the plain stack cannot see x[t+-{GAP}]: it stays near chance", plain["acc"], 0.6)
    run.check_ge("the dilated stack of equal parameters learns the long-range task", dilated["acc"], 0.9)

    with run.figure(
        "receptive-fields",
        alt="input-gradient magnitude of the centre output for the plain and "
        "dilated stacks, and test accuracy on the long-range task",
        figsize=(9, 3.2),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
        for name, r in res.items():
            xg = torch.randn(16, 1, LENGTH, generator=run.generator(3)).to(dev).requires_grad_(True)
            r["model"](xg)[:, :, LENGTH // 2].sum().backward()
            ax1.plot(xg.grad.abs().sum(dim=(0, 1)).cpu(), label=f"{name}: {r['support']} inputs")
        for s in (-GAP, GAP):
            ax1.axvline(LENGTH // 2 + s, ls=":", c="grey")
        ax1.set(xlabel="input position", ylabel="|d out[32] / d x|", title="receptive field of position 32")
        ax1.legend(fontsize=8)
        ax2.bar([n.split()[0] for n in res], [r["acc"] for r in res.values()])
        ax2.axhline(0.5, ls=":", c="grey")
        ax2.set(ylim=(0, 1), ylabel="test accuracy", title=f"y = [x(t-{GAP}) > x(t+{GAP})]")
