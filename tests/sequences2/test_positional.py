"""Positional encodings: the paper's formula by hand, the shift-is-a-rotation property, learned rows."""

import math

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn.positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoidal_encoding


def test_sinusoidal_matches_formula():
    P = sinusoidal_encoding(50, 8)
    for p in (0, 1, 7, 49):
        for i in range(4):
            # float32 rule: the angle p / 10000^(2i/d) is rounded once, which moves sin and cos by eps * angle
            angle = p / 10000 ** (2 * i / 8)
            assert_close_f32(P[p, 2 * i], math.sin(angle), n=2, scale=max(1.0, angle))
            assert_close_f32(P[p, 2 * i + 1], math.cos(angle), n=2, scale=max(1.0, angle))


def test_shift_is_a_fixed_rotation():
    d, k = 16, 5
    P = sinusoidal_encoding(40, d).double()
    omega = torch.tensor([10000 ** (-2 * i / d) for i in range(d // 2)], dtype=torch.float64)
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    sin_p, cos_p = P[:-k, 0::2], P[:-k, 1::2]
    # sin(a + b) = sin a cos b + cos a sin b, cos(a + b) = cos a cos b - sin a sin b
    torch.testing.assert_close(P[k:, 0::2], sin_p * c + cos_p * s, atol=1e-6, rtol=0)
    torch.testing.assert_close(P[k:, 1::2], cos_p * c - sin_p * s, atol=1e-6, rtol=0)


def test_modules_add_encodings():
    x = torch.zeros(2, 5, 8)
    torch.testing.assert_close(SinusoidalPositionalEncoding(8, max_len=10)(x)[0], sinusoidal_encoding(5, 8))
    lp = LearnedPositionalEncoding(10, 8)
    torch.testing.assert_close(lp(x)[1], lp.embedding.weight[:5])
    lp(x).sum().backward()
    assert lp.embedding.weight.grad[:5].abs().sum() > 0 and (lp.embedding.weight.grad[5:] == 0).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="even"):
        sinusoidal_encoding(10, 7)
    with pytest.raises(ValueError, match="max_len"):
        LearnedPositionalEncoding(4, 8)(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match="max_len"):
        SinusoidalPositionalEncoding(8, max_len=4)(torch.zeros(1, 5, 8))
