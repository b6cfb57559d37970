"""Gradient descent: first-order steps against Newton's second-order steps on logistic regression.

Data: scikit-learn's breast-cancer set (569 tumours, 30 standardised features; 75 % for training),
float64. The objective is the mean logistic loss plus an L2 penalty lambda/2 ||w||^2 (lambda = 1e-2,
bias not penalised), which makes it strictly convex with a finite minimiser (without it the
nearly separable data would send the weights to infinity). Both methods start from zero weights and
take full-batch steps through `fit`:

- gradient descent with the classical constant step 1/L, L = lambda_max(X^T X)/(4N) + lambda the
  largest curvature the loss can have;
- Newton's method, w <- w - H^{-1} g (`dlterms.optim.Newton`).

Check (the spec): Newton reaches ||grad|| < 1e-8 in <= 15 iterations, and gradient descent needs at
least 10x as many. Its 30 correlated features make the problem ill-conditioned (the ratio of the
largest to smallest curvature is reported), which is exactly where first-order steps crawl.
Mini-batch (B = 32) and stochastic (B = 1) gradient descent at the same step are also shown for
context: with a constant step they stall at a noise floor instead of converging.

Thresholds: docs/experiments.md#gradient-descent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dlterms.experiments.training._common import LogisticProblem
from dlterms.optim import SGD, Newton, hessian
from dlterms.run import Run, experiment
from dlterms.training import Every, TrainState, fit

TOL = 1e-8  # gradient-norm target of the claims


@dataclass(frozen=True)
class Config:
    """Parameters of the gradient-descent experiment; the defaults are the recorded run."""

    lam: float = 1e-2  # L2 penalty lambda of the logistic regression
    gd_cap: int = 1000  # gradient-descent iterations allowed (step 1/L)
    newton_cap: int = 50  # Newton iterations allowed
    minibatch: int = 32  # batch size of the mini-batch arm
    minibatch_epochs: int = 40  # its epochs
    sgd_epochs: int = 4  # epochs of the one-example-per-step arm

    def __post_init__(self) -> None:
        if not self.lam > 0:
            raise ValueError(f"lam must be > 0 (it makes the problem strictly convex), got {self.lam!r}")
        for name in ("gd_cap", "newton_cap", "minibatch", "minibatch_epochs", "sgd_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


class _GradNorm(Every):
    """Full-data gradient norm after every epoch (`norms`); stops when it is below `tol`."""

    def __init__(self, objective, tol: float):
        def grad_norm(state: TrainState) -> float:
            params = list(state.model.parameters())
            with torch.enable_grad():
                grads = torch.autograd.grad(objective(state.model), params)
            norm = float(torch.cat([g.reshape(-1) for g in grads]).norm())
            if norm < tol:
                state.stop, state.stop_reason = True, "gradient norm below tolerance"
            return norm

        super().__init__(1, grad_norm, on="epoch")

    @property
    def norms(self) -> list[float]:
        return self.values


@experiment("gradient-descent", config=Config)
def gradient_descent(run: Run, cfg: Config) -> None:
    GD_CAP = cfg.gd_cap
    prob = LogisticProblem(run.seed, run.device, cfg.lam)
    x, y, L = prob.x, prob.y, prob.L
    loss_fn, objective, new_model = prob.loss_fn, prob.objective, prob.new_model

    newton_model = new_model()
    track_n = _GradNorm(objective, TOL)
    fit(
        newton_model,
        (x, y),
        loss_fn=loss_fn(newton_model),
        optimizer=Newton(newton_model.parameters()),
        epochs=cfg.newton_cap,
        batch_size=None,
        seed=run.seed,
        callbacks=[track_n],
    )
    it_newton = next((i + 1 for i, g in enumerate(track_n.norms) if g < TOL), None)
    run.progress(0.2, "Newton done")

    with torch.enable_grad():
        _, H = hessian(objective(newton_model), list(newton_model.parameters()))
    eig = torch.linalg.eigvalsh(H)
    run.metric("hessian_condition_number_at_optimum", float(eig.max() / eig.min()))
    run.metric("step_1_over_L", 1 / L)

    gd_model = new_model()
    track_g = _GradNorm(objective, TOL)
    fit(
        gd_model,
        (x, y),
        loss_fn=loss_fn(gd_model),
        optimizer=SGD(gd_model.parameters(), lr=1 / L),
        epochs=GD_CAP,
        batch_size=None,
        seed=run.seed,
        callbacks=[track_g],
    )
    it_gd = next((i + 1 for i, g in enumerate(track_g.norms) if g < TOL), None)
    run.progress(0.7, "gradient descent done")

    stochastic = {}
    for b in (cfg.minibatch, 1):
        m = new_model()
        tr = _GradNorm(objective, TOL)
        fit(
            m,
            (x, y),
            loss_fn=loss_fn(m),
            optimizer=SGD(m.parameters(), lr=1 / L),
            epochs=cfg.sgd_epochs if b == 1 else cfg.minibatch_epochs,
            batch_size=b,
            seed=run.seed,
            callbacks=[tr],
        )
        stochastic[b] = tr.norms
        run.metric(f"grad_norm_after_{len(tr.norms)}_epochs_batch_{b}", tr.norms[-1])

    run.metric("iterations_newton", it_newton, key=True)
    run.metric("iterations_gradient_descent", it_gd if it_gd is not None else f"> {GD_CAP}")
    run.metric("grad_norm_gd_at_cap_or_end", track_g.norms[-1])
    if it_newton is not None and len(track_g.norms) >= 10 * it_newton:
        run.metric(f"grad_norm_gd_after_{10 * it_newton}_iterations", track_g.norms[10 * it_newton - 1])
    if it_gd is None:
        # linear convergence: extrapolate the rate of the last half of the run to the tolerance
        half = len(track_g.norms) // 2
        rate = (track_g.norms[-1] / track_g.norms[half]) ** (1 / (len(track_g.norms) - 1 - half))
        est = len(track_g.norms) + np.log(TOL / track_g.norms[-1]) / np.log(rate)
        run.metric("iterations_gradient_descent_extrapolated", int(round(est)))
    run.check_le(
        f"Newton reaches ||grad|| < {TOL:g} in <= 15 iterations", it_newton if it_newton is not None else math.inf, 15
    )
    gd_text = str(it_gd) if it_gd is not None else f"> {GD_CAP} (||grad|| {track_g.norms[-1]:.1e} at {GD_CAP})"
    run.check(
        "first-order gradient descent needs at least 10x more iterations",
        it_newton is not None and (it_gd is None or it_gd >= 10 * it_newton),
        observed=gd_text,
        expected=f">= {10 * it_newton if it_newton else '10x Newton'}",
    )

    with run.figure(
        "convergence",
        alt="gradient norm against iteration on a log scale: Newton falls to 1e-8 "
        "within a handful of iterations, gradient descent declines slowly and linearly, "
        "mini-batch and stochastic descent stall at a noise floor",
    ) as fig:
        ax = fig.subplots()
        ax.semilogy(range(1, len(track_n.norms) + 1), track_n.norms, "o-", label="Newton (full batch)")
        ax.semilogy(range(1, len(track_g.norms) + 1), track_g.norms, label="gradient descent, step 1/L")
        for b, norms in stochastic.items():
            ax.semilogy(
                range(1, len(norms) + 1),
                norms,
                alpha=0.8,
                label=f"{'mini-batch' if b > 1 else 'stochastic'} (B={b}), step 1/L, per epoch",
            )
        ax.axhline(TOL, color="k", ls=":", lw=0.8, label=f"tolerance {TOL:g}")
        ax.set_xscale("log")
        ax.set_xlabel("iteration (epoch for the mini-batch runs)")
        ax.set_ylabel("||gradient|| of the full objective")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
