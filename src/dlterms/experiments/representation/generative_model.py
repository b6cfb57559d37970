"""Generative model: a VAE (z = 8) learns the 8x8 digits; its samples are judged by a separate CNN.

A VAE (MLP 64-256-8, Bernoulli likelihood) is trained on the digits' training split by maximising the
ELBO (`fit` on the negative ELBO). A digits CNN (`dlterms.models.cnn.digits_cnn`), trained separately
on the labelled training split, then classifies 1000 images decoded from z ~ N(0, I). Claims: the ELBO
rises during training (train, and on the test split against the untrained model); the CNN's mean
confidence on the samples is >= 0.8 and at least 0.1 above its confidence on noise images with the same
per-pixel mean and variance as the samples (a CNN is confident on noise too, so confidence alone proves
little); every one of the 10 classes appears among the samples. Figure: samples and a latent
interpolation between two test digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.models.cnn import digits_cnn
from dlterms.models.vae import VAE, elbo, negative_elbo
from dlterms.nn.activations import softmax
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import ProgressCallback, accuracy, fit, predict


def _test_elbo(vae: VAE, x: torch.Tensor, seed: int) -> float:
    """Mean one-sample ELBO (reparameterised z, seeded) over x."""
    vae.eval()
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        z = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(seed))
        return float(elbo((vae.decoder(z), mu, logvar), x).mean())


@dataclass(frozen=True)
class Config:
    """Parameters of the generative-model experiment; the defaults are the recorded run."""

    latent_dim: int = 8  # size of the VAE's code z
    hidden: tuple[int, ...] = (256,)  # VAE encoder hidden widths (decoder mirrored)
    epochs: int = 100  # VAE training epochs
    lr: float = 2e-3  # VAE Adam step size
    judge_epochs: int = 20  # training epochs of the judge CNN
    n_samples: int = 1000  # images decoded from the prior and judged

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"latent_dim and the hidden widths must be >= 1, got {self.latent_dim!r}, {self.hidden!r}")
        if self.epochs < 1 or self.judge_epochs < 1:
            raise ValueError(f"epochs and judge_epochs must be >= 1, got {self.epochs!r} and {self.judge_epochs!r}")
        if self.n_samples < 40:
            raise ValueError(f"n_samples must be >= 40 (the figure shows 40), got {self.n_samples!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


@experiment("generative-model", config=Config)
def generative_model(run: Run, cfg: Config) -> None:
    d = digits(seed=run.seed).to(run.device)
    di = digits(seed=run.seed, images=True).to(run.device)
    quick = run.quick

    torch.manual_seed(run.seed)
    vae = VAE(64, latent_dim=cfg.latent_dim, hidden=cfg.hidden).to(run.device)
    elbo_init = _test_elbo(vae, d.x_test, run.seed)
    hist = fit(
        vae,
        d.x_train,
        loss_fn=negative_elbo,
        optimizer=Adam(vae.parameters(), lr=cfg.lr),
        epochs=5 if quick else cfg.epochs,
        batch_size=64,
        seed=run.seed,
        callbacks=[ProgressCallback(lambda f, m: run.progress(0.6 * f, m), "VAE")],
    )
    elbo_train = [-v for v in hist.train_loss]
    elbo_test = _test_elbo(vae, d.x_test, run.seed)

    torch.manual_seed(run.seed + 1)
    cnn = digits_cnn().to(run.device)
    fit(
        cnn,
        (di.x_train, di.y_train),
        loss_fn=cross_entropy,
        optimizer=Adam(cnn.parameters(), lr=3e-3),
        epochs=3 if quick else cfg.judge_epochs,
        batch_size=64,
        seed=run.seed,
        callbacks=[ProgressCallback(lambda f, m: run.progress(0.6 + 0.35 * f, m), "judge CNN")],
    )
    cnn_acc = accuracy(cnn, di.x_test, di.y_test)

    samples = vae.sample(cfg.n_samples, run.generator(1))  # (n_samples, 64), pixel means in [0, 1]
    mean, std = samples.mean(0), samples.std(0)  # per-pixel moments of the samples
    noise = mean + std * torch.randn(samples.shape, generator=run.generator(2)).to(run.device)
    p_samples = softmax(predict(cnn, samples.view(-1, 1, 8, 8)), dim=1)
    p_noise = softmax(predict(cnn, noise.view(-1, 1, 8, 8)), dim=1)
    conf_s, conf_n = float(p_samples.max(1).values.mean()), float(p_noise.max(1).values.mean())
    classes = torch.bincount(p_samples.argmax(1).cpu(), minlength=10)

    run.metric("elbo_train_first_epoch", elbo_train[0])
    run.metric("elbo_train_last_epoch", elbo_train[-1])
    run.metric("elbo_test_untrained", elbo_init)
    run.metric("elbo_test_trained", elbo_test)
    run.metric("judge_cnn_test_accuracy", cnn_acc)
    run.metric("cnn_confidence_on_vae_samples", conf_s, key=True)
    run.metric("cnn_confidence_on_matched_noise", conf_n)
    run.metric("samples_per_predicted_class", classes.tolist())
    run.check(
        "the ELBO rises during training (mean train ELBO, last epoch vs first)",
        elbo_train[-1] > elbo_train[0],
        observed=elbo_train[-1],
        expected=f"> {elbo_train[0]:.2f}",
    )
    run.check(
        "the test ELBO of the trained VAE is above the untrained one's",
        elbo_test > elbo_init,
        observed=elbo_test,
        expected=f"> {elbo_init:.2f}",
    )
    run.check_ge("the judge CNN is accurate on real test digits (so its verdict means something)", cnn_acc, 0.95)
    run.check_ge("a separately trained CNN recognises the VAE's samples with mean confidence >= 0.8", conf_s, 0.8)
    run.check_ge(
        "...at least 0.1 above its confidence on noise with the samples' per-pixel mean and variance",
        conf_s - conf_n,
        0.1,
    )
    run.check(
        f"every digit class appears among the {cfg.n_samples} samples",
        bool((classes > 0).all()),
        observed=int((classes > 0).sum()),
        expected="10 of 10",
    )

    # latent interpolation between two test digits of different classes
    a = int((d.y_test == 0).nonzero()[0])
    b = int((d.y_test == 6).nonzero()[0])
    vae.eval()
    with torch.no_grad():
        za, zb = vae.encode(d.x_test[[a]])[0], vae.encode(d.x_test[[b]])[0]
        ts = torch.linspace(0, 1, 10, device=run.device)[:, None]
        interp = vae.decode((1 - ts) * za + ts * zb)  # (10, 64)
    with run.figure(
        "samples",
        alt="top: 40 digits decoded from the VAE's prior with the CNN's label and "
        "confidence; bottom: decoding along a straight line in latent space from a 0 to a 6",
        figsize=(10, 6),
    ) as fig:
        axes = fig.subplots(5, 10)
        for i in range(40):
            ax = axes[i // 10, i % 10]
            ax.imshow(samples[i].cpu().view(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"{int(p_samples[i].argmax())} ({float(p_samples[i].max()):.2f})", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        for i in range(10):
            ax = axes[4, i]
            ax.imshow(interp[i].cpu().view(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[4, 0].set_ylabel("0 to 6", fontsize=8)
        fig.suptitle("VAE samples from the prior (CNN label, confidence) and a latent interpolation")
