r"""Decoding: turning a model of $p(y_t \mid y_{<t}, x)$ into an output sequence.

The best output under the model is $\hat y = \arg\max_y \log p(y \mid x) = \arg\max_y \sum_t \log p(y_t
\mid y_{<t}, x)$, over all sequences ending in <eos>; there are $V^T$ of them, so it is searched for:

- greedy search takes the single most likely token at each step;
- beam search (used for speech by Lowerre, 1976; for translation by Sutskever et al., 2014) keeps the
  $k$ best prefixes at each step: every prefix is extended by every token, and the $k$ highest
  scores among the $k V$ extensions survive. A prefix that emits <eos> is finished and keeps its score.
  $k = 1$ is greedy search; $k \ge V^T$ is exhaustive;
- exhaustive search scores every sequence (only possible for tiny vocabularies and lengths) and is the
  reference that the other two approximate.

Longer sequences collect more negative terms, so raw log-probability favours short outputs. Length
normalisation (Wu et al., 2016, GNMT) ranks finished hypotheses by

$$\mathrm{score}(y) = \frac{\log p(y \mid x)}{\mathrm{lp}(y)}, \qquad
\mathrm{lp}(y) = \left(\frac{5 + |y|}{6}\right)^{\alpha},$$

with $\alpha = 0$ giving plain log-probability. $|y|$ counts the tokens including <eos>.

A model is decodable if it has `start(src, src_len) -> state` and `step(y_prev (N,), state) ->
(log_probs (N, V), state)`, where `state.select(index)` picks rows (as `dlterms.models.seq2seq.Seq2Seq`); an optional
`state.reorder(index)` does the same when each row is replaced by one that encodes the same source.
All functions take a batch of inputs and return, per input, the tokens (without <bos>, up to and
including <eos>, right-padded with <pad>) and the raw log-probability.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dlterms.data.seqtasks import BOS, EOS, PAD

__all__ = ["greedy_search", "beam_search", "exhaustive_search", "sequence_log_prob", "length_penalty"]


def length_penalty(length: Tensor, alpha: float) -> Tensor:
    """lp(y) = ((5 + |y|) / 6) ** alpha."""
    return ((5.0 + length.to(torch.get_default_dtype())) / 6.0) ** alpha


def _check(max_len: int, **kw) -> None:
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
    for name, v in kw.items():
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")


@torch.no_grad()
def greedy_search(model, src: Tensor, src_len: Tensor, max_len: int, return_attention: bool = False):
    """Most likely token at every step: (tokens (N, <=max_len), log_probs (N,)[, attention (N, T, S)])."""
    _check(max_len)
    state = model.start(src, src_len)
    N = src.shape[0]
    y = torch.full((N,), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(N, dtype=torch.bool, device=src.device)
    score = torch.zeros(N, device=src.device)
    tokens, attn = [], []
    for _ in range(max_len):
        logp, state = model.step(y, state)  # (N, V)
        lp, y = logp.max(-1)
        y = y.masked_fill(done, PAD)
        score = score + lp.masked_fill(done, 0.0)
        tokens.append(y)
        if return_attention and state.attn is not None:
            attn.append(state.attn)
        done = done | (y == EOS)
        if bool(done.all()):
            break
    out = torch.stack(tokens, 1)
    if return_attention:
        return out, score, (torch.stack(attn, 1) if attn else None)
    return out, score


@torch.no_grad()
def beam_search(model, src: Tensor, src_len: Tensor, beam_size: int, max_len: int, alpha: float = 0.0):
    """The best of `beam_size` hypotheses kept per input, ranked at the end by length-normalised score.

    Returns (tokens (N, <=max_len), log_probs (N,)): the chosen hypothesis and its raw log-probability.
    """
    _check(max_len, alpha=alpha)
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer, got {beam_size!r}")
    N, k, dev = src.shape[0], beam_size, src.device
    state = model.start(src, src_len)
    state = state.select(torch.arange(N, device=dev).repeat_interleave(k))  # (N*k) rows, beam-major per input
    # scores (N, k): only beam 0 is live at the start, so the first expansion is not counted k times
    scores = torch.full((N, k), float("-inf"), device=dev)
    scores[:, 0] = 0.0
    finished = torch.zeros(N, k, dtype=torch.bool, device=dev)
    lengths = torch.zeros(N, k, dtype=torch.long, device=dev)
    history = torch.empty(N, k, 0, dtype=torch.long, device=dev)
    y = torch.full((N * k,), BOS, dtype=torch.long, device=dev)
    for _ in range(max_len):
        logp, state = model.step(y, state)  # (N*k, V)
        V = logp.shape[-1]
        logp = logp.view(N, k, V)
        # a finished hypothesis extends only by <pad>, at no cost, so it keeps its score
        pad_only = torch.full((V,), float("-inf"), device=dev)
        pad_only[PAD] = 0.0
        logp = torch.where(finished.unsqueeze(-1), pad_only, logp)
        # score(prefix + w) = score(prefix) + log p(w | prefix, x), over all k*V extensions
        cand = (scores.unsqueeze(-1) + logp).view(N, k * V)
        top, idx = cand.topk(k, dim=-1)  # (N, k)
        origin, token = idx // V, idx % V  # which beam each survivor extends, with which token
        scores = top
        history = torch.cat(
            [history.gather(1, origin.unsqueeze(-1).expand(-1, -1, history.shape[-1])), token.unsqueeze(-1)], dim=-1
        )
        was_finished = finished.gather(1, origin)
        lengths = lengths.gather(1, origin) + (~was_finished).long()
        finished = was_finished | (token == EOS)
        rows = (origin + torch.arange(N, device=dev)[:, None] * k).view(-1)
        # survivors stay in their input's block of k copies, so a state with `reorder` keeps the source
        state = state.reorder(rows) if hasattr(state, "reorder") else state.select(rows)
        y = token.view(-1)
        if bool(finished.all()):
            break
    # rank by length-normalised score; dead beams (-inf) stay last
    norm = scores / length_penalty(lengths.clamp(min=1), alpha)
    best = norm.argmax(-1)  # (N,)
    ar = torch.arange(N, device=dev)
    return history[ar, best], scores[ar, best]


@torch.no_grad()
def sequence_log_prob(model, src: Tensor, src_len: Tensor, tgt: Tensor) -> Tensor:
    """log p(tgt | src) under the model's `step`, summed over tgt's tokens up to and including <eos>
    (positions after it, padded with <pad>, are not counted): (N,)."""
    state = model.start(src, src_len)
    N, T = tgt.shape
    y = torch.full((N,), BOS, dtype=torch.long, device=src.device)
    total = torch.zeros(N, device=src.device)
    alive = torch.ones(N, dtype=torch.bool, device=src.device)
    for t in range(T):
        logp, state = model.step(y, state)
        y = tgt[:, t]
        total = total + torch.where(alive, logp.gather(1, y.clamp(min=0)[:, None])[:, 0], 0.0)
        alive = alive & (y != EOS) & (y != PAD)
    return total


@torch.no_grad()
def exhaustive_search(model, src: Tensor, src_len: Tensor, max_len: int, alpha: float = 0.0):
    """Score every output sequence of at most `max_len` tokens (over every token except <pad> and
    <bos>; a sequence ends at <eos> or at `max_len`) and return the best, as `beam_search` does.

    Costs (V-2)^max_len model steps per input: only for tiny models.
    """
    _check(max_len, alpha=alpha)
    N, dev = src.shape[0], src.device
    best_tok = torch.full((N, max_len), PAD, dtype=torch.long, device=dev)
    best_lp = torch.full((N,), float("-inf"), device=dev)
    best_norm = torch.full((N,), float("-inf"), device=dev)
    for i in range(N):
        state = model.start(src[i : i + 1], src_len[i : i + 1])
        # level-by-level expansion of every live prefix: prefixes (P, t), their log-probs (P,)
        prefixes = torch.empty(1, 0, dtype=torch.long, device=dev)
        lp = torch.zeros(1, device=dev)
        y = torch.full((1,), BOS, dtype=torch.long, device=dev)
        for t in range(max_len):
            logp, state = model.step(y, state)  # (P, V)
            V = logp.shape[-1]
            tokens = torch.tensor([v for v in range(V) if v not in (PAD, BOS)], device=dev)
            P = prefixes.shape[0]
            ext_lp = (lp[:, None] + logp[:, tokens]).reshape(-1)  # (P * |tokens|,)
            ext = torch.cat([prefixes.repeat_interleave(len(tokens), 0), tokens.repeat(P)[:, None]], dim=1)
            origin = torch.arange(P, device=dev).repeat_interleave(len(tokens))
            complete = (ext[:, -1] == EOS) | (t == max_len - 1)
            if complete.any():
                norm = ext_lp[complete] / length_penalty(torch.tensor(t + 1), alpha)
                j = int(norm.argmax())
                if norm[j] > best_norm[i]:
                    best_norm[i], best_lp[i] = norm[j], ext_lp[complete][j]
                    best_tok[i] = PAD
                    best_tok[i, : t + 1] = ext[complete][j]
            keep = ~complete
            if not keep.any():
                break
            prefixes, lp = ext[keep], ext_lp[keep]
            state = state.select(origin[keep])
            y = prefixes[:, -1]
    return best_tok, best_lp
