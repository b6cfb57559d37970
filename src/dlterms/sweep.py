"""Sweeps: one experiment run over a grid of parameter values and seeds, its metric drawn against the
parameter, with the spread over seeds and which checks held at each value.

A sweep is a `Plan`: the term, one declared parameter and its values, optionally a second parameter
(`by`, one line per value), the seeds, and the metric (default: the experiment's key metric). Plans
come from the command line (`plan_from_text`: `--set p=0.1,0.2,0.5 --by n_train=100,1000`) or from
the `params.Sweep`s an experiment declares (`plan_from_declared`). `run_sweep` runs every
(value, by value, seed) as its own job through `run.run_many(configs=...)`, summarises and saves:

    <out>/sweeps/<id>/<name>.json   the plan, per point (value, by value) each seed's metric, its
                                    other numeric metrics and each check's pass or fail, and the
                                    metric's mean, std (sample), min and max over the seeds
    <out>/sweeps/<id>/<name>.svg    the metric against the parameter: mean with error bars (one std)
                                    and every seed's point, one line per `by` value; a filled marker
                                    where every check held at every seed, hollow where one failed,
                                    annotated with the seeds on which every check held (k/n)
    <out>/sweeps/<id>/runs/         the runs themselves (seed S under seeds/S/, non-default under
                                    custom/, as `dlterms.run` lays them out)

`<name>` is the parameter (`p`), or `p-by-n_train`. The runs live under `sweeps/`, so a sweep never
changes the default results `<out>/<id>.json` and `<out>/seeds/...` (even at a grid point that is
the default config). Nothing here imports torch until a sweep runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SWEEPS_DIR = "sweeps"
DEFAULT_SEEDS = (0, 1, 2)


@dataclass
class Plan:
    """What a sweep runs: `term`'s `param` over `values` (typed), for each of `by_values` of `by`
    when given, at each of `seeds`; `metric` None means the experiment's key metric."""

    term: str
    param: str
    values: list
    seeds: list[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    by: str | None = None
    by_values: list = field(default_factory=list)
    metric: str | None = None
    question: str = ""
    declared: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)  # other parameters changed at every point

    @property
    def name(self) -> str:
        """The file name: `p`, `p-by-n_train`, with `--<fixed values>` when other parameters are fixed."""
        import hashlib
        import re

        base = self.param if self.by is None else f"{self.param}-by-{self.by}"
        if not self.fixed:
            return base
        tag = ",".join(f"{k}={text(v)}" for k, v in sorted(self.fixed.items()))
        if len(tag) > 60 or re.search(r"[^A-Za-z0-9._=,+\-\[\]]", tag):
            tag = hashlib.sha1(tag.encode()).hexdigest()[:10]
        return f"{base}--{tag}"

    def grid(self) -> list[dict[str, Any]]:
        """The parameter overrides of each point, `by` value by `by` value, value by value."""
        if self.by is None:
            return [{**self.fixed, self.param: v} for v in self.values]
        return [{**self.fixed, self.param: v, self.by: b} for b in self.by_values for v in self.values]

    @property
    def n_runs(self) -> int:
        return len(self.grid()) * len(self.seeds)


def text(value: Any) -> str:
    """A parameter value as the command line writes it: 0.2, true, [64,64]."""
    from dlterms.params import _text

    return _text(tuple(value) if isinstance(value, list) else value)


def _declared(term: str):
    from dlterms.params import params
    from dlterms.run import config_class

    cls = config_class(term)
    if cls is None:
        raise ValueError(f"experiment {term!r} declares no parameters, so it has nothing to sweep")
    return cls, {p.name: p for p in params(cls)}


def _parse_list(term: str, cls, declared: dict, spec: str, what: str, least: int = 2) -> tuple[str, list]:
    """'name=v1,v2,...' -> (name, typed values), each value checked by the Config."""
    from dlterms.params import build_config, parse_value, split_values

    if "=" not in spec:
        raise ValueError(f"{what} takes NAME=V1,V2,..., got {spec!r}")
    name, _, rest = spec.partition("=")
    name = name.strip()
    if name not in declared:
        build_config(cls, {name: ""}, term=term)  # raises: unknown parameter, with "did you mean"
    values = [parse_value(declared[name], v) for v in split_values(rest)]
    if len(values) < least:
        raise ValueError(f"{what} {name!r}: a sweep needs at least two values, got {rest!r}")
    if len(set(map(repr, values))) != len(values):
        raise ValueError(f"{what} {name!r}: values must not repeat, got {rest!r}")
    for v in values:
        build_config(cls, {name: v}, term=term)
    return name, values


