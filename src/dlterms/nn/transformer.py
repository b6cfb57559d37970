r"""Multi-head attention and the transformer's encoder and decoder blocks.

Multi-head attention (Vaswani et al., 2017, "Attention Is All You Need", section 3.2.2) runs $h$
scaled dot-product attentions on learned projections of the same inputs and mixes their outputs:

$$\mathrm{head}_i = \mathrm{softmax}\!\Big(\frac{(QW_i^Q)(KW_i^K)^\top}{\sqrt{d_k}} + M\Big)\,VW_i^V,
\qquad \mathrm{MultiHead}(Q, K, V) = [\mathrm{head}_1; \dots; \mathrm{head}_h]\,W^O$$

with $d_k = d_{model}/h$. The $h$ projections $W_i^Q$ are stored side by side as one matrix, and
$W^Q, W^K, W^V$ are stacked into `in_proj_weight` (3 d_model, d_model), exactly PyTorch's layout, so
weights copy both ways with `torch.nn.MultiheadAttention`. The mask $M$ is 0 where a query may look
and $-\infty$ where it may not: a causal mask (key $j > i$ hidden from query $i$) and a key-padding
mask (padding keys hidden from everyone).

An encoder block (section 3.1) applies self-attention then a position-wise feed-forward network
$\mathrm{FFN}(x) = W_2\,\phi(W_1 x + b_1) + b_2$, each inside a residual connection with layer
normalisation. Post-norm (the paper, and BERT):

$$x \leftarrow \mathrm{LN}(x + \mathrm{MHA}(x, x, x)), \qquad x \leftarrow \mathrm{LN}(x + \mathrm{FFN}(x))$$

and pre-norm (`norm_first=True`, GPT-2 and most modern models): $x \leftarrow x + \mathrm{MHA}(\mathrm{LN}(x))$,
$x \leftarrow x + \mathrm{FFN}(\mathrm{LN}(x))$. A decoder block adds, between the two, cross-attention
whose queries come from the decoder and keys/values from the encoder's output ("memory"), and masks
its self-attention causally.

Layouts and defaults are PyTorch's: sequences are (T, B, C), or (B, T, C) with `batch_first=True` (the
project's own models pass it), or (T, C) unbatched. Inside, attention works batch first, on (B, nh, T, hs)
per-head tensors with C = nh * hs; every other operation is position-wise and does not care. Masks
have the same shapes in both layouts: key padding (B, T_k), attention (T_q, T_k) or (B * nh, T_q, T_k).
Parameter names follow `torch.nn.TransformerEncoderLayer`/`TransformerDecoderLayer`, so a state dict
from one loads into the other. The layer norm is injectable (`norm_layer`) and the activation may be
"relu", "gelu" or any callable.

`is_causal=True` (and the `*_is_causal` arguments) applies the causal mask, with or without an
`attn_mask`; in torch it is only a hint that the `attn_mask` given is causal (and without one it
raises). Left as None or False, as torch's defaults, only the masks given apply.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from dlterms.nn.activations import gelu, relu
from dlterms.nn.attention import scaled_dot_product_attention
from dlterms.nn.dropout import Dropout
from dlterms.nn.linear import Linear
from dlterms.nn.normalization import LayerNorm

__all__ = [
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "Transformer",
    "merge_masks",
]


def merge_masks(
    attn_mask: torch.Tensor | None,
    key_padding_mask: torch.Tensor | None,
    B: int,
    T_q: int,
    T_k: int,
    is_causal: bool = False,
    dtype=torch.float32,
    device=None,
) -> torch.Tensor | None:
    """One additive mask (B or 1, 1, T_q, T_k), 0 = may attend, -inf = may not, from PyTorch-style masks.

    `attn_mask` (T_q, T_k) or (B * nh, T_q, T_k) / `key_padding_mask` (B, T_k): boolean True = NOT allowed
    (PyTorch's convention), or float masks that are added to the scores. `is_causal` adds the causal mask.
    """
    neg_inf = torch.tensor(float("-inf"), dtype=dtype, device=device)
    out = None
    if attn_mask is not None:
        m = torch.where(attn_mask, neg_inf, 0.0) if attn_mask.dtype == torch.bool else attn_mask.to(dtype)
        if m.dim() == 2:
            if tuple(m.shape) != (T_q, T_k):
                raise ValueError(f"attn_mask must have shape ({T_q}, {T_k}), got {tuple(m.shape)}")
            m = m.view(1, 1, T_q, T_k)
        elif m.dim() == 3:
            if m.shape[0] % B or tuple(m.shape[1:]) != (T_q, T_k):
                raise ValueError(f"a 3-D attn_mask must have shape (B * num_heads, {T_q}, {T_k}), got {tuple(m.shape)}")
            m = m.view(B, -1, T_q, T_k)
        else:
            raise ValueError(f"attn_mask must be 2-D or 3-D, got {m.dim()}-D")
        out = m
    if is_causal:
        c = torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril(diagonal=T_k - T_q)
        c = torch.where(c, 0.0, neg_inf).view(1, 1, T_q, T_k)
        out = c if out is None else out + c
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (B, T_k):
            raise ValueError(f"key_padding_mask must have shape ({B}, {T_k}), got {tuple(key_padding_mask.shape)}")
        k = key_padding_mask
        k = torch.where(k, neg_inf, 0.0) if k.dtype == torch.bool else k.to(dtype)
        k = k.view(B, 1, 1, T_k)
        out = k if out is None else out + k
    return out


def _project(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    y = x @ w.T  # (B, T, E) @ (E, E)
    return y if b is None else y + b


class MultiheadAttention(nn.Module):
    """Multi-head attention with PyTorch's parameters: `in_proj_weight` (3E, E), `in_proj_bias` (3E,),
    `out_proj` (E -> E), and its arguments in its order. Inputs are query (T_q, B, E), key and value
    (T_k, B, E); (B, T, E) with `batch_first=True`; or (T, E) unbatched.

    Args:
        embed_dim: model width E.
        num_heads: number of heads h; E must be divisible by h.
        dropout: dropout on the attention weights (training only).
        bias: add biases to the input and output projections.
        add_bias_kv, add_zero_attn, kdim, vdim: torch's options for extra key/value rows and for keys and
            values of another width; not supported (a ValueError says so unless left at their defaults).
        batch_first: inputs and output are (B, T, E) instead of (T, B, E).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"num_heads must be >= 1 and divide embed_dim={embed_dim}, got {num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        for name, value in (("add_bias_kv", add_bias_kv), ("add_zero_attn", add_zero_attn)):
            if value:
                raise ValueError(f"{name}=True is not supported by dlterms.nn.MultiheadAttention, got {name}={value!r}")
        for name, value in (("kdim", kdim), ("vdim", vdim)):
            if value is not None and value != embed_dim:
                raise ValueError(
                    f"{name} must be None or embed_dim={embed_dim} (keys and values of another width are not "
                    f"supported), got {name}={value!r}"
                )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.kdim = self.vdim = embed_dim
        self.batch_first = bool(batch_first)
        kw = {"device": device, "dtype": dtype}
        # [W^Q; W^K; W^V] stacked (3E, E); head i uses rows i*hs:(i+1)*hs of each block
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **kw)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)  # W^O
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # as torch: Xavier-uniform projections, zero biases
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (output (T_q, B, E), or (B, T_q, E) when batch_first, or (T_q, E) unbatched; weights or None).

        Masks use PyTorch's convention: boolean True = may NOT attend, or float masks added to the
        scores. `attn_mask` (T_q, T_k) or (B * nh, T_q, T_k); `key_padding_mask` (B, T_k) ((T_k,)
        unbatched). Weights are (B, T_q, T_k) averaged over heads, or (B, nh, T_q, T_k) with
        `average_attn_weights=False` (without the B unbatched), in either layout.
        """
        dims = (query.dim(), key.dim(), value.dim())
        if dims not in ((3, 3, 3), (2, 2, 2)):
            layout = "(B, T, E)" if self.batch_first else "(T, B, E)"
            raise ValueError(
                f"query, key and value must all be 3-D {layout} or all 2-D (T, E) (unbatched), got "
                f"{query.dim()}-D, {key.dim()}-D, {value.dim()}-D"
            )
        batched = dims[0] == 3
        if not batched:  # one sequence: a batch of one
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # (T, B, E) -> (B, T, E) views
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        y, w = self._attend(
            query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal
        )
        if not batched:
            return y.squeeze(0), (None if w is None else w.squeeze(0))
        return (y if self.batch_first else y.transpose(0, 1)), w

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal):
        """Multi-head attention on batch-first query (B, T_q, E), key and value (B, T_k, E)."""
        B, T_q, E = query.shape
        T_k = key.shape[1]
        if E != self.embed_dim or key.shape[-1] != E or value.shape[-1] != E:
            raise ValueError(
                f"query, key and value must have last dimension embed_dim={self.embed_dim}, got "
                f"{E}, {key.shape[-1]}, {value.shape[-1]}"
            )
        if key.shape[:2] != value.shape[:2] or key.shape[0] != B:
            raise ValueError(
                f"key and value must have the same batch size and length, and the query's batch size {B}; "
                f"got (B, T, E) = {tuple(key.shape)} and {tuple(value.shape)}"
            )
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)  # each (E, E)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        # Q W^Q, K W^K, V W^V for all heads at once
        q = self._heads(_project(query, w_q, b_q))  # (B, nh, T_q, hs)
        k = self._heads(_project(key, w_k, b_k))  # (B, nh, T_k, hs)
        v = self._heads(_project(value, w_v, b_v))  # (B, nh, T_k, hs)
        mask = merge_masks(attn_mask, key_padding_mask, B, T_q, T_k, is_causal, dtype=q.dtype, device=q.device)
        # head_i = softmax(q_i k_i^T / sqrt(hs) + M) v_i
        y, w = scaled_dot_product_attention(
            q, k, v, mask=mask, dropout_p=self.dropout, training=self.training, return_weights=True
        )  # (B, nh, T_q, hs), (B, nh, T_q, T_k)
        y = y.transpose(1, 2).reshape(B, T_q, E)  # concatenate heads: (B, T_q, nh * hs)
        y = self.out_proj(y)  # [head_1; ...; head_h] W^O: (B, T_q, E)
        if not need_weights:
            return y, None
        return y, (w.mean(dim=1) if average_attn_weights else w)

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
        return s + (", batch_first=True" if self.batch_first else "")


def _activation(activation: str | Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(activation):
        return activation
    if activation == "relu":
        return relu
    if activation == "gelu":
        return gelu
    raise ValueError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")


NormFactory = Callable[[int, float], nn.Module]
"""norm_layer(d_model, eps) -> a layer normalisation module with `weight` and `bias`."""


def _default_norm(d_model: int, eps: float) -> nn.Module:
    return LayerNorm(d_model, eps=eps)


def _to(module: nn.Module, device, dtype) -> None:
    """torch's `device=` and `dtype=` factory arguments, for what was not built with them (the layer norms,
    whose ones and zeros convert exactly; attention and linear layers are made in place with them)."""
    if device is not None or dtype is not None:
        module.to(device=device, dtype=dtype)


def _check_block_args(d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
    if d_model < 1 or dim_feedforward < 1:
        raise ValueError(f"d_model and dim_feedforward must be >= 1, got {d_model} and {dim_feedforward}")
    if nhead < 1 or d_model % nhead:
        raise ValueError(f"nhead must be >= 1 and divide d_model={d_model}, got {nhead}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


class TransformerEncoderLayer(nn.Module):
    """Self-attention + feed-forward, each with a residual connection and layer norm (post-norm by
    default, pre-norm with `norm_first=True`). Input and output (T, B, d_model), or (B, T, d_model)
    with `batch_first=True`, or (T, d_model) unbatched.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
        norm_layer: NormFactory | None = None,
    ):
        super().__init__()
        _check_block_args(d_model, nhead, dim_feedforward, dropout)
        norm_layer = norm_layer or _default_norm
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.batch_first = self.self_attn.batch_first
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)  # W_1
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)  # W_2
        self.norm1 = norm_layer(d_model, layer_norm_eps)
        self.norm2 = norm_layer(d_model, layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.norm_first = norm_first
        self.activation = _activation(activation)
        self.last_attn_weights: torch.Tensor | None = None  # (B, nh, T, T) when keep_weights
        _to(self, device, dtype)

    def _sa(self, x, attn_mask, key_padding_mask, is_causal, keep_weights):
        y, w = self.self_attn(
            x,
            x,
            x,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            need_weights=keep_weights,
            average_attn_weights=False,
            is_causal=is_causal,
        )
        self.last_attn_weights = w
        return self.dropout1(y)

    def _ff(self, x):
        # FFN(x) = W_2 phi(W_1 x + b_1) + b_2
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool | None = False,
        keep_weights: bool = False,
    ) -> torch.Tensor:
        is_causal = bool(is_causal)
        x = src  # (T, B, C) or (B, T, C)
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal, keep_weights)
            x = x + self._ff(self.norm2(x))
        else:
            x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal, keep_weights))
            x = self.norm2(x + self._ff(x))
        return x


