r"""Loss functions, written from their definitions and matched to `torch.nn.functional`.

Naming rule: every function here is a `*_loss` (lower is better). Inputs are batch first; for
classification the class dimension is dimension 1 (`(N, C)` or `(N, C, d1, ...)`), as in torch.
`reduction` is `"mean"` (default), `"sum"` or `"none"`.

Regression, with residual $r = \hat y - y$:

$$\text{MSE} = r^2, \qquad \text{MAE (L1)} = |r|, \qquad
\text{Huber}_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| < \delta \\
\delta(|r| - \tfrac12\delta) & \text{otherwise}\end{cases}$$

Margin classification, labels $y \in \{-1, +1\}$ and score $s$: $\text{hinge} = \max(0, 1 - y s)$;
with $C$ classes (Weston & Watkins, 1999, as `multi_margin_loss`):
$\frac1C \sum_{j \ne y} \max(0, m - s_y + s_j)$.

Cross-entropy from logits $z$ (never the log of a computed softmax, which underflows): the
log-softmax via the log-sum-exp trick,

$$\log q_k = z_k - \max_j z_j - \log \sum_j e^{z_j - \max_j z_j}$$

then, with class weights $w$ and label smoothing $\varepsilon$ over $K$ classes,

$$\ell_i = (1 - \varepsilon)\,\bigl(-w_{y_i} \log q_{i,y_i}\bigr)
+ \frac{\varepsilon}{K} \sum_k \bigl(-w_k \log q_{i,k}\bigr)$$

and the mean divides by $\sum_i w_{y_i}$ over targets that are not `ignore_index` (torch's
convention). With probability targets $p$: $\ell_i = -\sum_k w_k\, p'_{i,k} \log q_{i,k}$ with
$p' = (1-\varepsilon) p + \varepsilon / K$. Its gradient with respect to the logits is
$q - \text{onehot}(y)$ (per example, unweighted, no smoothing).

Binary cross-entropy from a logit $x$, stable for any $x$ (log-sum-exp again):
$\ell = (1 - y) x + \log(1 + e^{-x})$, with `pos_weight` $p_w$ scaling the positive term:
$\ell = (1 - y) x + (1 + (p_w - 1) y) \log(1 + e^{-x})$.
"""

from __future__ import annotations

import torch

# log q_k = z_k - max z - log sum_j e^{z_j - max z}: written once, in the activations module
from dlterms.nn.activations import log_softmax

__all__ = [
    "log_softmax",
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "hinge_loss",
    "multi_margin_loss",
    "nll_loss",
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "MSELoss",
    "L1Loss",
    "HuberLoss",
    "HingeLoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "BCEWithLogitsLoss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _same_shape(input: torch.Tensor, target: torch.Tensor, who: str) -> None:
    if input.shape != target.shape:
        raise ValueError(
            f"{who}: input and target must have the same shape, got {tuple(input.shape)} and {tuple(target.shape)}"
        )


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared error (y_hat - y)^2."""
    _same_shape(input, target, "mse_loss")
    return _reduce((input - target) ** 2, reduction)


def l1_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Absolute error |y_hat - y| (mean absolute error, MAE)."""
    _same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction)


def huber_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", delta: float = 1.0) -> torch.Tensor:
    """Quadratic for residuals below `delta`, linear (slope delta) above: robust to outliers."""
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    _same_shape(input, target, "huber_loss")
    a = (input - target).abs()
    # 1/2 r^2 if |r| < delta, else delta (|r| - delta / 2)
    loss = torch.where(a < delta, 0.5 * a**2, delta * (a - 0.5 * delta))
    return _reduce(loss, reduction)


def hinge_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", margin: float = 1.0) -> torch.Tensor:
    """Binary hinge loss max(0, margin - y s) for scores s and labels y in {-1, +1}."""
    _same_shape(input, target, "hinge_loss")
    if not bool(((target == 1) | (target == -1)).all()):
        raise ValueError("hinge_loss: target labels must be -1 or +1; map {0, 1} labels with 2 * y - 1")
    return _reduce(torch.clamp(margin - target * input, min=0), reduction)


