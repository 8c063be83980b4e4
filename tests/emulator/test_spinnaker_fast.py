"""The event-driven (numba) SpiNNaker kernel gives the readable numpy kernel's integers
(emulator/spinnaker_fast.py against emulator/spinnaker.py): spikes and the recorded v and i."""
from __future__ import annotations

import copy
import warnings

import nir
import numpy as np
import pytest

from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.emulator import spinnaker_fast
from neurodeploy.emulator.spinnaker import run
from neurodeploy.errors import OptionError
from neurodeploy.models import data, paths


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def kernel_of(program):
    """The compiled kernel the fast path cached on ``program`` (None if it never ran)."""
    cached = program.__dict__.get("_fast_kernel")
    return None if cached is None else cached[1]


def same(program, x, record=("v", "i"), spikes=True) -> dict:
    """Run both kernels on a fresh copy of ``program``; every trace must be equal."""
    program = copy.deepcopy(program)
    program.__dict__.pop("_fast_kernel", None)
    slow = run(program, x, record=record, fast=False, overflow=True)  # the overflow counters too
    assert kernel_of(program) is None  # the numpy kernel ran
    fast = run(program, x, record=record, overflow=True)  # fast is the default
    assert isinstance(kernel_of(program), spinnaker_fast.Compiled)  # the compiled kernel ran
    assert set(fast) == set(slow)
    assert not spikes or any(v.any() for k, v in slow.items() if k.startswith("spikes.")), "a comparison without spikes"
    for key in slow:
        assert fast[key].dtype == slow[key].dtype, key
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)
    return slow


def compile_sp(graph, **kw):
    return compile_model(graph, Options(target="spinnaker", allow_degraded=True, **kw)).program


@pytest.mark.parametrize("model", sorted(paths()))
def test_zoo_models(model):
    x, _ = data.test_set(model)
    same(compile_sp(paths()[model]), x[:6])


def neurons(kind: str, n: int, rng: np.random.Generator):
    ones, zeros = np.ones(n), np.zeros(n)
    if kind == "CubaLIF":  # IF_curr_exp
        return nir.CubaLIF(tau_syn=rng.uniform(2e-3, 1e-2, n), tau_mem=rng.uniform(5e-3, 3e-2, n), r=ones,
                           v_leak=zeros, v_threshold=rng.uniform(0.5, 1.5, n), v_reset=zeros, w_in=np.full(n, 3.0))
    if kind == "LIF":  # IF_curr_delta
        return nir.LIF(tau=rng.uniform(5e-3, 3e-2, n), r=ones, v_leak=zeros, v_threshold=rng.uniform(0.5, 1.5, n),
                       v_reset=zeros)
    if kind == "IF":  # IF_curr_delta with the smallest leak
        return nir.IF(r=np.full(n, 1000.0), v_threshold=rng.uniform(0.5, 1.5, n), v_reset=zeros)
    if kind == "LI":  # a non-spiking readout
        return nir.LI(tau=np.full(n, 0.01), r=ones, v_leak=zeros)
    raise AssertionError(kind)


def recurrent(seed: int, kind: str, readout: str, n_in: int, n: int, dt: float = 1e-3, *, density: float = 0.6,
              delay: bool = True) -> nir.NIRGraph:
    """input -> Affine -> per-neuron Delay -> population <-> signed recurrent weights -> readout."""
    rng = np.random.default_rng(seed)
    gain = 0.3 if kind == "IF" else 2.0
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Affine(weight=rng.normal(0.2, 1.0, (n, n_in)) * gain * (rng.random((n, n_in)) < density),
                         bias=rng.normal(0, 0.05, n)),
        "delay": nir.Delay(delay=dt * rng.integers(0, 5, n)),  # heterogeneous, per neuron
        "hidden": neurons(kind, n, rng),
        "rec": nir.Linear(weight=rng.normal(0, 0.5, (n, n)) * gain * (rng.random((n, n)) < 0.4)),
        "out": nir.Linear(weight=rng.normal(0, 1.0, (3, n))),
        "readout": neurons(readout, 3, rng),
        "output": nir.Output(output_type=np.array([3])),
    }
    edges = [("input", "fc"), ("fc", "delay"), ("delay", "hidden"), ("hidden", "rec"), ("rec", "hidden"),
             ("hidden", "out"), ("out", "readout"), ("readout", "output")]
    if not delay:
        del nodes["delay"]
        edges = [("fc", "hidden")] + [e for e in edges if "delay" not in e]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": dt}, type_check=False)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind,readout,dt", [("CubaLIF", "LI", 1e-3), ("LIF", "CubaLIF", 1e-4), ("IF", "LIF", 1e-3),
                                             ("CubaLIF", "LIF", 5e-4)])
