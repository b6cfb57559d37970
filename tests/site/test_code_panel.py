"""The code panel of a term page: it shows our code only (decorated functions unwrapped, no path of the
machine the site was built on), and for a concept with a fast path the equations open first, with what
runs by default folded beneath them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import dlterms
from dlterms import glossary
from dlterms.site.build import _code_blocks, build_site
from dlterms.site.render import fast_path_of, source_of

# the concepts whose equations the panel shows first, and one object of their fast path folded beneath
EQUATIONS_FIRST = {
    "lstm": ("dlterms.nn.lstm_step", "dlterms.nn.recurrent._LSTMSequence"),
    "batch-normalization": (
        "dlterms.nn.normalization.batch_norm_equations",
        "dlterms.nn.normalization._BatchNormTrain",
    ),
    "cross-entropy": ("dlterms.losses.cross_entropy_equations", "dlterms.losses._CrossEntropyIndex"),
    "convolution": ("dlterms.nn.conv.conv_equations", "dlterms.nn.conv._ConvGemm"),
    "softmax": ("dlterms.nn.softmax_equations", "dlterms.nn.activations._Softmax"),
    "tsne": ("dlterms.methods.tsne.kl_gradient", "dlterms.methods.tsne._q_and_grad"),
    "spatial-transformer": (
        "dlterms.nn.spatial_transformer.grid_sample_equations",
        "dlterms.nn.spatial_transformer.grid_sample",
    ),
}


def _machine_paths() -> list[str]:
    roots = {str(Path(dlterms.__file__).resolve().parents[1]), sys.prefix, sys.base_prefix, str(Path.home())}
    return sorted(r for r in roots if len(r) > 1)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(out, tmp_path_factory.mktemp("no-results"))  # code panels do not depend on results
    return {p.stem: p.read_text(encoding="utf-8") for p in out.rglob("*.html")}


def test_no_page_shows_site_packages_or_an_absolute_path(pages):
    roots = _machine_paths()
    for name, page in pages.items():
        assert "site-packages" not in page, name
        assert "_contextlib" not in page, name  # torch.no_grad's wrapper, shown before unwrapping
        for root in roots:
            assert root not in page, (name, root)
        # a file label is a package-relative path, never an absolute one
        for label in re.findall(r'<span class="note">in ([^<]*)</span>', page):
            assert label.startswith("dlterms/") and not re.match(r"^([A-Za-z]:)?[\\/]", label), (name, label)


def test_decorated_functions_are_unwrapped():
    # init_forget_gate_bias_ is decorated with torch.no_grad(): the panel shows our function
    src, file = source_of("dlterms.nn.init_forget_gate_bias_")
    assert file == "dlterms/nn/recurrent.py"
    assert "def init_forget_gate_bias_" in src and "p[H : 2 * H] = value" in src


def test_every_code_block_of_every_entry_is_our_code():
    for e in glossary.entries():
        for block in _code_blocks(e):
            assert block["file"].startswith("dlterms/"), (e.id, block["path"], block["file"])
            for r in (block["fast"] or {"runs": []})["runs"]:
                assert r["file"].startswith("dlterms/"), (e.id, r["path"], r["file"])


@pytest.mark.parametrize("term", sorted(EQUATIONS_FIRST))
def test_the_equations_are_shown_first_and_the_fast_path_folded(term, pages):
    first, fast_marker = EQUATIONS_FIRST[term]
    entry = glossary.get(term)
    assert entry.code[0] == first
    page = pages[term]
    panel = page[page.index('<section class="code">') :]
    opened = panel.index("<details open>")
    assert panel.index(first.rsplit(".", 1)[-1], opened) < panel.index("What runs by default, and why")
    folded = panel[panel.index("What runs by default, and why") :]
    assert f"<code>{fast_marker}</code>" in folded


def test_every_fast_path_is_declared_on_equations_an_entry_shows():
    shown = {c for e in glossary.entries() for c in e.code}
    declared = [c for c in shown if fast_path_of(c) is not None]
    # softmax, log-softmax, batch norm, layer norm, the LSTM, convolution, cross-entropy, t-SNE's gradient, grid_sample
    assert len(declared) == 9, sorted(declared)
    for c in declared:
        saves, runs = fast_path_of(c)
        assert saves and runs
