"""Linear and MLP against torch.nn.Linear / torch.nn.Sequential with the same weights."""

from __future__ import annotations

import math

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn import MLP, Linear, ReLU, Tanh


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_with_copied_weights(shape, bias):
    torch.manual_seed(0)
    ours = Linear(3, 6, bias=bias).double()
    ref = torch.nn.Linear(3, 6, bias=bias).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    xr = x.detach().clone().requires_grad_(True)
    y, yr = ours(x), ref(xr)
    torch.testing.assert_close(y, yr, rtol=1e-12, atol=1e-12)
    y.square().sum().backward()
    yr.square().sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-12, atol=1e-12)
    for (n, p), (nr, pr) in zip(ours.named_parameters(), ref.named_parameters(), strict=True):
        assert n == nr
        torch.testing.assert_close(p.grad, pr.grad, rtol=1e-12, atol=1e-12)


def test_default_init_draws_what_torch_draws():
    torch.manual_seed(7)
    ours = Linear(20, 11)
    torch.manual_seed(7)
    ref = torch.nn.Linear(20, 11)
    assert torch.equal(ours.weight, ref.weight) and torch.equal(ours.bias, ref.bias)
    bound = 1 / math.sqrt(20)
    assert ours.weight.abs().max() <= bound and ours.bias.abs().max() <= bound


def test_state_dicts_swap_both_ways():
    ref = torch.nn.Linear(4, 2)
    ours = Linear(4, 2)
    ours.load_state_dict(ref.state_dict())
    assert torch.equal(ours.weight, ref.weight)
    ref.load_state_dict(Linear(4, 2).state_dict())


def test_mlp_matches_torch_sequential_and_counts_parameters():
    sizes = [5, 16, 8, 3]
    torch.manual_seed(1)
    ours = MLP(sizes, activation="tanh")
    tnn = torch.nn
    ref = tnn.Sequential(tnn.Linear(5, 16), tnn.Tanh(), tnn.Linear(16, 8), tnn.Tanh(), tnn.Linear(8, 3))
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(9, 5)
    assert_close_f32(ours(x), ref(x), n=5 + 16 + 8 + 2)  # three layers' sums and two tanh
    n = sum(p.numel() for p in ours.parameters())
    assert n == sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:], strict=True))
    assert [type(m) for m in ours][:2] == [Linear, Tanh]
    assert len(ours.linear_layers) == 3


def test_mlp_copies_an_activation_instance_per_layer():
    m = MLP([2, 3, 3, 1], activation=torch.nn.PReLU())
    prelus = [layer for layer in m if isinstance(layer, torch.nn.PReLU)]
    assert len(prelus) == 2 and prelus[0] is not prelus[1]
    assert sum(p.numel() for p in m.parameters()) == (2 * 3 + 3) + (3 * 3 + 3) + (3 + 1) + 2


def test_mlp_options():
    m = MLP([2, 4, 1], activation=ReLU, bias=False, dropout=0.5, output_activation="sigmoid")
    assert all(layer.bias is None for layer in m.linear_layers)
    assert len(list(m.parameters())) == 2
    m.eval()
    y = m(torch.randn(10, 2))
    assert ((y > 0) & (y < 1)).all()
    assert MLP([3, 2]).sizes == (3, 2) and len(MLP([3, 2])) == 1
    assert "sizes=[2, 4, 1]" in repr(m)
    assert "in_features=2, out_features=4, bias=False" in repr(m)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="in_features must be a positive integer, got 0"):
        Linear(0, 3)
    with pytest.raises(ValueError, match="out_features must be a positive integer, got 2.5"):
        Linear(3, 2.5)
    with pytest.raises(ValueError, match=r"last dimension must be in_features=3, got shape \(4, 2\)"):
        Linear(3, 1)(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="sizes must list at least the input and output sizes"):
        MLP([3])
    with pytest.raises(ValueError, match="every entry of sizes must be a positive integer"):
        MLP([3, 0, 2])
    with pytest.raises(ValueError, match="dropout must be in \\[0, 1\\) or None, got 1.0"):
        MLP([3, 4, 2], dropout=1.0)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP([3, 4, 2], activation="nope")


def test_mlp_slice_gives_the_hidden_layers():
    import torch

    from dlterms.nn import MLP

    mlp = MLP([4, 8, 3])
    head = mlp[:2]
    x = torch.randn(5, 4)
    assert isinstance(head, torch.nn.Sequential) and len(head) == 2
    torch.testing.assert_close(mlp[2](head(x)), mlp(x))
    assert mlp[0] is head[0]
