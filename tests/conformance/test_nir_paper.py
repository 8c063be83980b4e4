"""Conformance with the NIR paper's data (Pedersen et al., Nat. Commun. 15:8122, 2024).

The files live in tests/data/nir_paper/ (see PROVENANCE.md there); nothing is read from
outside the tests folder.
"""
from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.api import build, simulate

DATA = Path(__file__).parents[1] / "data" / "nir_paper"
LIF = DATA / "lif"
PAPER_DT = 1e-4  # the LIF and Braille graphs' time step
EULER = dict(integrator="euler", spike_amplitude=1.0)


def _csv(name: str) -> np.ndarray:
    table = np.loadtxt(LIF / name, delimiter=",")
    assert table.shape == (1000, 3)  # input, v, spike
    return table


# ------------------------------------------------------------------ lif_norse.nir vs the csv traces

def test_lif_norse_reproduces_norse_trace_exactly():
    table = _csv("lif_norse.csv")
    x = table[None, :, 0:1]
    got = simulate(LIF / "lif_norse.nir", x, dt=PAPER_DT, reset="zero", dtype="float32", **EULER)
    spikes = got["spikes.1"][0, :, 0]
    v = got["v.1"][0, :, 0]
    assert v.dtype == np.float32
    np.testing.assert_array_equal(spikes, table[:, 2].astype(np.uint8))
    # The csv stores rounded decimals of norse's float32 trace: cast back, they are bit-identical.
    np.testing.assert_array_equal(v, table[:, 1].astype(np.float32))
    assert np.flatnonzero(spikes).tolist() == [460, 510, 710, 760]


def test_lif_norse_exact_integration_matches_lif_exact_spike_steps():
    table = _csv("lif_exact.csv")
    expected = np.flatnonzero(table[:, 2]).tolist()
    assert expected == [460, 510, 710, 760]
    got = simulate(LIF / "lif_norse.nir", table[None, :, 0:1], dt=PAPER_DT, integrator="exact",
                   reset="zero", spike_amplitude=1.0)
    assert np.flatnonzero(got["spikes.1"][0, :, 0]).tolist() == expected


def test_lif_norse_euler_and_exact_differ_in_v():
    """The integrator option is not a no-op: same spikes here, different membrane traces."""
    x = _csv("lif_norse.csv")[None, :, 0:1]
    euler = simulate(LIF / "lif_norse.nir", x, dt=PAPER_DT, reset="zero", **EULER)
    exact = simulate(LIF / "lif_norse.nir", x, dt=PAPER_DT, integrator="exact", reset="zero",
                     spike_amplitude=1.0)
    assert not np.array_equal(euler["v.1"], exact["v.1"])


# ------------------------------------------------------------------ every paper graph loads and runs

def _bernoulli(shape, p, seed):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float32)


CASES = {
    # name: (path, options, input shape, p)
    "lif_norse": (LIF / "lif_norse.nir", dict(dt=PAPER_DT, reset="zero"), (2, 300, 1), 0.1),
    "lif_rockpool": (LIF / "lif_rockpool.nir", dict(dt=PAPER_DT, reset="zero"), (2, 300, 1), 0.1),
    "two_lif_neurons": (LIF / "two_lif_neurons.nir", dict(dt=PAPER_DT, reset="zero"), (2, 300, 1), 0.1),
    # sinabs' convention: one step is one time unit, reset by subtraction
    "cnn_sinabs": (DATA / "cnn" / "cnn_sinabs.nir", dict(dt=1.0, reset="subtract"), (2, 20, 2, 34, 34), 0.2),
    "braille_bias_zero": (DATA / "braille" / "braille_noDelay_bias_zero.nir", dict(dt=PAPER_DT, reset="zero"),
                          (2, 50, 12), 0.3),
    "braille_noBias_subtract": (DATA / "braille" / "braille_noDelay_noBias_subtract.nir",
                                dict(dt=PAPER_DT, reset="subtract"), (2, 50, 12), 0.3),
}

# populations (name -> shape) each graph must produce
EXPECTED_POPULATIONS = {
    "lif_norse": {"1": (1,)},
    "lif_rockpool": {"1_LIFNeuronTorch": (1,)},
    "two_lif_neurons": {"lif1": (1,), "lif2": (1,)},
    "cnn_sinabs": {"1": (16, 16, 16), "3": (16, 16, 16), "6": (8, 8, 8), "10": (256,), "12": (10,)},
    "braille_bias_zero": {"lif1.lif": (38,), "lif2": (7,)},
    "braille_noBias_subtract": {"lif1.lif": (40,), "lif2": (7,)},
}


@pytest.fixture(scope="module")
def paper_runs():
    runs = {}
    for name, (path, opts, shape, p) in CASES.items():
        x = _bernoulli(shape, p, seed=len(name))
        runs[name] = (x, simulate(path, x, **opts, **EULER), simulate(path, x, **opts, **EULER))
    return runs


