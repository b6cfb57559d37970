r"""Sequence-to-sequence model: a recurrent encoder-decoder, with or without attention.

The encoder (Sutskever, Vinyals & Le, 2014; Cho et al., 2014) reads the source $x_1..x_S$ with a
bidirectional GRU into states $h_1..h_S$; the decoder is a GRU language model over the target that
starts from a summary of the source,

$$s_0 = \tanh(W_b [\overrightarrow{h}_S; \overleftarrow{h}_1]), \qquad s_t = \mathrm{GRU}(E y_{t-1}, s_{t-1}),$$

and predicts $p(y_t \mid y_{<t}, x) = \mathrm{softmax}(W_o \tilde s_t)$. Without attention $\tilde s_t = s_t$:
everything the decoder knows about the source must pass through the fixed-size $s_0$. With attention
(Luong, Pham & Manning, 2015, global attention without input feeding) each step reads the source
again:

$$\alpha_{tj} = \mathrm{softmax}_j\, \mathrm{score}(s_t, h_j), \qquad c_t = \sum_j \alpha_{tj} h_j, \qquad
\tilde s_t = \tanh(W_c [s_t; c_t]),$$

with the score additive (Bahdanau) or a (bilinear) dot product; see `dlterms.nn.attention`.

Training feeds the decoder a previous token $y_{t-1}$ at every step; which one is the training mode:

- teacher forcing (Williams & Zipser, 1989): always the true previous token. The decoder's whole
  input is then known in advance, so it runs as one GRU call over all steps (fast).
- free running: always the model's own previous prediction $\arg\max_y p(y \mid \dots)$, as at test
  time; no gradient flows through that choice.
- scheduled sampling (Bengio et al., 2015): per step and example, the model's own prediction with
  probability $p$ and the true token otherwise, with $p$ raised from 0 during training
  (`ScheduledSampling`, `inverse_sigmoid_decay`).

Decoding (`dlterms.methods.decoding`) uses `start` and `step`; batch first throughout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dlterms.data.seqtasks import BOS, PAD
from dlterms.nn import GRU, AdditiveAttention, DotProductAttention, Embedding, Linear, log_softmax
from dlterms.training import Callback, TrainState

__all__ = ["Seq2Seq", "DecoderState", "ScheduledSampling", "inverse_sigmoid_decay", "seq2seq_loss"]

_ATTENTION = (None, "additive", "dot", "general")


@dataclass
class DecoderState:
    """What one decoding step needs: the decoder state and the encoded source, batch first."""

    h: Tensor  # (1, N, H_d) decoder GRU state
    memory: Tensor  # (N, S, D*H) encoder outputs h_1..h_S
    mask: Tensor  # (N, S) True at real (not padded) source positions
    keys_proj: Tensor | None  # (N, S, A) precomputed W_k h_j for additive attention
    attn: Tensor | None = None  # (N, S) attention weights of the last step

    def select(self, index: Tensor) -> DecoderState:
        """The states of rows `index` (for beam search: which hypotheses survive)."""
        return DecoderState(
            self.h[:, index],
            self.memory[index],
            self.mask[index],
            None if self.keys_proj is None else self.keys_proj[index],
            None if self.attn is None else self.attn[index],
        )

    def reorder(self, index: Tensor) -> DecoderState:
        """`select(index)` where every row of `index` encodes the same source as the row it replaces (beam
        search's survivors stay among their input's copies): the decoder state and the attention follow
        `index`; the encoded source (memory, mask, projected keys), equal on those rows, is kept as it is
        instead of being copied row by row at every step."""
        return DecoderState(
            self.h[:, index],
            self.memory,
            self.mask,
            self.keys_proj,
            None if self.attn is None else self.attn[index],
        )


class Seq2Seq(torch.nn.Module):
    """GRU encoder-decoder over token ids, with optional attention.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes (id 0 is padding, 1 <bos>, 2 <eos>).
        embedding_dim: size of the token embeddings.
        hidden_size: encoder GRU size per direction; the decoder's is hidden_size * directions.
        attention: None (no attention), "additive", "dot" or "general".
        bidirectional: whether the encoder reads both ways.
        sampling_prob: probability of feeding the model's own prediction during training
            (0 = teacher forcing, 1 = free running, in between = scheduled sampling).
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embedding_dim: int = 32,
        hidden_size: int = 64,
        attention: str | None = "general",
        bidirectional: bool = True,
        sampling_prob: float = 0.0,
    ):
        super().__init__()
        if attention not in _ATTENTION:
            raise ValueError(f"attention must be one of {_ATTENTION}, got {attention!r}")
        for name, v in (
            ("src_vocab_size", src_vocab_size),
            ("tgt_vocab_size", tgt_vocab_size),
            ("embedding_dim", embedding_dim),
            ("hidden_size", hidden_size),
        ):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.attention_kind = attention
        self.sampling_prob = sampling_prob  # validated by the property setter
        D = 2 if bidirectional else 1
        self.src_embedding = Embedding(src_vocab_size, embedding_dim, padding_idx=PAD)
        self.encoder = GRU(embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        H_e, H_d = D * hidden_size, D * hidden_size
        self.bridge = Linear(H_e, H_d)
        self.tgt_embedding = Embedding(tgt_vocab_size, embedding_dim)
        self.decoder = GRU(embedding_dim, H_d, batch_first=True)
        if attention == "additive":
            self.attention = AdditiveAttention(H_d, H_e, H_d)
        elif attention in ("dot", "general"):
            self.attention = DotProductAttention(H_d, H_e, score=attention)
        else:
            self.attention = None
        self.combine = Linear(H_d + H_e, H_d) if attention else None
        self.out = Linear(H_d, tgt_vocab_size)
        self.tgt_vocab_size = tgt_vocab_size

    @property
    def sampling_prob(self) -> float:
        return self._sampling_prob

    @sampling_prob.setter
    def sampling_prob(self, p: float) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"sampling_prob must be in [0, 1], got {p}")
        self._sampling_prob = float(p)

    def extra_repr(self) -> str:
        return f"attention={self.attention_kind!r}, sampling_prob={self.sampling_prob}"

    # ----------------------------------------------------------------------- encoder

    def start(self, src: Tensor, src_len: Tensor) -> DecoderState:
        """Encode a batch of sources (N, S) with lengths (N,) into the decoder's initial state."""
        if src.dim() != 2:
            raise ValueError(f"src must be (N, S) token ids, got shape {tuple(src.shape)}")
        S = int(src_len.max())
        src = src[:, :S]  # drop columns that are padding in every row of this batch
        x = self.src_embedding(src)  # (N, S, E)
        memory, h_n = self.encoder(x, lengths=src_len)  # (N, S, D*H), (D, N, H)
        # s_0 = tanh(W_b [h_fwd_S; h_bwd_1])
        summary = torch.cat(list(h_n), dim=-1)  # (N, D*H)
        h0 = torch.tanh(self.bridge(summary)).unsqueeze(0)  # (1, N, H_d)
        mask = torch.arange(S, device=src.device)[None, :] < src_len[:, None]  # (N, S)
        kp = self.attention.project_keys(memory) if isinstance(self.attention, AdditiveAttention) else None
        return DecoderState(h0, memory, mask, kp)

    # ----------------------------------------------------------------------- decoder

    def _readout(self, s: Tensor, state: DecoderState) -> tuple[Tensor, Tensor | None]:
        """Logits (N, T, V) from decoder states s (N, T, H_d), and attention weights (N, T, S)."""
        if self.attention is None:
            return self.out(s), None
        if isinstance(self.attention, AdditiveAttention):
            c, alpha = self.attention(s, state.memory, mask=state.mask, keys_proj=state.keys_proj)
        else:
            c, alpha = self.attention(s, state.memory, mask=state.mask)  # (N, T, D*H), (N, T, S)
        # s~_t = tanh(W_c [s_t; c_t])
        s_tilde = torch.tanh(self.combine(torch.cat([s, c], dim=-1)))  # (N, T, H_d)
        return self.out(s_tilde), alpha

    def step(self, y_prev: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoding step: log p(y_t | y_<t, x) (N, V) from the previous tokens (N,).

        <pad> and <bos> are never outputs: their probability is set to 0 and the rest renormalised.
        """
        s, h = self.decoder(self.tgt_embedding(y_prev).unsqueeze(1), state.h)  # (N, 1, H_d)
        new = DecoderState(h, state.memory, state.mask, state.keys_proj)
        logits, alpha = self._readout(s, new)
        new.attn = None if alpha is None else alpha[:, 0]
        logits = logits[:, 0].clone()
        logits[:, [PAD, BOS]] = float("-inf")
        return log_softmax(logits, dim=-1), new

    def forward(self, src: Tensor, src_len: Tensor, tgt: Tensor) -> Tensor:
        """Logits (N, T, V) for predicting tgt (N, T) (ending in <eos>, padded with <pad>).

        The token fed at step t is tgt[:, t-1] (teacher forcing), the model's own previous
        prediction (free running), or either at random (scheduled sampling), by `sampling_prob`.
        """
        state = self.start(src, src_len)
        N, T = tgt.shape
        bos = torch.full((N, 1), BOS, dtype=torch.long, device=tgt.device)
        if self.sampling_prob == 0.0 or not self.training:
            # teacher forcing: inputs <bos>, y_1, ..., y_{T-1} are known, so one GRU call
            y_in = torch.cat([bos, tgt[:, :-1]], dim=1)  # (N, T)
            s, _ = self.decoder(self.tgt_embedding(y_in), state.h)  # (N, T, H_d)
            return self._readout(s, state)[0]
        y_prev, h, outs = bos[:, 0], state.h, []
        for t in range(T):
            s, h = self.decoder(self.tgt_embedding(y_prev).unsqueeze(1), h)  # (N, 1, H_d)
            logits = self._readout(s, state)[0][:, 0]  # (N, V)
            outs.append(logits)
            own = logits.detach().argmax(-1)
            if self.sampling_prob == 1.0:
                y_prev = own
            else:
                use_own = torch.rand(N, device=tgt.device) < self.sampling_prob
                y_prev = torch.where(use_own, own, tgt[:, t])
        return torch.stack(outs, dim=1)  # (N, T, V)


def seq2seq_loss(logits: Tensor, tgt: Tensor) -> Tensor:
    """Mean cross-entropy per target token, ignoring <pad>: logits (N, T, V), tgt (N, T)."""
    from dlterms.losses import cross_entropy

    return cross_entropy(logits.transpose(1, 2), tgt, ignore_index=PAD)


def inverse_sigmoid_decay(k: float) -> Callable[[int], float]:
    """Bengio et al.'s schedule: the probability of feeding the true token after i steps is
    eps_i = k / (k + exp(i / k)); the returned function gives the sampling probability 1 - eps_i."""
    if not k >= 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return lambda i: 1.0 - k / (k + math.exp(min(i / k, 700.0)))


class ScheduledSampling(Callback):
    """Set `model.sampling_prob = schedule(step)` before every training step (Bengio et al., 2015)."""

    def __init__(self, schedule: Callable[[int], float], max_prob: float = 1.0):
        if not 0.0 <= max_prob <= 1.0:
            raise ValueError(f"max_prob must be in [0, 1], got {max_prob}")
        self.schedule, self.max_prob = schedule, max_prob
        self.probs: list[float] = []

    def _set(self, state: TrainState) -> None:
        p = min(self.max_prob, max(0.0, float(self.schedule(state.step))))
        state.model.sampling_prob = p
        self.probs.append(p)

    def on_train_begin(self, state: TrainState) -> None:
        self._set(state)

    def on_batch_end(self, state: TrainState) -> None:
        self._set(state)
