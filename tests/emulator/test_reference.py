"""Unit tests of the float reference simulator against independent computations.

Every expected value here is computed by a small explicit loop written in this file (or by
torch.nn.functional for the convolution and pooling operators), never by calling
neurodeploy's emulator code. The update rules follow the module docstring of
``emulator/reference.py`` (forward Euler / exact exponential integration, threshold
``v > v_threshold``, reset to ``v_reset`` or by subtraction, spikes and inputs scaled by the
spike amplitude, feed-forward hops without delay, recurrent edges carrying the previous step).
"""
from __future__ import annotations

import warnings

import h5py
import nir
import numpy as np
import pytest

from neurodeploy.api import build, simulate

DT = 1e-3
SEM = dict(dt=DT, integrator="euler", reset="zero", spike_amplitude=1.0)
TOL = dict(rtol=1e-12, atol=1e-12)


def graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def inp(*shape) -> nir.Input:
    return nir.Input(input_type={"input": np.array(shape)})


def out(*shape) -> nir.Output:
    return nir.Output(output_type={"output": np.array(shape)})


def run(g, x, *, record=("v",), dtype="float64", **kw):
    opts = {**SEM, **kw}
    return simulate(g, x, record=record, dtype=dtype, **opts)


def rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ neuron models

N_IN, N = 3, 5


def _lif_params(r: np.random.Generator):
    return dict(
        tau=r.uniform(2e-3, 2e-2, N),
        r=r.uniform(0.5, 2.0, N),
        v_leak=r.uniform(-0.1, 0.3, N),
        v_threshold=r.uniform(0.5, 1.0, N),
        v_reset=r.uniform(-0.2, 0.1, N),
    )


def _currents(seed=1, batch=2, steps=200, scale=3.0):
    r = rng(seed)
    x = r.uniform(-0.5, 1.0, (batch, steps, N_IN)) * scale
    w = r.uniform(-0.5, 1.0, (N, N_IN))
    return x, w


def _lif_loop(x, w, p, *, exact, reset, dt=DT):
    batch, steps, _ = x.shape
    v = np.zeros((batch, N))
    vs = np.zeros((batch, steps, N))
    zs = np.zeros((batch, steps, N), dtype=bool)
    for b in range(batch):
        for t in range(steps):
            for j in range(N):
                cur = sum(w[j, k] * x[b, t, k] for k in range(N_IN))
                if exact:
                    u = p["v_leak"][j] + p["r"][j] * cur
                    v[b, j] = u + (v[b, j] - u) * np.exp(-dt / p["tau"][j])
                else:
                    v[b, j] = v[b, j] + dt / p["tau"][j] * ((p["v_leak"][j] - v[b, j]) + p["r"][j] * cur)
                if v[b, j] > p["v_threshold"][j]:
                    zs[b, t, j] = True
                    if reset == "zero":
                        v[b, j] = p["v_reset"][j]
                    else:
                        v[b, j] -= p["v_threshold"][j] - p["v_reset"][j]
                vs[b, t, j] = v[b, j]
    return vs, zs


def _lif_graph(w, p):
    return graph(
        {"input": inp(N_IN), "lin": nir.Linear(weight=w), "lif": nir.LIF(**p), "output": out(N)},
        [("input", "lin"), ("lin", "lif"), ("lif", "output")],
    )


