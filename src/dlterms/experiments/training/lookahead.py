"""Lookahead: the slow/fast weight rule holds exactly; on a noisy problem it settles lower and steadier
than the SGD it wraps at the same rate, and no better than SGD at a smaller rate.

Problem: L2-regularised logistic regression (lambda = 1e-2) on scikit-learn's breast-cancer set (426
training tumours, 30 standardised features), from the same initial weights and the same batches.

1. The rule: `Lookahead(SGD(lr=0.1, momentum=0.9), k=5, alpha=0.5)` is trained by `fit` for 200
   steps (batch 16) beside plain SGD with momentum whose weights a callback pulls back by hand every
   5 steps (phi <- phi + alpha (theta - phi), theta <- phi). The weights must agree at every step
   (< 1e-6) and the wrapper's slow weights must equal the hand-kept ones.
2. The noisy problem: one example per step at a constant learning rate, 6 passes, so plain SGD keeps
   bouncing around the minimum. The full objective is measured after every step and the end of
   training is judged over the last 3 passes (1278 steps). Near that noise floor Lookahead acts much
   like a smaller step (with alpha = 0.5 its slow weights keep about half of what the inner steps
   travel), so beating SGD at the same learning rate says little. Each arm therefore runs every rate of
   the same grid (factors of 2 from 0.01875 to 0.6), and the grid holds SGD at alpha times each of
   Lookahead's inner rates: the equal-effective-step control. The models of one arm train side by side
   as the columns of one Linear(30, G) layer on the same examples; each column's loss is scaled by its
   lr / the largest lr, which for plain SGD (linear in the gradient) is exactly a step of its own lr.

   Checks: at the same inner rate (0.3) Lookahead(SGD) ends at a lower mean loss with a lower variance
   than SGD (the spec's comparison); plain SGD at alpha x 0.3 = 0.15 recovers at least 80 % of that
   gain (measured: about all of it); and with each arm at its own best rate of the grid (by the mean
   loss), Lookahead does not beat SGD by more than 1 % (measured: the two end within about 0.2 %,
   SGD slightly lower and steadier). The honest result on this problem: Lookahead's gain is the gain
   of a smaller step. The mean loss over the first 100 steps at 0.3 is reported for both (pulling back
   toward the slow weights can slow early progress; at seeds 0-4, 11 and 23 Lookahead's was higher on 4
   of the 7 and lower on 3). An earlier version judged the last 300 steps only;
   there a few spikes decide the variance, and at probe seed 23 Lookahead's was the larger.

Thresholds: docs/experiments.md#lookahead.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer

from dlterms.data.datasets import make_split
from dlterms.losses import binary_cross_entropy_with_logits
from dlterms.nn import Linear
from dlterms.optim import SGD, Lookahead
from dlterms.run import Run, experiment
from dlterms.training import Callback, TrainState, fit

LAMBDA, K, ALPHA, PASSES, LAST_PASSES = 1e-2, 5, 0.5, 6, 3
SAME_LR = 0.3  # the inner rate of TERMS's same-rate comparison
LRS = (0.01875, 0.0375, 0.075, 0.15, 0.3, 0.6)  # factors of 2 = 1 / ALPHA: SGD at ALPHA x each rate is in the grid


class _ManualLookahead(Callback):
    """Lookahead's outer loop written out by hand around any optimiser."""

    def __init__(self, k: int, alpha: float):
        self.k, self.alpha, self.slow = k, alpha, None

    def on_train_begin(self, state: TrainState) -> None:
        self.slow = [p.detach().clone() for p in state.model.parameters()]

    def on_batch_end(self, state: TrainState) -> None:
        if state.step % self.k == 0:
            with torch.no_grad():
                for phi, theta in zip(self.slow, state.model.parameters()):
                    phi += self.alpha * (theta - phi)
                    theta.copy_(phi)


class _Record(Callback):
    """Every parameter after every step: flattened and concatenated (`weights`), or as they are (`params`)."""

    def __init__(self):
        self.weights, self.params = [], []

    def on_batch_end(self, state: TrainState) -> None:
        ps = [p.detach().clone() for p in state.model.parameters()]
        self.weights.append(torch.cat([p.flatten() for p in ps]))
        self.params.append(ps)


