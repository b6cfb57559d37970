"""Attention mechanism: at the same training budget, an encoder-decoder with attention keeps its
accuracy as inputs grow longer; without attention it falls far behind, at every length.

Task: written dates (10-67 characters, twelve formats) to ISO dates, as in seq2seq-model. Two
models identical but for attention (Luong "general" scores over the bidirectional encoder's states)
train for the same 315 steps (cosine-annealed learning rate); test exact match is measured per
input-length bucket. The model without attention must squeeze the whole input into the decoder's
initial state. Then the model without attention trains on to 2x the budget, to see how far more
training closes the gap (TERMS.md measured ~1.00 at 3x on its set-up; 3x does not fit our time
budget here, and a probe at 3x of an earlier 189-step budget reached only 0.19: we report what we
measure). The heat-map shows where the decoder looks for each output character of one long input.

Thresholds: with attention, exact match >= 0.85 in every length bucket and the longest bucket within
0.10 of the shortest; without attention at the same budget, a gap to the attention model of >= 0.30
on the longest bucket; at 2x the budget it is still below the attention model. What we did not find:
the model without attention degrading *with length*: at this budget it fails at every length (exact
match near 0), and with more training its accuracy by length was not reliably lower on long inputs
(3x of a 189-step budget, seed 0: 0.19 on the shortest, 0.10 on the longest; seed 1: no drop). On
this set-up more training is far from the ~1.00 TERMS.md measured; the metrics record the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.experiments.sequences import _seq2seq_common as common
from dlterms.methods.decoding import greedy_search
from dlterms.models.seq2seq import Seq2Seq
from dlterms.run import Run, experiment
from dlterms.training import ProgressCallback

BUCKETS = [(10, 12), (13, 20), (21, 30), (31, 45), (46, 70)]  # input length in characters, inclusive


@dataclass
class Config:
    n_train: int = 4000
    n_test: int = 1000
    embedding_dim: int = 32
    hidden: int = 48
    epochs: int = 5  # the shared budget (seq2seq-model's): 63 steps of 64 pairs per epoch
    longer: int = 2  # the model without attention also trains to this multiple of the budget
    lr: float = 3e-3  # annealed by a cosine over each training run


def _by_bucket(values: torch.Tensor, lengths: np.ndarray) -> list[float]:
    return [values[(lengths >= lo) & (lengths <= hi)].float().mean().item() for lo, hi in BUCKETS]


@experiment("attention-mechanism")
def attention_mechanism(run: Run) -> None:
    cfg = Config()
    train, test, sv, tv = common.date_task(run.seed, cfg.n_train, cfg.n_test, run.device)
    lengths = np.array([len(s) for s, _ in test.pairs])
    total = cfg.epochs * (1 + cfg.longer)
    done = [0]

    def progress(label):
        return ProgressCallback(lambda f, m: run.progress(min(1.0, (done[0] + f * cfg.epochs) / total), m), label)

    results = {}
    models = {}
    for name, att in [("with attention", "general"), ("without attention", None)]:
        torch.manual_seed(run.seed)
        model = Seq2Seq(len(sv), len(tv), cfg.embedding_dim, cfg.hidden, attention=att).to(run.device)
        common.train(model, train, epochs=cfg.epochs, seed=run.seed, lr=cfg.lr, cosine=True, callbacks=[progress(name)])
        done[0] += cfg.epochs
        tokens, _ = common.decode(model, test)
        results[name] = (common.exact(tokens, test).cpu(), (tokens == test.tgt).float().mean(1).cpu())
        models[name] = model
    # the model without attention trains on for twice the budget again (a second cosine cycle, with a
    # different shuffling seed so it sees new batch orders)
    model = models["without attention"]
    common.train(
        model,
        train,
        epochs=cfg.epochs * (cfg.longer - 1),
        seed=run.seed + 1,
        lr=cfg.lr,
        cosine=True,
        callbacks=[
            ProgressCallback(
                lambda f, m: run.progress((2 * cfg.epochs + f * 2 * cfg.epochs) / total, m), "without attention, longer"
            )
        ],
    )
    tokens, _ = common.decode(model, test)
    results[f"without attention, {cfg.longer}x budget"] = (
        common.exact(tokens, test).cpu(),
        (tokens == test.tgt).float().mean(1).cpu(),
    )

    curves = {name: _by_bucket(ok, lengths) for name, (ok, _) in results.items()}
    chars = {name: _by_bucket(ch, lengths) for name, (_, ch) in results.items()}
    for name, (ok, _) in results.items():
        key = name.replace(" ", "_").replace(",", "")
        run.metric(f"exact_match_{key}", ok.float().mean().item(), key=name == "with attention")
        run.metric(f"exact_match_by_length_{key}", [round(v, 4) for v in curves[name]])
        run.metric(f"char_accuracy_by_length_{key}", [round(v, 4) for v in chars[name]])
    run.metric("length_buckets", [f"{lo}-{hi}" for lo, hi in BUCKETS])
    run.metric("bucket_sizes", [int(((lengths >= lo) & (lengths <= hi)).sum()) for lo, hi in BUCKETS])

    att, plain = curves["with attention"], curves["without attention"]
    longer = curves[f"without attention, {cfg.longer}x budget"]
    run.check(
        "with attention: exact match >= 0.85 in every input-length bucket",
        min(att) >= 0.85,
        observed=round(min(att), 4),
        expected=">= 0.85",
    )
    run.check(
        "with attention: longest inputs within 0.10 of the shortest",
        att[0] - att[-1] <= 0.10,
        observed=round(att[0] - att[-1], 4),
        expected="<= 0.10",
    )
    run.check(
        "same budget without attention: gap on the longest inputs >= 0.30",
        att[-1] - plain[-1] >= 0.30,
        observed=round(att[-1] - plain[-1], 4),
        expected=">= 0.30",
    )
    run.check(
        f"without attention, even {cfg.longer}x the budget leaves it below the attention model",
        sum(longer) < sum(att),
        observed=round(results[f"without attention, {cfg.longer}x budget"][0].float().mean().item(), 4),
        expected=f"< {results['with attention'][0].float().mean().item():.4f}",
    )

    # alignment of one long test input
    i = int(np.argmax(lengths))
    m = models["with attention"].eval()
    toks, _, attn = greedy_search(m, test.src[i : i + 1], test.src_len[i : i + 1], max_len=11, return_attention=True)
    src_text = test.pairs[i][0]
    out_text = tv.decode(toks[0])
    A = attn[0, : len(out_text) + 1, : len(src_text)].cpu().numpy()

    with run.figure(
        "by_length",
        alt="test exact match per input-length bucket for the model with attention, "
        "without attention at the same budget, and without attention at 3x the budget",
    ) as fig:
        ax = fig.subplots()
        xs = np.arange(len(BUCKETS))
        for name, vals in curves.items():
            ax.plot(xs, vals, "o-", label=name)
        ax.set_xticks(xs, [f"{lo}-{hi}" for lo, hi in BUCKETS])
        ax.set_xlabel("input length (characters)")
        ax.set_ylabel("exact match")
        ax.set_ylim(-0.02, 1.05)
        ax.legend()
    with run.figure(
        "alignment",
        alt=f"attention weights of each output character of {out_text!r} over the input characters of {src_text!r}",
        figsize=(10, 3.2),
    ) as fig:
        ax = fig.subplots()
        ax.imshow(A, aspect="auto", cmap="Greys")
        ax.set_xticks(range(len(src_text)), list(src_text), fontsize=7)
        ax.set_yticks(range(A.shape[0]), list(out_text) + ["<eos>"], fontsize=7)
        ax.set_xlabel("input character")
        ax.set_ylabel("output character")
