"""dlterms.nn.Dropout against torch.nn.Dropout: identity in eval, same expectation in training."""

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn import Dropout
from dlterms.nn.dropout import dropout


def test_eval_is_identity_like_torch():
    x = torch.randn(8, 16)
    ours, ref = Dropout(0.3).eval(), torch.nn.Dropout(0.3).eval()
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_training_mask_and_scale(p):
    x = torch.randn(4000, 50)
    y = Dropout(p).train()(x)
    kept = y != 0
    # survivors are scaled by exactly 1/(1-p)
    assert_close_f32(y[kept], x[kept] / (1 - p), n=2, scale=x[kept].abs() / (1 - p))
    # fraction dropped within 4 standard errors of p
    frac = 1 - kept.float().mean().item()
    se = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(frac - p) < 4 * se


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_expectation_matches_torch(p):
    # E[y] = x for both; averaged over many masks, ours and torch's agree to sampling error.
    x = torch.linspace(-2, 2, 20)
    n = 20000
    ours = Dropout(p).train()(x.expand(n, -1)).mean(0)
    ref = torch.nn.Dropout(p).train()(x.expand(n, -1)).mean(0)
    se = x.abs() * (p / ((1 - p) * n)) ** 0.5  # std of the mean of x*m/(1-p)
    assert torch.all((ours - x).abs() < 5 * se + 1e-6)
    assert torch.all((ours - ref).abs() < 7 * se + 1e-6)


def test_gradient_is_mask_over_keep_probability():
    x = torch.randn(100, 10, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    y = dropout(x, 0.4, training=True, generator=g)
    y.sum().backward()
    expected = (y.detach() != 0).float() / 0.6
    assert_close_f32(x.grad, expected, n=2)


def test_seeded_generator_reproducible_and_edge_probabilities():
    x = torch.randn(30, 30)
    a = dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    b = dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.count_nonzero(Dropout(1.0).train()(x)) == 0
    assert torch.equal(Dropout(1.0).train()(x), torch.nn.Dropout(1.0).train()(x))


def test_inplace():
    x = torch.ones(1000)
    y = Dropout(0.5, inplace=True).train()(x)
    assert y.data_ptr() == x.data_ptr()
    assert set(torch.unique(x).tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"])
def test_bad_p(p):
    with pytest.raises(ValueError, match="p has to be between 0 and 1"):
        Dropout(p)


def test_repr():
    assert "p=0.3" in repr(Dropout(0.3))
