"""Every node type's datasets are held to the graph before the reader reads them.

One small graph holds every family of node (Input, Conv2d, Conv1d, SumPool2d, AvgPool2d,
Flatten, Linear, Affine, LIF, CubaLIF, IF, LI, I, Scale, Threshold, Delay, Output). Each case
replaces one dataset with a gzip dataset declared huge but under the 4 GiB total (so only the
node's own check can refuse it) and never written: the file stays small on disk, and the reader
must refuse it in milliseconds, without a large allocation, naming the node, the dataset, the
declared shape and the shape the graph allows.
"""
from __future__ import annotations

import time
import tracemalloc

import h5py
import nir
import numpy as np
import pytest

from neurodeploy.compiler.frontend import declared, reader
from neurodeploy.errors import NeurodeployError

N = 4  # neurons of the dense chain
TIME_S = 1.0  # measured: 11 ms median, 17 ms at most, on two shared cores
PEAK_BYTES = 20 << 20


def lif(n: int) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))


def every_family() -> nir.NIRGraph:
    ones = np.ones(N)
    nodes = {
        "input": nir.Input(input_type=np.array([2, 6, 6])),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=np.ones((3, 2, 3, 3)), stride=1, padding=1, dilation=1,
                           groups=1, bias=np.zeros(3)),
        "lifc": lif(3 * 6 * 6),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "avg": nir.AvgPool2d(kernel_size=np.array([1, 1]), stride=np.array([1, 1]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0, end_dim=-1),
        "lin": nir.Linear(weight=np.ones((N, 27))),
        "lif": lif(N), "scale": nir.Scale(scale=ones), "threshold": nir.Threshold(threshold=ones),
        "delay": nir.Delay(delay=ones),
        "cuba": nir.CubaLIF(tau_syn=ones, tau_mem=ones, r=ones, v_leak=0 * ones, v_threshold=ones, w_in=ones),
        "integrator": nir.I(r=ones), "if": nir.IF(r=ones, v_threshold=ones),
        "li": nir.LI(tau=ones, r=ones, v_leak=0 * ones),
        "affine": nir.Affine(weight=np.ones((N, N)), bias=np.zeros(N)),
        "output": nir.Output(output_type=np.array([N])),
        "input1d": nir.Input(input_type=np.array([1, 8])),
        "conv1d": nir.Conv1d(input_shape=8, weight=np.ones((2, 1, 3)), stride=1, padding=0, dilation=1, groups=1,
                             bias=np.zeros(2)),
        "lif1d": lif(12), "output1d": nir.Output(output_type=np.array([12])),
    }
    chain = ["input", "conv", "lifc", "pool", "avg", "flat", "lin", "lif", "scale", "threshold", "delay", "cuba",
             "integrator", "if", "li", "affine", "output"]
    edges = list(zip(chain, chain[1:])) + [("input1d", "conv1d"), ("conv1d", "lif1d"), ("lif1d", "output1d")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("declared") / "every.nir"
    nir.write(str(path), every_family())
    with h5py.File(path, "r") as handle:
        declared.check_file(handle, path)  # the honest file passes
    return path


# (node, dataset, declared shape: each 1.2-3.2 GB, the shape the message must name as allowed)
CASES = [
    ("conv", "weight", (3, 2, 8000, 8000), "[C_out <= 108, C_in/groups <= 72, kernel_h <= 8, kernel_w <= 8]"),
    ("conv", "weight", (3, 20_000_000, 3, 3), "C_in/groups <= 72"),
    ("conv", "bias", (300_000_000,), "[3] (one value per output)"),
    ("conv1d", "weight", (2, 1, 200_000_000), "[C_out <= 12, C_in/groups <= 8, kernel <= 8]"),
    ("conv1d", "bias", (300_000_000,), "[2] (one value per output)"),
    ("lifc", "tau", (300_000_000,), "[108] (one value per neuron) or a scalar"),
    ("lif", "v_threshold", (20_000, 20_000), f"[{N}] (one value per neuron) or a scalar"),
    ("cuba", "w_in", (300_000_000,), f"[{N}] (one value per neuron)"),
    ("if", "r", (300_000_000,), f"[{N}] (one value per neuron)"),
    ("li", "tau", (300_000_000,), f"[{N}] (one value per neuron)"),
    ("integrator", "r", (300_000_000,), f"[{N}] (one value per neuron)"),
    ("lif1d", "v_leak", (300_000_000,), "[12] (one value per neuron)"),
    ("scale", "scale", (300_000_000,), f"[{N}] (one value per neuron)"),
    ("threshold", "threshold", (300_000_000,), f"[{N}] (one value per neuron)"),
    ("delay", "delay", (300_000_000,), f"[{N}] (one value per neuron)"),
    ("lin", "weight", (N, 150_000_000), f"[out <= {N}, in <= 27]"),
    ("affine", "weight", (N, 150_000_000), f"[out, in <= {N}]"),  # it feeds an Output: out is not bounded
    ("affine", "bias", (300_000_000,), f"[{N}] (one value per output)"),
    ("pool", "kernel_size", (300_000_000,), "at most 2 values"),
    ("avg", "stride", (300_000_000,), "at most 2 values"),
    ("flat", "input_type", (300_000_000,), "at most 64 values"),
    ("flat", "start_dim", (300_000_000,), "at most 1 value"),
    ("conv", "padding", (300_000_000,), "at most 2 values"),
    ("conv1d", "input_shape", (300_000_000,), "at most 1 value"),
    ("input", "shape", (300_000_000,), "at most 64 values"),
    ("output", "shape", (300_000_000,), "at most 64 values"),
]


def crafted(base, tmp_path, node: str, key: str, shape: tuple[int, ...]):
    path = tmp_path / f"{node}.{key}.nir"
    path.write_bytes(base.read_bytes())
    with h5py.File(path, "r+") as handle:
        group = handle[f"node/nodes/{node}"]
        if key in group:
            del group[key]
        chunks = tuple(min(n, 1 << 20) if i == len(shape) - 1 else 1 for i, n in enumerate(shape))
        group.create_dataset(key, shape=shape, dtype="f8" if np.prod(shape, dtype=float) < 4.2e8 else "f4",
                             compression="gzip", chunks=chunks)
    total = np.prod(shape, dtype=float) * (8 if np.prod(shape, dtype=float) < 4.2e8 else 4)
    assert 1e9 < total < declared.MAX_DATASET_BYTES  # only the node's own check can refuse it
    assert path.stat().st_size < 200_000
    return path


@pytest.mark.parametrize("node,key,shape,allowed", CASES, ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_a_huge_dataset_is_refused_naming_node_and_allowed_shape(base, tmp_path, monkeypatch, node, key, shape,
                                                                 allowed):
    path = crafted(base, tmp_path, node, key, shape)
    with h5py.File(path, "r") as handle, pytest.raises(NeurodeployError):
        declared.check_file(handle, path)  # refused from the declarations (else the reader would allocate GBs)
    monkeypatch.setattr(reader, "ISOLATE", False)  # in this process, so that tracemalloc sees the reads
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(NeurodeployError) as info:
            reader.read_file(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert elapsed < TIME_S and peak < PEAK_BYTES, (elapsed, peak)
    assert f"node '{node}'" in message and f"dataset '{key}'" in message, message
    assert f"declares shape {list(shape)}" in message and allowed in message, message
    assert "\n" not in message


def test_scalars_and_one_element_parameters_are_legal(tmp_path):
    """0-d and (1,) parameters (nir <= 1.0.7, norse) beside per-neuron ones, with a batch axis in Input."""
    path = tmp_path / "scalars.nir"
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1, 6])), "w": nir.Linear(weight=np.ones((5, 6))),
                                "lif": lif(5),
                                "output": nir.Output(output_type=np.array([1]))},  # a wrong Output type
                         edges=[("input", "w"), ("w", "lif"), ("lif", "output")], type_check=False)
    nir.write(str(path), graph)
    with h5py.File(path, "r+") as handle:
        group = handle["node/nodes/lif"]
        del group["tau"], group["v_leak"]
        group.create_dataset("tau", data=0.02)  # 0-d, as nir <= 1.0.7 wrote
        group.create_dataset("v_leak", data=np.zeros(1))
    assert reader.read_file(path).nodes
