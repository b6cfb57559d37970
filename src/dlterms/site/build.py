"""Build the static website from the glossary entries and the saved results.

    out/index.html               areas, instant search (assets/search-index.js)
    out/terms/<id>.html          definition, related terms both ways, code, checks, metrics, figures,
                                 and over the saved seeds: "held on k/n seeds" per check, metric spreads
    out/coverage.html            100 rows: what exists for each term, seeds passed
    out/corrections.html         where the source article is wrong, claim by claim, with evidence
    out/figures/<id>-<name>.svg  copied from the results folder
    out/figures/sweeps/<id>-<name>.svg   the term's sweeps (results/sweeps/<id>/), each with its
                                 question and a reading generated from its numbers
    out/notebooks/<id>.ipynb     the term's Jupyter notebook (`dlterms.notebook`), linked from its page
    out/assets/                  CSS and scripts

Every link is relative, so the site works opened from disk, served, or published anywhere. The
whole site is written to a temporary folder beside `out` and swapped in by renames, so a reader
never sees half a site.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from dlterms import glossary
from dlterms.site import render

ASSETS = Path(__file__).with_name("assets")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and len(value) > 12:
        return json.dumps(value[:12])[:-1] + ", ...]"
    return str(value)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dlterms.site", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["fmt"] = _fmt
    env.filters["value_text"] = _value_text
    env.filters["summary_html"] = lambda e: Markup(render.inline_html(e.summary(keep_math=True)))
    return env


def _value_text(v) -> str:
    from dlterms.params import _text

    return _text(tuple(v) if isinstance(v, list) else v)


def _code_blocks(entry) -> list[dict]:
    blocks = []
    for path in entry.code:
        src, file = render.source_of(path)
        block = {"path": path, "file": file, "html": render.highlight_python(src), "fast": None}
        fast = render.fast_path_of(path)
        if fast is not None:  # the equations are shown open, what runs by default folded beneath
            saves, runs = fast
            block["fast"] = {
                "saves": saves,
                "runs": [{"path": p, "file": f, "html": render.highlight_python(s)} for p, s, f in runs],
            }
        blocks.append(block)
    return blocks


def search_index(entries) -> list[dict]:
    """What the in-page search needs: names and keywords, first sentence, the does line and the
    definition text."""
    return [
        {
            "id": e.id,
            "number": e.number,
            "title": e.title,
            "aliases": list(e.aliases),
            "keywords": list(e.keywords),
            "does": e.does or "",
            "area": e.area,
            "summary": e.summary(),
            "summary_html": render.inline_html(e.summary(keep_math=True)),
            "text": " ".join(e.definition.split()),
        }
        for e in entries
    ]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _parameters(entry) -> tuple[list, list]:
    """(declared parameters, declared sweeps) of the term's experiment; empty when it declares none
    or its module cannot be imported (the build goes on; the page has no parameters table)."""
    if not entry.experiment:
        return [], []
    import sys

    from dlterms.sweep import declared_parameters

    try:
        declared, sweeps = declared_parameters(entry.id)
        return list(declared), list(sweeps)
    except Exception as exc:  # noqa: BLE001 - one broken module must not stop the site
        print(f"dlterms site: warning: parameters of {entry.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return [], []


def _notebook(entry, folder: Path) -> str | None:
    """Write the term's notebook into `folder`; its file name, or None when it cannot be made."""
    if not entry.experiment:
        return None
    import sys

    from dlterms import notebook

    try:
        text = notebook.notebook_text(entry.id)
    except Exception as exc:  # noqa: BLE001 - the page then offers no notebook
        print(f"dlterms site: warning: notebook of {entry.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    _write(folder / f"{entry.id}.ipynb", text)
    return f"{entry.id}.ipynb"


def _custom(entry, results_dir: Path, figures: Path) -> list[dict]:
    """The term's runs with non-default parameters, their figures copied to
    `figures/custom/<id>/<tag>/` (what the served page shows beside the default run)."""
    from dlterms.results import custom_results

    found = []
    for tag, r in custom_results(results_dir, entry.id):
        kept = []
        for f in r.figures:
            src = results_dir / "custom" / entry.id / tag / f.path
            if src.is_file() and "/" not in f.path and "\\" not in f.path:
                (figures / "custom" / entry.id / tag).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, figures / "custom" / entry.id / tag / f.path)
                kept.append({"path": f"custom/{entry.id}/{tag}/{f.path}", "alt": f.alt})
        found.append({"tag": tag, "result": r, "figures": kept})
    return found


def _sweeps(entry, results_dir: Path, figures: Path) -> list[dict]:
    """The term's saved sweeps, their figures copied to `figures/sweeps/<id>-<name>.svg`."""
    from dlterms.sweep import load_sweeps, sweep_dir

    found = []
    for d in load_sweeps(results_dir, entry.id):
        if d.get("svg"):
            target = f"{entry.id}-{d['name']}.svg"
            (figures / "sweeps").mkdir(exist_ok=True)
            shutil.copyfile(sweep_dir(results_dir, entry.id) / d["svg"], figures / "sweeps" / target)
            d["figure"] = f"sweeps/{target}"
        found.append(d)
    return found


