"""Question search: the learner-question set and its thresholds, and the embedding cache.

tests/data/search_questions.tsv holds questions a learner might type, each with the ids of the
terms that answer it (several when entries overlap, such as pooling and pooling-layer) and its kind:
paraphrase, symptom ("why does my loss become NaN"), how-do-I, description without the name ("two
networks competing"), or a name alone (an instance such as Adam or GRU). The split column records
when a question was written:

- tune / heldout: written before the ranking was changed, then split alternately within each kind.
  The ranking's weights were chosen on these two. The entries' `does` lines were written after
  this set by someone who had read it, so neither half is unseen.
- late: written after a first ranking design was fixed; its misses were then studied while the
  design changed (the entries' `questions`, exact names that ignore spacing), so it is not unseen
  either, though no weight was fitted to it.
- final: written before the last changes to ranking and entries and measured once at the end: the
  only questions no choice was made on. The level measured on them is asserted as a floor.

Measured when this was written (top-1 / top-3): tune 0.886 / 0.985, heldout 0.885 / 0.962, late
0.716 / 0.863, final 0.819 / 0.905. The ranking before this work scored 0.682 / 0.902,
0.687 / 0.870, 0.657 / 0.814 and 0.752 / 0.867 on the same splits. The final split does not reach
the issue's target (top-3 0.97, top-1 0.85); see FLOOR_TOP3 below.
"""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from dlterms import glossary

SET = Path(__file__).resolve().parents[1] / "data" / "search_questions.tsv"
KINDS = {"paraphrase", "symptom", "howto", "description", "name"}
SPLITS = ("tune", "heldout", "late", "final")


def _rows() -> list[dict]:
    with SET.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_question_set_is_well_formed():
    rows = _rows()
    ids = {e.id for e in glossary.entries()}
    assert len(rows) >= 150
    assert len({r["question"].casefold() for r in rows}) == len(rows), "duplicate questions"
    assert {r["kind"] for r in rows} == KINDS and {r["split"] for r in rows} == set(SPLITS)
    assert min(Counter(r["kind"] for r in rows).values()) >= 40
    for r in rows:
        terms = r["terms"].split()
        assert terms and all(t in ids for t in terms), r
    assert {t for r in rows for t in r["terms"].split()} == ids, "every term answers some question"


def _evaluate(index, rows):
    counts = defaultdict(lambda: [0, 0, 0])  # n, top-1, top-3
    misses = []
    for r in rows:
        accepted = set(r["terms"].split())
        top = [h.id for h in index.search(r["question"], limit=3)]
        for key in ("all", r["split"], r["kind"]):
            counts[key][0] += 1
            counts[key][1] += top[0] in accepted
            counts[key][2] += bool(accepted & set(top))
        if top[0] not in accepted:
            misses.append((r["split"], r["question"], r["terms"], top))
    return {k: (n, t1 / n, t3 / n) for k, (n, t1, t3) in counts.items()}, misses


def _index():
    from dlterms.site import semantic

    try:
        return semantic.default_index()
    except semantic.ModelUnavailable as exc:
        pytest.fail(f"the sentence encoder must be installed for this test: {exc}")


# The target is top-3 >= 0.97 and top-1 >= 0.85 on unseen questions. It is NOT met: the
# final split measured 0.905 / 0.819. Until it is, this test holds the measured level as a floor, a
# little below it so that a float32 rank swap on another CPU (one question is 0.95 points) cannot
# flip it; a ranking change that loses ground on unseen questions fails here.
FLOOR_TOP3, FLOOR_TOP1 = 0.88, 0.78
TARGET_TOP3, TARGET_TOP1 = 0.97, 0.85


def test_question_search_holds_its_level_on_unseen_questions():
    """On questions no choice was made on (the `final` split): top-3 and top-1 at least the floor
    above. Every split and kind is printed, with the distance to the issue's target."""
    report, misses = _evaluate(_index(), _rows())
    for key in ("all", *SPLITS, *sorted(KINDS)):
        n, t1, t3 = report[key]
        print(f"question search {key:12s} n={n:3d} top-1 {t1:.3f} top-3 {t3:.3f}")
    n, top1, top3 = report["final"]
    print(f"target top-3 {TARGET_TOP3} / top-1 {TARGET_TOP1}: final is {top3:.3f} / {top1:.3f}")
    assert top3 >= FLOOR_TOP3 and top1 >= FLOOR_TOP1, [m for m in misses if m[0] == "final"]


def test_meaning_adds_to_keywords_on_questions_not_tuned_on():
    """On the `late` and `final` questions the fused ranking puts an accepted term in the top 3 at
    least 3 points more often than the keyword (BM25) ranking alone."""
    from dlterms.glossary.search import KeywordIndex

    rows = [r for r in _rows() if r["split"] in ("late", "final")]
    fused, _ = _evaluate(_index(), rows)
    keywords = KeywordIndex()
    hits = sum(bool(set(r["terms"].split()) & {h.id for h in keywords.search(r["question"], limit=3)}) for r in rows)
    assert fused["all"][2] >= hits / len(rows) + 0.03, (fused["all"], hits / len(rows))


