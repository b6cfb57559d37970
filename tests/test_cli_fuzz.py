"""Property tests: `main(argv)` of every subcommand, with random arguments, exits 0, 1 or 2 and never
shows a traceback; a usage error (2) is one line on stderr.

Arguments are drawn per subcommand: its own options with random values (unicode text, numbers, empty
strings, NUL bytes, very long names, paths to files, to missing or unwritable folders, to folders of
corrupt results), unknown options, options missing their value, and random positional words. Each
example runs in a fresh temporary folder, so relative paths land there. Nothing heavy starts: running
experiments, building the site, serving and the language model are stood in by quick fakes (the real
ones are tested in tests/test_cli_errors.py, tests/site/ and tests/test_run.py); argument checks,
term lookup, results reading, tables and JSON output are real.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlterms import glossary
from dlterms.cli import main
from dlterms.run import Check, Result, save_result

# 60 examples per test in CI (about 5 s each); HYPOTHESIS_PROFILE=explore runs the profile's number.
EXAMPLES = 60 if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else settings().max_examples
FUZZ = settings(
    max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

IDS = [e.id for e in glossary.entries()]
AREAS = list(glossary.AREAS)

# Values that reach every branch of the argument checks; relative paths are inside the example's folder.
SPECIAL_TEXT = ["", " ", "-", "--", "-x", "\x00", "a\x00b", "x" * 300, "ünïcødé", "名前", "🙂", "\n", "0", "-1"]
SPECIAL_PATHS = [
    "out",
    "deep/new/folder",
    "FILE",
    "good",
    "corrupt",
    "oldsite",
    "notes",
    ".",
    "/proc/nope",
    "/proc/self",
    "/sys",
    "x" * 300,
    "a" * 5000,
    "ünï/çødé",
    "",
    "\x00",
]
NUMBERS = [
    "0",
    "1",
    "2",
    "-1",
    "100",
    "101",
    "65535",
    "65536",
    str(2**32),
    str(2**64),
    "1e3",
    "nan",
    "inf",
    "0x10",
    "1.5",
    "٣",
    "",
]

text = st.text(max_size=40)


def _relative(s: str) -> bool:
    return not s.startswith("/") and ".." not in s


safe_text = text.filter(_relative)  # stays inside the example folder
words = st.one_of(st.sampled_from(SPECIAL_TEXT), text, st.sampled_from(IDS), st.integers(-5, 110).map(str))
numbers = st.one_of(st.sampled_from(NUMBERS), st.integers().map(str), st.floats().map(str), text)
paths = st.one_of(st.sampled_from(SPECIAL_PATHS), safe_text)
devices = st.one_of(st.sampled_from(["cpu", "cuda", "auto", "cuda:0", "cuda:x", "tpu", "CPU", ""]), text)
areas = st.one_of(st.sampled_from(AREAS), text)
hosts = st.one_of(st.sampled_from(["127.0.0.1", "localhost", "::1", "0.0.0.0", "256.1.1.1", "a b", ""]), safe_text)


def _subparsers() -> dict:
    """The CLI's own subcommands and their parsers: a subcommand added later is fuzzed too."""
    import argparse

    from dlterms.cli import _parser

    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# value strategies by the option's destination; any other option gets numbers (int options) or words
BY_DEST = {"out": paths, "results": paths, "site": paths, "host": hosts, "device": devices, "area": areas}


def _options(parser) -> dict:
    opts = {}
    for a in parser._actions:
        if not a.option_strings or a.dest == "help":
            continue
        if a.nargs == 0:
            strategy = None  # a flag
        else:
            strategy = BY_DEST.get(a.dest, numbers if a.type is int else words)
        opts[a.option_strings[-1]] = strategy
    return opts


def _positional_range(parser) -> tuple[int, int]:
    lo = hi = 0
    for a in parser._actions:
        if a.option_strings:
            continue
        lo += {"?": 0, "*": 0, "+": 1}.get(a.nargs, 1)
        hi += {"?": 1, "*": 3, "+": 4}.get(a.nargs, 1)
    return max(lo - 1, 0), hi + 1  # one too few or one too many, now and then


SUBPARSERS = _subparsers()
OPTIONS = {name: _options(sp) for name, sp in SUBPARSERS.items()}
POSITIONAL = {name: _positional_range(sp) for name, sp in SUBPARSERS.items()}


@st.composite
def argv_for(draw, command: str) -> list[str]:
    argv = [command]
    lo, hi = POSITIONAL[command]
    argv += draw(st.lists(words, min_size=lo, max_size=hi))
    opts = OPTIONS[command]
    for name in draw(st.lists(st.sampled_from([*opts, "--nope", "-q", "--help-me"]), max_size=5)):
        argv.append(name)
        strategy = opts.get(name)
        if strategy is not None and draw(st.integers(0, 9)) > 0:  # now and then the value is missing
            argv.append(draw(strategy))
    return argv


