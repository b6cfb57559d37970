r"""Residual (skip-connection) blocks and a deep residual MLP.

He, Zhang, Ren & Sun (2016), *Deep Residual Learning for Image Recognition*; the pre-activation
order (activation before each weight layer, nothing after the addition) is from He et al. (2016),
*Identity Mappings in Deep Residual Networks*.

A residual block adds its input to what its layers compute:

$$y = x + F(x), \qquad F(x) = W_n\,\phi(\cdots W_1\,\phi(x) + b_1 \cdots) + b_n$$

so its Jacobian is $\partial y / \partial x = I + \partial F / \partial x$. Through $L$ blocks the gradient
reaching the input is $\prod_\ell (I + J_\ell)$, which contains the identity path $I$ however small
the $J_\ell$ are; a plain stack, $y = F(x)$, multiplies $\prod_\ell J_\ell$ and loses the signal when
those factors are small. `residual=False` builds exactly that plain counterpart (the same layers
and the same initialisation, without the $x +$), so the two can be compared one for one.

`norm="batch"` or `"layer"` puts a batch- or layer-normalisation layer before every activation
(the pre-activation order norm -> activation -> Linear of ResNet v2), in the plain counterpart too,
so a comparison can give both nets normalisation. `kaiming_init` fills every Linear with He-normal
weights and zero biases.

Shapes: batch first, (B, features) in and out of every block.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dlterms.nn import init
from dlterms.nn.activations import get_activation
from dlterms.nn.linear import Linear
from dlterms.nn.normalization import BatchNorm1d, LayerNorm

__all__ = ["ResidualBlock", "ResidualMLP"]

_NORMS = {None: None, "batch": BatchNorm1d, "layer": LayerNorm}


def _norm_layer(norm, features: int) -> list[torch.nn.Module]:
    if norm not in _NORMS:
        raise ValueError(f"norm must be None, 'batch' or 'layer', got {norm!r}")
    return [] if norm is None else [_NORMS[norm](features)]


class ResidualBlock(torch.nn.Module):
    """y = x + F(x) with F = ([norm ->] activation -> Linear) repeated `n_layers` times (pre-activation).

    Args:
        features: width of x and y.
        activation: the nonlinearity phi (a name or module class, see `dlterms.nn.get_activation`).
        n_layers: weight layers inside F (>= 1).
        residual: add the skip connection (False gives the plain block y = F(x)).
        norm: None, "batch" (`BatchNorm1d`) or "layer" (`LayerNorm`) before each activation.
    """

    def __init__(
        self, features: int, activation="relu", n_layers: int = 2, residual: bool = True, norm: str | None = None
    ):
        super().__init__()
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive integer, got {features!r}")
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}")
        layers: list[torch.nn.Module] = []
        for _ in range(n_layers):
            layers += [*_norm_layer(norm, features), get_activation(activation), Linear(features, features)]
        self.body = torch.nn.Sequential(*layers)  # F
        self.features, self.n_layers, self.residual = features, n_layers, residual

    def forward(self, x: Tensor) -> Tensor:
        if self.residual:
            # y = x + F(x)
            return x + self.body(x)  # (B, features)
        # plain: y = F(x)
        return self.body(x)

    def extra_repr(self) -> str:
        return f"features={self.features}, n_layers={self.n_layers}, residual={self.residual}"


class ResidualMLP(torch.nn.Module):
    """A deep MLP of `n_blocks` blocks between an input and an output layer:
    Linear(in, width) -> blocks -> [norm ->] activation -> Linear(width, out).

    With `residual=False` it is a plain MLP with n_blocks * n_layers + 2 weight layers; `norm`
    (None, "batch" or "layer") goes before every activation of both.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        out_features: int,
        n_blocks: int,
        activation="relu",
        n_layers: int = 1,
        residual: bool = True,
        norm: str | None = None,
    ):
        super().__init__()
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
            raise ValueError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
        self.stem = Linear(in_features, width)
        self.blocks = torch.nn.Sequential(
            *[ResidualBlock(width, activation, n_layers, residual, norm) for _ in range(n_blocks)]
        )
        self.head = torch.nn.Sequential(
            *_norm_layer(norm, width), get_activation(activation), Linear(width, out_features)
        )
        self.residual, self.norm = residual, norm

    @property
    def linear_layers(self) -> list[Linear]:
        """Every Linear layer, input to output."""
        return [m for m in self.modules() if isinstance(m, Linear)]

    @torch.no_grad()
    def kaiming_init(self, generator: torch.Generator | None = None) -> ResidualMLP:
        """He-normal weights (Var W = 2 / fan_in) and zero biases in every Linear; returns self."""
        for layer in self.linear_layers:
            init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
            init.zeros_(layer.bias)
        return self

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)  # (B, width)
        h = self.blocks(h)  # (B, width)
        return self.head(h)  # (B, out_features)
