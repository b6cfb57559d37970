"""The `dlterms` command line.

    dlterms list [--area A] [--json]
    dlterms show TERM [--json]
    dlterms search WORDS... [--json] [--limit N]
    dlterms run TERM... | --area A | --all  [--jobs N] [--seed S | --seeds SPEC] [--device cpu|cuda|auto]
                [--out DIR] [--json] [--set NAME=VALUE ...]
    dlterms sweep TERM --set NAME=V1,V2,... [--by NAME=V1,V2,...] | TERM --declared | --all-declared
                [--seeds SPEC] [--metric M] [--jobs N] [--device D] [--out DIR] [--json]
    dlterms notebook TERM [--out PATH]
    dlterms robustness [--results DIR] [--json] [--seeds SPEC]
    dlterms coverage [--json] [--results DIR]
    dlterms summary [--results DIR]
    dlterms site [--out DIR] [--results DIR]
    dlterms serve [--host H] [--port N] [--results DIR]

`main(argv)` returns the exit code (tests call it directly); `entrypoint()` is the console script.
Exit codes: 0 success (for `run`: every check of every run passed), 1 a check failed or an
experiment raised, 2 a usage error (unknown term, bad option, bad device, an output folder that
cannot be written, a file where a folder is wanted), printed as one line on stderr naming the
argument and the value, with no traceback. A results file that is truncated or corrupt is reported
on stderr (one line each) and skipped.

`run --seeds SPEC` (a range `0-4`, a list `0,2,7`, or both `0-2,5`) runs every (term, seed) pair
as its own job; seed 0 is saved at `<out>/<id>.json` (what the site shows) and seed S at
`<out>/seeds/<S>/<id>.json` (see `dlterms.run`). `robustness` reads them back: per term the seeds
found, per check on how many seeds it held, per metric mean, std, min and max (`dlterms.robustness`).
Its exit code is 0 when every check held on every seed found, else 1; with `--seeds SPEC` it reads
only those seeds and a registered experiment lacking one of them fails too.

`run --set NAME=VALUE` (repeatable) changes a declared parameter (`dlterms show TERM` lists them, see
`dlterms.params`): the value is parsed by the parameter's type, an unknown name gets "did you mean",
and the run is saved under `<out>/custom/<id>/<tag>/`, never over the default result. Its checks still
run and decide the exit code; the summary calls such a run "non-default parameters", not a
regression. `sweep` runs a grid of values x seeds (each its own job over `--jobs`) and saves
`<out>/sweeps/<id>/<name>.json` and `.svg` (see `dlterms.sweep`); its exit code is 0 when every run
finished (a check that fails under other parameters is what the sweep shows), 1 when one raised.
`notebook` writes the term's Jupyter notebook (see `dlterms.notebook`).

Imports are lazy: `list` and `search` never import torch (`show` imports the term's experiment
module to read its parameters).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_SEED = 2**32 - 1


class UsageError(Exception):
    """A mistake in how the command was called; printed as one line, exit 2."""


# --------------------------------------------------------------------------- argument checks
# Each returns the checked value or raises UsageError naming the argument and the value.


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _path(arg: str, value: str) -> Path:
    if not value or "\0" in value:
        raise UsageError(f"{arg} must name a folder, got {value!r}")
    return Path(value)


def _is_dir(arg: str, value: str, path: Path) -> bool:
    """Whether `path` is an existing folder; UsageError when it exists as something else."""
    try:
        if not path.exists():
            return False
        if not path.is_dir():
            raise UsageError(f"{arg} {value!r} is a file, not a folder")
    except OSError as exc:
        raise UsageError(f"{arg} {value!r}: {_reason(exc)}") from None
    return True


def _writable_dir(arg: str, value: str, path: Path, what: str = "the folder") -> None:
    """Create `path` if needed and prove that a file can be made in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{arg} {value!r}: cannot create {what} ({_reason(exc)})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".dlterms-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{arg} {value!r}: cannot write in {what} ({_reason(exc)})") from None


def out_folder(arg: str, value: str) -> Path:
    """A folder results go into: created when missing; it must be a folder and writable."""
    path = _path(arg, value)
    _is_dir(arg, value, path)
    _writable_dir(arg, value, path)
    return path


def in_folder(arg: str, value: str) -> Path:
    """A folder to read results from: may be missing (no results yet), must not be a file."""
    path = _path(arg, value)
    _is_dir(arg, value, path)
    return path


def site_folder(arg: str, value: str, results: Path) -> Path:
    """A folder the site builder replaces whole: new, empty or an earlier build (index.html and assets/),
    never one holding the results or the current folder, and its parent writable."""
    path = _path(arg, value)
    if _is_dir(arg, value, path):
        try:
            names = {p.name for p in path.iterdir()}
        except OSError as exc:
            raise UsageError(f"{arg} {value!r}: {_reason(exc)}") from None
        if names and not ({"index.html", "assets"} <= names):
            raise UsageError(
                f"{arg} {value!r} is a folder that is not a dlterms site; it would be replaced: "
                "give a new or empty folder"
            )
    try:
        full = path.resolve()
        inside = [
            n
            for n, p in (("the results folder", results), ("the current folder", Path.cwd()))
            if p.resolve().is_relative_to(full)
        ]
    except (OSError, RuntimeError) as exc:
        raise UsageError(f"{arg} {value!r}: {exc}") from None
    if inside:
        raise UsageError(f"{arg} {value!r} holds {inside[0]}; the site build would replace it")
    _writable_dir(arg, value, full.parent, what=f"its parent folder {str(full.parent)!r}")
    return path


