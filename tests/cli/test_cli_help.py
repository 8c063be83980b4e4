"""The command line reads like its peers: every command describes itself with an example, every
option has help, ``--json [FILE]`` means the same in every command, errors under it are JSON."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.cli import main as cli
from neurodeploy.models import ZOO_DIR


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


COMMANDS = sorted(_subparsers())
JSON_COMMANDS = sorted(name for name, p in _subparsers().items()
                       if any("--json" in a.option_strings for a in p._actions))


def _main(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_is_listed() -> None:
    assert {"inspect", "simulate", "doctor", "compile", "check", "run", "verify", "profile", "export", "convert",
            "sweep"} <= set(COMMANDS)
    assert JSON_COMMANDS == ["check", "profile", "sweep", "verify"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_a_description_and_an_example(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    parser = _subparsers()[command]
    assert parser.description and parser.description.strip() in text
    assert isinstance(parser.formatter_class, type) and issubclass(parser.formatter_class,
                                                                    argparse.RawDescriptionHelpFormatter)
    example = [line for line in text.splitlines() if line.startswith("Example")]
    assert example, text
    assert f"neurodeploy {command}" in text.split("Example", 1)[1]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help(command: str) -> None:
    missing = [a.option_strings or a.dest for a in _subparsers()[command]._actions
               if not isinstance(a, argparse._HelpAction) and not (a.help and a.help.strip())]
    assert not missing, f"{command}: options without help: {missing}"


def test_top_level_help_has_an_example(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "Example:" in capsys.readouterr().out


@pytest.mark.parametrize("command", JSON_COMMANDS)
def test_json_takes_an_optional_file(command: str) -> None:
    action = next(a for a in _subparsers()[command]._actions if "--json" in a.option_strings)
    assert action.nargs == "?" and action.const == "-" and action.metavar == "FILE"
    assert "stdout" in action.help and "FILE" in action.help


# ---------------------------------------------------------------- --json behaves the same everywhere


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("help")
    model = folder / "model.nir"
    shutil.copy(ZOO_DIR / "lif_paper.nir", model)
    inputs = folder / "in.npz"
    np.savez(inputs, input=(np.random.default_rng(0).random((2, 20, 1)) < 0.3).astype(np.float32))
    ndp = folder / "model.loihi2.ndp"
    assert cli.main(["compile", str(model), "--target", "loihi2", "-o", str(ndp)]) == 0
    return {"model": model, "inputs": inputs, "ndp": ndp}


def _command_line(command: str, files: dict[str, Path]) -> list[object]:
    return {"check": ["check", files["model"], "--target", "loihi2"],
            "verify": ["verify", files["ndp"], "--input", files["inputs"]],
            "profile": ["profile", files["ndp"], "--input", files["inputs"]],
            "sweep": ["sweep", files["model"], "--input", files["inputs"], "--targets", "emulator"]}[command]


@pytest.mark.parametrize("command", JSON_COMMANDS)
def test_json_to_stdout_or_a_file(command: str, files: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    base = _command_line(command, files)
    code, out, _ = _main(capsys, *base, "--json")
    printed = json.loads(out)  # stdout holds the JSON and nothing else
    assert code in (0, 1)
    code_dash, out_dash, _ = _main(capsys, *base, "--json", "-")
    assert code_dash == code and json.loads(out_dash).keys() == printed.keys()
    target = tmp_path / "out.json"
    code_file, out_file, _ = _main(capsys, *base, "--json", target)
    assert code_file == code and f"wrote {target}" in out_file
    assert json.loads(target.read_text()).keys() == printed.keys()


@pytest.mark.parametrize("command", JSON_COMMANDS)
def test_errors_under_json_are_json(command: str, files: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    base = _command_line(command, files)
    missing = tmp_path / "missing.npz"
    args = [missing if a == files["inputs"] else a for a in base]
    if command == "check":
        args = ["check", tmp_path / "missing.nir", "--target", "loihi2"]
    code, out, err = _main(capsys, *args, "--json")
    assert code == 2 and err.startswith("error: ")
    error = json.loads(out)
    assert error["exit_status"] == 2 and "missing" in error["error"]


def test_usage_errors_under_json_are_json(files: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["check", str(files["model"]), "--target", "loihi3", "--json"])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == {"error": json.loads(out)["error"], "exit_status": 2}
    assert "loihi3" in json.loads(out)["error"] and err.startswith("error: ")


def test_json_value_that_is_an_input_is_named(files: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["check", "--json", str(files["model"]), "--target", "loihi2"])
    err = capsys.readouterr().err
    assert "is not a JSON output" in err and "after the positional arguments" in err


def test_errors_with_a_json_file_stay_lines(files: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    """With --json FILE stdout is for people: an error is the usual line on stderr, nothing is written."""
    code, out, err = _main(capsys, "verify", files["ndp"], "--input", tmp_path / "missing.npz", "--json",
                           tmp_path / "v.json")
    assert code == 2 and out == "" and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v.json").exists()
