"""The glossary registry: all 100 entries, consistent, matching tests/data/terms.tsv, and look-ups."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from dlterms import glossary
from dlterms.glossary.registry import GlossaryError, load, parse_entry

# The list of the 100 terms: every entry's number, id, title and area must match it.
TSV = Path(__file__).with_name("data") / "terms.tsv"


def _tsv_rows():
    with TSV.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_hundred_entries_numbered_once():
    items = glossary.entries()
    assert [e.number for e in items] == list(range(1, 101))
    assert len({e.id for e in items}) == 100


def test_entries_match_terms_tsv():
    rows = _tsv_rows()
    by_number = {e.number: e for e in glossary.entries()}
    assert len(rows) == 100
    for row in rows:
        e = by_number[int(row["number"])]
        assert (e.id, e.title, e.area) == (row["id"], row["title"], row["area"])


def test_beam_search_is_item_72():
    assert glossary.get(72).id == "beam-search"


def test_definitions_are_two_to_five_sentences():
    for e in glossary.entries():
        body = e.definition.split("**In practice:**")[0]
        # Count sentence ends, ignoring those inside $...$ math and common abbreviations.
        text = re.sub(r"\$[^$]*\$", "X", body)
        text = re.sub(r"\b(e\.g|i\.e|etc|vs|et al)\.", "x", text)
        n = len(re.findall(r"[.!?](\s|$)", text))
        assert 2 <= n <= 5, f"{e.id}: {n} sentences"


def test_validate_deep_has_no_problems():
    from dlterms.audit import validate

    assert validate() == []


@pytest.mark.parametrize("name", ["dropout", "17", 17, "DROPOUT", "Dropout", "inverted dropout"])
def test_lookup_by_id_number_title_alias(name):
    e = glossary.get(name)
    assert e.id == "dropout"


def test_lookup_short_form_of_title():
    assert glossary.get("CNN").id == "cnn"
    assert glossary.get("convolutional neural network").id == "cnn"


def test_unknown_term_suggests_close_matches():
    with pytest.raises(glossary.UnknownTermError, match="did you mean 'dropout'"):
        glossary.get("dropuot")


def test_unknown_term_without_suggestions():
    with pytest.raises(glossary.UnknownTermError, match="unknown term 'zzzzqqq'$"):
        glossary.get("zzzzqqq")


def test_area_filter_and_bad_area():
    assert all(e.area == "vision" for e in glossary.entries("vision"))
    with pytest.raises(ValueError, match="area must be one of .* got 'nope'"):
        glossary.entries("nope")


def _write(tmp: Path, name: str, front: str, body: str = "One. Two.") -> Path:
    p = tmp / name
    p.write_text(f"---\n{front}\n---\n{body}\n", encoding="utf-8")
    return p


def test_parse_rejects_bad_files(tmp_path):
    good = "number: 1\nid: ann\ntitle: ANN\narea: foundations"
    assert parse_entry(_write(tmp_path, "001-ann.md", good)).id == "ann"
    with pytest.raises(GlossaryError, match="file name must be 001-ann.md"):
        parse_entry(_write(tmp_path, "002-ann.md", good))
    with pytest.raises(GlossaryError, match="area must be one of"):
        parse_entry(_write(tmp_path, "001-ann.md", good.replace("foundations", "misc")))
    with pytest.raises(GlossaryError, match="missing front-matter fields"):
        parse_entry(_write(tmp_path, "001-ann.md", "number: 1\nid: ann"))
    with pytest.raises(GlossaryError, match="unknown front-matter fields"):
        parse_entry(_write(tmp_path, "001-ann.md", good + "\ncolour: red"))
    with pytest.raises(GlossaryError, match="definition is empty"):
        parse_entry(_write(tmp_path, "001-ann.md", good, body=""))
    with pytest.raises(GlossaryError, match="number must be an integer"):
        parse_entry(_write(tmp_path, "001-ann.md", good.replace("number: 1", "number: 0")))


def test_load_rejects_inconsistent_sets(tmp_path):
    _write(tmp_path, "001-ann.md", "number: 1\nid: ann\ntitle: ANN\narea: foundations\nrelated: [ghost]")
    with pytest.raises(GlossaryError, match="related id 'ghost' does not exist"):
        load(tmp_path, complete=False)
    d2 = tmp_path / "b"
    d2.mkdir()
    _write(d2, "001-ann.md", "number: 1\nid: ann\ntitle: ANN\narea: foundations")
    with pytest.raises(GlossaryError, match=r"entries missing for numbers \[2, 3"):
        load(d2, complete=True)
    d3 = tmp_path / "c"
    d3.mkdir()
    _write(d3, "001-ann.md", "number: 1\nid: ann\ntitle: ANN\narea: foundations\naliases: [net]")
    _write(d3, "002-mlp.md", "number: 2\nid: mlp\ntitle: MLP\narea: foundations\naliases: [NET]")
    with pytest.raises(GlossaryError, match="already a name of 'ann'"):
        load(d3, complete=False)


def test_keyword_search_ranks_exact_names_first():
    from dlterms.glossary.search import keyword_search

    hits = keyword_search("dropout")
    assert hits[0].id == "dropout"
    assert [h.score for h in hits] == sorted([h.score for h in hits], reverse=True)
    assert keyword_search("gradients vanish in deep sigmoid networks")[0].id in {
        "vanishing-gradient",
        "nonlinear-activations",
    }
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        keyword_search("   ")


# --------------------------------------------------------------------------- aliases, keywords, corrections


def test_lookup_by_keyword():
    assert glossary.get("Adam").id == "optimizer"
    assert glossary.get("vae").id == "generative-model"
    assert glossary.get("GRU").id == "sequence-modeling"
    assert glossary.get("scheduled sampling").id == "teacher-forcing"


def test_aliases_are_synonyms_not_the_named_instances():
    """The review's examples of non-synonyms are keywords now, shown as "Includes", not aliases."""
    moved = {
        "teacher-forcing": ["scheduled sampling", "exposure bias"],
        "siamese-networks": ["contrastive loss"],
        "early-stopping": ["patience"],
        "neural-style-transfer": ["Gram matrix"],
        "skip-connections": ["ResNet", "residual block"],
        "optimizer": ["Adam", "RMSprop", "momentum"],
        "generative-model": ["VAE"],
        "sequence-modeling": ["GRU"],
        "tokenization": ["BPE"],
        "graph-neural-networks": ["GCN"],
    }
    for term, names in moved.items():
        e = glossary.get(term)
        for n in names:
            assert n not in e.aliases and n in e.keywords, (term, n)


