"""SpiNNaker target: the quantizer (compiler/quantize/spinnaker.py) and the bit-accurate kernel
(emulator/spinnaker.py).

Bit-exactness is checked against an independent scalar loop written here from the
tick as sPyNNaker 7.4.1 runs it (docs/targets.md, "One tick") with
Python integers: ring buffers filled one synaptic event at a time with saturating uint16 adds,
propagators recomputed from the parameter bits with spinnaker_math (itself checked against the
spec's seen values in test_spinnaker_math.py). Quantization error is checked against the float
reference (neurodeploy.api.simulate) with the one-tick-per-hop latency of each population.
"""
from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.api import simulate
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.targets import spinnaker_math as sm
from neurodeploy.emulator import spinnaker as emu
from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.format.program import from_manifest, to_manifest

ONE = 1 << 15
LIF_DIR = Path(__file__).parents[1] / "data" / "nir_paper" / "lif"
LIF_NORSE = LIF_DIR / "lif_norse.nir"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------ graph helpers

def graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def inp(n: int) -> nir.Input:
    return nir.Input(input_type={"input": np.array([n])})


def out(n: int) -> nir.Output:
    return nir.Output(output_type={"output": np.array([n])})


def neuron(kind: str, n: int, r: np.random.Generator, **over):
    ones, zeros = np.ones(n), np.zeros(n)
    if kind == "LIF":
        p = dict(tau=r.uniform(5e-3, 2e-2, n), r=ones, v_leak=zeros, v_threshold=ones, v_reset=zeros)
        p.update(over)
        return nir.LIF(**p)
    if kind == "CubaLIF":
        p = dict(tau_syn=r.uniform(2e-3, 1e-2, n), tau_mem=r.uniform(5e-3, 2e-2, n), r=ones, v_leak=zeros,
                 v_threshold=ones, v_reset=zeros, w_in=ones)
        p.update(over)
        return nir.CubaLIF(**p)
    if kind == "IF":
        p = dict(r=np.full(n, 1000.0), v_threshold=ones, v_reset=zeros)  # dt * r = 1 at dt = 1 ms
        p.update(over)
        return nir.IF(**p)
    raise AssertionError(kind)


def single(kind: str, n_in: int, weight, bias=0.0, seed=0, **over) -> nir.NIRGraph:
    r = np.random.default_rng(seed)
    return graph({"input": inp(n_in), "fc": nir.Affine(weight=np.atleast_2d(weight), bias=np.atleast_1d(bias)),
                  "n": neuron(kind, 1, r, **over), "output": out(1)},
                 [("input", "fc"), ("fc", "n"), ("n", "output")])


def two_layer(kind: str, seed: int, n_in=20, n_h=30, n_out=10, gain=3.0) -> nir.NIRGraph:
    r = np.random.default_rng(seed)
    w1 = r.normal(0.0, 1.0, (n_h, n_in)) * gain
    w2 = r.normal(0.0, 1.0, (n_out, n_h)) * gain
    b1 = r.uniform(-0.2, 0.5, n_h)
    return graph({"input": inp(n_in), "fc1": nir.Affine(weight=w1, bias=b1), "l1": neuron(kind, n_h, r),
                  "fc2": nir.Linear(weight=w2), "l2": neuron(kind, n_out, r), "output": out(n_out)},
                 [("input", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "l2"), ("l2", "output")])


def spikes_in(shape, rate=0.15, seed=5) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float64)


def compile_sp(source, **kw):
    opts = dict(target="spinnaker", dt=1e-3, integrator="euler", reset="zero")
    opts.update(kw)
    return compile_model(source, Options(**opts))


# ------------------------------------------------------------------ the independent scalar loop

def events_into(program, target: str, neuron_index: int, inputs: dict[str, np.ndarray], sample: int,
                spikes_of: dict[str, np.ndarray] | None = None):
    """Ring buffers of one neuron, filled one event at a time with saturating uint16 adds."""
    rb = defaultdict(lambda: [0, 0])
    for c in program.connections:
        if c.target != target:
            continue
        lo, hi = c.arrays["indptr"][neuron_index], c.arrays["indptr"][neuron_index + 1]
        source = inputs.get(c.source) if c.source in inputs else spikes_of[c.source]
        for k in range(lo, hi):
            i = int(c.arrays["indices"][k])
            word, kind = int(c.arrays["weight"][k]), int(c.arrays["synapse_type"][k])
            delay = int(c.attrs["delay"]) + (int(c.arrays["delay"][k]) if "delay" in c.arrays else 0)
            for t in np.flatnonzero(source[sample, :, i]):
                for _ in range(int(source[sample, t, i])):
                    rb[t + delay][kind] = min(rb[t + delay][kind] + word, 0xFFFF)
    return rb


