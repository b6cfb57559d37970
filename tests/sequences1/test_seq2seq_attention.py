"""Additive (Bahdanau) and dot-product (Luong) attention: shapes, masks, weights, references."""

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn import AdditiveAttention, DotProductAttention


def _inputs(B=3, Tq=4, Tk=6, dq=5, dk=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, Tq, dq, generator=g), torch.randn(B, Tk, dk, generator=g)


def test_additive_matches_the_formula_written_as_loops():
    attn = AdditiveAttention(5, 7, 8)
    q, k = _inputs(dk=7)
    ctx, w = attn(q, k)
    assert ctx.shape == (3, 4, 7) and w.shape == (3, 4, 6)
    for b in range(3):
        for i in range(4):
            # e_j = v^T tanh(W_q s + W_k h_j + b)
            e = torch.stack(
                [attn.v @ torch.tanh(attn.w_q @ q[b, i] + attn.w_k @ k[b, j] + attn.bias) for j in range(6)]
            )
            a = torch.exp(e) / torch.exp(e).sum()
            # sums over 5 and 7 inputs and 8 hidden units, a softmax over 6 keys, then a sum over the 6 keys
            assert_close_f32(w[b, i], a, n=5 + 7 + 8 + 6 + 4)
            assert_close_f32(ctx[b, i], (a[:, None] * k[b]).sum(0), n=5 + 7 + 8 + 6 + 4 + 6)


def test_scaled_dot_product_matches_torch():
    q, k = _inputs()
    v = torch.randn(3, 6, 2)
    mask = torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(1)) > 0.3
    mask[..., 0] = True
    ctx, _ = DotProductAttention(5, scaled=True)(q, k, v, mask=mask)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close_f32(ctx, ref, n=5 + 6 + 6 + 4)  # q.k over 5, softmax over 6 keys, the sum over 6 values


def test_luong_dot_and_general_scores():
    q, k = _inputs()
    _, w = DotProductAttention(5)(q, k)
    assert_close_f32(w, torch.softmax(q @ k.transpose(1, 2), -1), n=5 + 6 + 4)
    gen = DotProductAttention(5, 3, score="general")
    k3 = torch.randn(3, 6, 3)
    _, w = gen(q, k3)
    assert_close_f32(w, torch.softmax(torch.einsum("bid,de,bje->bij", q, gen.weight, k3), -1), n=5 * 3 + 6 + 4)


@pytest.mark.parametrize("make", [lambda: AdditiveAttention(5, 5, 4), lambda: DotProductAttention(5)])
def test_weights_sum_to_one_and_masked_keys_get_zero(make):
    attn = make()
    q, k = _inputs()
    lengths = torch.tensor([6, 2, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]  # (B, T_k) key padding
    ctx, w = attn(q, k, mask=mask)
    assert_close_f32(w.sum(-1), torch.ones(3, 4), n=6 + 6 + 4)
    assert (w[~mask.unsqueeze(1).expand_as(w)] == 0).all()
    # padded keys have no influence on the context
    k2 = k.clone()
    k2[1, 2:] = 100.0
    ctx2, _ = attn(q, k2, mask=mask)
    torch.testing.assert_close(ctx[1], ctx2[1])
    # a single query (B, d) gives (B, d_v) and (B, T_k)
    c1, w1 = attn(q[:, 0], k, mask=mask)
    assert c1.shape == (3, 5) and w1.shape == (3, 6)
    torch.testing.assert_close(c1, ctx[:, 0])


def test_precomputed_key_projection_gives_the_same_result():
    attn = AdditiveAttention(5, 5, 4)
    q, k = _inputs()
    a = attn(q, k)[0]
    b = attn(q, k, keys_proj=attn.project_keys(k))[0]
    torch.testing.assert_close(a, b)


def test_gradients_reach_every_parameter():
    attn = AdditiveAttention(5, 5, 4)
    q, k = _inputs()
    attn(q, k)[0].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attn.parameters())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        AdditiveAttention(3, 3, 0)
    with pytest.raises(ValueError, match="score must be 'dot' or 'general'"):
        DotProductAttention(3, score="concat")
    with pytest.raises(ValueError, match="needs query_size == key_size"):
        DotProductAttention(3, 4)
    with pytest.raises(ValueError, match="mask must be boolean"):
        DotProductAttention(5)(*_inputs(), mask=torch.ones(3, 6))
    with pytest.raises(ValueError, match="query_size=5"):
        AdditiveAttention(5, 5, 4)(torch.randn(3, 4), torch.randn(3, 6, 5))
    assert "hidden_size=4" in repr(AdditiveAttention(5, 5, 4))
