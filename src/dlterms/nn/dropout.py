r"""Inverted dropout.

Dropout (Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov, "Dropout: A Simple Way to Prevent
Neural Networks from Overfitting", JMLR 2014) zeroes each activation independently with probability
$p$ during training. The *inverted* form, used by PyTorch and every current library, rescales the
survivors by $1/(1-p)$ at training time so that nothing has to change at test time:

$$m_i \sim \mathrm{Bernoulli}(1 - p), \qquad y_i = \frac{m_i\, x_i}{1 - p}$$

so that $\mathbb{E}[y_i] = x_i$. In evaluation mode the layer is the identity, $y = x$.

Shapes: any; the mask has the input's shape (one Bernoulli draw per element).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Dropout", "dropout"]


def _check_p(p: float) -> float:
    if not isinstance(p, int | float) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p has to be between 0 and 1, but got {p}")
    return float(p)


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Inverted dropout of `x` with drop probability `p` (identity when not training or p == 0).

    `inplace=True` overwrites `x`; `generator` makes the mask reproducible independently of the
    global seed.
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        # Every unit dropped: the scale 1/(1-p) is undefined; the output is zero (as in PyTorch).
        return x.mul_(0.0) if inplace else x * 0.0
    # m_i ~ Bernoulli(1 - p): keep when a uniform draw is below 1 - p
    u = torch.rand(x.shape, generator=generator, device="cpu" if generator is not None else x.device, dtype=x.dtype).to(
        x.device
    )
    m = (u < 1.0 - p).to(x.dtype)
    # y_i = m_i x_i / (1 - p)
    if inplace:
        return x.mul_(m).div_(1.0 - p)
    return x * m / (1.0 - p)


class Dropout(nn.Module):
    """Inverted dropout: in training, zero each element with probability `p` and scale the rest by
    1/(1-p); in eval mode, the identity. Same arguments as `torch.nn.Dropout`."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = _check_p(p)
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", inplace=True" if self.inplace else "")