# --------------------------------------------------------------------------- the embedding cache


class FakeEncoder:
    """Deterministic unit vectors from a text's hash; counts what it is asked to encode."""

    def __init__(self, dim: int = 16):
        self.dim, self.seen = dim, []

    def encode(self, texts):
        import hashlib

        import torch

        self.seen.extend(texts)
        rows = []
        for t in texts:
            seed = int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
            v = np.random.default_rng(seed).normal(size=self.dim)
            rows.append(v / np.linalg.norm(v))
        return torch.tensor(np.array(rows), dtype=torch.float32)


def test_embedding_cache_is_keyed_by_each_text(tmp_path, monkeypatch):
    from dlterms.site import semantic

    monkeypatch.setenv("DLTERMS_CACHE", str(tmp_path))
    items = glossary.entries()[:3]
    enc = FakeEncoder()
    first = semantic.SemanticIndex.build(items, enc)
    n_texts = len(enc.seen)
    assert n_texts == sum(len(v) for e in items for v in semantic.entry_texts(e).values())
    enc.seen.clear()
    again = semantic.SemanticIndex.build(items, enc)
    assert enc.seen == [] and np.array_equal(first.emb["does"], again.emb["does"])
    changed = (dataclasses.replace(items[0], does="Something else entirely, in plain words."), *items[1:])
    enc.seen.clear()
    third = semantic.SemanticIndex.build(changed, enc)
    assert enc.seen == ["Something else entirely, in plain words."], "only the edited text is encoded again"
    fresh = FakeEncoder().encode(["Something else entirely, in plain words."]).numpy()[0]
    assert np.allclose(third.emb["does"][0], fresh) and not np.allclose(third.emb["does"][0], first.emb["does"][0])
    assert len(list(tmp_path.glob("text-embeddings-*.npz"))) == 1


def test_a_different_encoder_does_not_reuse_the_cache(tmp_path, monkeypatch):
    from dlterms.site import semantic

    monkeypatch.setenv("DLTERMS_CACHE", str(tmp_path))

    class OtherEncoder(FakeEncoder):
        pass

    items = glossary.entries()[:2]
    semantic.SemanticIndex.build(items, FakeEncoder())
    other = OtherEncoder()
    semantic.SemanticIndex.build(items, other)
    assert len(other.seen) > 0 and len(list(tmp_path.glob("text-embeddings-*.npz"))) == 2


def test_an_unreadable_cache_is_rebuilt(tmp_path, monkeypatch):
    from dlterms.site import semantic

    monkeypatch.setenv("DLTERMS_CACHE", str(tmp_path))
    items = glossary.entries()[:2]
    semantic.SemanticIndex.build(items, FakeEncoder())
    (path,) = tmp_path.glob("text-embeddings-*.npz")
    path.write_bytes(b"not a zip file")
    enc = FakeEncoder()
    semantic.SemanticIndex.build(items, enc)
    assert len(enc.seen) > 0


def test_sentences_split_outside_math_and_abbreviations():
    from dlterms.site.semantic import sentences

    text = "One $a. B$ two, e.g. three. Four $x$ five! **In practice:** six."
    assert sentences(text) == ["One a. B two, e.g. three.", "Four x five!", "In practice: six."]


def test_exact_name_or_keyword_ranks_first_and_bad_queries_are_refused(tmp_path, monkeypatch):
    from dlterms.site import semantic

    monkeypatch.setenv("DLTERMS_CACHE", str(tmp_path))
    index = semantic.SemanticIndex.build(glossary.entries(), FakeEncoder())
    assert index.search("Adam", limit=1)[0].id == "optimizer"
    assert index.search("scheduled sampling", limit=1)[0].id == "teacher-forcing"
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        index.search("  ")
    with pytest.raises(ValueError, match="limit must be >= 1"):
        index.search("dropout", limit=0)


def test_entries_questions_are_not_copies_of_the_test_questions():
    """The entries' `questions` are index content; none may be a near-copy of a question this set
    scores the ranking on (cosine >= 0.85 with the search encoder), or the scores would leak."""
    from dlterms.site import semantic

    index = _index()
    asked = [q for e in glossary.entries() for q in e.questions]
    tests = [r["question"] for r in _rows()]
    a = semantic.embed_cached(index.encoder, asked)
    t = semantic.embed_cached(index.encoder, tests)
    sim = t @ a.T
    worst = np.unravel_index(np.argmax(sim), sim.shape)
    assert sim.max() < 0.85, (tests[worst[0]], asked[worst[1]], float(sim.max()))
