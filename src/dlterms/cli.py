"""The `dlterms` command line.

    dlterms list [--area A] [--json]
    dlterms show TERM
    dlterms search WORDS... [--json] [--limit N]
    dlterms run TERM... | --area A | --all  [--jobs N] [--seed S] [--device cpu|cuda|auto] [--out DIR] [--json]
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

Imports are lazy: `list`, `show` and `search` never import torch.
"""

from __future__ import annotations

import argparse
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
    from dlterms.run import scan_results

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
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    s.add_argument("--out", default="results", help="folder for results (default: results)")
    s.add_argument("--json", action="store_true", help="print the Results as JSON")

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
    from dlterms.run import ResultFileError, load_result

    e = _get_entry(args.term)
    try:
        result = load_result(e.id, in_folder("--results", args.results))
    except ResultFileError as exc:
        print(f"dlterms: warning: skipped {_one_line(str(exc))}", file=sys.stderr)
        result = None
    if args.json:
        d = e.to_dict()
        d["result"] = result.to_dict() if result else None
        print(json.dumps(d, indent=1))
        return EXIT_OK
    from rich.markdown import Markdown

    c = _console()
    c.print(f"[bold]{e.number}. {e.title}[/bold]  ({e.id}, area {e.area})")
    if e.aliases:
        c.print(f"also: {', '.join(e.aliases)}")
    c.print(Markdown(e.definition))
    c.print()
    if e.related:
        c.print("related: " + ", ".join(f"{r} ({glossary.get(r).title})" for r in e.related))
    c.print("code: " + (", ".join(e.code) if e.code else "not written yet"))
    c.print("experiment: " + (f"dlterms run {e.id}" if e.experiment else "not written yet"))
    if result is not None:
        c.print(
            f"last result: {result.status}, {result.n_passed}/{len(result.checks)} checks, "
            f"{result.seconds:.1f} s, seed {result.seed}, {result.device}"
        )
        for ch in result.checks:
            mark = "[green]pass[/green]" if ch.passed else "[red]FAIL[/red]"
            c.print(f"  {mark} {ch.claim}: observed {ch.observed} (expected {ch.expected})")
    return EXIT_OK


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


def _summary_table(results, title: str):
    from rich.table import Table

    t = Table(title=title)
    for col, just in (
        ("#", "right"),
        ("term", "left"),
        ("status", "left"),
        ("checks", "right"),
        ("key metric", "left"),
        ("seconds", "right"),
    ):
        t.add_column(col, justify=just)
    for r in results:
        style = {"passed": "green", "failed": "red", "error": "bold red"}[r.status]
        key = ""
        if r.key_metric and r.key_metric in r.metrics:
            v = r.metrics[r.key_metric]
            key = f"{r.key_metric} = {v:.4g}" if isinstance(v, int | float) else f"{r.key_metric} = {v}"
        t.add_row(
            str(r.number),
            r.term,
            f"[{style}]{r.status}[/{style}]",
            f"{r.n_passed}/{len(r.checks)}",
            key,
            f"{r.seconds:.1f}",
        )
    return t


def cmd_run(args) -> int:
    from dlterms.run import resolve_device, run_many

    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    _seed(args.seed)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    terms = _select_terms(args)
    out = out_folder("--out", args.out)
    t0 = time.perf_counter()
    if args.json:
        results = run_many(terms, jobs=args.jobs, seed=args.seed, device=device, out=out)
        print(json.dumps([r.to_dict() for r in results], indent=1))
    else:
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
            overall = bar.add_task(f"all ({len(terms)})", total=len(terms), msg="")
            tasks: dict[str, int] = {}

            def progress(term: str, fraction: float, message: str) -> None:
                if term not in tasks:
                    tasks[term] = bar.add_task(term, total=1.0, msg="")
                bar.update(tasks[term], completed=fraction, msg=message[:40])

            def on_result(r) -> None:
                if r.term not in tasks:
                    tasks[r.term] = bar.add_task(r.term, total=1.0, msg="")
                bar.update(tasks[r.term], completed=1.0, msg=f"{r.status} {r.n_passed}/{len(r.checks)}")
                bar.advance(overall)

            results = run_many(
                terms, jobs=args.jobs, seed=args.seed, device=device, out=out, progress=progress, on_result=on_result
            )
        wall = time.perf_counter() - t0
        c = _console()
        c.print(_summary_table(results, f"{len(results)} experiments, {wall:.1f} s wall, results in {out}/"))
        if len(results) > 1:
            slow = sorted(results, key=lambda r: -r.seconds)[:5]
            c.print("slowest: " + ", ".join(f"{r.term} {r.seconds:.1f} s" for r in slow))
        for r in results:
            if r.status == "error":
                last = (r.error or "").strip().splitlines()[-1:] or ["?"]
                c.print(f"[red]{r.term}: error: {last[0]}[/red]  (full traceback in {out}/{r.term}.json)")
            for ch in r.checks:
                if not ch.passed:
                    c.print(f"[red]{r.term}: FAILED: {ch.claim}: observed {ch.observed}, expected {ch.expected}[/red]")
    if len(results) > 1:
        _save_timing(results, time.perf_counter() - t0, args, out)
    ok = all(r.passed for r in results)
    return EXIT_OK if ok else EXIT_FAILED


def _save_timing(results, wall: float, args, out: Path) -> None:
    """`<out>/suite-timing.json`: wall time of the whole run and each experiment's seconds."""
    from dlterms.run import atomic_write_text

    rows = sorted(
        ({"term": r.term, "seconds": r.seconds, "status": r.status} for r in results), key=lambda r: -r["seconds"]
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
    atomic_write_text(out / "suite-timing.json", json.dumps(payload, indent=1) + "\n")


def cmd_coverage(args) -> int:
    from dlterms.glossary.coverage import coverage_rows

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
    for r in rows:
        t.add_row(str(r["number"]), r["id"], *("yes" if r[c] else "-" for c in cols), r["last_result"] or "-")
    totals = {c: sum(r[c] for r in rows) for c in cols}
    _console().print(t)
    _console().print("  ".join(f"{c}: {totals[c]}/{len(rows)}" for c in cols))
    return EXIT_OK


def cmd_summary(args) -> int:
    from dlterms.run import load_results

    folder = in_folder("--results", args.results)
    _warn_bad_results(folder)
    results = sorted(load_results(folder).values(), key=lambda r: r.number)
    if not results:
        print(f"no results in {args.results}/ yet: run `dlterms run --all`")
        return EXIT_OK
    total = sum(r.seconds for r in results)
    _console().print(_summary_table(results, f"{len(results)} saved results, {total:.1f} s of experiment time"))
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


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
            raise UsageError("a command is needed: list, show, search, run, coverage, summary, site, serve")
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
