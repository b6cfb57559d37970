"""Batch training: one exact update per epoch, fully reproducible; better per update, worse per pass.

Model: an MLP (64-64-10) on scikit-learn's digits (N = 1347 training images), plain SGD from the same
initial weights. Full-batch training (`fit(batch_size=None)`) makes one update per pass over the data;
mini-batches of 32 make 43. Both arms get each learning rate of the same grid (0.03 to 3) and are judged
at their own best rate for each budget. Cost is counted, not timed: an update over the full batch
evaluates 1347 example gradients, one over a mini-batch 32, so a pass over the data (1347 example
gradients) is the unit of compute and an update the unit of sequential steps. (Wall-clock time depends
on the hardware: on a set this small one vectorised full-batch step costs far less than 43 small ones.)

Checks (the spec): full batch makes exactly one update per epoch (30 epochs), and two runs from the
same seed end with bit-identical weights (demonstrations of the loop). Then the two sides of the
trade-off, each of which could come out either way:

- per update: after the same 30 updates, full batch (30 passes) reaches a lower training loss than
  mini-batches (30 updates, 0.7 passes): its exact gradient makes each step count for more;
- per pass: mini-batches reach the training loss full batch has after 30 passes in at most 6 passes,
  at least 5x fewer example gradients.

The mini-batch models of the grid train side by side (`dlterms.training.fit_stacked`, the same batches
for each), the full-batch ones one after another with `fit`; the full training loss is evaluated after
every one of the first 30 updates and after every pass.

Thresholds: docs/experiments.md#batch-training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import SGD
from dlterms.run import Run, experiment
from dlterms.training import Callback, TrainState, evaluate, fit, fit_stacked


@dataclass(frozen=True)
class Config:
    """Parameters of the batch-training experiment; the defaults are the recorded run."""

    epochs: int = 30  # full-batch passes (= updates)
    updates: int = 30  # the equal-updates budget
    mini_passes: int = 6  # the mini-batch budget in passes (epochs / 5: >= 5x fewer example gradients)
    batch: int = 32  # mini-batch size
    lrs: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)  # SGD learning-rate grid both arms run
    hidden: int = 64  # hidden units of the 64-H-10 MLP

    def __post_init__(self) -> None:
        if not 1 <= self.updates <= self.epochs:
            raise ValueError(f"updates must be in [1, epochs={self.epochs}], got {self.updates!r}")
        if not 1 <= self.mini_passes:
            raise ValueError(f"mini_passes must be >= 1, got {self.mini_passes!r}")
        if not 1 <= self.batch < 1347:
            raise ValueError(f"batch must be in [1, 1347) (the training images), got {self.batch!r}")
        if not self.lrs or min(self.lrs) <= 0 or self.hidden < 1:
            raise ValueError(f"lrs must be positive and hidden >= 1, got {self.lrs!r}, {self.hidden!r}")


def _net(seed: int, device: str, hidden: int) -> MLP:
    torch.manual_seed(seed)
    return MLP([64, hidden, 10]).to(device)


class _TrainLoss(Callback):
    """The loss on the whole training set after every update."""

    def __init__(self, x, y):
        self.x, self.y, self.loss = x, y, []

    def on_batch_end(self, state: TrainState) -> None:
        self.loss.append(evaluate(state.model, self.x, self.y, cross_entropy)[0])


@experiment("batch-training", config=Config)
def batch_training(run: Run, cfg: Config) -> None:
    EPOCHS, UPDATES, MINI_PASSES, BATCH, LRS = cfg.epochs, cfg.updates, cfg.mini_passes, cfg.batch, cfg.lrs
    split = digits(seed=run.seed).to(run.device)
    x, y = split.x_train, split.y_train
    n = len(y)
    loss0 = evaluate(_net(run.seed, run.device, cfg.hidden), x, y, cross_entropy)[0]  # every run starts here
    run.metric("initial_loss", loss0)

    # Full batch, one run per learning rate.
    full = {}
    for lr in LRS:
        model = _net(run.seed, run.device, cfg.hidden)
        track = _TrainLoss(x, y)
        h = fit(
            model,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=SGD(model.parameters(), lr=lr),
            epochs=EPOCHS,
            batch_size=None,
            seed=run.seed,
            callbacks=[track],
        )
        full[lr] = dict(model=model, h=h, curve=track.loss, loss=track.loss[-1] if track.loss else float("inf"))
    best_full = min(LRS, key=lambda lr: full[lr]["loss"])
    f = full[best_full]
    run.metric("full_batch_best_lr", best_full)
    run.metric(f"full_batch_loss_after_{EPOCHS}_updates_per_lr", {str(k): v["loss"] for k, v in full.items()})
    run.check(
        f"full batch: one update per epoch ({EPOCHS} epochs)",
        f["h"].steps == EPOCHS == f["h"].epochs_run,
        observed=f["h"].steps,
        expected=str(EPOCHS),
    )
    again = _net(run.seed, run.device, cfg.hidden)
    fit(
        again,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=SGD(again.parameters(), lr=best_full),
        epochs=EPOCHS,
        batch_size=None,
        seed=run.seed,
    )
    same = all(torch.equal(a, b) for a, b in zip(f["model"].state_dict().values(), again.state_dict().values()))
    run.check(
        "two full-batch runs from the same seed give identical weights",
        same,
        observed="bit-identical" if same else "differ",
        expected="bit-identical",
    )
    run.progress(0.4, "full batch trained")

    # Mini-batches of 32, the whole grid side by side.
    models = [_net(run.seed, run.device, cfg.hidden) for _ in LRS]
    steps_per_pass = -(-n // BATCH)
    at_step: dict[int, torch.Tensor] = {}

    def track_mini(state) -> None:
        if state.step <= UPDATES or state.step % steps_per_pass == 0:
            with torch.no_grad():
                out = state.forward(x)  # (G, N, 10)
                at_step[state.step] = torch.stack([cross_entropy(o, y) for o in out])

    hm = fit_stacked(
        models,
        (x, y),
        loss_fn=cross_entropy,
        lr=list(LRS),
        epochs=MINI_PASSES,
        batch_size=BATCH,
        seed=run.seed,
        callback=track_mini,
    )
    run.progress(0.9, "mini-batches trained")

    def finite(v: float) -> float:
        return v if v == v and v != float("inf") else float("inf")

    # Per update: both arms after UPDATES updates, each at its best rate for that budget.
    mini_at_u = {lr: finite(float(at_step[UPDATES][g])) for g, lr in enumerate(LRS)}
    full_at_u = {lr: full[lr]["curve"][UPDATES - 1] for lr in LRS}
    bu_mini, bu_full = min(LRS, key=mini_at_u.get), min(LRS, key=full_at_u.get)
    run.metric(f"loss_after_{UPDATES}_updates_full_vs_32", [full_at_u[bu_full], mini_at_u[bu_mini]])
    run.metric(f"best_lr_for_{UPDATES}_updates_full_vs_32", [bu_full, bu_mini])
    run.metric(f"mini_batch_loss_after_{UPDATES}_updates_per_lr", {str(k): v for k, v in mini_at_u.items()})
    run.check(
        f"per update: after the same {UPDATES} updates full batch reaches a lower training loss than "
        f"mini-batches of {BATCH} (each at its best learning rate)",
        full_at_u[bu_full] < mini_at_u[bu_mini],
        observed=f"{full_at_u[bu_full]:.4f} (lr {bu_full}) vs {mini_at_u[bu_mini]:.4f} (lr {bu_mini})",
        expected="full < mini",
    )

    # Per pass: how many passes mini-batches need to reach full batch's loss after EPOCHS passes.
    target = f["loss"]
    pass_steps = sorted(s for s in at_step if s % steps_per_pass == 0 or s == hm.steps)
    passes = {}
    for g, lr in enumerate(LRS):
        hit = next((s for s in pass_steps if float(at_step[s][g]) <= target), None)
        passes[lr] = hit / steps_per_pass if hit is not None else None
    reached = [lr for lr in LRS if passes[lr] is not None]
    bp_mini = min(reached, key=passes.get) if reached else None
    p_mini = passes[bp_mini] if bp_mini is not None else None
    run.metric(f"mini_batch_passes_to_full_batch_loss_after_{EPOCHS}_per_lr", {str(k): v for k, v in passes.items()})
    run.metric(
        f"passes_to_loss_{target:.4f}_full_vs_32",
        [EPOCHS, p_mini if p_mini is not None else f"> {MINI_PASSES}"],
        key=True,
    )
    run.metric(
        f"loss_after_{MINI_PASSES}_passes_full_vs_32",
        [
            full[best_full]["curve"][min(MINI_PASSES, EPOCHS) - 1],
            min(finite(float(v)) for v in at_step[hm.steps]),
        ],
    )
    run.metric("updates_per_pass_full_vs_32", [1, steps_per_pass])
    run.metric("example_gradients_per_update_full_vs_32", [n, BATCH])
    run.check(
        f"per pass: mini-batches of {BATCH} reach full batch's loss after {EPOCHS} passes ({target:.4f}) in "
        f"<= {MINI_PASSES} passes (>= 5x fewer example gradients)",
        p_mini is not None and p_mini <= MINI_PASSES,
        observed=f"{p_mini} passes (lr {bp_mini})" if p_mini is not None else f"not within {MINI_PASSES}",
        expected=f"<= {MINI_PASSES}",
    )

    with run.figure(
        "loss",
        alt="training loss against updates and against passes over the data, each arm at its best "
        "learning rate: per update the full batch falls faster; per pass the mini-batches fall much faster",
        figsize=(10, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        g_u, g_p = LRS.index(bu_mini), LRS.index(bp_mini if bp_mini is not None else bu_mini)
        ax1.plot(
            range(1, UPDATES + 1), full[bu_full]["curve"][:UPDATES], "o-", ms=3, label=f"full batch (lr {bu_full})"
        )
        ax1.plot(
            range(1, UPDATES + 1),
            [float(at_step[s][g_u]) for s in range(1, UPDATES + 1)],
            "o-",
            ms=3,
            label=f"B = {BATCH} (lr {LRS[g_u]})",
        )
        ax1.set_xlabel("updates")
        ax2.plot(range(1, EPOCHS + 1), full[best_full]["curve"], "o-", ms=3, label=f"full batch (lr {best_full})")
        ax2.plot(
            [s / steps_per_pass for s in pass_steps],
            [float(at_step[s][g_p]) for s in pass_steps],
            "o-",
            ms=3,
            label=f"B = {BATCH} (lr {LRS[g_p]})",
        )
        ax2.axhline(target, color="grey", ls="--", lw=0.8)
        ax2.set_xlabel("passes over the data (1347 example gradients each)")
        for ax in (ax1, ax2):
            ax.set_ylabel("training loss")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
