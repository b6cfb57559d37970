"""`python -m benchmarks [NAME...] [--out benchmarks/results.json] [--compare OLD.json]`

Runs every `benchmarks/bench_*.py` (or those named), prints one table (component, size, ours,
reference, ratio ours/reference, max difference) and saves the measurements as JSON so a later
run can be compared with an earlier one (`--compare`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# One thread for every library, ours and the references alike, so a ratio compares algorithms rather
# than core counts: torch is limited in main(); these reach scikit-learn's OpenMP loops (t-SNE's
# gradient), BLAS, and the Rust `tokenizers` (whose encode_batch otherwise runs on every core). Set
# before any of them is imported; a value already in the environment is kept.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _startup_seconds(repeats: int = 5) -> float:
    """Wall time of a fresh `dlterms list --json` process (imports included)."""
    import subprocess

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dlterms.cli", "list", "--json"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("names", nargs="*", help="benchmark modules (e.g. vision for bench_vision.py)")
    p.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    p.add_argument("--compare", help="an earlier JSON to compare ratios with")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from benchmarks._harness import measure

    modules = sorted(x.stem for x in HERE.glob("bench_*.py"))
    if args.names:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.names}
        unknown = wanted - set(modules)
        if unknown:
            print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have {', '.join(modules)}", file=sys.stderr)
            return 2
        modules = [m for m in modules if m in wanted]
    rows = []
    for name in modules:
        mod = importlib.import_module(f"benchmarks.{name}")
        for case in mod.cases():
            m = measure(case)
            rows.append(m.to_dict() | {"module": name})
            print(f"  {m.component:<34} {m.size:<34} ratio {m.ratio:6.2f}", file=sys.stderr)
    old = {}
    if args.compare:
        for r in json.loads(Path(args.compare).read_text())["rows"]:
            old[(r["component"], r["size"])] = r["ratio"]
    from rich.console import Console
    from rich.table import Table

    t = Table(title="ours vs reference (median seconds, one thread)")
    for c in ("component", "size", "ours", "reference", "ratio", "max diff", *(["was"] if old else []), "note"):
        t.add_column(c, justify="right" if c in ("ours", "reference", "ratio", "max diff", "was") else "left")
    for r in rows:
        ratio = r["ratio"]
        style = "green" if ratio <= 1.5 else ("yellow" if ratio <= 3 else "red")
        cells = [
            r["component"],
            r["size"],
            f"{r['ours_s'] * 1e3:.2f} ms",
            f"{r['reference_s'] * 1e3:.2f} ms ({r['reference']})",
            f"[{style}]{ratio:.2f}[/{style}]",
            "-" if r["diff"] is None else f"{r['diff']:.1e}",
        ]
        if old:
            prev = old.get((r["component"], r["size"]))
            cells.append("-" if prev is None else f"{prev:.2f}")
        cells.append(r["note"])
        t.add_row(*cells)
    Console(width=max(Console().width, 150)).print(t)
    if rows:
        ratios = [r["ratio"] for r in rows]
        print(f"median ratio {statistics.median(ratios):.2f}, max {max(ratios):.2f} over {len(rows)} cases")
    startup = _startup_seconds()
    print(f"start-up: `dlterms list --json` takes {startup:.2f} s (median of 5; budget 1 s)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import dlterms
    from dlterms.run import atomic_write_text

    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dlterms": dlterms.__version__,
        "startup_list_s": startup,
        "rows": rows,
    }
    atomic_write_text(out, json.dumps(payload, indent=1) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
