"""MultiheadAttention and transformer blocks against torch with copied weights."""

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms.nn.attention import causal_mask, scaled_dot_product_attention
from dlterms.nn.transformer import MultiheadAttention, Transformer, TransformerDecoderLayer, TransformerEncoderLayer

# Roundings behind one output (the float32 rule of tests/_tolerance.py), at width E = 16 with heads of 4:
# attention: in-projection 16 -> scores 4 -> softmax and weighted sum over <= 7 keys -> out-projection 16
N_MHA = 16 + 4 + 7 + 7 + 16 + 4
N_WEIGHTS = 16 + 4 + 7 + 4
N_ENCODER = N_MHA + 2 * 16 + 16 + 32 + 2 * 16 + 4  # + LayerNorm, feed-forward 16 -> 32 -> 16, LayerNorm
N_DECODER = 2 * N_MHA + 3 * 2 * 16 + 16 + 32 + 4  # self- and cross-attention, three LayerNorms, feed-forward


def _pair(E=16, nh=4, bias=True):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(E, nh, bias=bias, batch_first=True)
    ours = MultiheadAttention(E, nh, bias=bias, batch_first=True)
    ours.load_state_dict(ref.state_dict())  # same parameter names and layout
    return ours, ref


@pytest.mark.parametrize("bias", [True, False])
def test_mha_equals_torch_self_and_cross(bias):
    ours, ref = _pair(bias=bias)
    g = torch.Generator().manual_seed(1)
    q, kv = torch.randn(3, 5, 16, generator=g), torch.randn(3, 7, 16, generator=g)
    for a, b in ((q, q), (q, kv)):
        yo, wo = ours(a, b, b)
        yr, wr = ref(a, b, b)
        assert_close_f32(yo, yr, n=N_MHA)
        assert_close_f32(wo, wr, n=N_WEIGHTS)


def test_mha_masks_and_per_head_weights_equal_torch():
    ours, ref = _pair()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 6, 16, generator=g)
    kpm = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])  # True = padding key
    causal = ~causal_mask(6)  # torch's convention: True = may NOT attend
    yo, wo = ours(x, x, x, key_padding_mask=kpm, attn_mask=causal, average_attn_weights=False)
    yr, wr = ref(x, x, x, key_padding_mask=kpm, attn_mask=causal, average_attn_weights=False)
    assert_close_f32(yo, yr, n=N_MHA)
    assert_close_f32(wo, wr, n=N_WEIGHTS)
    assert wo.shape == (2, 4, 6, 6)
    assert (wo.triu(1) == 0).all() and (wo[1, :, :, 4:] == 0).all()
    # is_causal=True is the same as passing the causal mask
    torch.testing.assert_close(ours(x, x, x, is_causal=True)[0], ours(x, x, x, attn_mask=causal)[0], atol=0, rtol=0)
    # float masks are added to the scores
    fm = torch.zeros(6, 6).masked_fill(causal, float("-inf"))
    assert_close_f32(ours(x, x, x, attn_mask=fm)[0], ref(x, x, x, attn_mask=fm)[0], n=N_MHA)


def test_mha_gradients_equal_torch():
    ours, ref = _pair()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(3))
    ours(x, x, x)[0].square().sum().backward()
    ref(x, x, x)[0].square().sum().backward()
    for (n, p), (_, r) in zip(ours.named_parameters(), ref.named_parameters()):
        assert_close_f32(p.grad, r.grad, n=2 * N_MHA + 2 * 5, msg=n)  # forward, backward, sum over 10 rows


def test_attention_core_equals_torch_sdpa():
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    for mask, causal in ((None, False), (causal_mask(5), True)):
        ours = scaled_dot_product_attention(q, k, v, mask=mask)
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        assert_close_f32(ours, ref, n=8 + 5 + 5 + 4)  # scores over 8, softmax and weighted sum over 5


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_and_decoder_layers_equal_torch(norm_first, activation):
    torch.manual_seed(0)
    kw = dict(dim_feedforward=32, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first)
    ref_e = torch.nn.TransformerEncoderLayer(16, 4, **kw).eval()
    ours_e = TransformerEncoderLayer(16, 4, **kw).eval()
    ours_e.load_state_dict(ref_e.state_dict())
    ref_d = torch.nn.TransformerDecoderLayer(16, 4, **kw).eval()
    ours_d = TransformerDecoderLayer(16, 4, **kw).eval()
    ours_d.load_state_dict(ref_d.state_dict())
    g = torch.Generator().manual_seed(5)
    src, tgt = torch.randn(2, 7, 16, generator=g), torch.randn(2, 5, 16, generator=g)
    kpm = torch.zeros(2, 7, dtype=torch.bool)
    kpm[1, 5:] = True
    with torch.no_grad():
        mem_o = ours_e(src, src_key_padding_mask=kpm)
        mem_r = ref_e(src, src_key_padding_mask=kpm)
        assert_close_f32(mem_o[0], mem_r[0], n=N_ENCODER)
        assert_close_f32(mem_o[1, :5], mem_r[1, :5], n=N_ENCODER)
        cm = torch.nn.Transformer.generate_square_subsequent_mask(5)
        out_o = ours_d(tgt, mem_r, tgt_mask=cm, memory_key_padding_mask=kpm)
        out_r = ref_d(tgt, mem_r, tgt_mask=cm, memory_key_padding_mask=kpm)
        assert_close_f32(out_o, out_r, n=N_DECODER)


def test_full_transformer_equals_torch():
    torch.manual_seed(0)
    kw = dict(
        d_model=16,
        nhead=2,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dim_feedforward=24,
        dropout=0.0,
        batch_first=True,
    )
    ref = torch.nn.Transformer(**kw).eval()
    ours = Transformer(**kw).eval()
    ours.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(6)
    src, tgt = torch.randn(2, 6, 16, generator=g), torch.randn(2, 4, 16, generator=g)
    with torch.no_grad():
        r = ref(src, tgt, tgt_mask=ref.generate_square_subsequent_mask(4), tgt_is_causal=True)
        o = ours(src, tgt, tgt_is_causal=True)
    assert_close_f32(o, r, n=2 * N_ENCODER + 2 * 16 + 2 * N_DECODER + 2 * 16)  # two of each and final norms


def test_causal_decoder_does_not_see_the_future():
    torch.manual_seed(0)
    layer = TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    mem = torch.randn(1, 3, 16)
    tgt = torch.randn(1, 6, 16)
    changed = tgt.clone()
    changed[:, 4:] += 10.0  # change only positions 4 and 5
    a = layer(tgt, mem, tgt_is_causal=True)
    b = layer(changed, mem, tgt_is_causal=True)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=0, rtol=0)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="dropout"):
        MultiheadAttention(8, 2, dropout=1.0)
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiheadAttention(8, 2, add_bias_kv=True)
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderLayer(8, 2, activation="swishy")
    with pytest.raises(ValueError, match="nhead"):
        TransformerDecoderLayer(8, 3)
    mha = MultiheadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="embed_dim"):
        mha(x, torch.randn(2, 3, 4), x)
