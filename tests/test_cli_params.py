"""`dlterms show` lists the declared parameters; `dlterms run --set NAME=VALUE` parses them by type,
refuses bad names and values in one line (exit 2), and saves a non-default run beside the default
one, never over it. One real run of quantization at epochs=2, repeats=1 (a few seconds)."""

from __future__ import annotations

import json

import pytest

from dlterms import params
from dlterms.cli import main
from dlterms.run import config_class, declared_sweeps

TERM = "quantization"  # declares a Config; cheap at epochs=2, repeats=1


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_show_lists_every_parameter_with_type_default_and_help(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping of the table's cells
    assert main(["show", TERM, "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for p in params.params(config_class(TERM)):
        assert p.name in out and p.help in out
    assert "--set NAME=VALUE" in out
    for sw in declared_sweeps(TERM):
        assert f"sweep: {sw.param}=" in out and sw.question.split()[0] in out


def test_show_json_has_config_with_default_type_and_help(capsys, tmp_path):
    assert main(["show", TERM, "--json", "--results", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)
    declared = params.params(config_class(TERM))
    assert list(d["config"]) == [p.name for p in declared]
    for p in declared:
        assert d["config"][p.name] == {
            "default": list(p.default) if isinstance(p.default, tuple) else p.default,
            "type": p.type,
            "help": p.help,
        }
    assert [s["param"] for s in d["sweeps"]] == [sw.param for sw in declared_sweeps(TERM)]
    assert [s["question"] for s in d["sweeps"]] == [sw.question for sw in declared_sweeps(TERM)]
    assert d["custom_results"] == []


def test_show_json_config_is_null_for_a_term_without_parameters(capsys, tmp_path, monkeypatch):
    from dlterms import run as runmod

    monkeypatch.setattr(runmod, "config_class", lambda term: None)  # as an experiment declaring none
    assert main(["show", TERM, "--json", "--results", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["config"] is None and d["sweeps"] == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "epoch=3"], ["unknown parameter 'epoch'", "did you mean 'epochs'"]),
        (["--set", "epochs=three"], ["parameter 'epochs'", "'three'"]),
        (["--set", "lr=fast"], ["parameter 'lr'", "'fast'"]),
        (["--set", "sizes=64,x,10"], ["parameter 'sizes'", "'64,x,10'"]),
        (["--set", "epochs=0"], ["epochs", "0"]),  # the Config's own validation
        (["--set", "epochs"], ["NAME=VALUE", "'epochs'"]),
        (["--set", "=3"], ["NAME=VALUE"]),
        (["--set", "epochs=2", "--set", "epochs=3"], ["'epochs' twice"]),
        (["--seeds", "0-1", "--set", "epochz=2"], ["did you mean 'epochs'"]),
    ],
)
def test_bad_set_is_one_line_and_exit_2(capsys, tmp_path, args, words):
    assert main(["run", TERM, "--out", str(tmp_path), *args]) == 2
    line = _err_line(capsys)
    assert line.startswith("dlterms: error:")
    for w in words:
        assert w in line
    assert not any(tmp_path.iterdir()), "nothing may be written before the parameters are valid"


def test_set_on_a_term_without_parameters_is_refused(capsys, tmp_path, monkeypatch):
    from dlterms import run as runmod

    monkeypatch.setattr(runmod, "config_class", lambda term: None)  # as an experiment declaring none
    assert main(["run", TERM, "--set", "p=0.2", "--out", str(tmp_path)]) == 2
    assert "declares no parameters" in _err_line(capsys)
    assert not any(tmp_path.iterdir())


def test_set_runs_apart_and_never_overwrites_the_default(capsys, tmp_path):
    default = tmp_path / f"{TERM}.json"
    default.write_text('{"a default result": "kept byte for byte"}\n', encoding="utf-8")
    before = default.read_bytes()
    code = main(["run", TERM, "--set", "epochs=2", "--set", "repeats=1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert default.read_bytes() == before
    saved = params.custom_dir(tmp_path, TERM, params.build_config(config_class(TERM), {"epochs": 2, "repeats": 1}))
    assert saved == tmp_path / "custom" / TERM / "epochs=2,repeats=1"
    d = json.loads((saved / f"{TERM}.json").read_text(encoding="utf-8"))
    assert d["default"] is False
    assert d["config"]["epochs"] == 2 and d["config"]["repeats"] == 1
    assert d["config"]["sizes"] == list(config_class(TERM)().sizes)  # the full config, not the changes
    assert "non-default parameters: epochs=2, repeats=1" in " ".join(out.split())
    assert code == (0 if d["status"] == "passed" else 1)  # exit 0 only when every check held
    for f in d["figures"]:
        assert (saved / f["path"]).is_file()
    assert not list(tmp_path.glob(f"{TERM}-*.svg")), "figures of the custom run stay in its own folder"

    # show and summary mark it as non-default, beside the (here absent) default result
    assert main(["show", TERM, "--results", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["custom_results"][0]["changed"] == "epochs=2, repeats=1"
    assert main(["show", TERM, "--results", str(tmp_path)]) == 0
    assert "non-default parameters epochs=2, repeats=1" in " ".join(capsys.readouterr().out.split())
