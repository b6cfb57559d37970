"""Representations: our PCA (SVD) and t-SNE (exact gradient, torch) against scikit-learn and openTSNE.

PCA at the experiment's size (1797 digits x 64) and at 10x (17970 x 64, the digits repeated with small
noise); `diff` is the largest |component| difference up to sign. t-SNE on the 1797 digits with the same
settings as the tsne experiment (perplexity 30, 1000 iterations, PCA init); one timed run each, and
`diff` is |KL(ours) - KL(reference)| with both maps scored exactly under our P.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks._harness import Case
from dlterms.data.datasets import digits
from dlterms.methods.pca import PCA
from dlterms.methods.tsne import TSNE, kl_divergence

_TSNE_NOTE = (
    "ours: exact gradient, the attractive term over the non-zero p_ij (sparse product), the "
    "repulsive term over all N^2 pairs in float32 in one reused buffer; scikit-learn and openTSNE "
    "approximate the repulsion (Barnes-Hut / FFT interpolation, O(N log N)) in compiled code"
)


def _digits_x() -> np.ndarray:
    d = digits()
    return torch.cat([d.x_train, d.x_test]).double().numpy()


def _pca_case(X: np.ndarray, size: str) -> Case:
    from sklearn.decomposition import PCA as SkPCA

    k = 30
    Xt = torch.from_numpy(X)

    def diff() -> float:
        C = PCA(k).fit(Xt).components_.numpy()
        R = SkPCA(k, svd_solver="full").fit(X).components_
        signs = np.sign(np.sum(C * R, axis=1))
        return float(np.abs(C * signs[:, None] - R).max())

    return Case(
        "PCA fit (k=30)",
        size,
        lambda: PCA(k).fit(Xt),
        lambda: SkPCA(k, svd_solver="full").fit(X),
        diff=diff,
        reference_name="scikit-learn",
    )


def _tsne_cases() -> list[Case]:
    X = _digits_x()
    out: dict[str, np.ndarray] = {}
    ours_model = TSNE(perplexity=30.0, max_iter=1000, random_state=0)

    def ours():
        out["ours"] = ours_model.fit_transform(X).numpy()

    def sk():
        from sklearn.manifold import TSNE as SkTSNE

        out["sklearn"] = SkTSNE(
            perplexity=30.0, max_iter=1000, init="pca", learning_rate="auto", random_state=0
        ).fit_transform(X)

    def otsne():
        from openTSNE import TSNE as OTSNE

        out["openTSNE"] = np.asarray(
            OTSNE(perplexity=30.0, n_iter=750, initialization="pca", n_jobs=1, random_state=0).fit(X)
        )

    def kl_diff(ref: str):
        def diff() -> float:
            P = ours_model.P_
            return abs(kl_divergence(P, torch.from_numpy(out["ours"])) - kl_divergence(P, torch.from_numpy(out[ref])))

        return diff

    size = "1797 digits x 64 (experiment), 1000 iterations"
    cases = [
        Case(
            "t-SNE",
            size,
            ours,
            sk,
            diff=kl_diff("sklearn"),
            reference_name="scikit-learn",
            note=_TSNE_NOTE,
            repeats=1,
            warmup=0,
        )
    ]
    try:
        import openTSNE  # noqa: F401
    except ImportError:
        return cases
    cases.append(
        Case(
            "t-SNE",
            size + " (openTSNE: 250 + 750)",
            ours,
            otsne,
            diff=kl_diff("openTSNE"),
            reference_name="openTSNE",
            note=_TSNE_NOTE,
            repeats=1,
            warmup=0,
        )
    )
    return cases


def cases() -> list[Case]:
    X = _digits_x()
    rng = np.random.default_rng(0)
    X10 = np.concatenate([X + 0.01 * rng.standard_normal(X.shape) for _ in range(10)])
    return [_pca_case(X, "1797 x 64 (experiment)"), _pca_case(X10, "17970 x 64 (10x)"), *_tsne_cases()]
