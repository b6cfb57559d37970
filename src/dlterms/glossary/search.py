"""Keyword search over the glossary: names, keywords, plain-words lines, definitions and the
questions and symptoms a learner might type, ranked by a BM25-style score.

Matches in the names (id, title, aliases) weigh most, then keywords and the `does` line, then words
of the definition and of the entry's `questions` and `symptoms` (a learner's own words: "out of
memory", "NaN", "forgot"); an exact match of any name or keyword (ignoring case, spaces, hyphens and dots)
ranks first. Semantic (meaning-based)
search builds on this in `dlterms.site.semantic` and falls back to it when the model is not
available.
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


# British to American spelling, applied to query and documents alike ("normalisation" and
# "normalization" become one token); a merge of two unrelated words would only cost precision.
_SPELLING = ((re.compile(r"is(ation|ations|e|es|ed|ing|er|ers)$"), r"iz\1"), (re.compile(r"our$"), "or"))


def _spelling(w: str) -> str:
    if len(w) > 5:
        for pattern, repl in _SPELLING:
            w = pattern.sub(repl, w)
    return w


_VOWEL = re.compile(r"[aeiouy]")


def stem(w: str) -> str:
    """A light suffix stripper, so that "scaling", "scaled" and "scales" all become "scal".

    Plurals and -ly, -ing, -ed, -ation and -ate endings go (when a stem with a vowel is left, so that
    "translation" and "translate" meet), -ization and -izer become -ize, a doubled final consonant
    is undoubled ("stopped" -> "stop") and a final e is dropped. It is not a full Porter stemmer:
    it only needs to map a query's word and an entry's word with the same root to the same token
    most of the time.
    """
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix, repl in (
        ("ization", "ize"),
        ("izer", "ize"),
        ("ation", ""),
        ("ate", ""),
        ("ly", ""),
        ("ing", ""),
        ("ed", ""),
    ):
        if w.endswith(suffix):
            base = w[: -len(suffix)] + repl
            if len(base) >= 3 and _VOWEL.search(base):
                w = base
                if suffix in ("ing", "ed") and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                    w = w[:-1]
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def _compact(name: str) -> str:
    """A name as compared for an exact match: case, spaces, hyphens and dots ignored, so that
    "back propagation", "Back-propagation" and "backpropagation" are one name."""
    return re.sub(r"[\s\-.]+", "", name.casefold())


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stop words, British spellings folded into American ones and
    light stemming ("Normalising gradients" -> ["normaliz", "gradient"])."""
    words = []
    for w in _WORD.findall(text.casefold()):
        if w in _STOP:
            continue
        words.append(stem(_spelling(w)))
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
    """BM25 over weighted fields: names (id, title, aliases) x3, keywords and the `does` line x2,
    definition x1, the entry's questions and symptoms x1."""

    k1 = 1.2
    b = 0.75
    weights = {"names": 3, "keywords": 2, "does": 2, "describes": 1, "definition": 1, "asked": 1}

    def __init__(self, items: tuple[Entry, ...] | None = None):
        self.items = items if items is not None else load()
        self.docs: list[Counter] = []
        self.names: list[set[str]] = []
        for e in self.items:
            fields = {
                "names": " ".join((e.id.replace("-", " "), e.title, *e.aliases)),
                "keywords": " ".join(e.keywords),
                "does": e.does or "",
                "describes": " ".join(e.describes),
                "definition": e.definition,
                "asked": " ".join((*e.questions, *e.symptoms)),
            }
            tf = Counter()
            for name, text in fields.items():
                for w in tokenize(text):
                    tf[w] += self.weights[name]
            self.docs.append(tf)
            self.names.append({_compact(n) for n in e.names()})
        self.avg_len = sum(sum(d.values()) for d in self.docs) / max(len(self.docs), 1)
        df: Counter = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}

    def search(self, query: str, limit: int = 10) -> list[Hit]:
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        q = _compact(query)
        terms = tokenize(query)
        hits = []
        for i, (e, tf) in enumerate(zip(self.items, self.docs)):
            length = sum(tf.values())
            score = 0.0
            for w in terms:
                f = tf.get(w, 0)
                if f:
                    norm = self.k1 * (1 - self.b + self.b * length / self.avg_len)
                    score += self.idf[w] * f * (self.k1 + 1) / (f + norm)
            names = self.names[i]
            if q in names:
                score += 100.0
            if score > 0:
                hits.append(Hit(e.id, e.title, score, e.summary()))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:limit]


def keyword_search(query: str, limit: int = 10) -> list[Hit]:
    """Ranked keyword matches for `query`, best first."""
    return KeywordIndex().search(query, limit=limit)
