"""Local-only pool + dense on SpiNNaker (sPyNNaker 7.4.1 PoolDenseConnector / PoolDense()).

The decision (neurodeploy/targets/spinnaker_local_only.py) on crafted programs, one per reason a
pool + dense connection stays FromList; the pool factor against matrices built here from a pool
and a dense map; sPyNNaker's own encoder giving the planned words back; a tiny network (1x8x8 ->
conv k3 p1 -> IF_curr_exp -> sum pool 2 -> dense 4 -> IF_curr_exp) mapped on a virtual board with
the encoded weights read back and compared with the artifact; the exported PyNN script; `check`.
Tests that need sPyNNaker skip without it.
"""
from __future__ import annotations

import importlib.util
import warnings

import nir
import numpy as np
import pytest

from neurodeploy.backends.spinnaker import network
from neurodeploy.format.program import Program, QConnection, QPopulation, from_manifest
from neurodeploy.targets import spinnaker_local_only as lo

from helpers.spinnaker_script import run_exported

HAVE_SPYNNAKER = importlib.util.find_spec("spynnaker") is not None and importlib.util.find_spec("pyNN") is not None
needs_spynnaker = pytest.mark.skipif(not HAVE_SPYNNAKER, reason="sPyNNaker 7.4.1 is not installed")


def _pop(name: str, shape: tuple[int, ...], model: str = "IF_curr_exp") -> QPopulation:
    keys = list(network.PARAMS.get(model, {})) + list(network.INITIAL)
    return QPopulation(name, model, "CubaLIF", shape, True, np.ones(shape),
                       {k: np.full(int(np.prod(shape)), 1 << 15, np.int64) for k in keys}, 1)