def build_site(out: Path | str = "site-build", results: Path | str = "results", notebooks: bool = True) -> Path:
    """Write the whole site to `out` (replacing what was there) and return the index path. With
    `notebooks` (the default), every term's notebook is written too."""
    from dlterms import __version__
    from dlterms.audit import coverage_rows
    from dlterms.results import load_results
    from dlterms.robustness import aggregate, format_seeds, load_seed_results

    out, results_dir = Path(out).resolve(), Path(results)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, got the file {out}")
    items = glossary.entries()
    by_id = {e.id: e for e in items}
    results_by_id = load_results(results_dir)
    # Over every saved seed (results/<id>.json and results/seeds/<S>/<id>.json): see dlterms.robustness.
    robust = {t: aggregate(rs, term=t) for t, rs in load_seed_results(results_dir).items() if rs}
    env = _environment()
    common = {
        "built": time.strftime("%Y-%m-%d %H:%M"),
        "n_entries": len(items),
        "n_results": len(results_by_id),
        "version": __version__,
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(ASSETS, tmp / "assets")
        _write(tmp / "assets" / "pygments.css", render.pygments_css())
        _write(
            tmp / "assets" / "search-index.js",
            "window.DLTERMS_INDEX = " + json.dumps(search_index(items), ensure_ascii=True) + ";\n",
        )

        # Figures: only those a saved result names, copied under the same file name.
        (tmp / "figures").mkdir()
        figures: dict[str, list] = {}
        for term, r in results_by_id.items():
            kept = []
            for f in r.figures:
                src = results_dir / f.path
                if src.is_file() and "/" not in f.path and "\\" not in f.path:
                    shutil.copyfile(src, tmp / "figures" / f.path)
                    kept.append(f)
            figures[term] = kept

        # "Referenced by": every entry that lists this one as related (links go both ways).
        backlinks: dict[str, list] = {e.id: [] for e in items}
        for e in items:
            for r in e.related:
                backlinks[r].append(e)

        term_tpl = env.get_template("term.html")
        sweeps_by_id: dict[str, int] = {}
        for e in items:
            declared, declared_sw = _parameters(e)
            sweeps = _sweeps(e, results_dir, tmp / "figures")
            sweeps_by_id[e.id] = sum(bool(d.get("figure")) for d in sweeps)
            nb = _notebook(e, tmp / "notebooks") if notebooks else None
            related = [by_id[r] for r in e.related]
            back = [b for b in backlinks[e.id] if b.id not in e.related]
            rob, result = robust.get(e.id), results_by_id.get(e.id)
            html = term_tpl.render(
                root="../",
                e=e,
                robustness=rob,
                seeds_text=format_seeds(rob.seeds) if rob else "",
                tallies=rob.tallies_for(result) if rob and result else None,
                definition_html=render.markdown_to_html(e.definition),
                related=related,
                backlinks=back,
                result=results_by_id.get(e.id),
                figures=figures.get(e.id, []),
                code=_code_blocks(e),
                parameters=declared,
                declared_sweeps=declared_sw,
                sweeps=sweeps,
                notebook=nb,
                custom=_custom(e, results_dir, tmp / "figures"),
                value_text=_value_text,
                **common,
            )
            _write(tmp / "terms" / f"{e.id}.html", html)
        n_sweeps = sum(sweeps_by_id.values())

        status = {t: r.status for t, r in results_by_id.items()}
        areas = [(a, [e for e in items if e.area == a]) for a in glossary.AREAS]
        _write(
            tmp / "index.html",
            env.get_template("index.html").render(
                root="",
                areas=areas,
                status=status,
                robust=robust,
                n_passed=sum(s == "passed" for s in status.values()),
                n_with_result=len(status),
                n_sweeps=n_sweeps,
                n_swept_terms=sum(n > 0 for n in sweeps_by_id.values()),
                **common,
            ),
        )

        groups = [(e, list(e.corrections)) for e in items if e.corrections]
        _write(
            tmp / "corrections.html",
            env.get_template("corrections.html").render(
                root="", groups=groups, n_corrections=sum(len(c) for _, c in groups), status=status, **common
            ),
        )

        rows = coverage_rows(results_dir)
        totals = {
            k: sum(bool(r[k]) for r in rows) for k in ("definition", "code", "reference_test", "experiment", "figure")
        }
        totals["passed"] = sum(r["last_result"] == "passed" for r in rows)
        totals["passed_on_every_seed"] = sum(
            bool(r["robustness"]) and r["robustness"]["passed"] == r["robustness"]["of"] for r in rows
        )
        totals["sweep_figures"] = n_sweeps
        _write(
            tmp / "coverage.html",
            env.get_template("coverage.html").render(root="", rows=rows, totals=totals, sweeps=sweeps_by_id, **common),
        )
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"


class _LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links.extend(v for k, v in attrs if k in ("href", "src") and v)


def internal_links(html: str) -> list[str]:
    """The relative href/src targets of a page (what must exist for the site to have no broken link)."""
    p = _LinkParser()
    p.feed(html)
    return [u for u in p.links if not urlparse(u).scheme and not u.startswith(("#", "//"))]


def _swap_in(new: Path, out: Path) -> None:
    """Replace `out` by `new` with renames: the old site stays complete until the new one is whole."""
    new.chmod(0o755)
    if not out.exists():
        new.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{time.time_ns()}")
    out.rename(old)
    try:
        new.rename(out)
    except BaseException:
        old.rename(out)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)