def test_every_entry_has_a_does_line():
    for e in glossary.entries():
        assert e.does and len(e.does.split()) >= 6, e.id


def _entry(front: str) -> str:
    return "number: 1\nid: ann\ntitle: ANN\narea: foundations\n" + front


def test_parse_validates_keywords_and_does(tmp_path):
    p = parse_entry(_write(tmp_path, "001-ann.md", _entry("keywords: [perceptron]\ndoes: Adds things up.")))
    assert p.keywords == ("perceptron",) and p.does == "Adds things up."
    for front, message in [
        ("keywords: [perceptron, '']", "keywords must be a list of non-empty strings"),
        ("keywords: [perceptron, 3]", "keywords must be a list of non-empty strings"),
        ("keywords: {a: 1}", "keywords must be a list of non-empty strings"),
        ("does: ''", "does must be a non-empty string"),
        ("does: [a, b]", "does must be a non-empty string"),
        ("aliases: [ann]", "alias 'ann' is the entry's own title"),
        ("keywords: [Ann]", "keyword 'Ann' is the entry's own title"),
        ("aliases: [net]\nkeywords: [NET]", "keyword 'NET' repeats the alias"),
        ("keywords: [unit, Unit]", "keyword 'Unit' repeats the keyword"),
        ("questions: [What is it]", "questions must end with '?'"),
        ('questions: ["What is it?", "what is it?"]', "a question is listed twice"),
        ('questions: ["What?", ""]', "questions must be a list of non-empty strings"),
        ('symptoms: ["The loss is NaN?"]', "symptoms are statements, not questions"),
        ('symptoms: ["The loss is NaN.", "the loss is nan."]', "a symptom is listed twice"),
        ("symptoms: [3]", "symptoms must be a list of non-empty strings"),
        ('describes: ["Adds things up?"]', "describes are statements, not questions"),
        ('describes: ["Adds things up.", "adds things  up."]', "a description is listed twice"),
        ("describes: [3]", "describes must be a list of non-empty strings"),
    ]:
        with pytest.raises(GlossaryError, match=re.escape(message)):
            parse_entry(_write(tmp_path, "001-ann.md", _entry(front)))


