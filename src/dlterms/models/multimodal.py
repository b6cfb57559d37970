r"""Fusion of two modalities: early fusion (one network on the joined inputs) and late fusion
(separate per-modality classifiers whose predictions are combined).

Baltrusaitis, Ahuja & Morency (2019), "Multimodal machine learning: a survey and taxonomy". For inputs
$x_a$ and $x_b$ of two modalities:

**Early fusion** concatenates them and learns one model, so it can use any interaction between them:

$$p(y \mid x_a, x_b) = \operatorname{softmax}\big(f([x_a; x_b])\big).$$

**Late fusion** trains one classifier per modality, $p_a(y \mid x_a) = \operatorname{softmax}(f_a(x_a))$ and
$p_b(y \mid x_b)$, and combines their outputs, here as a product of experts (sum of log-probabilities,
exact when $x_a$ and $x_b$ are independent given $y$ and the prior is uniform) or as the mean of the
probabilities:

$$\log p(y \mid x_a, x_b) \propto \log p_a(y \mid x_a) + \log p_b(y \mid x_b)
\quad \text{or} \quad p(y \mid x_a, x_b) = \tfrac12\big(p_a(y \mid x_a) + p_b(y \mid x_b)\big).$$

Late fusion cannot represent a label that depends on an interaction of the modalities that neither
shows alone (e.g. $y = a \oplus b$). **Modality dropout** (`modality_dropout`) blanks a whole modality of
a random subset of training examples, so that an early-fusion model also learns to predict from either
modality alone and still works when one is missing at test time. Inputs are (batch, features) per
modality; outputs are logits (early) or log-probabilities (late), (batch, classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dlterms.nn.activations import log_softmax
from dlterms.nn.linear import MLP

__all__ = ["EarlyFusion", "LateFusion", "UnimodalClassifier", "modality_dropout"]


class UnimodalClassifier(torch.nn.Module):
    """An MLP on one modality, ignoring the other: forward(x_a, x_b) uses only x_a (`modality=0`) or x_b (1)."""

    def __init__(self, in_features: int, n_classes: int, hidden: Sequence[int] = (64,), modality: int = 0):
        super().__init__()
        if modality not in (0, 1):
            raise ValueError(f"modality must be 0 or 1, got {modality!r}")
        self.modality = modality
        self.net = MLP([in_features, *hidden, n_classes])

    def forward(self, x_a: Tensor, x_b: Tensor | None = None) -> Tensor:
        return self.net(x_a if self.modality == 0 else x_b)  # logits (B, C)

    def extra_repr(self) -> str:
        return f"modality={self.modality}"


class EarlyFusion(torch.nn.Module):
    """f([x_a; x_b]): one MLP on the concatenated modalities, returning logits (B, C)."""

    def __init__(self, dim_a: int, dim_b: int, n_classes: int, hidden: Sequence[int] = (64,)):
        super().__init__()
        self.dim_a, self.dim_b = dim_a, dim_b
        self.net = MLP([dim_a + dim_b, *hidden, n_classes])

    def forward(self, x_a: Tensor, x_b: Tensor) -> Tensor:
        if x_a.shape[1] != self.dim_a or x_b.shape[1] != self.dim_b:
            raise ValueError(
                f"expected inputs with {self.dim_a} and {self.dim_b} features, got "
                f"{tuple(x_a.shape)} and {tuple(x_b.shape)}"
            )
        return self.net(torch.cat([x_a, x_b], dim=1))  # (B, dim_a + dim_b) -> (B, C)

    def extra_repr(self) -> str:
        return f"dim_a={self.dim_a}, dim_b={self.dim_b}"


class LateFusion(torch.nn.Module):
    """Combines two trained unimodal classifiers' predictions; returns log-probabilities (B, C).

    Args:
        model_a, model_b: modules mapping (x_a, x_b) to logits (e.g. `UnimodalClassifier`s).
        mode: "product" (sum of log-probabilities, renormalised) or "mean" (mean of probabilities).
    """

    def __init__(self, model_a: torch.nn.Module, model_b: torch.nn.Module, mode: str = "product"):
        super().__init__()
        if mode not in ("product", "mean"):
            raise ValueError(f"mode must be 'product' or 'mean', got {mode!r}")
        self.model_a, self.model_b, self.mode = model_a, model_b, mode

    def forward(self, x_a: Tensor, x_b: Tensor) -> Tensor:
        la = log_softmax(self.model_a(x_a, x_b), dim=1)  # log p_a(y | x_a)
        lb = log_softmax(self.model_b(x_a, x_b), dim=1)  # log p_b(y | x_b)
        if self.mode == "product":
            s = la + lb
            return s - torch.logsumexp(s, dim=1, keepdim=True)
        return torch.logsumexp(torch.stack([la, lb]), dim=0) - torch.log(torch.tensor(2.0))  # log mean prob

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def modality_dropout(
    x_a: Tensor, x_b: Tensor, p: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Blank one modality of each example with probability `p` (which one: a fair coin), by setting it
    to zero, the value a missing modality gets at test time (standardise inputs so zero is the mean).

    Returns new tensors (x_a', x_b'), (B, dim_a) and (B, dim_b); at most one modality is blanked per example.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if x_a.shape[0] != x_b.shape[0]:
        raise ValueError(f"x_a and x_b must have the same batch size, got {x_a.shape[0]} and {x_b.shape[0]}")
    n = x_a.shape[0]
    drop = torch.rand(n, generator=generator) < p  # (B,) blank a modality of this example
    which = torch.rand(n, generator=generator) < 0.5  # (B,) True: blank a, False: blank b
    keep_a = ~(drop & which).to(x_a.device)
    keep_b = ~(drop & ~which).to(x_b.device)
    return x_a * keep_a.unsqueeze(1), x_b * keep_b.unsqueeze(1)
