"""Our BERT against transformers' BertModel and sentence-transformers, on the real all-MiniLM-L6-v2 weights."""

import os

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.data.corpus import varied_sentences
from dlterms.models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    SentenceEncoder,
    encode,
    mask_tokens,
    mean_pool,
    minilm_path,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Roundings behind a hidden state (the float32 rule of tests/_tolerance.py): the embeddings' LayerNorm
# (2 x 384), then per layer the chain q (384) . k (32 per head) -> softmax and the weighted sum over up to 256
# tokens -> output projection (384) -> LayerNorm (768) -> feed-forward (384, then 1536) -> LayerNorm (768)
N_EMBED, N_LAYER = 768, 384 + 32 + 256 + 256 + 384 + 768 + 384 + 1536 + 768
N_MODEL = N_EMBED + 6 * N_LAYER


@pytest.fixture(scope="module")
def ours():
    return SentenceEncoder.from_pretrained()


@pytest.fixture(scope="module")
def sentences():
    return varied_sentences(64)


def test_hidden_states_equal_transformers(ours, sentences):
    transformers = pytest.importorskip("transformers")
    ref = transformers.AutoModel.from_pretrained(str(minilm_path())).eval()
    batch = ours.tokenizer(sentences, max_length=256)
    with torch.no_grad():
        r = ref(**batch, output_hidden_states=True)
        o = ours.bert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], output_hidden_states=True)
    real = batch["attention_mask"].bool()  # compare at real tokens; padding rows are not used downstream
    assert len(o.hidden_states) == len(r.hidden_states) == 7
    for k, (a, b) in enumerate(zip(o.hidden_states, r.hidden_states)):
        assert_close_f32(a[real], b[real], n=N_EMBED + k * N_LAYER, msg=f"hidden state {k}")
    assert_close_f32(o.pooler_output, r.pooler_output, n=N_MODEL + 384 + 2)


def test_sentence_embeddings_equal_sentence_transformers(ours, sentences):
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(minilm_path()), device="cpu")
    e_ref = ref.encode(sentences, convert_to_tensor=True, batch_size=16)
    e_ours = ours.encode(sentences, batch_size=16)
    assert len(sentences) >= 50
    assert_close_f32(e_ours, e_ref.cpu(), n=N_MODEL + 256 + 2 * 384)  # mean over tokens, then normalised
    assert_close_f32(e_ours.norm(dim=1), torch.ones(len(sentences)), n=2 * 384 + 2)


def test_module_encode_and_order(ours):
    s = ["a cat sat on the mat", "stock markets fell sharply", "a kitten rested on the rug"]
    e = encode(s)
    assert e.shape == (3, 384)
    assert float(e[0] @ e[2]) > float(e[0] @ e[1])  # paraphrase closer than an unrelated sentence
    # batching and sorting change nothing but the kernels' shapes
    assert_close_f32(encode(s[1]), e[1], n=N_MODEL + 256 + 2 * 384)


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    m = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(mean_pool(h, m), torch.tensor([[2.0, 3.0]]))


def test_mask_tokens_rates():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (200, 50), generator=g)
    ids[:, 0] = 1  # a "special" token that must never be chosen
    x, y = mask_tokens(ids, mask_token_id=4, vocab_size=100, special_ids=[1], generator=g)
    chosen = y != -100
    assert not chosen[:, 0].any()
    assert abs(chosen.float().mean().item() - 0.15 * 49 / 50) < 0.01
    assert abs((x[chosen] == 4).float().mean().item() - 0.8) < 0.03
    assert torch.equal(y[chosen], ids[chosen])
    assert torch.equal(x[~chosen], ids[~chosen])


def _tiny_config() -> BertConfig:
    """A two-layer BERT of width 32 over 50 tokens, without dropout."""
    return BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
    )


def test_tiny_mlm_and_classifier_shapes_and_training_step():
    torch.manual_seed(0)
    cfg = _tiny_config()
    mlm = BertForMaskedLM(cfg)
    ids = torch.randint(5, 50, (8, 12))
    x, y = mask_tokens(ids, 4, 50, mlm_probability=0.3, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(mlm.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = BertForMaskedLM.loss(mlm(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    clf = BertForSequenceClassification(mlm.bert, num_labels=3)
    assert clf(ids).shape == (8, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_attention_heads"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="mlm_probability"):
        mask_tokens(torch.zeros(2, 2, dtype=torch.long), 1, 10, mlm_probability=1.5)
    with pytest.raises(ValueError, match="num_labels"):
        BertForSequenceClassification(BertModel(BertConfig(num_hidden_layers=1)), num_labels=1)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        BertModel(BertConfig(num_hidden_layers=1, max_position_embeddings=4))(torch.zeros(1, 5, dtype=torch.long))


def test_bert_experiment_reverses_the_words_of_every_sentence_in_place():
    from dlterms.experiments.sequences.bert import CLS, PAD, SEP, _reverse_words

    g = torch.Generator().manual_seed(0)
    rows, expected = [], []
    for n in [0, 1, 2, 5, 16, 3, 16]:  # words per sentence, up to the full 18 tokens with [CLS] and [SEP]
        words = torch.randint(5, 600, (n,), generator=g).tolist()
        pad = [PAD] * (16 - n)
        rows.append([CLS, *words, SEP, *pad])
        expected.append([CLS, *words[::-1], SEP, *pad])
    assert torch.equal(_reverse_words(torch.tensor(rows)), torch.tensor(expected))


def test_masked_logits_are_the_full_logits_at_masked_positions(float64):
    """The MLM head at the masked positions only gives the same logits, loss and gradients as the full
    head followed by ignore_index (float64, so only summation order can differ)."""
    torch.manual_seed(0)
    cfg = _tiny_config()
    mlm = BertForMaskedLM(cfg).eval()
    ids = torch.randint(5, 50, (6, 12))
    x, y = mask_tokens(ids, 4, 50, mlm_probability=0.3, generator=torch.Generator().manual_seed(2))
    keep = y != -100
    assert 0 < int(keep.sum()) < y.numel()
    full = mlm(x)
    torch.testing.assert_close(mlm.masked_logits(x, y), full[keep], rtol=1e-12, atol=1e-12)

    def grads(loss):
        mlm.zero_grad()
        loss.backward()
        return {n: p.grad.clone() for n, p in mlm.named_parameters() if p.grad is not None}

    want = grads(BertForMaskedLM.loss(mlm(x), y))
    got = grads(BertForMaskedLM.masked_loss(mlm.masked_logits(x, y), y))
    assert want.keys() == got.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12, msg=name)
    with pytest.raises(ValueError, match="labels must have the shape of input_ids"):
        mlm.masked_logits(x, y[:, :5])
