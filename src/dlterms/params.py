"""Declared parameters: what a reader may change in an experiment, and how a changed run is kept apart.

An experiment declares its parameters as a frozen dataclass named `Config`, one trailing comment per
field (its help), and registers it with the experiment:

    @dataclass(frozen=True)
    class Config:
        p: float = 0.5  # dropout probability of the hidden layers
        epochs: int = 30  # training epochs of each arm

    @experiment("dropout", config=Config)
    def dropout(run: Run, cfg: Config) -> None: ...

The defaults are the recorded run. This module reads such a class (`params`), parses `NAME=VALUE`
text by each field's type (`parse_value`, `build_config`), and says where a run with other values is
saved (`custom_dir`), so that it never replaces the default result the site shows:

    <out>/custom/<id>/<tag>/<id>.json    a run with other parameters; <tag> names the changed values
                                         (`p=0.2,epochs=10`), or is a short hash when that is too long
    <out>/sweeps/<id>/<name>.json        a sweep of the declared parameters over values x seeds, and its
                                         .svg; the sweep's runs under <out>/sweeps/<id>/runs/ (`dlterms.sweep`)

Field types are `int`, `float`, `bool`, `str` and `tuple[X, ...]` of those. A tuple is written with
commas, in brackets where that would be ambiguous: `widths=64,64` or `widths=[64,64]`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import io
import re
import tokenize
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CUSTOM_DIR = "custom"
_SCALARS = (int, float, bool, str)


@dataclass(frozen=True)
class Param:
    """One declared parameter: its name, type (as written: 'int', 'tuple[int, ...]'), default, help."""

    name: str
    type: str
    default: Any
    help: str

    def to_dict(self) -> dict:
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {"default": default, "type": self.type, "help": self.help}


@dataclass(frozen=True)
class Sweep:
    """A sweep an experiment declares: its key metric (or `metric`) against one parameter, over
    `values` and `seeds`, to show when the technique helps. `question` is what the sweep asks, as
    the page shows it ("How much does dropout help as the training set grows?"). With `by`, a second
    parameter and its values, the figure draws one line per `by` value (e.g. dropout p x data size)."""

    param: str
    values: tuple
    question: str
    seeds: tuple[int, ...] = (0, 1, 2)
    metric: str | None = None
    by: str | None = None
    by_values: tuple = ()

    def __post_init__(self) -> None:
        if len(self.values) < 2:
            raise ValueError(f"a sweep needs at least two values, got {self.values!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"a sweep's seeds must be distinct and not empty, got {self.seeds!r}")
        if (self.by is None) != (not self.by_values):
            raise ValueError("a sweep's 'by' and 'by_values' go together")
        if not self.question.strip():
            raise ValueError("a sweep needs a question")

    def validate(self, cls: type, term: str = "") -> None:
        """ValueError unless every value is a valid value of its parameter in `cls`."""
        for name, values in ((self.param, self.values), (self.by, self.by_values)):
            if name is None:
                continue
            for v in values:
                build_config(cls, {name: v}, term=term)


def _kind(annotation: Any) -> tuple[type, bool]:
    """(scalar type, is_tuple) of a supported annotation; ValueError for any other."""
    if annotation in _SCALARS:
        return annotation, False
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALARS:
            return args[0], True
    raise ValueError(f"unsupported parameter type {annotation!r}: use int, float, bool, str or tuple[X, ...]")


def _type_name(scalar: type, is_tuple: bool) -> str:
    return f"tuple[{scalar.__name__}, ...]" if is_tuple else scalar.__name__


def _comments(cls: type) -> dict[str, str]:
    """The trailing `# comment` of each `name: type = default` line in the class's source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    lines = source.splitlines()
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        line = lines[tok.start[0] - 1]
        m = re.match(r"\s+([A-Za-z_]\w*)\s*:", line)
        if m and line[: tok.start[1]].strip():
            found[m.group(1)] = tok.string.lstrip("#").strip()
    return found