@pytest.mark.parametrize("name", list(CASES))
def test_paper_graph_loads_and_simulates(name, paper_runs):
    path, opts, shape, _ = CASES[name]
    net = build(path, **opts, **EULER)
    assert len(net.inputs) == 1
    assert next(iter(net.inputs.values())).shape == shape[2:]
    x, first, _ = paper_runs[name]
    batch, steps = shape[:2]
    for pop, pshape in EXPECTED_POPULATIONS[name].items():
        assert net.populations[pop].shape == pshape
        assert first[f"spikes.{pop}"].shape == (batch, steps) + pshape
        assert first[f"v.{pop}"].shape == (batch, steps) + pshape
        assert first[f"spikes.{pop}"].dtype == np.uint8
        assert np.all(np.isfinite(first[f"v.{pop}"]))
    assert set(first) == {f"{k}.{p}" for p in EXPECTED_POPULATIONS[name] for k in ("spikes", "v")}


@pytest.mark.parametrize("name", list(CASES))
def test_paper_graph_simulation_is_deterministic(name, paper_runs):
    _, first, second = paper_runs[name]
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_paper_graphs_show_activity(paper_runs):
    s = {name: {k: int(v.sum()) for k, v in run[1].items() if k.startswith("spikes.")}
         for name, run in paper_runs.items()}
    # lif_norse: w=1 amplitude-1 spikes into tau=2.5 ms, threshold 0.1: a 10 % input rate fires it
    assert s["lif_norse"]["spikes.1"] > 0
    # two_lif_neurons: lif1 has v_leak=1.2 > threshold 1 and fires on its own; lif2 (threshold 20) never
    assert s["two_lif_neurons"]["spikes.lif1"] > 0
    assert s["two_lif_neurons"]["spikes.lif2"] == 0
    assert paper_runs["two_lif_neurons"][1]["v.lif2"].max() > 0
    # cnn: every IF layer down to the 10 outputs fires with dt=1 (one step = one unit)
    assert all(n > 0 for n in s["cnn_sinabs"].values()), s["cnn_sinabs"]
    # braille: both layers fire
    for name in ("braille_bias_zero", "braille_noBias_subtract"):
        assert all(n > 0 for n in s[name].values()), (name, s[name])
    # different samples give different outputs (the input matters)
    for name, (_, run, _) in paper_runs.items():
        v = run[next(k for k in run if k.startswith("v."))]
        assert not np.array_equal(v[0], v[1]), name


def test_cnn_with_a_physical_dt_is_silent():
    """With a physical dt (1e-3) instead of sinabs' unit step, the IF gain dt*r drops 1000x: silence."""
    x = _bernoulli((1, 20, 2, 34, 34), 0.2, seed=1)
    got = simulate(DATA / "cnn" / "cnn_sinabs.nir", x, dt=1e-3, reset="subtract", **EULER)
    assert got["spikes.12"].sum() == 0
    assert got["spikes.1"].sum() == 0


# ------------------------------------------------------------------ braille: the reset contract

BRAILLE_SUB = DATA / "braille" / "braille_noDelay_noBias_subtract.nir"
BRAILLE_ZERO = DATA / "braille" / "braille_noDelay_bias_zero.nir"


