"""Emulator vs Lava's fixed_pt CPU model on the same loihi2 program, side by side.

    python benchmarks/bench_lava.py [--neurons 1000] [--steps 1000]

Network: 1000 inputs -> 1000 LIF (dense, seeded random weights, 5% input rate), compiled for
loihi2. Lava's time is the difference between a run of `steps` and a run of 10 steps, so the
runner's start-up and network build (paid once per process) is not charged to either side;
no Monitors are attached beyond the spikes of the LIF layer. Checks identical spikes.
"""
from __future__ import annotations

import argparse
import time
import warnings

import nir
import numpy as np

from neurodeploy.backends.lava import run as lava_run
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.emulator.fixed_point import run as emulate


def network(n_in: int, n: int, seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "w": nir.Linear(weight=rng.normal(0.0, 0.15, (n, n_in))),
        "lif": nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n)),
        "output": nir.Output(output_type=np.array([n])),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "w"), ("w", "lif"), ("lif", "output")],
                        metadata={"neurodeploy.dt": 1e-3})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    program = compile_model(network(args.inputs, args.neurons), Options(target="loihi2")).program
    x = (np.random.default_rng(1).random((1, args.steps, args.inputs)) < 0.05).astype(np.int64)
    emulate(program, x[:, :10], record=())  # compile the numba kernel once
    start = time.perf_counter()
    ours = emulate(program, x, record=())
    t_emulator = time.perf_counter() - start
    start = time.perf_counter()
    lava_run(program, x[:, :10], record=())
    t_short = time.perf_counter() - start
    start = time.perf_counter()
    theirs = lava_run(program, x, record=())
    t_long = time.perf_counter() - start
    t_lava = max(t_long - t_short, 1e-9) * args.steps / (args.steps - 10)
    same = np.array_equal(ours["spikes.lif"], theirs["spikes.lif"])
    print(f"network: {args.inputs} inputs -> {args.neurons} LIF, {args.steps} steps, loihi2 program; "
          f"{int(ours['spikes.lif'].sum())} spikes; identical spikes: {same}")
    print(f"  emulator (event-driven): {t_emulator:.3f} s  ({args.steps / t_emulator:,.0f} steps/s)")
    print(f"  Lava fixed_pt:           {t_lava:.3f} s  ({args.steps / t_lava:,.0f} steps/s; "
          f"process start-up and build {t_short:.1f} s not counted)")
    print(f"  ratio: emulator is {t_lava / t_emulator:.0f}x faster")


if __name__ == "__main__":
    main()
