r"""Autoencoders: plain (undercomplete) and denoising, as MLPs from `dlterms.nn`.

An autoencoder (Rumelhart, Hinton & Williams, 1986; Hinton & Salakhutdinov, 2006, "Reducing the
dimensionality of data with neural networks") has an encoder $f$ and a decoder $g$,

$$z = f(x) \in \mathbb{R}^k, \qquad \hat x = g(z),$$

trained without labels to minimise the reconstruction error $\frac{1}{n}\sum_i \lVert x_i - g(f(x_i))\rVert^2$.
With a code narrower than the input ($k < d$) it must keep the data's main directions of variation;
with linear $f, g$ and squared error its optimum spans the top-$k$ principal subspace (Baldi & Hornik,
1989), so a nonlinear autoencoder is compared with PCA at the same $k$.

A denoising autoencoder (Vincent et al., 2008, "Extracting and composing robust features with
denoising autoencoders") reconstructs the clean input from a corrupted one, $\tilde x \sim q(\tilde x \mid x)$:

$$\min_{f, g}\ \mathbb{E}_{x}\,\mathbb{E}_{\tilde x \sim q(\cdot \mid x)} \lVert x - g(f(\tilde x))\rVert^2 ,$$

here with Gaussian noise $\tilde x = x + \sigma\epsilon$ or masking noise (each input set to 0 with
probability $p$). Corruption is applied only in training mode, so `fit(model, (x, x), ...)` trains it.
Inputs are (batch, features).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dlterms.nn.linear import MLP

__all__ = ["Autoencoder", "DenoisingAutoencoder", "corrupt"]


class Autoencoder(torch.nn.Module):
    """Encoder MLP [in, *hidden, code] and mirrored decoder MLP [code, *reversed(hidden), in].

    Args:
        in_features: input size d.
        code_size: size k of the code z.
        hidden: widths of the encoder's hidden layers (the decoder mirrors them); () gives a linear
            encoder and decoder.
        activation: hidden nonlinearity (name as in `dlterms.nn.MLP`).
        output_activation: applied to the reconstruction, e.g. "sigmoid" for inputs in [0, 1].
    """

    def __init__(
        self,
        in_features: int,
        code_size: int,
        hidden: Sequence[int] = (128,),
        activation="relu",
        output_activation=None,
    ):
        super().__init__()
        if not isinstance(code_size, int) or code_size < 1:
            raise ValueError(f"code_size must be a positive integer, got {code_size!r}")
        if not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
        hidden = list(hidden)
        self.in_features, self.code_size, self.hidden = in_features, code_size, tuple(hidden)
        self.encoder = MLP([in_features, *hidden, code_size], activation=activation)  # f: x -> z
        self.decoder = MLP(
            [code_size, *reversed(hidden), in_features], activation=activation, output_activation=output_activation
        )  # g: z -> x_hat

    def encode(self, x: Tensor) -> Tensor:
        """z = f(x), (B, d) -> (B, k)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """x_hat = g(z), (B, k) -> (B, d)."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, code_size={self.code_size}, hidden={list(self.hidden)}"


def corrupt(x: Tensor, noise: str = "gaussian", level: float = 0.3, generator: torch.Generator | None = None) -> Tensor:
    r"""Draw $\tilde x \sim q(\tilde x \mid x)$: "gaussian" adds $\sigma \epsilon$ with $\sigma$ = level;
    "masking" zeroes each entry with probability level."""
    if noise not in ("gaussian", "masking"):
        raise ValueError(f"noise must be 'gaussian' or 'masking', got {noise!r}")
    if not level >= 0 or (noise == "masking" and level >= 1):
        raise ValueError(f"level must be >= 0 (and < 1 for masking noise), got {level}")
    if noise == "gaussian":
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return x + level * eps  # x + sigma * eps
    keep = torch.rand(x.shape, generator=generator).to(x.device) >= level
    return x * keep


class DenoisingAutoencoder(Autoencoder):
    """An `Autoencoder` that corrupts its input in training mode (the target stays the clean x).

    Args (beyond Autoencoder's):
        noise: "gaussian" or "masking".
        noise_level: sigma of the Gaussian noise, or the masking probability.
        generator: optional torch.Generator for the corruption (for reproducible training).
    """

    def __init__(
        self,
        in_features: int,
        code_size: int,
        hidden: Sequence[int] = (128,),
        activation="relu",
        output_activation=None,
        noise: str = "gaussian",
        noise_level: float = 0.3,
        generator: torch.Generator | None = None,
    ):
        super().__init__(in_features, code_size, hidden, activation, output_activation)
        corrupt(torch.zeros(1), noise, noise_level)  # validate the arguments now
        self.noise, self.noise_level, self.generator = noise, noise_level, generator

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            x = corrupt(x, self.noise, self.noise_level, self.generator)  # x_tilde ~ q(. | x)
        return self.decode(self.encode(x))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", noise={self.noise!r}, noise_level={self.noise_level}"
