"""The bad-input guarantee.

Every bad file, graph, option or input array gives a NeurodeployError whose message names the
file and, where one is involved, the node and the field. The CLI prints one line starting with
"error:", no traceback, and exits non-zero; a failed `simulate` leaves no output file behind.

All bad files are generated here: raw h5py writes of a small valid graph with one thing broken,
or a valid `nir.write` file that is then cut or corrupted.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.cli import main as cli
from neurodeploy.compiler.frontend import reader
from neurodeploy.api import build, simulate
from neurodeploy.errors import (
    GraphValidationError, InputDataError, NeurodeployError, NIRFileError, OptionError, UnsupportedError,
)
from neurodeploy.format.npzio import read_inputs, write_npz

REPO = Path(__file__).resolve().parents[2]
Nodes = dict[str, dict[str, Any]]
Edges = list[tuple[str, str]]

# ---------------------------------------------------------------- writing graphs


def lif(n: int, **changes: Any) -> dict[str, Any]:
    fields = {"type": "LIF", "tau": np.full(n, 0.01), "r": np.ones(n), "v_leak": np.zeros(n),
              "v_threshold": np.ones(n), "v_reset": np.zeros(n)}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def base_nodes() -> Nodes:
    """Input(4) -> Affine(3x4) -> LIF(3) -> Output(3): the valid graph every case breaks."""
    return {
        "input": {"type": "Input", "shape": np.array([4])},
        "affine": {"type": "Affine", "weight": np.full((3, 4), 0.5), "bias": np.zeros(3)},
        "lif": lif(3),
        "output": {"type": "Output", "shape": np.array([3])},
    }


BASE_EDGES: Edges = [("input", "affine"), ("affine", "lif"), ("lif", "output")]


def _write_value(group: h5py.Group, key: str, value: Any) -> None:
    if isinstance(value, dict):
        sub = group.create_group(key)
        for k, v in value.items():
            _write_value(sub, k, v)
    else:
        group[key] = value


def _write_graph(group: h5py.Group, nodes: Nodes, edges: Edges | np.ndarray | None,
                 metadata: dict[str, Any] | None = None) -> None:
    group["type"] = "NIRGraph"
    node_group = group.create_group("nodes")
    for name, fields in nodes.items():
        if fields.get("type") == "NIRGraph":
            _write_graph(node_group.create_group(name), fields["nodes"], fields["edges"])
            continue
        child = node_group.create_group(name)
        for key, value in fields.items():
            _write_value(child, key, value)
    if edges is not None:
        if isinstance(edges, np.ndarray):
            group["edges"] = edges
        else:
            group["edges"] = np.array(edges, dtype=h5py.string_dtype()).reshape(len(edges), 2)
    if metadata:
        _write_value(group, "metadata", metadata)


def write_raw(path: Path, nodes: Nodes | None = None, edges: Edges | np.ndarray | None = BASE_EDGES,
              metadata: dict[str, Any] | None = None) -> Path:
    """Write a graph the way nir.write lays it out (uncompressed), without nir's checks."""
    with h5py.File(path, "w") as handle:
        handle["version"] = "1.0.8"
        _write_graph(handle.create_group("node"), base_nodes() if nodes is None else nodes, edges, metadata)
    return path


def write_nir(path: Path) -> Path:
    """The valid graph written by nir.write itself (gzip-compressed datasets)."""
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([4])),
        nir.Affine(weight=np.full((3, 4), 0.5), bias=np.zeros(3)),
        nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
        nir.Output(output_type=np.array([3])),
    )
    nir.write(path, graph)
    return path


def changed(**nodes: dict[str, Any] | None) -> Nodes:
    """base_nodes() with some nodes replaced (or removed, with None)."""
    out = base_nodes()
    for name, fields in nodes.items():
        if fields is None:
            out.pop(name)
        else:
            out[name] = fields
    return out


def with_field(node: str, **fields: Any) -> Nodes:
    """base_nodes() with fields of one node changed (None removes the field)."""
    out = base_nodes()
    for key, value in fields.items():
        if value is None:
            out[node].pop(key)
        else:
            out[node][key] = value
    return out


# ---------------------------------------------------------------- file and graph cases


@dataclass
class Case:
    id: str
    make: Callable[[Path], Path]  # writes the bad file into a directory, returns its path
    error: type[NeurodeployError]
    parts: tuple[str, ...]  # what the message must name besides the file name
    options: dict[str, Any] = field(default_factory=dict)


