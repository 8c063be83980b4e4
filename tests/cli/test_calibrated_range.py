"""The calibrated input range: `compile --calibrate` records per input the largest count of one
neuron in one step and of the whole input in one step; `run`, `verify` and `profile` warn,
naming the input, the calibrated and the observed maximum and how many samples and steps
exceed it. Artifacts without the record (uncalibrated, or older) load and do not warn."""
from __future__ import annotations

import re

import nir
import numpy as np
import pytest

from neurodeploy.cli import main as cli
from neurodeploy.format import artifact, input_rules

from helpers.small_nets import two_layer_lif

STEPS, N = 12, 16


def graph() -> nir.NIRGraph:
    return two_layer_lif(N, 10, 4, seed=3, means=(0.4, 0.3), std=0.5)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("calibrated")
    nir.write(tmp / "net.nir", graph())
    calm = np.zeros((4, STEPS, N), dtype=np.float32)
    calm[:, ::3, :5] = 1  # at most 1 per neuron and step, 5 per step in all
    calm[1, 4, 0] = 2  # one count of 2 (at a step without the ones): the calibrated maximum
    np.savez(tmp / "calm.npz", input=calm)
    loud = calm.copy()
    loud[2, 5, :] = 3  # sample 2, step 5: 3 per neuron (over 2), 48 in all (over 5)
    loud[3, 7, 1] = 9  # sample 3, step 7: 9 on one neuron, 9 in all
    np.savez(tmp / "loud.npz", input=loud)
    out = {"tmp": tmp, "calm": tmp / "calm.npz", "loud": tmp / "loud.npz"}
    for name, extra in (("calibrated", ["--calibrate", str(tmp / "calm.npz")]), ("plain", [])):
        out[name] = tmp / f"net.{name}.ndp"
        assert cli.main(["compile", str(tmp / "net.nir"), "--target", "loihi2", "--allow-degraded",
                         "-o", str(out[name])] + extra) == 0
    return out


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: input 'input'")]


def test_compile_records_the_largest_counts(files):
    recorded = artifact.read(files["calibrated"]).calibrated_inputs
    assert recorded == {"input": {"max": 2, "step_max": 5}}  # the two; five ones at every third step
    assert artifact.read(files["plain"]).calibrated_inputs is None


def check_line(line: str) -> None:
    """The line names the input, both maxima and how much exceeds them (counted from ``loud``)."""
    assert "one neuron's count in one step reaches 9, over the calibrated maximum 2, in 2 of 4 samples " \
           f"(2 of {4 * STEPS} sample-steps)" in line, line
    assert "the input's total count in one step reaches 48, over the calibrated maximum 5, in 2 of 4 samples " \
           f"(2 of {4 * STEPS} sample-steps)" in line, line


@pytest.mark.parametrize("command", ["run", "verify", "profile"])
def test_commands_warn_beyond_the_calibrated_range(files, command, capsys):
    extra = {"run": ["-o", str(files["tmp"] / "y.npz")], "verify": ["--json", str(files["tmp"] / "v.json")],
             "profile": []}[command]
    capsys.readouterr()
    assert cli.main([command, str(files["calibrated"]), "--input", str(files["loud"])] + extra) == 0
    lines = warnings_of(capsys.readouterr().err)
    assert len(lines) == 1, lines
    check_line(lines[0])
    assert cli.main([command, str(files["calibrated"]), "--input", str(files["calm"])] + extra) == 0
    assert warnings_of(capsys.readouterr().err) == []  # the calibration data itself is within range


def test_verify_of_a_nir_compiled_with_calibrate_warns(files, capsys):
    capsys.readouterr()
    code = cli.main(["verify", str(files["tmp"] / "net.nir"), "--target", "emulator", "--allow-degraded",
                     "--calibrate", str(files["calm"]), "--input", str(files["loud"])])
    assert code == 0
    lines = warnings_of(capsys.readouterr().err)
    assert len(lines) == 1
    check_line(lines[0])


def test_artifacts_without_the_record_run_silently(files, capsys):
    old = artifact.read(files["calibrated"])
    del old.manifest["provenance"]["calibration"]["input_range"]  # as artifacts were before the record
    artifact.write(old, files["tmp"] / "old.ndp")
    for path in (files["tmp"] / "old.ndp", files["plain"]):
        capsys.readouterr()
        assert cli.main(["run", str(path), "--input", str(files["loud"]), "-o", str(files["tmp"] / "z.npz")]) == 0
        assert warnings_of(capsys.readouterr().err) == []


