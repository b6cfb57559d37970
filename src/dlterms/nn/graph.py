r"""Graph convolution (GCN) from the symmetric normalised adjacency with self-loops.

Kipf & Welling, "Semi-Supervised Classification with Graph Convolutional Networks", ICLR 2017.
One layer mixes every node's features with its neighbours' and then applies a shared linear map:

$$\hat A = A + I, \qquad \hat D_{ii} = \sum_j \hat A_{ij}, \qquad
  \tilde A = \hat D^{-1/2} \hat A \hat D^{-1/2}$$

$$H' = \tilde A \, H W + b$$

$\tilde A$ is built once per graph (`normalized_adjacency`) as a sparse (N, N) tensor. Since
$(\tilde A H) W = \tilde A (H W)$, the neighbour sum is taken over whichever of H (C columns) and HW
(C' columns) is narrower, so a layer costs O(|E| min(C, C')) rather than O(N^2 C). Node features are
(N, C): nodes play the role of the batch.
Stacking L layers (with a non-linearity between them) lets a node see its L-hop neighbourhood.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GCN", "GCNConv", "normalized_adjacency", "edge_index_from_networkx", "propagated"]


def edge_index_from_networkx(graph) -> torch.Tensor:
    """(2, 2|E|) int64 edge list of an undirected networkx graph, both directions, nodes 0..N-1."""
    nodes = list(graph.nodes())
    if sorted(nodes) != list(range(len(nodes))):
        raise ValueError("graph nodes must be the integers 0..N-1; relabel with nx.convert_node_labels_to_integers")
    pairs = [(u, v) for u, v in graph.edges() if u != v]
    if not pairs:
        return torch.zeros(2, 0, dtype=torch.int64)
    e = torch.tensor(pairs, dtype=torch.int64).t()  # (2, |E|)
    return torch.cat([e, e.flip(0)], dim=1)  # (2, 2|E|): undirected = both directions


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int, add_self_loops: bool = True) -> torch.Tensor:
    r"""Sparse $\tilde A = \hat D^{-1/2}(A + I)\hat D^{-1/2}$ as a (N, N) COO tensor.

    Args:
        edge_index: (2, E) int64, one column (source, target) per directed edge; duplicates are summed.
        num_nodes: N.
        add_self_loops: add I to A (Kipf & Welling's renormalisation trick).
    """
    if num_nodes < 1:
        raise ValueError(f"num_nodes must be >= 1, got {num_nodes}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValueError(f"edge_index refers to nodes outside 0..{num_nodes - 1}")
    row, col = edge_index.long()
    weight = torch.ones(row.numel())
    if add_self_loops:
        loop = torch.arange(num_nodes)
        row, col = torch.cat([row, loop]), torch.cat([col, loop])
        weight = torch.cat([weight, torch.ones(num_nodes)])
    # \hat D_ii = sum_j \hat A_ij
    deg = torch.zeros(num_nodes).index_add_(0, row, weight)
    d_inv_sqrt = deg.pow(-0.5)
    d_inv_sqrt[deg == 0] = 0.0  # an isolated node without self-loop keeps a zero row
    # \tilde A_ij = \hat A_ij / sqrt(\hat D_ii \hat D_jj)
    values = d_inv_sqrt[row] * weight * d_inv_sqrt[col]
    return torch.sparse_coo_tensor(
        torch.stack([row, col]), values, (num_nodes, num_nodes), check_invariants=True
    ).coalesce()


def propagated(adj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    r"""$\tilde A h$, every node's weighted sum over its neighbourhood: adj (N, N) sparse or dense, h (N, C)."""
    return torch.sparse.mm(adj, h) if adj.is_sparse else adj @ h


class GCNConv(nn.Module):
    r"""$H' = \tilde A H W + b$ with $\tilde A$ from `normalized_adjacency`.

    Args:
        in_channels: C, features per node in.
        out_channels: C', features per node out.
        bias: add a learnable b.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Glorot uniform, as in Kipf & Welling's code
        a = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -a, a)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, adj: torch.Tensor, ax: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, C) node features; adj: (N, N) normalised adjacency (sparse or dense) -> (N, C').

        `ax`, optional: $\tilde A x$ computed beforehand (`propagated(adj, x)`), for a layer that sees the
        same fixed features and graph at every step (the first layer in full-batch training); used
        when C < C', where the layer would compute exactly that product."""
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}), got {tuple(x.shape)}")
        if adj.dim() != 2 or adj.size(0) != adj.size(1) or adj.size(0) != x.size(0):
            raise ValueError(f"adj must have shape ({x.size(0)}, {x.size(0)}), got {tuple(adj.shape)}")
        if ax is not None and ax.shape != x.shape:
            raise ValueError(f"ax must have the shape of x {tuple(x.shape)}, got {tuple(ax.shape)}")
        if self.in_channels < self.out_channels:
            # (A-tilde X) W: the same product, with the neighbour sum over the narrower C columns
            h = (propagated(adj, x) if ax is None else ax) @ self.weight  # (N, C')
        else:
            h = x @ self.weight  # (N, C') = (N, C) @ (C, C')
            h = propagated(adj, h)  # (N, C'): sum over neighbours
        return h + self.bias if self.bias is not None else h

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}"


class GCN(nn.Module):
    r"""Kipf & Welling's two-layer node classifier (logits):
    $Z = \tilde A\,\mathrm{ReLU}(\tilde A X W_0) W_1$.

    `embed` returns the hidden layer, (N, hidden_channels), for plotting.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden_channels)
        self.conv2 = GCNConv(hidden_channels, out_channels)

    def embed(self, x: torch.Tensor, adj: torch.Tensor, ax: torch.Tensor | None = None) -> torch.Tensor:
        return torch.relu(self.conv1(x, adj, ax))  # (N, hidden)

    def forward(self, x: torch.Tensor, adj: torch.Tensor, ax: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (N, classes). `ax` (optional, `propagated(adj, x)`): the first layer's neighbour sum of
        the input features computed once, when the features and graph stay fixed over training
        (see `GCNConv.forward`)."""
        return self.conv2(self.embed(x, adj, ax), adj)  # (N, classes)