def test_parse_validates_corrections(tmp_path):
    ok = "corrections:\n  - source: It says X.\n    truth: Y holds.\n    evidence: A paper.\n    experiment: ann"
    (c,) = parse_entry(_write(tmp_path, "001-ann.md", _entry(ok))).corrections
    assert (c.source, c.truth, c.evidence, c.experiment) == ("It says X.", "Y holds.", "A paper.", "ann")
    for front, message in [
        ("corrections: oops", "corrections must be a list of mappings"),
        ("corrections: [oops]", "corrections[0] must be a mapping"),
        ("corrections:\n  - source: X\n    truth: Y", "corrections[0] is missing ['evidence']"),
        ("corrections:\n  - source: X\n    truth: ''\n    evidence: Z", "truth must be a non-empty string"),
        ("corrections:\n  - source: X\n    truth: Y\n    evidence: Z\n    colour: red", "unknown fields ['colour']"),
        ("corrections:\n  - source: X\n    truth: Y\n    evidence: Z\n    experiment: Not An Id", "experiment id"),
    ]:
        with pytest.raises(GlossaryError, match=re.escape(message)):
            parse_entry(_write(tmp_path, "001-ann.md", _entry(front)))


def test_load_rejects_name_clashes_across_entries(tmp_path):
    base = {
        "001-ann.md": "number: 1\nid: ann\ntitle: Artificial Neural Network (ANN)\narea: foundations",
        "002-mlp.md": "number: 2\nid: mlp\ntitle: MLP\narea: foundations",
    }
    clashes = [
        ("002-mlp.md", "keywords: [ann]", "name 'ann' of 'mlp' is already a name of 'ann'"),
        ("002-mlp.md", "keywords: [artificial neural network]", "already a name of 'ann'"),
        ("002-mlp.md", "aliases: [Artificial Neural Network (ANN)]", "already a name of 'ann'"),
        ("001-ann.md", "keywords: [perceptron]\n", None),  # fine on its own
    ]
    for i, (name, extra, message) in enumerate(clashes):
        d = tmp_path / f"set{i}"
        d.mkdir()
        for fname, front in base.items():
            _write(d, fname, front + ("\n" + extra if fname == name else ""))
        if message is None:
            load(d, complete=False)
            continue
        with pytest.raises(GlossaryError, match=re.escape(message)):
            load(d, complete=False)
    d = tmp_path / "kw"
    d.mkdir()
    _write(d, "001-ann.md", base["001-ann.md"] + "\nkeywords: [unit]")
    _write(d, "002-mlp.md", base["002-mlp.md"] + "\nkeywords: [Unit]")
    with pytest.raises(GlossaryError, match="name 'Unit' of 'mlp' is already a name of 'ann'"):
        load(d, complete=False)


def test_load_rejects_a_question_listed_by_two_entries(tmp_path):
    _write(tmp_path, "001-ann.md", _entry('questions: ["What is a unit?"]'))
    _write(tmp_path, "002-mlp.md", 'number: 2\nid: mlp\ntitle: MLP\narea: foundations\nquestions: ["What is a UNIT?"]')
    with pytest.raises(GlossaryError, match="question 'What is a UNIT\\?' is already one of 'ann'"):
        load(tmp_path, complete=False)


