"""Declared parameters (dlterms.params) and runs with other parameters (run_experiment(config=...))."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest

from dlterms import glossary, params
from dlterms.run import config_class, run_experiment


@dataclass(frozen=True)
class Demo:
    p: float = 0.5  # dropout probability
    epochs: int = 3  # training epochs
    widths: tuple[int, ...] = (8, 8)  # hidden widths
    names: tuple[str, ...] = ("a",)  # arm names
    shuffle: bool = True  # shuffle each epoch
    mode: str = "fast"  # which path

    def __post_init__(self) -> None:
        if not 0 <= self.p < 1:
            raise ValueError(f"p must be in [0, 1), got {self.p!r}")


def test_params_read_types_defaults_and_help_comments():
    got = {p.name: (p.type, p.default, p.help) for p in params.params(Demo)}
    assert got == {
        "p": ("float", 0.5, "dropout probability"),
        "epochs": ("int", 3, "training epochs"),
        "widths": ("tuple[int, ...]", (8, 8), "hidden widths"),
        "names": ("tuple[str, ...]", ("a",), "arm names"),
        "shuffle": ("bool", True, "shuffle each epoch"),
        "mode": ("str", "fast", "which path"),
    }
    assert params.params(Demo)[2].to_dict() == {"default": [8, 8], "type": "tuple[int, ...]", "help": "hidden widths"}


@pytest.mark.parametrize(
    "text, value",
    [
        ({"p": "0.2"}, 0.2),
        ({"epochs": "7"}, 7),
        ({"widths": "16,4"}, (16, 4)),
        ({"widths": "[16]"}, (16,)),
        ({"shuffle": "false"}, False),
        ({"shuffle": "1"}, True),
        ({"mode": "slow"}, "slow"),
        ({"p": 0}, 0.0),
    ],
)
def test_build_config_parses_text_by_type(text, value):
    cfg = params.build_config(Demo, text)
    assert getattr(cfg, next(iter(text))) == value
    assert not params.is_default(cfg) or value == getattr(Demo(), next(iter(text)))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epoch": "3"}, "unknown parameter 'epoch' of 'demo'; did you mean 'epochs'?"),
        ({"zzz": "3"}, "unknown parameter 'zzz' of 'demo' (parameters: p, epochs"),
        ({"epochs": "2.5"}, "parameter 'epochs' takes int values, got '2.5'"),
        ({"p": "high"}, "parameter 'p' takes float values, got 'high'"),
        ({"shuffle": "maybe"}, "parameter 'shuffle' takes bool values, got 'maybe'"),
        ({"widths": "8,x"}, "parameter 'widths' takes a list of int values, got '8,x'"),
        ({"epochs": True}, "parameter 'epochs' takes int values, got True"),
        ({"p": "1.5"}, "p must be in [0, 1), got 1.5"),
    ],
)
def test_build_config_rejects_bad_names_and_values(overrides, message):
    with pytest.raises(ValueError) as exc:
        params.build_config(Demo, overrides, term="demo")
    assert message in str(exc.value)


def test_split_values_keeps_bracketed_lists_whole():
    assert params.split_values("0,0.2,0.5") == ["0", "0.2", "0.5"]
    assert params.split_values("[32],[64,64]") == ["[32]", "[64,64]"]
    with pytest.raises(ValueError, match="empty items"):
        params.split_values("1,,2")


def test_changed_describe_and_tag():
    cfg = params.build_config(Demo, {"p": "0.2", "widths": "4,4"})
    assert params.changed(cfg) == {"p": 0.2, "widths": (4, 4)}
    assert params.describe(cfg) == "p=0.2, widths=[4,4]"
    assert params.config_tag(cfg) == "p=0.2,widths=[4,4]"
    long = params.build_config(Demo, {"mode": "x" * 100})
    assert params.config_tag(long).startswith("cfg-") and len(params.config_tag(long)) == 16
    with pytest.raises(ValueError, match="non-default"):
        params.custom_dir("results", "demo", Demo())


def test_unsupported_declarations_are_rejected():
    @dataclass
    class NoDefault:
        n: int

    @dataclass
    class Listy:
        xs: list = dataclasses.field(default_factory=list)

    with pytest.raises(ValueError, match="has no default"):
        params.params(NoDefault)
    with pytest.raises(ValueError):
        params.params(Listy)
    with pytest.raises(ValueError, match="must be a dataclass"):
        params.params(int)


def _declared_ids() -> list[str]:
    return [e.id for e in glossary.entries() if e.experiment and config_class(e.id) is not None]


@pytest.mark.parametrize("term", _declared_ids())
def test_every_declared_parameter_has_help_and_a_frozen_config(term):
    cls = config_class(term)
    assert cls.__name__ == "Config" and cls.__dataclass_params__.frozen, f"{term}: Config must be frozen"
    for p in params.params(cls):
        assert p.help, f"{term}: parameter {p.name!r} has no help comment"
    cls()  # the defaults pass the Config's own validation


def test_a_non_default_run_is_saved_beside_the_default_never_over_it(tmp_path):
    default_file = tmp_path / "quantization.json"
    default_file.write_text("sentinel")
    r = run_experiment("quantization", out=tmp_path, config={"epochs": "2", "bit_widths": "8,4", "repeats": "1"})
    assert default_file.read_text() == "sentinel"
    assert r.default is False and r.config["epochs"] == 2 and r.config["bit_widths"] == [8, 4]
    saved = tmp_path / "custom" / "quantization" / "bit_widths=[8,4],epochs=2,repeats=1" / "quantization.json"
    d = json.loads(saved.read_text())
    assert d["default"] is False and d["config"]["repeats"] == 1 and d["checks"]
    for f in d["figures"]:
        assert (saved.parent / f["path"]).exists()


def test_bad_overrides_fail_before_running(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'epochs'"):
        run_experiment("quantization", out=tmp_path, config={"epoch": "2"})
    assert not any(tmp_path.iterdir())
    undeclared = next((e.id for e in glossary.entries() if e.experiment and config_class(e.id) is None), None)
    if undeclared is not None:  # once every experiment declares parameters there is none left to try
        with pytest.raises(ValueError, match="declares no parameters"):
            run_experiment(undeclared, out=tmp_path, config={"x": "1"})