def multi_margin_loss(
    input: torch.Tensor, target: torch.Tensor, margin: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Multi-class hinge loss (p=1), as torch.nn.functional.multi_margin_loss: input (N, C), target (N,)."""
    if input.dim() != 2:
        raise ValueError(f"multi_margin_loss expects input of shape (N, C), got {tuple(input.shape)}")
    n, c = input.shape
    s_y = input.gather(1, target.view(-1, 1))  # (N, 1)
    # max(0, m - s_y + s_j) for every j, then drop j = y
    viol = torch.clamp(margin - s_y + input, min=0)  # (N, C)
    viol = viol.masked_fill(torch.nn.functional.one_hot(target, c).bool(), 0.0)
    return _reduce(viol.sum(1) / c, reduction)


def nll_loss(
    log_probs: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood -w_y log q_y of class-index targets, given log-probabilities (class dim 1)."""
    _check_reduction(reduction)
    lp, t = _classes_last(log_probs, target)
    keep = t != ignore_index
    safe = t.masked_fill(~keep, 0)  # any valid index; masked out below
    picked = lp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # log q_{i, y_i}
    # Ignored targets are removed, not multiplied by 0: their log q may be -inf (a masked logit).
    picked = picked.masked_fill(~keep, 0.0)
    w = torch.ones_like(picked) if weight is None else weight.to(lp.dtype)[safe]  # w_{y_i}
    w = w * keep
    loss = -w * picked
    if reduction == "none":
        return loss.reshape(target.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()  # mean over the targets' weights (0/0 = nan if all are ignored, as torch)


def _classes_last(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the class dimension (1, or 0 when unbatched) last and flatten: (M, C) and (M,)."""
    if input.dim() == 1:
        return input.unsqueeze(0), target.reshape(1)
    if input.dim() == 2:  # already (N, C)
        return input, target
    c = input.shape[1]
    return input.movedim(1, -1).reshape(-1, c), target.reshape(-1)


class _CrossEntropyIndex(torch.autograd.Function):
    r"""Cross-entropy of logit rows z (M, K) against class indices y (M,), with its closed-form backward.

    Every variant here is $\ell_i = -\sum_k t_{ik} \log q_{ik}$ for a target row $t_i$:
    $t_{ik} = (1-\varepsilon)\, w_{y_i} [k = y_i] + \frac{\varepsilon}{K} w_k$ (zero for ignored rows). Since
    $\log q_{ik} = z_{ik} - \mathrm{lse}_i$ with $\mathrm{lse}_i = \log\sum_k e^{z_{ik}}$,

    $$\ell_i = (1-\varepsilon)\, w_{y_i} (\mathrm{lse}_i - z_{i y_i})
              + \frac{\varepsilon}{K}\Bigl(\mathrm{lse}_i \sum_k w_k - \sum_k w_k z_{ik}\Bigr), \qquad
      \frac{\partial \ell_i}{\partial z_{ik}} = q_{ik} \sum_j t_{ij} - t_{ik}$$

    (softmax minus the target, scaled by the target's total weight). The forward needs no (M, K)
    log-probabilities, only the log-sum-exp, the picked logit and (with smoothing) $z_i \cdot w$; the
    backward writes $q$ once and subtracts the target in place.
    """

    @staticmethod
    def forward(ctx, z, y, weight, ignore_index, reduction, eps):
        K = z.shape[1]
        keep = y != ignore_index  # (M,)
        safe = torch.where(keep, y, 0)  # any valid index where ignored; those rows are zeroed below
        # lse_i = m_i + log sum_k e^{z_ik - m_i},  m_i = max_k z_ik   (the log-sum-exp trick)
        m = z.amax(dim=1)  # (M,)
        lse = (z - m[:, None]).exp_().sum(dim=1).log_().add_(m)  # (M,)
        z_y = z.gather(1, safe[:, None]).squeeze(1)  # z_{i, y_i}, (M,)
        # w_{y_i} for kept rows, 0 for ignored ones
        kw = keep.to(z.dtype) if weight is None else weight[safe] * keep  # (M,)
        # -log q_{i, y_i} = lse_i - z_{i, y_i}: `where`, not a product, so an ignored row's -inf logit gives 0
        loss = torch.where(keep, lse - z_y, 0.0)
        if weight is not None or eps > 0:
            loss.mul_(kw * (1 - eps))  # (1 - eps) w_{y_i}
        if eps > 0:
            W = K if weight is None else weight.sum()  # sum_k w_k
            zw = z.sum(dim=1) if weight is None else z @ weight  # sum_k w_k z_ik, (M,)
            # + eps/K (lse_i sum_k w_k - sum_k w_k z_ik)
            loss = loss + torch.where(keep, (eps / K) * (W * lse - zw), 0.0)
        denom = kw.sum()  # the mean divides by sum_i w_{y_i} over kept rows (torch's convention)
        ctx.save_for_backward(z, safe, keep, kw, lse, denom, weight)
        ctx.reduction, ctx.eps, ctx.ignore_index = reduction, eps, ignore_index
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.sum() / denom

    @staticmethod
    def backward(ctx, g):
        z, safe, keep, kw, lse, denom, weight = ctx.saved_tensors
        reduction, eps = ctx.reduction, ctx.eps
        if torch.is_grad_enabled():  # create_graph=True: differentiate the equations instead
            with torch.enable_grad():
                y = torch.where(keep, safe, ctx.ignore_index)
                loss = _cross_entropy_equations(z, y, weight, ctx.ignore_index, reduction, eps)
                (dz,) = torch.autograd.grad(loss, z, g, create_graph=True)
            return dz, None, None, None, None, None
        K = z.shape[1]
        # c_i: the upstream gradient of row i's loss (1/denominator for the mean)
        c = g / denom if reduction == "mean" else g  # scalar, or (M,) for "none"
        a = kw * c if eps == 0 else kw * (c * (1 - eps))  # c_i (1 - eps) w_{y_i}: the target's own term
        # dl/dz_ik = c_i (q_ik sum_j t_ij - t_ik),  sum_j t_ij = (1 - eps) w_{y_i} + eps/K sum_k w_k
        dz = (z - lse[:, None]).exp_()  # q, (M, K)
        if eps == 0:
            dz.mul_(a[:, None])
        else:
            b = keep * (c * (eps / K))  # c_i eps / K: the smoothing term's factor of w_k
            W = K if weight is None else weight.sum()
            dz.mul_((a + b * W)[:, None])
            if weight is None:  # - c_i eps/K w_k
                dz.sub_(b[:, None])
            else:
                dz.addr_(b, weight, alpha=-1.0)
        dz.scatter_add_(1, safe[:, None], a.neg_()[:, None])  # - c_i (1 - eps) w_{y_i} at k = y_i
        return dz, None, None, None, None, None


def _cross_entropy_equations(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> torch.Tensor:
    """Class-index cross-entropy as the module docstring writes it, for autograd (class dim 1)."""
    class_dim = 0 if logits.dim() == 1 else 1
    k = logits.shape[class_dim]
    log_q = log_softmax(logits, dim=class_dim)
    # (1 - eps) * (-w_y log q_y), normalised as nll_loss
    nll = nll_loss(log_q, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    wshape = [1] * logits.dim()
    wshape[class_dim] = k
    w = None if weight is None else weight.to(log_q.dtype).view(wshape)
    # smoothing term: - sum_k w_k log q_ik, zero for ignored targets
    smooth = -(log_q if w is None else log_q * w).sum(class_dim)
    keep = target != ignore_index
    smooth = smooth.masked_fill(~keep, 0.0)
    if reduction == "mean":
        if weight is None:
            smooth = smooth.sum() / keep.sum()
        else:
            safe = target.masked_fill(~keep, 0)
            smooth = smooth.sum() / (weight.to(log_q.dtype)[safe] * keep).sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    # l = (1 - eps) nll + eps / K * smooth
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / k)


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy between softmax(input) and the target, as torch.nn.functional.cross_entropy.

    Args:
        input: logits, (N, C), (N, C, d1, ...) or unbatched (C,).
        target: class indices (int64, shape of input without the class dim) or class
            probabilities (float, same shape as input).
        weight: per-class weights w, shape (C,).
        ignore_index: class-index targets equal to it contribute nothing (not to the mean either).
        label_smoothing: epsilon in [0, 1]: mix the target with the uniform distribution.

    Class-index targets go through `_CrossEntropyIndex` (closed-form backward); probability targets,
    class weights that need a gradient themselves and `torch.func` transforms through autograd of
    the equations.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    class_dim = 0 if input.dim() == 1 else 1
    k = input.shape[class_dim]
    if weight is not None and weight.shape != (k,):
        raise ValueError(f"weight must have shape ({k},), one per class, got {tuple(weight.shape)}")

    if target.is_floating_point():  # class probabilities p
        if target.shape != input.shape:
            raise ValueError(
                f"probability targets must have the input's shape {tuple(input.shape)}, got {tuple(target.shape)}"
            )
        log_q = log_softmax(input, dim=class_dim)
        wshape = [1] * input.dim()
        wshape[class_dim] = k
        w = None if weight is None else weight.to(log_q.dtype).view(wshape)
        # p' = (1 - eps) p + eps / K
        p = target * (1 - label_smoothing) + label_smoothing / k if label_smoothing > 0 else target
        # l_i = - sum_k w_k p'_{ik} log q_{ik}
        terms = -(log_q * p) if w is None else -(log_q * p * w)
        loss = terms.sum(class_dim)
        if reduction == "mean":
            return loss.sum() / (input.numel() / k)
        return loss.sum() if reduction == "sum" else loss

    if target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"target must hold class indices (int64) or probabilities (float), got {target.dtype}")
    # the closed form gives no gradient for w; torch.func transforms (vmap, grad, jvp) need rules the
    # autograd.Function does not define: both differentiate the equations instead
    if (weight is not None and weight.requires_grad) or torch._C._are_functorch_transforms_active():
        return _cross_entropy_equations(input, target, weight, ignore_index, reduction, label_smoothing)
    z, y = _classes_last(input, target)  # (M, C), (M,)
    w = None if weight is None else weight.to(z.dtype)
    loss = _CrossEntropyIndex.apply(z, y, w, ignore_index, reduction, float(label_smoothing))
    return loss.reshape(target.shape) if reduction == "none" else loss


def binary_cross_entropy_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary cross-entropy of sigmoid(input) against target in [0, 1], computed stably from the logit."""
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    x, y = input, target
    # -log sigmoid(x) = log(1 + e^{-x}) = log(e^0 + e^{-x}), by log-sum-exp: stable for any x, and (unlike
    # the equal form log(1 + e^{-|x|}) + max(-x, 0)) twice differentiable at x = 0 under autograd
    neg_log_sig = torch.logaddexp(torch.zeros_like(x), -x)
    if pos_weight is None:
        # (1 - y) x - log sigmoid(x)
        loss = (1 - y) * x + neg_log_sig
    else:
        # (1 - y) x + (1 + (p_w - 1) y) (-log sigmoid(x))
        loss = (1 - y) * x + (1 + (pos_weight - 1) * y) * neg_log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


class _Loss(torch.nn.Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Module form of `mse_loss`."""

    def forward(self, input, target):
        return mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Module form of `l1_loss` (MAE)."""

    def forward(self, input, target):
        return l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """Module form of `huber_loss`."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"delta must be > 0, got {delta}")
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, self.reduction, self.delta)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, reduction={self.reduction!r}"


class HingeLoss(_Loss):
    """Module form of the binary `hinge_loss` (labels in {-1, +1})."""

    def __init__(self, reduction: str = "mean", margin: float = 1.0):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input, target):
        return hinge_loss(input, target, self.reduction, self.margin)


class CrossEntropyLoss(_Loss):
    """Module form of `cross_entropy`."""

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.register_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


class NLLLoss(_Loss):
    """Module form of `nll_loss` (input: log-probabilities, class dimension 1)."""

    def __init__(self, weight: torch.Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Module form of `binary_cross_entropy_with_logits`."""

    def __init__(
        self, weight: torch.Tensor | None = None, reduction: str = "mean", pos_weight: torch.Tensor | None = None
    ):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)
