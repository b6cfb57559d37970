"""Our t-SNE against scikit-learn's pieces: affinities, KL and gradient, and a small end-to-end map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from scipy.spatial.distance import pdist, squareform
from sklearn.datasets import load_iris
from sklearn.manifold import _t_sne, trustworthiness

from dlterms.methods.tsne import TSNE, _q_and_grad, _sparse_p, joint_probabilities, kl_divergence


@pytest.fixture(scope="module")
def iris():
    return load_iris().data.astype(np.float64)


def test_exact_affinities_match_sklearn(iris):
    ours = joint_probabilities(iris, perplexity=20.0, n_neighbors=None).numpy()
    D = squareform(pdist(iris, "sqeuclidean")).astype(np.float32)
    ref = squareform(_t_sne._joint_probabilities(D, 20.0, 0))
    np.testing.assert_allclose(ours, ref, atol=1e-7, rtol=1e-3)
    assert ours.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(ours, ours.T)


def test_knn_affinities_match_sklearn(iris):
    # iris has duplicate rows; a little jitter removes ties, so both pick the same K neighbours
    iris = iris + 1e-3 * np.random.default_rng(0).standard_normal(iris.shape)
    k = int(3 * 10 + 1)
    ours = joint_probabilities(iris, perplexity=10.0).numpy()
    D = squareform(pdist(iris, "sqeuclidean"))
    np.fill_diagonal(D, np.inf)
    idx = np.argsort(D, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(iris)), k)
    dist = csr_matrix((np.take_along_axis(D, idx, 1).ravel().astype(np.float32), (rows, idx.ravel())), shape=D.shape)
    ref = _t_sne._joint_probabilities_nn(dist, 10.0, 0).toarray()
    np.testing.assert_allclose(ours, ref, atol=1e-7, rtol=1e-3)


def test_perplexity_is_reached(iris):
    from dlterms.methods.tsne import _binary_search_perplexity

    X = torch.from_numpy(iris)
    D = torch.cdist(X, X).pow(2)
    D.fill_diagonal_(math.inf)
    P = _binary_search_perplexity(D, 15.0)
    H = -torch.xlogy(P, P).sum(1)
    assert (H - math.log(15.0)).abs().max() < 1e-4


def test_kl_and_gradient_match_sklearn_and_autograd(iris):
    P = joint_probabilities(iris, perplexity=20.0, n_neighbors=None)
    Y = torch.randn(len(iris), 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grad, kl = _q_and_grad(P, Y.clone(), 1.0, True)
    kl_ref, grad_ref = _t_sne._kl_divergence(Y.numpy().ravel(), squareform(P.numpy(), checks=False), 1, len(iris), 2)
    assert kl == pytest.approx(kl_ref, rel=1e-6)
    np.testing.assert_allclose(grad.numpy().ravel(), grad_ref, rtol=1e-6, atol=1e-10)
    # autograd of KL(P || Q) as a brute-force reference
    Yg = Y.clone().requires_grad_(True)
    num = 1 / (1 + torch.cdist(Yg, Yg).pow(2))
    num = num * (1 - torch.eye(len(Y), dtype=Y.dtype))
    Q = num / num.sum()
    mask = P > 0
    loss = (P[mask] * torch.log(P[mask] / Q[mask])).sum()
    loss.backward()
    np.testing.assert_allclose(grad.numpy(), Yg.grad.numpy(), rtol=1e-6, atol=1e-10)
    assert kl_divergence(P, Y) == pytest.approx(loss.detach().item(), rel=1e-9)


def test_small_map_preserves_neighbourhoods(iris):
    Y = TSNE(perplexity=20.0, max_iter=400).fit_transform(iris)
    assert Y.shape == (150, 2) and torch.isfinite(Y).all()
    assert trustworthiness(iris, Y.numpy(), n_neighbors=5) > 0.97


def test_deterministic(iris):
    a = TSNE(perplexity=10.0, max_iter=300, init="random", random_state=3).fit_transform(iris)
    b = TSNE(perplexity=10.0, max_iter=300, init="random", random_state=3).fit_transform(iris)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bad_input(iris):
    with pytest.raises(ValueError, match="perplexity must be > 0"):
        TSNE(perplexity=0)
    with pytest.raises(ValueError, match="init must be 'pca' or 'random'"):
        TSNE(init="spectral")
    with pytest.raises(ValueError, match="learning_rate must be > 0 or 'auto'"):
        TSNE(learning_rate=-1.0)
    with pytest.raises(ValueError, match="max_iter must be >= exaggeration_iter"):
        TSNE(max_iter=100)
    with pytest.raises(ValueError, match=r"perplexity must be in \(0, n_samples=150\)"):
        joint_probabilities(iris, perplexity=200.0)
    with pytest.raises(ValueError, match="n_neighbors must be"):
        joint_probabilities(iris, n_neighbors=0)
    with pytest.raises(ValueError, match="X must be 2-D"):
        joint_probabilities(iris[:, 0])


def _autograd_grad(P: torch.Tensor, Y: torch.Tensor, exaggeration: float) -> torch.Tensor:
    """Brute force with the dense (N, N) Q: autograd of -e sum p ln n + ln Z, whose gradient is the KL
    gradient with p_ij replaced by e p_ij (for e = 1 it is KL(P || Q) up to a constant)."""
    Yg = Y.clone().requires_grad_(True)
    num = (1 / (1 + torch.cdist(Yg, Yg).pow(2))) * (1 - torch.eye(len(Y), dtype=Y.dtype))
    mask = P > 0
    (-exaggeration * (P[mask] * torch.log(num[mask])).sum() + torch.log(num.sum())).backward()
    return Yg.grad


def test_sparse_attraction_matches_dense_autograd(iris):
    # the default P keeps 3 perplexity + 1 neighbours per row, so most p_ij are zero and the attractive
    # term runs over the non-zero ones only; the gradient must still be the exact one, exaggerated or not
    iris = iris + 1e-3 * np.random.default_rng(0).standard_normal(iris.shape)
    P = joint_probabilities(iris, perplexity=5.0)
    assert (P > 0).double().mean() < 0.2
    Y = 5 * torch.randn(len(iris), 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    S = _sparse_p(P, torch.float64)
    for e in (1.0, 12.0):
        grad, kl = _q_and_grad(S, Y, e, True)
        torch.testing.assert_close(grad, _autograd_grad(P, Y, e), rtol=1e-7, atol=1e-12)
        assert kl == pytest.approx(kl_divergence(P, Y), rel=1e-12)  # the dense path
        torch.testing.assert_close(grad, _q_and_grad(P, Y, e, False)[0], rtol=1e-9, atol=1e-15)
    # float32 (the default optimisation dtype), with a reused output buffer and a far-off map centre
    out = torch.empty(len(iris), len(iris))
    S32 = _sparse_p(P, torch.float32)
    ref = _q_and_grad(S, Y, 12.0, False)[0]
    for shift in (0.0, 1e3):
        g32, _ = _q_and_grad(S32, (Y + shift).float(), 12.0, False, out=out)
        torch.testing.assert_close(g32.double(), ref, rtol=1e-3, atol=1e-5 * ref.abs().max().item())


def test_small_map_with_sparse_affinities(iris):
    # perplexity 5 keeps 16 neighbours per row, so fit_transform takes the sparse attractive path
    P = joint_probabilities(iris, perplexity=5.0)
    assert (P > 0).double().mean() < 0.25
    Y = TSNE(perplexity=5.0, max_iter=400).fit_transform(iris)
    assert torch.isfinite(Y).all()
    assert trustworthiness(iris, Y.numpy(), n_neighbors=5) > 0.97