def _setup(folder: Path) -> None:
    """The example's folder: a file, results good and corrupt, an earlier site, a folder of notes."""
    (folder / "FILE").write_text("a file, not a folder\n")
    r = Result(
        term="dropout",
        number=17,
        title="Dropout",
        area="generalization",
        status="passed",
        seconds=1.0,
        seed=0,
        device="cpu",
        checks=[Check("c", True, 1, "> 0")],
    )
    save_result(r, folder / "good")
    save_result(r, folder / "corrupt")
    (folder / "corrupt" / "ann.json").write_text('{"term": "ann", "checks": [')
    (folder / "corrupt" / "mlp.json").write_text(json.dumps({"term": "mlp", "checks": 3}))
    (folder / "oldsite" / "assets").mkdir(parents=True)
    (folder / "oldsite" / "index.html").write_text("old")
    (folder / "notes").mkdir()
    (folder / "notes" / "mine.txt").write_text("keep me")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The example folder's contents, made once; each example's folder links to them."""
    folder = tmp_path_factory.mktemp("fuzz-template")
    _setup(folder)
    return folder


@pytest.fixture
def fakes(monkeypatch):
    """Quick stand-ins for what would run experiments, build the site, serve, or load the model."""
    from dlterms import run as runmod
    from dlterms.glossary import coverage
    from dlterms.site import build, semantic, server

    calls: list[tuple] = []

    def fake_run_many(terms, jobs=1, seed=0, device="cpu", out="results", progress=None, on_result=None, **kw):
        assert Path(out).is_dir()
        results = []
        for t in terms:
            e = glossary.get(t)
            r = Result(e.id, e.number, e.title, e.area, "passed", 0.01, seed, device, checks=[Check("ok", True)])
            if on_result:
                on_result(r)
            results.append(r)
        calls.append(("run", tuple(terms), jobs, seed, device))
        return results

    def fake_build_site(out, results):
        calls.append(("site", str(out), str(results)))
        return Path(out) / "index.html"

    def fake_serve(host, port, results, site):
        calls.append(("serve", host, port))
        return 0

    def no_model(*a, **k):
        raise semantic.ModelUnavailable("not loaded in the fuzz tests")

    monkeypatch.setattr(runmod, "run_many", fake_run_many)
    monkeypatch.setattr(build, "build_site", fake_build_site)
    monkeypatch.setattr(server, "serve", fake_serve)
    monkeypatch.setattr(semantic, "search", no_model)
    sources = coverage._test_sources(coverage.TESTS_DIR)  # read the test files once, not per example
    monkeypatch.setattr(coverage, "_test_sources", lambda tests_dir: sources)
    return calls


def check_main(argv: list[str], template: Path) -> int:
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as d, contextlib.chdir(d):
        for item in template.iterdir():
            (Path(d) / item.name).symlink_to(item, target_is_directory=item.is_dir())
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        assert (template / "notes" / "mine.txt").read_text() == "keep me"
        assert (template / "oldsite" / "index.html").read_text() == "old"
    out, err = out.getvalue(), err.getvalue()
    assert code in (0, 1, 2), (argv, code)
    assert "Traceback" not in err and "Traceback" not in out, (argv, err)
    if code == 2:
        errors = [ln for ln in err.splitlines() if ln.startswith("dlterms: error: ")]
        assert len(errors) == 1 and err.rstrip("\n").splitlines()[-1] == errors[0], (argv, err)
        if "run" not in argv:  # `run` may have drawn its progress bar before an error mid-run
            lines = [ln for ln in err.rstrip("\n").splitlines() if not ln.startswith("dlterms: warning: ")]
            assert lines == errors, (argv, err)
    return code


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_every_subcommand_survives_random_arguments(command, fakes, template):
    @FUZZ
    @given(argv=argv_for(command))
    def prop(argv):
        check_main(argv, template)

    prop()


def _stays_inside(argv: list[str]) -> bool:
    return not any(x.startswith("/") or ".." in x for x in argv)


@FUZZ
@given(
    argv=st.lists(
        st.one_of(text, st.sampled_from([*OPTIONS, "--version", "--json", "--out", "-h"])), max_size=6
    ).filter(_stays_inside)
)
def test_random_argv_without_a_known_shape(argv, fakes, template):
    check_main(argv, template)


def test_the_known_subcommands_are_all_fuzzed():
    assert {"list", "show", "search", "run", "coverage", "summary", "site", "serve"} <= set(OPTIONS)
    assert (
        OPTIONS["run"]["--out"] is paths and OPTIONS["serve"]["--port"] is numbers and OPTIONS["list"]["--json"] is None
    )


def test_help_exits_0_without_traceback(capsys):
    for argv in (["-h"], ["run", "--help"], ["site", "-h"], ["serve", "--he"]):
        assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "usage: dlterms" in out and "Traceback" not in err


def test_the_fakes_are_reached(fakes, template):
    """The fuzzing gets past the argument checks to the command itself."""
    assert check_main(["run", "ann", "--out", "out", "--seed", "3"], template) == 0
    assert check_main(["site", "--out", "oldsite", "--results", "corrupt"], template) == 0
    assert check_main(["serve", "--port", "8123", "--site", "newsite"], template) == 0
    assert [c[0] for c in fakes] == ["run", "site", "serve"]
    assert os.environ.get("HYPOTHESIS_PROFILE", "ci") in ("ci", "explore")
