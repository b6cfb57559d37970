"""Transfer learning: features learned on one task help a related task that has very few labels.

Two source -> target pairs, each trained on 3 labels per class and averaged over random draws of
those labels (the same draws for both models; 5 for text, 24 for signals), tested on everything else:

1. Text (the check): the pretrained all-MiniLM-L6-v2 sentence encoder (our BERT, loading the shipped
   weights; trained by its authors on about a billion sentence pairs) is frozen, and a linear head on
   its 384-D embeddings learns which of five standard-library modules (asyncio, unittest, logging,
   tarfile, pathlib; 50 sentences each) a docstring's first sentence documents. The model trained from scratch
   is a linear classifier on
   bag-of-words counts, the usual from-scratch text model. the spec: transfer must win by >= 10 points.
2. Signals (measured and reported, with a weaker check): a CNN pretrained on MNIST-1D classes 0-4,
   frozen, with a new linear head for classes 5-9, against the same CNN trained from scratch. Measured
   mean gains over 5 draws, seeds 0-9, 11, 23: 5.2-13.1 points, so only "transfer beats scratch" is
   checked here, over 24 draws (all trained at once, side by side: `few_shot_models` in
   vision/_common.py). (On 8x8 digits, 0-4 -> 5-9, the gain was 0-5 points: a scratch CNN learns those
   from a few labels.)

Thresholds: docs/experiments.md#transfer-learning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.experiments.vision._common import (
    N_DRAWS,
    bag_of_words,
    docstring_task,
    few_shot_comparison,
    mnist1d_source_target,
    pretrained_source_cnn,
)
from dlterms.losses import cross_entropy
from dlterms.nn import Linear
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the transfer-learning experiment; the defaults are the recorded run."""

    n_per_class: int = 3  # labelled examples per class in both tasks
    draws: int = N_DRAWS  # random draws of the text task's labelled set (results averaged)
    signal_draws: int = 24  # random draws of the MNIST-1D labelled set (results averaged)
    probe_epochs: int = 100  # full-batch Adam steps of each text linear probe
    lr_pretrained: float = 1e-1  # probe step size on the MiniLM features
    lr_scratch: float = 1e-2  # probe step size on the bag-of-words counts

    def __post_init__(self) -> None:
        if not 1 <= self.n_per_class <= 40:
            raise ValueError(f"n_per_class must be in [1, 40], got {self.n_per_class!r}")
        for name in ("draws", "signal_draws", "probe_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.lr_pretrained > 0 or not self.lr_scratch > 0:
            raise ValueError(
                f"lr_pretrained and lr_scratch must be > 0, got {self.lr_pretrained!r}, {self.lr_scratch!r}"
            )


def _linear_probe(
    run: Run, x: torch.Tensor, y: torch.Tensor, train: np.ndarray, lr: float, seed: int, epochs: int
) -> float:
    """A linear classifier trained full-batch on x[train]; accuracy on the rest."""
    test = np.setdiff1d(np.arange(len(y)), train)
    torch.manual_seed(seed)
    head = Linear(x.shape[1], int(y.max()) + 1).to(run.device)
    fit(
        head,
        (x[train], y[train]),
        loss_fn=cross_entropy,
        optimizer=Adam(head.parameters(), lr=lr),
        epochs=epochs,
        batch_size=None,
        seed=seed,
    )
    return accuracy(head, x[test], y[test])


@experiment("transfer-learning", config=Config)
def transfer_learning(run: Run, cfg: Config) -> None:
    from dlterms.models.bert import encode

    N_PER_CLASS, N_DRAWS = cfg.n_per_class, cfg.draws

    # ---- 1. text: pretrained MiniLM features vs bag-of-words from scratch
    texts, y = docstring_task()
    emb = encode(texts).to(run.device)  # (N, 384) frozen pretrained features
    bow = bag_of_words(texts).to(run.device)  # (N, V) counts
    y = y.to(run.device)
    n_classes = int(y.max()) + 1
    text_acc = {"pretrained": [], "scratch": []}
    for draw in range(N_DRAWS):
        rng = np.random.default_rng(run.seed + draw)
        yn = y.cpu().numpy()
        train = np.concatenate([rng.choice(np.where(yn == k)[0], N_PER_CLASS, replace=False) for k in range(n_classes)])
        text_acc["pretrained"].append(
            _linear_probe(run, emb, y, train, cfg.lr_pretrained, run.seed + draw, cfg.probe_epochs)
        )
        text_acc["scratch"].append(_linear_probe(run, bow, y, train, cfg.lr_scratch, run.seed + draw, cfg.probe_epochs))
    run.progress(0.3, "text transfer measured")
    t_pre, t_scr = float(np.mean(text_acc["pretrained"])), float(np.mean(text_acc["scratch"]))
    t_wins = sum(a > b for a, b in zip(text_acc["pretrained"], text_acc["scratch"]))

    # ---- 2. signals: MNIST-1D 0-4 -> 5-9
    source, target = mnist1d_source_target(run)
    pre = pretrained_source_cnn(run, source)
    src_acc = accuracy(pre, source.x_test, source.y_test)
    acc = few_shot_comparison(run, pre, target, N_PER_CLASS, ("frozen", "scratch"), n_draws=cfg.signal_draws)
    s_pre, s_scr = float(np.mean(acc["frozen"])), float(np.mean(acc["scratch"]))

    run.metric("text_examples", len(texts))
    run.metric("text_labels_used", n_classes * N_PER_CLASS)
    run.metric("text_acc_pretrained_minilm_mean", t_pre)
    run.metric("text_acc_scratch_bow_mean", t_scr)
    run.metric("text_transfer_gain_points", 100 * (t_pre - t_scr), key=True)
    run.metric("text_acc_per_draw", text_acc)
    run.metric("mnist1d_source_test_acc", src_acc)
    run.metric("mnist1d_target_acc_transfer_mean", s_pre)
    run.metric("mnist1d_target_acc_scratch_mean", s_scr)
    run.metric("mnist1d_transfer_gain_points", 100 * (s_pre - s_scr))
    run.metric("mnist1d_acc_per_draw", acc)

    run.check_ge(
        f"text, {n_classes * N_PER_CLASS} labels: pretrained MiniLM features beat a from-scratch model by "
        f">= 10 points (mean of {N_DRAWS} draws)",
        100 * (t_pre - t_scr),
        10,
    )
    run.check(
        "text: transfer wins on every draw",
        t_wins == N_DRAWS,
        observed=f"{t_wins}/{N_DRAWS}",
        expected=f"{N_DRAWS}/{N_DRAWS}",
    )
    run.check_ge("MNIST-1D: the source task is learned (>= 95 %)", src_acc, 0.95)
    run.check_ge(
        f"MNIST-1D, {5 * N_PER_CLASS} labels: the pretrained CNN's frozen features beat the same CNN from scratch "
        f"(mean of {cfg.signal_draws} draws)",
        100 * (s_pre - s_scr),
        0,
        strict=True,
    )

    with run.figure(
        "transfer",
        alt="few-shot target accuracy with pretrained features and from scratch, "
        "for docstring classification (MiniLM vs bag of words) and MNIST-1D (CNN)",
    ) as fig:
        ax = fig.subplots()
        groups = [("text\n(MiniLM vs BoW)", t_pre, t_scr), ("MNIST-1D 5-9\n(CNN)", s_pre, s_scr)]
        xs = np.arange(len(groups))
        ax.bar(xs - 0.2, [g[1] for g in groups], width=0.4, label="transferred features + new head")
        ax.bar(xs + 0.2, [g[2] for g in groups], width=0.4, label="trained from scratch")
        ax.set(
            xticks=xs,
            xticklabels=[g[0] for g in groups],
            ylim=(0, 1),
            ylabel="target test accuracy",
            title=f"{N_PER_CLASS} labels per class, mean of {N_DRAWS} (text) and {cfg.signal_draws} (MNIST-1D) draws",
        )
        ax.legend(fontsize=8)
