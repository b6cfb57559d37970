"""Beam search: on a tiny model a wide enough beam finds exactly what exhaustive search finds; on a
trained translator a beam of 5 finds outputs at least as likely as greedy search's and recovers most of
greedy's search errors, yet its net effect on exact match is small and of either sign.

Part 1, tiny model: an encoder-decoder (8 units) half-trained to reverse strings of 1-4 symbols from
{a, b, c}; outputs up to 5 tokens over 3 symbols plus <eos>: 4^5 sequences per input, few enough to
score them all. On 100 held-out inputs we compare greedy search and beams of growing width with
exhaustive search, without (alpha = 0) and with (alpha = 0.6) length normalisation. Threshold: a
beam as wide as the search space agrees with exhaustive search on every input.

Parts 2 and 3: two of our sequence-to-sequence tasks, each trained for 3 epochs (4000 pairs, GRU
encoder-decoder with attention) and searched with greedy and beam k=5 after every epoch:
numbers in words to digits ("forty-two thousand seven" -> "42007", 1-6 digits) and written dates to
ISO dates (always 10 characters). A greedy error is a *search error* when the true output is more
likely under the model than greedy's output. Beam search can only fix those (a more likely wrong output
is no better), and it can also break a correct greedy output by finding a wrong one the model prefers
(a model error that greedy's choice happened to hide). Exact match therefore moves by the search errors
the beam fixes minus the hidden model errors it exposes. Thresholds: beam k=5 scores a log-probability
>= greedy's on >= 95 % of test inputs (the spec), and, pooled over both tasks and the three
checkpoints, it recovers at least half of greedy's search errors.

the spec also asks that beam search "raises exact match" on the seq2seq task. That does not hold
reliably, so it is reported, not checked. Checked earlier as "beam ahead after every epoch" on numbers,
it failed on a tie (8 fixed, 8 broken); checked as a pooled one-sided exact McNemar test (fixed >
broken, p < 0.05) on numbers, it held at seeds 0-2 and failed at seed 3: 32 fixed, 24 broken, p = 0.17,
exact match beam vs greedy 0.427 vs 0.418, 0.437 vs 0.435 and 0.859 vs 0.862, with only 22, 10 and 9
search errors to fix against 560 model errors after epoch 1 and 129 after epoch 3. On dates the
net change after epochs 1-3 was 0.000, +0.006, -0.001 at seed 3, with no search errors at all left
after epoch 3. The net change, its fixed/broken counts and McNemar p per task are in the
metrics.

Measured (search errors recovered, pooled; numbers fixed/broken; net exact-match change per epoch on
numbers and dates): seed 0: 87 of 115 (76 %); 56/21; +0.015, +0.011, +0.009 and +0.022, -0.009,
+0.002. Seed 1: 103 of 142 (73 %); 73/48; +0.011, +0.013, +0.001 and 0.000, +0.008, +0.006.
Seed 2: 124 of 168 (74 %); 83/37; +0.031, +0.018, -0.003 and +0.026, +0.009, 0.000. Seed 3: 74 of 94
(79 %); 32/24 (p = 0.17); +0.009, +0.002, -0.003 and 0.000, +0.006, -0.001. Seed 4: 60 of 71
(85 %); 42/18; +0.013, +0.011, 0.000 and +0.003, +0.004, 0.000. Seeds 11 and 23: 79 of 97 (81 %)
and 90 of 116 (78 %).

Thresholds: docs/experiments.md#beam-search.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.seqtasks import PAD, CharVocab
from dlterms.experiments.sequences import _seq2seq_common as common
from dlterms.methods.decoding import beam_search, exhaustive_search, greedy_search, sequence_log_prob
from dlterms.metrics import mcnemar_exact_pvalue
from dlterms.models.seq2seq import Seq2Seq
from dlterms.run import Run, experiment
from dlterms.training import Every, ProgressCallback


@dataclass(frozen=True)
class Config:
    """Parameters of the beam-search experiment; the defaults are the recorded run."""

    tiny_inputs: int = 100  # held-out inputs of the tiny model searched exhaustively
    tiny_epochs: int = 2  # tiny model's training epochs (32 steps: half-trained, unsure enough that search matters)
    tiny_max_len: int = 5  # longest output of the tiny model (4^len sequences are scored)
    tiny_alpha: float = 0.6  # length-normalisation exponent of the second comparison (the first uses 0)
    n_train: int = 4000  # training pairs of each translation task
    n_test: int = 1000  # test pairs of each translation task
    hidden: int = 48  # encoder GRU units per direction of the translators
    epochs: int = 3  # translators' training epochs, searched after each: from an unsure model to a good one
    beam: int = 5  # beam width compared with greedy search on the translators

    def __post_init__(self) -> None:
        if not 1 <= self.tiny_inputs <= 100:
            raise ValueError(f"tiny_inputs must be in [1, 100], got {self.tiny_inputs!r}")
        if not 1 <= self.tiny_max_len <= 6:
            raise ValueError(f"tiny_max_len must be in [1, 6] (4^len sequences are scored), got {self.tiny_max_len!r}")
        if self.tiny_alpha < 0:
            raise ValueError(f"tiny_alpha must be >= 0, got {self.tiny_alpha!r}")
        if min(self.tiny_epochs, self.n_train, self.n_test, self.hidden, self.epochs) < 1:
            raise ValueError(
                f"tiny_epochs, n_train, n_test, hidden and epochs must be >= 1, got {self.tiny_epochs!r}, "
                f"{self.n_train!r}, {self.n_test!r}, {self.hidden!r}, {self.epochs!r}"
            )
        if self.beam < 2:
            raise ValueError(f"beam must be >= 2 (1 is greedy search), got {self.beam!r}")


def _same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    T = max(a.shape[1], b.shape[1])
    a = torch.nn.functional.pad(a, (0, T - a.shape[1]), value=PAD)
    b = torch.nn.functional.pad(b, (0, T - b.shape[1]), value=PAD)
    return (a == b).all(1)


def _search(model: Seq2Seq, test, beam: int, epoch: int) -> dict:
    """Greedy and beam search on `test`: exact match, and how greedy's errors split."""
    g_tok, g_lp = common.decode(model, test, beam_size=1)
    b_tok, b_lp = common.decode(model, test, beam_size=beam)
    model.eval()
    true_lp = sequence_log_prob(model, test.src, test.src_len, test.tgt)
    model.train()
    g_ok, b_ok = common.exact(g_tok, test), common.exact(b_tok, test)
    search_error = ~g_ok & (true_lp > g_lp + 1e-5)  # the model prefers the true output; greedy missed it
    fixed = b_ok & ~g_ok
    return dict(
        epoch=epoch,
        em_greedy=g_ok.float().mean().item(),
        em_beam=b_ok.float().mean().item(),
        not_lower=(b_lp >= g_lp - 1e-5).float().mean().item(),
        fixed=int(fixed.sum()),
        fixed_search_errors=int((fixed & search_error).sum()),
        broken=int((g_ok & ~b_ok).sum()),
        search_errors=int(search_error.sum()),
        model_errors=int((~g_ok & ~search_error).sum()),
    )


