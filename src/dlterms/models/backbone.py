r"""A backbone network: the shared feature extractor, with swappable task heads and freezing.

A *backbone* $\phi_\theta$ maps an input to a feature vector, $z = \phi_\theta(x) \in \mathbb{R}^d$;
a *head* $g_\psi$ maps features to one task's outputs, $\hat y = g_\psi(z)$ (He et al., 2016, and
most detection/segmentation systems since, call the ImageNet-trained ResNet their "backbone").
Splitting a model this way lets one backbone serve several heads, and lets a backbone trained on
one task be reused on another (transfer learning), either *frozen* ($\theta$ fixed, only $\psi$
trained) or *fine-tuned* ($\theta$ and $\psi$ trained, usually $\theta$ at a smaller learning rate).

Freezing means: no gradients for $\theta$ (`requires_grad=False`) **and** normalisation layers kept in
eval mode, so batch-norm running statistics do not drift while the heads train; the unit test checks
the frozen backbone's state dict stays bit-for-bit unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Backbone", "MultiHead", "freeze", "unfreeze", "trainable_parameters"]


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients to every parameter of `module` (in place); returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    """Let gradients reach every parameter of `module` again (in place); returns it."""
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser should update: those with requires_grad."""
    return [p for p in module.parameters() if p.requires_grad]


class Backbone(nn.Module):
    """Wrap a feature extractor so that it returns flat features (B, out_features) and can be frozen.

    Args:
        features: any module mapping inputs to a tensor (B, ...); its output is flattened.
        out_features: d, the flattened feature size (the heads' input size).
    """

    def __init__(self, features: nn.Module, out_features: int):
        super().__init__()
        if not isinstance(out_features, int) or out_features < 1:
            raise ValueError(f"out_features must be a positive integer, got {out_features!r}")
        self.features = features
        self.out_features = out_features
        self.frozen = False
        self.norm_frozen = False

    @classmethod
    def from_model(cls, model: nn.Module) -> Backbone:
        """The `features` part of a model that has `features` and `n_features` (e.g. `ConvNet`),
        sharing its modules (no copy)."""
        if not hasattr(model, "features") or not hasattr(model, "n_features"):
            raise ValueError(
                f"{type(model).__name__} has no `features`/`n_features`; wrap its feature "
                f"extractor with Backbone(features, out_features) instead"
            )
        return cls(model.features, model.n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x).flatten(1)  # z = phi_theta(x), (B, d)
        if z.shape[1] != self.out_features:
            raise ValueError(f"the features have {z.shape[1]} dimensions, but out_features={self.out_features}")
        return z

    def freeze(self) -> Backbone:
        """theta fixed: no gradients, and normalisation statistics frozen (eval mode) from now on."""
        freeze(self)
        self.frozen = True
        return self.train(self.training)

    def unfreeze(self) -> Backbone:
        unfreeze(self)
        self.frozen = False
        return self.train(self.training)

    def freeze_batch_norm(self) -> Backbone:
        """Keep normalisation layers in eval mode (their running statistics fixed) while the weights
        still train: the usual choice when fine-tuning on batches too small for good statistics."""
        self.norm_frozen = True
        return self.train(self.training)

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        if self.frozen:
            self.features.eval()  # a frozen backbone never updates batch-norm running statistics
        elif self.norm_frozen:
            for m in self.features.modules():
                if hasattr(m, "running_mean"):
                    m.eval()
        return self

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, frozen={self.frozen}"


class MultiHead(nn.Module):
    """One backbone, several named heads: `model(x, head="digit")` = heads["digit"](backbone(x)).

    Args:
        backbone: a `Backbone` (shared by every head).
        heads: name -> module mapping (B, d) features to that task's outputs.
        default: the head used when `forward` is called without `head` (the first one if None).
    """

    def __init__(self, backbone: Backbone, heads: dict[str, nn.Module], default: str | None = None):
        super().__init__()
        if not heads:
            raise ValueError("give at least one head")
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.default = default or next(iter(heads))
        if self.default not in self.heads:
            raise ValueError(f"default head {self.default!r} is not one of {list(self.heads)}")

    def add_head(self, name: str, head: nn.Module) -> MultiHead:
        self.heads[name] = head
        return self

    def head(self, name: str) -> nn.Module:
        """A module computing heads[name](backbone(x)): what `fit` and `accuracy` can call."""
        if name not in self.heads:
            raise ValueError(f"no head named {name!r}; heads are {list(self.heads)}")
        return _OneHead(self, name)

    def forward(self, x: torch.Tensor, head: str | None = None) -> torch.Tensor:
        name = head or self.default
        if name not in self.heads:
            raise ValueError(f"no head named {name!r}; heads are {list(self.heads)}")
        return self.heads[name](self.backbone(x))  # g_psi(phi_theta(x))


class _OneHead(nn.Module):
    def __init__(self, model: MultiHead, name: str):
        super().__init__()
        self.model, self.name = model, name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, head=self.name)