def plan_from_text(
    term: str,
    set_spec: str | list[str],
    by_spec: str | None = None,
    seeds: list[int] | None = None,
    metric: str | None = None,
) -> Plan:
    """A plan from the command line's `--set NAME=V1,V2,...` and `--by NAME=V1,V2`. Several `--set`s:
    the one with several values is swept, each other fixes one parameter at every point
    (`--set repeats=1`). ValueError, naming the parameter and the value, for an unknown name (with
    "did you mean"), a bad value, no or two swept parameters, or `by` naming the swept one."""
    from dlterms.params import split_values

    cls, declared = _declared(term)
    specs = [set_spec] if isinstance(set_spec, str) else list(set_spec)
    swept = [s for s in specs if len(split_values(s.partition("=")[2] or "?")) > 1]
    if len(swept) != 1:
        names = ", ".join(repr(s.partition("=")[0]) for s in swept) or "none"
        raise ValueError(
            f"--set: exactly one parameter takes several values (the swept one; use --by for a second), got {names}"
        )
    param, values = _parse_list(term, cls, declared, swept[0], "--set")
    fixed: dict[str, Any] = {}
    for spec in specs:
        if spec is swept[0]:
            continue
        name, (value,) = _parse_list(term, cls, declared, spec, "--set", least=1)
        if name in fixed or name == param:
            raise ValueError(f"--set gives {name!r} twice")
        fixed[name] = value
    by, by_values = None, []
    if by_spec is not None:
        by, by_values = _parse_list(term, cls, declared, by_spec, "--by")
        if by == param or by in fixed:
            raise ValueError(f"--by must name another parameter than --set, got {by!r} for both")
    plan = Plan(term, param, values, list(seeds or DEFAULT_SEEDS), by, by_values, metric, fixed=fixed)
    from dlterms.params import build_config

    for overrides in plan.grid():
        build_config(cls, overrides, term=term)
    return plan


def plan_from_declared(term: str, sweep, seeds: list[int] | None = None) -> Plan:
    """The plan of a `params.Sweep` that `term`'s experiment declares (`seeds` replaces its own)."""
    return Plan(
        term,
        sweep.param,
        list(sweep.values),
        list(seeds if seeds is not None else sweep.seeds),
        sweep.by,
        list(sweep.by_values),
        sweep.metric,
        sweep.question,
        declared=True,
    )


def declared_parameters(term: str) -> tuple[list, tuple]:
    """(the `params.Param`s, the `params.Sweep`s) that `term`'s experiment declares; ([], ()) when it
    declares no Config. For front ends that do not import the runner themselves (the site)."""
    from dlterms.params import params
    from dlterms.run import config_class, declared_sweeps

    cls = config_class(term)
    return (params(cls), tuple(declared_sweeps(term))) if cls is not None else ([], ())


def declared_plans(term: str, seeds: list[int] | None = None) -> list[Plan]:
    from dlterms.run import declared_sweeps

    return [plan_from_declared(term, sw, seeds) for sw in declared_sweeps(term)]


def sweep_dir(out: Path | str, term: str) -> Path:
    return Path(out) / SWEEPS_DIR / term


def runs_dir(out: Path | str, term: str) -> Path:
    return sweep_dir(out, term) / "runs"


# --------------------------------------------------------------------------- summary


def _spread(values: list[float]) -> dict:
    """mean, std (sample; None for one value), min, max, n, the same statistics `dlterms.robustness` uses."""
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "n": n}


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _matches(result, overrides: dict[str, Any]) -> bool:
    """Whether `result` ran with every value of `overrides` (its `config` holds them all)."""
    cfg = result.config or {}
    return all(k in cfg and _json(cfg[k]) == _json(v) for k, v in overrides.items())