def raw(nodes: Nodes | None = None, edges: Edges | np.ndarray | None = BASE_EDGES,
        metadata: dict[str, Any] | None = None) -> Callable[[Path], Path]:
    return lambda d: write_raw(d / "model.nir", nodes, edges, metadata)


def _text(d: Path) -> Path:
    path = d / "notes.nir"
    path.write_text("this is not a NIR graph\n")
    return path


def _empty(d: Path) -> Path:
    path = d / "empty.nir"
    path.write_bytes(b"")
    return path


def _truncated(d: Path) -> Path:
    data = write_nir(d / "full.nir").read_bytes()
    path = d / "truncated.nir"
    path.write_bytes(data[: len(data) // 2])
    return path


def _no_node_group(d: Path) -> Path:
    path = d / "weights.nir"
    with h5py.File(path, "w") as handle:
        handle["weights"] = np.ones(3)
    return path


def _top_level_not_graph(d: Path) -> Path:
    path = d / "model.nir"
    with h5py.File(path, "w") as handle:
        node = handle.create_group("node")
        for key, value in lif(3).items():
            node[key] = value
    return path


def _node_is_dataset(d: Path) -> Path:
    path = write_raw(d / "model.nir")
    with h5py.File(path, "a") as handle:
        del handle["node/nodes/lif"]
        handle["node/nodes/lif"] = np.ones(3)
    return path


def _edges_as_group(d: Path) -> Path:
    path = write_raw(d / "model.nir")
    with h5py.File(path, "a") as handle:
        del handle["node/edges"]
        handle.create_group("node/edges")
    return path


def _sub_graph(inputs: int) -> dict[str, Any]:
    nodes: Nodes = {f"in{i}": {"type": "Input", "shape": np.array([3])} for i in range(inputs)}
    nodes["lif"] = lif(3)
    nodes["out"] = {"type": "Output", "shape": np.array([3])}
    edges = [(f"in{i}", "lif") for i in range(inputs)] + [("lif", "out")]
    return {"type": "NIRGraph", "nodes": nodes, "edges": edges}


def _conv_graph(weight: np.ndarray, **conv: Any) -> Nodes:
    return {
        "input": {"type": "Input", "shape": np.array([1, 3, 3])},
        "conv": {"type": "Conv2d", "weight": weight, "bias": np.zeros(weight.shape[0]),
                 "stride": np.array([1, 1]), "padding": np.array([0, 0]),
                 "dilation": np.array([1, 1]), "groups": np.array(1), **conv},
        "output": {"type": "Output", "shape": np.array([2, 1, 1])},
    }


CONV_EDGES: Edges = [("input", "conv"), ("conv", "output")]

def _renamed(old: str, new: str | bytes, **fields: Any) -> Nodes:
    """base_nodes() with one node renamed (edges still name the old one) and fields changed."""
    nodes = base_nodes()
    nodes[new] = {**nodes.pop(old), **fields}  # type: ignore[index]
    return nodes


def _nested_without_nodes(d: Path) -> Path:
    path = write_raw(d / "model.nir", {
        "input": {"type": "Input", "shape": np.array([3])},
        "sub": _sub_graph(inputs=1),
        "output": {"type": "Output", "shape": np.array([3])},
    }, [("input", "sub"), ("sub", "output")])
    with h5py.File(path, "a") as handle:
        del handle["node/nodes/sub/nodes"]
    return path


CASES = [
    # --- not a NIR file at all
    Case("not_hdf5", _text, NIRFileError, ("HDF5",)),
    Case("empty_file", _empty, NIRFileError, ("empty",)),
    Case("missing_file", lambda d: d / "absent.nir", NIRFileError, ("no such file",)),
    Case("directory", lambda d: d, NIRFileError, ("directory",)),
    Case("truncated_hdf5", _truncated, NIRFileError, ("truncated",)),
    Case("no_node_group", _no_node_group, NIRFileError, ("'node'",)),
    Case("top_level_not_graph", _top_level_not_graph, NIRFileError, ("LIF", "NIRGraph")),
    Case("node_is_dataset", _node_is_dataset, NIRFileError, ("node 'lif'",)),
    # --- node types and fields
    Case("missing_type", raw(with_field("lif", type=None)), NIRFileError, ("node 'lif'", "field 'type'")),
    Case("type_not_string", raw(with_field("lif", type=np.array(7))), NIRFileError,
         ("node 'lif'", "field 'type'")),
    Case("unknown_node_type", raw(with_field("lif", type="Bogus")), UnsupportedError,
         ("node 'lif'", "field 'type'", "Bogus")),
    Case("missing_field", raw(with_field("lif", tau=None)), GraphValidationError, ("node 'lif'", "field 'tau'")),
    Case("missing_bias", raw(with_field("affine", bias=None)), GraphValidationError,
         ("node 'affine'", "field 'bias'")),
    Case("string_weight", raw(with_field("affine", weight="heavy")), GraphValidationError,
         ("node 'affine'", "field 'weight'", "numeric")),
    Case("field_is_group", raw(with_field("lif", tau={"a": np.ones(3)})), GraphValidationError,
         ("node 'lif'", "field 'tau'")),
    Case("weight_1d", raw(with_field("affine", weight=np.ones(12))), GraphValidationError,
         ("node 'affine'", "field 'weight'", "2-D")),
    Case("empty_weight", raw(with_field("affine", weight=np.ones((0, 4)), bias=np.ones(0))),
         GraphValidationError, ("node 'affine'", "field 'weight'")),
    Case("input_missing_shape", raw(with_field("input", shape=None)), GraphValidationError,
         ("node 'input'", "field 'shape'")),
    Case("input_negative_shape", raw(with_field("input", shape=np.array([-4]))), GraphValidationError,
         ("node 'input'", "field 'shape'")),
    Case("input_fractional_shape", raw(with_field("input", shape=np.array([4.5]))), GraphValidationError,
         ("node 'input'", "field 'shape'", "4.5")),
    Case("huge_input_shape", raw(with_field("input", shape=np.array([2**20, 2**20]))), GraphValidationError,
         ("node 'input'", "field 'shape'", "too large")),
    Case("flatten_two_start_dims", raw({
        "input": {"type": "Input", "shape": np.array([2, 2])},
        "flat": {"type": "Flatten", "start_dim": np.array([0, 1]), "end_dim": np.array(-1)},
        "output": {"type": "Output", "shape": np.array([4])},
    }, [("input", "flat"), ("flat", "output")]), GraphValidationError, ("node 'flat'", "field 'start_dim'")),
    # --- numbers
    Case("nan_weight", raw(with_field("affine", weight=np.array([[np.nan] * 4] * 3))), GraphValidationError,
         ("node 'affine'", "field 'weight'", "NaN")),
    Case("inf_tau", raw(with_field("lif", tau=np.array([0.01, np.inf, 0.01]))), GraphValidationError,
         ("node 'lif'", "field 'tau'", "infinite")),
    Case("negative_tau", raw(with_field("lif", tau=np.array([0.01, -0.01, 0.01]))), GraphValidationError,
         ("node 'lif'", "field 'tau'", "> 0")),
    Case("zero_tau_mem", raw(changed(lif={"type": "CubaLIF", "tau_syn": np.full(3, 0.005),
                                          "tau_mem": np.zeros(3), "r": np.ones(3), "v_leak": np.zeros(3),
                                          "v_threshold": np.ones(3)})),
         GraphValidationError, ("node 'lif'", "field 'tau_mem'")),
    Case("nan_threshold", raw(changed(lif={"type": "Threshold", "threshold": np.full(3, np.nan)})),
         GraphValidationError, ("node 'lif'", "field 'threshold'", "NaN")),
    Case("negative_delay", raw(changed(
        delay={"type": "Delay", "delay": np.full(4, -1e-3)}),
        [("input", "delay"), ("delay", "affine"), ("affine", "lif"), ("lif", "output")]),
        GraphValidationError, ("node 'delay'", "field 'delay'")),
    # --- shapes
    Case("affine_fed_wrong_size", raw(with_field("input", shape=np.array([5]))), GraphValidationError,
         ("node 'input'", "field 'shape'", "'affine'")),
    Case("lif_after_wrong_affine", raw(with_field("affine", weight=np.ones((4, 4)), bias=np.zeros(4))),
         GraphValidationError, ("node 'lif'", "field 'tau'", "4")),
    Case("bias_shape", raw(with_field("affine", bias=np.zeros(5))), GraphValidationError,
         ("node 'affine'", "field 'bias'")),
    Case("neuron_params_disagree", raw(with_field("lif", r=np.ones(2))), GraphValidationError,
         ("node 'lif'", "field 'r'")),
    Case("conv_kernel_too_large", raw(_conv_graph(np.ones((2, 1, 5, 5))), CONV_EDGES), GraphValidationError,
         ("node 'conv'", "field 'weight'")),
    Case("conv_bad_groups", raw(_conv_graph(np.ones((3, 1, 3, 3)), groups=np.array(2)), CONV_EDGES),
         GraphValidationError, ("node 'conv'", "field 'groups'")),
    Case("conv_channel_mismatch", raw(_conv_graph(np.ones((2, 2, 3, 3))), CONV_EDGES),
         GraphValidationError, ("node 'conv'", "field 'weight'")),
    Case("bad_flatten_dims", raw({
        "input": {"type": "Input", "shape": np.array([2, 3])},
        "flat": {"type": "Flatten", "start_dim": np.array(5), "end_dim": np.array(7)},
        "output": {"type": "Output", "shape": np.array([6])},
    }, [("input", "flat"), ("flat", "output")]), GraphValidationError, ("node 'flat'", "field 'start_dim'")),
    Case("pool_on_1d_input", raw({
        "input": {"type": "Input", "shape": np.array([4])},
        "pool": {"type": "SumPool2d", "kernel_size": np.array([2, 2]), "stride": np.array([2, 2]),
                 "padding": np.array([0, 0])},
        "output": {"type": "Output", "shape": np.array([1])},
    }, [("input", "pool"), ("pool", "output")]), GraphValidationError, ("node 'pool'", "(channels, height, width)")),
    Case("pool_kernel_too_large", raw({
        "input": {"type": "Input", "shape": np.array([1, 2, 2])},
        "pool": {"type": "AvgPool2d", "kernel_size": np.array([3, 3]), "stride": np.array([1, 1]),
                 "padding": np.array([0, 0])},
        "output": {"type": "Output", "shape": np.array([1, 1, 1])},
    }, [("input", "pool"), ("pool", "output")]), GraphValidationError, ("node 'pool'", "field 'kernel_size'")),
    # --- structure
    Case("dangling_edge", raw(edges=BASE_EDGES + [("lif", "ghost")]), GraphValidationError,
         ("'ghost'", "field 'edges'")),
    Case("empty_graph", raw({}, []), GraphValidationError, ("no nodes",)),
    Case("no_input", raw(changed(input=None), BASE_EDGES[1:]), GraphValidationError, ("no Input",)),
    Case("no_output", raw(changed(output=None), BASE_EDGES[:2]), GraphValidationError, ("no Output",)),
    Case("isolated_node", raw(changed(lonely=lif(3))), GraphValidationError, ("node 'lonely'", "no edges")),
    Case("edge_into_input", raw(edges=BASE_EDGES + [("lif", "input")]), GraphValidationError,
         ("'input'", "field 'edges'", "Input")),
    Case("edge_out_of_output", raw(edges=BASE_EDGES + [("output", "affine")]), GraphValidationError,
         ("'output'", "field 'edges'", "Output")),
    Case("operator_cycle", raw({
        "input": {"type": "Input", "shape": np.array([4])},
        "lin1": {"type": "Linear", "weight": np.eye(4)},
        "lin2": {"type": "Linear", "weight": np.eye(4)},
        "lif": lif(4),
        "output": {"type": "Output", "shape": np.array([4])},
    }, [("input", "lin1"), ("lin1", "lin2"), ("lin2", "lin1"), ("lin2", "lif"), ("lif", "output")]),
        GraphValidationError, ("'lin1'", "cycle")),
    Case("ambiguous_subgraph", raw({
        "input": {"type": "Input", "shape": np.array([3])},
        "sub": _sub_graph(inputs=2),
        "output": {"type": "Output", "shape": np.array([3])},
    }, [("input", "sub"), ("sub", "output")]), GraphValidationError, ("'sub'", "field 'edges'", "2 Input")),
    Case("missing_edges", raw(edges=None), NIRFileError, ("field 'edges'",)),
    Case("edges_wrong_shape", raw(edges=np.array(["input", "affine", "lif"], dtype=h5py.string_dtype())),
         NIRFileError, ("field 'edges'", "(n, 2)")),
    Case("edges_as_group", _edges_as_group, NIRFileError, ("field 'edges'",)),
    Case("non_utf8_node_name", raw(_renamed("lif", b"l\xffif")), GraphValidationError,
         ("field 'edges'", "'lif'")),
    Case("newline_in_node_name", raw(_renamed("affine", "aff\nine", weight=np.full((3, 4), np.nan)),
                                     [("input", "aff\nine"), ("aff\nine", "lif"), ("lif", "output")]),
         GraphValidationError, ("node 'aff ine'", "field 'weight'")),
    Case("nested_graph_without_nodes", _nested_without_nodes, NIRFileError,
         ("node 'sub'", "field 'nodes'")),
    # --- semantics contract from the file's metadata
    Case("metadata_zero_dt", raw(metadata={"neurodeploy.dt": 0.0}), OptionError, ("neurodeploy.dt",)),
    Case("metadata_bad_integrator", raw(metadata={"neurodeploy.integrator": "rk4"}), OptionError,
         ("neurodeploy.integrator", "rk4", "euler")),
    # --- options: the file is valid, the contract is not
    Case("zero_dt", raw(), OptionError, ("dt", "positive"), {"dt": 0.0}),
    Case("negative_dt", raw(), OptionError, ("dt", "positive"), {"dt": -1e-3}),
    Case("nan_dt", raw(), OptionError, ("dt",), {"dt": float("nan")}),
    Case("text_dt", raw(), OptionError, ("dt", "fast"), {"dt": "fast"}),
    Case("bad_integrator", raw(), OptionError, ("integrator", "rk4", "exact"), {"integrator": "rk4"}),
    Case("bad_reset", raw(), OptionError, ("reset", "sometimes", "subtract"), {"reset": "sometimes"}),
    Case("negative_spike_amplitude", raw(), OptionError, ("spike_amplitude", "-1.0"), {"spike_amplitude": -1.0}),
    Case("text_spike_amplitude", raw(), OptionError, ("spike_amplitude", "loud", "dirac"),
         {"spike_amplitude": "loud"}),
]


def _check_message(exc: BaseException, path: Path, parts: tuple[str, ...]) -> None:
    message = str(exc)
    assert "\n" not in message, message
    assert path.name in message, message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_file_raises_neurodeploy_error(case: Case, tmp_path: Path) -> None:
    path = case.make(tmp_path)
    with pytest.raises(NeurodeployError) as info:
        build(path, warn=False, **case.options)
    assert isinstance(info.value, case.error), f"{type(info.value).__name__}: {info.value}"
    _check_message(info.value, path, case.parts)


def _cli_options(options: dict[str, Any]) -> list[str]:
    args = []
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


# argparse itself rejects these (tested separately below).
ARGPARSE_CASES = ("text_dt", "bad_integrator", "bad_reset")


@pytest.mark.parametrize("case", [c for c in CASES if c.id not in ARGPARSE_CASES],
                         ids=[c.id for c in CASES if c.id not in ARGPARSE_CASES])
def test_cli_inspect_prints_one_error_line(case: Case, tmp_path: Path, capsys) -> None:
    path = case.make(tmp_path)
    code = cli.main(["inspect", str(path), *_cli_options(case.options)])
    out, err = capsys.readouterr()
    assert code != 0
    _assert_one_error_line(err)
    assert path.name in err


def _assert_one_error_line(err: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err


def test_valid_base_graph_builds_and_simulates(tmp_path: Path) -> None:
    """The cases above break one thing each of graphs that are otherwise valid."""
    for path in (write_raw(tmp_path / "raw.nir"), write_nir(tmp_path / "nir.nir")):
        traces = simulate(path, np.ones((1, 5, 4)), dt=1e-3, warn=False)
        assert traces["spikes.lif"].shape == (1, 5, 3)
    for nodes, edges in (
        (_conv_graph(np.ones((2, 1, 3, 3))), CONV_EDGES),
        ({"input": {"type": "Input", "shape": np.array([3])}, "sub": _sub_graph(inputs=1),
          "output": {"type": "Output", "shape": np.array([3])}}, [("input", "sub"), ("sub", "output")]),
    ):
        build(write_raw(tmp_path / "other.nir", nodes, edges), dt=1e-3, warn=False)


@pytest.mark.parametrize("nodes, edges, part", [
    (with_field("lif", tau_mem=np.full(3, 0.02)), BASE_EDGES, "tau_mem"),
    (base_nodes(), BASE_EDGES + [("affine", "lif")], "2 times"),
    (with_field("output", shape=np.array([7])), BASE_EDGES, "declared shape [7]"),
], ids=["unknown_neuron_field", "duplicate_edge", "wrong_output_shape"])
def test_ambiguous_graph_warns(nodes: Nodes, edges: Edges, part: str, tmp_path: Path, capsys) -> None:
    """What is repaired or ignored is never silent: it is a warning, and `inspect` shows it."""
    path = write_raw(tmp_path / "model.nir", nodes, edges)
    net = build(path, dt=1e-3, warn=False)
    assert any(part in w for w in net.warnings), net.warnings
    assert cli.main(["inspect", str(path), "--dt", "1e-3"]) == 0
    assert part in capsys.readouterr().out


# ---------------------------------------------------------------- in-memory nir.NIRGraph


def _memory_graph(weight: np.ndarray, tau: np.ndarray) -> nir.NIRGraph:
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([4])),
            "affine": nir.Affine(weight=weight, bias=np.zeros(3)),
            "lif": nir.LIF(tau=tau, r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
            "output": nir.Output(output_type=np.array([3])),
        },
        edges=BASE_EDGES,
        type_check=False,
    )


@pytest.mark.parametrize("weight, tau, parts", [
    (np.full((3, 4), np.nan), np.full(3, 0.01), ("node 'affine'", "field 'weight'", "NaN")),
    (np.ones((3, 4)), np.full(3, -0.01), ("node 'lif'", "field 'tau'")),
    (np.ones((3, 5)), np.full(3, 0.01), ("'affine'",)),
], ids=["nan_weight", "negative_tau", "shape_mismatch"])
def test_bad_in_memory_graph(weight: np.ndarray, tau: np.ndarray, parts: tuple[str, ...]) -> None:
    with pytest.raises(GraphValidationError) as info:
        build(_memory_graph(weight, tau), dt=1e-3, warn=False)
    message = str(info.value)
    assert message.startswith("<graph>: ") and "\n" not in message
    for part in parts:
        assert part in message, message


def test_unloadable_object() -> None:
    with pytest.raises(NeurodeployError, match="nir.NIRGraph"):
        build(42, warn=False)


# ---------------------------------------------------------------- input .npz files


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_raw(tmp_path / "model.nir")


def _npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


NPZ_CASES: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    ("missing_input_array", lambda d: _npz(d / "in.npz", spikes=np.ones((1, 5, 4))), ("'input'",)),
    ("wrong_shape", lambda d: _npz(d / "in.npz", input=np.ones((1, 5, 7))), ("'input'", "[1, 5, 7]", "4")),
    ("no_steps_axis", lambda d: _npz(d / "in.npz", input=np.ones(4)), ("'input'", "batch, steps")),
    ("nan_values", lambda d: _npz(d / "in.npz", input=np.full((1, 5, 4), np.nan)), ("'input'", "NaN")),
    ("inf_values", lambda d: _npz(d / "in.npz", input=np.full((1, 5, 4), np.inf)), ("'input'", "infinite")),
    ("string_values", lambda d: _npz(d / "in.npz", input=np.array([[["a"] * 4] * 5])), ("'input'", "numbers")),
    ("pickled_objects", lambda d: _npz(d / "in.npz", input=np.array([{"a": 1}], dtype=object)),
     ("'input'", "pickle")),
    ("not_npz", lambda d: _write_text(d / "in.npz"), ("npz",)),
    ("npy_not_npz", lambda d: _save_npy(d / "in.npy"), ("npz",)),
    ("missing_file", lambda d: d / "absent.npz", ("no such",)),
]


