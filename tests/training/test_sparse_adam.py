"""SparseAdam (lazy Adam) against torch.optim.SparseAdam on an embedding table with sparse gradients."""

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn import Embedding
from dlterms.optim import SparseAdam


def _tables(seed=0, V=50, d=6):
    torch.manual_seed(seed)
    ours = Embedding(V, d, sparse=True)
    ref = torch.nn.Embedding(V, d, sparse=True)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize("kw", [{}, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}, {"lr": 0.01, "maximize": True}])
def test_follows_torch_sparse_adam(kw):
    ours, ref = _tables()
    opt, opt_ref = SparseAdam(ours.parameters(), **kw), torch.optim.SparseAdam(ref.parameters(), **kw)
    g = torch.Generator().manual_seed(1)
    target = torch.randn(16, 6, generator=g)
    for _ in range(25):
        idx = torch.randint(0, 20, (16,), generator=g)  # rows 20..49 are never touched; repeats are common
        for m, o in ((ours, opt), (ref, opt_ref)):
            o.zero_grad()
            (m(idx) - target).pow(2).sum().backward()
            o.step()
    # 25 steps, each a row's gradient summed over up to 16 repeats of its index and ~10 Adam operations
    n = 25 * (16 + 10)
    assert_close_f32(ours.weight, ref.weight, n=n)
    state, state_ref = opt.state[ours.weight], opt_ref.state[ref.weight]
    assert_close_f32(state["exp_avg"], state_ref["exp_avg"], n=n)
    assert_close_f32(state["exp_avg_sq"], state_ref["exp_avg_sq"], n=n)


def test_untouched_rows_keep_weights_and_moments():
    ours, _ = _tables()
    before = ours.weight.detach().clone()
    opt = SparseAdam(ours.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ours(torch.tensor([1, 2, 2])).sum().backward()
        opt.step()
    assert torch.equal(ours.weight[3:], before[3:])
    assert torch.count_nonzero(opt.state[ours.weight]["exp_avg"][3:]) == 0
    assert not torch.equal(ours.weight[1:3], before[1:3])


def test_dense_gradients_are_refused_with_advice():
    w = torch.nn.Parameter(torch.randn(4, 3))
    opt = SparseAdam([w])
    w.sum().backward()
    with pytest.raises(RuntimeError, match="needs sparse gradients.*use Adam"):
        opt.step()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"lr": -1.0}, "lr must be >= 0, got -1.0"),
        ({"betas": (1.0, 0.9)}, r"betas\[0\] must be in \[0, 1\), got 1.0"),
        ({"eps": 0.0}, "eps must be > 0, got 0.0"),
    ],
)
def test_bad_hyperparameters_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        SparseAdam([torch.nn.Parameter(torch.zeros(2, 2))], **kw)