class TransformerDecoderLayer(nn.Module):
    """Self-attention, cross-attention to the encoder's `memory`, feed-forward; each with a residual
    connection and layer norm. tgt (T, B, d_model), memory (S, B, d_model) -> (T, B, d_model); batch
    first with `batch_first=True`. The self-attention is causal when `tgt_is_causal` or through `tgt_mask`.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
        norm_layer: NormFactory | None = None,
    ):
        super().__init__()
        _check_block_args(d_model, nhead, dim_feedforward, dropout)
        norm_layer = norm_layer or _default_norm
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.batch_first = self.self_attn.batch_first
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm1 = norm_layer(d_model, layer_norm_eps)
        self.norm2 = norm_layer(d_model, layer_norm_eps)
        self.norm3 = norm_layer(d_model, layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.norm_first = norm_first
        self.activation = _activation(activation)
        self.last_cross_weights: torch.Tensor | None = None  # (B, nh, T, S) when keep_weights
        _to(self, device, dtype)

    def _sa(self, x, mask, kpm, is_causal):
        return self.dropout1(
            self.self_attn(x, x, x, key_padding_mask=kpm, attn_mask=mask, need_weights=False, is_causal=is_causal)[0]
        )

    def _mha(self, x, mem, mask, kpm, is_causal, keep_weights):
        y, w = self.multihead_attn(
            x,
            mem,
            mem,
            key_padding_mask=kpm,
            attn_mask=mask,
            need_weights=keep_weights,
            average_attn_weights=False,
            is_causal=is_causal,
        )
        self.last_cross_weights = w
        return self.dropout2(y)

    def _ff(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        tgt_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        tgt_key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
        tgt_is_causal: bool | None = False,
        memory_is_causal: bool = False,
        keep_weights: bool = False,
    ) -> torch.Tensor:
        tgt_is_causal, memory_is_causal = bool(tgt_is_causal), bool(memory_is_causal)
        x = tgt  # (T, B, C) or (B, T, C)
        mem_args = (memory, memory_mask, memory_key_padding_mask, memory_is_causal, keep_weights)
        if self.norm_first:
            x = x + self._sa(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha(self.norm2(x), *mem_args)
            x = x + self._ff(self.norm3(x))
        else:
            x = self.norm1(x + self._sa(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha(x, *mem_args))
            x = self.norm3(x + self._ff(x))
        return x


class TransformerEncoder(nn.Module):
    """`num_layers` copies of an encoder layer, with an optional final norm (needed after pre-norm layers).

    `enable_nested_tensor` and `mask_check` are accepted for torch's signature and do nothing: torch
    uses them for a fast path on padded batches; here every batch runs the same equations.
    """

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: nn.Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.num_layers, self.norm = num_layers, norm

    def forward(
        self,
        src: torch.Tensor,
        mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool | None = None,
    ) -> torch.Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(nn.Module):
    """`num_layers` copies of a decoder layer, with an optional final norm."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: nn.Module | None = None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_layers))
        self.num_layers, self.norm = num_layers, norm

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        tgt_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        tgt_key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> torch.Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(
                x,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=tgt_is_causal,
                memory_is_causal=memory_is_causal,
            )
        return self.norm(x) if self.norm is not None else x


