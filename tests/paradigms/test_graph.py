"""GCN layer: normalised adjacency against networkx's normalised Laplacian, layer against a dense
NumPy computation, permutation equivariance, and errors."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn.graph import GCN, GCNConv, edge_index_from_networkx, normalized_adjacency


def test_normalized_adjacency_matches_networkx():
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    ours = normalized_adjacency(edge_index_from_networkx(g), n).to_dense().numpy()
    # networkx: L = I - D^-1/2 A D^-1/2 with D from row sums of A (self-loops included)
    h = nx.Graph(g.edges())
    h.add_edges_from((i, i) for i in range(n))
    ref = np.eye(n) - nx.normalized_laplacian_matrix(h, nodelist=range(n), weight=None).toarray()
    assert_close_f32(ours, ref, n=4)  # a_ij / sqrt(d_i d_j), against networkx in float64


def test_hand_worked_path_graph():
    # path 0-1: A+I = [[1,1],[1,1]], degrees 2 -> every entry 1/2
    a = normalized_adjacency(torch.tensor([[0, 1], [1, 0]]), 2).to_dense()
    assert_close_f32(a, torch.full((2, 2), 0.5), n=4)


def test_layer_matches_dense_numpy_and_gradients_flow():
    torch.manual_seed(0)
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    adj = normalized_adjacency(edge_index_from_networkx(g), n)
    x = torch.randn(n, 5, dtype=torch.float32)
    layer = GCNConv(5, 3)
    out = layer(x, adj)
    a = nx.to_numpy_array(g, nodelist=range(n), weight=None) + np.eye(n)
    d = np.diag(a.sum(1) ** -0.5)
    ref = d @ a @ d @ x.numpy() @ layer.weight.detach().numpy() + layer.bias.detach().numpy()
    # x W (5 terms) then a sum over each node's neighbours (at most 18 in the karate club), float64 reference
    assert_close_f32(out, ref, n=5 + 18 + 4)
    assert_close_f32(out, layer(x, adj.to_dense()), n=5 + 34 + 4)  # the dense product sums all 34 nodes
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_permutation_equivariance():
    torch.manual_seed(1)
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    ei = edge_index_from_networkx(g)
    perm = torch.randperm(n)
    inv = torch.argsort(perm)
    x = torch.randn(n, 4)
    model = GCN(4, 8, 2)
    out = model(x, normalized_adjacency(ei, n))
    out_p = model(x[perm], normalized_adjacency(inv[ei], n))  # node i is renamed inv[i]
    assert_close_f32(out_p, out[perm], n=2 * (8 + 18) + 4)  # two layers: neighbours summed in another order


def test_errors():
    with pytest.raises(ValueError, match="in_channels"):
        GCNConv(0, 3)
    with pytest.raises(ValueError, match="num_nodes"):
        normalized_adjacency(torch.zeros(2, 0, dtype=torch.int64), 0)
    with pytest.raises(ValueError, match="edge_index"):
        normalized_adjacency(torch.tensor([[0, 5]]), 3)
    with pytest.raises(ValueError, match="outside"):
        normalized_adjacency(torch.tensor([[0], [5]]), 3)
    layer = GCNConv(3, 2)
    with pytest.raises(ValueError, match="x must have shape"):
        layer(torch.zeros(4, 2), torch.eye(4))
    with pytest.raises(ValueError, match="adj must have shape"):
        layer(torch.zeros(4, 3), torch.eye(3))
    assert "3, 2" in repr(layer)