def test_random_recurrent_networks_with_delays_refractory_periods_and_counts(seed, kind, readout, dt):
    """dt < 1 ms: IF_curr_delta scales its input (input_scale != 1.0)."""
    rng = np.random.default_rng(1000 + seed)
    n_in, n = int(rng.integers(3, 12)), int(rng.integers(4, 40))
    program = compile_sp(recurrent(seed, kind, readout, n_in, n, dt))
    hidden = program.population("hidden")
    assert hidden.model == ("IF_curr_exp" if kind == "CubaLIF" else "IF_curr_delta")
    delays = [c.arrays["delay"] for c in program.connections if "delay" in c.arrays]
    assert delays and len(np.unique(delays[0])) > 1  # per-synapse delays of different lengths
    types = np.concatenate([c.arrays["synapse_type"] for c in program.connections])
    assert set(types.tolist()) == {0, 1}  # excitatory and inhibitory words
    steps = 80 if dt >= 5e-4 else 400
    x = rng.integers(0, 4, size=(3, steps, n_in)) * (rng.random((3, steps, n_in)) < 0.3)  # counts up to 3
    assert x.max() > 1
    same(program, x)
    # The quantizer always sets T_refract = 0 and one tau_syn for both synapse types; a hand-set
    # refractory period (0-3 ticks per neuron), a faster inhibitory synapse and non-zero initial
    # synaptic currents must agree as well.
    edited = copy.deepcopy(program)
    for pop in edited.populations:
        pop.params["t_refract"] = rng.integers(0, 4, pop.shape).astype(np.int64)
        pop.params["decay_syn_i"] = pop.params["decay_syn_i"] // 2  # u032 multipliers
        pop.params["init_syn_i"] = pop.params["init_syn_i"] + (2**32 - pop.params["init_syn_i"]) // 2
        pop.params["isyn_exc_init"] = rng.integers(0, 2**15, pop.shape).astype(np.int64)
        pop.params["isyn_inh_init"] = rng.integers(0, 2**14, pop.shape).astype(np.int64)
    slow = same(edited, x)
    assert not np.array_equal(slow["spikes.hidden"], run(program, x, fast=False)["spikes.hidden"])


@pytest.mark.parametrize("density", [0.1, 0.5, 1.0])
def test_sparse_and_dense_connections_and_saturating_ring_buffers(density):
    """Dense (signed) matrices are delivered as whole rows per synapse type, sparse ones synapse by
    synapse; large words and counts overflow the 16-bit ring buffer, which is clipped at 0xFFFF."""
    rng = np.random.default_rng(7)
    n_in, n = 24, 48
    program = compile_sp(recurrent(3, "LIF", "LI", n_in, n, density=density, delay=False))  # no per-synapse delays
    layout = spinnaker_fast.Compiled(program)
    n_rows, n_segments = len(layout.synapses[2]), len(layout.synapses[6])
    if density == 1.0:
        assert n_rows > 0
    if density == 0.1:
        assert n_segments > 0
    x = rng.integers(0, 3, size=(2, 60, n_in)) * (rng.random((2, 60, n_in)) < 0.5)
    same(program, x)
    loud = copy.deepcopy(program)
    for conn in loud.connections:
        conn.arrays["weight"] = np.where(conn.arrays["weight"] > 0, np.uint16(50000), np.uint16(0))
    slow = same(loud, x * 3)
    assert np.abs(slow["i.hidden"]).max() > 0
    # Several synapses between one pair (all of a row's synapses from source 0): a dense row sums
    # them beyond 16 bits, so the layout keeps its weights in int64.
    for conn in loud.connections:
        conn.arrays["indices"] = np.zeros_like(conn.arrays["indices"])
    if density == 1.0:
        assert spinnaker_fast.Compiled(loud).synapses[4].dtype == np.int64
    same(loud, x * 3, spikes=False)


def test_records_only_what_is_asked():
    program = compile_sp(recurrent(1, "CubaLIF", "LI", 5, 12))
    x = np.random.default_rng(0).integers(0, 2, size=(2, 50, 5))
    for record in [(), ("v",), ("i",), ("i", "v")]:
        got = run(program, x, record=record)
        assert {k.split(".")[0] for k in got} == {"spikes", *record}
    same(program, x, record=("i",))


def test_a_non_spiking_population_resets_but_sends_nothing():
    program = copy.deepcopy(compile_sp(recurrent(4, "LIF", "LIF", 6, 16)))
    x = np.random.default_rng(2).integers(0, 3, size=(2, 60, 6))
    assert run(program, x)["spikes.hidden"].sum() > 10
    program.population("hidden").spiking = False  # its threshold stays reachable
    got = same(program, x, spikes=False)
    assert "spikes.hidden" not in got and got["spikes.readout"].sum() == 0 and not got["i.readout"].any()


