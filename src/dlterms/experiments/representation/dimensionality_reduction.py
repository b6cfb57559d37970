"""Dimensionality reduction: PCA, t-SNE and an autoencoder each map the 1797 digits (64-D) to 2-D.

Each map is scored by trustworthiness (10 neighbours: are a point's map neighbours also its input
neighbours?) and by the 5-fold cross-validated accuracy of a 5-nearest-neighbour classifier on the
2-D coordinates (labels are used only for this score, never to build a map). Claims: both nonlinear
maps beat the linear PCA map on both scores, and t-SNE, which optimises neighbourhoods directly, is
the most trustworthy of the three. All maps are built on all points, because t-SNE has no mapping for
new data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.losses import mse_loss
from dlterms.methods.pca import PCA
from dlterms.methods.tsne import TSNE
from dlterms.models.autoencoder import Autoencoder
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import ProgressCallback, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the dimensionality-reduction experiment; the defaults are the recorded run."""

    ae_hidden: tuple[int, ...] = (128, 32)  # autoencoder encoder widths (decoder mirrored), code 2
    ae_epochs: int = 40  # autoencoder training epochs
    lr: float = 3e-3  # autoencoder Adam step size
    perplexity: float = 30.0  # t-SNE perplexity
    tsne_iter: int = 750  # t-SNE iterations (the map is settled by then, see the tsne experiment's KL curve)
    neighbours: int = 10  # neighbours of the trustworthiness score
    knn: int = 5  # neighbours of the 2-D kNN classifier

    def __post_init__(self) -> None:
        if not self.ae_hidden or min(self.ae_hidden) < 1:
            raise ValueError(f"ae_hidden must be a non-empty tuple of widths >= 1, got {self.ae_hidden!r}")
        if not 1 <= self.perplexity <= 500:
            raise ValueError(f"perplexity must be in [1, 500] (1797 points), got {self.perplexity!r}")
        if self.tsne_iter <= 250:
            raise ValueError(f"tsne_iter must be > 250 (the early exaggeration phase), got {self.tsne_iter!r}")
        for name in ("ae_epochs", "neighbours", "knn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


@experiment(
    "dimensionality-reduction",
    config=Config,
    sweeps=(
        Sweep(
            "perplexity",
            (5.0, 30.0, 100.0),
            "How does t-SNE's perplexity change how well its map keeps each point's neighbours?",
            metric="trustworthiness_tsne",
        ),
    ),
)
def dimensionality_reduction(run: Run, cfg: Config) -> None:
    from sklearn.manifold import trustworthiness
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    d = digits()
    X = torch.cat([d.x_train, d.x_test])  # (1797, 64)
    y = torch.cat([d.y_train, d.y_test]).numpy()

    maps = {"PCA": PCA(2).fit_transform(X.double()).numpy()}
    run.progress(0.05, "PCA")
    torch.manual_seed(run.seed)
    ae = Autoencoder(64, 2, hidden=cfg.ae_hidden, output_activation="sigmoid").to(run.device)
    fit(
        ae,
        X.to(run.device),
        loss_fn=mse_loss,
        optimizer=Adam(ae.parameters(), lr=cfg.lr),
        epochs=5 if run.quick else cfg.ae_epochs,
        batch_size=64,
        seed=run.seed,
        callbacks=[ProgressCallback(lambda f, m: run.progress(0.05 + 0.35 * f, m), "autoencoder")],
    )
    ae.eval()
    with torch.no_grad():
        maps["autoencoder"] = ae.encode(X.to(run.device)).cpu().numpy()
    n_iter = 300 if run.quick else cfg.tsne_iter
    maps["t-SNE"] = (
        TSNE(perplexity=cfg.perplexity, max_iter=n_iter, random_state=run.seed)
        .fit_transform(
            X.double(), callback=lambda it, kl: run.progress(0.4 + 0.55 * it / n_iter, f"t-SNE iteration {it}")
        )
        .numpy()
    )

    tw, knn = {}, {}
    for name, Z in maps.items():
        tw[name] = float(trustworthiness(X.numpy(), Z, n_neighbors=cfg.neighbours))
        knn[name] = float(cross_val_score(KNeighborsClassifier(cfg.knn), Z, y, cv=5).mean())
        key = name.lower().replace("-", "")
        run.metric(f"trustworthiness_{key}", tw[name], key=(name == "t-SNE"))
        run.metric(f"knn_accuracy_2d_{key}", knn[name])
    for name in ("autoencoder", "t-SNE"):
        run.check(
            f"{name} map is more trustworthy than PCA's",
            tw[name] > tw["PCA"],
            observed=tw[name],
            expected=f"> {tw['PCA']:.4f} (PCA)",
        )
        run.check(
            f"2-D kNN accuracy on the {name} map beats PCA's",
            knn[name] > knn["PCA"],
            observed=knn[name],
            expected=f"> {knn['PCA']:.4f} (PCA)",
        )
    run.check(
        "t-SNE is the most trustworthy of the three maps",
        tw["t-SNE"] >= max(tw.values()),
        observed=tw["t-SNE"],
        expected=f">= {max(tw['PCA'], tw['autoencoder']):.4f}",
    )

    with run.figure(
        "maps",
        alt="the digits mapped to 2-D by PCA, an autoencoder and t-SNE, coloured by "
        "class, with trustworthiness and 2-D kNN accuracy in the titles",
        figsize=(13, 4.2),
    ) as fig:
        axes = fig.subplots(1, 3)
        for ax, (name, Z) in zip(axes, maps.items()):
            sc = ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=3)
            ax.set(title=f"{name}\ntrustworthiness {tw[name]:.3f}, kNN acc {knn[name]:.3f}", xticks=[], yticks=[])
        fig.colorbar(sc, ax=axes[-1], label="digit")