def params(cls: type) -> list[Param]:
    """The declared parameters of a Config dataclass, in order. ValueError when `cls` is not a
    dataclass, a field has no default or an unsupported type."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"a config must be a dataclass, got {cls!r}")
    hints = typing.get_type_hints(cls)
    helps = _comments(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING:
            raise ValueError(f"parameter {f.name!r} of {cls.__qualname__} has no default")
        scalar, is_tuple = _kind(hints[f.name])
        out.append(Param(f.name, _type_name(scalar, is_tuple), f.default, helps.get(f.name, "")))
    return out


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _parse_scalar(name: str, scalar: type, text: str) -> Any:
    t = text.strip()
    try:
        if scalar is bool:
            if t.lower() in _TRUE:
                return True
            if t.lower() in _FALSE:
                return False
            raise ValueError
        if scalar is int:
            return int(t)
        if scalar is float:
            return float(t)
        return text
    except ValueError:
        raise ValueError(f"parameter {name!r} takes {scalar.__name__} values, got {text!r}") from None


def parse_value(param: Param, text: str) -> Any:
    """`text` as a value of `param`'s type: '0.2' -> 0.2, 'true' -> True, '64,64' or '[64,64]' -> (64, 64)."""
    if not isinstance(text, str):
        raise ValueError(f"parameter {param.name!r}: expected text, got {text!r}")
    m = re.fullmatch(r"(\w+)(?:\[(\w+), \.\.\.\])?", param.type)
    assert m is not None
    if m.group(2) is None:
        return _parse_scalar(param.name, {"int": int, "float": float, "bool": bool, "str": str}[param.type], text)
    scalar = {"int": int, "float": float, "bool": bool, "str": str}[m.group(2)]
    inner = text.strip()
    if inner[:1] in "[(" and inner[-1:] in "])":
        inner = inner[1:-1]
    parts = [p for p in inner.split(",")] if inner.strip() else []
    try:
        return tuple(_parse_scalar(param.name, scalar, p) for p in parts)
    except ValueError:
        raise ValueError(f"parameter {param.name!r} takes a list of {scalar.__name__} values, got {text!r}") from None


def split_values(text: str) -> list[str]:
    """Split a sweep's `V1,V2,...` at the commas outside brackets: '[32],[64,64]' -> ['[32]', '[64,64]']."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    if any(not v.strip() for v in out):
        raise ValueError(f"a list of values must not have empty items, got {text!r}")
    return out


def _check_typed(param: Param, value: Any) -> Any:
    """A value given as a Python object (not text), checked against the parameter's type."""
    m = re.fullmatch(r"(\w+)(?:\[(\w+), \.\.\.\])?", param.type)
    assert m is not None
    types = {"int": int, "float": float, "bool": bool, "str": str}

    def one(v: Any, scalar: type) -> Any:
        if scalar is float and isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        if scalar in (int, float) and isinstance(v, bool):
            raise ValueError(f"parameter {param.name!r} takes {scalar.__name__} values, got {v!r}")
        if not isinstance(v, scalar):
            raise ValueError(f"parameter {param.name!r} takes {scalar.__name__} values, got {v!r}")
        return v

    if m.group(2) is None:
        return one(value, types[m.group(1)])
    if not isinstance(value, list | tuple):
        raise ValueError(f"parameter {param.name!r} takes a list of {m.group(2)} values, got {value!r}")
    return tuple(one(v, types[m.group(2)]) for v in value)


def build_config(cls: type, overrides: dict[str, Any] | None = None, term: str = "") -> Any:
    """`cls(**defaults)` with `overrides` applied. A text value is parsed by the field's type, any
    other is checked against it. ValueError for an unknown name (with the closest names), a value of
    the wrong type, or a value the Config's own validation rejects."""
    declared = {p.name: p for p in params(cls)}
    values: dict[str, Any] = {}
    where = f" of {term!r}" if term else ""
    for name, value in (overrides or {}).items():
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(declared) or "none"
            raise ValueError(f"unknown parameter {name!r}{where}{hint} (parameters: {known})")
        p = declared[name]
        values[name] = parse_value(p, value) if isinstance(value, str) else _check_typed(p, value)
    return cls(**values)


def config_dict(cfg: Any) -> dict[str, Any]:
    """The values of a Config instance, JSON-ready (tuples as lists)."""
    return {
        f.name: list(getattr(cfg, f.name)) if isinstance(getattr(cfg, f.name), tuple) else getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
    }


def changed(cfg: Any) -> dict[str, Any]:
    """The parameters of `cfg` that differ from their defaults."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != f.default}


def is_default(cfg: Any) -> bool:
    return cfg is None or not changed(cfg)


def _text(v: Any) -> str:
    if isinstance(v, tuple):
        return "[" + ",".join(_text(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def describe(cfg: Any) -> str:
    """The changed values as `name=value` text ('p=0.2, epochs=10'); '' for the defaults."""
    return ", ".join(f"{k}={_text(v)}" for k, v in changed(cfg).items())


def config_tag(cfg: Any) -> str:
    """A folder name for a non-default config: the changed values, or a short hash when too long."""
    text = ",".join(f"{k}={_text(v)}" for k, v in sorted(changed(cfg).items()))
    safe = re.sub(r"[^A-Za-z0-9._=,+\-\[\]]", "_", text)
    if len(safe) > 80 or safe != text:
        return "cfg-" + hashlib.sha1(text.encode()).hexdigest()[:12]
    return safe


def custom_dir(out: Path | str, term: str, cfg: Any) -> Path:
    """Where a run of `term` with non-default `cfg` is saved: `<out>/custom/<term>/<tag>/`."""
    if is_default(cfg):
        raise ValueError("custom_dir is for non-default configs; the default run is saved in <out>")
    return Path(out) / CUSTOM_DIR / term / config_tag(cfg)
