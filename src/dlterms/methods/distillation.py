r"""Knowledge distillation: a student matches a teacher's temperature-softened outputs.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015. Both networks' logits
$z$ are softened with a temperature $T$, $p_T = \mathrm{softmax}(z / T)$, and the student minimises

$$L = \alpha\, T^2\, \mathrm{KL}\big(p^{\text{teacher}}_T \,\|\, p^{\text{student}}_T\big)
      + (1 - \alpha)\, \mathrm{CE}\big(y, \mathrm{softmax}(z^{\text{student}})\big)$$

The gradient of the soft term with respect to the student's logits scales as $1/T^2$, so the
factor $T^2$ keeps the two terms' relative weight unchanged when $T$ changes. High $T$ exposes the
teacher's small probabilities for wrong classes ("dark knowledge"), which carry how classes
resemble each other.
"""

from __future__ import annotations

import torch

from dlterms.nn.activations import log_softmax, softmax

__all__ = ["soft_targets", "distillation_loss", "kl_divergence"]


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """p_T = softmax(z / T); (N, K)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return softmax(logits / temperature, dim=-1)


def kl_divergence(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(p || q) = sum_k p_k (log p_k - log q_k), with 0 log 0 = 0."""
    return torch.where(p > 0, p * (torch.log(p.clamp_min(1e-38)) - log_q), torch.zeros_like(p)).sum(-1).mean()


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor | None,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """alpha T^2 KL(p_T^teacher || p_T^student) + (1 - alpha) CE(y, student); target may be None when alpha = 1."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs "
            f"{tuple(teacher_logits.shape)}"
        )
    p_teacher = soft_targets(teacher_logits.detach(), temperature)
    log_p_student = log_softmax(student_logits / temperature, dim=-1)
    soft = temperature**2 * kl_divergence(p_teacher, log_p_student)
    if alpha == 1.0:
        return soft
    if target is None:
        raise ValueError("target labels are needed when alpha < 1 (the hard-label term)")
    hard = -log_softmax(student_logits, dim=-1).gather(1, target.unsqueeze(1)).mean()  # CE(y, student)
    return alpha * soft + (1 - alpha) * hard
