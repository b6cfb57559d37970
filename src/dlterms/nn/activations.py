r"""Activation functions and a numerically stable softmax, written from their formulas.

An activation $\phi$ is applied elementwise to a layer's pre-activation $z = Wx + b$. Without a
nonlinear $\phi$ a stack of affine layers is one affine map. Each function below sits beside its
derivative $\phi'(z)$, which backpropagation multiplies into the incoming gradient; the forward
functions are built from differentiable tensor primitives, so torch's autograd differentiates them
and the hand-written derivatives are checked against it in the tests.

Sigmoid (logistic function):
$$\sigma(z) = \frac{1}{1 + e^{-z}}, \qquad \sigma'(z) = \sigma(z)\,(1 - \sigma(z)) \le \tfrac14$$

Hyperbolic tangent:
$$\tanh z = \frac{1 - e^{-2z}}{1 + e^{-2z}}, \qquad \tanh'(z) = 1 - \tanh^2 z$$

Rectified linear unit (Nair & Hinton, 2010) and leaky ReLU (Maas et al., 2013), slope $\alpha$:
$$\mathrm{ReLU}(z) = \max(0, z), \qquad
\mathrm{LeakyReLU}(z) = \begin{cases} z & z > 0 \\ \alpha z & z \le 0 \end{cases}$$
(the derivative at exactly 0 is taken as 0, respectively $\alpha$, as PyTorch does).

Gaussian error linear unit (Hendrycks & Gimpel, 2016), $\Phi$ the standard normal CDF:
$$\mathrm{GELU}(z) = z\,\Phi(z) = \tfrac12 z\left(1 + \operatorname{erf}(z/\sqrt2)\right),
\qquad \mathrm{GELU}'(z) = \Phi(z) + z\,\varphi(z)$$
and its tanh approximation
$\tfrac12 z\,(1 + \tanh(\sqrt{2/\pi}\,(z + 0.044715 z^3)))$.

Softmax over a dimension, shifted by the maximum $m = \max_j z_j$ (softmax is unchanged by adding a
constant to every logit, and the shift keeps every exponent $\le 0$, so nothing overflows):
$$\mathrm{softmax}(z)_i = \frac{e^{z_i - m}}{\sum_j e^{z_j - m}}, \qquad
\log\mathrm{softmax}(z)_i = (z_i - m) - \log\sum_j e^{z_j - m}$$

Names follow `torch.nn.functional` (`negative_slope`, `approximate`, `dim`) and the module classes
follow `torch.nn` (`Sigmoid`, `Tanh`, `ReLU`, `LeakyReLU`, `GELU`, `Softmax`, `LogSoftmax`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "gelu",
    "identity",
    "sigmoid_derivative",
    "tanh_derivative",
    "relu_derivative",
    "leaky_relu_derivative",
    "gelu_derivative",
    "identity_derivative",
    "softmax",
    "log_softmax",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "GELU",
    "Identity",
    "Softmax",
    "LogSoftmax",
    "ACTIVATIONS",
    "get_activation",
]

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _sign_nonneg(x: Tensor) -> Tensor:
    """+1 where x >= 0, -1 elsewhere (a constant: no gradient flows through it)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


# --------------------------------------------------------------------------- elementwise functions


