"""Tokenizers: lossless round trips (property tests), BPE training by hand, WordPiece equal to the reference."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlterms.data.corpus import varied_sentences
from dlterms.data.tokenizers import ByteLevelBPETokenizer, CharTokenizer, WordPieceTokenizer, WordTokenizer, pretokenize

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TRAIN = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "héllo wörld 東京"]


@pytest.fixture(scope="module")
def bpe():
    return ByteLevelBPETokenizer.train(TRAIN * 3, num_merges=40)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_arbitrary_unicode(t):
    for tok in (CharTokenizer.train(TRAIN), WordTokenizer.train(TRAIN), ByteLevelBPETokenizer.train(TRAIN, 30)):
        ids = tok.encode(t)
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == t
    assert "".join(pretokenize(t)) == t


def test_bpe_first_merges_by_hand():
    # pre-tokens "aaab", " aaab", " ab": pair counts (a,a)=4, (a,b)=3, (" ",a)=2 -> merge (a, a) first;
    # then "aaab" -> aa a b and " aaab" -> " " aa a b: (a,b)=3 is now the most frequent pair
    tok = ByteLevelBPETokenizer.train(["aaab aaab ab"], num_merges=2, min_frequency=1)
    a, b = ord("a"), ord("b")
    assert tok.merges == [(a, a), (a, b)]
    assert tok.vocab[256:] == [b"aa", b"ab"]
    assert tok.tokenize("aaab") == ["aa", "ab"]
    assert tok.tokenize(" aab") == [" ", "aa", "b"]  # merges apply by rank, not left to right


def test_bpe_merges_shorten_and_save_load(bpe, tmp_path):
    text = "the cat sat on the log"
    assert len(bpe.encode(text)) < len(text.encode())
    path = tmp_path / "bpe.json"
    bpe.save(path)
    again = ByteLevelBPETokenizer.load(path)
    assert again.merges == bpe.merges and again.encode(text) == bpe.encode(text)
    with pytest.raises(ValueError, match="not 'char'"):
        CharTokenizer.load(path)


def test_char_and_word_save_load(tmp_path):
    for cls in (CharTokenizer, WordTokenizer):
        tok = cls.train(TRAIN)
        tok.save(tmp_path / "t.json")
        assert cls.load(tmp_path / "t.json").encode("the cat ü") == tok.encode("the cat ü")


def test_tokenizers_library_bpe_agrees_on_counts():
    # a reference BPE trained on the same words learns the same first merge
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    ref = tokenizers.Tokenizer(models.BPE())
    ref.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    ref.train_from_iterator(
        ["aaab aaab ab"] * 5, trainers.BpeTrainer(vocab_size=258, show_progress=False, initial_alphabet=["a", "b"])
    )
    ours = ByteLevelBPETokenizer.train(["aaab aaab ab"] * 5, num_merges=1)
    assert ours.vocab[256] == b"aa"
    assert "aa" in ref.get_vocab()


@pytest.fixture(scope="module")
def wordpiece():
    return WordPieceTokenizer.from_pretrained()


def test_wordpiece_by_hand(wordpiece):
    assert wordpiece.tokenize("Unaffable!") == ["una", "##ffa", "##ble", "!"]
    assert wordpiece.tokenize("Héllo,WORLD") == ["hello", ",", "world"]
    assert wordpiece.tokenize("東京") == ["東", "京"]
    assert wordpiece.tokenize("a" * 101) == ["[UNK]"]
    assert wordpiece.tokenize("the [MASK] sat[SEP]") == ["the", "[MASK]", "sat", "[SEP]"]
    assert wordpiece.encode("hello")[0] == wordpiece.cls_token_id
    assert wordpiece.decode(wordpiece.encode("Unaffable things!")) == "unaffable things !"


@pytest.fixture(scope="module")
def reference():
    tokenizers = pytest.importorskip("tokenizers")
    from dlterms.models.bert import minilm_path

    ref = tokenizers.Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    ref.no_truncation()
    ref.no_padding()
    return ref


def test_wordpiece_ids_equal_reference_tokenizers(wordpiece, reference):
    ref = reference
    sents = varied_sentences(260)
    assert len(sents) >= 200
    mismatches = [s for s in sents if wordpiece.encode(s) != ref.encode(s).ids]
    assert mismatches == []


def test_wordpiece_equals_transformers_batch(wordpiece):
    transformers = pytest.importorskip("transformers")
    from dlterms.models.bert import minilm_path

    hf = transformers.AutoTokenizer.from_pretrained(str(minilm_path()))
    sents = varied_sentences(40)
    ours = wordpiece(sents, max_length=32)
    ref = hf(sents, padding=True, truncation=True, max_length=32, return_tensors="pt")
    for k in ("input_ids", "attention_mask", "token_type_ids"):
        assert ours[k].tolist() == ref[k].tolist(), k


# Latin, Greek, Cyrillic with combining accents, punctuation and spaces, plus CJK, Hangul and emoji.
# (Across all of Unicode a few characters differ in category between Python's unicodedata and the
# Rust library's tables, e.g. U+A9BD, so ids can differ there; see the module docstring.)
_WP_ALPHABET = st.characters(categories=["L", "M", "N", "P", "S", "Z"], max_codepoint=0x052F) | st.sampled_from(
    list("東京日本語中文한국어😀🎉…–—“”«»¿¡\u3000\u00a0\u200b\ufffd\x00\x07\t\n[]")
)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=_WP_ALPHABET, max_size=40) | st.sampled_from(["[MASK]", "a [SEP]b", "[UNK][CLS]"]))
def test_wordpiece_property_vs_reference(wordpiece, reference, t):
    ref = reference
    assert wordpiece.encode(t) == ref.encode(t).ids


def _basic_tokenize_by_hand(tok: WordPieceTokenizer, text: str) -> list[str]:
    """BERT's basic tokenisation one character at a time: the brute-force check of the translate tables."""
    import unicodedata

    from dlterms.data.tokenizers import _is_cjk, _is_control, _is_punctuation, _is_whitespace

    chars = [" " if _is_whitespace(c) else c for c in text if ord(c) not in (0, 0xFFFD) and not _is_control(c)]
    if tok.tokenize_chinese_chars:
        chars = [f" {c} " if _is_cjk(ord(c)) else c for c in chars]
    text = "".join(chars)
    if tok.strip_accents:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    if tok.do_lower_case:
        text = "".join(c.lower() for c in text)
    words, cur = [], ""
    for c in text:
        if _is_whitespace(c) or _is_punctuation(c):
            words += [cur] if cur else []
            words += [] if _is_whitespace(c) else [c]
            cur = ""
        else:
            cur += c
    return words + ([cur] if cur else [])


