"""RNN: an Elman RNN solves a task where only order decides the answer; an order-blind model cannot.

Task (`last_nonzero_sign`): sequences of 20 values in {-1, 0, +1} (each non-zero with probability
0.2); the label is the sign of the last non-zero value. Any model that sees only how many +1s and
-1s there are (a bag of values) is capped at `best_order_blind_accuracy`, computed exactly on the
test set (about 0.75 here). The RNN must beat the cap by a wide margin (>= 0.95 accuracy), a trained
order-blind model (per-step MLP, mean over time) must stay at or under it, and shuffling the test
sequences' time steps must destroy what the RNN learned. The trained RNN is also loaded into
torch.nn.RNN and must give the same outputs (1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.seqtasks import best_order_blind_accuracy, last_nonzero_sign
from dlterms.losses import cross_entropy
from dlterms.models.sequence_classifier import OrderBlindClassifier, RecurrentClassifier
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import ProgressCallback, accuracy, fit, predict


@dataclass(frozen=True)
class Config:
    """Parameters of the rnn experiment; the defaults are the recorded run."""

    length: int = 20  # time steps per sequence
    p_nonzero: float = 0.2  # chance that a step holds +1 or -1 (the last non-zero one sits ~1/p steps back)
    n_train: int = 3000  # training sequences
    n_test: int = 1000  # test sequences
    hidden: int = 16  # RNN state size
    epochs: int = 4  # training epochs of each model (47 steps of 64 sequences each)
    lr: float = 1e-2  # Adam step size of each model

    def __post_init__(self) -> None:
        if self.length < 2:
            raise ValueError(f"length must be >= 2, got {self.length!r}")
        if not 0.0 < self.p_nonzero <= 1.0:
            raise ValueError(f"p_nonzero must be in (0, 1], got {self.p_nonzero!r}")
        if self.n_train < 1 or self.n_test < 1 or self.hidden < 1 or self.epochs < 1:
            raise ValueError(
                f"n_train, n_test, hidden and epochs must be >= 1, got "
                f"{self.n_train!r}, {self.n_test!r}, {self.hidden!r}, {self.epochs!r}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


@experiment(
    "rnn",
    config=Config,
    sweeps=(
        Sweep(
            "p_nonzero",
            (0.05, 0.1, 0.2, 0.4),
            "How does the RNN's accuracy move as the value that decides the label sits further back "
            "(fewer non-zero steps), on short and long sequences?",
            metric="test_acc_rnn",
            by="length",
            by_values=(20, 50),
        ),
    ),
)
def rnn(run: Run, cfg: Config) -> None:
    x, y = last_nonzero_sign(cfg.n_train, cfg.length, cfg.p_nonzero, seed=run.seed)
    xt, yt = last_nonzero_sign(cfg.n_test, cfg.length, cfg.p_nonzero, seed=run.seed + 1)
    bound = best_order_blind_accuracy(xt, yt)
    run.metric("best_order_blind_accuracy", bound)

    torch.manual_seed(run.seed)
    model = RecurrentClassifier("rnn", 1, cfg.hidden, 2).to(run.device)
    h_rnn = fit(
        model,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=64,
        seed=run.seed,
        callbacks=[ProgressCallback(run.progress, "RNN")],
    )
    blind = OrderBlindClassifier(1, 32, 2).to(run.device)
    h_blind = fit(
        blind,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=Adam(blind.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=64,
        seed=run.seed,
    )

    acc = accuracy(model, xt, yt)
    acc_blind = accuracy(blind, xt, yt)
    perm = torch.randperm(cfg.length, generator=run.generator(1))
    shuffled = xt[:, perm]
    acc_shuf = accuracy(model, shuffled, yt)
    blind_change = (predict(blind, xt) - predict(blind, shuffled)).abs().max().item()
    run.metric("test_acc_rnn", acc, key=True)
    run.metric("test_acc_order_blind", acc_blind)
    run.metric("test_acc_rnn_time_shuffled", acc_shuf)

    # our RNN's weights in torch's RNN give the same outputs
    ref = torch.nn.RNN(1, cfg.hidden, batch_first=True).to(run.device)
    ref.load_state_dict(model.rnn.state_dict())
    with torch.no_grad():
        diff = (model.rnn(xt.to(run.device))[0] - ref(xt.to(run.device))[0]).abs().max().item()
    run.metric("max_diff_vs_torch_rnn", diff)

    run.check_ge("the RNN solves the order task", acc, 0.95)
    run.check_ge("the RNN beats the best possible order-blind accuracy by >= 0.15", acc - bound, 0.15)
    run.check(
        "the trained order-blind model stays at or below that bound",
        acc_blind <= bound + 1e-9,
        observed=acc_blind,
        expected=f"<= {bound:.4f}",
    )
    run.check_le(
        "the order-blind model's outputs do not change when time steps are shuffled", blind_change, 1e-5, strict=True
    )
    run.check_ge("shuffling time steps costs the RNN >= 0.15 accuracy", acc - acc_shuf, 0.15)
    run.check_le("our RNN equals torch.nn.RNN with the same weights", diff, 1e-5, strict=True)

    with run.figure(
        "accuracy",
        alt="test accuracy of the RNN, the RNN on time-shuffled inputs, an order-blind "
        "model, and the best any order-blind model can do; and training loss per epoch",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        names = ["RNN", "RNN,\nshuffled steps", "order-blind\nmodel", "order-blind\nbound"]
        vals = [acc, acc_shuf, acc_blind, bound]
        ax1.bar(names, vals, color=["C0", "C0", "C1", "C7"])
        for i, v in enumerate(vals):
            ax1.text(i, v + 0.01, f"{v:.3f}", ha="center")
        ax1.set_ylim(0, 1.08)
        ax1.set_ylabel("test accuracy")
        ax1.set_title("sign of the last non-zero value")
        ax2.plot(range(1, len(h_rnn.train_loss) + 1), h_rnn.train_loss, "o-", label="RNN")
        ax2.plot(range(1, len(h_blind.train_loss) + 1), h_blind.train_loss, "o-", label="order-blind")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("training loss")
        ax2.legend()
