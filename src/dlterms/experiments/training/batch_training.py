"""Batch training: one exact update per epoch, fully reproducible, but few updates per second.

Model: an MLP (64-64-10) on scikit-learn's digits (N = 1347), SGD, 30 epochs through `fit`.
Full-batch training (`batch_size=None`) is run twice from the same seed. Checks (TERMS.md): it makes
exactly one update per epoch; the two runs end with bit-identical weights. For the comparison with
mini-batches (B = 32, lr 0.1) full-batch descent gets the best learning rate of {0.1, 0.3, 1, 3}
(so the comparison favours it); updates per second, loss per second of training, and the loss after
the same 30 passes over the data are reported, and the check is that mini-batches reach a lower
training loss for the same number of passes (the same number of example-gradient evaluations).
Per wall-clock second the picture can flip on a data set this small: one vectorised step over all
1347 examples costs far less than 43 small steps, so here the full batch lowers the loss faster per
second (reported). The per-pass comparison is the one that does not depend on the hardware; the
usual per-second advantage of mini-batches is a large-data effect this experiment does not measure.
"""

from __future__ import annotations

import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import SGD
from dlterms.run import Run, experiment
from dlterms.training import evaluate, fit

EPOCHS = 30


def _train(split, seed, device, lr, batch_size):
    torch.manual_seed(seed)
    model = MLP([64, 64, 10]).to(device)
    h = fit(
        model,
        (split.x_train, split.y_train),
        loss_fn=cross_entropy,
        optimizer=SGD(model.parameters(), lr=lr),
        epochs=EPOCHS,
        batch_size=batch_size,
        seed=seed,
    )
    return model, h


@experiment("batch-training")
def batch_training(run: Run) -> None:
    split = digits(seed=run.seed).to(run.device)
    x, y = split.x_train, split.y_train
    full = {lr: _train(split, run.seed, run.device, lr, None) for lr in (0.1, 0.3, 1.0, 3.0)}
    final = {lr: evaluate(m, x, y, cross_entropy)[0] for lr, (m, _) in full.items()}
    best_lr = min(final, key=final.get)
    model_a, h_full = full[best_lr]
    model_b, _ = _train(split, run.seed, run.device, best_lr, None)
    run.metric("full_batch_best_lr", best_lr)
    run.metric("full_batch_final_loss_per_lr", {str(k): round(v, 4) for k, v in final.items()})
    run.check(
        f"full batch: one update per epoch ({EPOCHS} epochs)",
        h_full.steps == EPOCHS == h_full.epochs_run,
        observed=h_full.steps,
        expected=str(EPOCHS),
    )
    same = all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    run.check(
        "two full-batch runs from the same seed give identical weights",
        same,
        observed="bit-identical" if same else "differ",
        expected="bit-identical",
    )

    model_m, h_mini = _train(split, run.seed, run.device, 0.1, 32)
    loss_full, loss_mini = final[best_lr], evaluate(model_m, x, y, cross_entropy)[0]
    t_full, t_mini = sum(h_full.epoch_seconds), sum(h_mini.epoch_seconds)
    run.metric("updates_per_second_full_batch", round(h_full.steps / t_full, 1))
    run.metric("updates_per_second_batch_32", round(h_mini.steps / t_mini, 1))
    run.metric("train_seconds_full_vs_32", [round(t_full, 3), round(t_mini, 3)])
    torch.manual_seed(run.seed)
    loss0 = evaluate(MLP([64, 64, 10]).to(run.device), x, y, cross_entropy)[0]  # both start here
    run.metric("initial_loss", round(loss0, 4))
    run.metric(
        "loss_drop_per_second_full_vs_32",
        [round((loss0 - loss_full) / t_full, 3), round((loss0 - loss_mini) / t_mini, 3)],
    )
    run.metric(f"train_loss_after_{EPOCHS}_epochs_full_vs_32", [round(loss_full, 4), round(loss_mini, 4)], key=True)
    run.check(
        f"mini-batches (B=32) reach a lower training loss in the same {EPOCHS} passes over the data",
        loss_mini < loss_full,
        observed=f"{loss_mini:.4f} vs full batch {loss_full:.4f} (lr {best_lr})",
        expected="mini < full",
    )

    with run.figure(
        "loss",
        alt="training loss against epochs and against seconds: full-batch descent makes one "
        "update per epoch and falls slowly; mini-batches fall much further in the same passes",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        for h, label in ((h_full, f"full batch (lr {best_lr})"), (h_mini, "B = 32 (lr 0.1)")):
            ax1.plot(range(1, EPOCHS + 1), h.train_loss, "o-", ms=3, label=label)
            ax2.plot(torch.tensor(h.epoch_seconds).cumsum(0).tolist(), h.train_loss, "o-", ms=3, label=label)
        ax1.set_xlabel("epoch (pass over the data)")
        ax2.set_xlabel("training seconds")
        for ax in (ax1, ax2):
            ax.set_ylabel("mean training loss in the epoch")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
