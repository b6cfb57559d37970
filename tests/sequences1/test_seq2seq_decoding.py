"""Seq2Seq model (training modes agree where they should) and decoding (greedy, beam, exhaustive)."""

import itertools

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.data.seqtasks import BOS, EOS, PAD
from dlterms.methods import decoding
from dlterms.methods.decoding import beam_search, exhaustive_search, greedy_search, sequence_log_prob
from dlterms.models.seq2seq import DecoderState, ScheduledSampling, Seq2Seq, inverse_sigmoid_decay, seq2seq_loss

# Roundings behind one decoder output (the float32 rule of tests/_tolerance.py): the source encoded over up
# to 7 steps and the target decoded over up to 6, each step sums over 8 + 10 inputs plus ~8 gate
# operations; the attention, the output layer over 10 units and a log-softmax over the vocabulary
N_STEPS = (7 + 6) * (8 + 10 + 8) + (10 + 7 + 7) + 10 + 9 + 4


def _batch(N=4, S=7, V=9, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    src_len = torch.randint(2, S + 1, (N,), generator=g)
    src_len[0] = S
    src = torch.randint(3, V, (N, S), generator=g)
    src[torch.arange(S)[None, :] >= src_len[:, None]] = PAD
    tgt = torch.randint(3, V, (N, T), generator=g)
    tgt[:, -1] = EOS
    return src, src_len, tgt


@pytest.mark.parametrize("attention", [None, "additive", "dot", "general"])
def test_teacher_forced_forward_equals_stepwise_decoding_with_true_inputs(attention):
    torch.manual_seed(0)
    m = Seq2Seq(9, 6, embedding_dim=8, hidden_size=10, attention=attention).eval()
    src, src_len, tgt = _batch(V=9)
    tgt = tgt.clamp(max=5)
    tgt[:, -1] = EOS
    logits = m(src, src_len, tgt)  # (N, T, V) in one GRU call
    assert logits.shape == (4, 5, 6)
    state = m.start(src, src_len)
    y = torch.full((4,), BOS)
    for t in range(5):
        logp, state = m.step(y, state)
        ref = logits[:, t].clone()
        ref[:, [PAD, BOS]] = float("-inf")
        # one GRU call against steps: 5 steps of sums over 8 + 10 inputs and ~8 gate operations, the
        # attention (sums over 7 source positions and 10 units), the output layer over 10, log-softmax over 6
        assert_close_f32(logp, torch.log_softmax(ref, -1), n=N_STEPS)
        if attention:
            assert_close_f32(state.attn.sum(-1), torch.ones(4), n=10 + 7 + 7 + 4)
            assert (state.attn[src_len < 7][:, -1] == 0).all()  # padded source positions get no weight
        y = tgt[:, t]


def test_padding_does_not_change_the_encoding():
    torch.manual_seed(0)
    m = Seq2Seq(9, 6, embedding_dim=8, hidden_size=10, attention="additive").eval()
    src, src_len, tgt = _batch(V=9)
    tgt = tgt.clamp(max=5)
    a = m(src, src_len, tgt)
    wider = torch.cat([src, torch.full((4, 3), PAD)], dim=1)
    torch.testing.assert_close(m(wider, src_len, tgt), a)
    one = m(src[1:2, : int(src_len[1])], src_len[1:2], tgt[1:2])
    assert_close_f32(one[0], a[1], n=N_STEPS)  # a batch of one runs other kernels than a batch of four


def test_free_running_feeds_its_own_predictions_and_scheduled_sampling_mixes():
    torch.manual_seed(0)
    m = Seq2Seq(9, 6, embedding_dim=8, hidden_size=10, attention=None)
    src, src_len, tgt = _batch(V=9)
    tgt = tgt.clamp(max=5)
    m.train()
    m.sampling_prob = 1.0
    free = m(src, src_len, tgt)
    # free running = greedy decoding from the same model (ties aside), whatever the targets say
    m.eval()
    toks, _ = greedy_search(m, src, src_len, max_len=5)
    m.train()
    other = m(src, src_len, torch.full_like(tgt, 3))
    torch.testing.assert_close(free, other)
    assert toks.shape[0] == 4
    m.sampling_prob = 0.0
    tf = m(src, src_len, tgt)
    assert not torch.allclose(tf, free)
    loss = seq2seq_loss(tf, tgt)
    loss.backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if "combine" not in n)
    with pytest.raises(ValueError, match="sampling_prob must be in"):
        m.sampling_prob = 1.5


def test_scheduled_sampling_schedule():
    f = inverse_sigmoid_decay(10)
    ps = [f(i) for i in (0, 10, 50, 100, 1000)]
    assert ps == sorted(ps) and 0.0 < ps[0] < 0.1 and ps[-1] > 0.99
    cb = ScheduledSampling(f, max_prob=0.5)
    assert cb.max_prob == 0.5
    with pytest.raises(ValueError, match="k must be >= 1"):
        inverse_sigmoid_decay(0.5)


def test_seq2seq_bad_arguments():
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2Seq(5, 5, attention="luong")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        Seq2Seq(5, 5, hidden_size=0)


# --------------------------------------------------------------------------- decoding


