"""The static site with parameters, sweeps, notebooks and non-default runs: a term page shows its
parameters table, its sweep figures with the question and the reading generated from the numbers, a
"Download notebook" link to the notebook the build wrote, and marks runs with non-default parameters;
the index and the coverage page count the sweep figures. Built from hand-made results (no run)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from markupsafe import escape as html_escape

from dlterms import params, sweep
from dlterms.results import Check, Result, save_result
from dlterms.run import config_class
from dlterms.site.build import build_site, internal_links

TERM = "quantization"


def _result(seed: int, acc: float, ok: bool, config=None) -> Result:
    return Result(
        term=TERM,
        number=78,
        title="Quantization",
        area="paradigms",
        status="passed" if ok else "failed",
        seconds=0.1,
        seed=seed,
        device="cpu",
        metrics={"int8_per_channel_acc": acc},
        key_metric="int8_per_channel_acc",
        checks=[Check("int8 loses at most 1 point", ok, observed=0.01, expected="<= 0.01")],
        config=config,
        default=config is None,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweepsite")
    results = root / "results"
    plan = sweep.Plan(TERM, "epochs", [2, 30], seeds=[0, 1], question="Does a less-trained model lose more?")
    runs = [
        _result(s, acc, ok, config={"epochs": e})
        for e, s, acc, ok in ((2, 0, 0.80, False), (2, 1, 0.82, True), (30, 0, 0.95, True), (30, 1, 0.97, True))
    ]
    sweep.save(sweep.summarize(plan, runs), results)
    cfg = params.build_config(config_class(TERM), {"epochs": 2})
    save_result(_result(0, 0.8, False, config=params.config_dict(cfg)), params.custom_dir(results, TERM, cfg))
    site = root / "site"
    build_site(site, results)
    return site


def test_term_page_has_parameters_sweep_reading_and_notebook(built):
    html = (built / "terms" / f"{TERM}.html").read_text(encoding="utf-8")
    for p in params.params(config_class(TERM)):
        assert f"<code>{p.name}</code>" in html and str(html_escape(p.help)) in html
    assert "Does a less-trained model lose more?" in html
    assert (
        f"../figures/sweeps/{TERM}-epochs.svg" in html
        and (built / "figures" / "sweeps" / f"{TERM}-epochs.svg").is_file()
    )
    assert "int8_per_channel_acc highest at epochs=30 (0.96 ± 0.0141)" in html
    assert "every check held at every seed for epochs = 30 only" in html
    assert f'href="../notebooks/{TERM}.ipynb"' in html and "Download notebook" in html
    nbformat.validate(nbformat.read(built / "notebooks" / f"{TERM}.ipynb", as_version=4))
    assert "non-default parameters" in html and "<code>epochs=2</code>" in html
    for link in internal_links(html):
        assert (built / "terms" / link.split("#")[0]).resolve().exists(), link


def test_index_and_coverage_count_the_sweeps(built):
    assert "1 sweep figures on 1 terms" in (built / "index.html").read_text(encoding="utf-8")
    cov = (built / "coverage.html").read_text(encoding="utf-8")
    assert "sweep figures: 1 on 1 terms" in cov and "<th>Sweeps</th>" in cov