@pytest.mark.parametrize("integrator", ["euler", "exact"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_lif_matches_explicit_loop(integrator, reset):
    x, w = _currents()
    p = _lif_params(rng(2))
    got = run(_lif_graph(w, p), x, integrator=integrator, reset=reset)
    vs, zs = _lif_loop(x, w, p, exact=integrator == "exact", reset=reset)
    assert zs.sum() > 20  # the test exercises spikes and resets
    np.testing.assert_array_equal(got["spikes.lif"], zs)
    np.testing.assert_allclose(got["v.lif"], vs, **TOL)


def test_reset_zero_and_subtract_differ_as_specified():
    x, w = _currents()
    p = _lif_params(rng(2))
    g = _lif_graph(w, p)
    zero = run(g, x, reset="zero")
    sub = run(g, x, reset="subtract")
    assert not np.array_equal(zero["v.lif"], sub["v.lif"])
    # On a spike step, reset-to-zero leaves exactly v_reset.
    sz = zero["spikes.lif"].astype(bool)
    np.testing.assert_array_equal(zero["v.lif"][sz], np.broadcast_to(p["v_reset"], sz.shape)[sz])
    # Subtraction leaves v - (v_th - v_reset) > v_reset, since v > v_th before the reset.
    ss = sub["spikes.lif"].astype(bool)
    assert np.all(sub["v.lif"][ss] > np.broadcast_to(p["v_reset"], ss.shape)[ss])


def _cuba_params(r: np.random.Generator):
    return dict(
        tau_syn=r.uniform(2e-3, 1e-2, N),
        tau_mem=r.uniform(3e-3, 2e-2, N),
        r=r.uniform(0.5, 2.0, N),
        v_leak=r.uniform(-0.1, 0.2, N),
        v_threshold=r.uniform(0.3, 0.8, N),
        v_reset=r.uniform(-0.1, 0.1, N),
        w_in=r.uniform(0.5, 2.0, N),
    )


def _cuba_loop(x, w, p, *, exact, reset, spiking=True, dt=DT):
    batch, steps, _ = x.shape
    v = np.zeros((batch, N))
    i = np.zeros((batch, N))
    vs, js = np.zeros((batch, steps, N)), np.zeros((batch, steps, N))
    zs = np.zeros((batch, steps, N), dtype=bool)
    for b in range(batch):
        for t in range(steps):
            for j in range(N):
                s = sum(w[j, k] * x[b, t, k] for k in range(N_IN))
                if exact:
                    e = np.exp(-dt / p["tau_syn"][j])
                    i[b, j] = i[b, j] * e + (1 - e) * p["w_in"][j] * s
                    u = p["v_leak"][j] + p["r"][j] * i[b, j]
                    v[b, j] = u + (v[b, j] - u) * np.exp(-dt / p["tau_mem"][j])
                else:
                    i[b, j] = i[b, j] + dt / p["tau_syn"][j] * (-i[b, j] + p["w_in"][j] * s)
                    v[b, j] = v[b, j] + dt / p["tau_mem"][j] * ((p["v_leak"][j] - v[b, j]) + p["r"][j] * i[b, j])
                if spiking and v[b, j] > p["v_threshold"][j]:
                    zs[b, t, j] = True
                    if reset == "zero":
                        v[b, j] = p["v_reset"][j]
                    else:
                        v[b, j] -= p["v_threshold"][j] - p["v_reset"][j]
                vs[b, t, j], js[b, t, j] = v[b, j], i[b, j]
    return vs, js, zs


@pytest.mark.parametrize("integrator", ["euler", "exact"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_cubalif_matches_explicit_loop(integrator, reset):
    x, w = _currents(seed=3)
    p = _cuba_params(rng(4))
    g = graph(
        {"input": inp(N_IN), "lin": nir.Linear(weight=w), "cuba": nir.CubaLIF(**p), "output": out(N)},
        [("input", "lin"), ("lin", "cuba"), ("cuba", "output")],
    )
    got = run(g, x, integrator=integrator, reset=reset, record=("v", "i"))
    vs, js, zs = _cuba_loop(x, w, p, exact=integrator == "exact", reset=reset)
    assert zs.sum() > 20
    np.testing.assert_array_equal(got["spikes.cuba"], zs)
    np.testing.assert_allclose(got["v.cuba"], vs, **TOL)
    np.testing.assert_allclose(got["i.cuba"], js, **TOL)


@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_li_and_cubali_match_explicit_loop(integrator):
    x, w = _currents(seed=5)
    pl = _lif_params(rng(6))
    pc = _cuba_params(rng(7))
    li = {k: pl[k] for k in ("tau", "r", "v_leak")}
    cli = {k: pc[k] for k in ("tau_syn", "tau_mem", "r", "v_leak", "w_in")}
    g = graph(
        {"input": inp(N_IN), "lin": nir.Linear(weight=w), "li": nir.LI(**li), "cli": nir.CubaLI(**cli),
         "o1": out(N), "o2": out(N)},
        [("input", "lin"), ("lin", "li"), ("lin", "cli"), ("li", "o1"), ("cli", "o2")],
    )
    exact = integrator == "exact"
    got = run(g, x, integrator=integrator)
    assert "spikes.li" not in got and "spikes.cli" not in got
    no_thr = dict(pl, v_threshold=np.full(N, np.inf))
    vs, _ = _lif_loop(x, w, no_thr, exact=exact, reset="zero")
    np.testing.assert_allclose(got["v.li"], vs, **TOL)
    vc, _, _ = _cuba_loop(x, w, pc, exact=exact, reset="zero", spiking=False)
    np.testing.assert_allclose(got["v.cli"], vc, **TOL)


@pytest.mark.parametrize("integrator", ["euler", "exact"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_if_and_i_match_explicit_loop(integrator, reset):
    x, w = _currents(seed=8, scale=1.0)
    r_ = rng(9)
    rr = r_.uniform(50, 200, N)  # r in 1/s so that dt*r*I is O(0.1)
    vth = r_.uniform(0.5, 1.0, N)
    vreset = r_.uniform(-0.2, 0.1, N)
    g = graph(
        {"input": inp(N_IN), "lin": nir.Linear(weight=w), "if": nir.IF(r=rr, v_threshold=vth, v_reset=vreset),
         "i": nir.I(r=rr), "o1": out(N), "o2": out(N)},
        [("input", "lin"), ("lin", "if"), ("lin", "i"), ("if", "o1"), ("i", "o2")],
    )
    got = run(g, x, integrator=integrator, reset=reset)
    batch, steps, _ = x.shape
    v_if = np.zeros((batch, N))
    v_i = np.zeros((batch, N))
    for t in range(steps):
        cur = np.einsum("jk,bk->bj", w, x[:, t])
        v_i = v_i + DT * rr * cur
        v_if = v_if + DT * rr * cur
        z = v_if > vth
        np.testing.assert_array_equal(got["spikes.if"][:, t], z)
        v_if = np.where(z, vreset if reset == "zero" else v_if - (vth - vreset), v_if)
        np.testing.assert_allclose(got["v.if"][:, t], v_if, **TOL)
        np.testing.assert_allclose(got["v.i"][:, t], v_i, **TOL)
    assert got["spikes.if"].sum() > 10
    assert "spikes.i" not in got


# ------------------------------------------------------------------ spikes and wiring

def test_spike_amplitude_scales_inputs_and_spikes():
    amp = 2.5
    r_ = rng(10)
    w1 = r_.uniform(0, 1, (4, 2))
    w2 = r_.uniform(-1, 1, (3, 4))
    rr = np.full(4, 100.0)
    g = graph(
        {"input": inp(2), "l1": nir.Linear(weight=w1), "if": nir.IF(r=rr, v_threshold=np.ones(4)),
         "l2": nir.Linear(weight=w2), "output": out(3)},
        [("input", "l1"), ("l1", "if"), ("if", "l2"), ("l2", "output")],
    )
    x = (r_.random((2, 60, 2)) < 0.4).astype(float)
    got = run(g, x, spike_amplitude=amp)
    v = np.zeros((2, 4))
    for t in range(60):
        v = v + DT * rr * ((amp * x[:, t]) @ w1.T)
        z = v > 1.0
        v = np.where(z, 0.0, v)
        np.testing.assert_array_equal(got["spikes.if"][:, t], z)
        np.testing.assert_allclose(got["v.output"][:, t], (amp * z) @ w2.T, **TOL)
    assert got["spikes.if"].sum() > 10
    # amplitude 'dirac' is 1/dt
    net = build(g, dt=DT, integrator="euler", reset="zero", spike_amplitude="dirac")
    assert net.semantics.spike_amplitude == pytest.approx(1 / DT)


def test_threshold_node():
    r_ = rng(11)
    thr = r_.uniform(-0.5, 0.5, 6)
    w = r_.uniform(-1, 1, (2, 6))
    g = graph(
        {"input": inp(6), "thr": nir.Threshold(threshold=thr), "lin": nir.Linear(weight=w), "output": out(2)},
        [("input", "thr"), ("thr", "lin"), ("lin", "output")],
    )
    x = r_.uniform(-1, 1, (3, 20, 6))
    got = run(g, x, spike_amplitude=3.0)
    z = (3.0 * x) > thr  # the input itself is scaled by the amplitude
    np.testing.assert_array_equal(got["spikes.thr"], z)
    np.testing.assert_allclose(got["v.output"], np.einsum("btk,jk->btj", 3.0 * z, w), **TOL)


def test_recurrent_lif_sees_previous_step_spikes():
    r_ = rng(12)
    n = 4
    w_in = r_.uniform(0.5, 1.5, (n, 1))
    w_rec = r_.uniform(-1.0, 1.0, (n, n))
    tau = np.full(n, 5e-3)
    vth = np.full(n, 0.3)
    g = graph(
        {"input": inp(1), "win": nir.Linear(weight=w_in),
         "lif": nir.LIF(tau=tau, r=np.ones(n), v_leak=np.zeros(n), v_threshold=vth, v_reset=np.zeros(n)),
         "wrec": nir.Linear(weight=w_rec), "output": out(n)},
        [("input", "win"), ("win", "lif"), ("lif", "wrec"), ("wrec", "lif"), ("lif", "output")],
    )
    x = r_.uniform(0, 8, (2, 150, 1))
    got = run(g, x)
    v = np.zeros((2, n))
    z_prev = np.zeros((2, n))
    for t in range(150):
        cur = x[:, t] @ w_in.T + z_prev @ w_rec.T
        v = v + DT / tau * (-v + cur)
        z = v > vth
        v = np.where(z, 0.0, v)
        np.testing.assert_array_equal(got["spikes.lif"][:, t], z, err_msg=f"step {t}")
        np.testing.assert_allclose(got["v.lif"][:, t], v, **TOL)
        z_prev = z.astype(float)
    assert got["spikes.lif"].sum() > 20
    net = build(g, **SEM)
    rec = [p for p in net.projections if p.source == "lif" and p.target == "lif"]
    assert len(rec) == 1 and rec[0].recurrent


def test_feed_forward_chain_has_no_delay_per_hop():
    one = np.ones(1)
    nodes = {"input": inp(1), "output": out(1)}
    edges = [("input", "w0")]
    for k in range(3):
        nodes[f"w{k}"] = nir.Linear(weight=np.ones((1, 1)))
        nodes[f"if{k}"] = nir.IF(r=one / DT, v_threshold=0.5 * one, v_reset=0 * one)
        edges += [(f"w{k}", f"if{k}")]
        if k < 2:
            edges += [(f"if{k}", f"w{k + 1}")]
    edges += [("if2", "output")]
    x = np.zeros((1, 12, 1))
    x[0, [3, 7], 0] = 1.0
    got = run(graph(nodes, edges), x)
    for k in range(3):
        assert np.flatnonzero(got[f"spikes.if{k}"][0, :, 0]).tolist() == [3, 7]


def test_delay_node_shifts_by_whole_steps():
    steps_per = np.array([3, 1])
    g = graph(
        {"input": inp(2), "delay": nir.Delay(delay=steps_per * DT), "output": out(2)},
        [("input", "delay"), ("delay", "output")],
    )
    x = rng(13).uniform(-1, 1, (2, 15, 2))
    got = run(g, x)
    expected = np.zeros_like(x)
    for j, d in enumerate(steps_per):
        expected[:, d:, j] = x[:, :-d, j]
    np.testing.assert_allclose(got["v.output"], expected, **TOL)
    assert not any("multiples" in w for w in build(g, **SEM).warnings)


def test_delay_not_a_multiple_of_dt_warns():
    g = graph(
        {"input": inp(1), "delay": nir.Delay(delay=np.array([2.4 * DT])), "output": out(1)},
        [("input", "delay"), ("delay", "output")],
    )
    net = build(g, **SEM)
    assert any("not multiples of dt" in w for w in net.warnings)
    x = np.zeros((1, 6, 1))
    x[0, 0, 0] = 1.0
    got = run(g, x)
    assert np.flatnonzero(got["v.output"][0, :, 0]).tolist() == [2]  # rounded to 2 steps


def test_affine_bias_is_a_constant_current():
    r_ = rng(14)
    w = r_.uniform(-0.5, 0.5, (N, N_IN))
    b = r_.uniform(0.5, 2.0, N)
    p = _lif_params(rng(15))
    g = graph(
        {"input": inp(N_IN), "aff": nir.Affine(weight=w, bias=b), "lif": nir.LIF(**p), "output": out(N)},
        [("input", "aff"), ("aff", "lif"), ("lif", "output")],
    )
    x = (r_.random((2, 100, N_IN)) < 0.2).astype(float)
    got = run(g, x, record=("v", "i"))
    v = np.zeros((2, N))
    for t in range(100):
        cur = x[:, t] @ w.T + b
        np.testing.assert_allclose(got["i.lif"][:, t], cur, **TOL)
        v = v + DT / p["tau"] * ((p["v_leak"] - v) + p["r"] * cur)
        z = v > p["v_threshold"]
        v = np.where(z, p["v_reset"], v)
        np.testing.assert_array_equal(got["spikes.lif"][:, t], z)
        np.testing.assert_allclose(got["v.lif"][:, t], v, **TOL)
    assert got["spikes.lif"].sum() > 5
    # With zero input the bias alone drives the neuron from step 0 on.
    zero = run(g, np.zeros((1, 3, N_IN)), record=("i",))
    np.testing.assert_allclose(zero["i.lif"][0], np.broadcast_to(b, (3, N)), **TOL)


# ------------------------------------------------------------------ operators vs torch

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _readout(op_node, in_shape, out_shape):
    return graph({"input": inp(*in_shape), "op": op_node, "output": out(*out_shape)},
                 [("input", "op"), ("op", "output")])


def _per_step(torch, fn, x):
    b, t = x.shape[:2]
    y = fn(torch.from_numpy(x.reshape((b * t,) + x.shape[2:])))
    return y.numpy().reshape((b, t) + tuple(y.shape[1:]))


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    ((1, 1), (0, 0), (1, 1), 1),
    ((2, 1), (1, 2), (1, 2), 2),
    ((2, 2), (2, 1), (2, 1), 4),
])
def test_conv2d_matches_torch(stride, padding, dilation, groups, torch):
    r_ = rng(16)
    cin, cout, hw = 4, 8, (9, 11)
    wt = r_.normal(size=(cout, cin // groups, 3, 2))
    bias = r_.normal(size=cout)
    node = nir.Conv2d(input_shape=hw, weight=wt, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=bias)
    x = r_.normal(size=(2, 3, cin) + hw)
    f = torch.nn.functional
    ref = _per_step(torch, lambda a: f.conv2d(a, torch.from_numpy(wt), torch.from_numpy(bias), stride, padding,
                                                dilation, groups), x)
    got = run(_readout(node, (cin,) + hw, ref.shape[2:]), x)
    assert got["v.output"].shape == ref.shape
    np.testing.assert_allclose(got["v.output"], ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 2, 2, 3)])
def test_conv1d_matches_torch(stride, padding, dilation, groups, torch):
    r_ = rng(17)
    cin, cout, length = 6, 9, 20
    wt = r_.normal(size=(cout, cin // groups, 3))
    bias = r_.normal(size=cout)
    node = nir.Conv1d(input_shape=length, weight=wt, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=bias)
    x = r_.normal(size=(2, 3, cin, length))
    f = torch.nn.functional
    ref = _per_step(torch, lambda a: f.conv1d(a, torch.from_numpy(wt), torch.from_numpy(bias), stride, padding,
                                                dilation, groups), x)
    got = run(_readout(node, (cin, length), ref.shape[2:]), x)
    np.testing.assert_allclose(got["v.output"], ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["SumPool2d", "AvgPool2d"])
@pytest.mark.parametrize("kernel,stride,padding", [((2, 2), (2, 2), (0, 0)), ((3, 2), (2, 1), (1, 1))])
def test_pooling_matches_torch(kind, kernel, stride, padding, torch):
    r_ = rng(18)
    node = getattr(nir, kind)(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array(padding))
    x = r_.normal(size=(2, 3, 3, 8, 7))
    factor = float(np.prod(kernel)) if kind == "SumPool2d" else 1.0
    pool = torch.nn.functional.avg_pool2d
    ref = _per_step(torch, lambda a: pool(a, kernel, stride, padding, count_include_pad=True) * factor, x)
    got = run(_readout(node, (3, 8, 7), ref.shape[2:]), x)
    np.testing.assert_allclose(got["v.output"], ref, rtol=1e-10, atol=1e-10)


def test_flatten_then_affine():
    r_ = rng(19)
    shape = (2, 3, 4)
    w = r_.normal(size=(5, 24))
    b = r_.normal(size=5)
    g = graph(
        {"input": inp(*shape), "flat": nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1),
         "aff": nir.Affine(weight=w, bias=b), "output": out(5)},
        [("input", "flat"), ("flat", "aff"), ("aff", "output")],
    )
    x = r_.normal(size=(2, 4) + shape)
    got = run(g, x)
    expected = np.einsum("btk,jk->btj", x.reshape(2, 4, -1), w) + b
    np.testing.assert_allclose(got["v.output"], expected, **TOL)


def test_scale_node():
    r_ = rng(20)
    s = r_.uniform(-2, 2, 4)
    g = _readout(nir.Scale(scale=s), (4,), (4,))
    x = r_.normal(size=(2, 5, 4))
    np.testing.assert_allclose(run(g, x)["v.output"], x * s, **TOL)


def test_output_fed_by_affine_is_a_linear_readout_of_spikes():
    x, w = _currents(seed=21)
    p = _lif_params(rng(22))
    r_ = rng(23)
    w_out = r_.normal(size=(2, N))
    b_out = r_.normal(size=2)
    g = graph(
        {"input": inp(N_IN), "lin": nir.Linear(weight=w), "lif": nir.LIF(**p),
         "ro": nir.Affine(weight=w_out, bias=b_out), "output": out(2)},
        [("input", "lin"), ("lin", "lif"), ("lif", "ro"), ("ro", "output")],
    )
    got = run(g, x)
    _, zs = _lif_loop(x, w, p, exact=False, reset="zero")
    assert "spikes.output" not in got
    np.testing.assert_allclose(got["v.output"], np.einsum("btk,jk->btj", zs.astype(float), w_out) + b_out, **TOL)


def test_nested_subgraph_names_and_dynamics():
    x, w = _currents(seed=24)
    p = _lif_params(rng(25))
    inner = graph(
        {"in": inp(N_IN), "lin": nir.Linear(weight=w), "lif": nir.LIF(**p), "out": out(N)},
        [("in", "lin"), ("lin", "lif"), ("lif", "out")],
    )
    outer = graph({"input": inp(N_IN), "sub": inner, "output": out(N)},
                  [("input", "sub"), ("sub", "output")])
    got = run(outer, x)
    assert set(got) == {"spikes.sub.lif", "v.sub.lif"}
    vs, zs = _lif_loop(x, w, p, exact=False, reset="zero")
    np.testing.assert_array_equal(got["spikes.sub.lif"], zs)
    np.testing.assert_allclose(got["v.sub.lif"], vs, **TOL)


def test_sparse_weights_equal_dense():
    r_ = rng(26)
    n_out, n_in = 8, 16  # 128 entries
    w = np.zeros((n_out, n_in))
    idx = r_.choice(w.size, size=10, replace=False)  # < 10 % non-zero
    w.flat[idx] = r_.uniform(0.5, 2.0, idx.size)
    tau = np.full(n_out, 4e-3)
    g = graph(
        {"input": inp(n_in), "lin": nir.Linear(weight=w),
         "lif": nir.LIF(tau=tau, r=np.ones(n_out), v_leak=np.zeros(n_out), v_threshold=np.full(n_out, 0.2)),
         "output": out(n_out)},
        [("input", "lin"), ("lin", "lif"), ("lif", "output")],
    )
    net = build(g, **SEM)
    assert [op.kind for proj in net.projections for op in proj.ops] == ["sparse"]
    x = (r_.random((2, 80, n_in)) < 0.3).astype(float)
    got = simulate(net, x, dtype="float64")
    v = np.zeros((2, n_out))
    for t in range(80):
        v = v + DT / tau * (-v + x[:, t] @ w.T)
        z = v > 0.2
        v = np.where(z, 0.0, v)
        np.testing.assert_array_equal(got["spikes.lif"][:, t], z)
        np.testing.assert_allclose(got["v.lif"][:, t], v, **TOL)
    assert got["spikes.lif"].sum() > 5


def test_batch_samples_are_independent():
    r_ = rng(27)
    n = 6
    p = {k: np.resize(v, n) for k, v in _cuba_params(rng(28)).items()}  # 6 neurons
    g = graph(
        {"input": inp(2), "win": nir.Affine(weight=r_.normal(size=(n, 2)), bias=r_.normal(size=n) * 0.1),
         "cuba": nir.CubaLIF(**p), "wrec": nir.Linear(weight=r_.normal(size=(n, n))), "output": out(n)},
        [("input", "win"), ("win", "cuba"), ("cuba", "wrec"), ("wrec", "cuba"), ("cuba", "output")],
    )
    x = r_.uniform(0, 3, (4, 60, 2)).astype(np.float32)
    whole = run(g, x, dtype="float32", record=("v", "i"))
    assert whole["spikes.cuba"].sum() > 0
    for b in range(4):
        one = run(g, x[b:b + 1], dtype="float32", record=("v", "i"))
        for key in whole:
            np.testing.assert_array_equal(whole[key][b:b + 1], one[key], err_msg=key)


# ------------------------------------------------------------------ exporter quirks

def _norse_style_file(path, input_shape):
    """A file as norse 1.1.0 writes it (nir.write refuses 0-d data): batch axis in Input, 0-d params."""
    w = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 2.0]])
    with h5py.File(path, "w") as f:
        f["version"] = "1.0.8"
        node = f.create_group("node")
        node["type"] = "NIRGraph"
        nodes = node.create_group("nodes")
        specs = {
            "input": {"type": "Input", "shape": np.array(input_shape)},
            "0": {"type": "Affine", "weight": w, "bias": np.zeros(2)},
            "1": {"type": "LIF", "tau": np.array(5e-3), "r": np.array(1.0), "v_leak": np.array(0.0),
                  "v_threshold": np.array(0.5), "v_reset": np.array(0.0)},
            "output": {"type": "Output", "shape": np.array([1, 2])},
        }
        for name, fields in specs.items():
            grp = nodes.create_group(name)
            for k, v in fields.items():
                grp[k] = v
        node["edges"] = np.array([["input", "0"], ["0", "1"], ["1", "output"]], dtype=object).astype("S")
    return w


def _lif_scalar_loop(x, w, tau=5e-3, vth=0.5):
    v = np.zeros((x.shape[0], w.shape[0]))
    zs = []
    for t in range(x.shape[1]):
        v = v + DT / tau * (-v + x[:, t] @ w.T)
        z = v > vth
        v = np.where(z, 0.0, v)
        zs.append(z)
    return np.stack(zs, 1)


def test_norse_style_scalars_are_broadcast(tmp_path):
    path = tmp_path / "norse_style.nir"
    w = _norse_style_file(path, [3])
    net = build(path, **SEM)
    pop = net.populations["1"]
    assert pop.shape == (2,)
    for k in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
        assert pop.params[k].shape == (2,)
    x = (rng(29).random((2, 50, 3)) < 0.4).astype(float)
    got = simulate(net, x, dtype="float64")
    np.testing.assert_array_equal(got["spikes.1"], _lif_scalar_loop(x, w))
    assert got["spikes.1"].sum() > 0


@pytest.mark.parametrize("conv_input_shape", [
    (6, 6),
    None,  # what norse 1.1.0's to_nir writes
])
def test_norse_style_batch_axis_in_conv_input_is_dropped_with_warning(conv_input_shape, torch):
    r_ = rng(30)
    wt = r_.normal(size=(3, 2, 3, 3))
    g = graph(
        {"input": inp(1, 2, 6, 6),
         "conv": nir.Conv2d(input_shape=conv_input_shape, weight=wt, stride=1, padding=1, dilation=1, groups=1,
                            bias=np.zeros(3)),
         "if": nir.IF(r=np.array(1.0 / DT), v_threshold=np.array(1.0)), "output": out(1, 3, 6, 6)},
        [("input", "conv"), ("conv", "if"), ("if", "output")],
    )
    net = build(g, **SEM)
    assert net.inputs["input"].shape == (2, 6, 6)
    assert any("batch axis" in w for w in net.warnings)
    assert net.populations["if"].shape == (3, 6, 6)
    x = r_.normal(size=(2, 4, 2, 6, 6))
    got = simulate(net, x, dtype="float64")
    cur = _per_step(torch, lambda a: torch.nn.functional.conv2d(a, torch.from_numpy(wt), None, 1, 1), x)
    v = np.zeros((2, 3, 6, 6))
    for t in range(4):
        v = v + cur[:, t]
        z = v > 1.0
        v = np.where(z, 0.0, v)
        np.testing.assert_array_equal(got["spikes.if"][:, t], z)


def test_norse_style_batch_axis_in_vector_input_is_dropped_with_warning(tmp_path):
    path = tmp_path / "norse_style.nir"
    _norse_style_file(path, [1, 3])
    net = build(path, **SEM)
    assert net.inputs["input"].shape == (3,)
    assert any("batch axis" in w for w in net.warnings)


def test_norse_style_batch_axis_in_vector_input_still_simulates(tmp_path):
    """Whatever the declared Input shape, (batch, steps, 3) data runs and gives the right spikes."""
    path = tmp_path / "norse_style.nir"
    w = _norse_style_file(path, [1, 3])
    x = (rng(31).random((2, 50, 3)) < 0.4).astype(float)
    got = simulate(path, x, dtype="float64", **SEM)
    np.testing.assert_array_equal(got["spikes.1"], _lif_scalar_loop(x, w))


def test_semantics_defaults_warn():
    x, w = _currents(steps=2)
    g = _lif_graph(w, _lif_params(rng(2)))
    with pytest.warns(UserWarning, match="does not state"):
        simulate(g, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(g, x, **SEM)
