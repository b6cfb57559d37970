"""Autoencoder: an 8-number code of 8x8 digits, against PCA with 8 components, plus a denoising variant.

Data: scikit-learn's digits (1347 train / 450 test, pixels in [0, 1]). A nonlinear autoencoder
64-128-8-128-64 (ReLU, sigmoid output) is trained on reconstruction alone (no labels). Claims:
(1) its test reconstruction error is lower than PCA's at the same k = 8 (PCA is the best *linear*
k-dimensional reconstruction, so the gap is what the nonlinearity buys); (2) a denoising autoencoder
trained on inputs with Gaussian noise (sigma 0.3) reconstructs the clean test digits from noisy ones
better than the plain autoencoder does, and better than the noisy input itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.losses import mse_loss
from dlterms.methods.pca import PCA
from dlterms.models.autoencoder import Autoencoder, DenoisingAutoencoder, corrupt
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import ProgressCallback, fit


def _mse(model, x, target) -> float:
    model.eval()
    with torch.no_grad():
        return float(mse_loss(model(x), target))


@dataclass(frozen=True)
class Config:
    """Parameters of the autoencoder experiment; the defaults are the recorded run."""

    k: int = 8  # code size of both autoencoders, and PCA components
    hidden: tuple[int, ...] = (128,)  # encoder hidden widths (decoder mirrored)
    sigma: float = 0.3  # std of the Gaussian corruption (pixels are in [0, 1])
    epochs: int = 40  # training epochs of each autoencoder
    lr: float = 3e-3  # Adam step size

    def __post_init__(self) -> None:
        if not 1 <= self.k < 64:
            raise ValueError(f"k must be in 1..63 (a code narrower than the 64 pixels), got {self.k!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be a non-empty tuple of widths >= 1, got {self.hidden!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma!r}")
        if self.epochs < 1 or not self.lr > 0:
            raise ValueError(f"epochs must be >= 1 and lr > 0, got {self.epochs!r} and {self.lr!r}")


@experiment(
    "autoencoder",
    config=Config,
    sweeps=(
        Sweep(
            "k",
            (2, 4, 8, 16, 32),
            "At which code sizes does the nonlinear autoencoder beat PCA's linear reconstruction, and by how much?",
            metric="pca_over_autoencoder_error",
        ),
    ),
)
def autoencoder(run: Run, cfg: Config) -> None:
    d = digits(seed=run.seed).to(run.device)
    epochs = 5 if run.quick else cfg.epochs

    pca = PCA(cfg.k).fit(d.x_train.cpu())
    pca_rec = pca.inverse_transform(pca.transform(d.x_test.cpu())).to(run.device)
    err_pca = float(mse_loss(pca_rec, d.x_test))

    torch.manual_seed(run.seed)
    ae = Autoencoder(64, cfg.k, hidden=cfg.hidden, output_activation="sigmoid").to(run.device)
    fit(
        ae,
        d.x_train,
        loss_fn=mse_loss,
        optimizer=Adam(ae.parameters(), lr=cfg.lr),
        epochs=epochs,
        batch_size=64,
        seed=run.seed,
        callbacks=[ProgressCallback(lambda f, m: run.progress(f / 2, m), "AE")],
    )
    err_ae = _mse(ae, d.x_test, d.x_test)

    torch.manual_seed(run.seed)
    dae = DenoisingAutoencoder(
        64,
        cfg.k,
        hidden=cfg.hidden,
        output_activation="sigmoid",
        noise="gaussian",
        noise_level=cfg.sigma,
        generator=run.generator(1),
    ).to(run.device)
    fit(
        dae,
        d.x_train,
        loss_fn=mse_loss,
        optimizer=Adam(dae.parameters(), lr=cfg.lr),
        epochs=epochs,
        batch_size=64,
        seed=run.seed,
        callbacks=[ProgressCallback(lambda f, m: run.progress(0.5 + f / 2, m), "denoising AE")],
    )

    x_noisy = corrupt(d.x_test, "gaussian", cfg.sigma, run.generator(2))  # fixed test corruption
    err_noisy_input = float(mse_loss(x_noisy, d.x_test))
    err_ae_noisy = _mse(ae, x_noisy, d.x_test)
    err_dae_noisy = _mse(dae, x_noisy, d.x_test)
    err_dae_clean = _mse(dae, d.x_test, d.x_test)

    run.metric(f"test_mse_pca_k{cfg.k}", err_pca)
    run.metric(f"test_mse_autoencoder_k{cfg.k}", err_ae, key=True)
    run.metric("pca_over_autoencoder_error", err_pca / err_ae)
    run.metric("noisy_input_mse", err_noisy_input)
    run.metric("autoencoder_mse_from_noisy", err_ae_noisy)
    run.metric("denoising_ae_mse_from_noisy", err_dae_noisy)
    run.metric("denoising_ae_mse_from_clean", err_dae_clean)
    run.check(
        f"the k={cfg.k} autoencoder reconstructs test digits with lower error than PCA with {cfg.k} components",
        err_ae < err_pca,
        observed=err_ae,
        expected=f"< {err_pca:.5f} (PCA)",
    )
    run.check(
        "the denoising autoencoder recovers clean digits from noisy ones better than the plain one",
        err_dae_noisy < err_ae_noisy,
        observed=err_dae_noisy,
        expected=f"< {err_ae_noisy:.5f} (plain autoencoder)",
    )
    run.check(
        "the denoising autoencoder's output is closer to the clean digit than its noisy input",
        err_dae_noisy < err_noisy_input,
        observed=err_dae_noisy,
        expected=f"< {err_noisy_input:.5f} (noisy input)",
    )

    idx = torch.arange(10) * (len(d.x_test) // 10)
    with torch.no_grad():
        ae.eval()
        dae.eval()
        rows = [
            ("original", d.x_test[idx]),
            (f"PCA k={cfg.k}", pca_rec[idx]),
            (f"autoencoder k={cfg.k}", ae(d.x_test[idx])),
            (f"noisy (sigma {cfg.sigma})", x_noisy[idx]),
            ("autoencoder(noisy)", ae(x_noisy[idx])),
            ("denoising AE(noisy)", dae(x_noisy[idx])),
        ]
    with run.figure(
        "reconstructions",
        alt="ten test digits (columns): originals, PCA and autoencoder "
        "reconstructions with 8 numbers, noisy versions, and the plain and denoising "
        "autoencoders' outputs from the noisy versions",
        figsize=(8, 5.4),
    ) as fig:
        axes = fig.subplots(len(rows), len(idx))
        for r, (name, imgs) in enumerate(rows):
            for c in range(len(idx)):
                ax = axes[r, c]
                ax.imshow(imgs[c].cpu().view(8, 8).clamp(0, 1), cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
