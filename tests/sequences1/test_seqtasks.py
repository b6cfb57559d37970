"""Generated sequence tasks: correct answers, determinism, splits by length."""

import datetime

import pytest
import torch

from dlterms.data import seqtasks as st


def test_date_formats_by_hand():
    d = datetime.date(2026, 11, 25)
    assert st.format_date(d, "dmy_dots") == "25.11.2026"
    assert st.format_date(d, "mdy_short") == "Nov 25, 2026"
    assert st.format_date(d, "weekday_all_words") == "Wednesday, the twenty-fifth of November, two thousand twenty-six"
    assert st.format_date(datetime.date(1999, 3, 1), "all_words") == "the first of March, nineteen ninety-nine"
    assert st.format_date(datetime.date(1905, 2, 22), "ordinal") == "the 22nd of February 1905"
    assert st.format_date(datetime.date(1950, 1, 12), "day_words") == "the twelfth of January, 1950"
    with pytest.raises(ValueError, match="fmt must be one of"):
        st.format_date(d, "iso")


def test_date_pairs_targets_parse_back_and_are_deterministic():
    pairs = st.date_pairs(500, seed=1)
    assert pairs == st.date_pairs(500, seed=1) and pairs != st.date_pairs(500, seed=2)
    for src, tgt in pairs:
        d = datetime.date.fromisoformat(tgt)
        assert str(d.year) in src or st._year_words(d.year) in src
    assert {len(s) for s, _ in pairs} >= {10, 40}


def test_number_words():
    assert st.number_to_words(0) == "zero"
    assert st.number_to_words(15) == "fifteen"
    assert st.number_to_words(342107) == "three hundred forty-two thousand one hundred seven"
    assert st.number_to_words(1000) == "one thousand"
    assert st.number_to_words(90019) == "ninety thousand nineteen"
    with pytest.raises(ValueError, match="n must be in"):
        st.number_to_words(10**6)
    pairs = st.number_pairs(300, seed=0)
    assert {len(t) for _, t in pairs} == set(range(1, 7))


def test_vocab_round_trip_and_split_by_length():
    pairs = st.date_pairs(200, seed=0)
    sv = st.CharVocab.from_texts(s for s, _ in pairs)
    tv = st.CharVocab("0123456789-")
    data = st.make_seq2seq_data(pairs, sv, tv)
    assert data.tgt.shape[1] == 11 and (data.tgt[:, -1] == st.EOS).all()
    for i in range(5):
        assert sv.decode(data.src[i]) == pairs[i][0]
        assert tv.decode(data.tgt[i]) == pairs[i][1]
    short, long = st.split_by_length(pairs, 30)
    assert max(len(s) for s, _ in short) <= 30 < min(len(s) for s, _ in long)
    sub = data.select([0, 1])
    assert sub.src.shape[1] == int(sub.src_len.max())
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tv.encode(["2026/11"])


def test_last_nonzero_sign_and_order_blind_bound():
    x, y = st.last_nonzero_sign(400, 12, 0.3, seed=0)
    for i in range(20):
        nz = x[i, :, 0][x[i, :, 0] != 0]
        assert y[i] == int(nz[-1] > 0)
    bound = st.best_order_blind_accuracy(x, y)
    assert 0.5 < bound < 0.9
    # a bag-of-values rule (majority sign) cannot beat the bound
    maj = (x.sum((1, 2)) > 0).long()
    assert (maj == y).float().mean() <= bound + 1e-9


def test_order_blind_bound_by_hand():
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]).unsqueeze(-1)
    y = torch.tensor([0, 1, 1])
    assert st.best_order_blind_accuracy(x, y) == pytest.approx(2 / 3)


def test_marked_recall_and_parity():
    x, y = st.marked_recall(50, delay=20, n_symbols=4, seed=0)
    assert x.shape == (50, 25, 5)
    marked = x[..., -1].argmax(1)
    assert (marked < 5).all()
    assert torch.equal(x[torch.arange(50), marked, :4].argmax(-1), y)
    xb, yb = st.marked_recall(50, delay=20, n_symbols=4, seed=0, distractors=False)
    assert torch.equal(yb, y) and (xb.sum((1, 2)) == 2).all()  # one symbol + its marker, the rest blank
    b, p = st.parity(10, 6, seed=0)
    assert torch.equal(p, b[..., 0].sum(1).long() % 2)


def test_digit_word_pairs_and_word_vocab():
    pairs = st.digit_word_pairs(300, seed=0, max_digits=8)
    assert pairs == st.digit_word_pairs(300, seed=0, max_digits=8) and pairs != st.digit_word_pairs(300, seed=1)
    words = "zero one two three four five six seven eight nine".split()
    for src, tgt in pairs:
        assert "".join(str(words.index(w)) for w in src.split()) == tgt
    assert {len(t) for _, t in pairs} == set(range(1, 9))
    assert {len(t) for _, t in st.digit_word_pairs(50, seed=0, min_digits=3, max_digits=3)} == {3}
    sv, tv = st.WordVocab.from_texts(s for s, _ in pairs), st.CharVocab("0123456789")
    assert len(sv) == 3 + 10
    data = st.make_seq2seq_data(pairs, sv, tv)
    for i in range(5):
        assert data.src_len[i] == len(pairs[i][0].split())  # one token per word
        assert sv.decode(data.src[i]) == pairs[i][0]
        assert tv.decode(data.tgt[i]) == pairs[i][1]
    with pytest.raises(ValueError, match="word 'ten' .* not in the vocabulary"):
        sv.encode(["one ten"])
    with pytest.raises(ValueError, match="min_digits"):
        st.digit_word_pairs(5, min_digits=4, max_digits=3)
    with pytest.raises(ValueError, match="n must be >= 1"):
        st.digit_word_pairs(0)