def _seed(value: int) -> int:
    if not 0 <= value <= MAX_SEED:
        raise UsageError(f"--seed must be in 0..{MAX_SEED}, got {value}")
    return value


def _warn_bad_results(folder: Path) -> None:
    """One line on stderr for each results file that cannot be read (it is skipped)."""
    from dlterms.results import scan_results

    for path, problem in scan_results(folder)[1]:
        print(f"dlterms: warning: skipped {_one_line(f'{path}: {problem}')}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)

    def parse_args(self, args=None, namespace=None):
        args, extras = self.parse_known_args(args, namespace)
        if extras:  # quoted, so that an empty or odd argument is visible
            raise UsageError(f"unrecognized arguments: {' '.join(map(repr, extras))}")
        return args


def _one_line(message: str) -> str:
    """`message` with newlines and other unprintable characters escaped: it stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def _parser() -> argparse.ArgumentParser:
    from dlterms.glossary import AREAS

    p = _Parser(prog="dlterms", description="An executable deep-learning glossary.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    s = sub.add_parser("list", help="list the 100 terms")
    s.add_argument("--area", choices=AREAS, action="append", help="only this area (repeatable)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")

    s = sub.add_parser("show", help="show one term: definition, code, checks, last result")
    s.add_argument("term", help="id, number, title or alias")
    s.add_argument("--results", default="results", help="folder of saved results (default: results)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("search", help="search titles, aliases and definitions")
    s.add_argument("words", nargs="+")
    s.add_argument("--json", action="store_true")
    s.add_argument("--limit", type=int, default=10)
    s.add_argument("--keywords", action="store_true", help="keyword ranking only (no language model)")

    s = sub.add_parser("run", help="run experiments and print a summary")
    s.add_argument("terms", nargs="*", help="ids, numbers, titles or aliases")
    s.add_argument("--area", choices=AREAS, action="append", help="every experiment of an area (repeatable)")
    s.add_argument("--all", action="store_true", help="every registered experiment")
    s.add_argument("--jobs", type=int, default=1, help="experiments run side by side (processes)")
    s.add_argument("--seed", type=int, default=None, help="one seed (default 0)")
    s.add_argument("--seeds", metavar="SPEC", help="several seeds, each (term, seed) its own job: 0-4 or 0,2,7")
    s.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    s.add_argument("--out", default="results", help="folder for results (default: results)")
    s.add_argument("--json", action="store_true", help="print the Results as JSON")
    s.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        default=[],
        help="change a declared parameter (repeatable); the run is saved under <out>/custom/",
    )

    s = sub.add_parser("sweep", help="run an experiment over a grid of parameter values and seeds, draw it")
    s.add_argument("term", nargs="?", help="id, number, title or alias")
    s.add_argument(
        "--set",
        metavar="NAME=V1,V2,...",
        action="append",
        default=[],
        help="the parameter to sweep and its values; repeat with one value to fix another parameter",
    )
    s.add_argument("--by", metavar="NAME=V1,V2,...", help="a second parameter: one line per value")
    s.add_argument("--declared", action="store_true", help="the sweeps the term's experiment declares")
    s.add_argument("--all-declared", action="store_true", help="every experiment's declared sweeps")
    s.add_argument("--seeds", metavar="SPEC", help="seeds of each point (default 0-2, or the declared ones)")
    s.add_argument("--metric", help="the metric drawn (default: the experiment's key metric)")
    s.add_argument("--jobs", type=int, default=1, help="runs side by side (processes)")
    s.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    s.add_argument("--out", default="results", help="results folder; the sweep goes in <out>/sweeps/<id>/")
    s.add_argument("--json", action="store_true", help="print the sweeps as JSON")

    s = sub.add_parser("notebook", help="write the term's Jupyter notebook")
    s.add_argument("term", help="id, number, title or alias")
    s.add_argument("--out", help="the .ipynb file to write (default: <id>.ipynb)")

    s = sub.add_parser("robustness", help="per term: checks held and metric spread over the saved seeds")
    s.add_argument("--results", default="results", help="folder of saved results (default: results)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument(
        "--seeds",
        metavar="SPEC",
        help="only these seeds, and every experiment must have each of them (a missing one fails)",
    )

    s = sub.add_parser("coverage", help="what exists for each term")
    s.add_argument("--json", action="store_true")
    s.add_argument("--results", default="results")

    s = sub.add_parser("summary", help="the summary table of saved results")
    s.add_argument("--results", default="results")

    s = sub.add_parser("site", help="build the static website")
    s.add_argument("--out", default="site-build")
    s.add_argument("--results", default="results")

    s = sub.add_parser("serve", help="serve the website with question search and experiment runs")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--results", default="results")
    s.add_argument("--site", default="site-build")
    return p


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _get_entry(name: str):
    from dlterms import glossary

    if re.fullmatch(r"\s*[+-]?[0-9]+\s*", name) and not 1 <= int(name) <= len(glossary.entries()):
        raise UsageError(f"term numbers run from 1 to {len(glossary.entries())}, got {name.strip()}")
    try:
        return glossary.get(name)
    except glossary.UnknownTermError as exc:
        raise UsageError(str(exc)) from None


# --------------------------------------------------------------------------- commands


def cmd_list(args) -> int:
    from dlterms import glossary

    items = [e for e in glossary.entries() if not args.area or e.area in args.area]
    rows = [
        {
            "number": e.number,
            "id": e.id,
            "title": e.title,
            "area": e.area,
            "implemented": e.implemented,
            "experiment": bool(e.experiment),
        }
        for e in items
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    from rich.table import Table

    t = Table(title=f"{len(rows)} terms", show_lines=False)
    for col in ("#", "id", "title", "area", "code", "experiment"):
        t.add_column(col, justify="right" if col == "#" else "left")
    for r in rows:
        t.add_row(
            str(r["number"]),
            r["id"],
            r["title"],
            r["area"],
            "yes" if r["implemented"] else "-",
            "yes" if r["experiment"] else "-",
        )
    _console().print(t)
    return EXIT_OK


def cmd_show(args) -> int:
    from dlterms import glossary
    from dlterms.results import ResultFileError, load_result

    e = _get_entry(args.term)
    try:
        result = load_result(e.id, in_folder("--results", args.results))
    except ResultFileError as exc:
        print(f"dlterms: warning: skipped {_one_line(str(exc))}", file=sys.stderr)
        result = None
    rob = _robustness_of(e.id, Path(args.results))
    declared, sweeps = _declared_params(e)
    custom = _custom_results(e.id, Path(args.results))
    if args.json:
        d = e.to_dict()
        d["result"] = result.to_dict() if result else None
        d["robustness"] = rob.to_dict() if rob else None
        d["config"] = {p.name: p.to_dict() for p in declared} if declared is not None else None
        d["sweeps"] = [_sweep_dict(sw) for sw in sweeps]
        d["custom_results"] = [
            {
                "config": r.config,
                "changed": changed,
                "status": r.status,
                "passed": r.n_passed,
                "checks": len(r.checks),
                "seed": r.seed,
            }
            for changed, r in custom
        ]
        print(json.dumps(d, indent=1))
        return EXIT_OK
    from rich.markdown import Markdown

    c = _console()
    c.print(f"[bold]{e.number}. {e.title}[/bold]  ({e.id}, area {e.area})")
    if e.aliases:
        c.print(f"also: {', '.join(e.aliases)}")
    if e.keywords:
        c.print(f"includes: {', '.join(e.keywords)}", markup=False)
    c.print(Markdown(e.definition))
    c.print()
    if e.related:
        c.print("related: " + ", ".join(f"{r} ({glossary.get(r).title})" for r in e.related))
    c.print("code: " + (", ".join(e.code) if e.code else "not written yet"))
    c.print("experiment: " + (f"dlterms run {e.id}" if e.experiment else "not written yet"))
    if declared:
        from rich.table import Table

        t = Table(title=f"parameters (dlterms run {e.id} --set NAME=VALUE)", title_justify="left")
        for col in ("name", "type", "default", "help"):
            t.add_column(col, overflow="fold")
        for p in declared:
            t.add_row(p.name, p.type, _value_text(p.default), p.help, style=None)
        c.print(t, markup=False)
    elif declared is not None:
        c.print("parameters: none declared")
    for sw in sweeps:
        by = f" by {sw.by}={','.join(map(_value_text, sw.by_values))}" if sw.by else ""
        c.print(
            f"sweep: {sw.param}={','.join(map(_value_text, sw.values))}{by}, seeds "
            f"{','.join(map(str, sw.seeds))}: {sw.question}",
            markup=False,
        )
    if result is not None:
        c.print(
            f"last result: {result.status}, {result.n_passed}/{len(result.checks)} checks, "
            f"{result.seconds:.1f} s, seed {result.seed}, {result.device}"
            + ("" if result.default else f", non-default parameters: {_changed_text(result)}")
        )
        tallies = rob.tallies_for(result) if rob else [None] * len(result.checks)
        for ch, tally in zip(result.checks, tallies, strict=True):
            held = f"; held on {tally.held}/{tally.of} seeds" if tally else ""
            c.print(check_line(ch, markup=True) + held)
    for changed, r in custom:
        c.print(
            f"run with non-default parameters {changed}: {r.status}, "
            f"{r.n_passed}/{len(r.checks)} checks, seed {r.seed}",
            markup=False,
        )
    if rob is not None:
        c.print(_robustness_line(rob))
        shown = {t.key for t in rob.tallies_for(result) if t} if result is not None else set()
        for t in rob.checks:
            if t.key not in shown:
                c.print(f"  {t.claim}: held on {t.held}/{t.of} seeds")
    return EXIT_OK


def check_line(ch, markup: bool = False) -> str:
    """How the CLI prints one check: '  pass <claim>: observed <x> (expected <y>)' (FAIL when it did
    not hold). `dlterms.notebook` prints a notebook's checks with it too."""
    if markup:
        from rich.markup import escape

        mark = "[green]pass[/green]" if ch.passed else "[red]FAIL[/red]"
        return f"  {mark} {escape(f'{ch.claim}: observed {ch.observed} (expected {ch.expected})')}"
    mark = "pass" if ch.passed else "FAIL"
    return f"  {mark} {ch.claim}: observed {ch.observed} (expected {ch.expected})"


def _value_text(v) -> str:
    from dlterms.params import _text

    return _text(tuple(v) if isinstance(v, list) else v)


def _changed_text(result) -> str:
    """'p=0.2, epochs=10': a non-default Result's changed parameters, against the declared defaults."""
    from dlterms import params
    from dlterms.run import config_class

    try:
        cls = config_class(result.term)
        if cls is not None and result.config is not None:
            return params.describe(params.build_config(cls, result.config, term=result.term)) or "?"
    except (ValueError, LookupError, ImportError):
        pass
    return ", ".join(f"{k}={_value_text(v)}" for k, v in (result.config or {}).items())


def _declared_params(entry):
    """(the declared parameters, None when the experiment declares none; its declared sweeps)."""
    if not entry.experiment:
        return None, ()
    from dlterms import params
    from dlterms.run import config_class, declared_sweeps

    try:
        cls = config_class(entry.id)
    except (LookupError, ImportError) as exc:
        print(f"dlterms: warning: cannot read the parameters of {entry.id}: {_one_line(str(exc))}", file=sys.stderr)
        return None, ()
    if cls is None:
        return None, ()
    return params.params(cls), declared_sweeps(entry.id)


def _sweep_dict(sw) -> dict:
    from dlterms.sweep import _json

    return {
        "param": sw.param,
        "values": [_json(v) for v in sw.values],
        "by": sw.by,
        "by_values": [_json(v) for v in sw.by_values],
        "seeds": list(sw.seeds),
        "metric": sw.metric,
        "question": sw.question,
    }


def _custom_results(term_id: str, results: Path) -> list:
    """(changed parameters as text, Result) of each saved run of `term_id` with non-default
    parameters (`<results>/custom/<id>/<tag>/<id>.json`)."""
    from dlterms.results import custom_results

    return [(_changed_text(r), r) for _, r in custom_results(results, term_id)]


def _robustness_of(term_id: str, results: Path):
    """The term's Robustness over the seeds saved in `results`, or None when there is none."""
    from dlterms.robustness import aggregate, load_seed_results

    by_seed = load_seed_results(results, term=term_id).get(term_id)
    return aggregate(by_seed, term=term_id) if by_seed else None


def _robustness_line(rob) -> str:
    """'robustness over seeds 0-4: every check held on 4/5 seeds; key metric acc: 0.771 ± 0.012, ...'"""
    from dlterms.robustness import format_seeds

    colour = "green" if rob.holds_everywhere else "red"
    line = (
        f"robustness over seeds {format_seeds(rob.seeds)}: every check held on "
        f"[{colour}]{rob.n_passed}/{rob.n_seeds}[/{colour}] seeds"
    )
    spread = rob.key_spread
    if spread is not None:
        line += f"; key metric {rob.key_metric}: {spread.text()}"
    return line


def _search(query: str, limit: int, keywords_only: bool):
    """Semantic search when the site's semantic engine is available, else keywords with a notice."""
    from dlterms.glossary.search import keyword_search

    if not keywords_only:
        try:
            from dlterms.site import semantic  # written with the website
        except ImportError:
            semantic = None
        if semantic is not None:
            try:
                return semantic.search(query, limit=limit), None
            except semantic.ModelUnavailable as exc:  # type: ignore[attr-defined]
                return keyword_search(query, limit), f"notice: language model unavailable ({exc}); keyword ranking"
    return keyword_search(query, limit), None


def cmd_search(args) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    query = " ".join(args.words)
    if not query.strip():
        raise UsageError("search needs at least one word")
    hits, notice = _search(query, args.limit, args.keywords)
    if notice:
        print(notice, file=sys.stderr)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=1))
        return EXIT_OK
    if not hits:
        print(f"no term matches {query!r}")
        return EXIT_OK
    from rich.table import Table

    t = Table(title=f"search: {query}")
    t.add_column("score", justify="right")
    t.add_column("id")
    t.add_column("title")
    t.add_column("summary", overflow="fold")
    for h in hits:
        t.add_row(f"{h.score:.2f}", h.id, h.title, h.summary)
    _console().print(t)
    return EXIT_OK


def _select_terms(args) -> list[str]:
    from dlterms import glossary

    chosen: list[str] = []
    if args.all:
        chosen = [e.id for e in glossary.entries() if e.experiment]
    for area in args.area or []:
        chosen += [e.id for e in glossary.entries(area) if e.experiment]
    for name in args.terms:
        e = _get_entry(name)
        if not e.experiment:
            raise UsageError(f"term {e.id!r} has no experiment yet (see `dlterms coverage`)")
        chosen.append(e.id)
    if not (args.all or args.area or args.terms):
        raise UsageError("name at least one term, or use --area A or --all")
    seen: list[str] = []
    for t in chosen:
        if t not in seen:
            seen.append(t)
    if not seen:
        raise UsageError("no experiments are registered for that selection")
    return seen


def _summary_table(results, title: str, show_seed: bool = False, robustness: dict | None = None):
    """One row per Result; `show_seed` adds its seed, `robustness` ({term: Robustness}) adds on how
    many of the saved seeds the term passed every check."""
    from rich.table import Table

    t = Table(title=title)
    cols = [("#", "right"), ("term", "left")]
    if show_seed:
        cols.append(("seed", "right"))
    cols += [("status", "left"), ("checks", "right"), ("key metric", "left"), ("seconds", "right")]
    if robustness:
        cols.append(("seeds", "right"))
    for col, just in cols:
        t.add_column(col, justify=just)
    for r in results:
        style = {"passed": "green", "failed": "red", "error": "bold red"}[r.status]
        key = ""
        if r.key_metric and r.key_metric in r.metrics:
            v = r.metrics[r.key_metric]
            key = f"{r.key_metric} = {v:.4g}" if isinstance(v, int | float) else f"{r.key_metric} = {v}"
        cells = [str(r.number), r.term]
        if show_seed:
            cells.append(str(r.seed))
        status = f"[{style}]{r.status}[/{style}]"
        if not getattr(r, "default", True):
            status += " [yellow](non-default parameters)[/yellow]"
        cells += [status, f"{r.n_passed}/{len(r.checks)}", key, f"{r.seconds:.1f}"]
        if robustness:
            rob = robustness.get(r.term)
            cells.append(f"{rob.n_passed}/{rob.n_seeds}" if rob else "-")
        t.add_row(*cells)
    return t


def _robustness_table(robs, title: str):
    """Per term: seeds, on how many every check held, its least robust check, its key metric's spread."""
    from rich.markup import escape
    from rich.table import Table

    from dlterms import glossary
    from dlterms.robustness import format_seeds

    t = Table(title=title)
    for col, just in (
        ("#", "right"),
        ("term", "left"),
        ("seeds", "left"),
        ("passed", "right"),
        ("checks always held", "right"),
        ("least robust check", "left"),
        ("key metric over seeds", "left"),
    ):
        t.add_column(col, justify=just, overflow="fold")
    for rob in robs:
        try:
            number = str(glossary.get(rob.id).number)
        except LookupError:
            number = "?"
        style = "green" if rob.holds_everywhere else "red"
        weakest = min(rob.checks, key=lambda c: c.held, default=None)
        weak = "-" if weakest is None or weakest.always else f"{weakest.held}/{weakest.of}: {escape(weakest.claim)}"
        spread = rob.key_spread
        key = f"{rob.key_metric} = {spread.text()}" if spread is not None else "-"
        t.add_row(
            number,
            rob.id,
            format_seeds(rob.seeds),
            f"[{style}]{rob.n_passed}/{rob.n_seeds}[/{style}]",
            f"{sum(c.always for c in rob.checks)}/{len(rob.checks)}",
            weak,
            key,
        )
    return t


