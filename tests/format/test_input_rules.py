"""One set of input rules on every target and command, and one name per recordable state."""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.cli import main as cli
from neurodeploy.errors import InputDataError, OptionError
from neurodeploy.format.npzio import read_inputs

TARGETS = ("loihi2", "spinnaker", "emulator")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.nir"
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([4])), nir.Affine(rng.normal(0.5, 0.2, (3, 4)), np.zeros(3)),
        nir.LIF(tau=np.full(3, 0.02), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
        nir.Output(np.array([3])))
    graph.metadata = {"neurodeploy.dt": 1e-3, "neurodeploy.integrator": "euler", "neurodeploy.reset": "zero",
                      "neurodeploy.spike_amplitude": 1.0}
    nir.write(str(path), graph)
    return path


@pytest.fixture(scope="module")
def artifacts(model: Path) -> dict[str, Path]:
    out = {}
    for target in TARGETS:
        out[target] = model.with_suffix(f".{target}.ndp")
        assert cli.main(["compile", str(model), "--target", target, "-o", str(out[target])]) == 0
    return out


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _spikes(shape=(2, 6, 4)) -> np.ndarray:
    return (np.random.default_rng(1).random(shape) < 0.3).astype(np.float32)


def _error(capsys, *parts: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert lines and lines[-1].startswith("error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[-1], lines[-1]
    return lines[-1]


@pytest.mark.parametrize("target", TARGETS)
def test_negative_counts_refused_on_every_target(target, artifacts, tmp_path, capsys):
    data = _spikes()
    data[1, 2, 3] = -1
    path = _npz(tmp_path / "neg.npz", input=data)
    code = cli.main(["run", str(artifacts[target]), "--input", str(path), "-o", str(tmp_path / "o.npz")])
    assert code != 0
    _error(capsys, "neg.npz", "'input'", "negative", "[1, 2, 3]")
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("target", TARGETS)
def test_fractional_counts_refused_on_every_target(target, artifacts, tmp_path, capsys):
    data = _spikes()
    data[0, 1, 0] = 0.5
    path = _npz(tmp_path / "half.npz", input=data)
    code = cli.main(["run", str(artifacts[target]), "--input", str(path), "-o", str(tmp_path / "o.npz")])
    assert code != 0
    _error(capsys, "half.npz", "'input'", "non-integer", "simulate")


def test_api_run_refuses_negative_counts_on_loihi2(artifacts):
    from neurodeploy.api import run

    data = _spikes()
    data[0, 0, 0] = -2
    with pytest.raises(InputDataError, match="negative"):
        run(str(artifacts["loihi2"]), data)


@pytest.mark.parametrize("command", ["compile", "check"])
def test_calibration_follows_the_same_rules(command, model, tmp_path, capsys):
    path = _npz(tmp_path / "cal.npz", input=_spikes() * 0.37)
    args = [command, str(model), "--target", "loihi2", "--calibrate", str(path)]
    if command == "compile":
        args += ["-o", str(tmp_path / "m.ndp")]
    assert cli.main(args) not in (0, 1)
    _error(capsys, "cal.npz", "'input'", "non-integer")


def test_verify_and_profile_follow_the_same_rules(artifacts, tmp_path, capsys):
    data = _spikes()
    data[0, 0, 0] = -1
    path = _npz(tmp_path / "neg.npz", input=data)
    assert cli.main(["verify", str(artifacts["loihi2"]), "--input", str(path)]) not in (0, 1)
    _error(capsys, "neg.npz", "negative")
    assert cli.main(["profile", str(artifacts["loihi2"]), "--input", str(path)]) not in (0, 1)
    _error(capsys, "neg.npz", "negative")


def test_simulate_takes_graded_values(model, tmp_path, capsys):
    path = _npz(tmp_path / "graded.npz", input=np.random.default_rng(2).normal(0, 1, (2, 6, 4)))
    assert cli.main(["simulate", str(model), "--input", str(path), "-o", str(tmp_path / "o.npz")]) == 0


def test_run_echoes_samples_and_steps(artifacts, tmp_path, capsys):
    path = _npz(tmp_path / "ok.npz", input=_spikes((2, 6, 4)))
    assert cli.main(["run", str(artifacts["loihi2"]), "--input", str(path), "-o", str(tmp_path / "o.npz")]) == 0
    assert "2 samples x 6 steps" in capsys.readouterr().out


def test_steps_batch_mixup_named(tmp_path):
    path = _npz(tmp_path / "two.npz", **{"input.a": np.zeros((2, 6, 4)), "input.b": np.zeros((6, 2, 2))})
    with pytest.raises(InputDataError) as info:
        read_inputs(path, {"a": (4,), "b": (2,)})
    message = str(info.value)
    assert "two.npz" in message and "'input.b'" in message and "(steps, batch, ...)" in message
    one = _npz(tmp_path / "one.npz", input=np.zeros((24, 3, 4)))
    with pytest.raises(InputDataError, match=r"one\.npz.*\(steps, batch, \.\.\.\).*24 steps"):
        read_inputs(one, {"input": (4,)}, steps=24)


# ---------------------------------------------------------------- --record names

@pytest.mark.parametrize("target", ["loihi2", "emulator", "spinnaker"])
def test_record_i_is_the_current_everywhere(target, artifacts, tmp_path):
    path = _npz(tmp_path / "ok.npz", input=_spikes())
    out = tmp_path / "o.npz"
    assert cli.main(["run", str(artifacts[target]), "--input", str(path), "-o", str(out), "--record", "v,i"]) == 0
    with np.load(out) as data:
        assert any(k.startswith("i.") for k in data.files), data.files
        assert any(k.startswith("v.") for k in data.files)


def test_record_u_stays_an_alias_on_loihi2(artifacts, tmp_path):
    path = _npz(tmp_path / "ok.npz", input=_spikes())
    out_i, out_u = tmp_path / "i.npz", tmp_path / "u.npz"
    assert cli.main(["run", str(artifacts["loihi2"]), "--input", str(path), "-o", str(out_i), "--record", "i"]) == 0
    assert cli.main(["run", str(artifacts["loihi2"]), "--input", str(path), "-o", str(out_u), "--record", "u"]) == 0
    with np.load(out_i) as a, np.load(out_u) as b:
        keys = [k for k in a.files if k.startswith("i.")]
        assert keys
        for key in keys:
            np.testing.assert_array_equal(a[key], b["u." + key[2:]])


@pytest.mark.parametrize("target", TARGETS)
def test_unknown_record_name_refused_with_the_valid_ones(target, artifacts, tmp_path, capsys):
    path = _npz(tmp_path / "ok.npz", input=_spikes())
    code = cli.main(["run", str(artifacts[target]), "--input", str(path), "-o", str(tmp_path / "o.npz"),
                     "--record", "current"])
    assert code != 0
    _error(capsys, "--record current", "v, i")
    assert not (tmp_path / "o.npz").exists()


def test_record_spikes_is_a_note_not_an_error(artifacts, model, tmp_path, capsys):
    path = _npz(tmp_path / "ok.npz", input=_spikes())
    assert cli.main(["run", str(artifacts["loihi2"]), "--input", str(path), "-o", str(tmp_path / "o.npz"),
                     "--record", "spikes"]) == 0
    assert "always records spikes" in capsys.readouterr().err
    assert cli.main(["simulate", str(model), "--input", str(path), "-o", str(tmp_path / "s.npz"),
                     "--record", "spikes,v"]) == 0
    assert "always records spikes" in capsys.readouterr().err


def test_simulate_record_names(model, tmp_path, capsys):
    path = _npz(tmp_path / "ok.npz", input=_spikes())
    out = tmp_path / "s.npz"
    assert cli.main(["simulate", str(model), "--input", str(path), "-o", str(out), "--record", "u"]) == 0
    with np.load(out) as data:
        assert any(k.startswith("u.") for k in data.files)
    assert cli.main(["simulate", str(model), "--input", str(path), "-o", str(out), "--record", "w"]) != 0
    _error(capsys, "--record w", "v, i")


def test_record_module_refuses_unknown_names():
    from neurodeploy import recording

    with pytest.raises(OptionError, match="v, i"):
        recording.parse("x", recording.names("lava", "loihi2"), "run")


def test_api_names_and_rules(artifacts, model):
    from neurodeploy import api

    with pytest.raises(OptionError, match="v, i"):
        api.run(str(artifacts["loihi2"]), _spikes(), record=("w",))
    with pytest.raises(OptionError, match="v, i"):
        api.simulate(str(model), _spikes(), record=("w",), warn=False)
    with pytest.raises(InputDataError, match="non-integer"):
        api.compile(str(model), "loihi2", calibrate=_spikes() * 0.5)
