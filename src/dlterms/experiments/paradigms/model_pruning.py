"""Model pruning: magnitude pruning with fine-tuning to >= 80 % sparsity, and structured pruning's speed-up.

An MLP (64-256-256-10) is trained on scikit-learn's digits (train / validation / test). Unstructured:
the weights of smallest magnitude (one global threshold over all layers) are zeroed in rounds of
rising sparsity (50, 70, 80, 90, 95 %), each followed by 5 epochs of fine-tuning with the mask held
fixed; the accuracy right after each cut (before fine-tuning) is recorded too. Structured: 75 % of the
units of both hidden layers (lowest L2 norm of incoming weights) are removed, leaving a dense
64-64-64-10 network, which is fine-tuned for 10 epochs; its inference time on a batch of 4096 inputs
is compared with the original's: the dense, the structured and the masked model run one after another
in each of 30 rounds (CPU time of this process), and the speed-up is the median over rounds of the
dense / structured ratio within a round (dlterms.timing), so that load on the machine cannot flip it.
The multiply-adds of each network are counted too.

Claims (TERMS): at >= 80 % sparsity the fine-tuned model is within 1 accuracy point of the dense one
on the test set; structured pruning gives a measured speed-up. The masked (unstructured) model is not
faster here: its zeros still go through a dense matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.methods.pruning import MaskCallback, apply_masks, magnitude_masks, prune_neurons, sparsity
from dlterms.nn import MLP, ReLU
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.timing import interleaved_seconds, median_ratio
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the model-pruning experiment; the defaults are the recorded run."""

    sizes: tuple[int, ...] = (64, 256, 256, 10)  # MLP layer sizes
    epochs: int = 30  # dense training epochs
    lr: float = 1e-3  # Adam step size (training and fine-tuning)
    schedule: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95)  # sparsity after each round
    finetune_epochs: int = 5  # epochs after each pruning round
    structured_amount: float = 0.75  # fraction of hidden units removed
    structured_epochs: int = 10  # fine-tuning epochs of the smaller dense network
    timing_batch: int = 4096  # inputs per timed forward pass
    rounds: int = 30  # interleaved timing rounds (median of the per-round ratios)

    def __post_init__(self) -> None:
        if len(self.sizes) < 3 or self.sizes[0] != 64 or self.sizes[-1] != 10:
            raise ValueError(f"sizes must start at 64, end at 10 and have a hidden layer, got {self.sizes!r}")
        if (
            not self.schedule
            or not all(0 < a < 1 for a in self.schedule)
            or list(self.schedule) != sorted(self.schedule)
        ):
            raise ValueError(f"schedule must be rising sparsities in (0, 1), got {self.schedule!r}")
        if max(self.schedule) < 0.8:
            raise ValueError(f"schedule must reach a sparsity >= 0.8 (the claim), got {self.schedule!r}")
        if not 0 < self.structured_amount < 1:
            raise ValueError(f"structured_amount must be in (0, 1), got {self.structured_amount!r}")
        for name in ("epochs", "finetune_epochs", "structured_epochs", "timing_batch", "rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


@experiment(
    "model-pruning",
    config=Config,
    sweeps=(
        Sweep(
            "finetune_epochs",
            (1, 2, 5, 10),
            "How much fine-tuning after each cut does it take to keep the accuracy at 95 % sparsity?",
            metric="acc_at_95pct_finetuned",
        ),
    ),
)
def model_pruning(run: Run, cfg: Config) -> None:
    data = digits(test_size=0.3, seed=run.seed).to(run.device)
    xt, yt = data.x_test, data.y_test
    torch.manual_seed(run.seed)
    model = MLP(list(cfg.sizes)).to(run.device)
    train = (data.x_train, data.y_train)
    fit(
        model,
        train,
        loss_fn=cross_entropy,
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=64,
        seed=run.seed,
    )
    acc_dense = accuracy(model, xt, yt)
    dense_state = {k: v.clone() for k, v in model.state_dict().items()}

    rows = []  # (sparsity, acc right after the cut, acc after fine-tuning)
    opt = Adam(model.parameters(), lr=cfg.lr)
    for r, amount in enumerate(cfg.schedule):
        masks = magnitude_masks(model, amount, scope="global")
        apply_masks(model, masks)
        cut = accuracy(model, xt, yt)
        fit(
            model,
            train,
            loss_fn=cross_entropy,
            optimizer=opt,
            epochs=cfg.finetune_epochs,
            batch_size=64,
            seed=run.seed + 1 + r,
            callbacks=[MaskCallback(masks)],
        )
        rows.append((sparsity(model), cut, accuracy(model, xt, yt)))
    run.progress(0.6, "magnitude pruning done")

    # one-shot cuts of the dense model without fine-tuning, for the figure
    oneshot = []
    for amount in cfg.schedule:
        m = MLP(list(cfg.sizes)).to(run.device)
        m.load_state_dict(dense_state)
        apply_masks(m, magnitude_masks(m, amount))
        oneshot.append(accuracy(m, xt, yt))

    dense = MLP(list(cfg.sizes)).to(run.device)
    dense.load_state_dict(dense_state)
    small_layers = prune_neurons(dense.linear_layers, cfg.structured_amount)
    parts = []
    for i, lin in enumerate(small_layers):
        parts += [lin] + ([ReLU()] if i < len(small_layers) - 1 else [])
    small = torch.nn.Sequential(*parts).to(run.device)
    acc_small_cut = accuracy(small, xt, yt)
    fit(
        small,
        train,
        loss_fn=cross_entropy,
        optimizer=Adam(small.parameters(), lr=cfg.lr),
        epochs=cfg.structured_epochs,
        batch_size=64,
        seed=run.seed + 100,
    )
    acc_small = accuracy(small, xt, yt)
    xb = torch.rand(cfg.timing_batch, cfg.sizes[0], generator=run.generator(5)).to(run.device)
    with torch.no_grad():
        times = interleaved_seconds([lambda m=m: m(xb) for m in (dense, small, model)], rounds=cfg.rounds)
    t_dense, t_small, t_masked = (float(v) for v in np.median(times, axis=0))
    speedup = median_ratio(times, 0, 1)
    macs_dense = sum(lin.weight.numel() for lin in dense.linear_layers)
    macs_small = sum(lin.weight.numel() for lin in small_layers)

    at80 = [(s, a) for s, _, a in rows if s >= 0.8]
    best80 = max(at80, key=lambda t: (t[1], t[0]))
    for s, cut, ft in rows:
        run.metric(f"acc_at_{round(100 * s)}pct_after_cut", cut)
        run.metric(f"acc_at_{round(100 * s)}pct_finetuned", ft)
    run.metric("dense_acc", acc_dense)
    run.metric("acc_at_80pct_or_more_finetuned", best80[1], key=True)
    run.metric("oneshot_acc_no_finetune", {f"{a:.2f}": v for a, v in zip(cfg.schedule, oneshot)})
    run.metric("structured_hidden_units", [lin.weight.shape[0] for lin in small_layers[:-1]])
    run.metric("structured_acc_before_finetune", acc_small_cut)
    run.metric("structured_acc_finetuned", acc_small)
    run.metric("inference_ms_dense", 1e3 * t_dense)
    run.metric("inference_ms_structured", 1e3 * t_small)
    run.metric("inference_ms_masked_unstructured", 1e3 * t_masked)
    run.metric("structured_speedup", speedup)
    run.metric("multiply_adds_per_input_dense", macs_dense)
    run.metric("multiply_adds_per_input_structured", macs_small)
    run.check(
        ">= 80 % of the weights pruned with at most 1 point of accuracy lost (fine-tuned)",
        acc_dense - best80[1] <= 0.01,
        observed=f"sparsity {best80[0]:.3f}, loss {acc_dense - best80[1]:.4f}",
        expected="loss <= 0.01 at sparsity >= 0.80",
    )
    run.check(
        "the masks hold: measured sparsity matches each round's target",
        all(abs(s - a) < 0.005 for (s, _, _), a in zip(rows, cfg.schedule)),
        observed=[s for s, _, _ in rows],
        expected=str(list(cfg.schedule)),
    )
    run.check(
        "structured pruning (75 % of hidden units removed) runs faster (median of per-round time ratios)",
        speedup > 1.5,
        observed=f"{speedup:.3f}x ({macs_dense / macs_small:.1f}x fewer multiply-adds)",
        expected="> 1.5x",
    )
    run.check_le(
        "structured pruning with fine-tuning stays within 2 points of the dense model", acc_dense - acc_small, 0.02
    )

    with run.figure(
        "accuracy-vs-sparsity",
        alt="test accuracy against the fraction of weights pruned, right after "
        "each cut, after fine-tuning, and for one-shot pruning without fine-tuning",
    ) as fig:
        ax = fig.subplots()
        sp = [s for s, _, _ in rows]
        ax.plot(sp, [ft for _, _, ft in rows], "o-", label="iterative, fine-tuned")
        ax.plot(sp, [c for _, c, _ in rows], "x--", label="right after each cut")
        ax.plot(list(cfg.schedule), oneshot, "s:", label="one-shot, no fine-tuning")
        ax.axhline(acc_dense, c="gray", ls="--", label="dense")
        ax.axhline(acc_dense - 0.01, c="gray", ls=":", lw=0.8)
        ax.set_xlabel("sparsity (fraction of weights zero)")
        ax.set_ylabel("test accuracy")
        ax.legend()