class Transformer(nn.Module):
    """The encoder-decoder transformer on embedded sequences (as `torch.nn.Transformer`): src (S, B, d_model),
    tgt (T, B, d_model) -> (T, B, d_model), or batch first with `batch_first=True`. Token embeddings,
    positional encodings and the output projection are the caller's (see `dlterms.nn.Embedding`,
    `dlterms.nn.positional`). The decoder's self-attention is causal only when asked: `tgt_is_causal=True`
    or a causal `tgt_mask` (`Transformer.generate_square_subsequent_mask(T)`), as in torch.
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = "relu",
        custom_encoder: nn.Module | None = None,
        custom_decoder: nn.Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
        norm_layer: NormFactory | None = None,
    ):
        super().__init__()
        norm_layer = norm_layer or _default_norm
        kw = dict(
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation=activation,
            layer_norm_eps=layer_norm_eps,
            batch_first=batch_first,
            norm_first=norm_first,
            bias=bias,
            device=device,
            dtype=dtype,
            norm_layer=norm_layer,
        )
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(d_model, nhead, **kw), num_encoder_layers, norm_layer(d_model, layer_norm_eps)
            )
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(d_model, nhead, **kw), num_decoder_layers, norm_layer(d_model, layer_norm_eps)
            )
        self.d_model, self.nhead, self.batch_first = d_model, nhead, bool(batch_first)
        _to(self, device, dtype)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """As torch.nn.Transformer: every weight matrix re-drawn Xavier-uniform once all are built (biases and
        norms keep their sublayers' initialisation), so the same seed gives torch's initial weights."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> torch.Tensor:
        """The causal mask (sz, sz) as an additive float mask: 0 where key j <= query i, -inf above."""
        dtype = torch.get_default_dtype() if dtype is None else dtype
        return torch.full((sz, sz), float("-inf"), device=device, dtype=dtype).triu_(diagonal=1)

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        tgt_key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> torch.Tensor:
        if src.dim() != tgt.dim():
            raise ValueError(f"src and tgt must both be batched or both unbatched, got {src.dim()}-D and {tgt.dim()}-D")
        if src.dim() == 3:
            b = 0 if self.batch_first else 1
            if src.shape[b] != tgt.shape[b]:
                raise ValueError(f"src and tgt must have the same batch size, got {src.shape[b]} and {tgt.shape[b]}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )
