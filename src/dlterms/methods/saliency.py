r"""Activation maps, saliency maps and Grad-CAM: looking inside a CNN with forward and backward hooks.

An *activation map* is the output $A^k \in \mathbb{R}^{H \times W}$ of one channel $k$ of a layer,
recorded here by a forward hook (`ActivationRecorder`). A backward hook on the same tensor records
$\partial y_c / \partial A^k$, the gradient of class score $y_c$ (the logit, before softmax).

Saliency map (Simonyan, Vedaldi & Zisserman, 2014, "Deep Inside Convolutional Networks"): how much
each input pixel moves the class score, the largest absolute gradient over colour channels,

$$S_{ij} = \max_c \left| \frac{\partial y_c}{\partial x_{c', i, j}} \right| .$$

Grad-CAM (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization"): weight each activation map by its average gradient and keep the
positive evidence,

$$\alpha_k^c = \frac{1}{HW} \sum_{i,j} \frac{\partial y_c}{\partial A^k_{ij}}, \qquad
L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big),$$

then upsample $L^c$ to the input size. For a network that ends in global average pooling and a
linear layer, $\alpha_k^c = w_{ck} / (HW)$ and Grad-CAM is the class activation map (CAM) of Zhou
et al. (2016) up to that scale: the unit test checks this identity.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ActivationRecorder", "saliency_map", "grad_cam", "occlude"]


class ActivationRecorder:
    """Record the outputs (and, after backward, their gradients) of named sub-modules.

        with ActivationRecorder(model, ["features.3"]) as rec:
            logits = model(x)
            logits[:, c].sum().backward()
        rec.activations["features.3"], rec.gradients["features.3"]   # (B, C, H, W) each

    Forward hooks store each module's output; a tensor hook on that output stores its gradient
    when backward reaches it. Hooks are removed when the block exits.
    """

    def __init__(self, model: nn.Module, layers: Iterable[str]):
        modules = dict(model.named_modules())
        self.layers = list(layers)
        missing = [n for n in self.layers if n not in modules]
        if missing:
            raise ValueError(f"no sub-module named {missing} in the model; available: {[n for n in modules if n][:20]}")
        self._modules = {n: modules[n] for n in self.layers}
        self.activations: dict[str, torch.Tensor] = {}
        self.gradients: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> ActivationRecorder:
        for name, mod in self._modules.items():
            self._handles.append(mod.register_forward_hook(self._forward_hook(name)))
        return self

    def _forward_hook(self, name: str):
        def hook(module, inputs, output):
            self.activations[name] = output.detach()
            if output.requires_grad:
                output.register_hook(lambda g: self.gradients.__setitem__(name, g.detach()))

        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def _class_scores(model: nn.Module, x: torch.Tensor, target: torch.Tensor | int | None) -> tuple:
    logits = model(x)  # (B, n_classes)
    if target is None:
        target = logits.argmax(1)
    target = torch.as_tensor(target, device=logits.device).expand(len(x))
    return logits, target, logits.gather(1, target.view(-1, 1)).sum()  # sum_b y_{c_b}


def saliency_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor | int | None = None) -> torch.Tensor:
    """|d y_c / d x| maximised over input channels: (B, C, H, W) -> (B, H, W).

    target: class per image (None: the predicted class).
    """
    was_training = model.training
    model.eval()
    try:
        x = x.detach().clone().requires_grad_(True)
        _, _, score = _class_scores(model, x, target)
        (grad,) = torch.autograd.grad(score, x)  # dy_c/dx, (B, C, H, W)
    finally:
        model.train(was_training)
    return grad.abs().amax(dim=1)  # S = max_c |dy/dx|


def grad_cam(
    model: nn.Module, x: torch.Tensor, layer: str, target: torch.Tensor | int | None = None, upsample: bool = True
) -> torch.Tensor:
    """Grad-CAM of class `target` (None: predicted) at the conv layer named `layer`.

    Returns (B, H, W): at the input's size when `upsample` (bilinear), else at the layer's size.
    """
    was_training = model.training
    model.eval()
    try:
        with ActivationRecorder(model, [layer]) as rec, torch.enable_grad():
            _, _, score = _class_scores(model, x, target)
            score.backward()
    finally:
        model.train(was_training)
    a, g = rec.activations[layer], rec.gradients.get(layer)  # A^k and dy_c/dA^k: (B, K, h, w)
    if g is None or a.dim() != 4:
        raise ValueError(
            f"layer {layer!r} must output a (B, K, h, w) feature map on the path to the score, got {tuple(a.shape)}"
        )
    alpha = g.mean(dim=(2, 3), keepdim=True)  # alpha_k^c = (1/hw) sum_ij dy_c/dA^k_ij, (B, K, 1, 1)
    cam = (alpha * a).sum(dim=1).relu()  # ReLU(sum_k alpha_k A^k), (B, h, w)
    if upsample and cam.shape[1:] != x.shape[2:]:
        cam = F.interpolate(cam.unsqueeze(1), size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return cam


def occlude(x: torch.Tensor, mask: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """x with the pixels where `mask` (B, H, W) is True set to `value` in every channel."""
    if mask.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"mask must be (B, H, W) = {(x.shape[0], *x.shape[2:])}, got {tuple(mask.shape)}")
    return x.masked_fill(mask.unsqueeze(1), value)