def _pool_then_dense(dense: np.ndarray, grid: tuple[int, int, int], k: int) -> np.ndarray:
    """(n_out, C*H*W) signed words of a k x k sum pool (stride k) followed by ``dense`` (n_out, C*H/k*W/k),
    built as the product of two explicit matrices."""
    c, h, w = grid
    pool = np.zeros((c * (h // k) * (w // k), c * h * w), dtype=np.int64)
    for ch in range(c):
        for y in range(h):
            for x in range(w):
                pool[(ch * (h // k) + y // k) * (w // k) + x // k, (ch * h + y) * w + x] = 1
    return dense @ pool


def _sparse(name: str, source: str, target: str, signed: np.ndarray, delay: int = 1,
            arrays: dict | None = None) -> QConnection:
    rows, cols = np.nonzero(signed)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=signed.shape[0]))]
    base = {"weight": np.abs(signed[rows, cols]).astype(np.int64), "synapse_type": (signed[rows, cols] < 0).astype(np.int64),
            "indices": cols.astype(np.int64), "indptr": indptr.astype(np.int64)}
    return QConnection(name, source, target, "sparse", signed.shape[1], signed.shape[0], source == target,
                       {**base, **(arrays or {})}, {"delay": delay, "source_kind": "dense"})


def _program(pops, conns, inputs=None, dt_ms: float = 1.0) -> Program:
    return Program("spinnaker", inputs or {"input": (2, 8, 8)}, pops, conns, {},
                   {"time_step_ms": dt_ms, "ring_buffer_shift": {p.name: [13, 13] for p in pops}})


def _dense(n_out: int, n_in: int, seed: int = 0, high: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-high, high, (n_out, n_in))


def test_pool_factor_finds_the_pool_of_a_constructed_product():
    grid = (2, 8, 8)
    for k in (1, 2, 4, 8):
        dense = _dense(3, 2 * (8 // k) ** 2, seed=k)
        dense[dense == 0] = 1  # keep every block non-zero, so a larger pool cannot also fit
        m = _pool_then_dense(dense, grid, k)
        assert lo.pool_factor(m, grid) == k
        got = lo.pooled_dense(m, grid, k)  # (C, H/k, W/k, n_out)
        assert np.array_equal(got, np.moveaxis(dense.reshape(3, 2, 8 // k, 8 // k), 0, -1))
    m = _pool_then_dense(_dense(3, 32, seed=9) | 1, grid, 2)
    m[0, 0] += 1  # one word off inside a 2x2 block: only the trivial pool fits
    assert lo.pool_factor(m, grid) == 1


@pytest.mark.parametrize("case, reason", [
    ({}, None),
    ({"model": "IF_curr_delta"}, "IF_curr_delta"),
    ({"delay": 17}, "a delay of 17 steps"),
    ({"high": 40000}, "weight word of"),
    ({"per_synapse": True}, "per-synapse delays"),
    ({"n_out": 256, "unpooled": True}, "65536 bytes of int16 weights per core (pool 1x1"),
    ({"source_shape": (128,)}, "needs a (C, H, W) source"),
])
def test_decision_on_one_pool_dense(case, reason):
    n_out = case.get("n_out", 4)
    m = _pool_then_dense(_dense(n_out, 2 * 16, high=case.get("high", 3000)), (2, 8, 8), 2)
    if case.get("unpooled"):
        m = _dense(n_out, 128) | 1  # no k x k block repeats a word: only the trivial pool fits
    extra = {"delay": np.full(np.count_nonzero(m), 2, np.int64)} if case.get("per_synapse") else None
    conn = _sparse("fc", "input", "out", m, delay=case.get("delay", 1), arrays=extra)
    program = _program([_pop("out", (n_out,), case.get("model", "IF_curr_exp"))], [conn],
                       {"input": case.get("source_shape", (2, 8, 8))})
    got = lo.decide(program)
    if "source_shape" in case:
        assert "fc" not in got  # not a candidate: a plain FromList connection, nothing recorded
        return
    assert got["fc"]["connector"] == "PoolDenseConnector" and got["fc"]["pool"] == (1 if case.get("unpooled") else 2)
    if reason is None:
        assert got["fc"]["reason"] == ""
    else:
        assert reason in got["fc"]["reason"], got["fc"]["reason"]
    assert got["fc"]["local_only"] == (reason is None)


def test_mixed_targets_recurrence_and_gridded_targets():
    m = _pool_then_dense(_dense(4, 32), (2, 8, 8), 2)
    fc = _sparse("fc", "input", "out", m)
    plain = _sparse("plain", "other", "out", _dense(4, 5))  # FromList from a 1-D input into the same target
    got = lo.decide(_program([_pop("out", (4,))], [fc, plain], {"input": (2, 8, 8), "other": (5,)}))
    assert not got["fc"]["local_only"] and "also receives 'plain' (FromList)" in got["fc"]["reason"]
    rec = _sparse("rec", "grid", "grid", _dense(128, 128))
    got = lo.decide(_program([_pop("grid", (2, 8, 8))], [rec]))
    assert "recurrent" in got["rec"]["reason"]
    # a pool + dense into a population that a local-only conv splits into channel grids
    from tests.backends.test_spinnaker_local_only import _conv

    conv = _conv("conv", "b", "c", (2, 4, 4), c_out=1)
    into_b = _sparse("into_b", "input", "b", _pool_then_dense(_dense(32, 32), (2, 8, 8), 2))
    got = lo.decide(_program([_pop("b", (2, 4, 4)), _pop("c", (1, 4, 4))], [into_b, conv]))
    assert got["conv"]["local_only"] and "split into channel grids" in got["into_b"]["reason"]


def test_record_and_old_artifacts():
    m = _pool_then_dense(_dense(4, 32), (2, 8, 8), 2)
    program = _program([_pop("out", (4,))], [_sparse("fc", "input", "out", m)])
    assert lo.recorded(program) == {}  # before the decision: nothing recorded, FromList
    lo.record(program)
    assert lo.recorded(program) == lo.decide(program) == {
        "fc": {"local_only": True, "reason": "", "connector": "PoolDenseConnector", "pool": 2}}
    plan = network.plan(program)
    assert [(pd.channel, pd.pool, pd.words.shape) for pd in plan.pool_dense] == [(0, 2, (4, 4, 4)), (1, 2, (4, 4, 4))]
    assert plan.projections == [] and plan.sources[0].grid == (2, 8, 8)
    dense = m.reshape(4, 2, 8, 8)  # word of post j from pooled (px, py) of channel c: any pre in the block
    for pd in plan.pool_dense:
        assert np.array_equal(pd.words, np.transpose(dense[:, pd.channel, ::2, ::2], (2, 1, 0)))


@needs_spynnaker
@pytest.mark.parametrize("shift", [0, 7, 13])
def test_spynnakers_encoder_gives_the_words_back(shift):
    """PoolDenseConnector divides by the pool area, multiplies by the receptor's weight scale and
    rounds: the planned nA weights come back as the artifact's signed words."""
    from types import SimpleNamespace

    from spynnaker.pyNN.models.neural_projections.connectors.pool_dense_connector import PoolDenseConnector
    from pacman.model.graphs.common import Slice

    m = _pool_then_dense(_dense(6, 2 * 8, seed=shift, high=32767), (2, 4, 8), 2)  # H 4, W 8: not square
    m[0, 0:2], m[0, 8:10] = 32767, 32767  # the largest word, and the most negative one PoolDense encodes
    m[1, 0:2], m[1, 8:10] = -32767, -32767
    program = _program([_pop("out", (6,))], [_sparse("fc", "input", "out", m)], {"input": (2, 4, 8)})
    program.attrs["ring_buffer_shift"] = {"out": [shift, shift + 1]}
    lo.record(program)
    plan = network.plan(program)
    assert len(plan.pool_dense) == 2
    for pd in plan.pool_dense:
        # the layout 7.4.1 takes: [pooled x][pooled y][post] = the word of pre (c, 2 * py, 2 * px)
        want = np.array([[[m[j, pd.channel * 32 + 2 * py * 8 + 2 * px] for j in range(6)] for py in range(2)]
                         for px in range(4)])
        assert np.array_equal(pd.words, want)
        conn = PoolDenseConnector(pd.weights.reshape(-1), pool_shape=(2, 2), pool_stride=(2, 2))
        vertex = lambda shape: SimpleNamespace(atoms_shape=shape, get_synapse_id_by_target=  # noqa: E731
                                               lambda t: {"excitatory": 0, "inhibitory": 1}[t])
        edge = SimpleNamespace(pre_vertex=vertex((8, 4)), post_vertex=vertex((6,)))  # Grid2D: (width, height)
        scales = np.array([network.weight_scale(shift), network.weight_scale(shift + 1)])
        out = conn.get_local_only_data(edge, 1, 0, Slice(0, 5), scales)
        words = np.asarray(out[5:], dtype=np.uint32).view(np.int16)[:4 * 2 * 6].astype(np.int64)
        assert np.array_equal(words.reshape(4, 2, 6), want)


# ------------------------------------------------------------------ a network on a virtual board

def pool_dense_graph() -> nir.NIRGraph:
    """input 1x8x8 -> conv1 (2 channels, k3, p1) -> lif1 (CubaLIF) -> sum pool 2 -> flatten -> fc1 (4) -> lif2."""
    from tests.backends.test_spinnaker_local_only import _cuba

    rng = np.random.default_rng(3)
    nodes = {"input": nir.Input(input_type=np.array((1, 8, 8))),
             "conv1": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.2, 1.0, (2, 1, 3, 3)), stride=(1, 1),
                                 padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(2)),
             "lif1": _cuba((2, 8, 8)),
             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "flat": nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0, end_dim=2),
             "fc1": nir.Affine(weight=rng.normal(0.0, 1.0, (4, 32)), bias=np.zeros(4)),
             "lif2": _cuba((4,)), "output": nir.Output(output_type=np.array((4,)))}
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool"), ("pool", "flat"), ("flat", "fc1"),
             ("fc1", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": 1e-3}, type_check=False)


def pool_dense_artifact():
    from neurodeploy.compiler.compile import Options, compile_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_model(pool_dense_graph(), Options(target="spinnaker", allow_degraded=True)).to_artifact()


def test_the_compiler_records_pool_dense():
    program = from_manifest(pool_dense_artifact().manifest["program"], pool_dense_artifact().arrays)
    got = lo.recorded(program)
    fc = next(c for c in program.connections if c.kind != "conv")
    assert got[fc.name] == {"local_only": True, "reason": "", "connector": "PoolDenseConnector", "pool": 2}
    assert got["conv1"]["local_only"]
    plan = network.plan(program)
    assert plan.population("lif1").grid == (2, 8, 8) and [pd.channel for pd in plan.pool_dense] == [0, 1]


@needs_spynnaker
def test_virtual_board_reads_back_the_pool_dense_weights(tmp_path):
    """sPyNNaker maps the network; the weights its PoolDenseConnector encoded, expanded as the core
    applies them, equal the artifact's non-zero synapses (pre, post, word, receptor, delay)."""
    from neurodeploy.backends.spinnaker import map_many

    art = pool_dense_artifact()
    program = from_manifest(art.manifest["program"], art.arrays)
    readback = tmp_path / "pool_dense.npz"
    (report,) = map_many([(art, None)], readback=[readback], steps=4)
    assert report["matches"] == {k: True for k in report["matches"]}, report["matches"]
    fc = next(c for c in program.connections if c.kind != "conv")
    assert report["local_only"][fc.name]["local_only"] and report["local_only"][fc.name]["projections"] == 2
    assert report["local_only"][fc.name]["kernels_equal_plan"]
    with np.load(readback) as rb:
        got = {k: rb[k] for k in rb.files}
    post = np.repeat(np.arange(fc.n_out), np.diff(fc.arrays["indptr"]))
    for kind, tag in ((0, "exc"), (1, "inh")):
        sel = (np.asarray(fc.arrays["synapse_type"]) == kind) & (np.asarray(fc.arrays["weight"]) != 0)
        want = sorted(zip(post[sel].tolist(), np.asarray(fc.arrays["indices"])[sel].tolist(),
                          np.asarray(fc.arrays["weight"])[sel].tolist()))
        key = f"{fc.name}.{tag}"
        have = sorted(zip(got[f"{key}.post"].tolist(), got[f"{key}.pre"].tolist(), got[f"{key}.word"].tolist()))
        assert have == want and len(want) > 0, key
        assert np.all(got[f"{key}.delay_steps"] == fc.attrs["delay"])
        assert report["synapses"][f"{fc.name}:{tag}"]["local_only"]


@needs_spynnaker
def test_export_writes_pool_dense_and_the_script_runs(tmp_path):
    """`export --format pynn` writes one PoolDenseConnector per source channel with the planned weights,
    and the script runs on a virtual board."""
    from tests.backends.test_spinnaker_local_only import _export

    art = pool_dense_artifact()
    script = _export(art, tmp_path / "net.py")
    text = script.read_text()
    assert text.count("sim.PoolDenseConnector(") == 1 and "pool_shape=(2, 2), pool_stride=(2, 2)" in text
    assert "sim.PoolDense(delay=1 * TIMESTEP_MS)" in text and "enumerate([0, 1])" in text
    program = from_manifest(art.manifest["program"], art.arrays)
    fc = next(c for c in program.connections if c.kind != "conv")
    with np.load(script.with_suffix(".npz")) as data:
        weights = data[f"{fc.name}.pool_dense"]
    # independent of the plan: the artifact's words of pre (c, 2*py, 2*px), signed, over the weight scale, x4
    post = np.repeat(np.arange(fc.n_out), np.diff(fc.arrays["indptr"]))
    dense = np.zeros((fc.n_out, fc.n_in))
    shift = program.attrs["ring_buffer_shift"][fc.target]
    signed = np.where(fc.arrays["synapse_type"] == 1, -fc.arrays["weight"] / 2.0 ** (15 - shift[1]),
                      fc.arrays["weight"] / 2.0 ** (15 - shift[0]))
    dense[post, fc.arrays["indices"]] = signed
    want = np.transpose(dense.reshape(fc.n_out, 2, 8, 8)[:, :, ::2, ::2], (1, 3, 2, 0)) * 4
    assert np.array_equal(weights, want)
    x = np.zeros((1, 4, 1, 8, 8), dtype=np.uint8)
    x[0, 0, 0, 3, 3] = 1
    out = run_exported(script, x, tmp_path)
    assert out["spikes.lif1"].shape == (1, 4, 2, 8, 8) and out["v.lif2"].shape == (1, 4, 4)


def test_check_and_inspect_name_the_pool_dense_connection(tmp_path, capsys):
    import json

    from neurodeploy.cli import main as cli
    from neurodeploy.format import artifact as artifact_format

    model = tmp_path / "pool.nir"
    nir.write(str(model), pool_dense_graph())
    cli.main(["check", str(model), "--target", "spinnaker", "--json", str(tmp_path / "c.json")])
    out = capsys.readouterr().out
    assert "pool + dense pool/flat/fc1 (lif1 -> lif2): local-only (PoolDenseConnector, pool 2x2)" in out
    report = json.loads((tmp_path / "c.json").read_text())
    assert [(c["connection"], c["kind"], c["pool"]) for c in report["pool_dense_synapses"]] == [
        ("pool/flat/fc1", "local_only", 2)]
    ndp = tmp_path / "pool.ndp"
    artifact_format.write(pool_dense_artifact(), ndp)
    cli.main(["inspect", str(ndp)])
    assert "delay=1, local_only=True, pool_dense=2" in capsys.readouterr().out
    # the same network with LIF cells (IF_curr_delta): FromList, with the reason
    graph = pool_dense_graph()
    from tests.backends.test_spinnaker_local_only import _lif

    graph.nodes["lif2"] = _lif((4,))
    nir.write(str(model), graph)
    cli.main(["check", str(model), "--target", "spinnaker"])
    assert "pool + dense pool/flat/fc1 (lif1 -> lif2): FromList: target 'lif2' is IF_curr_delta" in capsys.readouterr().out


def test_a_matrix_too_large_to_check_stays_from_list(monkeypatch):
    m = _pool_then_dense(_dense(4, 32), (2, 8, 8), 2)
    program = _program([_pop("out", (4,))], [_sparse("fc", "input", "out", m)])
    monkeypatch.setattr(lo, "MAX_FACTOR_ENTRIES", 4 * 128 - 1)
    got = lo.decide(program)["fc"]
    assert not got["local_only"] and "4 x 128 words: too large to check" in got["reason"] and got["pool"] == 0
    monkeypatch.setattr(lo, "MAX_FACTOR_ENTRIES", 4 * 128)
    assert lo.decide(program)["fc"]["local_only"]


def test_expand_pool_dense_applies_the_x_major_layout():
    """H 2, W 4, pool 2: the pooled x picks the word; pre in raster order (row * W + col)."""
    from neurodeploy.backends.spinnaker.local_only import expand_pool_dense

    table = np.array([[[5, 0]], [[-3, 7]]])  # [pooled x][pooled y][post], 2 posts from post 10 on
    pre, post, word = expand_pool_dense(table.reshape(-1), 2, (2, 4), 10, 2)
    got = sorted(zip(pre.tolist(), post.tolist(), word.tolist()))
    want = sorted([(p, 10, 5) for p in (0, 1, 4, 5)] + [(p, 10, -3) for p in (2, 3, 6, 7)]
                  + [(p, 11, 7) for p in (2, 3, 6, 7)])  # post 11 has a zero word at pooled x 0: skipped
    assert got == want
