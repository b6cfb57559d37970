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


def test_attributed_sbm_edge_rates_and_homophily():
    from dlterms.data.graphs import attributed_sbm, edge_homophily

    g = attributed_sbm(200, 4, 0.05, 0.005, 8, 1.0, generator=torch.Generator().manual_seed(0))
    assert g.x.shape == (800, 8) and g.y.shape == (800,) and g.num_nodes == 800
    src, dst = g.edge_index
    assert (src != dst).all()  # no self-loops
    pairs = {(int(u), int(v)) for u, v in g.edge_index.t()}
    assert all((v, u) in pairs for u, v in pairs)  # undirected: both directions listed
    same = int((g.y[src] == g.y[dst]).sum()) // 2
    other = int((g.y[src] != g.y[dst]).sum()) // 2
    n_same, n_other = 4 * 200 * 199 // 2, (800 * 799 // 2) - 4 * 200 * 199 // 2
    # edge counts are binomial: within 5 standard deviations of their means
    for k, m, p in ((same, n_same, 0.05), (other, n_other, 0.005)):
        assert abs(k - m * p) < 5 * np.sqrt(m * p * (1 - p))
    assert edge_homophily(g.edge_index, g.y) == pytest.approx(same / (same + other))


def test_label_blind_sbm_has_base_rate_homophily():
    from dlterms.data.graphs import edge_homophily, sbm_edges

    y = torch.arange(1200) // 300
    e = sbm_edges(y, 0.01, 0.01, generator=torch.Generator().manual_seed(1))
    m = e.size(1) // 2
    expected = (4 * 300 * 299 / 2) / (1200 * 1199 / 2)  # fraction of pairs within a class
    assert abs(edge_homophily(e, y) - expected) < 5 * np.sqrt(expected * (1 - expected) / m)


def test_class_gaussian_features_noise_and_means():
    from dlterms.data.graphs import class_gaussian_features

    y = torch.arange(20000) % 2
    x = class_gaussian_features(y, 2, 3, 0.5, generator=torch.Generator().manual_seed(2))
    resid = torch.cat([x[y == c] - x[y == c].mean(0) for c in (0, 1)])
    assert resid.std().item() == pytest.approx(0.5, rel=0.02)
    clean = class_gaussian_features(y, 2, 3, 0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(clean[y == 0], clean[:1].expand(10000, 3))  # noise 0: every node at its class mean
    assert not torch.equal(clean[0], clean[1])


def test_graph_generator_errors():
    from dlterms.data.graphs import attributed_sbm, class_gaussian_features, sbm_edges

    with pytest.raises(ValueError, match="p_in"):
        sbm_edges(torch.zeros(3, dtype=torch.long), 1.5, 0.1)
    with pytest.raises(ValueError, match="classes"):
        attributed_sbm(10, 1, 0.1, 0.1, 2, 1.0)
    with pytest.raises(ValueError, match="noise"):
        class_gaussian_features(torch.zeros(3, dtype=torch.long), 1, 2, -1.0)
    with pytest.raises(ValueError, match="n_per_class"):
        attributed_sbm(0, 2, 0.1, 0.1, 2, 1.0)


def test_layer_sums_neighbours_over_the_narrower_side():
    # in < out: the layer takes (A-tilde X) W instead of A-tilde (X W); the same product
    torch.manual_seed(3)
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    adj = normalized_adjacency(edge_index_from_networkx(g), n)
    x = torch.randn(n, 3, dtype=torch.float64)
    layer = GCNConv(3, 7).double()
    ref = adj.double().to_dense() @ (x @ layer.weight) + layer.bias
    assert_close_f32(layer(x, adj.double()), ref.detach(), n=3 + 18 + 4)
    assert_close_f32(layer(x, adj.double().to_dense()), ref.detach(), n=3 + 34 + 4)


def test_class_gaussian_features_orthogonal_means_are_equidistant():
    from dlterms.data.graphs import class_gaussian_features

    y = torch.arange(4)
    mu = class_gaussian_features(y, 4, 16, 0.0, generator=torch.Generator().manual_seed(4), means="orthogonal")
    dist = torch.cdist(mu.double(), mu.double())
    off = dist[~torch.eye(4, dtype=torch.bool)]
    assert_close_f32(off, torch.full_like(off, (2 * 16) ** 0.5), n=16)  # every pair sqrt(2d) apart
    assert_close_f32(mu.norm(dim=1), torch.full((4,), 4.0), n=16)  # each mean at norm sqrt(d)
    with pytest.raises(ValueError, match="means"):
        class_gaussian_features(y, 4, 16, 1.0, means="uniform")
    with pytest.raises(ValueError, match="classes"):
        class_gaussian_features(torch.arange(5), 5, 4, 1.0, means="orthogonal")


def test_precomputed_first_layer_sum_gives_the_same_model(float64):
    """GCN(x, adj, ax) with ax = propagated(adj, x) computed once equals GCN(x, adj), in value and
    gradient, for sparse and dense adjacencies; a wrong-shaped ax is refused."""
    from dlterms.nn.graph import propagated

    torch.manual_seed(4)
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    adj = normalized_adjacency(edge_index_from_networkx(g), n).double()
    x = torch.randn(n, 3)
    model = GCN(3, 8, 2).double()
    for a in (adj, adj.to_dense()):
        want = model(x, a)
        gw = torch.autograd.grad(want.square().sum(), list(model.parameters()))
        got = model(x, a, propagated(a, x))
        gg = torch.autograd.grad(got.square().sum(), list(model.parameters()))
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        for u, v in zip(gg, gw):
            torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="ax must have the shape of x"):
        model(x, adj, x[:5])