def summarize(plan: Plan, results: list) -> dict:
    """The sweep's JSON payload from its Results, each matched to its grid point by the parameters
    it recorded (`config`) and to its seed; a (point, seed) with no result is recorded as
    status "missing" (it counts as a seed where the checks did not all hold)."""
    grid = plan.grid()
    metric = plan.metric
    if metric is None:
        metric = next((r.key_metric for r in results if r.key_metric), None)
    claims: list[str] = []
    points = []
    for overrides in grid:
        runs = []
        for seed in plan.seeds:
            r = next((r for r in results if r.seed == seed and _matches(r, overrides)), None)
            if r is None:
                runs.append(
                    {"seed": seed, "status": "missing", "metric": None, "checks": [], "error": None, "metrics": {}}
                )
                continue
            for c in r.checks:
                if c.claim not in claims:
                    claims.append(c.claim)
            runs.append(
                {
                    "seed": r.seed,
                    "status": r.status,
                    "metric": _number(r.metrics.get(metric)) if metric else None,
                    "checks": [{"claim": c.claim, "passed": c.passed} for c in r.checks],
                    "error": (r.error or "").strip().splitlines()[-1] if r.status == "error" else None,
                    "metrics": {k: v for k, v in r.metrics.items() if _number(v) is not None},
                }
            )
        values = [run["metric"] for run in runs if run["metric"] is not None]
        held = sum(run["status"] == "passed" for run in runs)
        per_check = []
        for claim in claims:
            marks = [c["passed"] for run in runs for c in run["checks"] if c["claim"] == claim]
            if marks:
                per_check.append({"claim": claim, "held": sum(marks), "of": len(runs)})
        point = {
            "value": _json(overrides[plan.param]),
            "label": text(overrides[plan.param]),
            "runs": runs,
            **_spread(values),
            "all_checks_held": held,
            "of": len(runs),
            "checks": per_check,
        }
        if plan.by is not None:
            point["by"] = _json(overrides[plan.by])
            point["by_label"] = text(overrides[plan.by])
        points.append(point)
    payload = {
        "schema": 1,
        "term": plan.term,
        "name": plan.name,
        "question": plan.question,
        "declared": plan.declared,
        "param": plan.param,
        "values": [_json(v) for v in plan.values],
        "by": plan.by,
        "by_values": [_json(v) for v in plan.by_values],
        "seeds": list(plan.seeds),
        "fixed": {k: _json(v) for k, v in plan.fixed.items()},
        "metric": metric,
        "checks": claims,
        "points": points,
    }
    payload["reading"] = reading(payload)
    return payload


