r"""Synthetic attributed graphs for node classification, drawn from a seeded generator.

`attributed_sbm` is a stochastic block model (Holland, Laskey & Leinhardt, 1983) whose nodes also carry
noisy feature vectors. Each of K classes has n nodes; every pair of distinct nodes (u, v) is joined
independently with probability

$$P(u \sim v) = \begin{cases} p_\text{in} & y_u = y_v \\ p_\text{out} & y_u \ne y_v \end{cases}$$

so the graph is homophilous (neighbours tend to share a label) when $p_\text{in} > p_\text{out}$,
and its edges say nothing about the labels when $p_\text{in} = p_\text{out}$. A node's features
are its class mean plus isotropic Gaussian noise, $x_v = \mu_{y_v} + \sigma \varepsilon_v$, with the
K means drawn once from $N(0, I_d)$. With a large $\sigma$ one node's features are ambiguous, and
averaging over same-class neighbours (what a GCN layer does on a homophilous graph) removes noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["AttributedGraph", "attributed_sbm", "class_gaussian_features", "edge_homophily", "sbm_edges"]


@dataclass(frozen=True)
class AttributedGraph:
    """A graph with node features and labels: `edge_index` (2, 2|E|) lists both directions."""

    x: torch.Tensor  # (N, d) float32 node features
    y: torch.Tensor  # (N,) int64 labels 0..K-1
    edge_index: torch.Tensor  # (2, 2|E|) int64, each undirected edge once per direction

    @property
    def num_nodes(self) -> int:
        return self.y.numel()


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p!r}")


def sbm_edges(y: torch.Tensor, p_in: float, p_out: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Undirected SBM edges among nodes with labels `y` (N,): (2, 2|E|) int64, both directions.

    Each pair of distinct nodes is joined with probability `p_in` if their labels agree, else `p_out`.
    """
    _check_probability("p_in", p_in)
    _check_probability("p_out", p_out)
    if y.dim() != 1:
        raise ValueError(f"y must have shape (N,), got {tuple(y.shape)}")
    same = y[:, None] == y[None, :]  # (N, N)
    prob = torch.where(same, torch.tensor(float(p_in)), torch.tensor(float(p_out)))
    draw = torch.rand(len(y), len(y), generator=generator) < prob
    e = torch.triu(draw, diagonal=1).nonzero().t()  # (2, |E|): each unordered pair once, no self-loops
    return torch.cat([e, e.flip(0)], dim=1)


def class_gaussian_features(
    y: torch.Tensor,
    classes: int,
    feature_dim: int,
    noise: float,
    generator: torch.Generator | None = None,
    means: str = "gaussian",
) -> torch.Tensor:
    """x_v = mu_{y_v} + noise * eps_v, (N, d) float32.

    `means="gaussian"`: the K means are drawn from N(0, I_d), so how far apart two classes lie varies
    from draw to draw. `means="orthogonal"`: the K means are sqrt(d) times K random orthonormal
    directions (needs K <= d), so every pair of classes lies at the same distance sqrt(2d), the
    root-mean-square distance of two N(0, I_d) draws: the features' difficulty is fixed by d and noise.
    """
    if not isinstance(feature_dim, int) or isinstance(feature_dim, bool) or feature_dim < 1:
        raise ValueError(f"feature_dim must be a positive integer, got {feature_dim!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    if means not in ("gaussian", "orthogonal"):
        raise ValueError(f"means must be 'gaussian' or 'orthogonal', got {means!r}")
    if means == "orthogonal" and classes > feature_dim:
        raise ValueError(f"means='orthogonal' needs classes <= feature_dim, got classes={classes!r}")
    mu = torch.randn(classes, feature_dim, generator=generator)  # (K, d)
    if means == "orthogonal":
        q, r = torch.linalg.qr(mu.t())  # (d, K) orthonormal columns spanning the drawn means
        mu = feature_dim**0.5 * (q * torch.sign(torch.diagonal(r))).t()  # signs fixed: a unique Q
    return mu[y] + noise * torch.randn(len(y), feature_dim, generator=generator)


def attributed_sbm(
    n_per_class: int,
    classes: int,
    p_in: float,
    p_out: float,
    feature_dim: int,
    noise: float,
    generator: torch.Generator | None = None,
) -> AttributedGraph:
    """Draw an attributed stochastic block model (see the module docstring).

    Args:
        n_per_class: nodes per class n; N = n * classes, node v has label v // n.
        classes: K >= 2.
        p_in, p_out: edge probabilities within a class and between classes, in [0, 1].
        feature_dim: d, features per node.
        noise: sigma, the feature noise's standard deviation (>= 0).
    """
    if not isinstance(n_per_class, int) or isinstance(n_per_class, bool) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 2:
        raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
    y = torch.arange(n_per_class * classes) // n_per_class  # (N,)
    edge_index = sbm_edges(y, p_in, p_out, generator)
    x = class_gaussian_features(y, classes, feature_dim, noise, generator)
    return AttributedGraph(x=x, y=y, edge_index=edge_index)


def edge_homophily(edge_index: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of edges whose two ends share a label (nan for a graph without edges)."""
    if edge_index.numel() == 0:
        return float("nan")
    return float((y[edge_index[0]] == y[edge_index[1]]).float().mean())
