r"""Affine integer quantization: observers, (fake-)quantize, and post-training quantization of a model.

Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018; Krishnamoorthi, "Quantizing deep convolutional networks for efficient
inference: A whitepaper", 2018. A real tensor $x$ is stored as integers $q$ in $[q_{\min}, q_{\max}]$
with a scale $s > 0$ and an integer zero-point $z$:

$$q = \mathrm{clamp}\big(\mathrm{round}(x / s) + z,\; q_{\min},\; q_{\max}\big), \qquad \hat x = s\,(q - z)$$

An observer watches the range $[\min x, \max x]$ (widened to include 0, so that 0 is exact) and picks

$$\text{affine: } s = \frac{\max x - \min x}{q_{\max} - q_{\min}}, \quad z = q_{\min} - \mathrm{round}(\min x / s)
\qquad \text{symmetric: } s = \frac{\max |x|}{(q_{\max} - q_{\min}) / 2}, \quad z = 0$$

(PyTorch's observer formulas, so the two agree bit for bit). Per-channel quantization keeps one
$(s, z)$ per output channel (row of a weight matrix). Fake quantization returns $\hat x$ in float,
to simulate the rounding error (used for the accuracy-versus-bits sweep).

`QuantizedLinear` is post-training dynamic quantization as PyTorch's `quantize_dynamic` does it:
int8 weights (symmetric, per channel or per tensor), and the input quantized to uint8 on the fly
with its own range, so that

$$y = s_x s_w \big[(q_x - z_x)\, q_w^{\top}\big] + b$$

is one integer matrix product and one rescale. The integer product is computed exactly in
float32 (products of 8-bit integers summed over fewer than 2^24 / (127 * 255) ~ 518 terms are exact);
on hardware with int8 kernels it is what runs as integers.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = [
    "qrange",
    "calculate_qparams",
    "quantize",
    "dequantize",
    "fake_quantize",
    "MinMaxObserver",
    "PerChannelMinMaxObserver",
    "QuantizedLinear",
    "quantize_dynamic",
    "model_size_bytes",
]

_EPS = torch.finfo(torch.float32).eps


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """(q_min, q_max) of a `bits`-bit integer: signed [-2^(b-1), 2^(b-1)-1], unsigned [0, 2^b-1]."""
    if not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an integer in 2..16, got {bits!r}")
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def calculate_qparams(
    min_val: torch.Tensor, max_val: torch.Tensor, qmin: int, qmax: int, symmetric: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero-point (tensors of min_val's shape) for the observed range [min_val, max_val]."""
    min_val, max_val = torch.as_tensor(min_val, dtype=torch.float32), torch.as_tensor(max_val, dtype=torch.float32)
    if torch.any(min_val > max_val):
        raise ValueError(f"min_val must be <= max_val, got {min_val} and {max_val}")
    min_neg = torch.clamp(min_val, max=0.0)  # the range always contains 0
    max_pos = torch.clamp(max_val, min=0.0)
    if symmetric:
        max_pos = torch.maximum(-min_neg, max_pos)
        scale = max_pos / ((qmax - qmin) / 2)  # s = max|x| / ((q_max - q_min) / 2)
        scale = torch.clamp(scale, min=_EPS)
        zp = torch.full_like(scale, 0 if qmin < 0 else (qmin + qmax + 1) // 2)
    else:
        scale = (max_pos - min_neg) / (qmax - qmin)  # s = (max - min) / (q_max - q_min)
        scale = torch.clamp(scale, min=_EPS)
        zp = qmin - torch.round(min_neg / scale)  # z = q_min - round(min / s)
        zp = torch.clamp(zp, qmin, qmax)
    return scale, zp.to(torch.int64)


def _bcast(t: torch.Tensor, x: torch.Tensor, axis: int | None) -> torch.Tensor:
    if axis is None or t.dim() == 0:
        return t
    shape = [1] * x.dim()
    shape[axis] = -1
    return t.reshape(shape)


def quantize(x: torch.Tensor, scale, zero_point, qmin: int, qmax: int, axis: int | None = None) -> torch.Tensor:
    """q = clamp(round(x / s) + z, q_min, q_max), as int64 (per channel along `axis` when given)."""
    s = _bcast(torch.as_tensor(scale, dtype=torch.float32), x, axis)
    z = _bcast(torch.as_tensor(zero_point), x, axis)
    return torch.clamp(torch.round(x / s) + z, qmin, qmax).to(torch.int64)


def dequantize(q: torch.Tensor, scale, zero_point, axis: int | None = None) -> torch.Tensor:
    """x_hat = s (q - z), float32."""
    s = _bcast(torch.as_tensor(scale, dtype=torch.float32), q, axis)
    z = _bcast(torch.as_tensor(zero_point), q, axis)
    return s * (q - z).to(torch.float32)


def fake_quantize(x: torch.Tensor, scale, zero_point, qmin: int, qmax: int, axis: int | None = None) -> torch.Tensor:
    """dequantize(quantize(x)): x with the rounding and clipping error of the integer grid."""
    return dequantize(quantize(x, scale, zero_point, qmin, qmax, axis), scale, zero_point, axis)


class MinMaxObserver(nn.Module):
    """Running min and max of every tensor it sees; `calculate_qparams` turns them into (s, z).

    Args:
        bits: integer width.
        signed: signed integers (int8) or unsigned (uint8).
        symmetric: symmetric range around 0 (z = 0 for signed) or affine.
    """

    axis: int | None = None

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False):
        super().__init__()
        self.qmin, self.qmax = qrange(bits, signed)
        self.bits, self.signed, self.symmetric = bits, signed, symmetric
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    def _reduce(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.detach().min(), x.detach().max()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self._reduce(x)
        self.min_val = torch.minimum(self.min_val, lo) if self.min_val.shape == lo.shape else lo
        self.max_val = torch.maximum(self.max_val, hi) if self.max_val.shape == hi.shape else hi
        return x

    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.all(torch.isfinite(self.min_val)):
            raise ValueError("the observer has seen no data: call it on tensors before calculate_qparams")
        return calculate_qparams(self.min_val, self.max_val, self.qmin, self.qmax, self.symmetric)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}, symmetric={self.symmetric}"


