"""Profiling: counts against independent counts from raw emulator traces, cost formulas,
ingestion of measured profiles, the CLI, and the HTML report in a real headless browser."""
from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sqlite3
import subprocess
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.format import artifact
from neurodeploy.format.core_slices import slice_indices
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.targets import loihi2 as loihi2_target
from neurodeploy.targets import spinnaker as spinnaker_target
from neurodeploy.emulator import run_program
from neurodeploy.emulator.ops import conv as float_conv
from neurodeploy.models import data, paths
from neurodeploy.analysis.profile import profile
from neurodeploy.analysis.profile_ingest import IngestError, ingest, read_spinnaker_energy_report
from neurodeploy.format.program import from_manifest
from neurodeploy.analysis.verify import pad_for_latency

warnings.filterwarnings("ignore", category=UserWarning)
DATA = Path(__file__).parents[1] / "data" / "profiles"


# ------------------------------------------------------------------ independent counting (no neurodeploy.analysis.profile code)

def explicit_matrix(conn) -> np.ndarray:
    """Synapses (non-zero deployed weights) per (target, source) pair as a dense int matrix."""
    w = np.asarray(conn.arrays["weight"])
    if conn.kind == "dense":
        return (w != 0).astype(np.int64)
    if conn.kind == "sparse":
        m = np.zeros((conn.n_out, conn.n_in), dtype=np.int64)
        indptr, indices = conn.arrays["indptr"], conn.arrays["indices"]
        for i in range(conn.n_out):
            for k in range(indptr[i], indptr[i + 1]):
                if w[k] != 0:
                    m[i, indices[k]] += 1
        return m
    # conv: push every one-hot input through the convolution with the kernel's non-zero pattern
    a = conn.attrs
    in_shape = tuple(a["in_shape"])
    eye = np.eye(conn.n_in).reshape((conn.n_in,) + in_shape)
    out = float_conv(eye, (w != 0).astype(np.float64), a["stride"], a["padding"], a["dilation"], int(a["groups"]))
    return np.rint(out.reshape(conn.n_in, -1).T).astype(np.int64)


def stored_matrix(conn) -> np.ndarray:
    """Every stored synaptic word (SpiNNaker keeps zero weights) per (target, source) pair."""
    if conn.kind != "sparse":
        return explicit_matrix(conn)
    m = np.zeros((conn.n_out, conn.n_in), dtype=np.int64)
    indptr, indices = conn.arrays["indptr"], conn.arrays["indices"]
    for i in range(conn.n_out):
        for k in range(indptr[i], indptr[i + 1]):
            m[i, indices[k]] += 1
    return m


def raw_run(program, inputs):
    padded = pad_for_latency(program, {next(iter(program.inputs)): inputs})
    record = ("u", "v") if program.target != "spinnaker" else ()
    traces = run_program(program, padded, record=record)
    x = next(iter(padded.values()))
    batch, steps = x.shape[:2]
    act = {next(iter(program.inputs)): np.asarray(x).reshape(batch, steps, -1).astype(np.int64)}
    for pop in program.populations:
        if pop.spiking:
            act[pop.name] = traces[f"spikes.{pop.name}"].reshape(batch, steps, -1).astype(np.int64)
        else:
            act[pop.name] = np.zeros((batch, steps, pop.size), dtype=np.int64)
    return traces, act, batch, steps


def independent_counts(program, act, batch, steps):
    """Per connection: (ACs, MACs) per sample, NeuroBench's rule per sample and step."""
    out = {}
    for conn in program.connections:
        m = explicit_matrix(conn)
        fan_out = m.sum(axis=0)
        acs = np.zeros(batch, dtype=np.int64)
        macs = np.zeros(batch, dtype=np.int64)
        x = act[conn.source]
        for b in range(batch):
            for t in range(steps):
                values = x[b, t]
                ops = int(((values != 0) * fan_out).sum())
                if np.all((values == 0) | (values == 1) | (values == -1)):
                    acs[b] += ops
                else:
                    macs[b] += ops
        out[conn.name] = (acs, macs, m)
    return out


