"""Our functions under `torch.nn.functional`'s names and signatures, for `import dlterms.nn.functional as F`.

Each one calls the implementation written from its equations elsewhere in the library (`dlterms.nn`,
`dlterms.losses`); what is here only translates torch's signature. Options that we do not implement raise
a ValueError naming the argument instead of being ignored. Functions torch has and we do not (for
example `linear`, `pad`, `interpolate`) are absent: keep `torch.nn.functional` for those.
"""

from __future__ import annotations

import importlib

import torch

from dlterms import losses as _losses

# the modules themselves (dlterms.nn's attributes `dropout` and `embedding` are the functions of those names)
_act, _attention, _conv, _dropout, _embedding, _norm, _pool = (
    importlib.import_module(f"dlterms.nn.{m}")
    for m in ("activations", "attention", "conv", "dropout", "embedding", "normalization", "pooling")
)

__all__ = [
    "relu",
    "leaky_relu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "dropout",
    "embedding",
    "conv1d",
    "conv2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "layer_norm",
    "scaled_dot_product_attention",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "binary_cross_entropy_with_logits",
]


def _unsupported(name: str, value, default=None) -> None:
    """A ValueError unless `value` is the default (None, or False for a switch)."""
    if (value is not None) if default is None else bool(value) != bool(default):
        raise ValueError(f"{name}={value!r} is not supported by dlterms.nn.functional; leave it at {default!r}")


def _inplace(input: torch.Tensor, out: torch.Tensor, inplace: bool) -> torch.Tensor:
    return input.copy_(out) if inplace else out


def _legacy_reduction(size_average, reduce) -> None:
    # torch's size_average and reduce are deprecated in favour of `reduction`
    _unsupported("size_average", size_average)
    _unsupported("reduce", reduce)


# --------------------------------------------------------------------------- activations


def relu(input: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    return _inplace(input, _act.relu(input), inplace)


def leaky_relu(input: torch.Tensor, negative_slope: float = 0.01, inplace: bool = False) -> torch.Tensor:
    return _inplace(input, _act.leaky_relu(input, negative_slope), inplace)


def gelu(input: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    return _act.gelu(input, approximate)


def sigmoid(input: torch.Tensor) -> torch.Tensor:
    return _act.sigmoid(input)


def tanh(input: torch.Tensor) -> torch.Tensor:
    return _act.tanh(input)


def _softmax_args(input: torch.Tensor, dim, dtype) -> torch.Tensor:
    if dim is None:  # torch guesses a dimension from the rank, with a warning; we ask for it
        raise ValueError("dim=None is not supported by dlterms.nn.functional; pass the dimension, e.g. dim=-1")
    return input if dtype is None else input.to(dtype)


def softmax(input: torch.Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> torch.Tensor:
    return _act.softmax(_softmax_args(input, dim, dtype), dim)


def log_softmax(input: torch.Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> torch.Tensor:
    return _act.log_softmax(_softmax_args(input, dim, dtype), dim)


def dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> torch.Tensor:
    return _dropout.dropout(input, p, training, inplace)


# --------------------------------------------------------------------------- layers


def embedding(
    input: torch.Tensor,
    weight: torch.Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> torch.Tensor:
    _unsupported("max_norm", max_norm)
    _unsupported("scale_grad_by_freq", scale_grad_by_freq, False)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return _embedding.embedding(input, weight, padding_idx, sparse)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
    return _conv.conv1d(input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
    return _conv.conv2d(input, weight, bias, stride, padding, dilation, groups)


def max_pool1d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
) -> torch.Tensor:
    _unsupported("ceil_mode", ceil_mode, False)
    _unsupported("return_indices", return_indices, False)
    return _pool.max_pool1d(input, kernel_size, stride, padding, dilation)


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
) -> torch.Tensor:
    _unsupported("ceil_mode", ceil_mode, False)
    _unsupported("return_indices", return_indices, False)
    return _pool.max_pool2d(input, kernel_size, stride, padding, dilation)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> torch.Tensor:
    _unsupported("ceil_mode", ceil_mode, False)
    return _pool.avg_pool1d(input, kernel_size, stride, padding, count_include_pad)


def avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
) -> torch.Tensor:
    _unsupported("ceil_mode", ceil_mode, False)
    _unsupported("divisor_override", divisor_override)
    return _pool.avg_pool2d(input, kernel_size, stride, padding, count_include_pad)


def batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
) -> torch.Tensor:
    return _norm.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5) -> torch.Tensor:
    return _norm.layer_norm(input, tuple(normalized_shape), weight, bias, eps)


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """torch's convention: a boolean `attn_mask` is True where a query may attend (as ours), a float mask is
    added to the scores; dropout applies whenever dropout_p > 0 (torch has no training flag here)."""
    _unsupported("scale", scale)
    _unsupported("enable_gqa", enable_gqa, False)
    mask = attn_mask
    if is_causal:
        if attn_mask is not None:
            raise ValueError("pass either attn_mask or is_causal=True, not both (as torch)")
        mask = _attention.causal_mask(query.shape[-2], key.shape[-2], device=query.device)
    return _attention.scaled_dot_product_attention(query, key, value, mask, dropout_p, training=dropout_p > 0)


# --------------------------------------------------------------------------- losses


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    _legacy_reduction(size_average, reduce)
    return _losses.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


def nll_loss(
    input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean"
) -> torch.Tensor:
    _legacy_reduction(size_average, reduce)
    return _losses.nll_loss(input, target, weight, ignore_index, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> torch.Tensor:
    _legacy_reduction(size_average, reduce)
    _unsupported("weight", weight)
    return _losses.mse_loss(input, target, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> torch.Tensor:
    _legacy_reduction(size_average, reduce)
    _unsupported("weight", weight)
    return _losses.l1_loss(input, target, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> torch.Tensor:
    _unsupported("weight", weight)
    return _losses.huber_loss(input, target, reduction, delta)


def binary_cross_entropy_with_logits(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None
) -> torch.Tensor:
    _legacy_reduction(size_average, reduce)
    return _losses.binary_cross_entropy_with_logits(input, target, weight, reduction, pos_weight)
