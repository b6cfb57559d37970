"""Knowledge distillation: Hinton et al.'s left-out class, on scikit-learn's digits.

A teacher MLP (64-512-512-10, dropout 0.2, about 301 000 weights) is trained on the full training set.
The transfer set is the same training images with every 3 removed. Two students with the same small
architecture (64-32-10, 2 410 weights, 125x smaller) are trained on it for 100 epochs:

- on the labels alone (cross-entropy): a 3 never appears as a target;
- on the teacher's soft targets alone (alpha = 1, T = 20, the T^2-scaled KL term): the teacher's
  probabilities for "3" on images of other digits (a 5 that looks a little like a 3) are the only
  trace of the class.

Both are tested on the held-out test set, on the 3s and on the other digits. No bias correction is
applied (the paper raised the student's bias for 3 to fix its under-confidence; it is not needed
here). This shows what the soft targets carry; it does not show that distillation beats labels in
general (on the other nine digits the two students are about equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.methods.distillation import distillation_loss
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import accuracy, count_parameters, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the knowledge-distillation experiment; the defaults are the recorded run."""

    teacher_sizes: tuple[int, ...] = (64, 512, 512, 10)  # teacher MLP layer sizes
    student_sizes: tuple[int, ...] = (64, 32, 10)  # student MLP layer sizes
    left_out: int = 3  # digit class removed from the transfer set
    temperature: float = 20.0  # softmax temperature T of the soft targets
    teacher_epochs: int = 30  # teacher training epochs
    student_epochs: int = 100  # epochs of each student on the transfer set
    lr: float = 1e-3  # Adam step size

    def __post_init__(self) -> None:
        for name in ("teacher_sizes", "student_sizes"):
            sizes = getattr(self, name)
            if len(sizes) < 2 or sizes[0] != 64 or sizes[-1] != 10:
                raise ValueError(f"{name} must start at 64 (the digits' pixels) and end at 10, got {sizes!r}")
        if not 0 <= self.left_out <= 9:
            raise ValueError(f"left_out must be a digit 0..9, got {self.left_out!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if self.teacher_epochs < 1 or self.student_epochs < 1:
            raise ValueError(
                f"teacher_epochs and student_epochs must be >= 1, got {self.teacher_epochs!r}, {self.student_epochs!r}"
            )


@experiment(
    "knowledge-distillation",
    config=Config,
    sweeps=(
        Sweep(
            "temperature",
            (1.0, 2.0, 5.0, 10.0, 20.0),
            "How much does the soft-target student learn of the class it never saw, as the temperature rises?",
            metric="soft_student_acc_on_3s",
        ),
    ),
)
def knowledge_distillation(run: Run, cfg: Config) -> None:
    d = digits(test_size=0.3, seed=run.seed).to(run.device)
    torch.manual_seed(run.seed)
    teacher = MLP(list(cfg.teacher_sizes), dropout=0.2).to(run.device)
    fit(
        teacher,
        (d.x_train, d.y_train),
        loss_fn=cross_entropy,
        optimizer=Adam(teacher.parameters(), lr=cfg.lr),
        epochs=cfg.teacher_epochs,
        batch_size=64,
        seed=run.seed,
    )
    teacher.eval()
    keep = d.y_train != cfg.left_out
    xs, ys = d.x_train[keep], d.y_train[keep]
    with torch.no_grad():
        t_logits = teacher(xs)
    idx = torch.arange(len(xs), device=run.device)
    losses = {
        "labels": lambda out, i: cross_entropy(out, ys[i]),
        "soft targets": lambda out, i: distillation_loss(out, t_logits[i], None, cfg.temperature, alpha=1.0),
    }
    is_out = d.y_test == cfg.left_out
    res = {}
    for k, (name, loss_fn) in enumerate(losses.items()):
        torch.manual_seed(run.seed + 1)  # the same initial student for both
        student = MLP(list(cfg.student_sizes)).to(run.device)
        fit(
            student,
            (xs, idx),
            loss_fn=loss_fn,
            optimizer=Adam(student.parameters(), lr=cfg.lr),
            epochs=cfg.student_epochs,
            batch_size=64,
            seed=run.seed,
        )
        student.eval()
        with torch.no_grad():
            pred = student(d.x_test).argmax(1)
        res[name] = (
            float((pred[is_out] == cfg.left_out).float().mean()),
            float((pred[~is_out] == d.y_test[~is_out]).float().mean()),
            float((pred == cfg.left_out).float().sum()),
        )
        run.progress((k + 1) / 2, name)
    ratio = count_parameters(teacher) / count_parameters(student)
    acc_t = accuracy(teacher, d.x_test, d.y_test)
    with torch.no_grad():
        t_pred = teacher(d.x_test).argmax(1)
    t3 = float((t_pred[is_out] == cfg.left_out).float().mean())
    t_other = float((t_pred[~is_out] == d.y_test[~is_out]).float().mean())
    run.metric("teacher_test_acc", acc_t)
    run.metric("teacher_acc_on_left_out_class", t3)
    run.metric("teacher_to_student_size_ratio", ratio)
    run.metric("labels_student_acc_on_3s", res["labels"][0])
    run.metric("soft_student_acc_on_3s", res["soft targets"][0], key=True)
    run.metric("labels_student_acc_on_other_digits", res["labels"][1])
    run.metric("soft_student_acc_on_other_digits", res["soft targets"][1])
    run.metric("labels_student_times_predicting_3", int(res["labels"][2]))
    run.check_ge("the student is >= 5x smaller than the teacher", ratio, 5)
    run.check_le("trained on labels alone, the student never recognises the left-out class", res["labels"][0], 0.02)
    run.check_ge(
        "trained on the teacher's soft targets, it recognises the class it never saw", res["soft targets"][0], 0.3
    )
    run.check_ge("the soft-target student still classifies the other digits", res["soft targets"][1], 0.9)

    with run.figure(
        "left-out-class",
        alt="test accuracy on the left-out digit 3 and on the other digits for the "
        "teacher, the student trained on labels and the student trained on soft targets",
    ) as fig:
        ax = fig.subplots()
        names = ["teacher (saw 3s)", "student, labels", "student, soft targets"]
        on3 = [t3, res["labels"][0], res["soft targets"][0]]
        other = [t_other, res["labels"][1], res["soft targets"][1]]
        xs_ = torch.arange(3).float()
        ax.bar(xs_ - 0.2, on3, 0.4, label="accuracy on 3s")
        ax.bar(xs_ + 0.2, other, 0.4, label="accuracy on the other digits")
        ax.set_xticks(xs_.tolist(), names)
        ax.set_ylim(0, 1.05)
        ax.legend(loc="lower left")