class PerChannelMinMaxObserver(MinMaxObserver):
    """Min and max per slice along `axis` (default 0: the output channels of a weight)."""

    def __init__(self, bits: int = 8, signed: bool = True, symmetric: bool = True, axis: int = 0):
        super().__init__(bits, signed, symmetric)
        self.axis = axis

    def _reduce(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.detach().movedim(self.axis, 0).reshape(x.shape[self.axis], -1)  # (C, rest)
        return flat.min(dim=1).values, flat.max(dim=1).values


class QuantizedLinear(nn.Module):
    """A Linear layer with int8 weights and dynamically quantized uint8 inputs (see the module top).

    Build it with `QuantizedLinear.from_float(linear, bits=8, per_channel=True)`.
    """

    def __init__(
        self,
        q_weight: torch.Tensor,
        w_scale: torch.Tensor,
        w_zero_point: torch.Tensor,
        bias: torch.Tensor | None,
        bits: int,
        per_channel: bool,
        act_bits: int = 8,
    ):
        super().__init__()
        self.out_features, self.in_features = q_weight.shape
        storage = torch.int8 if bits <= 8 else torch.int16
        self.register_buffer("q_weight", q_weight.to(storage))  # (out, in) integers
        self.register_buffer("w_scale", w_scale.float())  # (out,) or ()
        self.register_buffer("w_zero_point", w_zero_point.to(storage))  # within the integer range
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.bits, self.per_channel, self.act_bits = bits, per_channel, act_bits
        self.act_qmin, self.act_qmax = qrange(act_bits, signed=False)

    @classmethod
    def from_float(
        cls, linear: nn.Module, bits: int = 8, per_channel: bool = True, act_bits: int = 8
    ) -> QuantizedLinear:
        w = linear.weight.detach().float()
        obs = PerChannelMinMaxObserver(bits, True, True, axis=0) if per_channel else MinMaxObserver(bits, True, True)
        obs(w)
        scale, zp = obs.calculate_qparams()
        q = quantize(w, scale, zp, obs.qmin, obs.qmax, axis=0 if per_channel else None)
        return cls(q, scale, zp, getattr(linear, "bias", None), bits, per_channel, act_bits)

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize(
            self.q_weight.to(torch.int64),
            self.w_scale,
            self.w_zero_point.to(torch.int64),
            axis=0 if self.per_channel else None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # dynamic input quantization: (s_x, z_x) from this batch's range
        s_x, z_x = calculate_qparams(x.detach().min(), x.detach().max(), self.act_qmin, self.act_qmax)
        q_x = quantize(x, s_x, z_x, self.act_qmin, self.act_qmax)
        # integer product (q_x - z_x) q_w^T, exact in float32 for in_features < ~518
        acc = (q_x - z_x).to(torch.float32) @ (
            self.q_weight.to(torch.float32) - self.w_zero_point.to(torch.float32).reshape(-1, 1)
        ).t()  # (B, out)
        y = acc * (s_x * self.w_scale)  # y = s_x s_w acc
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
            f"per_channel={self.per_channel}, act_bits={self.act_bits}"
        )


def _is_linear(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or (
        type(m).__name__ == "Linear" and hasattr(m, "weight") and getattr(m.weight, "dim", lambda: 0)() == 2
    )


def quantize_dynamic(model: nn.Module, bits: int = 8, per_channel: bool = True, act_bits: int = 8) -> nn.Module:
    """Post-training dynamic quantization: a copy of `model` with every Linear replaced by a
    `QuantizedLinear` (weights quantized once, inputs at run time). The original is left unchanged."""
    qrange(bits, True)
    qrange(act_bits, False)
    model = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if _is_linear(child):
                setattr(parent, name, QuantizedLinear.from_float(child, bits, per_channel, act_bits))
            else:
                swap(child)

    if _is_linear(model):
        return QuantizedLinear.from_float(model, bits, per_channel, act_bits)
    swap(model)
    return model.eval()


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of all parameters and buffers as stored (int8 weights count 1 byte per entry)."""
    tensors = list(model.parameters()) + [b for b in model.buffers() if b is not None]
    return sum(t.numel() * t.element_size() for t in tensors)
