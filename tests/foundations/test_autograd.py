"""The from-scratch Tensor against torch.autograd: values and gradients of every op over random shapes
(float64, tolerance 1e-10), gradient accumulation, a whole MLP, finite differences, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

from dlterms import autograd as ag
from dlterms.autograd import Tensor

TOL = {"rtol": 1e-10, "atol": 1e-12}
SETTINGS = settings(max_examples=40, deadline=None)


def _pair(arrays):
    """The same float64 arrays as our leaves and as torch leaves, both requiring grad."""
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    refs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, refs


def _compare(f_ours, f_torch, arrays, seed=0):
    """Run f on both; backpropagate the same random upstream gradient; compare values and grads."""
    ours, refs = _pair(arrays)
    y, yr = f_ours(*ours), f_torch(*refs)
    np.testing.assert_allclose(y.data, yr.detach().numpy(), **TOL)
    assert y.shape == tuple(yr.shape)
    w = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(w)
    yr.backward(torch.tensor(w))
    for a, b in zip(ours, refs, strict=True):
        expected = b.grad.numpy() if b.grad is not None else np.zeros(a.shape)
        got = a.grad if a.grad is not None else np.zeros(a.shape)
        np.testing.assert_allclose(got, expected, **TOL)


def _arrays(shapes, seed, positive=False):
    rng = np.random.default_rng(seed)
    out = [rng.standard_normal(s) for s in shapes]
    return [np.abs(a) + 0.5 if positive else a for a in out]


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "radd_scalar": (lambda a, b: 2.5 + a * b, lambda a, b: 2.5 + a * b),
    "rsub_rdiv": (lambda a, b: 1.0 - 3.0 / b + a, lambda a, b: 1.0 - 3.0 / b + a),
}


@SETTINGS
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
    op=st.sampled_from(sorted(BINARY)),
    seed=st.integers(0, 2**16),
)
def test_broadcasting_binary_ops_match_torch(shapes, op, seed):
    a, b = _arrays(shapes.input_shapes, seed)
    b = np.sign(b) * (np.abs(b) + 0.5)  # keep denominators away from 0
    _compare(*BINARY[op], [a, b], seed)


UNARY = {
    "exp": (Tensor.exp, torch.exp, False),
    "log": (Tensor.log, torch.log, True),
    "sqrt": (Tensor.sqrt, torch.sqrt, True),
    "abs": (Tensor.abs, torch.abs, False),
    "neg": (lambda x: -x, lambda x: -x, False),
    "pow3": (lambda x: x**3, lambda x: x**3, False),
    "pow-1.5": (lambda x: x**-1.5, lambda x: x**-1.5, True),
    "tanh": (Tensor.tanh, torch.tanh, False),
    "sigmoid": (Tensor.sigmoid, torch.sigmoid, False),
    "relu": (Tensor.relu, torch.relu, False),
    "leaky_relu": (lambda x: x.leaky_relu(0.2), lambda x: torch.nn.functional.leaky_relu(x, 0.2), False),
    "gelu": (Tensor.gelu, torch.nn.functional.gelu, False),
}


@SETTINGS
@given(
    shape=array_shapes(min_dims=0, max_dims=4, max_side=4),
    op=st.sampled_from(sorted(UNARY)),
    seed=st.integers(0, 2**16),
)
def test_elementwise_functions_match_torch(shape, op, seed):
    f, fr, positive = UNARY[op]
    _compare(f, fr, _arrays([shape], seed, positive) if positive else [3 * _arrays([shape], seed)[0]], seed)


def test_sigmoid_is_finite_for_huge_inputs():
    x = Tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = x.sigmoid()
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.25, 0.0])


@st.composite
def _shape_and_axis(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=4, max_side=4))
    axes = draw(
        st.one_of(st.none(), st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    )
    neg = draw(st.booleans())
    if axes is not None and neg:
        axes = [a - len(shape) for a in axes]
    return shape, axes, draw(st.booleans())


REDUCTIONS = {
    "sum": (
        Tensor.sum,
        lambda x, dim, keepdim: (
            x.sum(dim=dim, keepdim=keepdim)
            if dim is not None
            else (x.sum().reshape([1] * x.dim()) if keepdim else x.sum())
        ),
    ),
    "mean": (
        Tensor.mean,
        lambda x, dim, keepdim: (
            x.mean(dim=dim, keepdim=keepdim)
            if dim is not None
            else (x.mean().reshape([1] * x.dim()) if keepdim else x.mean())
        ),
    ),
    "max": (Tensor.max, lambda x, dim, keepdim: x.amax(dim=dim if dim is not None else [], keepdim=keepdim)),
    "min": (Tensor.min, lambda x, dim, keepdim: x.amin(dim=dim if dim is not None else [], keepdim=keepdim)),
    "var": (Tensor.var, lambda x, dim, keepdim: x.var(dim=dim, keepdim=keepdim)),
}


@SETTINGS
@given(case=_shape_and_axis(), op=st.sampled_from(sorted(REDUCTIONS)), seed=st.integers(0, 2**16), ties=st.booleans())
def test_reductions_match_torch(case, op, seed, ties):
    shape, axes, keepdims = case
    f, fr = REDUCTIONS[op]
    x = _arrays([shape], seed)[0]
    if ties:  # few distinct values: tied maxima share the gradient in both libraries
        x = np.round(x)
    dim = tuple(axes) if axes is not None else None
    n = int(np.prod([shape[a] for a in axes])) if axes is not None else int(np.prod(shape))
    if op == "var" and n < 2:
        return
    _compare(lambda t: f(t, axis=dim, keepdims=keepdims), lambda t: fr(t, dim, keepdims), [x], seed)


@SETTINGS
@given(
    batch=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
    n=st.integers(1, 4),
    k=st.integers(1, 4),
    m=st.integers(1, 4),
    kind=st.sampled_from(["mm", "vec_mat", "mat_vec", "vec_vec"]),
    seed=st.integers(0, 2**16),
)
def test_matmul_matches_torch(batch, n, k, m, kind, seed):
    ba, bb = batch.input_shapes
    sa = (k,) if kind in ("vec_mat", "vec_vec") else (*ba, n, k)
    sb = (k,) if kind in ("mat_vec", "vec_vec") else (*bb, k, m)
    _compare(lambda a, b: a @ b, lambda a, b: a @ b, _arrays([sa, sb], seed), seed)


def test_shape_ops_and_indexing_match_torch():
    x = _arrays([(2, 3, 4)], 1)[0]
    _compare(lambda t: t.reshape(4, 6) * 2, lambda t: t.reshape(4, 6) * 2, [x])
    _compare(lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1), [x])
    _compare(lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2), [x])
    _compare(lambda t: t.T, lambda t: t.permute(2, 1, 0), [x])
    _compare(lambda t: t[1, :, 1:3], lambda t: t[1, :, 1:3], [x])
    idx = np.array([0, 2, 2, 1])  # a repeated index: gradients add up
    _compare(lambda t: t[:, idx], lambda t: t[:, torch.tensor(idx)], [x])
    _compare(lambda a, b: ag.cat([a, b], axis=1), lambda a, b: torch.cat([a, b], dim=1), [x, x[:, :2] + 1])
    _compare(lambda a, b: ag.stack([a, b], axis=-1), lambda a, b: torch.stack([a, b], dim=-1), [x, x * 3])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_family_matches_torch(axis):
    x = 20 * _arrays([(5, 7)], axis + 5)[0]
    _compare(lambda t: t.softmax(axis), lambda t: torch.softmax(t, axis), [x])
    _compare(lambda t: t.log_softmax(axis), lambda t: torch.log_softmax(t, axis), [x])
    y = np.array([0, 6, 3, 3, 1])
    _compare(lambda t: t.cross_entropy(y), lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(y)), [x])
    target = _arrays([(5, 7)], 9)[0]
    _compare(lambda t: t.mse_loss(target), lambda t: torch.nn.functional.mse_loss(t, torch.tensor(target)), [x])


def test_reused_nodes_accumulate_and_leaf_grads_accumulate_over_calls():
    x = Tensor(3.0, requires_grad=True)
    y = x * x + x  # x used three times: dy/dx = 2x + 1 = 7
    y.backward()
    assert x.grad == 7.0
    (x * x + x).backward()
    assert x.grad == 14.0  # accumulates, as torch does, until zero_grad
    x.zero_grad()
    assert x.grad is None


def test_diamond_graph_and_retain_grad():
    x = Tensor([1.0, -2.0], requires_grad=True)
    h = (x * 2).retain_grad()
    y = (h.tanh() * h.exp()).sum()
    y.backward()
    xr = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    hr = xr * 2
    hr.retain_grad()
    (hr.tanh() * hr.exp()).sum().backward()
    np.testing.assert_allclose(x.grad, xr.grad.numpy(), **TOL)
    np.testing.assert_allclose(h.grad, hr.grad.numpy(), **TOL)


def test_long_chain_does_not_hit_the_recursion_limit():
    x = Tensor(0.5, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**5000, rel=1e-9)


def test_mlp_matches_torch_with_the_same_weights():
    rng = np.random.default_rng(0)
    net = ag.MLP([4, 8, 8, 3], activation="tanh", rng=rng)
    ref = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).double()
    for layer, rl in zip(net.layers, [ref[0], ref[2], ref[4]], strict=True):
        rl.weight.data = torch.tensor(layer.weight.data)
        rl.bias.data = torch.tensor(layer.bias.data)
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    loss = net(Tensor(x)).cross_entropy(y)
    loss.backward()
    lr = torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y))
    lr.backward()
    assert loss.item() == pytest.approx(lr.item(), rel=1e-12)
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
        "layers.2.weight",
        "layers.2.bias",
    ]
    for p, pr in zip(net.parameters(), ref.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, pr.grad.numpy(), **TOL)


def test_backward_agrees_with_central_finite_differences():
    rng = np.random.default_rng(1)
    net = ag.MLP([3, 5, 2], activation="sigmoid", rng=rng)
    x, y = Tensor(rng.standard_normal((7, 3))), rng.integers(0, 2, 7)
    net(x).cross_entropy(y).backward()
    numeric = ag.numerical_gradient(lambda: net(x).cross_entropy(y), net.parameters())
    for p, g in zip(net.parameters(), numeric, strict=True):
        assert ag.relative_error(p.grad, g) < 1e-7


def test_sgd_training_lowers_the_loss():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (64, 1))
    target = np.sin(3 * x)
    net = ag.MLP([1, 16, 1], activation="tanh", rng=rng)
    losses = ag.train(net, lambda m: m(Tensor(x)).mse_loss(target), ag.SGD(net.parameters(), lr=0.2), 300)
    assert losses[-1] < 0.2 * losses[0]


def test_no_grad_records_nothing():
    x = Tensor([1.0], requires_grad=True)
    with ag.no_grad():
        y = x * 2
    assert not y.requires_grad and ag.is_grad_enabled()


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="one-element tensor, got shape \\(2,\\)"):
        (Tensor([1.0, 2.0], requires_grad=True) * 2).backward()
    with pytest.raises(ValueError, match="does not require grad"):
        Tensor(1.0).backward()
    with pytest.raises(ValueError, match="gradient must have shape \\(2,\\), got \\(3,\\)"):
        (Tensor([1.0, 2.0], requires_grad=True) * 2).backward(np.ones(3))
    with pytest.raises(ValueError, match="axis must be an integer in \\[-2, 1\\].*got 2"):
        Tensor(np.ones((2, 2))).sum(axis=2)
    with pytest.raises(ValueError, match="cannot reshape a tensor of shape \\(2, 3\\) into shape \\(4,\\)"):
        Tensor(np.ones((2, 3))).reshape(4)
    with pytest.raises(ValueError, match="exponent must be a Python or NumPy number"):
        Tensor(1.0) ** Tensor(2.0)
    with pytest.raises(ValueError, match="matmul needs tensors of rank >= 1"):
        Tensor(1.0) @ Tensor([1.0])
    with pytest.raises(ValueError, match="targets must be class indices in \\[0, 2\\]"):
        Tensor(np.zeros((2, 3))).cross_entropy([0, 3])
    with pytest.raises(ValueError, match="cross_entropy needs logits \\(N, C\\) and targets \\(N,\\)"):
        Tensor(np.zeros(3)).cross_entropy([0])
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        ag.SGD([], lr=0)
    with pytest.raises(ValueError, match="activation must be one of"):
        ag.MLP([2, 2], activation="swish")
    with pytest.raises(ValueError, match="only floating tensors can require gradients"):
        Tensor(np.array([1, 2]), requires_grad=True, dtype=np.int64)