def scalar_neuron(program, pop, index: int, rb, steps: int):
    """The spec's tick, for one neuron, with Python ints. Returns (V before update, spikes, I recorded)."""
    p = {k: int(np.asarray(v).reshape(-1)[index]) for k, v in pop.params.items()}
    exp = pop.model == "IF_curr_exp"
    ts = int(program.attrs["time_step_bits"])
    tau_syn = p["tau_syn_e"] if exp else ONE
    prop = sm.propagators(ts, p["tau_m"], p["cm"], tau_syn, tau_syn, p["tau_refrac"])
    t_refract = p["t_refract"]  # the tests below may raise it by hand
    shift = program.attrs["ring_buffer_shift"][pop.name]
    v, syn, refract = p["v_init"], [p["isyn_exc_init"], p["isyn_inh_init"]], 0
    vs, zs, cur_rec = [], [], []
    for t in range(steps):
        for s in (0, 1):
            r = rb[t][s]
            if r > 0:
                inp_ = sm.wrap32(r << shift[s])
                if exp:
                    inp_ = sm.decay_s1615(inp_, prop.init_syn_e if s == 0 else prop.init_syn_i)
                syn[s] = sm.wrap32(syn[s] + inp_)
        vs.append(v)
        cur_rec.append(sm.wrap32(syn[0] - syn[1]))
        if refract <= 0:
            if exp:
                current = sm.wrap32(syn[0] - syn[1] + p["i_offset"])
            else:
                current = sm.wrap32(sm.mul(syn[0], prop.input_scale) - sm.mul(syn[1], prop.input_scale)
                                    + p["i_offset"])
            alpha = sm.wrap32(sm.mul(current, prop.r_membrane) + p["v_rest"])
            v = sm.wrap32(alpha - sm.mul(prop.exp_tc, sm.wrap32(alpha - v)))
        else:
            refract -= 1
        spike = v >= p["v_thresh"]
        if spike:
            v, refract = p["v_reset"], t_refract
        zs.append(int(spike))
        if exp:
            syn = [sm.decay_s1615(syn[0], prop.decay_syn_e), sm.decay_s1615(syn[1], prop.decay_syn_i)]
        else:
            syn = [0, 0]
    return np.array(vs), np.array(zs), np.array(cur_rec)


# ------------------------------------------------------------------ golden runs

GOLDEN = [
    ("CubaLIF", 1.5, dict(bias=0.4), dict(dt=1e-3)),
    ("CubaLIF", 2.5, dict(bias=-0.3), dict(dt=1e-3, integrator="exact")),
    ("LIF", 4.0, dict(bias=0.2), dict(dt=1e-4)),  # dt = 0.1 ms: input_scale = kdivk(1, ts) != 1
    ("IF", 0.3, dict(bias=0.05), dict(dt=1e-3)),
]


@pytest.mark.parametrize("kind, gain, graph_kw, opts", GOLDEN)
def test_single_neuron_golden_every_tick(kind, gain, graph_kw, opts):
    r = np.random.default_rng(3)
    weight = np.abs(r.normal(0.0, 1.0, (1, 6))) * gain * np.array([1, 1, -1, 1, 1, -1])
    weight[0, 0] = 0.0  # a zero weight is no synapse
    g = single(kind, 6, weight, seed=3, **graph_kw)
    program = compile_sp(g, **opts).program
    assert program.populations[0].model == ("IF_curr_exp" if kind == "CubaLIF" else "IF_curr_delta")
    steps = 400
    x = spikes_in((2, steps, 6), rate=0.3, seed=4)
    got = emu.run(program, x, record=("v", "i"))
    pop = program.populations[0]
    for b in range(2):
        rb = events_into(program, "n", 0, {"input": x}, b)
        v, z, cur = scalar_neuron(program, pop, 0, rb, steps)
        np.testing.assert_array_equal(got["v.n"][b, :, 0], v)
        np.testing.assert_array_equal(got["spikes.n"][b, :, 0], z)
        np.testing.assert_array_equal(got["i.n"][b, :, 0], cur)
    assert got["spikes.n"].sum() > 5  # the run exercised spikes and resets


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["CubaLIF", "LIF", "IF"]), dt=st.sampled_from([1e-3, 5e-4, 1e-4]),
       integrator=st.sampled_from(["euler", "exact"]), bias=st.floats(-0.5, 0.5), gain=st.floats(0.1, 6.0),
       seed=st.integers(0, 1000))
