r"""Learning from imbalanced classes: class weights for the loss, and the focal loss.

**Class weights.** Weighting each example's loss by the inverse frequency of its class makes every class
contribute equally to the total. The "balanced" heuristic (King & Zeng, 2001; scikit-learn's
`compute_class_weight("balanced")`), for $n$ examples, $K$ classes and $n_k$ examples of class $k$:

$$w_k = \frac{n}{K\, n_k}$$

so $\sum_i w_{y_i} = n$. Pass them as `weight=` to a cross-entropy loss.

**Focal loss** (Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object Detection", ICCV 2017)
scales the cross-entropy of each example by how badly it is classified, so the many easy (often
majority-class) examples stop dominating the gradient. With $p_t$ the predicted probability of the
true class, focusing parameter $\gamma \ge 0$ and an optional class weight $\alpha_t$:

$$\mathrm{FL}(p_t) = -\alpha_t\,(1 - p_t)^{\gamma}\,\log p_t$$

$\gamma = 0$ and no $\alpha$ give the plain cross-entropy. We use the softmax form for $K$ classes
($p_t = \mathrm{softmax}(z)_{y}$) and average over examples.

Shapes: logits (B, K), integer targets (B,).
"""

from __future__ import annotations

import torch

from dlterms.losses import log_softmax

__all__ = ["class_weights", "focal_loss", "FocalLoss"]


def class_weights(y: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Balanced class weights w_k = n / (K n_k) from integer labels `y` (float32, shape (K,))."""
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) or y.dim() != 1:
        raise ValueError(f"y must be a 1-D tensor of integer class labels, got {y.dtype} of shape {tuple(y.shape)}")
    k = int(y.max()) + 1 if num_classes is None else num_classes
    counts = torch.bincount(y.long(), minlength=k).to(torch.float32)  # n_k
    if len(counts) > k:
        raise ValueError(f"labels go up to {len(counts) - 1}, more than num_classes={k} allows")
    if torch.any(counts == 0):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"classes {missing} have no examples, so their balanced weight n / (K n_k) is undefined")
    # w_k = n / (K n_k)
    return len(y) / (k * counts)


def focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Softmax focal loss -alpha_t (1 - p_t)^gamma log p_t of logits `input` (B, K) and labels `target` (B,)."""
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if input.dim() != 2 or target.shape != input.shape[:1]:
        raise ValueError(f"expected logits (B, K) and targets (B,), got {tuple(input.shape)} and {tuple(target.shape)}")
    k = input.shape[1]
    if alpha is not None and alpha.shape != (k,):
        raise ValueError(f"alpha must have shape ({k},), one weight per class, got {tuple(alpha.shape)}")
    log_pt = log_softmax(input, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)  # log p_t, (B,)
    pt = log_pt.exp()
    # FL = -(1 - p_t)^gamma log p_t
    loss = -((1.0 - pt) ** gamma) * log_pt
    if alpha is not None:
        loss = alpha.to(loss)[target] * loss  # alpha_t
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class FocalLoss(torch.nn.Module):
    """Module form of `focal_loss`."""

    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma, self.reduction = gamma, reduction
        self.register_buffer("alpha", alpha)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(input, target, self.gamma, self.alpha, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"