def compiled(model: str, target: str, **options):
    return compile_model(paths()[model], Options(target=target, **options))


def check_counts(c, inputs):
    """Profile counts == counts from the emulator's raw traces, per connection, population, core."""
    p = profile(c, inputs)
    program = c.program
    traces, act, batch, steps = raw_run(program, inputs)
    assert p["steps"] == steps and p["samples"] == batch
    ref = independent_counts(program, act, batch, steps)
    for name, (acs, macs, m) in ref.items():
        row = p["connections"][name]
        assert row["effective_acs"]["per_sample"] == acs.tolist(), name
        assert row["effective_macs"]["per_sample"] == macs.tolist(), name
        assert row["synapses"] == int(m.sum())
        assert row["connection_sparsity"] == pytest.approx(1 - np.count_nonzero(m) / m.size)
    for pop in program.populations:
        spikes = act[pop.name].sum(axis=(1, 2))
        e = p["populations"][pop.name]
        assert e["spikes"]["per_sample"] == spikes.tolist()
        assert e["neuron_updates"]["total"] == pop.size * steps * batch
        if pop.spiking:
            assert e["rate_per_neuron_step"] == pytest.approx(spikes.sum() / (pop.size * steps * batch))
            assert e["rate_hz"] == pytest.approx(e["rate_per_neuron_step"] / c.net.semantics.dt)
    # per core: synapses of the slice x spikes of their sources
    for core in p["cores"]:
        if core["input"]:
            continue
        acs = np.zeros(batch, dtype=np.int64)
        for conn in program.connections:
            if conn.target != core["population"]:
                continue
            fan = ref[conn.name][2][slice_indices(core)].sum(axis=0)
            acs += ((act[conn.source] != 0) * fan).sum(axis=(1, 2))
        got = np.asarray(core["effective_acs"]["per_sample"]) + np.asarray(core["effective_macs"]["per_sample"])
        assert got.tolist() == acs.tolist(), core["core"]
        assert core["spikes"]["per_sample"] == act[core["population"]][:, :, slice_indices(core)].sum(axis=(1, 2)).tolist()
    total = sum(a.sum() + mm.sum() for a, mm, _ in ref.values())
    assert p["total"]["synaptic_operations"]["total"] == total
    spiking = [q for q in program.populations if q.spiking]
    n_spk = sum(q.size for q in spiking)
    assert p["total"]["activation_sparsity"] == pytest.approx(
        1 - sum(act[q.name].sum() for q in spiking) / (n_spk * steps * batch))
    json.dumps(p)  # JSON-ready
    return p, act, traces


# ------------------------------------------------------------------ counts

@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_feed_forward_counts(target):
    x, _ = data.test_set("digits_mlp")
    p, _, _ = check_counts(compiled("digits_mlp", target, neurons_per_core=48), x[:3])
    assert len([c for c in p["cores"] if c["population"] == "lif1"]) == 3  # 128 neurons in slices of 48


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_conv_counts_exact_at_borders(target):
    x, _ = data.test_set("digits_conv")
    c = compiled("digits_conv", target, neurons_per_core=200)
    p, _, _ = check_counts(c, x[:2])
    conv = next(k for k in c.program.connections if k.name == "conv1")
    m = explicit_matrix(conv)
    if conv.kind == "conv":  # a corner pixel reaches fewer outputs than a centre pixel (padding 1)
        fan = m.sum(axis=0).reshape(8, 8)
        assert fan[0, 0] < fan[4, 4]


