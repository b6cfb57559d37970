"""What the glossary promises, checked against the code, the tests and the saved results.

The glossary (`dlterms.glossary`) is plain data: it parses and cross-checks the entries and imports
nothing of the library. This module looks at both sides:

- `validate()`: every code object an entry names imports, and every experiment it names is
  registered (the test suite runs it).
- `coverage_rows(results)`: per term, what exists: a definition, code, a test against a reference
  library, an experiment, a figure, the last result, and its robustness over the saved seeds
  (`dlterms coverage`, the site's coverage page).

"Reference-tested" is read from the tests' imports, not from their text: a test module counts for a
term when it imports one of the term's code objects (by any path that resolves to the same object)
and imports a reference library (PyTorch, scikit-learn, SciPy, transformers, ...). A source
checkout has `tests/`; an installed package reports no reference tests.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from dlterms.glossary.registry import GlossaryError, entries, load, resolve_code

TESTS_DIR = Path(__file__).resolve().parents[2] / "tests"

#: Top-level packages a test compares our code against.
REFERENCE_LIBRARIES = frozenset(
    {"torch", "sklearn", "scipy", "transformers", "tokenizers", "sentence_transformers", "networkx", "skimage"}
)


def validate() -> list[str]:
    """Every problem of the glossary against the library (empty when all is well): entries that do
    not parse, code objects that do not import, experiments that are not registered."""
    from dlterms import run

    try:
        items = load()
    except GlossaryError as exc:
        return [str(exc)]
    problems: list[str] = []
    for e in items:
        for path in e.code:
            try:
                resolve_code(path)
            except Exception as exc:  # noqa: BLE001 - any import failure is a problem to report
                problems.append(f"{e.id}: code {path!r} does not import ({type(exc).__name__}: {exc})")
        if e.experiment:
            try:
                run.get_experiment(e.experiment)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{e.id}: experiment {e.experiment!r} is not registered ({exc})")
    return problems


def imported_names(source: str) -> tuple[set[str], set[str]]:
    """(the dotted dlterms names a module's source imports or reaches by attribute from an imported
    dlterms module, the top-level packages it imports).

    `from dlterms.nn import LSTM` gives dlterms.nn.LSTM; `from dlterms import nn` and then `nn.LSTM`
    give dlterms.nn and dlterms.nn.LSTM; `import dlterms.losses as L` and `L.cross_entropy` give
    dlterms.losses.cross_entropy. Imports inside functions count too."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> dotted dlterms name
    names: set[str] = set()
    packages: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                packages.add(a.name.split(".")[0])
                if a.name.split(".")[0] == "dlterms":
                    names.add(a.name)
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases["dlterms"] = "dlterms"
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            packages.add(node.module.split(".")[0])
            if node.module.split(".")[0] == "dlterms":
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    names.add(full)
                    aliases[a.asname or a.name] = full
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain: list[str] = []
            cur: ast.expr = node
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id in aliases:
                names.add(".".join([aliases[cur.id], *reversed(chain)]))
    return names, packages


def _resolved(path: str):
    try:
        return resolve_code(path)
    except Exception:  # noqa: BLE001 - a name that does not resolve (a local attribute) is no object
        return None


@functools.cache
def _reference_tested_objects(tests_dir: Path, wanted: frozenset[str]) -> frozenset[int]:
    """ids of the library objects some test module under `tests_dir` imports next to a reference
    library (only names whose last part is in `wanted` are imported, to keep this quick)."""
    found: set[int] = set()
    if not tests_dir.is_dir():
        return frozenset()
    for p in sorted(tests_dir.rglob("test_*.py")):
        try:
            names, packages = imported_names(p.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        if not packages & REFERENCE_LIBRARIES:
            continue
        for name in names:
            if name.rsplit(".", 1)[-1] not in wanted:
                continue
            obj = _resolved(name)
            if obj is not None:
                found.add(id(obj))
    return frozenset(found)


def reference_tested(code: tuple[str, ...] | list[str], tests_dir: Path = TESTS_DIR) -> bool:
    """Whether a test module imports one of these code objects and a reference library."""
    wanted = frozenset(path.rsplit(".", 1)[-1] for e in entries() for path in e.code)
    tested = _reference_tested_objects(Path(tests_dir), wanted)
    return any((obj := _resolved(path)) is not None and id(obj) in tested for path in code)


def coverage_rows(results_dir: Path, tests_dir: Path = TESTS_DIR) -> list[dict]:
    """One dict per term (see the module docstring).

    `robustness` is None when no result is saved, else {"seeds": the seeds found, "passed": on how
    many of them every check held, "of": how many} (see `dlterms.robustness`)."""
    from dlterms.results import load_results
    from dlterms.robustness import aggregate, load_seed_results

    results = load_results(Path(results_dir))
    by_seed = load_seed_results(Path(results_dir))
    rows = []
    for e in entries():
        r = results.get(e.id)
        rows.append(
            {
                "number": e.number,
                "id": e.id,
                "title": e.title,
                "area": e.area,
                "definition": bool(e.definition),
                "code": e.implemented,
                "reference_test": bool(e.code) and reference_tested(e.code, tests_dir),
                "experiment": bool(e.experiment),
                "figure": bool(r and r.figures),
                "last_result": r.status if r else None,
                "robustness": _robustness(aggregate(by_seed[e.id], term=e.id)) if by_seed.get(e.id) else None,
            }
        )
    return rows


def _robustness(rob) -> dict:
    return {"seeds": rob.seeds, "passed": rob.n_passed, "of": rob.n_seeds}