def _print_robustness(robs, title: str) -> None:
    """The robustness table, then every check that did not hold on every seed, with those seeds."""
    from rich.markup import escape

    c = _console()
    c.print(_robustness_table(robs, title))
    for rob in robs:
        for ch in rob.checks:
            if not ch.always:
                seeds = ", ".join(map(str, ch.failed_seeds))
                c.print(f"[red]{rob.id}: held on {ch.held}/{ch.of} seeds (not at {seeds}): {escape(ch.claim)}[/red]")
    n_ok = sum(r.holds_everywhere for r in robs)
    c.print(f"{n_ok}/{len(robs)} terms pass every check on every seed found")


def _seeds_of(args) -> tuple[int, list[int] | None]:
    """(the single seed, or the list of seeds of `--seeds SPEC`, None without it)."""
    if args.seeds is not None and args.seed is not None:
        raise UsageError("use --seed S or --seeds SPEC, not both")
    if args.seed is not None:
        _seed(args.seed)
    if args.seeds is None:
        return (args.seed if args.seed is not None else 0), None
    from dlterms.robustness import parse_seeds

    try:
        return 0, parse_seeds(args.seeds)
    except ValueError as exc:
        raise UsageError(f"--seeds: {exc}") from None


def _overrides(term_ids: list[str], specs: list[str]) -> dict[str, str]:
    """`--set NAME=VALUE` texts as {name: text}, checked against every term's declared parameters."""
    from dlterms import params
    from dlterms.run import config_class

    overrides: dict[str, str] = {}
    for spec in specs:
        name, eq, value = spec.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--set takes NAME=VALUE, got {spec!r}")
        if name.strip() in overrides:
            raise UsageError(f"--set gives {name.strip()!r} twice")
        overrides[name.strip()] = value
    for t in term_ids if overrides else []:
        cls = config_class(t)
        if cls is None:
            raise UsageError(f"--set: experiment {t!r} declares no parameters")
        try:
            params.build_config(cls, overrides, term=t)
        except ValueError as exc:
            raise UsageError(f"--set: {exc}") from None
    return overrides


