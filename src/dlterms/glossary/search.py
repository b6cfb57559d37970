"""Keyword search over the glossary: titles, aliases and definitions, ranked by a BM25-style score.

Title and alias matches weigh more than words in the definition; an exact id, title or alias
match ranks first. Semantic (meaning-based) search builds on this in `dlterms.site.semantic` and
falls back to it when the model is not available.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from dlterms.glossary.registry import Entry, load

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by can do does for from how i in is it its my of on or the to what when "
    "where which why with you your this that these those".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stop words, with a light plural strip ("gradients" -> "gradient")."""
    words = []
    for w in _WORD.findall(text.casefold()):
        if w in _STOP:
            continue
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        words.append(w)
    return words


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    score: float
    summary: str

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "score": round(self.score, 4), "summary": self.summary}


class KeywordIndex:
    """BM25 over three fields with weights: names (id, title, aliases) x3, definition x1."""

    k1 = 1.2
    b = 0.75

    def __init__(self, items: tuple[Entry, ...] | None = None):
        self.items = items if items is not None else load()
        self.docs: list[Counter] = []
        for e in self.items:
            names = " ".join((e.id.replace("-", " "), e.title, *e.aliases))
            tf = Counter()
            for w in tokenize(names):
                tf[w] += 3
            for w in tokenize(e.definition):
                tf[w] += 1
            self.docs.append(tf)
        self.avg_len = sum(sum(d.values()) for d in self.docs) / max(len(self.docs), 1)
        df: Counter = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}

    def search(self, query: str, limit: int = 10) -> list[Hit]:
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        q = query.strip().casefold()
        terms = tokenize(query)
        hits = []
        for e, tf in zip(self.items, self.docs):
            length = sum(tf.values())
            score = 0.0
            for w in terms:
                f = tf.get(w, 0)
                if f:
                    norm = self.k1 * (1 - self.b + self.b * length / self.avg_len)
                    score += self.idf[w] * f * (self.k1 + 1) / (f + norm)
            names = {e.id, e.title.casefold(), *(a.casefold() for a in e.aliases)}
            if q in names or q.replace(" ", "-") in names:
                score += 100.0
            if score > 0:
                hits.append(Hit(e.id, e.title, score, e.summary()))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:limit]


def keyword_search(query: str, limit: int = 10) -> list[Hit]:
    """Ranked keyword matches for `query`, best first."""
    return KeywordIndex().search(query, limit=limit)
