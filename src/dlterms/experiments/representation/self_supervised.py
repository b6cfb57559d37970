"""Self-supervised learning: SimCLR-style contrastive pre-training on MNIST-1D, judged by linear probes.

Pre-training uses the 4000 training signals without labels: two random views of each signal (a shift of
up to 10 steps and Gaussian noise of std 0.3, from `dlterms.data.augment`), an MLP encoder 40-256-128
(ReLU), a projection head, and the NT-Xent loss (temperature 0.1), 30 epochs. Then the same linear
probe (logistic regression on standardised features, full batch, 100 Adam steps, with labels) is trained
on three representations: the raw signal, the encoder's features at random initialisation (same seed,
before pre-training) and the self-supervised features. Claim: the self-supervised features give the most
accurate probe on the 1000 test signals (the MNIST-1D paper's logistic regression on raw input: 32 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.augment import Compose, GaussianNoise, RandomSignalShift
from dlterms.data.datasets import mnist1d
from dlterms.experiments.representation._common import linear_probe
from dlterms.methods.metric_learning import SimCLR, nt_xent_loss
from dlterms.nn import MLP, ReLU
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import ProgressCallback, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the self-supervised experiment; the defaults are the recorded run."""

    temperature: float = 0.1  # NT-Xent temperature tau
    max_shift: int = 10  # largest random shift of a view, in time steps
    noise: float = 0.3  # std of the Gaussian noise added to a view
    widths: tuple[int, ...] = (256, 128)  # encoder MLP widths after the 40 inputs (the last is the feature size)
    projection: int = 32  # output size of the projection head
    epochs: int = 30  # pre-training epochs
    lr: float = 1e-3  # Adam step size
    batch_size: int = 256  # signals per batch (each gives two views)

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if self.max_shift < 0 or self.noise < 0:
            raise ValueError(f"max_shift and noise must be >= 0, got {self.max_shift!r} and {self.noise!r}")
        if not self.widths or min(self.widths) < 1 or self.projection < 1:
            raise ValueError(f"widths and projection must be >= 1, got {self.widths!r} and {self.projection!r}")
        if self.epochs < 1 or self.batch_size < 2 or not self.lr > 0:
            raise ValueError(
                f"need epochs >= 1, batch_size >= 2 and lr > 0, got {self.epochs!r}, {self.batch_size!r}, {self.lr!r}"
            )


@experiment(
    "self-supervised",
    config=Config,
    sweeps=(
        Sweep(
            "max_shift",
            (0, 5, 10, 20),
            "How much does the linear probe depend on the augmentation, here the largest random shift of a view?",
            metric="probe_acc_self_supervised",
        ),
    ),
)
def self_supervised(run: Run, cfg: Config) -> None:
    d = mnist1d().to(run.device)
    torch.manual_seed(run.seed)
    encoder = torch.nn.Sequential(MLP([40, *cfg.widths]), ReLU())
    views = Compose([RandomSignalShift(cfg.max_shift), GaussianNoise(cfg.noise)])
    model = SimCLR(encoder, cfg.widths[-1], cfg.projection, views, run.generator(1)).to(run.device)
    with torch.no_grad():
        rand_tr, rand_te = model.features(d.x_train), model.features(d.x_test)
    hist = fit(
        model,
        d.x_train,
        loss_fn=lambda out, _: nt_xent_loss(*out, cfg.temperature),
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=3 if run.quick else cfg.epochs,
        batch_size=cfg.batch_size,
        seed=run.seed,
        callbacks=[ProgressCallback(lambda f, m: run.progress(0.85 * f, m), "SimCLR")],
    )
    model.eval()
    with torch.no_grad():
        ssl_tr, ssl_te = model.features(d.x_train), model.features(d.x_test)
    acc = {
        "raw input": linear_probe(run, d.x_train, d.y_train, d.x_test, d.y_test),
        "random-init features": linear_probe(run, rand_tr, d.y_train, rand_te, d.y_test),
        "self-supervised features": linear_probe(run, ssl_tr, d.y_train, ssl_te, d.y_test),
    }
    run.metric("probe_acc_raw", acc["raw input"])
    run.metric("probe_acc_random_init", acc["random-init features"])
    run.metric("probe_acc_self_supervised", acc["self-supervised features"], key=True)
    run.metric("nt_xent_first_epoch", hist.train_loss[0])
    run.metric("nt_xent_last_epoch", hist.train_loss[-1])
    ssl = acc["self-supervised features"]
    run.check(
        "the contrastive loss falls during pre-training",
        hist.train_loss[-1] < hist.train_loss[0],
        observed=hist.train_loss[-1],
        expected=f"< {hist.train_loss[0]:.4f}",
    )
    for other in ("random-init features", "raw input"):
        run.check(
            f"a linear probe on self-supervised features beats one on {other}",
            ssl > acc[other],
            observed=ssl,
            expected=f"> {acc[other]:.4f} ({other})",
        )

    with run.figure(
        "probes",
        alt="linear-probe test accuracy on MNIST-1D for raw input, random-init "
        "features and self-supervised features, and the NT-Xent loss per epoch",
        figsize=(10, 4),
    ) as fig:
        a1, a2 = fig.subplots(1, 2)
        names = list(acc)
        a1.bar(range(3), [acc[n] for n in names], color=["gray", "tab:orange", "tab:blue"])
        a1.set_xticks(range(3), names, fontsize=8)
        for k, n in enumerate(names):
            a1.text(k, acc[n] + 0.01, f"{acc[n]:.3f}", ha="center")
        a1.set(ylabel="linear probe test accuracy", ylim=(0, 1), title="MNIST-1D, labels only in the probe")
        a2.plot(range(1, len(hist.train_loss) + 1), hist.train_loss, "o-", ms=3)
        a2.set(xlabel="epoch", ylabel="NT-Xent loss", title="contrastive pre-training (no labels)")