def test_beyond_range_by_hand():
    x = np.zeros((3, 4, 2, 2))
    x[1, 2] = [[5, 0], [0, 0]]
    assert input_rules.value_range({"a": x}) == {"a": {"max": 5, "step_max": 5}}
    assert input_rules.beyond_range({"a": {"max": 5, "step_max": 5}}, {"a": x}) == []
    line, = input_rules.beyond_range({"a": {"max": 4}}, x)  # one input: a bare array
    assert re.search(r"reaches 5, over the calibrated maximum 4, in 1 of 3 samples \(1 of 12 sample-steps\)", line)
    assert input_rules.beyond_range({"b": {"max": 0}}, {"a": x}) == []  # not calibrated: not checked


def axes_warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "looks like (steps, batch, ...)" in line]


@pytest.mark.parametrize("command", ["run", "verify", "profile"])
def test_an_input_with_the_calibration_steps_first_is_named(files, command, capsys):
    """Calibrated on 12 steps: a (12, 5, 16) input is likely (steps, batch, ...); (5, 20, 16) is not."""
    extra = {"run": ["-o", str(files["tmp"] / "y.npz")], "verify": [], "profile": []}[command]
    swapped = np.zeros((STEPS, 5, N), dtype=np.float32)
    np.savez(files["tmp"] / "swapped.npz", input=swapped)
    np.savez(files["tmp"] / "longer.npz", input=np.zeros((5, 20, N), dtype=np.float32))
    capsys.readouterr()
    assert cli.main([command, str(files["calibrated"]), "--input", str(files["tmp"] / "swapped.npz")] + extra) == 0
    line, = axes_warnings(capsys.readouterr().err)
    assert "input 'input': shape [12, 5, 16]" in line and "calibrated on 12 steps" in line
    assert "runs 5 steps of 12 samples" in line and "swapaxes(0, 1)" in line
    for path in (files["tmp"] / "longer.npz", files["calm"]):
        assert cli.main([command, str(files["calibrated"]), "--input", str(path)] + extra) == 0
        assert axes_warnings(capsys.readouterr().err) == []
    assert cli.main([command, str(files["plain"]), "--input", str(files["tmp"] / "swapped.npz")] + extra) == 0
    assert axes_warnings(capsys.readouterr().err) == []  # no calibration: no hint of the steps


def test_an_input_one_axis_short_is_named(files, capsys):
    np.savez(files["tmp"] / "short.npz", input=np.zeros((STEPS, N), dtype=np.float32))
    capsys.readouterr()
    assert cli.main(["run", str(files["plain"]), "--input", str(files["tmp"] / "short.npz"),
                     "-o", str(files["tmp"] / "s.npz")]) == 2
    err = capsys.readouterr().err
    assert "shape [12, 16] does not match (batch, steps, 16)" in err and "one axis too few" in err
    assert "array[None]" in err and "array[:, None]" in err


@pytest.mark.parametrize("command", ["run", "verify", "profile"])
@pytest.mark.parametrize("shard_size", ["1", "3"])
def test_shards_warn_as_one_run(files, command, shard_size, capsys):
    """In shards (the way --workers runs them) each shard checks its own samples and the client
    merges the counts: the same line as one run, though the excess lies in two different shards."""
    extra = {"run": ["-o", str(files["tmp"] / "ys.npz")], "verify": ["--json", str(files["tmp"] / "vs.json")],
             "profile": []}[command]
    capsys.readouterr()
    args = [command, str(files["calibrated"]), "--input", str(files["loud"]), "--shard-size", shard_size]
    assert cli.main(args + extra) == 0
    lines = warnings_of(capsys.readouterr().err)
    assert len(lines) == 1, lines
    check_line(lines[0])


def test_excess_merges_over_any_split():
    rng = np.random.default_rng(11)
    x = rng.poisson(0.8, size=(9, 7, 5)).astype(np.float32)
    calibrated = {"input": {"max": 2, "step_max": 6}}
    whole = input_rules.range_excess(calibrated, x)
    assert whole["input"]["max"]["over_steps"] > 0 and whole["input"]["step_max"]["over_steps"] > 0
    for cuts in ([1, 2, 3, 4, 5, 6, 7, 8], [4], [2, 7]):
        parts = [input_rules.range_excess(calibrated, part) for part in np.split(x, cuts)]
        assert input_rules.merge_excess(parts) == whole
    assert input_rules.excess_lines(whole) == input_rules.beyond_range(calibrated, x)
