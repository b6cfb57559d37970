r"""t-distributed stochastic neighbour embedding (t-SNE), exact gradient, vectorised in torch.

van der Maaten and Hinton (2008), "Visualizing Data using t-SNE", JMLR 9. Rows are examples
(batch first): $X \in \mathbb{R}^{N \times D}$ is embedded as $Y \in \mathbb{R}^{N \times d}$.

**Input affinities.** For each point $i$ a Gaussian over the others, with precision $\beta_i = 1/(2\sigma_i^2)$,

$$p_{j|i} = \frac{\exp(-\beta_i \lVert x_i - x_j\rVert^2)}{\sum_{k \ne i} \exp(-\beta_i \lVert x_i - x_k\rVert^2)},$$

where $\beta_i$ is found by binary search so that the entropy $H(P_i) = -\sum_j p_{j|i}\ln p_{j|i}$ equals
$\ln(\text{perplexity})$ (as scikit-learn's Barnes-Hut and openTSNE do, each Gaussian is limited to the
$3\,\text{perplexity}$ nearest neighbours, beyond which its weights are negligible).
The joint affinities are symmetrised, $p_{ij} = (p_{j|i} + p_{i|j}) / 2N$.

**Map affinities.** A Student-t kernel with one degree of freedom,

$$q_{ij} = \frac{(1 + \lVert y_i - y_j\rVert^2)^{-1}}{\sum_{k \ne l} (1 + \lVert y_k - y_l\rVert^2)^{-1}} .$$

**Objective and gradient.**

$$C = \mathrm{KL}(P\,\|\,Q) = \sum_{i \ne j} p_{ij} \ln\frac{p_{ij}}{q_{ij}}, \qquad
\frac{\partial C}{\partial y_i} = 4 \sum_j (p_{ij} - q_{ij})(1 + \lVert y_i - y_j\rVert^2)^{-1} (y_i - y_j).$$

**Optimisation** (the paper's and scikit-learn's schedule): gradient descent with momentum $\alpha$ and
per-coordinate gains (Jacobs, 1988),

$$g \leftarrow \begin{cases} g + 0.2 & \text{if } \operatorname{sign}(\nabla) \ne \operatorname{sign}(\Delta) \\
0.8\,g & \text{otherwise}\end{cases}, \quad
\Delta \leftarrow \alpha \Delta - \eta\, \max(g, g_{\min}) \odot \nabla, \quad Y \leftarrow Y + \Delta ,$$

with early exaggeration (all $p_{ij}$ multiplied by 12 and $\alpha = 0.5$ for the first 250
iterations, then $\alpha = 0.8$), which lets clusters form and move apart before the fine layout.
Initialisation: PCA, scaled to standard deviation $10^{-4}$ in the first coordinate (as scikit-learn).

The gradient is exact (every pair enters), computed in two parts: the attractive term over the non-zero
$p_{ij}$ only (a sparse product, $O(N \cdot 3\,\text{perplexity})$), the repulsive term over all pairs
($O(N^2)$ memory and time per iteration, fine for a few thousand points); see `_q_and_grad`.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch

from dlterms.nn._fastpath import declare

__all__ = ["TSNE", "kl_gradient", "joint_probabilities", "kl_divergence"]

_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- the gradient, as written


def kl_gradient(P: torch.Tensor, Y: torch.Tensor, exaggeration: float = 1.0) -> torch.Tensor:
    r"""The gradient of $C = \mathrm{KL}(P\,\|\,Q)$ at the map Y (N, d), from its equation (P (N, N) joint
    affinities, zero diagonal; each $p_{ij}$ multiplied by `exaggeration`):

    $$\frac{\partial C}{\partial y_i} = 4 \sum_j (e\,p_{ij} - q_{ij})\, n_{ij}\, (y_i - y_j), \qquad
      n_{ij} = (1 + \lVert y_i - y_j\rVert^2)^{-1}, \quad q_{ij} = n_{ij} / \textstyle\sum_{k \ne l} n_{kl} .$$

    Every pair's difference is formed, (N, N, d); `TSNE` computes the same values without it (below).
    """
    diff = Y[:, None, :] - Y[None, :, :]  # y_i - y_j, (N, N, d)
    n = 1.0 / (1.0 + diff.square().sum(dim=-1))  # n_ij, (N, N)
    n.fill_diagonal_(0)  # q_ii = 0: a point is not its own neighbour
    q = n / n.sum()  # q_ij
    # 4 sum_j (e p_ij - q_ij) n_ij (y_i - y_j)
    return 4 * (((exaggeration * P - q) * n)[:, :, None] * diff).sum(dim=1)


def _binary_search_perplexity(
    D: torch.Tensor, perplexity: float, tol: float = 1e-5, max_iter: int = 100
) -> torch.Tensor:
    """Conditional affinities p_{j|i} (N, K) from squared distances D (N, K) to each point's K candidate
    neighbours (the point itself excluded, or given distance inf), all rows searched at once."""
    N = D.shape[0]
    target = math.log(perplexity)  # desired entropy H(P_i) in nats
    beta = torch.ones(N, dtype=D.dtype)
    lo = torch.full((N,), -math.inf, dtype=D.dtype)
    hi = torch.full((N,), math.inf, dtype=D.dtype)
    D_finite = torch.where(torch.isinf(D), 0, D)  # an infinite distance has p = 0 and adds 0 to the entropy
    for _ in range(max_iter):
        # p_{j|i} proportional to exp(-beta_i D_ij)
        P = torch.exp(-D * beta[:, None])  # (N, K)
        sumP = P.sum(dim=1).clamp_min(_EPS)  # (N,)
        P = P / sumP[:, None]
        # H(P_i) = ln sum_j exp(-beta_i D_ij) + beta_i sum_j p_{j|i} D_ij
        H = torch.log(sumP) + beta * (P * D_finite).sum(dim=1)  # (N,)
        diff = H - target
        if diff.abs().max() <= tol:
            break
        too_flat = diff > 0  # entropy too high: raise the precision beta_i
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(
            too_flat,
            torch.where(torch.isinf(hi), beta * 2, (beta + hi) / 2),
            torch.where(torch.isinf(lo), beta / 2, (beta + lo) / 2),
        )
    return P


def joint_probabilities(X, perplexity: float = 30.0, n_neighbors: int | str | None = "auto") -> torch.Tensor:
    """Symmetric joint affinities p_ij = (p_{j|i} + p_{i|j}) / 2N (float64, (N, N), zero diagonal).

    `n_neighbors`: each Gaussian is restricted to the point's K nearest neighbours, as scikit-learn's
    Barnes-Hut and openTSNE do ("auto": K = min(N - 1, 3 perplexity + 1), beyond which the Gaussian
    weights are negligible); None uses all N - 1 other points.
    """
    X = torch.as_tensor(X).double()
    if X.dim() != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}")
    N = X.shape[0]
    if not 0 < perplexity < N:
        raise ValueError(f"perplexity must be in (0, n_samples={N}), got {perplexity}")
    if n_neighbors == "auto":
        K = min(N - 1, int(3.0 * perplexity + 1))
    elif n_neighbors is None:
        K = N - 1
    elif isinstance(n_neighbors, int) and 0 < n_neighbors < N:
        K = n_neighbors
    else:
        raise ValueError(f"n_neighbors must be 'auto', None or an int in 1..{N - 1}, got {n_neighbors!r}")
    sq = (X * X).sum(dim=1)
    # ||x_i - x_j||^2 = |x_i|^2 + |x_j|^2 - 2 x_i.x_j
    D = (sq[:, None] + sq[None, :] - 2 * X @ X.T).clamp_min_(0)  # (N, N)
    D.fill_diagonal_(math.inf)  # a point is not its own neighbour
    Dk, idx = torch.topk(D, K, dim=1, largest=False)  # (N, K) nearest squared distances and their indices
    Pk = _binary_search_perplexity(Dk, perplexity)  # (N, K)
    Pc = torch.zeros(N, N, dtype=torch.float64).scatter_(1, idx, Pk)  # conditional p_{j|i}, (N, N)
    P = Pc + Pc.T
    return (P / P.sum()).fill_diagonal_(0)


class _SparseP(NamedTuple):
    """The non-zero $p_{ij}$ of a symmetric P (N, N) in compressed-row form, for the attractive term."""

    flat: torch.Tensor  # (nnz,) i N + j, to read num_ij out of the dense (N, N) kernel
    values: torch.Tensor  # (nnz,) p_ij
    A: torch.Tensor  # sparse CSR (N, N) with P's pattern; its values are rewritten with p_ij n_ij
    plogp: float  # sum p ln p, the constant part of the KL
    total: float  # sum p (1 for a joint distribution)


def _sparse_p(P: torch.Tensor, dtype: torch.dtype) -> _SparseP:
    """Compress a dense P (N, N); its diagonal must be zero (a point is not its own neighbour)."""
    N = P.shape[0]
    rows, cols = P.nonzero(as_tuple=True)  # row-major, so rows are sorted
    values = P[rows, cols]
    crow = torch.zeros(N + 1, dtype=torch.long, device=P.device)
    crow[1:] = torch.bincount(rows, minlength=N).cumsum(0)
    plogp = float(torch.xlogy(values, values).sum())
    with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR @ dense is all we use
        warnings.simplefilter("ignore", UserWarning)
        A = torch.sparse_csr_tensor(
            crow, cols, torch.zeros_like(values, dtype=dtype), (N, N), check_invariants=False
        )  # the pattern comes from nonzero()
    return _SparseP(rows * N + cols, values.to(dtype), A, plogp, float(values.sum()))


def _q_and_grad(
    P: torch.Tensor | _SparseP, Y: torch.Tensor, exaggeration: float, with_kl: bool, out: torch.Tensor | None = None
):
    r"""Gradient of KL(P || Q) at Y with p_ij replaced by exaggeration * p_ij, and (optionally) KL(P || Q),
    exactly. The gradient splits into an attractive and a repulsive part,

    $$\frac{\partial C}{\partial y_i} = 4 e \sum_j p_{ij} n_{ij} (y_i - y_j)
      - \frac{4}{Z} \sum_j n_{ij}^2 (y_i - y_j), \qquad n_{ij} = (1 + \lVert y_i - y_j\rVert^2)^{-1},
      \; Z = \sum_{k \ne l} n_{kl} .$$

    The attractive part only needs the non-zero $p_{ij}$ (about 3 perplexity per row), so it is a
    sparse product; the repulsive part needs the dense kernel $n$ (N, N), written once into `out`
    and then squared in place: four passes over an (N, N) matrix per iteration. Both parts have the
    form $\sum_j w_{ij}(y_i - y_j) = y_i \sum_j w_{ij} - \sum_j w_{ij} y_j$, one product of W with [Y 1].
    P is a `_SparseP`, or a dense (N, N) tensor when most p_ij are non-zero (n_neighbors=None), where
    both parts share one weight matrix instead.
    """
    N = Y.shape[0]
    # the gradient depends on differences y_i - y_j only; centring keeps |y|^2 small, and with it the
    # cancellation in |y_i|^2 + |y_j|^2 - 2 y_i.y_j (float32 keeps 1 + ||y_i - y_j||^2 > 0 for any map size)
    Y = Y - Y.mean(dim=0)
    ones = Y.new_ones(N, 1)
    sq = (Y * Y).sum(dim=1, keepdim=True)  # |y_i|^2, (N, 1)
    # 1 + ||y_i - y_j||^2 = (|y_i|^2 + 1) + |y_j|^2 - 2 y_i.y_j, as one product:
    # [-2Y, |y|^2 + 1, 1] (N, d+2) x [Y, 1, |y|^2]^T (d+2, N) -> (N, N)
    num = torch.mm(torch.cat([-2 * Y, sq + 1, ones], dim=1), torch.cat([Y, ones, sq], dim=1).T, out=out)
    num.reciprocal_().fill_diagonal_(0)  # n_ij = (1 + ||y_i - y_j||^2)^-1, n_ii = 0
    Z = float(num.sum())  # normaliser of q_ij = n_ij / Z
    Y1 = torch.cat([Y, ones], dim=1)  # [Y 1], (N, d+1)
    if not isinstance(P, _SparseP):  # a dense P (n_neighbors=None): one (N, N) weight matrix for both parts
        kl = None
        if with_kl:  # sum p ln p - sum p ln q, 0 ln 0 = 0
            kl = float(torch.xlogy(P, P).sum() - (P * torch.log((num / Z).clamp_min_(_EPS))).sum())
        # dC/dy_i = 4 sum_j (e p_ij - n_ij / Z) n_ij (y_i - y_j) = 4 e sum_j w_ij (y_i - y_j),
        # w_ij = (p_ij - n_ij / (e Z)) n_ij;  W is symmetric, so W [Y 1] = ([Y 1]^T W)^T as below
        r = (Y1.T @ torch.sub(P, num, alpha=1 / (exaggeration * Z)).mul_(num)).T  # (N, d+1)
        return 4 * exaggeration * (r[:, -1:] * Y - r[:, :-1]), kl
    n_p = num.view(-1).take(P.flat)  # n_ij where p_ij != 0, (nnz,)
    kl = None
    if with_kl:
        # KL = sum p ln p - sum p ln q = sum p ln p - sum p ln n + (sum p) ln Z   (q clamped at eps)
        log_n = torch.log(n_p.double().clamp_min(_EPS * Z))
        kl = P.plogp - float((P.values.double() * log_n).sum()) + P.total * math.log(Z)
    # attractive: a_ij = p_ij n_ij (sparse); A [Y 1] -> (N, d+1) = [sum_j a_ij y_j, sum_j a_ij]
    torch.mul(P.values, n_p, out=P.A.values())
    attr = P.A @ Y1  # (N, d+1)
    # repulsive: n_ij^2; n is symmetric, so n^2 [Y 1] = ([Y 1]^T n^2)^T, and the (d+1, N) x (N, N)
    # product is ~5x faster in MKL than the (N, N) x (N, d+1) one
    rep = (Y1.T @ num.mul_(num)).T  # (N, d+1)
    # dC/dy_i = 4 e (y_i sum_j a_ij - sum_j a_ij y_j) - (4 / Z) (y_i sum_j n_ij^2 - sum_j n_ij^2 y_j)
    grad = 4 * (exaggeration * (attr[:, -1:] * Y - attr[:, :-1]) - (rep[:, -1:] * Y - rep[:, :-1]) / Z)
    return grad, kl


declare(
    kl_gradient,
    _q_and_grad,
    saves="No (N, N, d) tensor of differences: both parts of the gradient are products of a weight matrix "
    "with [Y 1], the attractive part only over the non-zero p_ij (a sparse product), the repulsive part "
    "over a kernel matrix written once and squared in place: four passes over one (N, N) matrix.",
)


def kl_divergence(P: torch.Tensor, Y) -> float:
    """KL(P || Q) of an embedding Y (N, d) under joint affinities P (N, N), exactly."""
    Y = torch.as_tensor(np.asarray(Y) if not isinstance(Y, torch.Tensor) else Y).to(P.dtype)
    return _q_and_grad(P, Y, 1.0, True)[1]


class TSNE:
    """Exact t-SNE with scikit-learn's defaults and interface (`fit_transform`, `kl_divergence_`).

    Args:
        n_components: map dimension d.
        perplexity: effective number of neighbours in the input Gaussians.
        early_exaggeration: factor on P during the first `exaggeration_iter` iterations.
        learning_rate: eta, or "auto" = max(N / early_exaggeration / 4, 50) (Belkina et al., 2019).
        max_iter: total iterations, including the exaggeration phase.
        init: "pca" or "random" (N(0, 1e-4^2)).
        random_state: seed for the random initialisation.
        n_neighbors: candidate neighbours per input Gaussian (see `joint_probabilities`).
        dtype: dtype of the optimisation (float32 is ~2x faster and ample for a 2-D map).
    """

    def __init__(
        self,
        n_components: int = 2,
        perplexity: float = 30.0,
        early_exaggeration: float = 12.0,
        learning_rate: float | str = "auto",
        max_iter: int = 1000,
        exaggeration_iter: int = 250,
        min_gain: float = 0.01,
        init: str = "pca",
        random_state: int = 0,
        n_neighbors: int | str | None = "auto",
        dtype: torch.dtype = torch.float32,
    ):
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
        if not perplexity > 0:
            raise ValueError(f"perplexity must be > 0, got {perplexity}")
        if not early_exaggeration >= 1:
            raise ValueError(f"early_exaggeration must be >= 1, got {early_exaggeration}")
        if learning_rate != "auto" and not (isinstance(learning_rate, int | float) and learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0 or 'auto', got {learning_rate!r}")
        if max_iter < exaggeration_iter or exaggeration_iter < 0:
            raise ValueError(
                f"max_iter must be >= exaggeration_iter >= 0, got max_iter={max_iter}, "
                f"exaggeration_iter={exaggeration_iter}"
            )
        if init not in ("pca", "random"):
            raise ValueError(f"init must be 'pca' or 'random', got {init!r}")
        self.n_components, self.perplexity, self.early_exaggeration = n_components, perplexity, early_exaggeration
        self.learning_rate, self.max_iter, self.exaggeration_iter = learning_rate, max_iter, exaggeration_iter
        self.min_gain, self.init, self.random_state, self.dtype = min_gain, init, random_state, dtype
        self.n_neighbors = n_neighbors

    def __repr__(self) -> str:
        return (
            f"TSNE(n_components={self.n_components}, perplexity={self.perplexity}, "
            f"early_exaggeration={self.early_exaggeration}, learning_rate={self.learning_rate!r}, "
            f"max_iter={self.max_iter})"
        )

    def _init(self, X: torch.Tensor) -> torch.Tensor:
        N = X.shape[0]
        if self.init == "pca":
            from dlterms.methods.pca import PCA

            Y = PCA(self.n_components).fit_transform(X)
            return Y / Y[:, 0].std(unbiased=False) * 1e-4
        g = torch.Generator().manual_seed(self.random_state)
        return 1e-4 * torch.randn(N, self.n_components, generator=g, dtype=torch.float64)

    def fit_transform(self, X, callback=None) -> torch.Tensor:
        """Embed X (N, D); returns Y (N, n_components). `callback(it, kl_or_None)` is called every
        50 iterations (with the exact KL) so callers can report progress."""
        X = torch.as_tensor(X).double()
        P64 = joint_probabilities(X, self.perplexity, self.n_neighbors)  # (N, N)
        N = X.shape[0]
        eta = max(N / self.early_exaggeration / 4, 50.0) if self.learning_rate == "auto" else self.learning_rate
        # the non-zero p_ij only, unless most are non-zero (n_neighbors=None or small N)
        P = _sparse_p(P64, self.dtype) if (P64 > 0).double().mean() < 0.25 else P64.to(self.dtype)
        Y = self._init(X).to(self.dtype)  # (N, d)
        num = torch.empty(N, N, dtype=self.dtype)  # the kernel n_ij, rewritten in place every iteration
        update = torch.zeros_like(Y)  # Delta
        gains = torch.ones_like(Y)  # g
        for it in range(self.max_iter):
            early = it < self.exaggeration_iter
            alpha = 0.5 if early else 0.8
            report = callback is not None and (it + 1) % 50 == 0
            grad, kl_it = _q_and_grad(P, Y, self.early_exaggeration if early else 1.0, report, out=num)
            # gains: +0.2 where gradient and previous update disagree in sign, x0.8 where they agree
            inc = update * grad < 0
            gains = torch.where(inc, gains + 0.2, gains * 0.8).clamp_min_(self.min_gain)
            # Delta <- alpha Delta - eta g * grad ;  Y <- Y + Delta
            update = alpha * update - eta * gains * grad
            Y = Y + update
            if report:
                callback(it + 1, kl_it)
        self.embedding_ = Y.double()
        self.P_ = P64
        self.kl_divergence_ = kl_divergence(P64, self.embedding_)
        self.n_iter_ = self.max_iter
        self.learning_rate_ = eta
        return self.embedding_
