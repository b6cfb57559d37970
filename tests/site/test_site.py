"""The static site: it builds, escapes what it shows, has no broken internal link, and the
question search ranks the right term on the evaluation set."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest

from dlterms import glossary
from dlterms.run import Check, Result, save_result
from dlterms.site.build import build_site, internal_links
from dlterms.site.render import markdown_to_html


@pytest.fixture(scope="module")
def site(tmp_path_factory, suite_results) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(out, suite_results)
    return out


def test_site_has_every_page(site):
    assert (site / "index.html").exists() and (site / "coverage.html").exists()
    pages = sorted(p.stem for p in (site / "terms").glob("*.html"))
    assert pages == sorted(e.id for e in glossary.entries())
    coverage = (site / "coverage.html").read_text()
    assert len(re.findall(r'<a href="terms/', coverage)) == 100


def test_no_broken_internal_link_anywhere(site):
    broken = []
    for page in site.rglob("*.html"):
        for link in internal_links(page.read_text(encoding="utf-8")):
            target = (page.parent / unquote(link.split("#")[0].split("?")[0])).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {link}")
    assert not broken, "\n".join(broken[:20])


def test_related_terms_link_both_ways(site):
    e = glossary.get("dropout")
    page = (site / "terms" / "dropout.html").read_text()
    for r in e.related:
        assert f'href="{r}.html"' in page
    for other in glossary.entries():
        if "dropout" in other.related and other.id not in e.related:
            assert f'href="{other.id}.html"' in page, f"{other.id} lists dropout but is not linked back"


def test_term_page_shows_checks_and_figures(site, suite_results):
    from dlterms.run import load_results

    results = load_results(suite_results)
    with_figure = [r for r in results.values() if r.figures]
    assert with_figure, "no saved result has a figure"
    r = with_figure[0]
    page = (site / "terms" / f"{r.term}.html").read_text()
    assert '<table class="checks">' in page and f"dlterms run {r.term}" in page
    for f in r.figures:
        assert f'src="../figures/{f.path}"' in page and (site / "figures" / f.path).exists()
        assert 'alt="' in page


def test_everything_shown_is_escaped(tmp_path):
    results = tmp_path / "results"
    save_result(
        Result(
            term="auc",
            number=43,
            title="AUC",
            area="evaluation",
            status="failed",
            seconds=1.0,
            seed=0,
            device="cpu",
            metrics={"<b>m</b>": 1.0},
            checks=[Check("<script>alert('x')</script>", False, "<img src=x onerror=alert(1)>", "<i>")],
        ),
        results,
    )
    build_site(tmp_path / "site", results)
    page = (tmp_path / "site" / "terms" / "auc.html").read_text()
    assert "<script>alert(" not in page and "&lt;script&gt;alert(" in page
    assert "<img src=x" not in page and "&lt;b&gt;m&lt;/b&gt;" in page
    assert "&lt;script&gt;" in markdown_to_html("<script>x</script>")


def test_math_becomes_mathml():
    html = markdown_to_html(r"softmax $\frac{e^{z_i}}{\sum_j e^{z_j}}$ and a_b_c")
    assert "<math" in html and "<mfrac>" in html and "a_b_c" in html


def test_rebuild_replaces_the_old_site_whole(tmp_path, suite_results):
    out = tmp_path / "site"
    build_site(out, suite_results)
    (out / "stale.html").write_text("old")
    build_site(out, suite_results)
    assert not (out / "stale.html").exists() and (out / "index.html").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["site"], "temporary folders left behind"


def test_build_refuses_a_file_as_out(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="out must be a folder"):
        build_site(f, tmp_path)


def test_question_search_accuracy_on_the_evaluation_set():
    from dlterms.site import semantic

    questions = semantic.load_questions()
    assert len(questions) >= 100
    ids = {e.id for e in glossary.entries()}
    assert all(t in ids for _, t in questions)
    report = semantic.evaluate()
    print(f"question search: top-1 {report['top1']:.3f}, top-3 {report['top3']:.3f} on {report['n']} questions")
    assert report["top3"] >= 0.88, report["misses"]
    assert report["top1"] >= 0.70


def test_search_falls_back_to_keywords_with_a_notice(monkeypatch, capsys):
    from dlterms.cli import main
    from dlterms.site import semantic

    def unavailable(*a, **k):
        raise semantic.ModelUnavailable("no model files")

    monkeypatch.setattr(semantic, "search", unavailable)
    assert main(["search", "dropout", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "keyword ranking" in err and '"dropout"' in out


def test_cli_site_command(tmp_path, suite_results, capsys):
    from dlterms.cli import main

    shutil.copytree(suite_results, tmp_path / "r")
    assert main(["site", "--out", str(tmp_path / "s"), "--results", str(tmp_path / "r")]) == 0
    assert "site written to" in capsys.readouterr().out


def test_corrections_page_lists_every_correction_with_its_links(site):
    from markupsafe import escape

    page = (site / "corrections.html").read_text(encoding="utf-8")
    every = [(e, c) for e in glossary.entries() for c in e.corrections]
    assert len(every) >= 50
    assert page.count('<div class="correction">') == len(every)
    for e, c in every:
        assert f'id="{e.id}"' in page and f'href="terms/{e.id}.html"' in page
        assert str(escape(c.source)) in page and str(escape(c.truth)) in page and str(escape(c.evidence)) in page
        if c.experiment:
            assert f'href="terms/{c.experiment}.html#experiment"' in page
    assert 'href="corrections.html"' in (site / "index.html").read_text(encoding="utf-8")
    term = (site / "terms" / "pooling.html").read_text(encoding="utf-8")
    assert 'href="../corrections.html#pooling"' in term and 'id="experiment"' in term
    assert "corrections.html" not in (site / "terms" / "epoch.html").read_text(encoding="utf-8").split("<main>")[1]


def test_term_page_shows_keywords_as_includes_and_aliases_as_also_called(site):
    page = (site / "terms" / "optimizer.html").read_text(encoding="utf-8")
    also = re.search(r'<p class="aliases">Also called: ([^<]*)</p>', page).group(1)
    includes = re.search(r'<p class="keywords">Includes: ([^<]*)</p>', page).group(1)
    assert "Adam" not in also and "Adam" in includes.split(", ")
    bias = (site / "terms" / "bias.html").read_text(encoding="utf-8")
    assert 'class="keywords"' not in bias  # no keywords, no "Includes" line


def test_search_index_carries_keywords_and_does(site):
    import json

    text = (site / "assets" / "search-index.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("[") : text.rindex("]") + 1])
    by_id = {e["id"]: e for e in index}
    assert "Adam" in by_id["optimizer"]["keywords"] and by_id["optimizer"]["does"]