def _write_text(path: Path) -> Path:
    path.write_text("1, 2, 3\n")
    return path


def _save_npy(path: Path) -> Path:
    np.save(path, np.ones((1, 5, 4)))
    return path


@pytest.mark.parametrize("make, parts", [c[1:] for c in NPZ_CASES], ids=[c[0] for c in NPZ_CASES])
def test_bad_input_npz_read(make, parts, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(InputDataError) as info:
        read_inputs(path, {"input": (4,)})
    _check_message(info.value, path, parts)


@pytest.mark.parametrize("make, parts", [c[1:] for c in NPZ_CASES], ids=[c[0] for c in NPZ_CASES])
def test_cli_simulate_bad_input_leaves_no_output(make, parts, model: Path, tmp_path: Path, capsys) -> None:
    path = make(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "result.npz"
    code = cli.main(["simulate", str(model), "--input", str(path), "-o", str(output), "--dt", "1e-3"])
    _, err = capsys.readouterr()
    assert code != 0
    _assert_one_error_line(err)
    assert path.name in err
    assert list(out_dir.iterdir()) == []


def test_read_inputs_accepts_names_only(tmp_path: Path) -> None:
    """Without shapes, read_inputs still checks dtype and values."""
    good = _npz(tmp_path / "good.npz", input=np.ones((1, 5, 4)))
    assert read_inputs(good, ["input"]).shape == (1, 5, 4)
    bad = _npz(tmp_path / "bad.npz", input=np.full((1, 5, 4), np.nan))
    with pytest.raises(InputDataError, match="bad.npz"):
        read_inputs(bad, ["input"])


def test_multi_input_model_needs_named_arrays(tmp_path: Path) -> None:
    path = _npz(tmp_path / "in.npz", input=np.ones((1, 5, 4)))
    with pytest.raises(InputDataError) as info:
        read_inputs(path, {"a": (4,), "b": (2,)})
    _check_message(info.value, path, ("'input.a'", "'input.b'"))


# ---------------------------------------------------------------- output files


@pytest.mark.parametrize("target, parts", [
    ("missing_dir/out.npz", ("missing_dir", "does not exist")),
    ("out.txt", (".npz",)),
    ("a_directory.npz", ("directory",)),
])
def test_bad_output_path(target: str, parts: tuple[str, ...], tmp_path: Path) -> None:
    (tmp_path / "a_directory.npz").mkdir()
    path = tmp_path / target
    with pytest.raises(OptionError) as info:
        write_npz(path, {"x": np.ones(3)})
    for part in parts:
        assert part in str(info.value), info.value


def test_cli_simulate_output_in_missing_directory(model: Path, tmp_path: Path, capsys) -> None:
    inputs = _npz(tmp_path / "in.npz", input=np.ones((1, 5, 4)))
    output = tmp_path / "nowhere" / "out.npz"
    code = cli.main(["simulate", str(model), "--input", str(inputs), "-o", str(output), "--dt", "1e-3"])
    _, err = capsys.readouterr()
    assert code != 0
    _assert_one_error_line(err)
    assert "nowhere" in err
    assert not output.parent.exists()


def test_failed_write_leaves_nothing(monkeypatch, tmp_path: Path) -> None:
    """A write that dies half-way (disk full) leaves neither the output nor a temp file."""
    from neurodeploy.format.npz_chunks import NpzStreamWriter

    def half_write(writer, name, array, *args, **kwargs):
        writer._write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(NpzStreamWriter, "write_array", half_write)
    output = tmp_path / "out.npz"
    with pytest.raises(OptionError, match="No space left"):
        write_npz(output, {"x": np.ones(3)})
    assert list(tmp_path.iterdir()) == []


def test_failed_simulate_keeps_previous_output(model: Path, tmp_path: Path, capsys) -> None:
    """A failing run neither deletes nor overwrites an earlier result."""
    output = tmp_path / "out.npz"
    output.write_bytes(b"earlier result")
    bad = _npz(tmp_path / "in.npz", input=np.ones((1, 5, 7)))
    assert cli.main(["simulate", str(model), "--input", str(bad), "-o", str(output), "--dt", "1e-3"]) != 0
    assert output.read_bytes() == b"earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz", "model.nir", "out.npz"]


def test_cli_simulate_success_writes_output(model: Path, tmp_path: Path, capsys) -> None:
    inputs = _npz(tmp_path / "in.npz", input=np.ones((2, 5, 4)))
    output = tmp_path / "out.npz"
    code = cli.main(["simulate", str(model), "--input", str(inputs), "-o", str(output), "--dt", "1e-3",
                     "--record", "v"])
    assert code == 0
    with np.load(output) as data:
        assert data["spikes.lif"].shape == (2, 5, 3)
        assert data["v.lif"].shape == (2, 5, 3)


def test_cli_bad_record_option(model: Path, tmp_path: Path, capsys) -> None:
    inputs = _npz(tmp_path / "in.npz", input=np.ones((1, 5, 4)))
    output = tmp_path / "out.npz"
    code = cli.main(["simulate", str(model), "--input", str(inputs), "-o", str(output), "--dt", "1e-3",
                     "--record", "voltage"])
    _, err = capsys.readouterr()
    assert code != 0
    _assert_one_error_line(err)
    assert "voltage" in err
    assert not output.exists()


# ---------------------------------------------------------------- argparse errors, real processes


@pytest.mark.parametrize("args", [
    ["inspect"],
    ["inspect", "m.nir", "--dt", "fast"],
    ["inspect", "m.nir", "--integrator", "rk4"],
    ["inspect", "m.nir", "--reset", "sometimes"],
    ["simulate", "m.nir"],
    ["compile-everything"],
], ids=["no_model", "text_dt", "bad_integrator", "bad_reset", "no_input", "unknown_command"])
def test_cli_usage_errors_are_one_line(args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    _, err = capsys.readouterr()
    assert info.value.code != 0
    _assert_one_error_line(err)


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, env=env, cwd=REPO)


def test_subprocess_python_m_inspect(tmp_path: Path) -> None:
    bad = _truncated(tmp_path)
    proc = _run(sys.executable, "-m", "neurodeploy", "inspect", str(bad))
    assert proc.returncode != 0
    _assert_one_error_line(proc.stderr)
    assert "truncated.nir" in proc.stderr


def test_subprocess_console_script_simulate(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("neurodeploy")
    if not script.exists():
        pytest.skip("the neurodeploy console script is not installed next to this python")
    model = write_raw(tmp_path / "model.nir", with_field("lif", tau=np.array([0.01, np.nan, 0.01])))
    inputs = _npz(tmp_path / "in.npz", input=np.ones((1, 5, 4)))
    output = tmp_path / "out.npz"
    proc = _run(str(script), "simulate", str(model), "--input", str(inputs), "-o", str(output), "--dt", "1e-3")
    assert proc.returncode != 0
    _assert_one_error_line(proc.stderr)
    for part in ("model.nir", "node 'lif'", "field 'tau'", "NaN"):
        assert part in proc.stderr
    assert not output.exists()


def test_cli_unexpected_exception_is_one_line(monkeypatch, tmp_path: Path, capsys) -> None:
    """A bug is still reported on one line (the traceback is behind NEURODEPLOY_DEBUG=1)."""
    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(cli.COMMANDS, "inspect", broken)
    monkeypatch.delenv("NEURODEPLOY_DEBUG", raising=False)
    code = cli.main(["inspect", "m.nir"])
    _, err = capsys.readouterr()
    assert code != 0
    _assert_one_error_line(err)
    assert "ZeroDivisionError" in err and "bug" in err


# ---------------------------------------------------------------- random corruption


def _base_files() -> dict[str, bytes]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        return {"nir.write": write_nir(d / "a.nir").read_bytes(), "raw": write_raw(d / "b.nir").read_bytes()}


BASE_FILES = _base_files()


@settings(max_examples=100, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(
    base=st.sampled_from(sorted(BASE_FILES)),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_random_corruption_gives_only_neurodeploy_errors(base: str, flips, cut, tmp_path: Path,
                                                         monkeypatch) -> None:
    monkeypatch.setattr(reader, "READ_TIMEOUT_S", 2.0)  # libhdf5 can loop forever on a damaged file
    data = bytearray(BASE_FILES[base])
    for where, byte in flips:
        data[int(where * len(data))] = byte
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path / "corrupt.nir"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            net = build(path, dt=1e-3, warn=False)
            simulate(net, np.ones((1, 3) + next(iter(net.inputs.values())).shape))
        except NeurodeployError as exc:
            assert "\n" not in str(exc)
            assert "corrupt.nir" in str(exc) or isinstance(exc, InputDataError)


# ---------------------------------------------------------------- crashes and hangs in libhdf5


def _segfault(path: Path) -> None:
    os.kill(os.getpid(), 11)


def _hang(path: Path) -> None:
    while True:
        pass


@pytest.mark.skipif(not reader.ISOLATE, reason="needs os.fork")
@pytest.mark.parametrize("parse, parts", [(_segfault, ("crashed", "SIGSEGV")), (_hang, ("did not finish",))],
                         ids=["segfault", "hang"])
def test_hdf5_library_crash_or_hang_is_an_error(parse, parts, monkeypatch, tmp_path: Path, capsys) -> None:
    """libhdf5 can segfault or loop on a damaged file (seen with corrupted variable-length strings)."""
    monkeypatch.setattr(reader, "_parse", parse)
    monkeypatch.setattr(reader, "READ_TIMEOUT_S", 0.5)
    path = write_raw(tmp_path / "damaged.nir")
    with pytest.raises(NIRFileError) as info:
        build(path, dt=1e-3, warn=False)
    _check_message(info.value, path, parts)
    assert cli.main(["inspect", str(path)]) != 0
    _assert_one_error_line(capsys.readouterr().err)


def test_errors_are_one_line() -> None:
    assert str(GraphValidationError("a.nir: node 'x\ny':\tbad")) == "a.nir: node 'x y': bad"
