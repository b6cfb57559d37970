"""The documentation stands alone: every term has its section in docs/experiments.md, every link into
docs/ resolves, nothing points outside the repository, and the pre-commit hook runs the pinned ruff."""

from __future__ import annotations

import re
from pathlib import Path

from dlterms import glossary

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXPERIMENTS = DOCS / "experiments.md"

# What the repository is made of, for the searches below (built files and the venv are not).
TREES = ["src", "tests", "benchmarks", "docs", "scripts", ".ci"]
FILES = ["README.md", "CONTRIBUTING.md", "Makefile", "pyproject.toml", "constraints.txt", ".pre-commit-config.yaml"]
SUFFIXES = {".py", ".md", ".txt", ".toml", ".yaml", ".yml", ".cfg", ".sh", ".html", ".js", ".css", ".tsv", ""}

ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
# A Markdown link target ([text](target)) or a bare mention such as `docs/experiments.md#dropout`.
LINK = re.compile(r"\]\(([^)\s]+)\)")
DOC_MENTION = re.compile(r"docs/([\w./-]+\.md)(?:#([\w-]+))?")


def repository_files() -> list[Path]:
    found = [ROOT / f for f in FILES if (ROOT / f).is_file()]
    for tree in TREES:
        for p in sorted((ROOT / tree).rglob("*")):
            if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts:
                found.append(p)
    return found


def anchors(path: Path) -> list[str]:
    return ANCHOR.findall(path.read_text(encoding="utf-8"))


def test_the_file_list_is_read():
    files = {p.relative_to(ROOT).as_posix() for p in repository_files()}
    assert {"README.md", "CONTRIBUTING.md", "docs/experiments.md", "src/dlterms/run.py"} <= files
    assert len(files) > 200


def test_every_term_has_one_anchor_equal_to_its_id():
    ids = [e.id for e in glossary.entries()]
    assert len(ids) == 100
    found = anchors(EXPERIMENTS)
    missing = sorted(set(ids) - set(found))
    unknown = sorted(set(found) - set(ids))
    repeated = sorted({a for a in found if found.count(a) > 1})
    assert not missing, f"terms without a section in docs/experiments.md: {missing}"
    assert not unknown, f"anchors in docs/experiments.md that are no term id: {unknown}"
    assert not repeated, f"anchors given twice: {repeated}"


def test_each_term_section_names_its_number_and_id():
    text = EXPERIMENTS.read_text(encoding="utf-8")
    for e in glossary.entries():
        heading = re.search(rf'<a id="{re.escape(e.id)}"></a>\n### (\d+)\. .+ \(`([^`]+)`\)\n', text)
        assert heading, f"no heading under the anchor {e.id}"
        assert (int(heading.group(1)), heading.group(2)) == (e.number, e.id)


def _targets(path: Path) -> list[tuple[Path, str | None]]:
    """The docs a file points to, with the anchor if any: relative Markdown links from Markdown files,
    and `docs/<name>.md[#anchor]` mentions from any file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out: list[tuple[Path, str | None]] = []
    if path.suffix == ".md":
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL, or an anchor in the same page (checked below for experiments.md)
            file, _, anchor = target.partition("#")
            out.append(((path.parent / file).resolve(), anchor or None))
    for name, anchor in DOC_MENTION.findall(text):
        out.append((DOCS / name, anchor or None))
    return out


def test_links_into_the_docs_resolve():
    broken = []
    for path in repository_files():
        for target, anchor in _targets(path):
            where = path.relative_to(ROOT).as_posix()
            if not target.is_relative_to(ROOT):
                broken.append(f"{where} -> {target} (outside the repository)")
            elif not target.exists():
                broken.append(f"{where} -> {target.relative_to(ROOT)} (no such file)")
            elif anchor and target.suffix == ".md" and not _has_anchor(target, anchor):
                broken.append(f"{where} -> {target.relative_to(ROOT)}#{anchor} (no such anchor)")
    assert not broken, "broken links into the docs:\n" + "\n".join(broken)


def _has_anchor(path: Path, anchor: str) -> bool:
    """Whether `path` has `<a id="anchor">`, or a heading that gets `anchor` under the usual Markdown rule
    (lower case, spaces to hyphens, punctuation dropped)."""
    if anchor in anchors(path):
        return True
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            if slug == anchor:
                return True
    return False


# Built from pieces so that this file does not contain them itself.
OUTSIDE = ["../" + "shared", "/work/" + "shared", *("shared/" + name for name in ("TERMS.md", "STYLE.md", "DESIGN.md"))]


def test_nothing_points_outside_the_repository():
    found = []
    for path in repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path.relative_to(ROOT).as_posix()}: {s}" for s in OUTSIDE if s in text]
    assert not found, "files that point outside the repository (point into docs/ instead):\n" + "\n".join(found)


def test_a_relative_link_out_of_the_repository_is_caught():
    # The check above must catch the line CONTRIBUTING.md used to open with.
    old_line = "Read `" + ".." + "/shared/" + "STYLE.md` first"
    assert [s for s in OUTSIDE if s in old_line] == ["../" + "shared", "shared/" + "STYLE.md"]


def test_the_pre_commit_hooks_use_the_pinned_ruff():
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    )
    config = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    versions = re.findall(r"ruff==([\w.]+)", config)
    assert versions, "the pre-commit hooks do not pin ruff"
    assert set(versions) == {pins["ruff"].strip()}
    assert "ruff check" in config and "ruff format" in config