def test_random_single_neurons_are_bit_exact(kind, dt, integrator, bias, gain, seed):
    r = np.random.default_rng(seed)
    weight = r.normal(0.3, 1.0, (1, 5)) * (gain if kind != "IF" else gain / 10)
    program = compile_sp(single(kind, 5, weight, bias=bias, seed=seed), dt=dt, integrator=integrator,
                         allow_degraded=True).program
    x = spikes_in((1, 120, 5), rate=0.4, seed=seed)
    got = emu.run(program, x)
    rb = events_into(program, "n", 0, {"input": x}, 0)
    v, z, _ = scalar_neuron(program, program.populations[0], 0, rb, 120)
    np.testing.assert_array_equal(got["v.n"][0, :, 0], v)
    np.testing.assert_array_equal(got["spikes.n"][0, :, 0], z)


def test_golden_with_refractory_period_and_two_layers():
    """A hand-set T_refract = 2 (the quantizer always uses 0) and a hidden layer feeding the neuron."""
    g = two_layer("CubaLIF", seed=2, n_in=8, n_h=5, n_out=2, gain=2.0)
    program = copy.deepcopy(compile_sp(g).program)
    for pop in program.populations:
        pop.params["t_refract"] = np.full(pop.shape, 2, dtype=np.int64)
    steps = 300
    x = spikes_in((1, steps, 8), rate=0.3, seed=9)
    got = emu.run(program, x)
    hidden = program.population("l1")
    hidden_spikes = np.zeros((1, steps, hidden.size), dtype=np.int64)
    for j in range(hidden.size):
        rb = events_into(program, "l1", j, {"input": x}, 0)
        v, z, _ = scalar_neuron(program, hidden, j, rb, steps)
        np.testing.assert_array_equal(got["v.l1"][0, :, j], v)
        hidden_spikes[0, :, j] = z
    assert hidden_spikes.sum() > 10
    assert np.all(np.diff(np.flatnonzero(hidden_spikes[0, :, 0])) >= 3)  # 2 refractory ticks between spikes
    top = program.population("l2")
    for j in range(top.size):
        rb = events_into(program, "l2", j, {"input": x}, 0, {"l1": hidden_spikes})
        v, z, _ = scalar_neuron(program, top, j, rb, steps)
        np.testing.assert_array_equal(got["v.l2"][0, :, j], v)
        np.testing.assert_array_equal(got["spikes.l2"][0, :, j], z)


# ------------------------------------------------------------------ ring buffers, signs, threshold

def test_ring_buffer_saturates_at_0xffff():
    program = copy.deepcopy(compile_sp(single("LIF", 3, [[1.0, 1.0, 1.0]])).program)
    conn = program.connections[0]
    conn.arrays["weight"] = np.full(3, 40000, dtype=np.uint16)  # 3 x 40000 > 65535
    shift = program.attrs["ring_buffer_shift"]["n"][0]
    x = np.zeros((1, 5, 3))
    x[0, 1] = 1  # all three at tick 1 -> arrive at tick 2 (delay 1)
    x[0, 3, 0] = 1  # one alone at tick 3 -> 40000 at tick 4
    got = emu.run(program, x, record=("i",))["i.n"][0, :, 0]
    assert got[2] == sm.wrap32(0xFFFF << shift)
    assert got[4] == sm.wrap32(40000 << shift)
    assert got[0] == got[1] == got[3] == 0  # delta synapses are cleared after each tick
    rb = events_into(program, "n", 0, {"input": x}, 0)
    assert rb[2][0] == 0xFFFF


def test_quantized_weights_cannot_saturate_the_ring_buffer():
    """sPyNNaker's shift rule from the worst-case summed weight keeps every sum below 2**15."""
    g = two_layer("LIF", seed=1)
    program = compile_sp(g).program
    for pop in program.populations:
        sums = np.zeros((2, pop.size))
        for c in program.connections:
            if c.target != pop.name:
                continue
            rows = np.repeat(np.arange(c.n_out), np.diff(c.arrays["indptr"]))
            np.add.at(sums, (c.arrays["synapse_type"].astype(int), rows), c.arrays["weight"].astype(np.int64))
        assert sums.max() < 2**15