def _tiny(seed=0, V=5, temperature=3.0):
    torch.manual_seed(seed)
    m = Seq2Seq(6, V, embedding_dim=4, hidden_size=4, attention="dot").eval()
    with torch.no_grad():  # sharpen the output distribution so search choices matter
        m.out.weight.mul_(temperature)
    return m


def _brute_force(m, src, src_len, max_len, alpha):
    """Score every sequence with sequence_log_prob, the definition of the best output."""
    toks = [v for v in range(m.tgt_vocab_size) if v not in (PAD, BOS)]
    best = []
    for i in range(src.shape[0]):
        cands = [
            s
            for L in range(1, max_len + 1)
            for s in itertools.product(toks, repeat=L)
            if EOS not in s[:-1] and (L == max_len or s[-1] == EOS)
        ]
        tgt = torch.full((len(cands), max_len), PAD)
        for j, s in enumerate(cands):
            tgt[j, : len(s)] = torch.tensor(s)
        lp = sequence_log_prob(m, src[i : i + 1].expand(len(cands), -1), src_len[i : i + 1].expand(len(cands)), tgt)
        lens = torch.tensor([len(s) for s in cands])
        j = int((lp / decoding.length_penalty(lens, alpha)).argmax())
        best.append((cands[j], float(lp[j])))
    return best


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_exhaustive_and_wide_beam_equal_brute_force(alpha):
    m = _tiny()
    src, src_len, _ = _batch(N=5, V=6, seed=3)
    max_len = 4
    ex_tok, ex_lp = exhaustive_search(m, src, src_len, max_len, alpha=alpha)
    bm_tok, bm_lp = beam_search(m, src, src_len, beam_size=3**max_len, max_len=max_len, alpha=alpha)
    for i, (seq, lp) in enumerate(_brute_force(m, src, src_len, max_len, alpha)):
        assert ex_tok[i, : len(seq)].tolist() == list(seq)
        assert bm_tok[i, : len(seq)].tolist() == list(seq)
        # float32 rule: log-probabilities of the tiny model (width 4) summed over up to 4 steps
        n_tiny = 4 * ((7 + 4) * (4 + 4 + 8) + 4 + 5 + 4)
        assert_close_f32(ex_lp[i], lp, n=n_tiny)
        assert_close_f32(bm_lp[i], lp, n=n_tiny)


def test_beam_of_one_is_greedy_and_scores_are_true_log_probs():
    m = _tiny(seed=1)
    src, src_len, _ = _batch(N=6, V=6, seed=4)
    g_tok, g_lp = greedy_search(m, src, src_len, max_len=6)
    b_tok, b_lp = beam_search(m, src, src_len, beam_size=1, max_len=6)
    assert torch.equal(g_tok, b_tok[:, : g_tok.shape[1]])
    assert_close_f32(g_lp, b_lp, n=6 * N_STEPS)  # log-probabilities summed over up to 6 decoded steps
    assert_close_f32(sequence_log_prob(m, src, src_len, g_tok), g_lp, n=6 * N_STEPS)
    k_tok, k_lp = beam_search(m, src, src_len, beam_size=4, max_len=6)
    assert_close_f32(sequence_log_prob(m, src, src_len, k_tok), k_lp, n=6 * N_STEPS)


@pytest.mark.parametrize("attention", [None, "additive", "general"])
def test_beam_search_keeping_the_source_equals_selecting_every_row(attention, monkeypatch):
    """`DecoderState.reorder` (the source kept) gives beam search exactly what `select` (all rows copied) gives."""
    torch.manual_seed(3)
    m = Seq2Seq(6, 6, embedding_dim=8, hidden_size=10, attention=attention).eval()
    src, src_len, _ = _batch(N=5, V=6, seed=2)
    fast = beam_search(m, src, src_len, beam_size=4, max_len=6, alpha=0.6)
    state = m.start(src, src_len).select(torch.arange(5).repeat_interleave(4))
    rows = torch.tensor([0, 0, 3, 1, 6, 5, 4, 4, 8, 9, 11, 10, 12, 12, 12, 15, 19, 16, 17, 18])
    a, b = state.reorder(rows), state.select(rows)
    for name in ("h", "memory", "mask", "keys_proj", "attn"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or torch.equal(x, y), name
    monkeypatch.delattr(DecoderState, "reorder")
    slow = beam_search(m, src, src_len, beam_size=4, max_len=6, alpha=0.6)
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


def test_greedy_returns_attention_for_heatmaps():
    m = _tiny()
    src, src_len, _ = _batch(N=2, V=6)
    tok, _, attn = greedy_search(m, src, src_len, max_len=3, return_attention=True)
    assert attn.shape == (2, tok.shape[1], int(src_len.max()))


def test_decoding_bad_arguments():
    m = _tiny()
    src, src_len, _ = _batch(N=2, V=6)
    with pytest.raises(ValueError, match="beam_size must be a positive integer"):
        beam_search(m, src, src_len, beam_size=0, max_len=3)
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        greedy_search(m, src, src_len, max_len=0)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        beam_search(m, src, src_len, beam_size=2, max_len=3, alpha=-1.0)