@pytest.fixture(scope="module")
def wordpiece_variants(wordpiece):
    flags = [{"do_lower_case": False}, {"strip_accents": False}, {"tokenize_chinese_chars": False}]
    return [wordpiece] + [WordPieceTokenizer(wordpiece.vocab, **f) for f in flags]


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=40)
    | st.text(alphabet=_WP_ALPHABET | st.sampled_from(list("\x1c\x1f\x85\u2028ΣΑΣ İ")), max_size=40)
)
def test_wordpiece_basic_tokenisation_equals_per_character_rules(wordpiece_variants, t):
    # any code point, controls and odd whitespace included; each flag combination has its own tables
    for tok in wordpiece_variants:
        assert tok.pre_tokenize(tok.normalize(t)) == _basic_tokenize_by_hand(tok, t)
    assert wordpiece_variants[0].normalize("ΟΔΟΣ") == "οδοσ"  # lower-cased character by character, as BERT does


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_merges"):
        ByteLevelBPETokenizer.train(["x"], num_merges=-1)
    with pytest.raises(ValueError, match="id must be"):
        CharTokenizer.train(["ab"]).decode([10_000])
    with pytest.raises(ValueError, match="unk_token"):
        WordPieceTokenizer(["[CLS]", "[SEP]", "[PAD]"])
    with pytest.raises(ValueError, match="merge 0"):
        ByteLevelBPETokenizer([(300, 1)])


def test_wordpiece_changing_a_setting_drops_results_cached_under_the_old_one(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "Cafe", "café", "Café"]
    tok = WordPieceTokenizer(vocab, do_lower_case=True)
    assert tok.tokenize("Café") == ["cafe"]
    tok.do_lower_case, tok.strip_accents = False, False
    assert tok.tokenize("Café") == ["Café"]
    tok.strip_accents = True
    assert tok.tokenize("Café") == ["Cafe"]
    tok.max_input_chars_per_word = 3
    assert tok.tokenize("Café") == ["[UNK]"]
