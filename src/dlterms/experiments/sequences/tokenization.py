"""Tokenization: (1) character, word and byte-level BPE tokenizers trained on standard-library docstrings
give back every string exactly, on 400 random strings drawn from all of Unicode (the tests run the same
property with hypothesis); (2) BPE tokens per character on held-out docstrings fall with every step in
the number of merges (a prefix of a BPE merge list is itself the tokenizer trained with fewer merges);
(3) our WordPiece, driven by MiniLM's vocab.txt, gives exactly the ids of the `tokenizers` library's
tokenizer on 260 varied sentences (accents, CJK, emoji, control characters, docstring prose).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlterms.data import corpus
from dlterms.data.tokenizers import ByteLevelBPETokenizer, CharTokenizer, WordPieceTokenizer, WordTokenizer
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the tokenization experiment; the defaults are the recorded run."""

    merges: tuple[int, ...] = (0, 50, 100, 250, 500, 1000, 2000)  # BPE merge counts scored (the last is trained)
    word_vocab: int = 5000  # most frequent words the word tokenizer keeps
    n_random: int = 400  # random Unicode strings in the round-trip test
    max_random_len: int = 30  # longest random string (code points)
    n_sentences: int = 260  # varied sentences in the WordPiece comparison

    def __post_init__(self) -> None:
        if len(self.merges) < 2 or self.merges[0] != 0 or any(b <= a for a, b in zip(self.merges, self.merges[1:])):
            raise ValueError(f"merges must start at 0 and increase, got {self.merges!r}")
        if self.word_vocab < 1 or self.n_random < 1 or self.max_random_len < 0 or self.n_sentences < 1:
            raise ValueError(
                f"word_vocab, n_random and n_sentences must be >= 1 and max_random_len >= 0, got {self.word_vocab!r}, "
                f"{self.n_random!r}, {self.n_sentences!r}, {self.max_random_len!r}"
            )


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


@experiment("tokenization", config=Config)
def tokenization(run: Run, cfg: Config) -> None:
    merges = list(cfg.merges)
    docs = corpus.docstrings()
    train_docs, held_docs = docs[: int(0.8 * len(docs))], docs[int(0.8 * len(docs)) :]
    if run.quick:
        train_docs, held_docs = train_docs[:300], held_docs[:100]
    held = "\n\n".join(held_docs)

    # ---- 1. lossless round trips on arbitrary Unicode
    bpe = ByteLevelBPETokenizer.train(train_docs, num_merges=merges[-1])
    toks = {
        "char": CharTokenizer.train(train_docs),
        "word": WordTokenizer.train(train_docs, max_size=cfg.word_vocab),
        "bpe": bpe,
    }
    samples = _random_unicode(run.rng(1), cfg.n_random, cfg.max_random_len) + held_docs[:100]
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
    for m in merges:
        tok = ByteLevelBPETokenizer(bpe.merges[:m])
        tpc.append(len(tok.encode(held)) / n_chars)
    run.metric("bpe_merges_learned", len(bpe.merges))
    run.metric("tokens_per_char", dict(zip(map(str, merges), tpc)))
    run.metric(f"tokens_per_char_{merges[-1]}_merges", tpc[-1], key=True)
    falls = all(b < a for a, b in zip(tpc, tpc[1:]))
    run.check(
        f"BPE tokens per character on held-out text fall at every step from 0 to {merges[-1]} merges",
        falls,
        observed=tpc,
        expected="strictly decreasing",
    )
    run.check_le(f"{merges[-1]} merges at least halve the sequence length of raw bytes", tpc[-1] / tpc[0], 0.5)
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
    sents = corpus.varied_sentences(60 if run.quick else cfg.n_sentences)
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
        ax.plot(merges, tpc, "o-", label="byte-level BPE")
        c = len(toks["char"].encode(held)) / n_chars
        ax.axhline(c, color="gray", ls="--", label=f"character ({c:.2f})")
        w = len(toks["word"].encode(held)) / n_chars
        ax.axhline(w, color="k", ls=":", label=f"word, {cfg.word_vocab} words ({w:.2f})")
        ax.set_xscale("symlog", linthresh=50)
        ax.set_xlabel("number of merges")
        ax.set_ylabel("tokens per character (held-out)")
        ax.legend()