@experiment("beam-search", config=Config)
def beam_search_experiment(run: Run, cfg: Config) -> None:
    # ---- part 1: tiny model, every output sequence scored
    rng = run.rng(1)
    words = ["".join(rng.choice(list("abc"), size=int(rng.integers(1, 5)))) for _ in range(600)]
    pairs = [(w, w[::-1]) for w in words]  # reverse a string of 1-4 symbols
    abc = CharVocab("abc")
    tiny_train = common.encode(pairs[:500], abc, abc, run.device)
    tiny_test = common.encode(pairs[500 : 500 + cfg.tiny_inputs], abc, abc, run.device)
    torch.manual_seed(run.seed)
    tiny = Seq2Seq(len(abc), len(abc), embedding_dim=8, hidden_size=8, attention="dot").to(run.device)
    common.train(tiny, tiny_train, epochs=cfg.tiny_epochs, seed=run.seed, lr=1e-2, batch_size=32)
    tiny.eval()
    src, src_len = tiny_test.src, tiny_test.src_len
    L = cfg.tiny_max_len
    full = 4**L  # a beam this wide keeps every sequence
    agree, greedy_agree = {}, None
    for a in (0.0, cfg.tiny_alpha):
        ex_tok, _ = exhaustive_search(tiny, src, src_len, L, alpha=a)
        agree[a] = {}
        for k in (1, 2, 4, 16, 64, full):
            tok, _ = beam_search(tiny, src, src_len, beam_size=k, max_len=L, alpha=a)
            agree[a][k] = _same(tok, ex_tok).float().mean().item()
        if a == 0.0:
            g_tok, _ = greedy_search(tiny, src, src_len, L)
            greedy_agree = _same(g_tok, ex_tok).float().mean().item()
        run.metric(f"tiny_alpha{a}_agreement_with_exhaustive_by_beam", {str(k): v for k, v in agree[a].items()})
        run.check(
            f"tiny model, alpha={a}: a beam of {full} (the whole space) equals exhaustive search on every input",
            agree[a][full] == 1.0,
            observed=agree[a][full],
            expected="1.0",
        )
    run.metric("tiny_greedy_agreement_with_exhaustive", greedy_agree)
    run.check_le(
        "tiny model: greedy search misses the most likely sequence on some inputs", greedy_agree, 1.0, strict=True
    )
    run.progress(0.1, "tiny model searched")

    # ---- parts 2 and 3: numbers and dates, searched after every epoch of training
    evals = {}
    for t, (task, make) in enumerate((("numbers", common.number_task), ("dates", common.date_task))):
        train, test, sv, tv = make(run.seed, cfg.n_train, cfg.n_test, run.device)
        torch.manual_seed(run.seed)
        model = Seq2Seq(len(sv), len(tv), 32, cfg.hidden, attention="general").to(run.device)
        # after every epoch: greedy and beam search on the test set
        searches = Every(1, lambda st, test=test: _search(st.model, test, cfg.beam, st.epoch + 1), on="epoch")
        common.train(
            model,
            train,
            epochs=cfg.epochs,
            seed=run.seed,
            callbacks=[searches, ProgressCallback(lambda f, m, t=t: run.progress(0.1 + 0.45 * (t + f), m), task)],
        )
        evals[task] = searches.values
        for e in searches.values:
            for k, v in e.items():
                if k != "epoch":
                    run.metric(
                        f"{task}_epoch{e['epoch']}_{k}",
                        v,
                        key=(task == "numbers" and k == "em_beam" and e["epoch"] == 1),
                    )
        run.check_ge(
            f"{task}: beam k={cfg.beam} log-probability >= greedy's on >= 95 % of inputs, after every epoch",
            min(e["not_lower"] for e in searches.values),
            0.95,
        )
    # beam search can only fix greedy's search errors; how many of them does a beam of 5 recover?
    searched = [e for task in evals for e in evals[task]]
    n_search = sum(e["search_errors"] for e in searched)
    n_recovered = sum(e["fixed_search_errors"] for e in searched)
    run.metric("search_errors_pooled", n_search)
    run.metric("search_errors_recovered_by_beam_pooled", n_recovered)
    run.check(
        f"beam k={cfg.beam} recovers most of greedy's search errors (the true output more likely than "
        f"greedy's): pooled over both tasks and the {cfg.epochs} checkpoints, >= 50 % of them",
        n_search > 0 and n_recovered >= 0.5 * n_search,
        observed=f"{n_recovered} of {n_search}",
        expected=">= 50 %",
    )
    # the net change in exact match: fixed search errors minus correct outputs that a more likely wrong
    # output replaced; reported, not checked (its sign differs between seeds and checkpoints)
    for task, ev in evals.items():
        fixed, broken = sum(e["fixed"] for e in ev), sum(e["broken"] for e in ev)
        run.metric(f"{task}_fixed_broken_pooled", [fixed, broken])
        run.metric(f"{task}_mcnemar_p", mcnemar_exact_pvalue(fixed, broken))
        run.metric(f"{task}_beam_minus_greedy_exact_match_by_epoch", [e["em_beam"] - e["em_greedy"] for e in ev])

    with run.figure(
        "beam",
        alt="left: fraction of tiny-model inputs where beam search of width k finds "
        "the exhaustive optimum; middle and right: exact match of greedy and beam-5 decoding after "
        "each epoch of training, on numbers in words and on dates, with how many inputs beam search "
        "fixed and broke at each checkpoint",
        figsize=(12, 3.4),
    ) as fig:
        ax1, *axes = fig.subplots(1, 3)
        for a, by_k in agree.items():
            ks = list(by_k)
            ax1.semilogx(ks, [by_k[k] for k in ks], "o-", base=2, label=f"alpha = {a}")
        ax1.legend()
        ax1.axhline(1.0, color="gray", ls="--")
        ax1.set_xlabel("beam width k (1 = greedy)")
        ax1.set_ylabel("agrees with exhaustive search")
        ax1.set_title("tiny model, 4^5 sequences per input")
        for ax, (task, ev) in zip(axes, evals.items(), strict=True):
            ep = [e["epoch"] for e in ev]
            ax.plot(ep, [e["em_greedy"] for e in ev], "o-", color="C7", label="greedy")
            ax.plot(ep, [e["em_beam"] for e in ev], "s--", color="C0", label=f"beam {cfg.beam}")
            ax.set_xticks(ep)
            ax.set_xlabel("epochs trained")
            ax.set_ylabel("exact match")
            ax.set_title(
                f"{task}: fixed/broken by beam " + ", ".join(f"{e['fixed']}/{e['broken']}" for e in ev), fontsize=9
            )
            ax.legend()
