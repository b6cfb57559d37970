"""Lookahead: the slow/fast weight rule holds exactly; on a noisy problem it settles lower and steadier
than the SGD it wraps at the same rate, and no better than SGD at a smaller rate.

Problem: L2-regularised logistic regression (lambda = 1e-2) on scikit-learn's breast-cancer set (426
training tumours, 30 standardised features), from the same initial weights and the same batches.

1. The rule: `Lookahead(SGD(lr=0.1, momentum=0.9), k=5, alpha=0.5)` is trained by `fit` for 200
   steps (batch 16). At every step the fast weights theta right after the inner step (a post-step hook
   on the inner optimiser) and the optimiser's slow weights phi before and after its step are
   recorded. At each sync (every 5th step) the new slow weights must be phi_old + alpha (theta -
   phi_old) and the weights must be reset to them; between syncs phi must not move and the weights
   must be the inner step's (all to < 1e-6). The step-by-step comparison with a hand replay of the
   whole outer loop around plain SGD, in float64, is a test (tests/training/test_optim_extras.py).
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

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer

from dlterms.data.datasets import make_split
from dlterms.losses import binary_cross_entropy_with_logits
from dlterms.nn import Linear
from dlterms.optim import SGD, Lookahead
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import Callback, TrainState, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the lookahead experiment; the defaults are the recorded run."""

    lam: float = 1e-2  # L2 penalty lambda of the logistic regression
    k: int = 5  # inner (fast) steps between Lookahead's synchronisations
    alpha: float = 0.5  # slow-weight step size of Lookahead
    rule_steps: int = 200  # steps of the rule check (batch 16, SGD lr 0.1 with momentum 0.9)
    passes: int = 6  # passes over the data of the noisy problem (one example per step)
    last_passes: int = 3  # final passes over which the end of training is judged
    same_lr: float = 0.3  # the inner rate of TERMS's same-rate comparison (must be in lrs, and so must alpha x it)
    lrs: tuple[float, ...] = (0.01875, 0.0375, 0.075, 0.15, 0.3, 0.6)  # the grid of rates each arm runs

    def __post_init__(self) -> None:
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k!r}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha!r}")
        if self.rule_steps < self.k:
            raise ValueError(f"rule_steps must be >= k (at least one sync), got {self.rule_steps!r}")
        if not 1 <= self.last_passes <= self.passes:
            raise ValueError(f"last_passes must be in [1, passes={self.passes}], got {self.last_passes!r}")
        if not self.lrs or min(self.lrs) <= 0:
            raise ValueError(f"lrs must be positive rates, got {self.lrs!r}")
        # the equal-effective-step control needs SGD at alpha x same_lr in the grid
        for name, v in (("same_lr", self.same_lr), ("alpha x same_lr", self.alpha * self.same_lr)):
            if not any(abs(v - lr) <= 1e-12 * lr for lr in self.lrs):
                raise ValueError(f"{name} ({v!r}) must be one of lrs {self.lrs!r}")


class _SyncRecorder(Callback):
    """What Lookahead holds around each step: the fast weights and slow weights right after the inner
    step (a post-step hook on the inner optimiser, so before any sync), then the weights and the slow
    weights once the wrapper's step is done."""

    def __init__(self, opt: Lookahead):
        self.opt, self.rows = opt, []
        self._handle = opt.optimizer.register_step_post_hook(self._after_inner_step)

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.opt.param_groups for p in g["params"]]

    def _after_inner_step(self, *_) -> None:
        ps = self._params()
        self.rows.append(
            {"fast": [p.detach().clone() for p in ps], "slow_before": [self.opt.state[p]["slow"].clone() for p in ps]}
        )

    def on_batch_end(self, state: TrainState) -> None:
        ps = self._params()
        self.rows[-1]["theta"] = [p.detach().clone() for p in ps]
        self.rows[-1]["slow_after"] = [self.opt.state[p]["slow"].clone() for p in ps]

    def on_train_end(self, state: TrainState) -> None:
        self._handle.remove()


class _Record(Callback):
    """Every parameter after every step, as they are."""

    def __init__(self):
        self.params = []

    def on_batch_end(self, state: TrainState) -> None:
        self.params.append([p.detach().clone() for p in state.model.parameters()])


