"""Run-time overflow counters (emulator/overflow.py): a dense network driven far beyond its range
overflows on every target and the numpy and compiled kernels count the same; a calm one counts zero."""
from __future__ import annotations

import copy
import warnings

import nir
import numpy as np
import pytest

from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.emulator import fixed_point, overflow, spinnaker

from helpers.small_nets import two_layer_lif

TARGETS = ["loihi2", "emulator", "spinnaker"]


def dense_graph(seed: int = 0) -> nir.NIRGraph:
    return two_layer_lif(32, 48, 6, seed=seed)


@pytest.fixture(scope="module")
def programs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {t: compile_model(dense_graph(), Options(target=t, allow_degraded=True)).program for t in TARGETS}


def module_of(target: str):
    return spinnaker if target == "spinnaker" else fixed_point


def both(program, x) -> dict:
    """The counters of the numpy and the compiled kernel, which must be equal."""
    program = copy.deepcopy(program)
    program.__dict__.pop("_fast_kernel", None)
    slow = module_of(program.target).run(program, x, record=(), fast=False, overflow=True)
    fast = module_of(program.target).run(program, x, record=(), overflow=True)
    assert program.__dict__.get("_fast_kernel") is not None  # the compiled kernel ran
    assert set(fast) == set(slow)
    for key in slow:
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)
    return overflow.split(slow)[1]


def huge(steps: int = 40, batch: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(300, 1000, (batch, steps, 32)).astype(np.int64)


@pytest.mark.parametrize("target", TARGETS)
def test_huge_counts_overflow_and_both_kernels_count_the_same(programs, target):
    program = programs[target]
    counters = both(program, huge())
    kinds = overflow.kinds_of(target)
    assert set(counters) == {f"{prefix}.{p.name}.{k}" for prefix in ("overflow", "overflow_first")
                             for p in program.populations for k in kinds}
    lif1 = {k: counters[f"overflow.lif1.{k}"] for k in kinds}
    assert all(c.shape == (3,) and c.dtype == np.int64 for c in lif1.values())
    assert sum(int(c.sum()) for c in lif1.values()) > 0, lif1
    if target == "spinnaker":
        assert lif1["ring_buffer"].all()
    else:
        assert lif1["v"].all() or lif1["u"].all() or lif1["input"].all()
    first = counters["overflow_first.lif1." + next(k for k in kinds if lif1[k].any())]
    assert (first >= 0).any() and (first < 40).all()
    summary = overflow.summarize(program, counters)
    lines = overflow.warning_lines(target, summary)
    assert lines and lines[0].startswith("lif1: ") and "times (first at step " in lines[0]


@pytest.mark.parametrize("target", TARGETS)
def test_a_calm_network_counts_zero(programs, target):
    x = (np.random.default_rng(2).random((2, 40, 32)) < 0.1).astype(np.int64)
    counters = both(programs[target], x)
    assert all(not v.any() for k, v in counters.items() if k.startswith("overflow."))
    assert all((v == -1).all() for k, v in counters.items() if k.startswith("overflow_first."))
    assert overflow.summarize(programs[target], counters) == {}


def test_counters_only_when_asked(programs):
    x = huge(10, 1)
    traces = fixed_point.run(programs["loihi2"], x)
    assert not any(k.startswith("overflow") for k in traces)


# ----------------------------------------------------------------------------- the CLI

@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> dict:
    """The dense network as a .nir, compiled per target with the CLI, and a huge input."""
    from neurodeploy.cli import main as cli

    tmp = tmp_path_factory.mktemp("overflow")
    nir.write(tmp / "dense.nir", dense_graph())
    np.savez(tmp / "huge.npz", input=huge(30, 2).astype(np.float32))
    out = {"tmp": tmp, "input": tmp / "huge.npz"}
    for target in ("loihi2", "spinnaker"):
        out[target] = tmp / f"dense.{target}.ndp"
        assert cli.main(["compile", str(tmp / "dense.nir"), "--target", target, "--allow-degraded",
                         "-o", str(out[target])]) == 0
    return out


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_run_prints_a_warning_per_population(deployed, target, capsys):
    from neurodeploy.cli import main as cli

    capsys.readouterr()
    code = cli.main(["run", str(deployed[target]), "--input", str(deployed["input"]),
                     "-o", str(deployed["tmp"] / f"out.{target}.npz")])
    err = capsys.readouterr().err
    assert code == 0
    want = "ring buffer saturated" if target == "spinnaker" else "clamped"
    lines = [line for line in err.splitlines() if line.startswith("warning: lif1: ")]
    assert len(lines) == 1 and want in lines[0] and "times (first at step " in lines[0], err
    written = np.load(deployed["tmp"] / f"out.{target}.npz")
    assert not any(k.startswith("overflow") for k in written.files)  # the output's keys are unchanged


def test_verify_json_carries_the_counts(deployed, capsys):
    import json

    from neurodeploy.cli import main as cli

    capsys.readouterr()
    cli.main(["verify", str(deployed["spinnaker"]), "--input", str(deployed["input"]), "--json"])
    report = json.loads(capsys.readouterr().out)
    counted = report["populations"]["lif1"]["overflow"]
    assert counted["ring_buffer"]["count"] > 0 and counted["ring_buffer"]["first_step"] >= 0
    assert set(counted["ring_buffer"]) == {"count", "samples", "first_step"}


def test_profile_json_carries_the_counts(deployed):
    from neurodeploy.analysis.profile import profile

    result = profile(str(deployed["loihi2"]), dict(np.load(deployed["input"])))
    assert result["populations"]["lif1"]["overflow"], result["populations"]["lif1"]
    calm = profile(str(deployed["loihi2"]), {"input": np.zeros((1, 10, 32), dtype=np.float32)})
    assert all(p["overflow"] == {} for p in calm["populations"].values())


def test_a_device_run_counts_as_the_cpu_kernels_do(programs):
    pytest.importorskip("torch")
    from neurodeploy.emulator import run_program

    x = huge(5, 2)
    on_device = overflow.split(run_program(programs["loihi2"], x, record=(), device="cpu", overflow=True))[1]
    here = overflow.split(run_program(programs["loihi2"], x, record=(), overflow=True))[1]
    assert set(on_device) == set(here) and on_device["overflow.lif1.v"].any()
    for key in here:
        np.testing.assert_array_equal(on_device[key], here[key], err_msg=key)