def _braille_loop(path, x, reset, dt=PAPER_DT):
    """Independent forward-Euler run of the paper's Braille graph, from nir.read's parameters."""
    g = nir.read(path, type_check=False)
    n = g.nodes

    def affine(name):
        node = n[name]
        return np.asarray(node.weight, float), np.asarray(getattr(node, "bias", 0.0), float)

    (w1, b1), (wr, br), (w2, b2) = affine("fc1"), affine("lif1.w_rec"), affine("fc2")
    layers = [n["lif1.lif"], n["lif2"]]
    p = [{k: np.asarray(getattr(c, k), float) for k in
          ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")} for c in layers]
    batch, steps, _ = x.shape
    state = [dict(i=np.zeros((batch, q["r"].size)), v=np.zeros((batch, q["r"].size))) for q in p]
    z1 = np.zeros((batch, p[0]["r"].size))
    out = {k: np.zeros((batch, steps, q["r"].size)) for k, q in zip(("1", "2"), p)}
    vs = {k: np.zeros((batch, steps, q["r"].size)) for k, q in zip(("1", "2"), p)}
    for t in range(steps):
        cur1 = x[:, t] @ w1.T + b1 + z1 @ wr.T + br  # recurrence: previous step's spikes
        spikes = []
        for k, (q, s, cur) in enumerate(zip(p, state, (cur1, None))):
            if k == 1:
                cur = spikes[0] @ w2.T + b2  # feed-forward: this step's spikes
            s["i"] = s["i"] + dt / q["tau_syn"] * (-s["i"] + q["w_in"] * cur)
            s["v"] = s["v"] + dt / q["tau_mem"] * ((q["v_leak"] - s["v"]) + q["r"] * s["i"])
            z = s["v"] > q["v_threshold"]
            if reset == "zero":
                s["v"] = np.where(z, q["v_reset"], s["v"])
            else:
                s["v"] = np.where(z, s["v"] - (q["v_threshold"] - q["v_reset"]), s["v"])
            spikes.append(z.astype(float))
            out[str(k + 1)][:, t] = z
            vs[str(k + 1)][:, t] = s["v"]
        z1 = spikes[0]
    return out, vs


@pytest.mark.parametrize("path,reset", [(BRAILLE_SUB, "subtract"), (BRAILLE_SUB, "zero"), (BRAILLE_ZERO, "zero")])
def test_braille_matches_independent_loop(path, reset):
    x = _bernoulli((2, 50, 12), 0.3, seed=7).astype(np.float64)
    got = simulate(path, x, dt=PAPER_DT, reset=reset, dtype="float64", **EULER)
    spikes, vs = _braille_loop(path, x, reset)
    np.testing.assert_array_equal(got["spikes.lif1.lif"], spikes["1"])
    np.testing.assert_array_equal(got["spikes.lif2"], spikes["2"])
    np.testing.assert_allclose(got["v.lif1.lif"], vs["1"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got["v.lif2"], vs["2"], rtol=1e-9, atol=1e-9)
    assert spikes["1"].sum() > 0 and spikes["2"].sum() > 0


def test_braille_subtract_differs_from_zero():
    x = _bernoulli((2, 50, 12), 0.3, seed=11)
    sub = simulate(BRAILLE_SUB, x, dt=PAPER_DT, reset="subtract", **EULER)
    zero = simulate(BRAILLE_SUB, x, dt=PAPER_DT, reset="zero", **EULER)
    assert not np.array_equal(sub["spikes.lif2"], zero["spikes.lif2"]) or \
        not np.array_equal(sub["spikes.lif1.lif"], zero["spikes.lif1.lif"])
    assert not np.array_equal(sub["v.lif1.lif"], zero["v.lif1.lif"])
    # Reset to zero leaves exactly v_reset (0) on a spike step ...
    for pop in ("lif1.lif", "lif2"):
        s = zero[f"spikes.{pop}"].astype(bool)
        assert s.any()
        assert np.all(zero[f"v.{pop}"][s] == 0)
    # ... subtraction leaves the excess over threshold, v_pre - v_th > 0 (threshold 1, v_reset 0)
    for pop in ("lif1.lif", "lif2"):
        s = sub[f"spikes.{pop}"].astype(bool)
        assert s.any()
        assert np.all(sub[f"v.{pop}"][s] > 0)
        assert np.any(sub[f"v.{pop}"][s] > 1e-3)  # a real residue, not rounding


def test_braille_subtract_residue_is_bounded_by_one_step_of_drive():
    """After a subtract-reset, v <= v_th plus what one Euler step of drive could add above it.

    With v_leak = 0: v_pre = v_prev + a*(r*I - v_prev) <= max(v_prev, 0) + a*max(r*I - v_prev, 0),
    and subtraction removes the full threshold (v_reset = 0), so the recorded post-reset value is
    at most that bound minus v_th: the residue comes from this step's drive, nothing else.
    """
    x = _bernoulli((2, 50, 12), 0.3, seed=11)
    got = simulate(BRAILLE_SUB, x, dt=PAPER_DT, reset="subtract", record=("v", "i"), dtype="float64", **EULER)
    net = build(BRAILLE_SUB, dt=PAPER_DT, reset="subtract", **EULER)
    for pop in ("lif1.lif", "lif2"):
        prm = net.populations[pop].params
        a = PAPER_DT / prm["tau_mem"]
        v, i, s = got[f"v.{pop}"], got[f"i.{pop}"], got[f"spikes.{pop}"].astype(bool)
        v_prev = np.concatenate([np.zeros_like(v[:, :1]), v[:, :-1]], axis=1)
        bound = np.maximum(v_prev, 0) + a * np.maximum(prm["r"] * i - v_prev, 0) - prm["v_threshold"]
        assert np.all(v[s] <= bound[s] + 1e-9), pop


def test_braille_parameters_json_matches_the_graph():
    """snnTorch export: tau = dt/(1-beta); check the shipped hyper-parameters against the graph."""
    for graph_path, params in [(BRAILLE_ZERO, "parameters_noDelay_bias_ref_zero.json"),
                               (BRAILLE_SUB, "parameters_noDelay_noBias_ref_subtract.json")]:
        hp = json.loads((DATA / "braille" / params).read_text())
        net = build(graph_path, dt=PAPER_DT, reset="zero", **EULER)
        hidden = net.populations["lif1.lif"]
        assert hidden.shape == (hp["nb_hidden"],)
        np.testing.assert_allclose(hidden.params["tau_mem"], PAPER_DT / (1 - hp["beta_r"]), rtol=1e-5)
        np.testing.assert_allclose(hidden.params["tau_syn"], PAPER_DT / (1 - hp["alpha_r"]), rtol=1e-5)
        out = net.populations["lif2"]
        np.testing.assert_allclose(out.params["tau_mem"], PAPER_DT / (1 - hp["beta_out"]), rtol=1e-5)
        np.testing.assert_allclose(out.params["tau_syn"], PAPER_DT / (1 - hp["alpha_out"]), rtol=1e-5)
