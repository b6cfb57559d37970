r"""Weight initialisers: uniform, normal, Xavier/Glorot and He/Kaiming, with PyTorch's fan conventions.

A layer's weights start random so that units differ; their scale decides whether activations and
gradients keep their size through depth. For a weight tensor of shape
(out_features, in_features, *kernel) the fans are
$$n_{in} = \text{in\_features}\cdot\prod \text{kernel}, \qquad
n_{out} = \text{out\_features}\cdot\prod \text{kernel}.$$

Xavier/Glorot (Glorot & Bengio, 2010, "Understanding the difficulty of training deep feedforward
neural networks") keeps the variance of activations and of gradients equal on average for linear
(or tanh near 0) units:
$$\mathrm{Var}(W) = g^2\,\frac{2}{n_{in} + n_{out}}, \qquad
W \sim \mathcal{U}(-a, a),\; a = g\sqrt{\frac{6}{n_{in} + n_{out}}} \quad\text{or}\quad
W \sim \mathcal{N}\!\left(0, g^2 \tfrac{2}{n_{in} + n_{out}}\right).$$

He/Kaiming (He et al., 2015, "Delving Deep into Rectifiers") compensates for ReLU zeroing half its
inputs, so $\mathrm{Var}(h_\ell) \approx \mathrm{Var}(h_{\ell-1})$ through a ReLU stack:
$$\mathrm{Var}(W) = \frac{g^2}{n}, \quad n = n_{in} \text{ (mode='fan\_in') or } n_{out},
\qquad g = \sqrt{2} \text{ for ReLU}, \quad g = \sqrt{2 / (1 + a^2)} \text{ for leaky ReLU of slope } a.$$
Uniform with bound $\sqrt{3}\,\mathrm{std}$ has that variance, since
$\mathrm{Var}\,\mathcal{U}(-b, b) = b^2/3$.

Every function fills its tensor in place (trailing underscore, as `torch.nn.init`), without
recording gradients, draws from `generator` when given, and returns the tensor. The random draws
are the same primitive calls torch makes, so for the same seed the values equal `torch.nn.init`'s.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "calculate_gain",
    "fan_in_and_fan_out",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
]

_LINEAR_LIKE = (
    "linear",
    "identity",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The gain $g$ that keeps activation variance for `nonlinearity` (PyTorch's table).

    linear/conv/sigmoid: 1; tanh: 5/3; relu: $\sqrt2$; leaky_relu: $\sqrt{2/(1+a^2)}$ (a = `param`,
    default 0.01); selu: 3/4.
    """
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            a = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"param must be a number (the negative slope), got {param!r}")
        else:
            a = float(param)
        return math.sqrt(2.0 / (1.0 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    known = [*_LINEAR_LIKE, "tanh", "relu", "leaky_relu", "selu"]
    raise ValueError(f"nonlinearity must be one of {known}, got {nonlinearity!r}")


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel): in*prod(kernel), out*prod(kernel)."""
    if tensor.dim() < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}"
        )
    receptive_field = math.prod(tensor.shape[2:])  # 1 for a linear layer's (out, in) matrix
    fan_in = tensor.shape[1] * receptive_field
    fan_out = tensor.shape[0] * receptive_field
    return fan_in, fan_out


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"cannot initialise a tensor with a zero {mode} (shape {tuple(tensor.shape)})")
    return fan


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill with $\mathcal{U}(a, b)$."""
    if not a <= b:
        raise ValueError(f"uniform_ needs a <= b, got a={a}, b={b}")
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill with $\mathcal{N}(\text{mean}, \text{std}^2)$."""
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std}")
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with `val`."""
    with torch.no_grad():
        return tensor.fill_(val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Glorot uniform: $\mathcal{U}(-a, a)$, $a = g\sqrt{6 / (n_{in} + n_{out})}$."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))  # sqrt(g^2 * 2 / (n_in + n_out))
    a = math.sqrt(3.0) * std  # Var U(-a, a) = a^2 / 3 = std^2
    return uniform_(tensor, -a, a, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Glorot normal: $\mathcal{N}(0, g^2 \cdot 2 / (n_{in} + n_{out}))$."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator=generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He: $\mathcal{U}(-b, b)$, $b = \sqrt3\, g / \sqrt{n}$, $g$ = `calculate_gain(nonlinearity, a)`.

    With the defaults (a=0, leaky_relu) the gain is $\sqrt2$, i.e. ReLU's.
    """
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)  # Var(W) = g^2 / n
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He normal: $\mathcal{N}(0, g^2 / n)$."""
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator=generator)
