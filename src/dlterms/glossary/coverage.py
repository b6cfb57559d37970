"""What exists for each term: definition, code, a reference test, experiment, figure, last result, and
how robust that result is over the saved seeds."""

from __future__ import annotations

from pathlib import Path

from dlterms.glossary.registry import entries

TESTS_DIR = Path(__file__).resolve().parents[3] / "tests"


def _test_sources(tests_dir: Path) -> str:
    if not tests_dir.is_dir():
        return ""
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(tests_dir.rglob("test_*.py")))


def coverage_rows(results_dir: Path, tests_dir: Path = TESTS_DIR) -> list[dict]:
    """One dict per term. `reference_test` is True when a test file names one of the term's code
    objects (a source checkout has tests/; an installed package reports False).

    `robustness` is None when no result is saved, else {"seeds": the seeds found, "passed": on how
    many of them every check held, "of": how many} (see `dlterms.robustness`)."""
    from dlterms.robustness import aggregate, load_seed_results
    from dlterms.run import load_results

    results = load_results(Path(results_dir))
    by_seed = load_seed_results(Path(results_dir))
    test_text = _test_sources(tests_dir)
    rows = []
    for e in entries():
        r = results.get(e.id)
        tested = bool(e.code) and any(path.rsplit(".", 1)[-1] in test_text for path in e.code)
        rows.append(
            {
                "number": e.number,
                "id": e.id,
                "title": e.title,
                "area": e.area,
                "definition": bool(e.definition),
                "code": e.implemented,
                "reference_test": tested,
                "experiment": bool(e.experiment),
                "figure": bool(r and r.figures),
                "last_result": r.status if r else None,
                "robustness": _robustness(aggregate(by_seed[e.id], term=e.id)) if by_seed.get(e.id) else None,
            }
        )
    return rows


def _robustness(rob) -> dict:
    return {"seeds": rob.seeds, "passed": rob.n_passed, "of": rob.n_seeds}