@contextlib.contextmanager
def _progress_bars(n_jobs: int, name):
    """Progress bars on stderr, one per job and one for all: yields (progress, on_result) callbacks for
    `run_many`; `name(result)` labels a finished job as its progress messages did."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console(stderr=True)
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[msg]}"),
        console=console,
        transient=False,
    ) as bar:
        overall = bar.add_task(f"all ({n_jobs})", total=n_jobs, msg="")
        tasks: dict[str, int] = {}

        def progress(term: str, fraction: float, message: str) -> None:
            if term not in tasks:
                tasks[term] = bar.add_task(term, total=1.0, msg="")
            bar.update(tasks[term], completed=fraction, msg=message[:40])

        def on_result(r) -> None:
            label = name(r)
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=1.0, msg="")
            bar.update(tasks[label], completed=1.0, msg=f"{r.status} {r.n_passed}/{len(r.checks)}")
            bar.advance(overall)

        yield progress, on_result


def cmd_run(args) -> int:
    from dlterms.run import pair_label, resolve_device, run_many, seed_dir

    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    seed, seeds = _seeds_of(args)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    terms = _select_terms(args)
    overrides = _overrides(terms, args.set)
    out = out_folder("--out", args.out)
    n_jobs = len(terms) * (len(seeds) if seeds else 1)

    def name(r) -> str:
        return pair_label(r.term, r.seed) if seeds else r.term

    def folder_of(r) -> Path:
        where = seed_dir(out, r.seed) if seeds else out
        if not r.default:
            from dlterms import params
            from dlterms.run import config_class

            where = params.custom_dir(where, r.term, params.build_config(config_class(r.term), r.config))
        return where

    t0 = time.perf_counter()
    config = overrides or None
    if args.json:
        results = run_many(terms, jobs=args.jobs, seed=seed, seeds=seeds, device=device, out=out, config=config)
        print(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        with _progress_bars(n_jobs, name) as (progress, on_result):
            results = run_many(
                terms,
                jobs=args.jobs,
                seed=seed,
                seeds=seeds,
                device=device,
                out=out,
                progress=progress,
                on_result=on_result,
                config=config,
            )
        wall = time.perf_counter() - t0
        c = _console()
        what = f"{len(results)} runs ({len(terms)} experiments x {len(seeds)} seeds)" if seeds else None
        what = what or f"{len(results)} experiments"
        custom = [r for r in results if not r.default]
        where = f"results in {out}/" if not custom else f"results in {folder_of(custom[0]).parent}/"
        c.print(_summary_table(results, f"{what}, {wall:.1f} s wall, {where}", show_seed=bool(seeds)))
        if len(results) > 1:
            slow = sorted(results, key=lambda r: -r.seconds)[:5]
            c.print("slowest: " + ", ".join(f"{name(r)} {r.seconds:.1f} s" for r in slow))
        for term in dict.fromkeys(r.term for r in custom):
            first = next(r for r in custom if r.term == term)
            c.print(
                f"{term}: non-default parameters: {_changed_text(first)}; saved in {folder_of(first)}/, "
                f"the default result in {out}/ is unchanged",
                markup=False,
            )
        for r in results:
            at = f" (seed {r.seed})" if seeds else ""
            if r.status == "error":
                last = (r.error or "").strip().splitlines()[-1:] or ["?"]
                c.print(f"[red]{r.term}{at}: error: {last[0]}[/red]  (full traceback in {folder_of(r)}/{r.term}.json)")
            for ch in r.checks:
                if not ch.passed:
                    note = " (non-default parameters)" if not r.default else ""
                    c.print(
                        f"[red]{r.term}{at}: FAILED{note}: {ch.claim}: observed {ch.observed}, "
                        f"expected {ch.expected}[/red]"
                    )
        if seeds and len(seeds) > 1:
            from dlterms.robustness import aggregate

            robs = [aggregate([r for r in results if r.term == t], term=t) for t in terms]
            _print_robustness(robs, f"robustness of this run over {len(seeds)} seeds")
    if len(results) > 1 and not overrides:
        _save_timing(results, time.perf_counter() - t0, args, out, seeds)
    ok = all(r.passed for r in results)
    return EXIT_OK if ok else EXIT_FAILED


def _save_timing(results, wall: float, args, out: Path, seeds: list[int] | None = None) -> None:
    """`<out>/suite-timing.json`: wall time of the whole run and each experiment's seconds (with its
    seed, and the sum per seed, for a several-seed run)."""
    from dlterms.results import atomic_write_text

    rows = sorted(
        ({"term": r.term, "seed": r.seed, "seconds": r.seconds, "status": r.status} for r in results),
        key=lambda r: -r["seconds"],
    )
    payload = {
        "wall_seconds": round(wall, 2),
        "jobs": args.jobs,
        "device": args.device,
        "n": len(results),
        "sum_seconds": round(sum(r.seconds for r in results), 2),
        "slowest": [r["term"] for r in rows[:5]],
        "experiments": rows,
    }
    if seeds:
        payload["seeds"] = list(seeds)
        payload["sum_seconds_per_seed"] = {
            str(s): round(sum(r.seconds for r in results if r.seed == s), 2) for s in seeds
        }
    atomic_write_text(out / "suite-timing.json", json.dumps(payload, indent=1) + "\n")


def cmd_coverage(args) -> int:
    from dlterms.audit import coverage_rows

    folder = in_folder("--results", args.results)
    _warn_bad_results(folder)
    rows = coverage_rows(folder)
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    from rich.table import Table

    cols = ("definition", "code", "reference_test", "experiment", "figure")
    t = Table(title="coverage")
    t.add_column("#", justify="right")
    t.add_column("id")
    for c in cols:
        t.add_column(c.replace("_", " "))
    t.add_column("last result")
    t.add_column("seeds", justify="right")
    for r in rows:
        rob = r.get("robustness")
        seeds = f"{rob['passed']}/{rob['of']}" if rob else "-"
        t.add_row(str(r["number"]), r["id"], *("yes" if r[c] else "-" for c in cols), r["last_result"] or "-", seeds)
    totals = {c: sum(r[c] for r in rows) for c in cols}
    _console().print(t)
    _console().print("  ".join(f"{c}: {totals[c]}/{len(rows)}" for c in cols))
    return EXIT_OK


def cmd_summary(args) -> int:
    from dlterms.results import load_results

    folder = in_folder("--results", args.results)
    _warn_bad_results(folder)
    results = sorted(load_results(folder).values(), key=lambda r: r.number)
    if not results:
        print(f"no results in {args.results}/ yet: run `dlterms run --all`")
        return EXIT_OK
    total = sum(r.seconds for r in results)
    from dlterms.robustness import report

    robs = {rob.id: rob for rob in report(Path(args.results))}
    several = any(rob.n_seeds > 1 for rob in robs.values())
    title = f"{len(results)} saved results, {total:.1f} s of experiment time"
    _console().print(_summary_table(results, title, robustness=robs if several else None))
    for r in results:
        for changed, cr in _custom_results(r.term, folder):
            _console().print(
                f"{r.term}: also a run with non-default parameters ({changed}): {cr.status}, "
                f"{cr.n_passed}/{len(cr.checks)} checks (not counted above)",
                markup=False,
            )
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def _sweep_plans(args) -> list:
    """The sweeps `dlterms sweep` was asked for, validated before anything runs."""
    from dlterms import sweep
    from dlterms.run import config_class, declared_sweeps, registered_ids

    modes = sum(bool(x) for x in (args.set, args.declared, args.all_declared))
    if modes != 1:
        raise UsageError("sweep needs exactly one of --set NAME=V1,V2,..., --declared or --all-declared")
    if args.by is not None and not args.set:
        raise UsageError("--by goes with --set")
    if args.metric is not None and not args.set:
        raise UsageError("--metric goes with --set (a declared sweep names its own metric)")
    seeds = None
    if args.seeds is not None:
        from dlterms.robustness import parse_seeds

        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as exc:
            raise UsageError(f"--seeds: {exc}") from None
    if args.all_declared:
        if args.term is not None:
            raise UsageError(f"--all-declared runs every term's sweeps; do not name a term, got {args.term!r}")
        plans = [p for t in registered_ids() for p in sweep.declared_plans(t, seeds)]
        if not plans:
            raise UsageError("no experiment declares a sweep yet")
        return plans
    if args.term is None:
        raise UsageError("name the term to sweep (or use --all-declared)")
    e = _get_entry(args.term)
    if not e.experiment:
        raise UsageError(f"term {e.id!r} has no experiment yet (see `dlterms coverage`)")
    if config_class(e.id) is None:
        raise UsageError(f"experiment {e.id!r} declares no parameters, so it has nothing to sweep")
    if args.declared:
        if not declared_sweeps(e.id):
            raise UsageError(f"experiment {e.id!r} declares no sweep; give one with --set NAME=V1,V2,...")
        return sweep.declared_plans(e.id, seeds)
    try:
        return [sweep.plan_from_text(e.id, args.set, args.by, seeds, args.metric)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _sweep_table(payload: dict):
    from rich.markup import escape
    from rich.table import Table

    from dlterms.sweep import mean_text

    title = f"{payload['term']}: {payload['metric']} against {payload['param']}"
    if payload.get("question"):
        title += f"\n{payload['question']}"
    t = Table(title=escape(title))
    cols = [payload["param"]] + ([payload["by"]] if payload.get("by") else [])
    cols += ["mean ± std", "min", "max", "every check held", "checks that failed"]
    for col in cols:
        t.add_column(escape(str(col)), overflow="fold")
    for p in payload["points"]:
        cells = [p["label"]] + ([p["by_label"]] if payload.get("by") else [])
        style = "green" if p["all_checks_held"] == p["of"] else "red"
        failed = [f"{c['claim']} ({c['of'] - c['held']}/{c['of']} seeds)" for c in p["checks"] if c["held"] < c["of"]]
        errors = sum(r["status"] in ("error", "missing") for r in p["runs"])
        if errors:
            failed.insert(0, f"error or no result at {errors}/{p['of']} seeds")
        g = "{:.3g}".format
        cells += [
            mean_text(p),
            "-" if p["min"] is None else g(p["min"]),
            "-" if p["max"] is None else g(p["max"]),
            f"[{style}]{p['all_checks_held']}/{p['of']} seeds[/{style}]",
            escape("; ".join(failed)) or "-",
        ]
        t.add_row(*cells)
    return t


def cmd_sweep(args) -> int:
    from dlterms import sweep
    from dlterms.run import pair_label, resolve_device

    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    plans = _sweep_plans(args)
    out = out_folder("--out", args.out)
    payloads, any_error = [], False
    for plan in plans:

        def name(r, plan=plan) -> str:
            from dlterms import params
            from dlterms.run import config_class

            cfg = params.build_config(config_class(r.term), r.config) if r.config else None
            return pair_label(f"{r.term}({(params.describe(cfg) if cfg else '') or 'defaults'})", r.seed)

        if args.json:
            payload = sweep.run_sweep(plan, out=out, jobs=args.jobs, device=device)
        else:
            _console(stderr=True).print(
                f"sweep {plan.term} {plan.name}: {len(plan.grid())} points x {len(plan.seeds)} seeds "
                f"= {plan.n_runs} runs",
                markup=False,
            )
            with _progress_bars(plan.n_runs, name) as (progress, on_result):
                payload = sweep.run_sweep(
                    plan, out=out, jobs=args.jobs, device=device, progress=progress, on_result=on_result
                )
        if plan.metric is not None and all(p["mean"] is None for p in payload["points"]):
            if not plan.declared:
                raise UsageError(f"--metric {plan.metric!r}: experiment {plan.term!r} records no such number")
            print(
                f"dlterms: warning: {plan.term}'s declared sweep of {plan.param} draws {plan.metric!r}, "
                "which no run recorded",
                file=sys.stderr,
            )
        any_error |= any(r["status"] in ("error", "missing") for p in payload["points"] for r in p["runs"])
        payloads.append(payload)
        if not args.json:
            c = _console()
            c.print(_sweep_table(payload))
            c.print(f"reading: {payload['reading']}", markup=False)
            folder = sweep.sweep_dir(out, plan.term)
            c.print(f"saved {folder}/{plan.name}.json and {plan.name}.svg", markup=False)
    if args.json:
        print(json.dumps(payloads, indent=1))
    return EXIT_FAILED if any_error else EXIT_OK


def cmd_notebook(args) -> int:
    from dlterms import notebook

    e = _get_entry(args.term)
    if not e.experiment:
        raise UsageError(f"term {e.id!r} has no experiment yet, so no notebook")
    if args.out is not None and (not args.out or "\0" in args.out):
        raise UsageError(f"--out must name a file, got {args.out!r}")
    target = Path(args.out) if args.out else Path(f"{e.id}.ipynb")
    if target.is_dir():
        raise UsageError(f"--out {str(target)!r} is a folder; name the .ipynb file to write")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {str(target)!r}: cannot create its folder ({_reason(exc)})") from None
    notebook.write_notebook(e.id, target)
    print(f"notebook written to {target}")
    return EXIT_OK


def cmd_robustness(args) -> int:
    from dlterms.robustness import aggregate, load_seed_results, parse_seeds, report

    loaded = load_seed_results(Path(args.results))
    missing: dict[str, list[int]] = {}
    if args.seeds is not None:
        try:
            expected = parse_seeds(args.seeds)
        except ValueError as exc:
            raise UsageError(f"--seeds: {exc}") from None
        from dlterms.run import registered_ids

        loaded = {t: {s: r for s, r in by.items() if s in expected} for t, by in loaded.items()}
        for t in registered_ids():
            lacking = [s for s in expected if s not in loaded.get(t, {})]
            if lacking:
                missing[t] = lacking
    robs = report(loaded)
    if args.seeds is not None:  # terms with none of the seeds still get a row
        have = {r.id for r in robs}
        robs += [aggregate({}, term=t) for t in missing if t not in have]
    if args.json:
        rows = [r.to_dict() for r in robs]
        if args.seeds is not None:
            for row in rows:
                row["missing_seeds"] = missing.get(row["id"], [])
        print(json.dumps(rows, indent=1))
    elif not robs:
        print(f"no results in {args.results}/ yet: run `dlterms run --all --seeds 0-4`")
    else:
        most = max(rob.n_seeds for rob in robs)
        _print_robustness(robs, f"robustness of {len(robs)} terms over up to {most} seeds saved in {args.results}/")
        for t, lacking in missing.items():
            _console().print(f"[red]{t}: no result for seed {', '.join(map(str, lacking))}[/red]")
    ok = all(r.holds_everywhere for r in robs) and not missing
    return EXIT_OK if ok else EXIT_FAILED


def cmd_site(args) -> int:
    try:
        from dlterms.site import build
    except ImportError:
        raise UsageError("the website builder is not part of this version yet") from None
    results = in_folder("--results", args.results)
    out = site_folder("--out", args.out, results)
    _warn_bad_results(results)
    path = build.build_site(out=out, results=results)
    print(f"site written to {path}")
    return EXIT_OK


def cmd_serve(args) -> int:
    try:
        from dlterms.site import server
    except ImportError:
        raise UsageError("the web server is not part of this version yet") from None
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")
    if not args.host or any(c.isspace() or c in "/@\0" for c in args.host):
        raise UsageError(f"--host must be an address or a host name, got {args.host!r}")
    results = in_folder("--results", args.results)
    site = site_folder("--site", args.site, results)
    _warn_bad_results(results)
    try:
        return server.serve(host=args.host, port=args.port, results=results, site=site)
    except OSError as exc:  # address in use, not this machine's, no permission for the port, unknown name
        raise UsageError(f"--host {args.host!r} --port {args.port}: cannot listen there ({_reason(exc)})") from None


COMMANDS = {
    "list": cmd_list,
    "show": cmd_show,
    "search": cmd_search,
    "run": cmd_run,
    "sweep": cmd_sweep,
    "notebook": cmd_notebook,
    "robustness": cmd_robustness,
    "coverage": cmd_coverage,
    "summary": cmd_summary,
    "site": cmd_site,
    "serve": cmd_serve,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with `argv` (without the program name); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # --help printed the help
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        if args.version:
            import dlterms

            print(f"dlterms {dlterms.__version__}")
            return EXIT_OK
        if not args.command:
            raise UsageError(
                "a command is needed: list, show, search, run, sweep, notebook, robustness, coverage, summary, "
                "site, serve"
            )
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"dlterms: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # e.g. the output folder vanished or filled up mid-run (writes are atomic)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"dlterms: error: {_one_line(where + _reason(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dlterms: interrupted; finished results are saved", file=sys.stderr)
        return 130


def entrypoint() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`dlterms list | head`): not an error worth a traceback.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    entrypoint()
