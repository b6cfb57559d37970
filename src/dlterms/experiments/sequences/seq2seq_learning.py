"""Sequence-to-sequence learning: numbers written in English words to digits, where input and output
lengths differ and vary, scored per input-length bucket, including inputs longer than any seen.

"three hundred forty-two thousand one hundred seven" -> "342107": inputs of 3-63 characters, outputs
of 1-6 digits, and no fixed relation between the two lengths ("ten thousand" is 12 characters for 5
digits, "seventy-seven" 13 for 2). Training uses only inputs of at most 40 characters; the test set
holds unseen numbers of every length, so the two longest buckets (41-50 and 51-63 characters) are
longer than anything seen in training. Model: the encoder-decoder of seq2seq-model with additive
attention, trained on 6000 pairs for 6 epochs (at 4000 pairs, 5 epochs and "general" attention,
five-digit numbers scored 0.79 at seed 2; with 6000 pairs and 6 epochs they still scored 0.27 at
seed 4, whose alignment of long inputs came slowly).

Thresholds: exact match >= 0.90 in every input-length bucket seen in training and for every output
length among them with at least 50 test inputs (six-digit numbers rarely fit in 40 characters, so
they are mostly among the longer-than-seen inputs). On longer-than-seen inputs the model is expected to fail (an RNN
encoder-decoder learns the lengths it is shown): the longest bucket must fall >= 0.30 below the
seen-length accuracy, which we record as the limit it is.

Measured (worst seen bucket; five-digit numbers; longest bucket 51-63): seed 0: 0.981, 0.974, 0.060;
seed 1: 0.982, 0.979, 0.024; seed 2: 0.975, 0.989, 0.032; seed 3: 0.989, 1.000, 0.022; seed 4:
0.977, 1.000, 0.014; seed 11: 0.986, 1.000, 0.052; seed 23: 0.990, 0.973, 0.000.

Thresholds: docs/experiments.md#seq2seq-learning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.seqtasks import CharVocab, number_pairs, split_by_length
from dlterms.experiments.sequences import _seq2seq_common as common
from dlterms.models.seq2seq import Seq2Seq
from dlterms.run import Run, experiment
from dlterms.training import ProgressCallback


@dataclass(frozen=True)
class Config:
    """Parameters of the seq2seq-learning experiment; the defaults are the recorded run."""

    max_train_len: int = 40  # longest input (characters) seen in training
    n_train: int = 6000  # training pairs (4000 for 5 epochs left 5-digit numbers at 0.79 at seed 2)
    n_test_seen: int = 1000  # test pairs of lengths seen in training
    n_test_longer: int = 600  # test pairs longer than any seen
    hidden: int = 48  # encoder GRU units per direction
    epochs: int = 6  # training epochs (94 steps of 64 pairs each)
    lr: float = 3e-3  # Adam peak step size, annealed to 0 by a cosine over the epochs
    # (at a constant 3e-3 the fifth epoch had a loss spike that cost 0.14 exact match on 31-40 characters;
    # 6e-3 spiked at seed 1)
    attention: str = "additive"  # attention score: additive, general or dot
    # (with "general" seed 4 was still at 0.27 on 5 digits after 6 epochs: the alignment of long inputs
    # came slowly; additive attention reached 0.94 after 4)

    def __post_init__(self) -> None:
        if not 31 <= self.max_train_len <= 52:
            raise ValueError(
                f"max_train_len must be in [31, 52] (buckets 3-20, 21-30, 31-max below it, two above it to 63), "
                f"got {self.max_train_len!r}"
            )
        if min(self.n_train, self.n_test_seen, self.n_test_longer, self.hidden, self.epochs) < 1:
            raise ValueError(
                f"n_train, n_test_seen, n_test_longer, hidden and epochs must be >= 1, got {self.n_train!r}, "
                f"{self.n_test_seen!r}, {self.n_test_longer!r}, {self.hidden!r}, {self.epochs!r}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.attention not in ("additive", "general", "dot"):
            raise ValueError(f"attention must be 'additive', 'general' or 'dot', got {self.attention!r}")


@experiment("seq2seq-learning", config=Config)
def seq2seq_learning(run: Run, cfg: Config) -> None:
    pairs = number_pairs(12000, seed=run.seed)
    short, longer = split_by_length(pairs, cfg.max_train_len)
    train_pairs = short[: cfg.n_train]
    test_pairs = short[cfg.n_train : cfg.n_train + cfg.n_test_seen] + longer[: cfg.n_test_longer]
    sv, tv = CharVocab.from_texts(s for s, _ in pairs), CharVocab("0123456789")
    train, test = common.encode(train_pairs, sv, tv, run.device), common.encode(test_pairs, sv, tv, run.device)
    torch.manual_seed(run.seed)
    model = Seq2Seq(len(sv), len(tv), 32, cfg.hidden, attention=cfg.attention).to(run.device)
    common.train(
        model,
        train,
        epochs=cfg.epochs,
        seed=run.seed,
        lr=cfg.lr,
        cosine=True,
        callbacks=[ProgressCallback(run.progress, "seq2seq")],
    )
    tokens, _ = common.decode(model, test)
    ok = common.exact(tokens, test).cpu()
    in_len = np.array([len(s) for s, _ in test_pairs])
    out_len = np.array([len(t) for _, t in test_pairs])
    M = cfg.max_train_len
    buckets = [(3, 20), (21, 30), (31, M), (M + 1, M + 10), (M + 11, 63)]
    acc = [ok[torch.from_numpy((in_len >= lo) & (in_len <= hi))].float().mean().item() for lo, hi in buckets]
    sizes = [int(((in_len >= lo) & (in_len <= hi)).sum()) for lo, hi in buckets]
    seen = in_len <= M
    n_out = {k: int((seen & (out_len == k)).sum()) for k in range(1, 7)}
    by_out = {k: ok[torch.from_numpy(seen & (out_len == k))].float().mean().item() for k in range(1, 7) if n_out[k]}
    seen_acc = ok[torch.from_numpy(seen)].float().mean().item()
    labels = [f"{lo}-{hi}" for lo, hi in buckets]
    run.metric("input_length_buckets", labels)
    run.metric("bucket_sizes", sizes)
    run.metric("exact_match_by_input_length", acc)
    run.metric("exact_match_seen_lengths", seen_acc, key=True)
    run.metric("exact_match_by_output_digits_seen_lengths", {str(k): v for k, v in by_out.items()})
    run.metric("test_inputs_by_output_digits_seen_lengths", {str(k): v for k, v in n_out.items()})
    run.metric("input_output_length_correlation", float(np.corrcoef(in_len, out_len)[0, 1]))
    run.metric("max_train_input_length", max(len(s) for s, _ in train_pairs))
    run.check_ge("exact match >= 0.90 in every input-length bucket seen in training", min(acc[:3]), 0.90)
    counted = {k: v for k, v in by_out.items() if n_out[k] >= 50}  # fewer inputs: too noisy to judge
    worst = min(counted, key=counted.get)
    run.check(
        f"exact match >= 0.90 for every output length with >= 50 test inputs ({min(counted)}-{max(counted)} digits)",
        counted[worst] >= 0.90,
        observed=f"{worst} digits: {counted[worst]:.4f}",
        expected=">= 0.90",
    )
    run.check(
        "inputs longer than any seen: the longest bucket falls >= 0.30 below seen lengths",
        seen_acc - acc[-1] >= 0.30,
        observed=f"{acc[-1]:.4f} vs {seen_acc:.4f}",
        expected="drop >= 0.30",
    )

    with run.figure(
        "by_length",
        alt="left: input length against output length of the test pairs; right: "
        "exact match per input-length bucket, the last two longer than any training input",
        figsize=(9, 3.6),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        jitter = run.rng(2).uniform(-0.2, 0.2, len(out_len))
        ax1.scatter(in_len, out_len + jitter, s=4, alpha=0.4)
        ax1.axvline(M + 0.5, color="gray", ls="--")
        ax1.set_xlabel("input length (characters)")
        ax1.set_ylabel("output length (digits)")
        colors = ["C0"] * 3 + ["C3"] * 2
        ax2.bar(range(len(acc)), acc, color=colors)
        for i, a in enumerate(acc):
            ax2.text(i, a + 0.01, f"{a:.2f}", ha="center", fontsize=8)
        ax2.set_xticks(range(len(acc)), labels)
        ax2.set_xlabel("input length (red: longer than seen)")
        ax2.set_ylabel("exact match")
        ax2.set_ylim(0, 1.08)