@experiment(
    "lookahead",
    config=Config,
    sweeps=(
        Sweep(
            "same_lr",
            (0.075, 0.15, 0.3, 0.6),
            "How much of Lookahead's gain over SGD at the same inner rate does plain SGD at alpha x that rate "
            "recover, from gentle to noisy rates?",
            metric="share_of_lookahead_gain_recovered_by_sgd_at_alpha_lr",
        ),
    ),
)
def lookahead(run: Run, cfg: Config) -> None:
    d = load_breast_cancer()
    split = make_split(d.data, d.target.astype(np.int64), test_size=0.25, seed=run.seed)
    x = split.x_train
    x = ((x - x.mean(0)) / x.std(0)).to(run.device)
    y = split.y_train.float().to(run.device)
    lrs = cfg.lrs

    def loss_fn(model):
        def f(out, t):
            # mean logistic loss + lambda/2 ||w||^2
            return binary_cross_entropy_with_logits(out.squeeze(1), t) + cfg.lam / 2 * model.weight.pow(2).sum()

        return f

    def new_model():
        torch.manual_seed(run.seed)
        return Linear(30, 1).to(run.device)

    # 1. the rule, exactly, read off the optimiser: at every k-th step phi_new = phi_old + alpha (theta - phi_old)
    # and theta <- phi_new; at the other steps phi is unchanged and theta is the inner step's
    m1 = new_model()
    opt1 = Lookahead(SGD(m1.parameters(), lr=0.1, momentum=0.9), k=cfg.k, alpha=cfg.alpha)
    rec1 = _SyncRecorder(opt1)
    fit(
        m1,
        (x, y),
        loss_fn=loss_fn(m1),
        optimizer=opt1,
        epochs=math.ceil(cfg.rule_steps * 16 / len(y)),
        batch_size=16,
        seed=run.seed,
        max_steps=cfg.rule_steps,
        callbacks=[rec1],
    )
    rule_err, syncs = 0.0, 0
    for t, row in enumerate(rec1.rows, start=1):
        for fast, old, theta, new in zip(row["fast"], row["slow_before"], row["theta"], row["slow_after"]):
            if t % cfg.k == 0:
                want = old + cfg.alpha * (fast - old)
                errs = ((new - want).abs().max(), (theta - new).abs().max())
            else:
                errs = ((new - old).abs().max(), (theta - fast).abs().max())
            rule_err = max(rule_err, *(float(e) for e in errs))
        syncs += t % cfg.k == 0
    run.metric("max_error_of_slow_fast_rule", rule_err)
    run.metric("sync_steps_checked", syncs)
    run.check_le(
        f"slow/fast rule, read off the optimiser: phi <- phi + {cfg.alpha} (theta - phi), theta <- phi every "
        f"{cfg.k} steps ({syncs} syncs), phi unchanged between them, at each of {len(rec1.rows)} steps",
        rule_err,
        1e-6,
        strict=True,
    )

    # 2. the noisy problem: G models per arm, the columns of one Linear(30, G), one lr each
    last_n = cfg.last_passes * len(y)  # the steps over which the end of training is judged
    c = torch.tensor([lr / max(lrs) for lr in lrs], device=run.device)  # loss scale = lr / lr_max

    def grid_loss_fn(model):
        def f(out, t):
            # per column g: mean logistic loss + lambda/2 ||w_g||^2, scaled by lr_g / lr_max, summed
            per = binary_cross_entropy_with_logits(out, t[:, None].expand_as(out), reduction="none").mean(0)
            return (c * (per + cfg.lam / 2 * model.weight.pow(2).sum(1))).sum()

        return f

    def objectives(weight, bias):
        # the unscaled full objective of every column after every step: weight (S, G, 30), bias (S, G) -> (S, G)
        out = torch.einsum("sgd,nd->sgn", weight, x) + bias[..., None]
        per = binary_cross_entropy_with_logits(out, y.expand_as(out), reduction="none").mean(-1)
        return per + cfg.lam / 2 * weight.pow(2).sum(-1)

    stats, curves = {}, {}
    for label in ("SGD", "Lookahead(SGD)"):
        m0 = new_model()  # every column starts from the same weights
        m = Linear(30, len(lrs)).to(run.device)
        with torch.no_grad():
            m.weight.copy_(m0.weight.expand_as(m.weight))
            m.bias.copy_(m0.bias.expand_as(m.bias))
        opt = SGD(m.parameters(), lr=max(lrs))
        if label != "SGD":
            opt = Lookahead(opt, k=cfg.k, alpha=cfg.alpha)
        rec = _Record()
        fit(
            m,
            (x, y),
            loss_fn=grid_loss_fn(m),
            optimizer=opt,
            epochs=cfg.passes,
            batch_size=1,
            seed=run.seed,
            callbacks=[rec],
        )
        with torch.no_grad():
            loss = objectives(torch.stack([w for w, _ in rec.params]), torch.stack([b for _, b in rec.params]))
        last = loss[-last_n:]
        finite = torch.isfinite(last).all(0)
        means = torch.where(finite, last.mean(0), torch.full_like(last[0], float("inf")))
        for g, lr in enumerate(lrs):
            stats[(label, lr)] = (float(means[g]), float(last[:, g].var(unbiased=False)))
            curves[(label, lr)] = loss[:, g].tolist()
        run.progress(0.5 if label == "SGD" else 1.0, label)

    def best(label):
        return min(lrs, key=lambda lr: stats[(label, lr)][0])

    b_sgd, b_la = best("SGD"), best("Lookahead(SGD)")
    run.metric("best_lr_sgd_vs_lookahead", [b_sgd, b_la])
    for label in ("SGD", "Lookahead(SGD)"):
        tag = "sgd" if label == "SGD" else "lookahead"
        run.metric(f"mean_loss_last_{last_n}_{tag}_per_lr", {str(lr): stats[(label, lr)][0] for lr in lrs})
        run.metric(f"loss_variance_last_{last_n}_{tag}_per_lr", {str(lr): stats[(label, lr)][1] for lr in lrs})
    # TERMS's comparison, at the same inner rate (the original setting: lr 0.3, where SGD is noisy)
    lr_c = min(lrs, key=lambda lr: abs(lr - cfg.alpha * cfg.same_lr))  # alpha x same_lr, as held in the grid
    (m_s, v_s), (m_l, v_l) = stats[("SGD", cfg.same_lr)], stats[("Lookahead(SGD)", cfg.same_lr)]
    m_c = stats[("SGD", lr_c)][0]  # the control: SGD at alpha x the inner rate
    run.metric(f"mean_loss_last_{last_n}_at_lr_{cfg.same_lr}_sgd_vs_lookahead", [m_s, m_l])
    run.metric(f"loss_variance_last_{last_n}_at_lr_{cfg.same_lr}_sgd_vs_lookahead", [v_s, v_l])
    run.metric(f"mean_loss_last_{last_n}_sgd_at_lr_{cfg.alpha * cfg.same_lr}", m_c)
    early = {k: float(np.mean(v[:100])) for k, v in curves.items()}
    run.metric(
        f"mean_loss_first_100_at_lr_{cfg.same_lr}_sgd_vs_lookahead",
        [early[("SGD", cfg.same_lr)], early[("Lookahead(SGD)", cfg.same_lr)]],
    )
    run.check(
        f"at the same inner learning rate ({cfg.same_lr}) Lookahead(SGD) ends at a lower or equal loss "
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
    run.metric("share_of_lookahead_gain_recovered_by_sgd_at_alpha_lr", recovered)
    run.check_ge(
        f"control: plain SGD at the smaller step alpha x {cfg.same_lr} = {cfg.alpha * cfg.same_lr} recovers >= 80 % of "
        "that gain (near the noise floor Lookahead acts like a smaller step)",
        recovered,
        0.8,
    )

    # Each arm at its own best rate: what wins
    (ms, vs), (ml, vl) = stats[("SGD", b_sgd)], stats[("Lookahead(SGD)", b_la)]
    run.metric(f"mean_loss_last_{last_n}_best_sgd_vs_best_lookahead", [ms, ml], key=True)
    run.metric(f"loss_variance_last_{last_n}_best_sgd_vs_best_lookahead", [vs, vl])
    run.metric("relative_loss_gain_of_lookahead_over_tuned_sgd", (ms - ml) / ms)
    run.check_ge(
        "each at its own best learning rate, Lookahead(SGD) does not beat SGD by more than 1 % "
        f"(mean of the last {last_n} steps; best lrs {b_la} and {b_sgd})",
        ml / ms,
        0.99,
    )

    with run.figure(
        "noisy",
        alt="left: full objective after every step at inner learning rate 0.3: SGD bounces widely, "
        "Lookahead stays lower, and SGD at 0.15 lies on top of Lookahead; right: mean loss of the last "
        "3 passes against the learning rate for both, the two curves about one factor of 2 apart",
        figsize=(10, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        for key in (("SGD", cfg.same_lr), ("Lookahead(SGD)", cfg.same_lr), ("SGD", lr_c)):
            cv = curves[key]
            ax1.plot(
                range(1, len(cv) + 1), cv, lw=0.6, label=f"{key[0]}, lr {key[1]}: last {last_n} {stats[key][0]:.4f}"
            )
        n_steps = len(curves[("SGD", cfg.same_lr)])
        ax1.axvspan(n_steps - last_n, n_steps, color="grey", alpha=0.15)
        ax1.set_yscale("log")
        ax1.set_xlabel("step (one example each)")
        ax1.set_ylabel("full objective")
        ax1.legend(fontsize=7)
        ax1.grid(alpha=0.3)
        for label, marker in (("SGD", "o"), ("Lookahead(SGD)", "s")):
            ax2.semilogx(lrs, [stats[(label, lr)][0] for lr in lrs], marker=marker, label=label)
        ax2.set_xlabel("(inner) learning rate")
        ax2.set_ylabel(f"mean full objective, last {last_n} steps")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
