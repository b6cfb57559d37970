"""Transformer: (1) a small encoder-decoder transformer (ours: 2 + 2 pre-norm blocks, width 64) learns
to rewrite dates written in twelve real formats ("Sunday, the eleventh of February, two thousand one")
as ISO dates ("2001-02-11"), with word-level tokens, to >= 99 % exact match on held-out dates under greedy
decoding; (2) the time of one training step (forward + backward) against sequence length, for one
transformer encoder block and for a GRU of the same width: the GRU walks the sequence one step after
another, so its time grows with every added step; the transformer processes all positions at once,
so its time grows more slowly until attention's quadratic cost shows. The GRU's growth is checked as the
log-log slope of its step time over lengths 8 to 256; the transformer's against the GRU's from length 8
to 32, before the T^2 attention makes the transformer block grow faster than the GRU (the metrics
continue to 256). On a single CPU thread the transformer is not faster per step at every length; the
metrics say which was.

The step times are measured so that load on the machine cannot flip the checks: every (model, length)
step runs once per round, one after another (CPU time of this process), and each growth ratio is taken
within a round; the checks use medians over 9 rounds (dlterms.timing).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.seqtasks import date_pairs
from dlterms.losses import cross_entropy
from dlterms.nn import GRU, Embedding, Linear, Transformer, TransformerEncoderLayer
from dlterms.nn.positional import SinusoidalPositionalEncoding
from dlterms.optim import Adam, CosineAnnealingLR
from dlterms.run import Run, experiment
from dlterms.timing import interleaved_seconds, median_slope
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


@dataclass(frozen=True)
class Config:
    """Parameters of the transformer experiment; the defaults are the recorded run."""

    n_train: int = 12000  # training date pairs
    n_test: int = 1000  # held-out date pairs
    d_model: int = 64  # width of the date model and of both timed models
    heads: int = 4  # attention heads
    layers: int = 2  # encoder blocks, and as many decoder blocks
    epochs: int = 4  # epochs of the date model, cosine-annealed (exact match 0.998-1.000 at seeds 0-4)
    lr: float = 2e-3  # Adam peak step size
    lengths: tuple[int, ...] = (8, 16, 32, 64, 128, 256)  # sequence lengths timed (must include 32)
    rounds: int = 9  # interleaved timing rounds the medians are taken over

    def __post_init__(self) -> None:
        if min(self.n_train, self.n_test, self.layers, self.epochs, self.rounds) < 1:
            raise ValueError(
                f"n_train, n_test, layers, epochs and rounds must be >= 1, got {self.n_train!r}, {self.n_test!r}, "
                f"{self.layers!r}, {self.epochs!r}, {self.rounds!r}"
            )
        if self.heads < 1 or self.d_model % self.heads or self.d_model % 2:
            raise ValueError(f"heads must be >= 1 and divide d_model={self.d_model!r} (even), got {self.heads!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if 32 not in self.lengths or self.lengths[0] >= 32 or list(self.lengths) != sorted(set(self.lengths)):
            raise ValueError(f"lengths must increase, start below 32 and include 32, got {self.lengths!r}")


class _DateTransformer(torch.nn.Module):
    """Token embeddings + sinusoidal positions -> dlterms.nn.Transformer -> output projection."""

    def __init__(self, n_src: int, n_tgt: int, d: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.d = d
        self.src_emb, self.tgt_emb = Embedding(n_src, d, padding_idx=PAD), Embedding(n_tgt, d, padding_idx=PAD)
        self.pos = SinusoidalPositionalEncoding(d, max_len=64)
        self.core = Transformer(
            d, heads, layers, layers, dim_feedforward=2 * d, dropout=0.0, batch_first=True, norm_first=True
        )
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


def _steps(model: torch.nn.Module, x: torch.Tensor, reps: int):
    """`reps` training steps' forward and backward of `model` on `x`, as one function for timing."""

    def steps() -> None:
        for _ in range(reps):
            out = model(x)
            out = out[0] if isinstance(out, tuple) else out
            out.square().mean().backward()

    return steps


