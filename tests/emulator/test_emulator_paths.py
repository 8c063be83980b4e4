"""The event-driven (numba) and the readable numpy fixed-point kernels give the same integers."""
from __future__ import annotations

import copy
import warnings

import nir
import numpy as np
import pytest

from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.emulator import fixed_point_fast
from neurodeploy.emulator.fixed_point import run
from neurodeploy.models import data, paths

warnings.filterwarnings("ignore", category=UserWarning)


def same(program, x) -> None:
    program = copy.deepcopy(program)
    program.__dict__.pop("_fast_kernel", None)
    slow = run(program, x, record=("v", "u"), fast=False, overflow=True)  # the overflow counters too
    fast = run(program, x, record=("v", "u"), fast=True, overflow=True)
    cached = program.__dict__.get("_fast_kernel")
    assert cached is not None and isinstance(cached[1], fixed_point_fast.Compiled)  # the compiled kernel ran
    assert set(fast) == set(slow)
    assert any(v.any() for k, v in slow.items() if k.startswith("spikes.")), "a comparison without spikes"
    for key in slow:
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)


@pytest.mark.parametrize("target", ["loihi2", "emulator"])
@pytest.mark.parametrize("model", ["digits_mlp", "digits_conv", "temporal_rnn"])
def test_zoo_models(model, target):
    x, _ = data.test_set(model)
    same(compile_model(paths()[model], Options(target=target)).program, x[:8])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("target,reset", [("loihi2", "zero"), ("emulator", "zero"), ("emulator", "subtract")])
def test_random_recurrent_networks_with_delays_and_biases(seed, target, reset):
    rng = np.random.default_rng(seed)
    n_in, n = int(rng.integers(2, 12)), int(rng.integers(3, 20))
    dt = 1e-3
    lif = nir.CubaLIF(tau_syn=rng.uniform(2e-3, 2e-2, n), tau_mem=rng.uniform(2e-3, 5e-2, n), r=np.ones(n),
                      v_leak=np.zeros(n), v_threshold=rng.uniform(0.5, 1.5, n), v_reset=np.zeros(n),
                      w_in=np.full(n, 5.0))
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Affine(weight=rng.normal(0, 1.0, (n, n_in)), bias=rng.normal(0, 0.05, n)),
        "delay": nir.Delay(delay=np.full(n, dt * int(rng.integers(0, 3)))),
        "lif": lif,
        "rec": nir.Linear(weight=rng.normal(0, 0.4, (n, n))),
        "out": nir.Linear(weight=rng.normal(0, 1.0, (3, n))),
        "li": nir.LI(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3)),
        "output": nir.Output(output_type=np.array([3])),
    }
    edges = [("input", "fc"), ("fc", "delay"), ("delay", "lif"), ("lif", "rec"), ("rec", "lif"),
             ("lif", "out"), ("out", "li"), ("li", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": dt}, type_check=False)
    program = compile_model(graph, Options(target=target, reset=reset, allow_degraded=True)).program
    x = rng.integers(0, 3, size=(3, 40, n_in)) * (rng.random((3, 40, n_in)) < 0.3)
    same(program, x)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("density", [0.1, 1.0])
def test_per_neuron_delays_and_sparse_weights_take_the_synapse_path(seed, density):
    """Per-synapse delays and sparse matrices are delivered synapse by synapse, dense matrices as
    whole rows (emulator/fixed_point_fast.py): both must give the numpy kernel's integers."""
    rng = np.random.default_rng(100 + seed)
    n_in, n, dt = 16, 24, 1e-3
    mask = rng.random((n, n_in)) < density
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Linear(weight=rng.normal(0, 2.0, (n, n_in)) * mask),
        "delay": nir.Delay(delay=dt * rng.integers(0, 4, n)),
        "lif": nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n)),
        "rec": nir.Linear(weight=rng.normal(0, 0.5, (n, n)) * (rng.random((n, n)) < density)),
        "output": nir.Output(output_type=np.array([n])),
    }
    edges = [("input", "fc"), ("fc", "delay"), ("delay", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": dt}, type_check=False)
    program = compile_model(graph, Options(target="loihi2", allow_degraded=True)).program
    x = (rng.random((4, 60, n_in)) < 0.3).astype(np.int64)
    same(program, x)


def test_groups_of_samples_and_chunks_of_steps_continue_exactly(monkeypatch, capsys):
    """With a progress bar the kernel runs a few steps per call and small groups of samples,
    carrying u, v and the delay buffers over: the traces must not change."""
    from neurodeploy.emulator import fixed_point_fast

    program = compile_model(paths()["temporal_rnn"], Options(target="loihi2")).program
    x, _ = data.test_set("temporal_rnn")
    x = x[:5]
    whole = run(program, x, record=("v", "u"))
    monkeypatch.setattr(fixed_point_fast, "PROGRESS_STEPS", 7)  # steps do not divide evenly
    monkeypatch.setattr(fixed_point_fast, "STATE_BUDGET", 1)  # one sample per group
    chunked = run(program, x, record=("v", "u"), progress=True)
    assert "sample-step" in capsys.readouterr().err  # the bar was shown
    assert set(whole) == set(chunked)
    for key in whole:
        np.testing.assert_array_equal(chunked[key], whole[key], err_msg=key)


def test_an_edited_program_is_compiled_again():
    """The compiled kernel is cached on the program; a deep copy of a program that already ran,
    then edited, must not run the copied kernel's old arrays."""
    program = compile_model(paths()["digits_mlp"], Options(target="loihi2")).program
    x, _ = data.test_set("digits_mlp")
    before = run(program, x[:4])
    edited = copy.deepcopy(program)
    edited.populations[0].params["vth"] = edited.populations[0].params["vth"] * 3
    after = run(edited, x[:4])
    np.testing.assert_array_equal(after["spikes.lif1"], run(edited, x[:4], fast=False)["spikes.lif1"])
    assert after["spikes.lif1"].sum() < before["spikes.lif1"].sum()