def conv_graph(stride=2, padding=1, dilation=1, groups=2) -> nir.NIRGraph:
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.6, size=(4, 2 // groups, 3, 3)).astype(np.float32)
    w[0, 0, 1, 1] = 0.0  # a zero tap: not a synapse
    h = (7 + 2 * padding - dilation * 2 - 1) // stride + 1
    n = 4 * h * h
    nodes = {
        "input": nir.Input(input_type=np.array([2, 7, 7])),
        "conv": nir.Conv2d(input_shape=np.array([7, 7]), weight=w, stride=stride, padding=padding, dilation=dilation,
                           groups=groups, bias=np.zeros(4, dtype=np.float32)),
        "lif": nir.LIF(tau=np.full((4, h, h), 0.01), r=np.ones((4, h, h)), v_leak=np.zeros((4, h, h)),
                       v_threshold=np.full((4, h, h), 0.5), v_reset=np.zeros((4, h, h))),
        "output": nir.Output(output_type=np.array([4, h, h])),
    }
    # NIR 1.0.8 infers a conv input of weight.shape[1] channels (ignoring groups): skip its type check
    return nir.NIRGraph(nodes=nodes, edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")], type_check=False), n


@pytest.mark.parametrize("stride,padding,dilation,groups", [(2, 1, 1, 2), (1, 0, 2, 1), (3, 2, 1, 1)])
def test_conv_geometry_counts(stride, padding, dilation, groups):
    graph, n = conv_graph(stride, padding, dilation, groups)
    c = compile_model(graph, Options(target="loihi2", dt=1e-3, neurons_per_core=max(1, n // 3)))
    rng = np.random.default_rng(0)
    x = (rng.random((2, 12, 2, 7, 7)) < 0.4).astype(np.float32)
    check_counts(c, x)


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_recurrent_counts(target):
    x, _ = data.test_set("temporal_rnn")
    c = compiled("temporal_rnn", target)
    assert any(k.recurrent for k in c.program.connections)
    p, act, _ = check_counts(c, x[:3])
    rec = next(k for k in c.program.connections if k.recurrent)
    assert p["connections"][rec.name]["effective_acs"]["total"] > 0  # the loop carries spikes


def skip_graph() -> nir.NIRGraph:
    """input -> lif1 -> lif2 and input -> lif2: the compiler delays the short path (Loihi: 1 step/hop)."""
    rng = np.random.default_rng(5)
    lif = lambda n: nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n),  # noqa: E731
                            v_threshold=np.full(n, 0.3), v_reset=np.zeros(n))
    nodes = {
        "input": nir.Input(input_type=np.array([6])),
        "fc1": nir.Linear(weight=rng.normal(0, 1, (8, 6)).astype(np.float32)),
        "lif1": lif(8),
        "fc2": nir.Linear(weight=rng.normal(0, 1, (5, 8)).astype(np.float32)),
        "skip": nir.Linear(weight=rng.normal(0, 1, (5, 6)).astype(np.float32)),
        "lif2": lif(5),
        "output": nir.Output(output_type=np.array([5])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("input", "skip"), ("skip", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_delayed_connection_counts(target):
    c = compile_model(skip_graph(), Options(target=target, dt=1e-3))
    rng = np.random.default_rng(1)
    x = (rng.random((3, 15, 6)) < 0.5).astype(np.float32)
    check_counts(c, x)
    if target == "loihi2":
        assert any(int(k.attrs.get("delay", 0)) > 0 or "delay" in k.arrays for k in c.program.connections)


def test_batches_count_each_sample():
    x, _ = data.test_set("digits_mlp")
    c = compiled("digits_mlp", "loihi2")
    whole = profile(c, x[:4])
    for b in range(4):
        one = profile(c, x[b:b + 1])
        for name, conn in whole["connections"].items():
            assert conn["effective_acs"]["per_sample"][b] == one["connections"][name]["effective_acs"]["total"]
        for name, pop in whole["populations"].items():
            assert pop["spikes"]["per_sample"][b] == one["populations"][name]["spikes"]["total"]
        assert whole["cost"]["energy_j"]["per_sample"][b] == pytest.approx(one["cost"]["energy_j"]["total"])
    t = whole["total"]["synaptic_operations"]
    assert t["total"] == sum(t["per_sample"]) and t["mean_per_sample"] == pytest.approx(t["total"] / 4)


def test_graded_inputs_count_as_macs():
    c = compiled("digits_mlp", "loihi2")
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, size=(2, 6, 64)).astype(np.float32)
    x[0, 2] = (x[0, 2] > 0)  # one binary step in a graded sample: ACs there
    p, _, _ = check_counts(c, x)
    fc1 = p["connections"]["fc1"]
    assert fc1["effective_macs"]["total"] > 0 and fc1["effective_acs"]["per_sample"][0] > 0
    assert p["inputs"]["input"]["graded"]


# ------------------------------------------------------------------ cost models

def test_loihi2_energy_follows_the_documented_formula():
    x, _ = data.test_set("digits_mlp")
    c = compiled("digits_mlp", "loihi2", neurons_per_core=20)  # 7 + 1 cores: 2 tiles, hops > 0
    p = profile(c, x[:3])
    program = c.program
    traces, act, batch, steps = raw_run(program, x[:3])
    k = loihi2_target.TARGET.costs
    cores = p["cores"]
    core_of = {}
    for r in cores:
        size = max(e["stop"] for e in cores if e["population"] == r["population"])
        core_of.setdefault(r["population"], np.full(size, -1))[slice_indices(r)] = r["core"]
    synops = np.zeros(batch)
    messages = np.zeros(batch)
    hops = np.zeros(batch)
    for conn in program.connections:
        m = explicit_matrix(conn)
        sent = (act[conn.source] != 0).sum(axis=1)  # (batch, n_in)
        synops += (sent * m.sum(axis=0)).sum(axis=1)
        for r in cores:
            if r["population"] != conn.target:
                continue
            reach = m[slice_indices(r)].sum(axis=0) > 0
            messages += sent[:, reach].sum(axis=1)
            if conn.source in core_of:
                src = core_of[conn.source][reach] // k["cores_per_tile"]
                dst = r["core"] // k["cores_per_tile"]
                h = np.abs(src % k["mesh_width_tiles"] - dst % k["mesh_width_tiles"]) + \
                    np.abs(src // k["mesh_width_tiles"] - dst // k["mesh_width_tiles"])
                hops += sent[:, reach] @ h
    active = np.zeros(batch)
    for pop in program.populations:
        u = traces[f"u.{pop.name}"].reshape(batch, steps, -1)
        v = traces[f"v.{pop.name}"].reshape(batch, steps, -1)
        active += ((u != 0) | (v != 0) | (act[pop.name] != 0)).sum(axis=(1, 2))
    idle = sum(q.size for q in program.populations) * steps - active
    expected = (synops * 23.6 + active * 81.0 + idle * 52.0 + messages * 1.7 + hops * 3.5) * 1e-12
    cost = p["cost"]
    assert cost["calibrated"] is False and "UNCALIBRATED" in cost["label"]
    assert hops.sum() > 0
    assert cost["counts_per_sample"]["synaptic_ops"] == synops.astype(int).tolist()
    assert cost["counts_per_sample"]["tile_hops"] == hops.astype(int).tolist()
    assert cost["energy_j"]["per_sample"] == pytest.approx(expected.tolist(), rel=1e-12)
    tiles = len({r["core"] // 4 for r in cores})
    barrier = 113 + (465 - 113) * (tiles - 1) / 31
    assert cost["latency_s"]["per_inference"] == pytest.approx(steps * barrier * 1e-9)
    assert any("UNCALIBRATED" in a for a in cost["assumptions"])


def test_spinnaker_energy_and_real_time_follow_the_documented_formula():
    x, _ = data.test_set("digits_mlp")
    c = compiled("digits_mlp", "spinnaker", neurons_per_core=64)
    p = profile(c, x[:3])
    program = c.program
    _, act, batch, steps = raw_run(program, x[:3])
    k = spinnaker_target.TARGET.costs
    dt = c.net.semantics.dt
    has_synapses = {}
    for conn in program.connections:
        reach = stored_matrix(conn).sum(axis=0) > 0
        has_synapses[conn.source] = has_synapses.get(conn.source, False) | reach
    packets = sum((np.clip(act[s], 0, None).sum(axis=1)[:, r]).sum(axis=1) for s, r in has_synapses.items())
    rt = p["realtime"]
    peaks = []
    for r in p["cores"]:
        if r["input"]:
            continue
        ev = 0
        for conn in program.connections:
            if conn.target == r["population"]:
                ev = ev + (np.clip(act[conn.source], 0, None) * stored_matrix(conn)[slice_indices(r)].sum(axis=0)).sum(axis=2)
        assert r["synaptic_events"]["per_sample"] == ev.sum(axis=1).tolist()
        peaks.append(ev.max())
    tsf = max(1, math.ceil(max(peaks) / (dt * 1e3 * 5000)))
    assert rt["min_time_scale_factor"]["conservative"] == tsf
    assert rt["peak_events_per_ms"] == pytest.approx(max(peaks) / (dt * 1e3))
    wall = steps * dt * tsf
    chips = len({r["chip"] for r in p["cores"]})
    cost = p["cost"]
    assert cost["wall_time_s"] == pytest.approx(wall)
    assert cost["counts_per_sample"]["multicast_packets"] == packets.tolist()
    expected = chips * 0.35 * wall + len(p["cores"]) * 0.034 * wall + packets * 1e-9
    assert cost["energy_j"]["per_sample"] == pytest.approx(expected.tolist(), rel=1e-12)
    board = 26.84 * wall + len(p["cores"]) * 0.034 * wall + packets * 1e-9
    assert cost["energy_whole_board_j"]["per_sample"] == pytest.approx(board.tolist(), rel=1e-12)
    assert cost["energy_boxed_board_j"]["per_sample"] == pytest.approx((board + 5.04 * wall).tolist(), rel=1e-12)
    assert k["packet_nj"] == pytest.approx(k["packet_bits"] * k["router_bit_pj"] * 1e-3)


def test_spinnaker_time_scale_factor_when_over_budget():
    """A dense burst: every input spikes every step into 256 neurons -> over 5,000 events/ms."""
    c = compile_model(_wide_graph(), Options(target="spinnaker", dt=1e-3))
    x = np.ones((1, 5, 40), dtype=np.float32)
    p = profile(c, x)
    rt = p["realtime"]
    peak = rt["peak_events_per_ms"]
    assert peak > 5000
    assert rt["min_time_scale_factor"]["conservative"] == math.ceil(peak / 5000)
    assert rt["min_time_scale_factor"]["optimistic"] == math.ceil(peak / 10000)
    n = rt["max_neurons_per_core_real_time"]["conservative"]
    assert n is not None and n < 256 and n * 40 <= 5000 < (n + 1) * 40  # 40 events per neuron per step
    assert p["cost"]["time_scale_factor"] == rt["min_time_scale_factor"]["conservative"]
    forced = profile(c, x, time_scale_factor=7)
    assert forced["cost"]["wall_time_s"] == pytest.approx(forced["steps"] * 1e-3 * 7)


def _wide_graph() -> nir.NIRGraph:
    n_in, n = 40, 256
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Linear(weight=np.full((n, n_in), 0.01, dtype=np.float32)),
        "lif": nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 1.0),
                       v_reset=np.zeros(n)),
        "output": nir.Output(output_type=np.array([n])),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


def test_footprint_and_utilisation_per_core():
    c = compiled("digits_mlp", "loihi2", neurons_per_core=48)
    x, _ = data.test_set("digits_mlp")
    p = profile(c, x[:1])
    for r in p["cores"]:
        usage = next(m.usage for m in c.mapping.cores if m.core == r["core"])
        assert r["utilisation"]["memory_bytes"] == pytest.approx(usage["memory_bytes"] / (192 * 1024))
        assert r["utilisation"]["neurons"] == pytest.approx(r["neurons"] / 8192)
        fb = r["footprint_bits"]
        assert fb["weights"] == 8 * usage["synapses"]  # dense: the mapper's synapses are the non-zero weights
        assert fb["weights"] + fb["state"] + fb["routing"] == 8 * usage["memory_bytes"]
    assert sum(p["total"]["footprint_bits"].values()) == sum(sum(r["footprint_bits"].values()) for r in p["cores"])


# ------------------------------------------------------------------ ingestion of measured profiles

def _provenance_db(tmp_path: Path) -> Path:
    db = tmp_path / "data1.sqlite3"
    con = sqlite3.connect(db)
    con.executescript((DATA / "spinnaker" / "provenance.sql").read_text())
    con.close()
    return db


def test_ingest_spinnaker_report_and_provenance(tmp_path):
    x, _ = data.test_set("digits_mlp")
    p = profile(compiled("digits_mlp", "spinnaker"), x[:8])
    out = ingest(p, spinnaker_report=DATA / "spinnaker" / "energy_report_1.rpt",
                 spinnaker_provenance=_provenance_db(tmp_path))
    assert p["comparison"] == [] and out is not p
    report = out["measured"]["spinnaker"]["energy_report"]
    assert report["exec_time_s"] == 0.184 and report["active_cores"] == 3 and report["boards"] == 1
    rows = {(r["quantity"], r["scope"].split(" (")[0]): r for r in out["comparison"]}
    e = rows[("energy per inference (active chips and cores)", "total")]
    assert e["measured"] == pytest.approx(0.083171602 / 8)
    assert e["predicted"] == pytest.approx(p["cost"]["energy_j"]["per_inference"])
    assert e["ratio"] == pytest.approx(e["measured"] / e["predicted"])
    t = rows[("execution time per inference", "total")]
    assert t["measured"] == pytest.approx(0.023) and t["ratio"] == pytest.approx(1.0)
    lif_core = next(r for r in p["cores"] if r["population"] == "lif1")
    ev = rows[("synaptic events per inference", f"core {lif_core['core']}")]
    assert ev["measured"] == pytest.approx(401217 / 8)
    assert ev["predicted"] == pytest.approx(lif_core["synaptic_events"]["mean_per_sample"])
    assert 0.9 < ev["ratio"] < 1.1
    pk = rows[("multicast packets per inference (router traversals)", "total")]
    assert pk["measured"] == pytest.approx(3602 / 8)
    overrun = rows[("timer tick overruns", f"core {lif_core['core']}")]
    assert overrun["measured"] == 0 and overrun["predicted"] == 0
    json.dumps(out)


def test_ingest_lava_profilers():
    x, _ = data.test_set("digits_mlp")
    p = profile(compiled("digits_mlp", "loihi2"), x[:8])
    out = ingest(p, lava=DATA / "lava" / "loihi2_profilers.json")
    raw = json.loads((DATA / "lava" / "loihi2_profilers.json").read_text())
    rows = {(r["quantity"], r["scope"].split(" (")[0]): r for r in out["comparison"]}
    avg = raw["Loihi2ExecutionTime"]["avg_time_per_step"]
    step = rows[("time per step", "total")]
    assert step["measured"] == pytest.approx(avg * 1e-6)
    assert step["ratio"] > 1  # the barrier-sync bound is a lower bound
    pw = raw["Loihi2Power"]
    dyn = rows[("dynamic energy per inference", "total")]
    assert dyn["measured"] == pytest.approx((np.mean(pw["total_power"]) - pw["static_total_power"]) * avg * 1e-6 * 22)
    inferences = raw["num_steps"] / p["steps"]
    syn = rows[("synaptic ops per inference", "total")]
    assert syn["measured"] == pytest.approx(sum(raw["Loihi2Activity"]["syn_ops"]) / inferences)
    assert syn["ratio"] == pytest.approx(1.0)
    core0 = rows[("synaptic ops per inference", "core 0")]
    assert core0["measured"] == pytest.approx(raw["Loihi2Activity"]["syn_ops"][0] / inferences)
    with pytest.raises(IngestError):
        ingest(p, spinnaker_report=DATA / "spinnaker" / "energy_report_1.rpt")


def test_ingest_rejects_other_formats(tmp_path):
    bad = tmp_path / "x.rpt"
    bad.write_text("hello\n")
    with pytest.raises(IngestError):
        read_spinnaker_energy_report(bad)


# ------------------------------------------------------------------ CLI

def _cli(argv):
    from neurodeploy.cli import profile as cli_profile

    parser = argparse.ArgumentParser()
    cli_profile.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return cli_profile.COMMANDS[args.command](args)


def test_cli_profile_json_html_and_measurements(tmp_path, capsys):
    c = compiled("digits_mlp", "spinnaker")
    art = tmp_path / "m.ndp"
    artifact.write(c.to_artifact(), art)
    x, _ = data.test_set("digits_mlp")
    np.savez(tmp_path / "in.npz", input=x[:8])
    code = _cli(["profile", str(art), "--input", str(tmp_path / "in.npz"), "--json", str(tmp_path / "p.json"),
                 "--html", str(tmp_path / "r.html"), "--source", str(paths()["digits_mlp"]),
                 "--spinnaker-report", str(DATA / "spinnaker" / "energy_report_1.rpt"),
                 "--spinnaker-provenance", str(_provenance_db(tmp_path))])
    assert code == 0
    printed = capsys.readouterr().out
    assert "assumption:" in printed and "time_scale_factor" in printed and "measured" in printed
    p = json.loads((tmp_path / "p.json").read_text())
    assert p["schema"] == "neurodeploy-profile" and p["comparison"]
    direct = profile(art, x[:8])
    assert p["total"]["synaptic_operations"] == direct["total"]["synaptic_operations"]
    html_text = (tmp_path / "r.html").read_text()
    assert "Measured on hardware vs predicted" in html_text and "data:image/png;base64," in html_text


# ------------------------------------------------------------------ the HTML report in a headless browser

CHROMIUM = shutil.which("chromium")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: run scripts/setup_browser.sh "
                                             "(apt-get install chromium) to render the HTML report")
def test_report_renders_in_headless_chromium(tmp_path):
    from neurodeploy.analysis.report import write_report

    c = compiled("digits_mlp", "loihi2")
    art = tmp_path / "digits.loihi2.ndp"
    artifact.write(c.to_artifact(), art)
    x, _ = data.test_set("digits_mlp")
    report = write_report(art, x[:4], tmp_path / "report.html")  # the float model found via provenance (zoo)
    url = report.resolve().as_uri()
    profile_dir = tmp_path / "chromium"
    shot = tmp_path / "report.png"
    run = subprocess.run([CHROMIUM, *_FLAGS, f"--user-data-dir={profile_dir}", f"--screenshot={shot}",
                          "--window-size=1200,2000", url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([CHROMIUM, *_FLAGS, f"--user-data-dir={profile_dir}", "--enable-logging=stderr", "--v=0",
                          "--virtual-time-budget=10000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html_dom = dom.stdout
    for section in ("summary", "health", "quantization", "utilisation", "rasters", "profile"):
        assert f'id="{section}"' in html_dom
    assert html_dom.count("<table") >= 10 and "Effective_ACs" in html_dom
    n_images = len(re.findall(r"<img ", html_dom))
    assert n_images >= 4  # quantization, heat map, 1 raster (lif1), ...
    decoded = re.search(r'data-images-decoded="(\d+)/(\d+)"', html_dom)
    assert decoded, "the report's load handler did not run"
    assert decoded.group(1) == decoded.group(2) == str(n_images), "broken images"
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert any("images decoded" in line for line in console), dom.stderr[-2000:]
    errors = [line for line in console if "images decoded" not in line]
    assert not errors, errors
    assert re.search(r"lif1: sample 0 (first divergence at step \d+|identical to the float reference)", html_dom)
