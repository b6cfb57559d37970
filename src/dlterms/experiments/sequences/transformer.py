"""Transformer: (1) a small encoder-decoder transformer (ours: 2 + 2 pre-norm blocks, width 64) learns
to rewrite dates written in twelve real formats ("Sunday, the eleventh of February, two thousand one")
as ISO dates ("2001-02-11"), with word-level tokens, to >= 99 % exact match on held-out dates under greedy
decoding; (2) the time of one training step (forward + backward) against sequence length, for one
transformer encoder block and for a GRU of the same width: the GRU walks the sequence one step after
another, so its time grows with every added step; the transformer processes all positions at once,
so its time grows more slowly until attention's quadratic cost shows. The checks compare growth from
length 8 to 32; the metrics continue to 256, where the T^2 attention makes the transformer block grow
faster than the GRU. On a single CPU thread the transformer is not faster per step at every length; the
metrics say which was.
"""

from __future__ import annotations

import re
import time

import torch

from dlterms.data.seqtasks import date_pairs
from dlterms.losses import cross_entropy
from dlterms.nn import GRU, Embedding, Linear, Transformer, TransformerEncoderLayer
from dlterms.nn.positional import SinusoidalPositionalEncoding
from dlterms.optim import Adam, CosineAnnealingLR
from dlterms.run import Run, experiment
from dlterms.training import fit

PAD, BOS, EOS = 0, 1, 2
_WORD = re.compile(r"\d+|[A-Za-z]+|[^\sA-Za-z\d]")


class _WordVocab:
    def __init__(self, texts):
        words = sorted({w for t in texts for w in _WORD.findall(t)})
        self.itos = ["<pad>", "<bos>", "<eos>", "<unk>"] + words
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def encode(self, texts, eos: bool = False) -> torch.Tensor:
        rows = [[self.stoi.get(w, 3) for w in _WORD.findall(t)] + ([EOS] if eos else []) for t in texts]
        out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out


class _DateTransformer(torch.nn.Module):
    """Token embeddings + sinusoidal positions -> dlterms.nn.Transformer -> output projection."""

    def __init__(self, n_src: int, n_tgt: int, d: int = 64):
        super().__init__()
        self.d = d
        self.src_emb, self.tgt_emb = Embedding(n_src, d, padding_idx=PAD), Embedding(n_tgt, d, padding_idx=PAD)
        self.pos = SinusoidalPositionalEncoding(d, max_len=64)
        self.core = Transformer(d, 4, 2, 2, dim_feedforward=128, dropout=0.0, batch_first=True, norm_first=True)
        self.out = Linear(d, n_tgt)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        s = self.pos(self.src_emb(src))  # (B, S, d); embeddings ~N(0, 1), same scale as the encoding
        t = self.pos(self.tgt_emb(tgt_in))  # (B, T, d)
        h = self.core(
            s, t, src_key_padding_mask=src == PAD, memory_key_padding_mask=src == PAD, tgt_is_causal=True
        )  # (B, T, d)
        return self.out(h)  # (B, T, n_tgt)

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, max_len: int) -> torch.Tensor:
        ys = torch.full((len(src), 1), BOS, dtype=torch.long, device=src.device)
        for _ in range(max_len):
            nxt = self(src, ys)[:, -1].argmax(-1, keepdim=True)
            ys = torch.cat([ys, nxt], 1)
        return ys[:, 1:]


def _seq_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=PAD)