def test_groups_of_samples_and_chunks_of_ticks_continue_exactly(monkeypatch, capsys):
    """With a progress bar the kernel runs a few ticks per call and small groups of samples,
    carrying V, I_syn, refractory timers and ring buffers over: the traces must not change."""
    program = copy.deepcopy(compile_sp(recurrent(2, "CubaLIF", "LIF", 6, 20)))
    for pop in program.populations:
        pop.params["t_refract"] = np.full(pop.shape, 2, dtype=np.int64)
    x = np.random.default_rng(5).integers(0, 3, size=(5, 90, 6))
    whole = run(program, x, record=("v", "i"))
    monkeypatch.setattr(spinnaker_fast, "PROGRESS_STEPS", 7)  # ticks do not divide evenly
    monkeypatch.setattr(spinnaker_fast, "STATE_BUDGET", 1)  # one sample per group
    chunked = run(program, x, record=("v", "i"), progress=True)
    assert "sample-step" in capsys.readouterr().err  # the bar of the compiled path was shown
    assert set(whole) == set(chunked)
    assert whole["spikes.hidden"].sum() > 0
    for key in whole:
        np.testing.assert_array_equal(chunked[key], whole[key], err_msg=key)
    np.testing.assert_array_equal(whole["v.hidden"], run(program, x, record=("v",), fast=False)["v.hidden"])


def test_an_edited_program_is_compiled_again():
    """The compiled kernel is cached on the program; editing the program (or a deep copy of one
    that already ran) must not run the old arrays."""
    program = compile_sp(recurrent(0, "LIF", "LI", 6, 16))
    x = np.random.default_rng(1).integers(0, 2, size=(1, 60, 6))
    before = run(program, x)
    edited = copy.deepcopy(program)
    edited.population("hidden").params["v_thresh"] = edited.population("hidden").params["v_thresh"] * 4
    after = run(edited, x)
    assert kernel_of(edited) is not kernel_of(program)
    np.testing.assert_array_equal(after["spikes.hidden"], run(edited, x, fast=False)["spikes.hidden"])
    assert after["spikes.hidden"].sum() < before["spikes.hidden"].sum()
    edited.population("hidden").params["v_thresh"][:] = program.population("hidden").params["v_thresh"]  # in place
    np.testing.assert_array_equal(run(edited, x)["spikes.hidden"], before["spikes.hidden"])


def test_both_paths_refuse_what_spinnaker_cannot_run():
    program = compile_sp(recurrent(0, "LIF", "LI", 4, 6))
    x = np.zeros((1, 5, 4))
    bad_delay = copy.deepcopy(program)
    for conn in bad_delay.connections:
        conn.attrs["delay"] = 0
        conn.arrays.pop("delay", None)
    bad_model = copy.deepcopy(program)
    bad_model.populations[0].model = "IZK_curr_exp"
    for fast in (True, False):
        with pytest.raises(OptionError, match="sPyNNaker needs >= 1"):
            run(bad_delay, x, fast=fast)
        with pytest.raises(OptionError, match="unknown SpiNNaker model"):
            run(bad_model, x, fast=fast)


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF"])
def test_parameters_and_states_held_as_int32_where_they_fit(kind):
    """The compiled kernel holds the per-neuron parameters and start states as int32 when every
    value fits (all or none), int64 otherwise; either way the integers are the numpy kernel's.
    IF_curr_delta programs fit; IF_curr_exp's u032 multipliers (init_syn about 0.6 x 2^32) do not,
    unless edited below 2^31, which runs the exp arithmetic on int32 parameters too."""
    rng = np.random.default_rng(5)
    program = compile_sp(recurrent(9, kind, "LI", 6, 24, 1e-3))
    x = rng.integers(0, 4, size=(2, 80, 6)) * (rng.random((2, 80, 6)) < 0.3)
    fits = kind == "LIF"
    compiled = spinnaker_fast.Compiled(program)
    assert {p.dtype for p in compiled.params} == {np.dtype(np.int32 if fits else np.int64)}
    same(program, x)
    if not fits:
        for pop in program.populations:
            for key in ("init_syn_e", "init_syn_i", "decay_syn_e", "decay_syn_i"):
                pop.params[key] = pop.params[key] // 3  # below 2^31: int32 now
            pop.params["isyn_exc_init"] = rng.integers(-(2**20), 2**20, pop.shape).astype(np.int64)
        compiled = spinnaker_fast.Compiled(program)
        assert {p.dtype for p in compiled.params + compiled.start} == {np.dtype(np.int32)}
        same(program, x)