def sigmoid(input: Tensor) -> Tensor:
    r"""$\sigma(z) = 1 / (1 + e^{-z})$, computed without overflow for any $z$."""
    s = _sign_nonneg(input)
    e = torch.exp(-s * input)  # e^{-|z|} in (0, 1]: never overflows
    # z >= 0: 1 / (1 + e^{-z});  z < 0: e^{z} / (1 + e^{z}), the same value written without e^{-z}
    return torch.where(input >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(input: Tensor) -> Tensor:
    r"""$\sigma'(z) = \sigma(z)(1 - \sigma(z))$, largest (0.25) at $z = 0$."""
    s = sigmoid(input)
    return s * (1.0 - s)


def tanh(input: Tensor) -> Tensor:
    r"""$\tanh z = (1 - e^{-2z}) / (1 + e^{-2z})$, evaluated on $|z|$ with `expm1` for accuracy near 0."""
    s = _sign_nonneg(input)
    a = torch.expm1(-2.0 * s * input)  # e^{-2|z|} - 1, in (-1, 0]
    return s * (-a / (2.0 + a))  # (1 - e^{-2|z|}) / (1 + e^{-2|z|}), sign restored


def tanh_derivative(input: Tensor) -> Tensor:
    r"""$\tanh'(z) = 1 - \tanh^2 z$, largest (1) at $z = 0$."""
    t = tanh(input)
    return 1.0 - t * t


def _positive_mask(input: Tensor) -> Tensor:
    """[z > 0] as a float tensor without a gradient: sign(z) is -1, 0 or 1, clamped below at 0.
    (On this build `z > 0` and `torch.where` take 5-20x longer than `sign` and `clamp`, which made
    the activations a GAN's main cost; the values and gradients are the same.)"""
    return torch.sign(input.detach()).clamp(min=0)


def relu(input: Tensor) -> Tensor:
    r"""$\max(0, z) = z \cdot [z > 0]$ (the mask form; its gradient is $[z > 0]$, 0 at z = 0 as torch's)."""
    if not input.is_floating_point():
        return input * (input > 0)
    return input * _positive_mask(input)


def relu_derivative(input: Tensor) -> Tensor:
    """1 where z > 0, else 0 (0 at z = 0, as torch)."""
    return (input > 0).to(input.dtype)


def _check_slope(negative_slope: float) -> None:
    if not math.isfinite(negative_slope):
        raise ValueError(f"negative_slope must be a finite number, got {negative_slope}")


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    r"""$z$ for $z > 0$, $\alpha z$ otherwise ($\alpha$ = `negative_slope`)."""
    _check_slope(negative_slope)
    if not input.is_floating_point():
        return torch.where(input > 0, input, negative_slope * input)
    # z * ([z > 0] + alpha [z <= 0]): slope exactly 1 for z > 0, exactly alpha otherwise (at z = 0 too, as torch)
    m = _positive_mask(input)
    return input * torch.add(m, 1 - m, alpha=negative_slope)


def leaky_relu_derivative(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    r"""1 for $z > 0$, $\alpha$ otherwise."""
    _check_slope(negative_slope)
    one = torch.ones_like(input)
    return torch.where(input > 0, one, negative_slope * one)


def _check_approximate(approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    r"""$z\,\Phi(z)$; `approximate="tanh"` uses $\tfrac12 z(1 + \tanh(\sqrt{2/\pi}(z + 0.044715z^3)))$."""
    _check_approximate(approximate)
    if approximate == "tanh":
        u = _SQRT_2_OVER_PI * (input + 0.044715 * input**3)
        return 0.5 * input * (1.0 + tanh(u))
    cdf = 0.5 * (1.0 + torch.erf(input / _SQRT_2))  # Phi(z)
    return input * cdf


def gelu_derivative(input: Tensor, approximate: str = "none") -> Tensor:
    r"""$\Phi(z) + z\varphi(z)$ (exact), or the derivative of the tanh approximation."""
    _check_approximate(approximate)
    if approximate == "tanh":
        u = _SQRT_2_OVER_PI * (input + 0.044715 * input**3)
        t = tanh(u)
        du = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * input**2)
        return 0.5 * (1.0 + t) + 0.5 * input * (1.0 - t * t) * du
    cdf = 0.5 * (1.0 + torch.erf(input / _SQRT_2))  # Phi(z)
    pdf = _INV_SQRT_2PI * torch.exp(-0.5 * input * input)  # phi(z)
    return cdf + input * pdf


def identity(input: Tensor) -> Tensor:
    """$\\phi(z) = z$: no nonlinearity (a stack of such layers is one affine map)."""
    return input


def identity_derivative(input: Tensor) -> Tensor:
    return torch.ones_like(input)


# --------------------------------------------------------------------------- softmax


def _check_dim(input: Tensor, dim: int) -> int:
    nd = max(input.dim(), 1)
    if not isinstance(dim, int) or not -nd <= dim < nd:
        raise ValueError(f"dim must be an integer in [{-nd}, {nd - 1}] for a {input.dim()}-D input, got {dim!r}")
    return dim


def _softmax_equations(input: Tensor, dim: int) -> Tensor:
    m = input.amax(dim=dim, keepdim=True).detach()  # the shift changes no value, so no gradient through it
    e = torch.exp(input - m)  # every exponent <= 0: values in (0, 1]
    return e / e.sum(dim=dim, keepdim=True)


class _Softmax(torch.autograd.Function):
    r"""Softmax with its closed-form backward: for $y = \mathrm{softmax}(z)$ and upstream gradient $g$,
    $\partial\ell/\partial z_i = y_i (g_i - \sum_j g_j y_j)$ (the Jacobian is $\mathrm{diag}(y) - y y^\top$).
    Autograd through the equations records five operations and keeps their intermediates; this keeps
    only $y$. The backward is written in differentiable operations on the saved output, so a gradient of
    the gradient (create_graph=True) still works."""

    @staticmethod
    def forward(ctx, input: Tensor, dim: int) -> Tensor:
        # y_i = e^{z_i - m} / sum_j e^{z_j - m}
        y = (input - input.amax(dim=dim, keepdim=True)).exp_()
        y = y.div_(y.sum(dim=dim, keepdim=True))
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g: Tensor):
        (y,) = ctx.saved_tensors
        # dl/dz_i = y_i (g_i - sum_j g_j y_j)
        return y * (g - (g * y).sum(dim=ctx.dim, keepdim=True)), None


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    r"""$e^{z_i - m} / \sum_j e^{z_j - m}$ along `dim`, with $m$ the maximum along `dim`.

    Rows that are entirely $-\infty$ have no distribution and give NaN, as in torch. The gradient is the
    closed form $y_i (g_i - \sum_j g_j y_j)$ (`_Softmax`); under `torch.func` transforms autograd runs
    through the equations instead.
    """
    dim = _check_dim(input, dim)
    if torch._C._are_functorch_transforms_active() or input.dim() == 0:
        return _softmax_equations(input, dim)
    return _Softmax.apply(input, dim)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    r"""$(z_i - m) - \log\sum_j e^{z_j - m}$ along `dim` (the log-sum-exp trick)."""
    dim = _check_dim(input, dim)
    m = input.amax(dim=dim, keepdim=True).detach()
    shifted = input - m
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


# --------------------------------------------------------------------------- modules


class Sigmoid(torch.nn.Module):
    """Elementwise logistic sigmoid, see `sigmoid`."""

    def forward(self, input: Tensor) -> Tensor:
        return sigmoid(input)


class Tanh(torch.nn.Module):
    """Elementwise hyperbolic tangent, see `tanh`."""

    def forward(self, input: Tensor) -> Tensor:
        return tanh(input)


class ReLU(torch.nn.Module):
    """Elementwise rectified linear unit, see `relu`. `inplace=True` writes the result into the input, as
    torch's (the values are computed the same way, then copied)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        out = relu(input)
        return input.copy_(out) if self.inplace else out

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(torch.nn.Module):
    """Elementwise leaky ReLU with slope `negative_slope` for negative inputs."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        _check_slope(negative_slope)
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        out = leaky_relu(input, self.negative_slope)
        return input.copy_(out) if self.inplace else out

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class GELU(torch.nn.Module):
    """Elementwise Gaussian error linear unit (`approximate` = 'none' or 'tanh')."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        _check_approximate(approximate)
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Identity(torch.nn.Module):
    """Returns its input unchanged: the 'no activation' choice. Arguments are accepted and ignored, as
    torch.nn.Identity's are (so that it can stand in for a configurable layer)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Softmax(torch.nn.Module):
    """Softmax along `dim`, see `softmax`. `dim` is required: torch's default None guesses a dimension from the
    input's rank (with a deprecation warning), which this refuses with a ValueError."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is None:
            raise ValueError("dim must be given (e.g. Softmax(dim=-1)), got dim=None")
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(torch.nn.Module):
    """Log-softmax along `dim`, see `log_softmax`. `dim` is required: torch's default None guesses a dimension from the
    input's rank (with a deprecation warning), which this refuses with a ValueError."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is None:
            raise ValueError("dim must be given (e.g. LogSoftmax(dim=-1)), got dim=None")
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


# --------------------------------------------------------------------------- look-up by name

ACTIVATIONS: dict[str, tuple[type[torch.nn.Module], Callable[..., Tensor], Callable[..., Tensor]]] = {
    "identity": (Identity, identity, identity_derivative),
    "sigmoid": (Sigmoid, sigmoid, sigmoid_derivative),
    "tanh": (Tanh, tanh, tanh_derivative),
    "relu": (ReLU, relu, relu_derivative),
    "leaky_relu": (LeakyReLU, leaky_relu, leaky_relu_derivative),
    "gelu": (GELU, gelu, gelu_derivative),
}
"""name -> (module class, function, derivative)."""


def get_activation(activation: str | torch.nn.Module | type[torch.nn.Module] | None, **kwargs) -> torch.nn.Module:
    """A fresh activation module from a name ('relu', 'tanh', ..., 'identity' or None), a module class,
    or a module instance (returned as is)."""
    if activation is None:
        return Identity()
    if isinstance(activation, torch.nn.Module):
        return activation
    if isinstance(activation, type) and issubclass(activation, torch.nn.Module):
        return activation(**kwargs)
    if isinstance(activation, str):
        key = activation.lower().replace("-", "_")
        if key in ("linear", "none"):
            key = "identity"
        if key in ACTIVATIONS:
            return ACTIVATIONS[key][0](**kwargs)
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, None, or a torch.nn.Module, got {activation!r}")