def _json(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def mean_text(point: dict) -> str:
    """'0.912 ± 0.011' (one seed: '0.912'; no value: '-')."""
    if point.get("mean") is None:
        return "-"
    return _g(point["mean"]) + (f" ± {_g(point['std'])}" if point.get("std") is not None else "")


def _line_reading(payload: dict, points: list[dict]) -> str:
    param = payload["param"]
    have = [p for p in points if p["mean"] is not None]
    parts = []
    if have:
        hi = max(have, key=lambda p: p["mean"])
        lo = min(have, key=lambda p: p["mean"])
        parts.append(f"{payload['metric']} highest at {param}={hi['label']} ({mean_text(hi)})")
        if lo is not hi:
            parts.append(f"lowest at {param}={lo['label']} ({mean_text(lo)})")
    ok = [p["label"] for p in points if p["all_checks_held"] == p["of"]]
    if len(ok) == len(points):
        parts.append("every check held at every seed and value")
    elif not ok:
        parts.append("some check failed at every value")
    else:
        parts.append(f"every check held at every seed for {param} = {', '.join(ok)} only")
    return "; ".join(parts)


def reading(payload: dict) -> str:
    """A short reading of the sweep, generated from the numbers: where the metric is highest and
    lowest (mean ± std over the seeds), and at which values every check held."""
    if payload.get("metric") is None:
        return "the experiment records no metric to draw"
    if payload.get("by") is None:
        return _line_reading(payload, payload["points"]) + "."
    lines = []
    for b in payload["by_values"]:
        pts = [p for p in payload["points"] if p.get("by") == b]
        lines.append(f"with {payload['by']}={pts[0]['by_label'] if pts else text(b)}: {_line_reading(payload, pts)}")
    return ". ".join(lines) + "."


# --------------------------------------------------------------------------- figure


def draw_svg(payload: dict) -> bytes:
    """The sweep's figure as SVG bytes (deterministic: no date, a fixed hash salt)."""
    import io
    import textwrap

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    values = payload["values"]
    numeric = all(_number(v) is not None for v in values)
    xs = [float(v) for v in values] if numeric else list(range(len(values)))
    labels = [text(v) for v in values]
    if numeric and min(xs) > 0 and max(xs) / min(xs) >= 20:
        ax.set_xscale("log")
    groups = [(None, payload["points"])]
    if payload.get("by") is not None:
        groups = [(b, [p for p in payload["points"] if p.get("by") == b]) for b in payload["by_values"]]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for gi, (b, pts) in enumerate(groups):
        color = colors[gi % len(colors)]
        name = f"{payload['by']}={text(b)}" if b is not None else payload["metric"] or ""
        px = [xs[i] for i, p in enumerate(pts) if p["mean"] is not None]
        py = [p["mean"] for p in pts if p["mean"] is not None]
        err = [p["std"] or 0.0 for p in pts if p["mean"] is not None]
        if px:
            ax.errorbar(px, py, yerr=err, color=color, capsize=3, linewidth=1.5, label=name, zorder=2)
        for i, p in enumerate(pts):
            seed_y = [r["metric"] for r in p["runs"] if r["metric"] is not None]
            ax.scatter([xs[i]] * len(seed_y), seed_y, s=10, color=color, alpha=0.45, zorder=3, linewidths=0)
            if p["mean"] is None:
                continue
            full = p["all_checks_held"] == p["of"]
            ax.scatter(
                [xs[i]], [p["mean"]], s=52, zorder=4, color=color if full else "white", edgecolors=color, linewidths=1.5
            )
            ax.annotate(
                f"{p['all_checks_held']}/{p['of']}",
                (xs[i], p["mean"]),
                textcoords="offset points",
                xytext=(5, 6),
                fontsize=7,
                color=color,
            )
    if not numeric or len(values) <= 8:
        ax.set_xticks(xs, labels)
        ax.minorticks_off()
    ax.set_xlabel(payload["param"])
    ax.set_ylabel(payload["metric"] or "")
    ax.grid(alpha=0.3)
    seeds = payload["seeds"]
    title = payload.get("question") or f"{payload['term']}: {payload['metric']} against {payload['param']}"
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(
            fontsize=7,
            title=f"mean ± std over {len(seeds)} seeds; filled: every check held (k/n seeds)",
            title_fontsize=7,
            loc="best",
        )
    else:
        ax.text(0.5, 0.5, "no value of the metric was recorded", transform=ax.transAxes, ha="center")
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": f"sweep-{payload['term']}-{payload['name']}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


# --------------------------------------------------------------------------- running and files


def save(payload: dict, out: Path | str) -> tuple[Path, Path]:
    """Write `<out>/sweeps/<id>/<name>.json` and `.svg` (each through a temporary file and a rename)."""
    from dlterms.results import atomic_write_bytes, atomic_write_text

    folder = sweep_dir(out, payload["term"])
    js, svg = folder / f"{payload['name']}.json", folder / f"{payload['name']}.svg"
    atomic_write_bytes(svg, draw_svg(payload))
    atomic_write_text(js, json.dumps(payload, indent=1) + "\n")
    return js, svg


def run_sweep(
    plan: Plan, out: Path | str = "results", jobs: int = 1, device: str = "cpu", progress=None, on_result=None
) -> dict:
    """Run every point x seed of `plan` (`jobs` at a time), save the JSON and the figure, return the
    payload. The runs are saved under `<out>/sweeps/<id>/runs/`, never over the default results."""
    from dlterms.run import run_many

    runs_dir(out, plan.term).mkdir(parents=True, exist_ok=True)
    results = run_many(
        [plan.term],
        jobs=jobs,
        seeds=plan.seeds,
        device=device,
        out=runs_dir(out, plan.term),
        configs=plan.grid(),
        progress=progress,
        on_result=on_result,
    )
    payload = summarize(plan, results)
    save(payload, out)
    return payload


def load_sweeps(results: Path | str, term: str) -> list[dict]:
    """The sweeps saved for `term` in `results` (declared ones first, then by name); a file that
    cannot be read is skipped."""
    folder = sweep_dir(results, term)
    found = []
    if folder.is_dir():
        for p in sorted(folder.glob("*.json")):
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(d, dict) and d.get("term") == term and isinstance(d.get("points"), list):
                d["svg"] = p.with_suffix(".svg").name if p.with_suffix(".svg").is_file() else None
                found.append(d)
    return sorted(found, key=lambda d: (not d.get("declared"), d.get("name", "")))
