"""The glossary registry: all 100 entries, consistent, matching shared/terms.tsv, and look-ups."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from dlterms import glossary
from dlterms.glossary.registry import GlossaryError, load, parse_entry

# A copy of shared/terms.tsv, the list every entry's number, id, title and area must match.
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
    assert glossary.validate(deep=True) == []


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
