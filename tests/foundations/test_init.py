"""Initialisers: fans and gains as torch computes them, the same draws as torch.nn.init for the same
seed, and sample statistics that match the variance formulas."""

from __future__ import annotations

import math

import pytest
import torch

from dlterms.nn import init


@pytest.mark.parametrize("shape", [(30, 20), (8, 3, 5), (16, 4, 3, 3)])
def test_fans_match_torch(shape):
    t = torch.empty(shape)
    assert init.fan_in_and_fan_out(t) == torch.nn.init._calculate_fan_in_and_fan_out(t)


@pytest.mark.parametrize(
    "nl,param",
    [
        ("linear", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),
        ("selu", None),
        ("conv2d", None),
    ],
)
def test_gain_matches_torch(nl, param):
    assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param), rel=1e-15)


TI = torch.nn.init
CASES = [
    (lambda t, g: init.uniform_(t, -2, 3, generator=g), lambda t, g: TI.uniform_(t, -2, 3, generator=g)),
    (lambda t, g: init.normal_(t, 1, 2, generator=g), lambda t, g: TI.normal_(t, 1, 2, generator=g)),
    (lambda t, g: init.xavier_uniform_(t, 1.5, generator=g), lambda t, g: TI.xavier_uniform_(t, 1.5, generator=g)),
    (lambda t, g: init.xavier_normal_(t, generator=g), lambda t, g: TI.xavier_normal_(t, generator=g)),
    (
        lambda t, g: init.kaiming_uniform_(t, a=math.sqrt(5), generator=g),
        lambda t, g: TI.kaiming_uniform_(t, a=math.sqrt(5), generator=g),
    ),
    (
        lambda t, g: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=g),
        lambda t, g: TI.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=g),
    ),
]


@pytest.mark.parametrize("ours,ref", CASES)
def test_same_draws_as_torch_for_the_same_seed(ours, ref):
    a, b = torch.empty(40, 7, 3), torch.empty(40, 7, 3)
    ours(a, torch.Generator().manual_seed(3))
    ref(b, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def _var(fill, shape=(400, 500)):
    t = torch.empty(shape, dtype=torch.float64)
    fill(t, torch.Generator().manual_seed(0))
    return t.var().item(), t.mean().item(), t.abs().max().item()


def test_statistics_match_the_formulas():
    n_out, n_in = 400, 500
    # 200,000 draws: the sample variance is within ~1 % of the true one; we allow 3 %.
    v, m, _ = _var(lambda t, g: init.xavier_normal_(t, generator=g))
    assert v == pytest.approx(2 / (n_in + n_out), rel=0.03) and abs(m) < 1e-3
    v, m, mx = _var(lambda t, g: init.xavier_uniform_(t, generator=g))
    assert v == pytest.approx(2 / (n_in + n_out), rel=0.03)
    assert mx <= math.sqrt(6 / (n_in + n_out))
    v, _, _ = _var(lambda t, g: init.kaiming_normal_(t, nonlinearity="relu", generator=g))
    assert v == pytest.approx(2 / n_in, rel=0.03)
    v, _, mx = _var(lambda t, g: init.kaiming_uniform_(t, nonlinearity="relu", mode="fan_out", generator=g))
    assert v == pytest.approx(2 / n_out, rel=0.03)
    assert mx <= math.sqrt(3 * 2 / n_out)
    v, m, _ = _var(lambda t, g: init.uniform_(t, -1, 3, generator=g))
    assert v == pytest.approx(16 / 12, rel=0.03) and m == pytest.approx(1.0, abs=0.01)


def test_initialisers_do_not_record_gradients_and_fill_constants():
    w = torch.nn.Parameter(torch.empty(3, 4))
    init.kaiming_uniform_(w)
    assert w.grad_fn is None and w.requires_grad
    assert torch.equal(init.zeros_(torch.empty(2)), torch.zeros(2))
    assert torch.equal(init.ones_(torch.empty(2)), torch.ones(2))


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="at least 2 dimensions, got shape \\(5,\\)"):
        init.xavier_uniform_(torch.empty(5))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal_(torch.empty(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity must be one of .* got 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="std must be >= 0, got -1"):
        init.normal_(torch.empty(3), std=-1)
    with pytest.raises(ValueError, match="a <= b, got a=2, b=1"):
        init.uniform_(torch.empty(3), 2, 1)