def test_load_rejects_a_symptom_listed_by_two_entries(tmp_path):
    _write(tmp_path, "001-ann.md", _entry('symptoms: ["The loss is NaN."]'))
    _write(tmp_path, "002-mlp.md", 'number: 2\nid: mlp\ntitle: MLP\narea: foundations\nsymptoms: ["the loss is NaN."]')
    with pytest.raises(GlossaryError, match="symptom 'the loss is NaN.' is already one of 'ann'"):
        load(tmp_path, complete=False)
    assert parse_entry(tmp_path / "001-ann.md").symptoms == ("The loss is NaN.",)


def test_load_rejects_a_description_listed_by_two_entries(tmp_path):
    _write(tmp_path, "001-ann.md", _entry('describes: ["Adds weighted inputs."]'))
    mlp = 'number: 2\nid: mlp\ntitle: MLP\narea: foundations\ndescribes: ["adds weighted inputs."]'
    _write(tmp_path, "002-mlp.md", mlp)
    with pytest.raises(GlossaryError, match="description 'adds weighted inputs.' is already one of 'ann'"):
        load(tmp_path, complete=False)
    assert parse_entry(tmp_path / "001-ann.md").describes == ("Adds weighted inputs.",)


def test_every_entry_describes_itself_and_lists_symptoms():
    """Search reads each entry's plain-words descriptions and symptoms (dlterms.site.semantic)."""
    for e in glossary.entries():
        assert len(e.describes) >= 2 and len(e.symptoms) >= 3, e.id


def test_load_rejects_a_correction_naming_no_registered_experiment(tmp_path):
    front = "corrections:\n  - source: X\n    truth: Y\n    evidence: Z\n    experiment: mlp"
    _write(tmp_path, "001-ann.md", _entry(front))
    _write(tmp_path, "002-mlp.md", "number: 2\nid: mlp\ntitle: MLP\narea: foundations")
    with pytest.raises(GlossaryError, match="correction's experiment 'mlp' is not the experiment of any entry"):
        load(tmp_path, complete=False)


def test_the_sources_errors_are_named():
    """Each claim of the source the review lists is a correction of its entry; the six that no entry
    named before are named in the entry's text too (the others already negated the claim)."""
    expected = {
        "reinforcement-learning": "gamification",
        "triplet-loss": "ensure",
        "pooling": "most important information",
        "model-pruning": "model size",
        "cnn": "human",
        "feature-scaling": "normalization",
        "sgd": "convex",
        "attention-mechanism": "one after another",
        "attention-layers": "without data loss",
    }
    for term, phrase in expected.items():
        e = glossary.get(term)
        assert any(phrase in c.source.casefold() for c in e.corrections), (term, phrase)
    for term in ("reinforcement-learning", "triplet-loss", "pooling", "model-pruning", "cnn", "feature-scaling"):
        assert "source" in glossary.get(term).definition, f"{term}: the entry does not name the source's error"
    every = [c for e in glossary.entries() for c in e.corrections]
    assert len(every) >= 50
    registered = {e.id for e in glossary.entries() if e.experiment}
    assert all(c.experiment in registered for c in every if c.experiment)


# --------------------------------------------------------------------------- cross-links


def test_every_entry_has_an_inbound_link():
    linked = {r for e in glossary.entries() for r in e.related}
    orphans = sorted(e.id for e in glossary.entries() if e.id not in linked)
    assert orphans == [], f"no entry lists these as related: {orphans}"


def test_attention_entries_link_each_other_and_gan_does_not_link_adversarial_examples():
    trio = ["attention-mechanism", "attention-layers", "attention-mechanisms"]
    for a in trio:
        for b in trio:
            if a != b:
                assert b in glossary.get(a).related, f"{a} does not link {b}"
    assert "adversarial-examples" not in glossary.get("gan").related
