"""Synthetic data sets for the representation experiments, drawn from seeded generators.

- `ring_of_gaussians`: the standard GAN test bed (Metz et al., 2017, "Unrolled generative adversarial
  networks"): K isotropic Gaussians of std `std` whose means are equally spaced on a circle.
- `two_modalities`: a labelled set with two views ("modalities"), each of which carries only part of
  the label, so that only a model that combines them can be accurate.
"""

from __future__ import annotations

import math

import torch

__all__ = ["ring_centers", "ring_of_gaussians", "assign_to_modes", "two_modalities"]


def ring_centers(n_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The K means (K, 2): radius * (cos 2 pi k / K, sin 2 pi k / K)."""
    if not isinstance(n_modes, int) or n_modes < 1:
        raise ValueError(f"n_modes must be a positive integer, got {n_modes!r}")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float32) / n_modes
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def ring_of_gaussians(
    n: int, n_modes: int = 8, radius: float = 2.0, std: float = 0.05, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """n points (n, 2) from a uniform mixture of K Gaussians on a ring, and their mode index (n,)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    centers = ring_centers(n_modes, radius)
    k = torch.randint(n_modes, (n,), generator=generator)
    x = centers[k] + std * torch.randn(n, 2, generator=generator)
    return x, k


def assign_to_modes(
    x: torch.Tensor, n_modes: int = 8, radius: float = 2.0, std: float = 0.05, n_std: float = 3.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """For samples x (n, 2): the nearest mode (n,) and whether x lies within n_std * std of it (n,)
    (the 'high quality' criterion of Srivastava et al., 2017, VEEGAN)."""
    centers = ring_centers(n_modes, radius).to(x.device, x.dtype)
    dist = torch.cdist(x, centers)  # (n, K)
    d, k = dist.min(dim=1)
    return k, d <= n_std * std


def two_modalities(
    n: int,
    dim_a: int = 8,
    dim_b: int = 16,
    noise: float = 1.0,
    interaction: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two views of n examples, each showing one hidden bit: modality A shows bit a, modality B bit b,
    as a bit-specific mean vector (drawn once, unit Gaussian entries) plus Gaussian noise of std `noise`.

    The label combines the bits: y = 2a + b (4 classes; each modality alone can tell at best which 2
    classes remain, <= 50 % accuracy plus noise-free luck), or, with `interaction=True`, y = a XOR b
    (2 classes; each modality alone carries no information about y at all). Returns
    (x_a (n, dim_a), x_b (n, dim_b), y (n,)).
    """
    if n < 1 or dim_a < 1 or dim_b < 1:
        raise ValueError(f"n, dim_a and dim_b must be >= 1, got n={n}, dim_a={dim_a}, dim_b={dim_b}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    bits = torch.randint(2, (n, 2), generator=generator)
    bit_a, bit_b = bits[:, 0], bits[:, 1]
    mu_a = torch.randn(2, dim_a, generator=generator)  # one mean per value of bit a, (2, dim_a)
    mu_b = torch.randn(2, dim_b, generator=generator)
    x_a = mu_a[bit_a] + noise * torch.randn(n, dim_a, generator=generator)
    x_b = mu_b[bit_b] + noise * torch.randn(n, dim_b, generator=generator)
    y = bit_a ^ bit_b if interaction else 2 * bit_a + bit_b
    return x_a, x_b, y
