"""The torch kernel's overflow counters (emulator/torch_kernel/counters.py) equal the numpy
kernels': per crafted program, one overflow kind is provoked at a known step (an impulse of
input counts, or a parameter pushed to its limit) and every counter and first step of the
numpy kernel, the compiled kernel and the torch kernel on the CPU must agree."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neurodeploy.compiler.compile import Options, compile_model  # noqa: E402
from neurodeploy.emulator import fixed_point, overflow, run_program, spinnaker, torch_kernel  # noqa: E402
import neurodeploy.emulator.torch_kernel.driver  # noqa: E402,F401 (torch_kernel.driver, .fixed_point)
import neurodeploy.emulator.torch_kernel.fixed_point  # noqa: E402,F401

from test_overflow_counters import dense_graph  # noqa: E402

IMPULSE = 7  # the step the crafted input arrives
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def programs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {t: compile_model(dense_graph(), Options(target=t, allow_degraded=True)).program
                for t in ("loihi2", "emulator", "spinnaker")}


def impulse(count: int, steps: int = 20, batch: int = 3) -> np.ndarray:
    """Silence, then ``count`` spikes on every input at IMPULSE in samples 0 and 2 (sample 1 stays silent)."""
    x = np.zeros((batch, steps, 32), dtype=np.int64)
    x[0::2, IMPULSE] = count
    return x


def set_param(program, pop: str, key: str, value: int):
    program.population(pop).params[key] = np.full_like(program.population(pop).params[key], value)
    return program


def craft(program, target: str, kind: str) -> tuple:
    """(program, input) that overflows ``kind`` in lif1 of the dense network."""
    p = copy.deepcopy(program)
    p.__dict__.pop("_fast_kernel", None)
    if target == "spinnaker":
        if kind == "ring_buffer":
            return p, impulse(40)
        if kind == "current":
            p.attrs["ring_buffer_shift"]["lif1"] = [24, 24]
            return p, impulse(1)
        if kind == "alpha":
            return set_param(p, "lif1", "r_membrane", 2**31 - 1), impulse(1)
        return set_param(p, "lif1", "exp_tc", 2**31 - 1), impulse(1)  # v: exp_tc * (alpha - V) wraps
    if kind == "input":
        p.connections[0].attrs["weight_exp"] = 20
        return p, impulse(2)
    if kind == "u":
        return p, impulse(300)
    set_param(p, "lif1", "vth", 2**26)  # never fires (a spike would reset v before its clamp)
    return set_param(p, "lif1", "bias_mant", 2**22), impulse(0)  # v: a bias alone drives v to its clamp


def counters_of(program, x, **kwargs) -> dict:
    module = spinnaker if program.target == "spinnaker" else fixed_point
    return overflow.split(module.run(program, x, record=(), overflow=True, **kwargs))[1]


CASES = [("loihi2", k) for k in overflow.FIXED_POINT_KINDS] + [("emulator", k) for k in overflow.FIXED_POINT_KINDS] \
    + [("spinnaker", k) for k in overflow.SPINNAKER_KINDS]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("target,kind", CASES)
def test_each_counter_counts_the_same_on_numpy_and_torch(programs, target, kind, device):
    program, x = craft(programs[target], target, kind)
    want = counters_of(program, x, fast=False)
    compiled = counters_of(program, x)
    got = overflow.split(torch_kernel.run(program, x, record=(), device=device, overflow=True))[1]
    assert set(got) == set(want) == set(compiled)
    for key in want:
        assert got[key].dtype == np.int64 and got[key].shape == (3,), key
        np.testing.assert_array_equal(got[key], want[key], err_msg=f"torch vs numpy: {key}")
        np.testing.assert_array_equal(compiled[key], want[key], err_msg=f"numba vs numpy: {key}")
    counts, first = want[f"overflow.lif1.{kind}"], want[f"overflow_first.lif1.{kind}"]
    assert counts[0] > 0 and counts[2] > 0, (kind, counts)
    if kind == "v" and target != "spinnaker":  # the bias overflows every sample from the first steps on
        assert counts[1] > 0 and (first >= 0).all() and (first < IMPULSE).all(), first
    else:  # nothing before the impulse, nothing in the silent sample
        assert counts[1] == 0 and first[1] == -1, (counts, first)
        assert (first[0::2] >= IMPULSE).all() and (first[0::2] <= IMPULSE + 2).all(), first


def test_chunks_of_samples_keep_each_samples_counters(programs):
    program, x = craft(programs["loihi2"], "loihi2", "u")
    x = np.concatenate([x, x[::-1]])  # 6 samples: counted, silent, counted, counted, silent, counted
    want = counters_of(program, x, fast=False)
    built = torch_kernel.fixed_point.Kernel(program, {"input": int(x.max())}, torch.device("cpu"), (), True)
    one = built.sample_bytes() + torch_kernel.driver.window_bytes(program, {"input": x}, (), 20)
    got = overflow.split(torch_kernel.run(program, x, record=(), device="cpu", overflow=True,
                                          memory_budget=built.fixed_bytes + one))[1]  # one sample per chunk
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert (want["overflow.lif1.u"] > 0).tolist() == [True, False, True, True, False, True]


def test_run_program_on_a_device_counts(programs):
    program, x = craft(programs["spinnaker"], "spinnaker", "ring_buffer")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "does not count" warning any more
        traces = run_program(program, x, record=(), device="cpu", overflow=True)
    assert traces["overflow.lif1.ring_buffer"][0] > 0
    plain = run_program(program, x, record=(), device="cpu")
    assert not any(k.startswith("overflow") for k in plain)


def test_run_on_a_device_warns_as_run_without_one(tmp_path, capsys):
    """`run --device cpu` prints the same warning per population as the compiled CPU kernel."""
    import nir

    from neurodeploy.cli import main as cli
    from test_overflow_counters import huge

    nir.write(tmp_path / "dense.nir", dense_graph())
    np.savez(tmp_path / "huge.npz", input=huge(12, 2).astype(np.float32))
    art = tmp_path / "dense.spinnaker.ndp"
    assert cli.main(["compile", str(tmp_path / "dense.nir"), "--target", "spinnaker", "--allow-degraded",
                     "-o", str(art)]) == 0
    lines = {}
    for device in ([], ["--device", "cpu"]):
        capsys.readouterr()
        assert cli.main(["run", str(art), "--input", str(tmp_path / "huge.npz"), "-o", str(tmp_path / "y.npz")]
                        + device) == 0
        lines[bool(device)] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: lif")]
    assert lines[True] == lines[False] and "ring buffer saturated" in lines[True][0], lines
