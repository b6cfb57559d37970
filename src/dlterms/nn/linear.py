r"""The linear (fully connected, affine) layer and a configurable multilayer perceptron.

A linear layer with weight $W \in \mathbb{R}^{n_{out} \times n_{in}}$ and bias $b \in \mathbb{R}^{n_{out}}$
maps each input row $x \in \mathbb{R}^{n_{in}}$ to
$$y = x W^\top + b,$$
so it has $n_{in} n_{out} + n_{out}$ parameters. Each output unit is one artificial neuron's
pre-activation $z_j = \sum_i W_{ji} x_i + b_j$; $W_{ji}$ weighs input $i$ and $b_j$ moves the unit's
boundary $z_j = 0$ off the origin.

Default initialisation is PyTorch's (from `torch.nn.Linear.reset_parameters`):
$$W_{ji} \sim \mathcal{U}\left(-\tfrac{1}{\sqrt{n_{in}}}, \tfrac{1}{\sqrt{n_{in}}}\right), \qquad
b_j \sim \mathcal{U}\left(-\tfrac{1}{\sqrt{n_{in}}}, \tfrac{1}{\sqrt{n_{in}}}\right)$$
(torch writes the first as Kaiming-uniform with $a = \sqrt5$). The draws are made in the same order,
so with the same seed a `Linear` starts with the same numbers as a `torch.nn.Linear`, and its state
dict (`weight`, `bias`) loads into one and back.

A multilayer perceptron (Rumelhart, Hinton & Williams, 1986) alternates linear layers and an
elementwise nonlinearity $\phi$:
$$h_0 = x, \qquad h_\ell = \phi(W_\ell h_{\ell-1} + b_\ell)\ (\ell < L), \qquad \hat y = W_L h_{L-1} + b_L.$$
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor

from dlterms.nn import init
from dlterms.nn.activations import get_activation
from dlterms.nn.dropout import Dropout

__all__ = ["Linear", "MLP"]


class Linear(torch.nn.Module):
    r"""$y = x W^\top + b$ over the last dimension: input (*, in_features) -> output (*, out_features).

    Args:
        in_features: size $n_{in}$ of each input row.
        out_features: size $n_{out}$ of each output row.
        bias: learn an additive bias $b$ (False gives $y = xW^\top$, whose boundary passes through 0).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_features = in_features
        self.out_features = out_features
        factory = {"device": device, "dtype": dtype}
        self.weight = torch.nn.Parameter(torch.empty(out_features, in_features, **factory))  # (n_out, n_in)
        if bias:
            self.bias = torch.nn.Parameter(torch.empty(out_features, **factory))  # (n_out,)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: W and b uniform in +-1/sqrt(in_features)."""
        # gain sqrt(2 / (1 + 5)) = sqrt(1/3), bound sqrt(3) * sqrt(1/3) / sqrt(n_in) = 1/sqrt(n_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if input.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"input's last dimension must be in_features={self.in_features}, got shape {tuple(input.shape)}"
            )
        y = torch.matmul(input, self.weight.t())  # (*, n_in) @ (n_in, n_out) -> (*, n_out)
        if self.bias is not None:
            y = y + self.bias  # b broadcast over every leading dimension
        return y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class MLP(torch.nn.Sequential):
    """A multilayer perceptron: Linear -> activation (-> dropout) for each hidden layer, then a Linear.

    Built as a `torch.nn.Sequential`, so its state dict uses the same keys ("0.weight", "0.bias",
    "2.weight", ...) as the equivalent `torch.nn.Sequential` of `torch.nn.Linear` layers.

    Args:
        sizes: [in_features, hidden_1, ..., hidden_k, out_features]; at least two entries (two give
            a single linear layer, i.e. a linear model).
        activation: the hidden layers' nonlinearity: a name ('relu', 'tanh', 'sigmoid', 'gelu',
            'leaky_relu', 'identity'), a module class, a module instance (copied for each layer), or
            None for identity.
        dropout: probability of zeroing each hidden unit during training, or None for no dropout.
        bias: give every linear layer a bias.
        output_activation: applied after the last layer (None: raw outputs, e.g. logits).
    """

    def __init__(
        self,
        sizes: list[int] | tuple[int, ...],
        activation="relu",
        dropout: float | None = None,
        bias: bool = True,
        output_activation=None,
    ):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least the input and output sizes, got {sizes!r}")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, int) or s < 1:
                raise ValueError(f"every entry of sizes must be a positive integer, got {sizes!r}")
        if dropout is not None and not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) or None, got {dropout}")
        get_activation(activation)  # fail early on an unknown name
        layers: list[torch.nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(Linear(n_in, n_out, bias=bias))
            if i < len(sizes) - 2:  # hidden layer
                # a module instance is copied, so layers never share one (e.g. one with parameters)
                layers.append(copy.deepcopy(get_activation(activation)))
                if dropout:
                    layers.append(Dropout(dropout))
        if output_activation is not None:
            layers.append(get_activation(output_activation))
        super().__init__(*layers)
        self.sizes = tuple(sizes)
        self.activation = (
            activation
            if isinstance(activation, str | None)
            else getattr(activation, "__name__", type(activation).__name__)
        )
        self.dropout = dropout

    def __getitem__(self, idx):
        """A layer, or for a slice (`mlp[:2]`, e.g. to read hidden features) a plain Sequential of
        the same layers (torch's slice would call this class's constructor with the wrong arguments)."""
        if isinstance(idx, slice):
            return torch.nn.Sequential(*list(self._modules.values())[idx])
        return super().__getitem__(idx)

    @property
    def linear_layers(self) -> list[Linear]:
        """The Linear layers, input to output."""
        return [m for m in self if isinstance(m, Linear)]

    def extra_repr(self) -> str:
        return f"sizes={list(self.sizes)}, activation={self.activation!r}, dropout={self.dropout}"
