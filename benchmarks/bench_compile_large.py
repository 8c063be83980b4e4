"""Compile a generated 1M-neuron, 100M-synapse sparse network for loihi2; report time and memory.

    /usr/bin/time -v python benchmarks/bench_compile_large.py [--neurons 1000000] [--fan-in 103]

The network is built as NetworkIR directly (NIR stores weights as dense matrices: 16 GB of
float64 at this size): 2,000 inputs -> 1,000,000 LIF neurons, each with `fan-in` random
synapses. Reports the time of each stage and the peak resident memory of the process.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse

from neurodeploy.format import artifact
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.compiler.ir import InputPort, NetworkIR, Op, Population, Projection
from neurodeploy.semantics import Semantics


def network(neurons: int, inputs: int, fan_in: int, seed: int = 0) -> NetworkIR:
    rng = np.random.default_rng(seed)
    nnz = neurons * fan_in
    indptr = np.arange(0, nnz + 1, fan_in, dtype=np.int64)
    indices = rng.integers(0, inputs, size=nnz, dtype=np.int32)
    data = rng.normal(0.0, 0.3, size=nnz).astype(np.float32)
    matrix = scipy.sparse.csr_matrix((data, indices, indptr), shape=(neurons, inputs))
    matrix.sum_duplicates()
    ones = np.ones(neurons)
    pop = Population("lif", "LIF", (neurons,), {"tau": ones * 0.02, "r": ones, "v_leak": ones * 0,
                                                "v_threshold": ones, "v_reset": ones * 0}, np.zeros(neurons))
    op = Op("sparse", "synapses", (inputs,), (neurons,), {"matrix": matrix, "density": fan_in / inputs})
    return NetworkIR({"input": InputPort("input", (inputs,))}, {"lif": pop},
                     [Projection("synapses", "input", "lif", [op], False)], {"output": "lif"},
                     Semantics(1e-3, "euler", "zero", 1.0), "<generated>")


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--neurons", type=int, default=1_000_000)
    parser.add_argument("--inputs", type=int, default=2_000)
    parser.add_argument("--fan-in", type=int, default=103)
    parser.add_argument("--chips", type=int, default=16)
    args = parser.parse_args()
    start = time.perf_counter()
    net = network(args.neurons, args.inputs, args.fan_in)
    synapses = net.projections[0].ops[0].params["matrix"].nnz
    t_gen = time.perf_counter() - start
    start = time.perf_counter()
    compiled = compile_model(net, Options(target="loihi2", chips=args.chips))
    t_compile = time.perf_counter() - start
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.loihi2.ndp"
        artifact.write(compiled.to_artifact(), path)
        size = path.stat().st_size
    t_write = time.perf_counter() - start
    m = compiled.mapping
    print(f"network: {args.neurons:,} LIF neurons, {synapses:,} synapses ({args.inputs:,} inputs)")
    print(f"generate {t_gen:.1f}s, compile (quantize + map) {t_compile:.1f}s, write artifact {t_write:.1f}s "
          f"({size / 2**20:.0f} MiB)")
    print(f"mapping: {len(m.cores)} cores on {m.chips_used} chips (of {m.chips_available}), fits: {m.fits}")
    print(f"health: {len(compiled.health.severe)} severe, {len(compiled.health.warnings)} warnings")
    print(f"peak resident memory: {peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
