r"""Small convolutional networks for the project's grid data: 8x8 digits and MNIST-1D signals.

A convolutional neural network (LeCun et al., 1989, "Backpropagation Applied to Handwritten Zip
Code Recognition"; LeCun et al., 1998, LeNet-5) stacks blocks of

$$h_\ell = \mathrm{pool}\big(\phi(w_\ell * h_{\ell-1} + \beta_\ell)\big)$$

(convolution $*$ from `dlterms.nn.conv`, a nonlinearity $\phi$, optional pooling from
`dlterms.nn.pooling`) and ends in a head, here a linear classifier on the flattened last feature
map, or on its global average when `global_pool=True` (Lin et al., 2014, "Network in Network").

`ConvNet` keeps the two parts separate, `features` (the backbone: input -> feature map) and `head`
(feature map -> logits), so other code can hook, freeze or replace either. `digits_cnn` and
`mnist1d_cnn` are the configurations the experiments use (MNIST-1D: Greydanus, 2020, "Scaling
down deep learning").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dlterms.nn.activations import get_activation
from dlterms.nn.conv import Conv1d, Conv2d
from dlterms.nn.dropout import Dropout
from dlterms.nn.linear import Linear
from dlterms.nn.normalization import BatchNorm1d, BatchNorm2d
from dlterms.nn.pooling import AvgPool1d, AvgPool2d, GlobalAvgPool, MaxPool1d, MaxPool2d
from dlterms.training import count_parameters  # re-exported: written once, in training

__all__ = ["ConvNet", "DilatedStack", "CapsNet", "digits_cnn", "mnist1d_cnn", "count_parameters", "count_macs"]


@torch.no_grad()
def count_macs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Multiply-accumulates of one forward pass on `x`, per conv/linear layer (by forward hooks).

    A convolution costs prod(out positions) * C_out * (C_in / groups) * prod(kernel) MACs per example,
    a linear layer in_features * out_features; pooling and activations are not counted.
    """
    macs: dict[str, int] = {}
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, Conv1d | Conv2d):

            def hook(m, inp, out, name=name):
                per_pos = m.out_channels * (m.in_channels // m.groups) * math.prod(m.kernel_size)
                macs[name] = math.prod(out.shape[2:]) * per_pos * out.shape[0]
        elif isinstance(mod, Linear):

            def hook(m, inp, out, name=name):
                macs[name] = m.in_features * m.out_features * out[..., 0].numel()
        else:
            continue
        handles.append(mod.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return macs


class ConvNet(nn.Module):
    """Conv blocks (`features`) followed by a linear classifier (`head`).

    Args:
        in_channels: channels of the input (1 for grey images and 1-D signals).
        n_classes: outputs of the head.
        input_size: spatial size of the input, (L,) for 1-D or (H, W) for 2-D; fixes `dims` and the
            head's input size.
        channels: output channels of each conv block.
        kernel_size, stride, padding, dilation: per block (one value for all blocks, or one per block).
        pool: window of the pooling after each block (None or 1: no pooling), or a list, one per block;
            `pool_type` "max" or "avg".
        activation: the nonlinearity after each convolution (name or module, see `get_activation`).
        global_pool: average each channel over all positions before the head (else flatten).
        batch_norm: batch-normalise each convolution's output before the nonlinearity.
        dropout: dropout probability on the features before the head (None: none).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        input_size: Sequence[int],
        channels: Sequence[int] = (16, 32),
        kernel_size=3,
        stride=1,
        padding=1,
        dilation=1,
        pool: int | None = 2,
        pool_type: str = "max",
        activation="relu",
        global_pool: bool = False,
        batch_norm: bool = False,
        dropout: float | None = None,
    ):
        super().__init__()
        input_size = tuple(input_size)
        dims = len(input_size)
        if dims not in (1, 2):
            raise ValueError(f"input_size must be (L,) or (H, W), got {input_size}")
        if not channels:
            raise ValueError("channels must list at least one conv block")
        if pool_type not in ("max", "avg"):
            raise ValueError(f"pool_type must be 'max' or 'avg', got {pool_type!r}")
        n = len(channels)

        def per_block(v, name):
            return list(v) if isinstance(v, list) else [v] * n

        ks, ss, ps, ds, pools = (
            per_block(v, nm)
            for v, nm in (
                (kernel_size, "kernel_size"),
                (stride, "stride"),
                (padding, "padding"),
                (dilation, "dilation"),
                (pool, "pool"),
            )
        )
        if any(len(v) != n for v in (ks, ss, ps, ds, pools)):
            raise ValueError(f"per-block kernel_size/stride/padding/dilation/pool lists must have {n} entries")
        conv = Conv1d if dims == 1 else Conv2d
        pool_cls = {("max", 1): MaxPool1d, ("max", 2): MaxPool2d, ("avg", 1): AvgPool1d, ("avg", 2): AvgPool2d}
        layers: list[nn.Module] = []
        size, c_prev = input_size, in_channels
        for c, k, s, p, d, pool_k in zip(channels, ks, ss, ps, ds, pools):
            layer = conv(c_prev, c, k, stride=s, padding=p, dilation=d)
            layers.append(layer)
            if batch_norm:
                layers.append((BatchNorm1d if dims == 1 else BatchNorm2d)(c))
            layers.append(get_activation(activation))
            size = layer.output_size(*size)
            if pool_k and pool_k > 1:
                pl = pool_cls[pool_type, dims](pool_k)
                size = pl.output_size(*size)
                layers.append(pl)
            if min(size) < 1:
                raise ValueError(
                    f"the feature map shrinks to {size} after {len(layers)} layers: input_size "
                    f"{input_size} is too small for these blocks"
                )
            c_prev = c
        if global_pool:
            layers.append(GlobalAvgPool())
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c_prev,) if global_pool else (c_prev, *size)
        self.n_features = math.prod(self.feature_shape)
        if dropout is not None and not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) or None, got {dropout}")
        self.head = Linear(self.n_features, n_classes)
        self.dropout = Dropout(dropout) if dropout else None
        self.input_size, self.in_channels, self.n_classes = input_size, in_channels, n_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's output, flattened: (B, n_features)."""
        if tuple(x.shape[2:]) != self.input_size or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input (B, {self.in_channels}, {', '.join(map(str, self.input_size))}), got {tuple(x.shape)}"
            )
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.forward_features(x)  # (B, n_features)
        if self.dropout is not None:
            h = self.dropout(h)
        return self.head(h)  # (B, n_classes)

    @property
    def conv_layers(self) -> list[nn.Module]:
        return [m for m in self.features if isinstance(m, Conv1d | Conv2d)]

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, n_features={self.n_features}"


class DilatedStack(nn.Module):
    """Length-preserving 1-D conv layers (ReLU between), then a 1x1 conv: per-position outputs.

    With kernel size k and dilations d_1..d_L the output at t sees inputs t - r//2 .. t + r//2,
    r = 1 + sum d_l (k - 1) (`dlterms.nn.conv.receptive_field`). Dilations 1, 2, 4, 8 widen the
    field from 9 to 31 with exactly the parameters of four undilated layers.

    Args:
        dilations: one per layer; all 1 gives the plain stack.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int = 16,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8),
        activation="relu",
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd so padding d*(k-1)/2 keeps the length, got {kernel_size}")
        layers: list[nn.Module] = []
        c_prev = in_channels
        for d in dilations:
            layers += [
                Conv1d(c_prev, channels, kernel_size, padding=d * (kernel_size - 1) // 2, dilation=d),
                get_activation(activation),
            ]
            c_prev = channels
        self.features = nn.Sequential(*layers)
        self.head = Conv1d(channels, out_channels, 1)  # per-position linear read-out
        self.kernel_size, self.dilations = kernel_size, tuple(dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, out_channels, L)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilations={self.dilations}"


class CapsNet(nn.Module):
    """A small CapsNet for 8x8 digits (Sabour et al., 2017, scaled down): conv 3x3 (64) + ReLU ->
    primary capsules (8 types x 8-D, 3x3 stride 2: 4x4 positions, 128 capsules) -> 10 digit capsules
    of 16-D by dynamic routing. `forward` returns the capsule lengths |v_k| (B, 10), the class scores
    for `margin_loss`; `capsules(x)` returns the vectors themselves.
    """

    def __init__(self, n_classes: int = 10, iterations: int = 3, input_size: int = 8):
        super().__init__()
        from dlterms.nn.capsules import PrimaryCapsules, RoutingCapsules

        self.conv = Conv2d(1, 64, 3, padding=1)
        self.act = get_activation("relu")
        self.primary = PrimaryCapsules(64, 8, 8, 3, stride=2, padding=1)
        side = (input_size + 2 - 3) // 2 + 1
        self.digits = RoutingCapsules(8 * side * side, 8, n_classes, 16, iterations=iterations)

    def capsules(self, x: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
        return self.digits(self.primary(self.act(self.conv(x))), iterations)  # (B, K, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.capsules(x).norm(dim=-1)  # |v_k|, (B, K)


def digits_cnn(n_classes: int = 10, channels: Sequence[int] = (16, 32), batch_norm: bool = True) -> ConvNet:
    """For 8x8 digits: two blocks of 3x3 conv (padding 1), batch norm, ReLU and 2x2 max-pool,
    8x8 -> 4x4 -> 2x2, then a linear layer: 6,186 parameters with the default channels.

    Measured: with batch norm 0.989-0.991 test accuracy on three seeds in 12 epochs; without it
    0.973-0.987 in 20-40 epochs.
    """
    return ConvNet(1, n_classes, (8, 8), channels=channels, kernel_size=3, padding=1, pool=2, batch_norm=batch_norm)


def mnist1d_cnn(n_classes: int = 10, channels: int = 32, batch_norm: bool = True) -> ConvNet:
    """For length-40 MNIST-1D signals: three blocks of conv (k = 5, 3, 3, stride 1, length-preserving
    padding), batch norm, ReLU and max-pool(2), lengths 40 -> 20 -> 10 -> 5, and a linear layer on
    the 5*channels features (8,202 parameters with 32 channels).

    The paper's ConvBase downsamples with stride-2 convolutions instead of pooling and has no batch
    norm; trained for 20-40 epochs here it overfit (train 99.6 %, test 89-92 %). This version reached
    95-97 % in 8 epochs on three seeds (94-95 % in 20 epochs without batch norm).
    """
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    return ConvNet(
        1,
        n_classes,
        (40,),
        channels=(channels,) * 3,
        kernel_size=[5, 3, 3],
        stride=1,
        padding=[2, 1, 1],
        pool=2,
        batch_norm=batch_norm,
    )
