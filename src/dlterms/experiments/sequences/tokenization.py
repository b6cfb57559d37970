"""Tokenization: (1) character, word and byte-level BPE tokenizers trained on standard-library docstrings
give back every string exactly, on 400 random strings drawn from all of Unicode (the tests run the same
property with hypothesis); (2) BPE tokens per character on held-out docstrings fall with every step in
the number of merges (a prefix of a BPE merge list is itself the tokenizer trained with fewer merges);
(3) our WordPiece, driven by MiniLM's vocab.txt, gives exactly the ids of the `tokenizers` library's
tokenizer on 260 varied sentences (accents, CJK, emoji, control characters, docstring prose).
"""

from __future__ import annotations

from dlterms.data import corpus
from dlterms.data.tokenizers import ByteLevelBPETokenizer, CharTokenizer, WordPieceTokenizer, WordTokenizer
from dlterms.run import Run, experiment

MERGES = [0, 50, 100, 250, 500, 1000, 2000]


def _random_unicode(rng, n: int, max_len: int = 30) -> list[str]:
    """Strings of code points drawn uniformly from 0..0x10FFFF minus the surrogates, plus ASCII-heavy ones."""
    out = []
    for i in range(n):
        k = int(rng.integers(0, max_len + 1))
        hi = 0x80 if i % 4 == 0 else (0x3000 if i % 4 == 1 else 0x110000)
        cps = rng.integers(0, hi - 0x800 if hi == 0x110000 else hi, size=k)
        if hi == 0x110000:
            cps = [c + 0x800 if c >= 0xD800 else c for c in cps]  # skip the surrogate block D800-DFFF
        out.append("".join(chr(int(c)) for c in cps))
    return out


@experiment("tokenization")
def tokenization(run: Run) -> None:
    docs = corpus.docstrings()
    train_docs, held_docs = docs[: int(0.8 * len(docs))], docs[int(0.8 * len(docs)) :]
    if run.quick:
        train_docs, held_docs = train_docs[:300], held_docs[:100]
    held = "\n\n".join(held_docs)

    # ---- 1. lossless round trips on arbitrary Unicode
    bpe = ByteLevelBPETokenizer.train(train_docs, num_merges=MERGES[-1])
    toks = {"char": CharTokenizer.train(train_docs), "word": WordTokenizer.train(train_docs, max_size=5000), "bpe": bpe}
    samples = _random_unicode(run.rng(1), 400) + held_docs[:100]
    for name, tok in toks.items():
        bad = sum(tok.decode(tok.encode(t)) != t for t in samples)
        run.metric(f"round_trip_failures_{name}", bad)
        run.check(
            f"{name} tokenizer: decode(encode(t)) == t on random Unicode strings and held-out text",
            bad == 0,
            observed=f"{bad} failures of {len(samples)}",
            expected="0 failures",
        )
    run.progress(0.4, "round trips done")

    # ---- 2. BPE tokens per character as merges grow
    n_chars = len(held)
    tpc = []
    for m in MERGES:
        tok = ByteLevelBPETokenizer(bpe.merges[:m])
        tpc.append(len(tok.encode(held)) / n_chars)
    run.metric("bpe_merges_learned", len(bpe.merges))
    run.metric("tokens_per_char", dict(zip(map(str, MERGES), [round(x, 4) for x in tpc])))
    run.metric("tokens_per_char_2000_merges", tpc[-1], key=True)
    falls = all(b < a for a, b in zip(tpc, tpc[1:]))
    run.check(
        "BPE tokens per character on held-out text fall at every step from 0 to 2000 merges",
        falls,
        observed=[round(x, 3) for x in tpc],
        expected="strictly decreasing",
    )
    run.check(
        "2000 merges at least halve the sequence length of raw bytes",
        tpc[-1] <= 0.5 * tpc[0],
        observed=round(tpc[-1] / tpc[0], 3),
        expected="<= 0.5",
    )
    for name in ("char", "word"):
        run.metric(f"tokens_per_char_{name}", len(toks[name].encode(held)) / n_chars)
    run.progress(0.7, "BPE curve done")

    # ---- 3. WordPiece ids vs the reference tokenizer
    from tokenizers import Tokenizer

    from dlterms.models.bert import minilm_path

    ref = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    ref.no_truncation()
    ref.no_padding()
    wp = WordPieceTokenizer.from_pretrained()
    sents = corpus.varied_sentences(60 if run.quick else 260)
    mism = [s for s in sents if wp.encode(s) != ref.encode(s).ids]
    run.metric("wordpiece_sentences", len(sents))
    run.metric("wordpiece_mismatches", len(mism))
    run.check(
        "our WordPiece ids equal the tokenizers library's on every sentence",
        not mism and (len(sents) >= 200 or run.quick),
        observed=f"{len(sents) - len(mism)}/{len(sents)} identical",
        expected=">= 200 sentences, all identical",
    )
    example = "Tokenizers split ünïcode text into subwords: 東京, emoji 😀."
    run.metric("example_wordpiece", " ".join(wp.tokenize(example)))
    run.metric("example_bpe", " | ".join(bpe.tokenize(example)))

    with run.figure(
        "tokens_per_char",
        alt="BPE tokens per character on held-out docstrings against the number "
        "of merges, with the character and word tokenizers for reference",
    ) as fig:
        ax = fig.subplots()
        ax.plot(MERGES, tpc, "o-", label="byte-level BPE")
        c = len(toks["char"].encode(held)) / n_chars
        ax.axhline(c, color="gray", ls="--", label=f"character ({c:.2f})")
        w = len(toks["word"].encode(held)) / n_chars
        ax.axhline(w, color="k", ls=":", label=f"word, 5000 words ({w:.2f})")
        ax.set_xscale("symlog", linthresh=50)
        ax.set_xlabel("number of merges")
        ax.set_ylabel("tokens per character (held-out)")
        ax.legend()
