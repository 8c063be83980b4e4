"""Local-only convolution on SpiNNaker (sPyNNaker 7.4.1 ConvolutionConnector / Convolution()).

The decision (neurodeploy/targets/spinnaker_local_only.py) on crafted programs, one per reason a
conv stays FromList; the rotated kernel words against an independent computation and against
sPyNNaker's own int16 encoder; a tiny network (1x8x8 -> 2 channels k3 p1 local-only, then a
strided FromList conv) and an all-FromList conv network mapped on a virtual board with the
synapses sPyNNaker loaded read back and compared with the artifact; the exported PyNN script;
`check` and `inspect`. Tests that need sPyNNaker skip without it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import nir
import numpy as np
import pytest
import scipy.signal

from neurodeploy.backends.spinnaker import network
from neurodeploy.format.program import Program, QConnection, QPopulation, from_manifest
from neurodeploy.targets import spinnaker_local_only as lo

from helpers.conv_programs import conv_matrix
from helpers.spinnaker_script import run_exported

HAVE_SPYNNAKER = importlib.util.find_spec("spynnaker") is not None and importlib.util.find_spec("pyNN") is not None
needs_spynnaker = pytest.mark.skipif(not HAVE_SPYNNAKER, reason="sPyNNaker 7.4.1 is not installed")


# ------------------------------------------------------------------ crafted programs

def _pop(name: str, shape: tuple[int, ...], model: str = "IF_curr_exp") -> QPopulation:
    return QPopulation(name, model, "CubaLIF", shape, True, np.ones(shape), {}, 1)


def _conv(name: str, source: str, target: str, in_shape, k=(3, 3), stride=1, padding=1, dilation=1, c_out=2,
          delay: int = 1, words: np.ndarray | None = None, groups: int = 1) -> QConnection:
    c_in = in_shape[0]
    size = lambda n, kk: (n + 2 * padding - dilation * (kk - 1) - 1) // stride + 1  # noqa: E731
    out_shape = (c_out,) + tuple(size(n, kk) for n, kk in zip(in_shape[1:], k))
    rng = np.random.default_rng(len(name))
    w = rng.integers(0, 3000, (c_out, c_in // groups) + tuple(k)) if words is None else words
    attrs = {"in_shape": list(in_shape), "out_shape": list(out_shape), "stride": [stride] * (len(in_shape) - 1),
             "padding": [padding] * (len(in_shape) - 1), "dilation": [dilation] * (len(in_shape) - 1),
             "groups": groups, "delay": delay, "synapses": int(np.count_nonzero(w)), "ring_buffer_shift": [13, 13]}
    arrays = {"weight": np.asarray(w, dtype=np.int64),
              "synapse_type": (rng.random(np.shape(w)) < 0.3).astype(np.int64)}
    return QConnection(name, source, target, "conv", int(np.prod(in_shape)), int(np.prod(out_shape)),
                       source == target, arrays, attrs)


def _program(pops, conns, inputs=None, dt_ms: float = 1.0) -> Program:
    return Program("spinnaker", inputs or {"input": (1, 8, 8)}, pops, conns, {},
                   {"time_step_ms": dt_ms, "ring_buffer_shift": {p.name: [13, 13] for p in pops}})


def _decide(program: Program) -> dict[str, str | None]:
    return {name: (None if c["local_only"] else c["reason"]) for name, c in lo.decide(program).items()}


@pytest.mark.parametrize("kwargs, reason", [
    ({}, None),
    ({"padding": 0}, None),
    ({"k": (5, 5), "padding": 2}, None),
    ({"k": (1, 1), "padding": 0}, None),
    ({"stride": 2}, "stride (2, 2)"),
    ({"k": (2, 2), "padding": 1}, "kernel 2x2"),
    ({"k": (3, 1), "padding": 0}, "kernel 3x1"),
    ({"padding": 2}, "padding (2, 2)"),
    ({"dilation": 2, "padding": 2}, "dilation (2, 2)"),
    ({"delay": 17}, "a delay of 17 steps"),
    ({"words": np.full((2, 1, 3, 3), 32768)}, "weight word of 32768"),
])
def test_decision_on_one_conv(kwargs, reason):
    program = _program([_pop("a", (2,) + (8, 8))], [])
    conn = _conv("c", "input", "a", (1, 8, 8), **kwargs)
    program.populations = [_pop("a", tuple(conn.attrs["out_shape"]))]
    program.connections = [conn]
    got = _decide(program)["c"]
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got, got


def test_32767_is_the_largest_word():
    conn = _conv("c", "input", "a", (1, 8, 8), words=np.full((2, 1, 3, 3), 32767))
    assert _decide(_program([_pop("a", (2, 8, 8))], [conn]))["c"] is None


def test_model_recurrence_and_delay_reasons():
    conn = _conv("c", "input", "a", (1, 8, 8))
    assert "IF_curr_delta" in _decide(_program([_pop("a", (2, 8, 8), "IF_curr_delta")], [conn]))["c"]
    rec = _conv("r", "a", "a", (2, 8, 8))
    assert "recurrent" in _decide(_program([_pop("a", (2, 8, 8))], [rec]))["r"]
    per_synapse = _conv("c", "input", "a", (1, 8, 8))
    per_synapse.arrays["delay"] = np.ones(per_synapse.arrays["weight"].shape, dtype=np.int64)
    assert "per-synapse delays" in _decide(_program([_pop("a", (2, 8, 8))], [per_synapse]))["c"]
    # 3 steps of 700 us: rint(2.1 * 1000/700) * 0.7 * (1000/700) = 2.9999999999999996 -> int() gives 2
    three = _conv("c", "input", "a", (1, 8, 8), delay=3)
    assert "truncates it to 2 steps" in _decide(_program([_pop("a", (2, 8, 8))], [three], dt_ms=0.7))["c"]
    assert _decide(_program([_pop("a", (2, 8, 8))], [three], dt_ms=1.0))["c"] is None
    one_d = _conv("c", "input", "a", (1, 8), k=(3,), c_out=2)
    assert "1-D conv" in _decide(_program([_pop("a", (2, 8))], [one_d], {"input": (1, 8)}))["c"]


def test_a_target_with_other_projections_takes_none_local_only():
    """A Convolution population accepts no other projection kind: one FromList input (a dense
    connection, or an ineligible conv) sends every conv into that target to FromList."""
    good = _conv("good", "input", "a", (1, 8, 8))
    dense = QConnection("dense", "input", "a", "sparse", 64, 128, False,
                        {"weight": np.ones(3, np.int64), "synapse_type": np.zeros(3, np.int64),
                         "indices": np.arange(3), "indptr": np.r_[0, np.full(128, 3)]}, {"delay": 1})
    got = _decide(_program([_pop("a", (2, 8, 8))], [good, dense]))
    assert "also receives 'dense'" in got["good"] and "no other projection kind" in got["good"]
    strided = _conv("strided", "input2", "a", (1, 16, 16), stride=2, padding=1)
    two = _program([_pop("a", (2, 8, 8))], [good, strided], {"input": (1, 8, 8), "input2": (1, 16, 16)})
    got = _decide(two)
    assert "stride" in got["strided"] and "also receives 'strided'" in got["good"]
    # two eligible convs into one target (a second input) both stay local-only
    other = _conv("other", "input2", "a", (3, 8, 8))
    got = _decide(_program([_pop("a", (2, 8, 8))], [good, other], {"input": (1, 8, 8), "input2": (3, 8, 8)}))
    assert got == {"good": None, "other": None}


def test_grid_conflict_and_old_artifacts():
    first = _conv("first", "input", "a", (1, 8, 8))
    second = _conv("second", "input", "b", (2, 4, 8), padding=1)  # the same input seen as another grid
    program = _program([_pop("a", (2, 8, 8)), _pop("b", (2, 4, 8))], [first, second], {"input": (1, 8, 8)})
    got = _decide(program)
    assert (got["first"] is None) != (got["second"] is None)
    assert "already split as a" in (got["first"] or got["second"])
    recorded = lo.recorded(program)  # nothing recorded yet: an artifact from before the decision
    assert recorded["first"] == {"local_only": False, "reason": lo.OLD_ARTIFACT}
    lo.record(program)
    assert lo.recorded(program) == lo.decide(program)
    assert program.connections[0].attrs["local_only"] in (True, False)


# ------------------------------------------------------------------ kernels

def test_rotated_words_are_a_true_convolution_of_the_artifacts_kernel():
    """The plan's kernels, applied as a true convolution (what 7.4.1 computes), give the artifact's
    cross-correlation with signed words (NIR's and torch's definition); checked with scipy."""
    rng = np.random.default_rng(3)
    conn = _conv("c", "input", "a", (2, 6, 7), k=(3, 3), padding=1, c_out=3)
    conn.arrays["weight"] = rng.integers(0, 32768, (3, 2, 3, 3))
    conn.arrays["synapse_type"] = rng.integers(0, 2, (3, 2, 3, 3))
    shifts = (11, 14)
    signed, kernel = network.rotated_words(conn, shifts)
    words, types = conn.arrays["weight"], conn.arrays["synapse_type"]
    x = rng.integers(0, 2, (2, 6, 7))
    for co in range(3):
        for ci in range(2):
            want_signed = np.where(types[co, ci] == 1, -words[co, ci], words[co, ci])
            scale = np.where(types[co, ci] == 1, 2.0 ** (15 - shifts[1]), 2.0 ** (15 - shifts[0]))
            for u in range(3):
                for v in range(3):
                    assert signed[co, ci, u, v] == want_signed[2 - u, 2 - v]
                    assert kernel[co, ci, u, v] == want_signed[2 - u, 2 - v] / scale[2 - u, 2 - v]
            true_conv = scipy.signal.convolve2d(x[ci], signed[co, ci], mode="same")
            cross = scipy.signal.correlate2d(x[ci], want_signed, mode="same")
            assert np.array_equal(true_conv, cross)


@needs_spynnaker
@pytest.mark.parametrize("shift", [0, 5, 13, 16])
def test_spynnakers_encoder_gives_the_words_back(shift):
    """ConvolutionConnector.get_encoded_kernel_weights (7.4.1's own code) on the plan's kernel in nA:
    the artifact's words for every magnitude up to 32767, and the int16 wrap that makes 32768 an
    exclusion reason."""
    from spynnaker.pyNN.models.neural_projections.connectors.convolution_connector import ConvolutionConnector

    edge = SimpleNamespace(post_vertex=SimpleNamespace(
        get_synapse_id_by_target=lambda target: {"excitatory": 0, "inhibitory": 1}[target]))
    scales = np.array([2.0 ** (15 - shift), 2.0 ** (15 - shift)])
    rng = np.random.default_rng(shift)
    words = np.concatenate([[0, 1, 2, 3, 32766, 32767], rng.integers(0, 32768, 3)])
    signed = words * np.where(np.arange(9) % 2, -1, 1)
    encoded = ConvolutionConnector(signed.reshape(3, 3) / scales[0]).get_encoded_kernel_weights(edge, scales)
    assert np.array_equal(encoded.astype(np.int64), signed)
    wrapped = ConvolutionConnector(np.full((3, 3), 32768 / scales[0])).get_encoded_kernel_weights(edge, scales)
    assert int(wrapped[0]) == -32768  # lands on the inhibitory receptor


# ------------------------------------------------------------------ networks on a virtual board

def _cuba(shape):
    return nir.CubaLIF(tau_syn=np.full(shape, 5e-3), tau_mem=np.full(shape, 0.02), r=np.ones(shape),
                       v_leak=np.zeros(shape), v_threshold=np.full(shape, 0.8), v_reset=np.zeros(shape),
                       w_in=np.ones(shape))


def _lif(shape):
    return nir.LIF(tau=np.full(shape, 0.02), r=np.ones(shape), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, 0.8), v_reset=np.zeros(shape))


def tiny_graph(local: bool = True) -> nir.NIRGraph:
    """input 1x8x8 -> conv1 (2 channels, k3, p1) -> lif1 -> conv2 (k3, stride 2, p1) -> lif2 (2x4x4).
    ``local``: CubaLIF (IF_curr_exp: conv1 local-only), else LIF (IF_curr_delta: every conv FromList)."""
    rng = np.random.default_rng(0)
    cell = _cuba if local else _lif
    nodes = {"input": nir.Input(input_type=np.array((1, 8, 8))),
             "conv1": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.2, 1.0, (2, 1, 3, 3)), stride=(1, 1),
                                 padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(2)),
             "lif1": cell((2, 8, 8)),
             "conv2": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.2, 1.0, (2, 2, 3, 3)), stride=(2, 2),
                                 padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(2)),
             "lif2": cell((2, 4, 4)), "output": nir.Output(output_type=np.array((2, 4, 4)))}
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": 1e-3}, type_check=False)


def chained_graph() -> nir.NIRGraph:
    """2x24x40 -> conv1 (3 channels, k5, p2) -> conv2 (2 channels, k3, p0): both local-only, lif1 both
    a target and a source of Convolution projections, every channel grid on several cores."""
    rng = np.random.default_rng(1)
    h, w = 24, 40
    conv = lambda c_out, c_in, k, p, hw: nir.Conv2d(  # noqa: E731
        input_shape=hw, weight=rng.normal(0.2, 1.0, (c_out, c_in, k, k)), stride=(1, 1), padding=(p, p),
        dilation=(1, 1), groups=1, bias=np.zeros(c_out))
    nodes = {"input": nir.Input(input_type=np.array((2, h, w))), "conv1": conv(3, 2, 5, 2, (h, w)),
             "lif1": _cuba((3, h, w)), "conv2": conv(2, 3, 3, 0, (h, w)), "lif2": _cuba((2, h - 2, w - 2)),
             "output": nir.Output(output_type=np.array((2, h - 2, w - 2)))}
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": 1e-3}, type_check=False)


def tiny_artifact(local: bool = True, graph: nir.NIRGraph | None = None):
    from neurodeploy.compiler.compile import Options, compile_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = graph or tiny_graph(local)
        return compile_model(graph, Options(target="spinnaker", allow_degraded=True)).to_artifact()


def _program_of(art) -> Program:
    return from_manifest(art.manifest["program"], art.arrays)


def test_the_compiler_records_the_decision():
    local, plain = _program_of(tiny_artifact(True)), _program_of(tiny_artifact(False))
    assert lo.recorded(local) == {"conv1": {"local_only": True, "reason": ""},
                                  "conv2": {"local_only": False, "reason": lo.recorded(local)["conv2"]["reason"]}}
    assert "stride (2, 2)" in lo.recorded(local)["conv2"]["reason"]
    assert all(not c["local_only"] and "IF_curr_delta" in c["reason"] for c in lo.recorded(plain).values())
    plan = network.plan(local)
    assert [(cv.in_channel, cv.out_channel) for cv in plan.convs] == [(0, 0), (0, 1)]
    assert plan.population("lif1").grid == (2, 8, 8) and plan.population("lif2").grid is None
    assert {(p.source_channel, p.target_channel) for p in plan.projections} == {(0, None), (1, None)}


def _expected(conn) -> dict[str, list[np.ndarray]]:
    """The artifact's synapses of a conv per receptor, by pushing unit vectors through the float conv
    (helpers.conv_programs.conv_matrix): an oracle independent of the backend's index arithmetic."""
    present = conv_matrix(conn, np.ones(conn.arrays["weight"].shape)) != 0
    words, types = conv_matrix(conn, conn.arrays["weight"]), conv_matrix(conn, conn.arrays["synapse_type"])
    post, pre = np.nonzero(present)
    out = {}
    for kind, tag in ((0, "exc"), (1, "inh")):
        sel = types[post, pre] == kind
        out[tag] = [pre[sel], post[sel], words[post, pre][sel].astype(np.int64)]
    return out


def _delayed(art, steps: int):
    """The artifact with every connection delayed by ``steps`` ticks: a power of two, which 7.4.1's
    local-only path stores as ``steps % slots`` = 0 (a whole ring of ``steps`` slots)."""
    from neurodeploy.format import artifact as artifact_format

    program = _program_of(art)
    for conn in program.connections:
        conn.attrs["delay"] = steps
    out = artifact_format.from_program(program)
    out.manifest["mapping"] = art.manifest["mapping"]
    return out


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    if not HAVE_SPYNNAKER:
        pytest.skip("sPyNNaker 7.4.1 is not installed")
    from neurodeploy.backends.spinnaker import map_many

    folder = tmp_path_factory.mktemp("local_only")
    arts = {"local": tiny_artifact(True), "from_list": tiny_artifact(False),
            "multi_core": tiny_artifact(graph=chained_graph()), "delay_4": _delayed(tiny_artifact(True), 4)}
    readback = {name: folder / f"{name}.npz" for name in arts}
    reports = map_many([(arts[n], None) for n in arts], readback=[readback[n] for n in arts], steps=4)
    return {"arts": arts, "reports": dict(zip(arts, reports)), "readback": readback}


LOCAL = {"local": {"conv1"}, "from_list": set(), "multi_core": {"conv1", "conv2"}, "delay_4": {"conv1"}}


@needs_spynnaker
@pytest.mark.parametrize("name", sorted(LOCAL))
def test_virtual_board_reads_back_the_artifacts_synapses(mapped, name):
    art, report = mapped["arts"][name], mapped["reports"][name]
    assert report["matches"] == {k: True for k in report["matches"]}, report["matches"]
    program = _program_of(art)
    with np.load(mapped["readback"][name]) as rb:
        got = {k: rb[k] for k in rb.files}
    for conn in program.connections:
        local = report["local_only"][conn.name]["local_only"]
        assert local == (conn.name in LOCAL[name])
        for tag, (pre, post, words) in _expected(conn).items():
            if local:  # the core skips zero words; FromList rows keep them as stored words
                keep = words != 0
                pre, post, words = pre[keep], post[keep], words[keep]
            key = f"{conn.name}.{tag}"
            have = np.lexsort((got[f"{key}.pre"], got[f"{key}.post"]))
            want = np.lexsort((pre, post))
            assert np.array_equal(got[f"{key}.pre"][have], pre[want]), key
            assert np.array_equal(got[f"{key}.post"][have], post[want]), key
            assert np.array_equal(got[f"{key}.word"][have], words[want]), key
            assert np.all(got[f"{key}.delay_steps"] == conn.attrs["delay"]), key
            assert report["synapses"][f"{conn.name}:{tag}"].get("local_only", False) == local


@needs_spynnaker
def test_local_only_populations_are_channel_grids(mapped):
    report = mapped["reports"]["local"]
    assert report["populations"]["lif1"]["cores"] == 2 and report["populations"]["lif1"]["grid"] == [2, 8, 8]
    assert report["populations"]["input"]["grid"] == [1, 8, 8]
    assert report["local_only"]["conv1"]["projections"] == 2
    assert report["shifts"]["lif1"]["equal"] and all(p["equal"] for p in report["parameters"].values())
    from neurodeploy.backends.spinnaker import summary

    text = "\n".join(summary(report))
    assert "conv conv1: local-only (2 ConvolutionConnector projection(s))" in text
    assert "conv conv2: FromList (stride (2, 2)" in text
    multi = mapped["reports"]["multi_core"]["populations"]
    assert multi["lif1"]["tile"] == [20, 12] and multi["lif1"]["cores"] == 3 * 2 * 2
    assert multi["lif2"]["tile"] == [19, 11] and multi["lif2"]["cores"] == 2 * 2 * 2


@pytest.mark.parametrize("grid, atoms", [((1, 8, 8), 256), ((3, 24, 40), 256), ((2, 17, 17), 256),
                                         ((1, 64, 64), 100), ((4, 30, 7), 64)])
def test_grid_tiles_divide_the_grid(grid, atoms):
    """7.4.1 refuses a tile side that does not divide its dimension; the tile is as large as allowed."""
    tw, th = network.grid_tile(grid, atoms)
    _, h, w = grid
    assert w % tw == 0 and h % th == 0 and tw * th <= atoms
    best = max(a * b for a in range(1, w + 1) for b in range(1, h + 1) if w % a == 0 and h % b == 0 and a * b <= atoms)
    assert tw * th == best
    assert network.grid_cores(grid, (tw, th)) == grid[0] * (w // tw) * (h // th)


# ------------------------------------------------------------------ export, check, inspect

def _export(art, path: Path) -> Path:
    from neurodeploy.cli import export as cli_export
    from neurodeploy.format import artifact as artifact_format

    ndp = path.parent / "model.ndp"
    artifact_format.write(art, ndp)
    parser = argparse.ArgumentParser()
    cli_export.add_parser(parser.add_subparsers(dest="command"))
    assert cli_export.cmd_export(parser.parse_args(["export", str(ndp), "--format", "pynn", "-o", str(path)])) == 0
    return path


def test_export_writes_convolution_connectors(tmp_path):
    script = _export(tiny_artifact(True), tmp_path / "net.py")
    text = script.read_text()
    compile(text, str(script), "exec")
    assert text.count("sim.ConvolutionConnector(") == 1 and "sim.Convolution(delay=1 * TIMESTEP_MS)" in text
    assert "structure=sim.Grid2D(8 / 8)" in text and "enumerate([(0, 0), (0, 1)])" in text
    with np.load(script.with_suffix(".npz")) as data:
        kernels = data["conv1.kernels"]
    plan = network.plan(_program_of(tiny_artifact(True)))
    assert np.array_equal(kernels, np.stack([cv.kernel for cv in plan.convs]))
    plain = _export(tiny_artifact(False), tmp_path / "plain.py").read_text()
    assert "sim.ConvolutionConnector(" not in plain and "structure=sim.Grid2D" not in plain


@needs_spynnaker
def test_exported_script_runs_on_a_virtual_board(tmp_path):
    script = _export(tiny_artifact(True), tmp_path / "net.py")
    x = np.zeros((1, 4, 1, 8, 8), dtype=np.uint8)
    x[0, 0, 0, 3, 3] = 1
    out = run_exported(script, x, tmp_path)
    assert out["spikes.lif1"].shape == (1, 4, 2, 8, 8) and out["v.lif2"].shape == (1, 4, 2, 4, 4)


def test_check_and_inspect_name_each_conv(tmp_path, capsys):
    from neurodeploy.cli import main as cli
    from neurodeploy.format import artifact as artifact_format

    model = tmp_path / "tiny.nir"
    nir.write(str(model), tiny_graph(True))
    cli.main(["check", str(model), "--target", "spinnaker", "--json", str(tmp_path / "c.json")])
    out = capsys.readouterr().out
    assert "conv conv1 (input -> lif1): local-only (ConvolutionConnector)" in out
    assert "conv conv2 (lif1 -> lif2): FromList: stride (2, 2)" in out
    report = json.loads((tmp_path / "c.json").read_text())
    assert [(c["connection"], c["kind"]) for c in report["conv_synapses"]] == [("conv1", "local_only"),
                                                                               ("conv2", "from_list")]
    ndp = tmp_path / "tiny.ndp"
    artifact_format.write(tiny_artifact(True), ndp)
    cli.main(["inspect", str(ndp)])
    out = capsys.readouterr().out
    assert "connection conv1: input -> lif1 [conv] delay=1, local_only=True" in out
    assert "local_only=False (FromList: stride (2, 2)" in out
