"""Shared set-up of the sequence-to-sequence experiments (seq2seq-model, seq2seq-learning,
teacher-forcing, beam-search, attention-mechanism): the written-dates and number-words tasks,
training with `fit`, and exact-match evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dlterms.data.seqtasks import CharVocab, Seq2SeqData, date_pairs, make_seq2seq_data, number_pairs
from dlterms.methods.decoding import beam_search, greedy_search
from dlterms.models.seq2seq import Seq2Seq, seq2seq_loss
from dlterms.optim import Adam, CosineAnnealingLR
from dlterms.training import Callback, GradientClipping, History, fit

ISO_CHARS = "0123456789-"


def vocab_for(pairs: Sequence[tuple[str, str]]) -> CharVocab:
    return CharVocab.from_texts(s for s, _ in pairs)


def encode(pairs, src_vocab: CharVocab, tgt_vocab: CharVocab, device) -> Seq2SeqData:
    return make_seq2seq_data(pairs, src_vocab, tgt_vocab).to(device)


def date_task(seed: int, n_train: int, n_test: int, device, formats=None):
    """(train, test, src_vocab, tgt_vocab) for written dates -> ISO dates."""
    train, test = date_pairs(n_train, seed=seed, formats=formats), date_pairs(n_test, seed=seed + 1000, formats=formats)
    sv, tv = vocab_for(train + test), CharVocab(ISO_CHARS)
    return encode(train, sv, tv, device), encode(test, sv, tv, device), sv, tv


def number_task(seed: int, n_train: int, n_test: int, device):
    """(train, test, src_vocab, tgt_vocab) for numbers in words -> digits (1-6 digits)."""
    train, test = number_pairs(n_train, seed=seed), number_pairs(n_test, seed=seed + 1000)
    sv, tv = vocab_for(train + test), CharVocab("0123456789")
    return encode(train, sv, tv, device), encode(test, sv, tv, device), sv, tv


def train(
    model: Seq2Seq,
    data: Seq2SeqData,
    *,
    epochs: int,
    seed: int,
    lr: float = 3e-3,
    batch_size: int = 64,
    callbacks: Sequence[Callback] = (),
    max_steps: int | None = None,
    optimizer=None,
    cosine: bool = False,
) -> History:
    """Train with `fit`: inputs (src, src_len, tgt), target tgt, per-token cross-entropy, clipping at 1;
    `cosine` anneals the learning rate to 0 over the epochs."""
    opt = optimizer or Adam(model.parameters(), lr=lr)
    scheduler = CosineAnnealingLR(opt, T_max=epochs) if cosine else None
    return fit(
        model,
        (data.src, data.src_len, data.tgt, data.tgt),
        loss_fn=seq2seq_loss,
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        max_steps=max_steps,
        scheduler=scheduler,
        forward=lambda m, src, src_len, tgt: m(src, src_len, tgt),
        callbacks=[GradientClipping(max_norm=1.0), *callbacks],
    )


def decode(model: Seq2Seq, data: Seq2SeqData, beam_size: int = 1, batch: int = 500):
    """(tokens, log-probs) of greedy (beam_size=1) or beam search, in eval mode, max length = target's."""
    was = model.training
    model.eval()
    toks, lps = [], []
    T = data.tgt.shape[1]
    for i in range(0, len(data), batch):
        src, sl = data.src[i : i + batch], data.src_len[i : i + batch]
        if beam_size == 1:
            t, lp = greedy_search(model, src, sl, max_len=T)
        else:
            t, lp = beam_search(model, src, sl, beam_size=beam_size, max_len=T)
        toks.append(torch.nn.functional.pad(t, (0, T - t.shape[1])))
        lps.append(lp)
    model.train(was)
    return torch.cat(toks), torch.cat(lps)


def exact(tokens: torch.Tensor, data: Seq2SeqData) -> torch.Tensor:
    """Per example: does the decoded sequence equal the target exactly (through <eos>)? (N,) bool."""
    return (tokens == data.tgt).all(dim=1)


def exact_match(model: Seq2Seq, data: Seq2SeqData, beam_size: int = 1) -> float:
    return exact(decode(model, data, beam_size)[0], data).float().mean().item()