def test_signed_weights_split_into_excitatory_and_inhibitory():
    g = single("LIF", 4, [[0.5, -0.25, 0.0, 1.0]])
    compiled = compile_sp(g)
    conn = compiled.program.connections[0]
    assert conn.kind == "sparse" and conn.arrays["indices"].tolist() == [0, 1, 3]  # the 0 is no synapse
    assert conn.arrays["synapse_type"].tolist() == [0, 1, 0]
    shift_e, shift_i = compiled.program.attrs["ring_buffer_shift"]["n"]
    assert conn.attrs["ring_buffer_shift"] == [shift_e, shift_i]
    assert shift_i < shift_e  # the inhibitory type only sums 0.25, the excitatory 1.5
    w = conn.arrays["weight"].astype(float) * 2.0 ** (np.array([shift_e, shift_i, shift_e]) - 15)
    np.testing.assert_allclose(w / w[2], [0.5, 0.25, 1.0], rtol=1e-4)
    # An excitatory spike raises V, an inhibitory one lowers it by half as much.
    x = np.zeros((1, 6, 4))
    x[0, 0, 0] = 1
    x[0, 3, 1] = 1
    v = emu.run(compiled.program, x)["v.n"][0, :, 0]
    assert v[2] > 0  # arrived at tick 1, recorded before tick 2's update
    assert v[5] < v[4]


def test_threshold_is_strict_one_lsb_above():
    """NIR spikes on v > threshold, the chip on V >= V_thresh: an input exactly at threshold must not
    spike, one just above must; with V_thresh set back to the threshold the chip's >= fires."""
    thr = 0.5
    g = graph({"input": inp(2), "fc": nir.Linear(weight=np.array([[thr, thr * 1.001]])),
               "th": nir.Threshold(threshold=np.array([thr])), "output": out(1)},
              [("input", "fc"), ("fc", "th"), ("th", "output")])
    compiled = compile_sp(g)
    program = compiled.program
    pop = program.population("th")
    assert pop.model == "IF_curr_delta" and pop.params["exp_tc"][0] == 0  # V follows the input
    x = np.zeros((1, 6, 2))
    x[0, 1, 0] = 1  # exactly the threshold
    x[0, 3, 1] = 1  # just above
    ref = simulate(compiled.net, x, dtype="float64")["spikes.th"][0, :, 0]
    got = emu.run(program, x)
    assert ref.tolist() == [0, 0, 0, 1, 0, 0]
    assert got["spikes.th"][0, :, 0].tolist() == [0, 0, 0, 0, 1, 0]  # one tick later (latency 1)
    at_threshold = got["v.th"][0, 3, 0]  # V after tick 2's update, recorded before tick 3's
    assert at_threshold == pop.params["v_thresh"][0] - 1
    edited = copy.deepcopy(program)
    edited.population("th").params["v_thresh"] = edited.population("th").params["v_thresh"] - 1
    assert emu.run(edited, x)["spikes.th"][0, 2, 0] == 1


def test_refractory_zero_spikes_every_tick_like_the_float_model():
    # v += 0.5 * (3 - v) from 0 crosses 1 every step: a spike each step, reset to 0 in between.
    g = single("LIF", 1, [[0.0]], bias=3.0, tau=np.array([2e-3]))
    compiled = compile_sp(g)
    assert compiled.program.populations[0].params["t_refract"][0] == 0
    x = np.zeros((1, 20, 1))
    ref = simulate(compiled.net, x, dtype="float64")["spikes.n"][0, :, 0]
    got = emu.run(compiled.program, x)["spikes.n"][0, :, 0]
    assert ref.all()
    lat = compiled.program.populations[0].latency
    assert got[:lat].sum() == 0  # V_init makes the tick before the first input land exactly on 0
    assert got[lat:].all()


# ------------------------------------------------------------------ float agreement