def _step_time(model: torch.nn.Module, x: torch.Tensor, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        out.square().mean().backward()
        best = min(best, time.perf_counter() - t0)
    return best


@experiment("transformer")
def transformer(run: Run) -> None:
    torch.manual_seed(run.seed)
    # ---- 1. dates to ISO, word-level tokens
    n_tr, n_te = (2000, 200) if run.quick else (12000, 1000)
    pairs = date_pairs(n_tr + n_te, seed=run.seed)
    src_v, tgt_v = _WordVocab([p[0] for p in pairs[:n_tr]]), _WordVocab([p[1] for p in pairs[:n_tr]])
    src = src_v.encode([p[0] for p in pairs])
    tgt = tgt_v.encode([p[1] for p in pairs], eos=True)  # (N, 6): year - month - day <eos>
    tgt_in = torch.cat([torch.full((len(tgt), 1), BOS), tgt[:, :-1]], 1)
    run.metric("src_vocab", len(src_v.itos))
    run.metric("tgt_vocab", len(tgt_v.itos))
    run.metric("max_src_tokens", src.shape[1])
    model = _DateTransformer(len(src_v.itos), len(tgt_v.itos)).to(run.device)
    epochs = 1 if run.quick else 6
    opt = Adam(model.parameters(), lr=2e-3)
    sched = CosineAnnealingLR(opt, T_max=epochs)
    t0 = time.perf_counter()
    fit(
        model,
        (src[:n_tr], tgt_in[:n_tr], tgt[:n_tr]),
        loss_fn=_seq_loss,
        optimizer=opt,
        epochs=epochs,
        batch_size=64,
        seed=run.seed,
        scheduler=sched,
    )
    train_s = time.perf_counter() - t0
    model.eval()
    pred = model.greedy(src[n_tr:].to(run.device), tgt.shape[1]).cpu()
    exact = float(((pred == tgt[n_tr:]) | (tgt[n_tr:] == PAD)).all(1).float().mean())
    run.metric("train_seconds", train_s)
    run.metric("test_exact_match", exact, key=True)
    run.check(
        "the small transformer rewrites held-out dates exactly",
        exact >= 0.99,
        observed=round(exact, 4),
        expected=">= 0.99 exact match",
    )
    run.progress(0.75, "seq2seq done")

    # ---- 2. time per training step against length
    lengths = [8, 32, 128] if run.quick else [8, 16, 32, 64, 128, 256]
    short = lengths.index(32) if 32 in lengths else 1  # compare growth up to T = 32, before T^2 shows
    d, B = 64, 16
    enc = TransformerEncoderLayer(d, 4, 128, dropout=0.0, batch_first=True)
    gru = GRU(d, d, batch_first=True)
    t_tr, t_gru = [], []
    g = run.generator(5)
    for T in lengths:
        x = torch.randn(B, T, d, generator=g)
        t_tr.append(_step_time(enc, x, 5))
        t_gru.append(_step_time(gru, x, 5))
    grow_tr, grow_gru = t_tr[short] / t_tr[0], t_gru[short] / t_gru[0]
    run.metric("step_seconds_transformer", dict(zip(map(str, lengths), [round(t, 5) for t in t_tr])))
    run.metric("step_seconds_gru", dict(zip(map(str, lengths), [round(t, 5) for t in t_gru])))
    run.metric("growth_transformer", grow_tr)
    run.metric("growth_gru", grow_gru)
    run.metric("transformer_faster_at_longest", t_tr[-1] < t_gru[-1])
    run.metric("growth_transformer_to_longest", t_tr[-1] / t_tr[0])
    run.metric("growth_gru_to_longest", t_gru[-1] / t_gru[0])
    ratio = lengths[short] / lengths[0]
    run.check(
        f"the GRU's step time grows nearly in proportion to length ({lengths[0]} -> {lengths[short]})",
        grow_gru >= 0.5 * ratio,
        observed=round(grow_gru, 2),
        expected=f">= {0.5 * ratio:.0f}x",
    )
    run.check(
        f"the transformer block's step time grows less than the GRU's ({lengths[0]} -> {lengths[short]})",
        grow_tr < grow_gru,
        observed=round(grow_tr, 2),
        expected=f"< GRU's {grow_gru:.2f}x",
    )

    with run.figure(
        "step_time",
        alt="seconds per training step against sequence length for a transformer "
        "block and a GRU of the same width, log-log",
    ) as fig:
        ax = fig.subplots()
        ax.loglog(lengths, t_tr, "o-", label="transformer encoder block")
        ax.loglog(lengths, t_gru, "s-", label="GRU")
        ax.set_xlabel("sequence length")
        ax.set_ylabel("seconds per step (forward + backward, batch 16)")
        ax.legend()
