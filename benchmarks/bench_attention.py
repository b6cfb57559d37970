"""Sequences II: our MultiheadAttention, Embedding, BERT encoder, WordPiece and BPE tokenizers against
torch, transformers and the `tokenizers` library (Rust), at the experiments' sizes and at 10x."""

from __future__ import annotations

import os

import torch

from benchmarks._harness import Case
from dlterms.data import corpus
from dlterms.data.tokenizers import ByteLevelBPETokenizer, WordPieceTokenizer
from dlterms.models.bert import BertModel, minilm_path
from dlterms.nn import Embedding, MultiheadAttention

_MHA_NOTE = (
    "ours computes softmax(QK^T/sqrt(d))V with separate matmuls and a materialised mask; torch's "
    "CPU path fuses the projections and attention"
)
_TOK_NOTE = (
    "ours is Python: normalisation and splitting via str.translate with per-character tables filled "
    "as characters are first seen, then greedy longest-match per distinct word (cached within a call); "
    "the reference is compiled Rust"
)


def _mha_cases(scale: int) -> list[Case]:
    torch.manual_seed(0)
    B, T, E, H = 64 * scale, 12, 48, 4  # the attention-mechanisms experiment
    ref = torch.nn.MultiheadAttention(E, H, batch_first=True)
    ours = MultiheadAttention(E, H, batch_first=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, E)

    def run(m):
        def go():
            m.zero_grad(set_to_none=True)
            m(x, x, x, is_causal=True, attn_mask=torch.ones(T, T, dtype=torch.bool).triu(1))[0].sum().backward()

        return go

    def diff():
        with torch.no_grad():
            return float((ours(x, x, x)[0] - ref(x, x, x)[0]).abs().max())

    return [
        Case(
            "MultiheadAttention fwd+bwd (causal)",
            f"B={B} T={T} E={E} h={H}" + (" (10x)" if scale > 1 else " (experiment)"),
            run(ours),
            run(ref),
            diff=diff,
            note=_MHA_NOTE,
        )
    ]


def _embedding_cases(scale: int) -> list[Case]:
    torch.manual_seed(0)
    V, d = 3114, 64  # the word-embeddings experiment
    ref = torch.nn.Embedding(V, d, sparse=True)
    ours = Embedding(V, d, sparse=True)
    ours.load_state_dict(ref.state_dict())
    idx = torch.randint(V, (1024 * scale, 7))

    def run(m):
        def go():
            m.zero_grad(set_to_none=True)
            m(idx).sum().backward()

        return go

    return [
        Case(
            "Embedding fwd+bwd (sparse grad)",
            f"V={V} d={d} n={idx.numel()}" + (" (10x)" if scale > 1 else " (experiment)"),
            run(ours),
            run(ref),
            diff=lambda: float((ours(idx) - ref(idx)).abs().max()),
            note="ours checks the index range and runs a Python autograd.Function",
        )
    ]


def _bert_cases(scale: int) -> list[Case]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    ours = BertModel.from_pretrained().eval()
    ref = AutoModel.from_pretrained(str(minilm_path())).eval()
    tok = WordPieceTokenizer.from_pretrained()
    batch = tok(corpus.varied_sentences(64 * scale), max_length=128)

    def run_ours():
        with torch.no_grad():
            return ours(batch["input_ids"], batch["attention_mask"]).last_hidden_state

    def run_ref():
        with torch.no_grad():
            return ref(**batch).last_hidden_state

    def diff():
        m = batch["attention_mask"].bool()
        return float((run_ours() - run_ref())[m].abs().max())

    n = batch["input_ids"].shape
    return [
        Case(
            "BERT encoder (MiniLM-L6) forward",
            f"B={n[0]} T={n[1]}" + (" (10x)" if scale > 1 else " (experiment)"),
            run_ours,
            run_ref,
            diff=diff,
            reference_name="transformers",
            repeats=3,
            warmup=1,
            note="ours: hand-written layer norm and GELU and an unfused attention",
        )
    ]


def _tokenizer_cases(scale: int) -> list[Case]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    sents = corpus.varied_sentences(260) * scale
    ref = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    ref.no_truncation()
    ref.no_padding()
    wp = WordPieceTokenizer.from_pretrained()

    def wp_ours():
        # start cold each call: the word cache and the per-character translate tables
        for memo in (wp._cache, wp._clean_table, wp._strip_lower_table, wp._split_table):
            memo.clear()
        return [wp.encode(s) for s in sents]

    def wp_ref():
        return [e.ids for e in ref.encode_batch(sents)]

    def wp_diff():
        return float(sum(a != b for a, b in zip(wp_ours(), wp_ref())))

    docs = corpus.docstrings()[:300]
    bpe = ByteLevelBPETokenizer.train(docs, num_merges=1000)
    rbpe = Tokenizer(models.BPE())
    rbpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    rbpe.train_from_iterator(
        docs,
        trainers.BpeTrainer(vocab_size=1256, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    text = corpus.docstrings()[300 : 300 + 100 * scale]

    def bpe_ours():
        bpe._cache.clear()
        return [bpe.encode(t) for t in text]

    def bpe_ref():
        return [e.ids for e in rbpe.encode_batch(text)]

    label = " (10x)" if scale > 1 else " (experiment)"
    return [
        Case(
            "WordPiece encode",
            f"{len(sents)} sentences{label}",
            wp_ours,
            wp_ref,
            diff=wp_diff,
            reference_name="tokenizers",
            note=_TOK_NOTE + "; diff = number of sentences whose ids differ",
        ),
        Case(
            "byte-level BPE encode (1000 merges)",
            f"{len(text)} docstrings{label}",
            bpe_ours,
            bpe_ref,
            reference_name="tokenizers",
            note="merges trained separately on the same text, so ids differ; ours caches each distinct word "
            "within a call, the reference also computes offsets",
        ),
    ]


def cases() -> list[Case]:
    out: list[Case] = []
    for scale in (1, 10):
        out += _mha_cases(scale) + _embedding_cases(scale) + _tokenizer_cases(scale)
    out += _bert_cases(1)
    return out