@experiment("lookahead")
def lookahead(run: Run) -> None:
    d = load_breast_cancer()
    split = make_split(d.data, d.target.astype(np.int64), test_size=0.25, seed=run.seed)
    x = split.x_train
    x = ((x - x.mean(0)) / x.std(0)).to(run.device)
    y = split.y_train.float().to(run.device)

    def loss_fn(model):
        def f(out, t):
            # mean logistic loss + lambda/2 ||w||^2
            return binary_cross_entropy_with_logits(out.squeeze(1), t) + LAMBDA / 2 * model.weight.pow(2).sum()

        return f

    def new_model():
        torch.manual_seed(run.seed)
        return Linear(30, 1).to(run.device)

    # 1. the rule, exactly
    m1, m2 = new_model(), new_model()
    opt1 = Lookahead(SGD(m1.parameters(), lr=0.1, momentum=0.9), k=K, alpha=ALPHA)
    r1, r2, manual = _Record(), _Record(), _ManualLookahead(K, ALPHA)
    fit(
        m1,
        (x, y),
        loss_fn=loss_fn(m1),
        optimizer=opt1,
        epochs=8,
        batch_size=16,
        seed=run.seed,
        max_steps=200,
        callbacks=[r1],
    )
    fit(
        m2,
        (x, y),
        loss_fn=loss_fn(m2),
        optimizer=SGD(m2.parameters(), lr=0.1, momentum=0.9),
        epochs=8,
        batch_size=16,
        seed=run.seed,
        max_steps=200,
        callbacks=[manual, r2],
    )
    diff = float((torch.stack(r1.weights) - torch.stack(r2.weights)).abs().max())
    slow_diff = max(float((opt1.state[p]["slow"] - phi).abs().max()) for p, phi in zip(m1.parameters(), manual.slow))
    run.metric("max_weight_diff_vs_hand_replay", diff)
    run.check(
        f"slow/fast rule: phi <- phi + {ALPHA} (theta - phi), theta <- phi every {K} steps, at each of 200 steps",
        max(diff, slow_diff) < 1e-6,
        observed=f"{max(diff, slow_diff):.2e}",
        expected="< 1e-6",
    )

    # 2. the noisy problem: G models per arm, the columns of one Linear(30, G), one lr each
    last_n = LAST_PASSES * len(y)  # the steps over which the end of training is judged
    c = torch.tensor([lr / max(LRS) for lr in LRS], device=run.device)  # loss scale = lr / lr_max

    def grid_loss_fn(model):
        def f(out, t):
            # per column g: mean logistic loss + lambda/2 ||w_g||^2, scaled by lr_g / lr_max, summed
            per = binary_cross_entropy_with_logits(out, t[:, None].expand_as(out), reduction="none").mean(0)
            return (c * (per + LAMBDA / 2 * model.weight.pow(2).sum(1))).sum()

        return f

    def objectives(weight, bias):
        # the unscaled full objective of every column after every step: weight (S, G, 30), bias (S, G) -> (S, G)
        out = torch.einsum("sgd,nd->sgn", weight, x) + bias[..., None]
        per = binary_cross_entropy_with_logits(out, y.expand_as(out), reduction="none").mean(-1)
        return per + LAMBDA / 2 * weight.pow(2).sum(-1)

    stats, curves = {}, {}
    for label in ("SGD", "Lookahead(SGD)"):
        m0 = new_model()  # every column starts from the same weights
        m = Linear(30, len(LRS)).to(run.device)
        with torch.no_grad():
            m.weight.copy_(m0.weight.expand_as(m.weight))
            m.bias.copy_(m0.bias.expand_as(m.bias))
        opt = SGD(m.parameters(), lr=max(LRS))
        if label != "SGD":
            opt = Lookahead(opt, k=K, alpha=ALPHA)
        rec = _Record()
        fit(
            m,
            (x, y),
            loss_fn=grid_loss_fn(m),
            optimizer=opt,
            epochs=PASSES,
            batch_size=1,
            seed=run.seed,
            callbacks=[rec],
        )
        with torch.no_grad():
            loss = objectives(torch.stack([w for w, _ in rec.params]), torch.stack([b for _, b in rec.params]))
        last = loss[-last_n:]
        finite = torch.isfinite(last).all(0)
        means = torch.where(finite, last.mean(0), torch.full_like(last[0], float("inf")))
        for g, lr in enumerate(LRS):
            stats[(label, lr)] = (float(means[g]), float(last[:, g].var(unbiased=False)))
            curves[(label, lr)] = loss[:, g].tolist()
        run.progress(0.5 if label == "SGD" else 1.0, label)

    def best(label):
        return min(LRS, key=lambda lr: stats[(label, lr)][0])

    b_sgd, b_la = best("SGD"), best("Lookahead(SGD)")
    run.metric("best_lr_sgd_vs_lookahead", [b_sgd, b_la])
    for label in ("SGD", "Lookahead(SGD)"):
        tag = "sgd" if label == "SGD" else "lookahead"
        run.metric(f"mean_loss_last_{last_n}_{tag}_per_lr", {str(lr): round(stats[(label, lr)][0], 4) for lr in LRS})
        run.metric(
            f"loss_variance_last_{last_n}_{tag}_per_lr", {str(lr): float(f"{stats[(label, lr)][1]:.3g}") for lr in LRS}
        )
    # TERMS's comparison, at the same inner rate (the original setting: lr 0.3, where SGD is noisy)
    (m_s, v_s), (m_l, v_l) = stats[("SGD", SAME_LR)], stats[("Lookahead(SGD)", SAME_LR)]
    m_c = stats[("SGD", ALPHA * SAME_LR)][0]  # the control: SGD at alpha x the inner rate
    run.metric(f"mean_loss_last_{last_n}_at_lr_{SAME_LR}_sgd_vs_lookahead", [round(m_s, 4), round(m_l, 4)])
    run.metric(
        f"loss_variance_last_{last_n}_at_lr_{SAME_LR}_sgd_vs_lookahead", [float(f"{v_s:.3g}"), float(f"{v_l:.3g}")]
    )
    run.metric(f"mean_loss_last_{last_n}_sgd_at_lr_{ALPHA * SAME_LR}", round(m_c, 4))
    early = {k: float(np.mean(v[:100])) for k, v in curves.items()}
    run.metric(
        f"mean_loss_first_100_at_lr_{SAME_LR}_sgd_vs_lookahead",
        [round(early[("SGD", SAME_LR)], 4), round(early[("Lookahead(SGD)", SAME_LR)], 4)],
    )
    run.check(
        f"at the same inner learning rate ({SAME_LR}) Lookahead(SGD) ends at a lower or equal loss "
        f"(mean of the last {last_n} steps)",
        m_l <= m_s,
        observed=f"{m_l:.4f} vs SGD {m_s:.4f}",
        expected="<= SGD",
    )
    run.check(
        f"with a lower loss variance over the last {last_n} steps",
        v_l < v_s,
        observed=f"{v_l:.3g} vs SGD {v_s:.3g}",
        expected="< SGD",
    )
    recovered = (m_s - m_c) / (m_s - m_l) if m_s > m_l else float("nan")
    run.metric("share_of_lookahead_gain_recovered_by_sgd_at_alpha_lr", round(recovered, 3))
    run.check(
        f"control: plain SGD at the smaller step alpha x {SAME_LR} = {ALPHA * SAME_LR} recovers >= 80 % of "
        "that gain (near the noise floor Lookahead acts like a smaller step)",
        recovered >= 0.8,
        observed=f"{recovered:.3f} (SGD at {ALPHA * SAME_LR}: {m_c:.4f})",
        expected=">= 0.8",
    )

    # Each arm at its own best rate: what wins
    (ms, vs), (ml, vl) = stats[("SGD", b_sgd)], stats[("Lookahead(SGD)", b_la)]
    run.metric(f"mean_loss_last_{last_n}_best_sgd_vs_best_lookahead", [round(ms, 4), round(ml, 4)], key=True)
    run.metric(f"loss_variance_last_{last_n}_best_sgd_vs_best_lookahead", [float(f"{vs:.3g}"), float(f"{vl:.3g}")])
    run.metric("relative_loss_gain_of_lookahead_over_tuned_sgd", float(f"{(ms - ml) / ms:.3g}"))
    run.check(
        "each at its own best learning rate, Lookahead(SGD) does not beat SGD by more than 1 % "
        f"(mean of the last {last_n} steps; best lrs {b_la} and {b_sgd})",
        ml >= 0.99 * ms,
        observed=f"{ml:.4f} vs SGD {ms:.4f} ({(ml - ms) / ms:+.2%})",
        expected=">= 0.99 x SGD",
    )

    with run.figure(
        "noisy",
        alt="left: full objective after every step at inner learning rate 0.3: SGD bounces widely, "
        "Lookahead stays lower, and SGD at 0.15 lies on top of Lookahead; right: mean loss of the last "
        "3 passes against the learning rate for both, the two curves about one factor of 2 apart",
        figsize=(10, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        for key in (("SGD", SAME_LR), ("Lookahead(SGD)", SAME_LR), ("SGD", ALPHA * SAME_LR)):
            cv = curves[key]
            ax1.plot(
                range(1, len(cv) + 1), cv, lw=0.6, label=f"{key[0]}, lr {key[1]}: last {last_n} {stats[key][0]:.4f}"
            )
        n_steps = len(curves[("SGD", SAME_LR)])
        ax1.axvspan(n_steps - last_n, n_steps, color="grey", alpha=0.15)
        ax1.set_yscale("log")
        ax1.set_xlabel("step (one example each)")
        ax1.set_ylabel("full objective")
        ax1.legend(fontsize=7)
        ax1.grid(alpha=0.3)
        for label, marker in (("SGD", "o"), ("Lookahead(SGD)", "s")):
            ax2.semilogx(LRS, [stats[(label, lr)][0] for lr in LRS], marker=marker, label=label)
        ax2.set_xlabel("(inner) learning rate")
        ax2.set_ylabel(f"mean full objective, last {last_n} steps")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
