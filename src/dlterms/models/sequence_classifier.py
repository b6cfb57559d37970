r"""Sequence classifiers: a recurrent layer with a read-out head, and an order-blind baseline.

`RecurrentClassifier` runs an RNN, LSTM or GRU over $x_1..x_T$ (batch first, (B, T, C)) and
classifies from its states, read out in one of four ways:

- "last": the final state $h_T$ (both directions' final states when bidirectional), so everything
  the model knows about the sequence must be carried to the end;
- "flatten": all states $[h_1; \dots; h_T]$ into one linear layer (the MNIST-1D paper's GRU);
- "mean": the average state $\frac1T \sum_t h_t$;
- "attention": an attention layer (Bahdanau et al., 2015, as attention pooling) with a learned query
  $q$ reads the states, $\alpha_t = \mathrm{softmax}_t(v^\top \tanh(W_q q + W_k h_t))$,
  $c = \sum_t \alpha_t h_t$, so the model can fetch a state from any step instead of carrying it.

`OrderBlindClassifier` is the contrast: a per-step MLP whose outputs are averaged over time before a
linear head, $\hat y = W \frac1T \sum_t \phi(x_t)$, so permuting the time steps cannot change its
output (a "deep sets" model; Zaheer et al., 2017).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dlterms.nn import GRU, LSTM, RNN, AdditiveAttention, Linear, ReLU

__all__ = ["RecurrentClassifier", "OrderBlindClassifier"]

_KINDS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
_READOUTS = ("last", "flatten", "mean", "attention")


class RecurrentClassifier(torch.nn.Module):
    """Recurrent layer + read-out + linear head.

    Args:
        kind: "rnn", "lstm" or "gru".
        input_size, hidden_size, num_classes: sizes.
        num_layers, bidirectional: passed to the recurrent layer.
        readout: "last", "flatten", "mean" or "attention" (see the module docstring).
        seq_len: the fixed sequence length, needed by readout="flatten".
    """

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        readout: str = "last",
        seq_len: int | None = None,
    ):
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {tuple(_KINDS)}, got {kind!r}")
        if readout not in _READOUTS:
            raise ValueError(f"readout must be one of {_READOUTS}, got {readout!r}")
        if readout == "flatten" and (seq_len is None or seq_len < 1):
            raise ValueError(f"readout='flatten' needs the sequence length seq_len >= 1, got {seq_len!r}")
        self.kind, self.readout, self.seq_len = kind, readout, seq_len
        self.rnn = _KINDS[kind](
            input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=bidirectional
        )
        D = 2 if bidirectional else 1
        feat = D * hidden_size * (seq_len if readout == "flatten" else 1)
        if readout == "attention":
            self.query = torch.nn.Parameter(torch.zeros(D * hidden_size))
            self.attention = AdditiveAttention(D * hidden_size, D * hidden_size, D * hidden_size)
        self.head = Linear(feat, num_classes)
        self.last_attention: Tensor | None = None

    def extra_repr(self) -> str:
        return f"readout={self.readout!r}"

    def forward(self, x: Tensor) -> Tensor:
        out, h_n = self.rnn(x)  # out (B, T, D*H)
        if self.kind == "lstm":
            h_n = h_n[0]
        if self.readout == "last":
            D = 2 if self.rnn.bidirectional else 1
            feat = torch.cat(list(h_n[-D:]), dim=-1)  # last layer's final state(s): (B, D*H)
        elif self.readout == "flatten":
            if out.shape[1] != self.seq_len:
                raise ValueError(f"readout='flatten' was built for seq_len={self.seq_len}, got length {out.shape[1]}")
            feat = out.reshape(out.shape[0], -1)  # (B, T*D*H)
        elif self.readout == "mean":
            feat = out.mean(1)  # (B, D*H)
        else:
            q = self.query.expand(out.shape[0], -1)  # (B, D*H)
            feat, self.last_attention = self.attention(q, out)  # (B, D*H), (B, T)
        return self.head(feat)


class OrderBlindClassifier(torch.nn.Module):
    """y = W mean_t phi(x_t) + b with phi a per-step MLP: blind to the order of the time steps."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int):
        super().__init__()
        self.phi = torch.nn.Sequential(
            Linear(input_size, hidden_size), ReLU(), Linear(hidden_size, hidden_size), ReLU()
        )
        self.head = Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.phi(x).mean(1))  # (B, T, C) -> (B, H) -> (B, K)
