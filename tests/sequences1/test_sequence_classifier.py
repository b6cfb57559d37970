"""RecurrentClassifier read-outs and the order-blind baseline."""

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.models.sequence_classifier import OrderBlindClassifier, RecurrentClassifier


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("readout", ["last", "flatten", "mean", "attention"])
def test_shapes(kind, readout):
    m = RecurrentClassifier(kind, 3, 5, 4, bidirectional=True, readout=readout, seq_len=7)
    assert m(torch.randn(2, 7, 3)).shape == (2, 4)
    if readout == "attention":
        assert_close_f32(m.last_attention.sum(-1), torch.ones(2), n=7 + 7 + 4)  # softmax over 7 steps, summed


def test_last_readout_is_the_final_state():
    m = RecurrentClassifier("gru", 3, 5, 4, num_layers=2)
    x = torch.randn(2, 6, 3)
    out, h = m.rnn(x)
    torch.testing.assert_close(m(x), m.head(h[-1]))
    torch.testing.assert_close(out[:, -1], h[-1])


def test_order_blind_is_permutation_invariant():
    m = OrderBlindClassifier(3, 8, 2)
    x = torch.randn(4, 9, 3)
    assert_close_f32(m(x), m(x[:, torch.randperm(9)]), n=3 + 9 + 8 + 4)  # the pooled sum's order changes


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        RecurrentClassifier("elman", 3, 5, 2)
    with pytest.raises(ValueError, match="readout must be one of"):
        RecurrentClassifier("gru", 3, 5, 2, readout="max")
    with pytest.raises(ValueError, match="needs the sequence length"):
        RecurrentClassifier("gru", 3, 5, 2, readout="flatten")
    with pytest.raises(ValueError, match="built for seq_len=7"):
        RecurrentClassifier("gru", 3, 5, 2, readout="flatten", seq_len=7)(torch.randn(1, 6, 3))