def _compare(compiled, x, skip_first=0):
    """Spike agreement and v error per population, aligned by latency (v: latency + 1)."""
    ref = simulate(compiled.net, x, dtype="float64")
    got = emu.run(compiled.program, x)
    result = {}
    upstream = np.zeros(x.shape[:2], dtype=bool)  # (sample, float step): an earlier layer disagreed
    for pop in compiled.program.populations:
        lat, scale = pop.latency, pop.scale.reshape(-1)
        shape = (x.shape[0], x.shape[1], pop.size)
        zr = ref[f"spikes.{pop.name}"].reshape(shape) if pop.spiking else np.zeros(shape, dtype=np.uint8)
        ze = got[f"spikes.{pop.name}"].reshape(shape)[:, lat:] if pop.spiking else zr[:, lat:]
        steps = ze.shape[1]
        zr = zr[:, :steps]
        ve = got[f"v.{pop.name}"].reshape(x.shape[0], x.shape[1], -1)[:, lat + 1:] / ONE / scale
        vr = ref[f"v.{pop.name}"].reshape(x.shape[0], x.shape[1], -1)[:, :ve.shape[1]]
        # v is compared while the spike histories agree, in this layer and upstream (after a missed
        # spike v differs by a reset, and the layers it feeds by a missing input)
        n = ve.shape[1]
        differs = zr[:, :n] != ze[:, :n]
        mismatch = (np.cumsum(differs, axis=1) > 0) | upstream[:, :n, None]
        verr = np.abs(ve - vr)[~mismatch]
        # IF leaks floor(V / 2**14) per tick: by step t at most (t + 1) * max|v| / 2**14 more error
        drift = (np.arange(n)[None, :, None] + 1) * np.maximum.accumulate(np.abs(vr), axis=1) / 2**14
        within = (np.abs(ve - vr) <= 1e-2 + drift)[~mismatch]
        result[pop.name] = dict(agree=float((zr == ze).mean()), ref=int(zr.sum()), emu=int(ze.sum()),
                                vmax=float(verr.max()), vmed=float(np.median(verr)),
                                vabs=float(np.abs(vr).max()), compared=float(np.mean(~mismatch)),
                                within_leak=float(within.mean()))
        if pop.spiking:
            upstream[:, :n] |= np.cumsum(differs.any(axis=2), axis=1) > 0
    return result


@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_lif_norse_matches_float_reference(integrator):
    table = np.loadtxt(LIF_DIR / "lif_norse.csv", delimiter=",")
    x = table[None, :, 0:1]
    compiled = compile_sp(LIF_NORSE, dt=1e-4, integrator=integrator)
    res = _compare(compiled, x)["1"]
    assert res["agree"] == 1.0 and res["ref"] == 4
    # One synapse, exact 16-bit weight; the decay rounds to 2**-15 (membrane_decay_error ~ 2e-4 of
    # 1 - keep): over a 25-step membrane time constant that is ~1e-4 of the threshold (0.1).
    assert res["vmax"] < 1e-4
    assert compiled.health.metrics["1"]["membrane_decay_error"] < 5e-4


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "IF"])
@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_random_two_layer_networks_match_float_reference(kind, integrator):
    g = two_layer(kind, seed=1, gain=3.0 if kind != "IF" else 0.4)
    compiled = compile_sp(g, integrator=integrator)
    assert not compiled.health.severe
    x = spikes_in((4, 300, 20))
    for name, res in _compare(compiled, x).items():
        assert res["ref"] > 20, (name, res)  # the layer is active
        # Disagreements come from neurons that end a step within the quantization error of the
        # threshold; they are rare and change spike counts by a few percent at most.
        assert res["agree"] >= 0.995, (name, res)
        assert abs(res["emu"] - res["ref"]) <= max(3, 0.03 * res["ref"]), (name, res)
        # 16-bit ring-buffer words at the worst-case shift carry weights to ~3e-4 (weight_error),
        # decays to 2**-15: v stays within 1% of the threshold (1.0), typically within 0.1%. IF
        # also leaks 2**-14 of v per tick (the float integrator does not): its v (which drifts to
        # -100 here, unbounded below) stays within 1% + (t+1) * max|v| / 2**14, and within 1e-4
        # of its range in the median.
        assert res["compared"] > 0.5, (name, res)
        assert res["within_leak"] == 1.0, (name, res)
        if kind == "IF":
            assert res["vmed"] < 1e-4 * res["vabs"], (name, res)
        else:
            assert res["vmax"] < 1e-2, (name, res)
            assert res["vmed"] < 1e-3, (name, res)


