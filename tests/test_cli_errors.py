"""Every user mistake is one line on stderr naming the argument and the value, exit 2, no traceback.

Also: an output folder that cannot be written, one that vanishes mid-run, a write that fails half-way
(nothing half-written is left), and results folders holding truncated or corrupt JSON (reported on
stderr and skipped by show, coverage, summary and site). No test here runs a real experiment: the
experiment of `ann` is stood in by small functions.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from dlterms import run as runmod
from dlterms.cli import main
from dlterms.run import Check, Result, save_result

LINUX = sys.platform.startswith("linux")


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def one_line_usage_error(code, err, *needles):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlterms: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture
def stub_ann(monkeypatch):
    """`ann`'s experiment replaced by a tiny one that makes a figure and passes; returns a setter for
    something to do mid-run."""
    todo = []

    def tiny(run):
        with run.figure("line", alt="a line") as fig:
            fig.subplots().plot([0, 1], [0, 1])
        for f in todo:
            f(run)
        run.check("tiny", True, observed=1, expected="1")

    monkeypatch.setitem(runmod._REGISTRY, "ann", tiny)
    return todo.append


def a_result(term="dropout", number=17, **kw) -> Result:
    d = dict(
        term=term,
        number=number,
        title="Dropout",
        area="generalization",
        status="passed",
        seconds=1.0,
        seed=0,
        device="cpu",
        checks=[Check("c", True, 1, "> 0")],
    )
    d.update(kw)
    return Result(**d)


# --------------------------------------------------------------------------- the cases


@pytest.fixture
def a_file(tmp_path) -> Path:
    f = tmp_path / "FILE"
    f.write_text("not a folder\n")
    return f


@pytest.mark.skipif(not LINUX, reason="/proc is Linux's")
@pytest.mark.parametrize("cmd", ["run", "site"])
def test_out_in_proc_is_one_line_exit_2(capsys, cmd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "softmax", "--out", "/proc/nope"] if cmd == "run" else ["site", "--out", "/proc/nope"]
    code, _, err = cli(capsys, *argv)
    one_line_usage_error(code, err, "--out", "'/proc/nope'")


@pytest.mark.parametrize("cmd", ["run", "site"])
def test_out_that_is_a_file_is_one_line_exit_2(capsys, cmd, a_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "softmax", "--out", a_file] if cmd == "run" else ["site", "--out", a_file]
    code, _, err = cli(capsys, *argv)
    one_line_usage_error(code, err, "--out", repr(str(a_file)), "is a file, not a folder")
    assert a_file.read_text() == "not a folder\n"


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["show", "0"], ["term numbers run from 1 to 100, got 0"]),
        (["show", "101"], ["term numbers run from 1 to 100, got 101"]),
        (["show", "-4"], ["term numbers run from 1 to 100, got -4"]),
        (["run", "0"], ["term numbers run from 1 to 100, got 0"]),
        (["run", "ann", "--seed", "-1"], ["--seed", "-1"]),
        (["run", "ann", "--seed", str(2**40)], ["--seed", str(2**40)]),
        (["run", "ann", "--seed", "abc"], ["--seed", "'abc'"]),
        (["run", "ann", "--jobs", "x"], ["--jobs", "'x'"]),
        (["run", "ann", "--device", ""], ["device", "''"]),
        (["run", "ann", "--out", ""], ["--out", "''"]),
        (["run", "ann", "--out", "a\0b"], ["--out"]),
        (["run", "ann", "--out"], ["--out", "expected one argument"]),
        (["show"], ["term"]),
        (["search"], ["words"]),
        (["search", "x", "--limit", "-3"], ["--limit", "-3"]),
        (["serve", "--port", "0"], ["--port", "0"]),
        (["serve", "--port", "70000"], ["--port", "70000"]),
        (["serve", "--host", "", "--port", "8001"], ["--host", "''"]),
        (["serve", "--host", "a b", "--port", "8001"], ["--host", "'a b'"]),
        (["list", "--area", "évaluation"], ["--area", "évaluation"]),
    ],
)
def test_bad_arguments_are_one_line_exit_2(capsys, argv, needles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, *argv)
    one_line_usage_error(code, err, *needles)
    assert not any(tmp_path.iterdir()), "a usage error left files behind"


def test_a_folder_of_other_files_is_never_replaced_by_the_site(capsys, tmp_path, monkeypatch):
    """`site --out .` or --out on a folder of other things would delete them: refused."""
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    for out in (".", str(tmp_path), ".."):
        code, _, err = cli(capsys, "site", "--out", out)
        one_line_usage_error(code, err, "--out", repr(out))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("x")
    (tmp_path / "site" / "assets").mkdir()
    (tmp_path / "site" / "results").mkdir()
    code, _, err = cli(capsys, "site", "--out", "site", "--results", "site/results")
    one_line_usage_error(code, err, "--out", "'site'", "results folder")
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "site" / "results").is_dir()


def test_serve_on_a_busy_port_is_one_line_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("x")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, _, err = cli(capsys, "serve", "--port", port, "--site", site)
    one_line_usage_error(code, err, "--port", str(port), "cannot listen")


def test_serve_on_an_address_not_of_this_machine_is_one_line_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "serve", "--host", "256.1.1.1", "--port", "8123", "--site", tmp_path / "s")
    one_line_usage_error(code, err, "--host '256.1.1.1'")
    assert not (tmp_path / "s" / "index.html").exists(), "the site was built before the bind failed"


# --------------------------------------------------------------------------- output folders


def _unwritable_folders(tmp_path) -> list[str]:
    found = []
    if LINUX:
        found += ["/proc/self", "/sys"]  # folders no one, not even root, can create files in
    if os.geteuid() != 0:  # modes bind only those who are not root
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        found.append(str(ro))
    return [f for f in found if os.path.isdir(f)]


def test_read_only_output_folder(capsys, tmp_path, monkeypatch, stub_ann):
    monkeypatch.chdir(tmp_path)
    folders = _unwritable_folders(tmp_path)
    assert folders, "no read-only folder to try on this machine"
    for folder in folders:
        code, _, err = cli(capsys, "run", "ann", "--out", folder)
        one_line_usage_error(code, err, "--out", repr(folder), "cannot write in the folder")
        code, _, err = cli(capsys, "site", "--out", Path(folder) / "site")
        one_line_usage_error(code, err, "--out", "cannot")


def test_output_folder_that_vanishes_mid_run_is_made_again(capsys, tmp_path, monkeypatch, stub_ann):
    out = tmp_path / "out"
    stub_ann(lambda run: shutil.rmtree(run.out))
    code, _, err = cli(capsys, "run", "ann", "--out", out, "--json")
    assert code == 0, err
    assert json.loads((out / "ann.json").read_text())["status"] == "passed"


def test_output_folder_replaced_by_a_file_mid_run(capsys, tmp_path, monkeypatch, stub_ann):
    out = tmp_path / "out"

    def replace_by_file(run):
        shutil.rmtree(run.out)
        run.out.write_text("in the way")

    stub_ann(replace_by_file)
    code, _, err = cli(capsys, "run", "ann", "--out", out, "--json")
    one_line_usage_error(code, err, str(out))
    assert out.read_text() == "in the way"
    out.unlink()
    code, _, err = cli(capsys, "run", "ann", "--out", out)  # with the progress bar, the error is its last line
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"dlterms: error: {out}")


def test_a_result_write_that_fails_half_way_leaves_nothing_half_written(capsys, tmp_path, monkeypatch, stub_ann):
    out = tmp_path / "out"
    save_result(a_result("ann", 1, title="ANN", area="foundations", seconds=9.0), out)
    before = (out / "ann.json").read_text()
    real_fsync = os.fsync

    def disk_full(fd):  # the bytes went to the temporary file; the disk fills before they are safe
        if os.fstat(fd).st_size > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(runmod.os, "fsync", disk_full)
    code, _, err = cli(capsys, "run", "ann", "--out", out, "--json")
    one_line_usage_error(code, err, "No space left on device")
    assert (out / "ann.json").read_text() == before
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_a_site_build_that_fails_half_way_keeps_the_old_site(capsys, tmp_path, monkeypatch):
    from dlterms.site import build

    old = tmp_path / "site"
    (old / "assets").mkdir(parents=True)
    (old / "index.html").write_text("the old site")
    calls = []
    real = build._write

    def fails_on_the_tenth(path, text):
        calls.append(path)
        if len(calls) == 10:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(build, "_write", fails_on_the_tenth)
    code, _, err = cli(capsys, "site", "--out", old, "--results", tmp_path / "none")
    one_line_usage_error(code, err, "No space left on device")
    assert len(calls) == 10
    assert (old / "index.html").read_text() == "the old site"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"], "a temporary build was left behind"


# --------------------------------------------------------------------------- corrupt results


def _corrupt_results(folder: Path) -> list[str]:
    """A good result for dropout, and results files broken in the ways a crash or an editor leaves them."""
    save_result(a_result(), folder)
    good = (folder / "dropout.json").read_text()
    bad = {
        "ann.json": good[: len(good) // 2],  # truncated mid-write by an older tool
        "mlp.json": "",  # empty
        "tensor.json": b"\x00\xff not UTF-8",
        "softmax.json": json.dumps({**json.loads(good), "term": "softmax", "status": "maybe"}),
        "relu.json": json.dumps({**json.loads(good), "term": "relu", "seconds": "fast"}),
        "sigmoid.json": json.dumps({**json.loads(good), "term": "sigmoid", "checks": [{"claim": 1}]}),
        "tanh.json": json.dumps({**json.loads(good), "term": "tanh", "checks": "none"}),
        "gelu.json": "[1, 2, 3]",
    }
    for name, text in bad.items():
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    (folder / "dir.json").mkdir()
    (folder / "suite-timing.json").write_text(json.dumps({"wall_seconds": 1.0}))  # not a result: no warning
    return sorted([*bad, "dir.json"])


def _skipped(err: str) -> list[str]:
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert all(ln.startswith("dlterms: warning: skipped ") for ln in lines), err
    return sorted(Path(ln.split("skipped ", 1)[1].split(": ", 1)[0]).name for ln in lines)


def test_corrupt_results_are_reported_and_skipped_by_summary_and_coverage(capsys, tmp_path):
    bad = _corrupt_results(tmp_path)
    code, out, err = cli(capsys, "summary", "--results", tmp_path)
    assert code == 0 and "dropout" in out and _skipped(err) == bad
    code, out, err = cli(capsys, "coverage", "--json", "--results", tmp_path)
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0 and _skipped(err) == bad
    assert rows["dropout"]["last_result"] == "passed" and rows["ann"]["last_result"] is None


def test_show_reports_a_corrupt_result_and_shows_the_term(capsys, tmp_path):
    _corrupt_results(tmp_path)
    code, out, err = cli(capsys, "show", "ann", "--results", tmp_path)
    assert code == 0 and "ANN" in out.upper() and "last result" not in out
    assert _skipped(err) == ["ann.json"] and "not valid JSON" in err
    code, out, err = cli(capsys, "show", "softmax", "--json", "--results", tmp_path)
    assert code == 0 and json.loads(out)["result"] is None and "status must be" in err
    code, out, err = cli(capsys, "show", "dropout", "--results", tmp_path)
    assert code == 0 and "last result: passed" in out and err == ""


@pytest.mark.slow
def test_site_reports_and_skips_corrupt_results(capsys, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    bad = _corrupt_results(results)
    code, out, err = cli(capsys, "site", "--out", tmp_path / "site", "--results", results)
    assert code == 0 and "site written" in out and _skipped(err) == bad
    page = (tmp_path / "site" / "terms" / "dropout.html").read_text()
    assert "Last run: <strong>passed</strong>" in page
    assert "Last run" not in (tmp_path / "site" / "terms" / "ann.html").read_text()
