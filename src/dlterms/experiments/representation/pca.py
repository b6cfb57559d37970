"""PCA: our SVD-based PCA on the 1797 digits (64 pixels) against scikit-learn's.

Three claims, each to 1e-8 or tighter in float64: (1) components equal scikit-learn's up to sign and
explained variances equal its values; (2) the projected coordinates are uncorrelated (largest
off-diagonal covariance); (3) for every k, the squared reconstruction error summed over examples and
divided by n - 1 equals the sum of the discarded eigenvalues.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import digits
from dlterms.methods.pca import PCA
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the pca experiment; the defaults are the recorded run."""

    k: int = 30  # components compared with scikit-learn's (beyond ~40 the eigenvalues reach 0)
    max_k: int = 40  # the reconstruction-error identity is checked for k = 1..max_k

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 40:
            raise ValueError(
                f"k must be in 1..40 (beyond, zero eigenvalues make the components arbitrary), got {self.k!r}"
            )
        if not 1 <= self.max_k <= 40:
            raise ValueError(
                f"max_k must be in 1..40 (beyond, the discarded eigenvalues are near 0), got {self.max_k!r}"
            )


@experiment("pca", config=Config)
def pca(run: Run, cfg: Config) -> None:
    from sklearn.decomposition import PCA as SkPCA

    d = digits()
    X = torch.cat([d.x_train, d.x_test]).double()  # all 1797 images, (1797, 64), pixels in [0, 1]
    y_np = torch.cat([d.y_train, d.y_test]).numpy()
    n = len(X)
    k = cfg.k  # beyond ~40 the digits' eigenvalues reach 0 (constant border pixels) and components are arbitrary

    ours = PCA(k).fit(X)
    ref = SkPCA(k, svd_solver="full").fit(X.numpy())
    C = ours.components_.numpy()
    signs = np.sign(np.sum(C * ref.components_, axis=1))
    comp_err = float(np.abs(C * signs[:, None] - ref.components_).max())
    var_err = float(np.abs(ours.explained_variance_.numpy() - ref.explained_variance_).max())
    ratio_err = float(np.abs(ours.explained_variance_ratio_.numpy() - ref.explained_variance_ratio_).max())
    run.metric("max_component_diff_vs_sklearn", comp_err)
    run.metric("max_explained_variance_diff_vs_sklearn", var_err)
    run.metric("max_explained_variance_ratio_diff", ratio_err)
    run.check_le("components equal scikit-learn's up to sign", comp_err, 1e-8)
    run.check_le("explained variance (and ratio) equal scikit-learn's", max(var_err, ratio_err), 1e-8)

    Z = ours.transform(X)  # (n, k)
    cov = torch.cov(Z.T)  # (k, k)
    off = float((cov - torch.diag(torch.diag(cov))).abs().max())
    diag_err = float((torch.diag(cov) - ours.explained_variance_).abs().max())
    run.metric("max_offdiag_cov_of_projections", off)
    run.check_le("projections are uncorrelated (largest off-diagonal covariance)", off, 1e-8)
    run.check_le("variance of each projection equals its eigenvalue", diag_err, 1e-8)

    full = PCA().fit(X)
    lam = full.all_explained_variance_
    ks = list(range(1, cfg.max_k + 1))
    errs, discarded = [], []
    for kk in ks:
        p = PCA(kk).fit(X)
        rec = p.inverse_transform(p.transform(X))
        errs.append(float((X - rec).pow(2).sum() / (n - 1)))
        discarded.append(float(lam[kk:].sum()))
    rel = max(abs(e - d) / d for e, d in zip(errs, discarded))
    run.metric("max_rel_diff_recon_error_vs_discarded_eigs", rel, key=True)
    run.check_le(f"reconstruction error = sum of discarded eigenvalues, k = 1..{cfg.max_k}", rel, 1e-8)
    run.metric("variance_explained_by_2_components", float(ours.explained_variance_ratio_[:2].sum()))
    run.metric("components_for_90pct_variance", int((torch.cumsum(lam / lam.sum(), 0) < 0.9).sum()) + 1)

    with run.figure(
        "pca",
        alt="left: digits projected on the first two principal components, coloured by "
        "class; right: reconstruction error and sum of discarded eigenvalues against k",
        figsize=(10, 4),
    ) as fig:
        a1, a2 = fig.subplots(1, 2)
        sc = a1.scatter(Z[:, 0], Z[:, 1], c=y_np, cmap="tab10", s=4)
        fig.colorbar(sc, ax=a1, label="digit")
        a1.set(xlabel="PC 1", ylabel="PC 2", title="digits on the first two components")
        a2.plot(ks, errs, "o", ms=4, label="reconstruction error / (n-1)")
        a2.plot(ks, discarded, "-", label="sum of discarded eigenvalues")
        a2.set(
            xlabel="components kept k",
            ylabel="squared error",
            yscale="log",
            title="error equals the discarded variance",
        )
        a2.legend()