def test_per_neuron_scales_and_calibration_compile_and_agree():
    g = two_layer("CubaLIF", seed=4)
    x = spikes_in((2, 200, 20), seed=8)
    compiled = compile_model(g, Options(target="spinnaker", dt=1e-3, reset="zero", per_neuron=True),
                             calibration_inputs=x)
    assert any(f.check == "calibrated_range" for f in compiled.health.findings)
    for res in _compare(compiled, x).values():
        assert res["agree"] >= 0.995 and res["vmed"] < 1e-3


def test_sum_readout_follows_input():
    r = np.random.default_rng(0)
    g = graph({"input": inp(5), "fc1": nir.Linear(weight=r.normal(0, 2, (8, 5))), "l1": neuron("LIF", 8, r),
               "fc2": nir.Affine(weight=r.normal(0, 1, (3, 8)), bias=np.array([0.1, -0.2, 0.0])), "output": out(3)},
              [("input", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "output")])
    compiled = compile_sp(g)
    readout = compiled.program.population("output")
    assert readout.kind == "Sum" and not readout.spiking and readout.params["exp_tc"].max() == 0
    assert readout.params["v_thresh"].min() == sm.INT32_MAX
    x = spikes_in((2, 100, 5), rate=0.4)
    res = _compare(compiled, x)
    assert res["output"]["vmax"] < 1e-3 and res["l1"]["agree"] == 1.0


def test_delays_recurrence_and_conv_keep_timing():
    r = np.random.default_rng(6)
    conv = nir.Conv1d(input_shape=8, weight=r.normal(0, 1.5, (2, 1, 3)), stride=1, padding=1, dilation=1,
                      groups=1, bias=np.zeros(2))
    g = graph({
        "input": nir.Input(input_type={"input": np.array([1, 8])}),
        "conv": conv, "l1": nir.LIF(tau=np.full((2, 8), 1e-2), r=np.ones((2, 8)), v_leak=np.zeros((2, 8)),
                                    v_threshold=np.ones((2, 8)), v_reset=np.zeros((2, 8))),
        "flat": nir.Flatten(input_type={"input": np.array([2, 8])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=r.normal(1.0, 5.0, (6, 16))),
        "delay": nir.Delay(delay=np.full(6, 3e-3)),
        "l2": neuron("LIF", 6, r),
        "rec": nir.Linear(weight=r.normal(0, 0.8, (6, 6))),
        "output": out(6)},
        [("input", "conv"), ("conv", "l1"), ("l1", "flat"), ("flat", "fc"), ("fc", "delay"), ("delay", "l2"),
         ("l2", "rec"), ("rec", "l2"), ("l2", "output")])
    compiled = compile_sp(g)
    program = compiled.program
    assert sorted(c.kind for c in program.connections) == ["conv", "sparse", "sparse"]  # the conv stays a kernel
    by_name = {c.target + ("*" if c.recurrent else ""): c for c in program.connections}
    assert by_name["l2"].attrs["delay"] == 1 + 3  # one tick for the hop plus the NIR delay
    assert by_name["l2*"].attrs["delay"] == 1  # a recurrent edge delivers the previous step: one tick
    x = spikes_in((3, 200, 1, 8), rate=0.3)
    res = _compare(compiled, x)
    assert res["l2"]["ref"] > 50 and res["l1"]["ref"] > 50
    for r_ in res.values():
        assert r_["agree"] >= 0.995 and r_["vmax"] < 1e-2 and r_["vmed"] < 1e-3


def test_manifest_round_trip_runs_identically():
    compiled = compile_sp(two_layer("CubaLIF", seed=3))
    manifest, arrays = to_manifest(compiled.program)
    again = from_manifest(manifest, arrays)
    x = spikes_in((1, 50, 20))
    a, b = emu.run(compiled.program, x), emu.run(again, x)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert manifest["attrs"]["v_recorded"] == "before_update"
    assert compiled.program.populations[0].latency == 1 and compiled.program.populations[1].latency == 2


def test_program_records_chip_parameters_and_propagators():
    program = compile_sp(two_layer("CubaLIF", seed=3)).program
    ts = program.attrs["time_step_bits"]
    assert ts == ONE and program.attrs["time_step_ms"] == 1.0
    for pop in program.populations:
        p = pop.params
        prop = sm.propagators(ts, p["tau_m"], p["cm"], p["tau_syn_e"], p["tau_syn_i"], p["tau_refrac"])
        np.testing.assert_array_equal(prop.exp_tc, p["exp_tc"])
        np.testing.assert_array_equal(prop.r_membrane, ONE)  # c_m = tau_m: R = 1
        np.testing.assert_array_equal(prop.decay_syn_e, p["decay_syn_e"])
        np.testing.assert_array_equal(prop.init_syn_i, p["init_syn_i"])
        assert np.all(p["tau_refrac"] == 0) and np.all(p["v_thresh"] > p["v_reset"])
        assert all(v.dtype == np.int64 for v in p.values())


def test_if_uses_the_smallest_leak_and_reports_it():
    compiled = compile_sp(single("IF", 2, [[0.3, 0.2]]))
    pop = compiled.program.populations[0]
    assert pop.params["exp_tc"][0] == 32766  # expk(-2**-15): the leak closest to none
    assert pop.params["r_membrane"][0] == 16384 * ONE  # 1 / (1 - exp_TC) compensates the gain
    assert any(f.check == "integrator_leak" and f.severity == "info" for f in compiled.health.findings)


# ------------------------------------------------------------------ errors

def test_reset_subtract_is_refused_with_the_nearest_option():
    with pytest.raises(UnsupportedError) as err:
        compile_sp(single("LIF", 2, [[1.0, 1.0]]), reset="subtract")
    text = str(err.value)
    assert "'n'" in text and "spinnaker" in text and "--reset zero" in text
    assert isinstance(err.value, NeurodeployError)


def test_non_spiking_source_is_refused():
    r = np.random.default_rng(0)
    g = graph({"input": inp(2), "fc1": nir.Linear(weight=np.ones((3, 2))),
               "li": nir.LI(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3)),
               "fc2": nir.Linear(weight=np.ones((2, 3))), "l2": neuron("LIF", 2, r), "output": out(2)},
              [("input", "fc1"), ("fc1", "li"), ("li", "fc2"), ("fc2", "l2"), ("l2", "output")])
    with pytest.raises(UnsupportedError) as err:
        compile_sp(g)
    assert "'li'" in str(err.value) and "spinnaker" in str(err.value)