@experiment("transformer", config=Config)
def transformer(run: Run, cfg: Config) -> None:
    torch.manual_seed(run.seed)
    # ---- 1. dates to ISO, word-level tokens
    n_tr, n_te = (2000, 200) if run.quick else (cfg.n_train, cfg.n_test)
    pairs = date_pairs(n_tr + n_te, seed=run.seed)
    src_v, tgt_v = _WordVocab([p[0] for p in pairs[:n_tr]]), _WordVocab([p[1] for p in pairs[:n_tr]])
    src = src_v.encode([p[0] for p in pairs])
    tgt = tgt_v.encode([p[1] for p in pairs], eos=True)  # (N, 6): year - month - day <eos>
    tgt_in = torch.cat([torch.full((len(tgt), 1), BOS), tgt[:, :-1]], 1)
    run.metric("src_vocab", len(src_v.itos))
    run.metric("tgt_vocab", len(tgt_v.itos))
    run.metric("max_src_tokens", src.shape[1])
    model = _DateTransformer(len(src_v.itos), len(tgt_v.itos), cfg.d_model, cfg.heads, cfg.layers).to(run.device)
    epochs = 1 if run.quick else cfg.epochs
    opt = Adam(model.parameters(), lr=cfg.lr)
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
        observed=exact,
        expected=">= 0.99 exact match",
    )
    run.progress(0.75, "seq2seq done")

    # ---- 2. time per training step against length
    lengths = [8, 32, 128] if run.quick else list(cfg.lengths)
    short = lengths.index(32)  # compare growth up to T = 32, before T^2 shows
    d, B = cfg.d_model, 16
    enc = TransformerEncoderLayer(d, cfg.heads, 2 * d, dropout=0.0, batch_first=True)
    gru = GRU(d, d, batch_first=True)
    g = run.generator(5)
    steps, reps = [], [max(1, 64 // T) for T in lengths]  # short steps are repeated: each call takes ~ as long
    for T, k in zip(lengths, reps):
        x = torch.randn(B, T, d, generator=g)
        steps += [_steps(enc, x, k), _steps(gru, x, k)]
    times = interleaved_seconds(steps, rounds=cfg.rounds)  # (rounds, 2 * len(lengths)): transformer, GRU per length
    times = times / np.repeat(reps, 2)  # seconds per step
    tr, gr = times[:, 0::2], times[:, 1::2]
    t_tr, t_gru = [float(v) for v in np.median(tr, axis=0)], [float(v) for v in np.median(gr, axis=0)]
    growth_tr, growth_gru = tr[:, short] / tr[:, 0], gr[:, short] / gr[:, 0]  # per round
    grow_tr, grow_gru = float(np.median(growth_tr)), float(np.median(growth_gru))
    relative = float(np.median(growth_tr / growth_gru))  # < 1: the transformer's grows less, round by round
    slope_gru = median_slope(gr, lengths)  # ~1 for time proportional to length
    run.metric("step_seconds_transformer", dict(zip(map(str, lengths), t_tr)))
    run.metric("step_seconds_gru", dict(zip(map(str, lengths), t_gru)))
    run.metric("growth_transformer", grow_tr)
    run.metric("growth_gru", grow_gru)
    run.metric("growth_transformer_over_gru", relative)
    run.metric("time_slope_gru", slope_gru)
    run.metric("transformer_faster_at_longest", t_tr[-1] < t_gru[-1])
    run.metric("growth_transformer_to_longest", t_tr[-1] / t_tr[0])
    run.metric("growth_gru_to_longest", t_gru[-1] / t_gru[0])
    # Proportional growth has a log-log slope of 1; the check asks >= 0.5 (growth >= 2x per 4x of length),
    # over all lengths: at 8 steps a constant cost per call (building the graph, Python) is still as large
    # as the work of the steps, so growth over 8 -> 32 alone moves with the machine's state.
    run.check(
        f"the GRU's step time grows nearly in proportion to length (log-log slope over {lengths[0]}-"
        f"{lengths[-1]}, median over interleaved rounds)",
        slope_gru >= 0.5,
        observed=slope_gru,
        expected=">= 0.5 (proportional = 1)",
    )
    run.check(
        f"the transformer block's step time grows less than the GRU's ({lengths[0]} -> {lengths[short]}, "
        "median of the per-round ratio of growths)",
        relative < 1.0,
        observed=f"{grow_tr:.2f}x vs GRU's {grow_gru:.2f}x (ratio {relative:.2f})",
        expected="ratio < 1",
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
        ax.set_ylabel(f"CPU seconds per step (forward + backward, batch 16; median of {cfg.rounds})")
        ax.legend()