def test_bad_inputs_are_refused():
    program = compile_sp(single("LIF", 2, [[1.0, 1.0]])).program
    with pytest.raises(NeurodeployError, match="negative"):
        emu.run(program, -np.ones((1, 3, 2)))
    with pytest.raises(NeurodeployError, match="spike counts"):
        emu.run(program, np.full((1, 3, 2), 0.5))
    with pytest.raises(NeurodeployError, match="record"):
        emu.run(program, np.zeros((1, 3, 2)), record=("u",))


@pytest.mark.parametrize("kind", ["LI", "CubaLI", "I"])
def test_non_spiking_readouts_track_float_v(kind):
    r = np.random.default_rng(11)
    n = 4
    readout = {
        "LI": lambda: nir.LI(tau=r.uniform(5e-3, 2e-2, n), r=np.ones(n), v_leak=np.full(n, 0.1)),
        "CubaLI": lambda: nir.CubaLI(tau_syn=r.uniform(2e-3, 1e-2, n), tau_mem=r.uniform(5e-3, 2e-2, n),
                                     r=np.ones(n), v_leak=np.zeros(n), w_in=np.full(n, 2.0)),
        "I": lambda: nir.I(r=np.full(n, 100.0)),
    }[kind]()
    g = graph({"input": inp(6), "fc1": nir.Linear(weight=r.normal(1.0, 2.0, (8, 6))), "l1": neuron("LIF", 8, r),
               "fc2": nir.Affine(weight=r.normal(0, 1, (n, 8)), bias=r.uniform(-0.2, 0.2, n)), "ro": readout,
               "output": out(n)},
              [("input", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "ro"), ("ro", "output")])
    compiled = compile_sp(g)
    pop = compiled.program.population("ro")
    assert not pop.spiking and pop.params["v_thresh"].min() == sm.INT32_MAX
    x = spikes_in((2, 200, 6), rate=0.3)
    res = _compare(compiled, x)
    assert res["l1"]["agree"] == 1.0
    vabs = res["ro"]["vabs"]
    assert res["ro"]["within_leak"] == 1.0
    assert res["ro"]["vmax"] < 1e-3 * max(1.0, vabs) + (200 * vabs / 2**14 if kind == "I" else 0.0)
