"""Conv mapping on Loihi 2: cores and map time with 2-D tiles against 1-D strips, side by side.

    .venv/bin/python benchmarks/bench_conv_mapping.py               # dvs, events_motion channel sweep
    .venv/bin/python benchmarks/bench_conv_mapping.py --hd          # also the 2x720x1280 network

Each network is compiled once (quantization included); the mapper then runs on the compiled
program twice, once with the target as described (loihi2 maps conv-fed layers as tiles) and
once with tiles switched off (``Target.conv_tiles = False``: 1-D strips, as before tiles).
``events_motion`` here is the zoo model's shape (2x64x64 -> conv 8@5x5/2 -> LIF -> sum pool 2
-> conv C@3x3 -> LIF -> sum pool 2 -> dense 6) with random weights, conv2 at stride 1 and
C = 4..16 channels: the case whose strip mapping jumped from 65 to 129 cores.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import nir
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from conv_networks import _conv, _lif, _pool, vision_graph  # noqa: E402


def events_motion_graph(channels: int, seed: int = 0) -> nir.NIRGraph:
    """The zoo's events_motion shape with conv2 at stride 1 and ``channels`` output channels."""
    rng = np.random.default_rng(seed)
    nodes: dict = {"input": nir.Input(input_type=np.array([2, 64, 64]))}
    nodes["conv1"] = _conv(rng, 2, 8, 5, 2, 2, (64, 64))
    nodes["lif1"] = _lif((8, 32, 32))
    nodes["pool1"] = _pool()
    nodes["conv2"] = _conv(rng, 8, channels, 3, 1, 1, (16, 16))
    nodes["lif2"] = _lif((channels, 16, 16))
    nodes["pool2"] = _pool()
    flat = channels * 8 * 8
    nodes["flatten"] = nir.Flatten(input_type={"input": np.array([channels, 8, 8])}, start_dim=0, end_dim=-1)
    nodes["fc"] = nir.Affine(weight=rng.normal(0.0, 1.0 / math.sqrt(flat), (6, flat)), bias=np.zeros(6))
    nodes["li"] = nir.LI(tau=np.full(6, 0.01), r=np.ones(6), v_leak=np.zeros(6))
    nodes["output"] = nir.Output(output_type=np.array([6]))
    order = ["input", "conv1", "lif1", "pool1", "conv2", "lif2", "pool2", "flatten", "fc", "li", "output"]
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])), type_check=False)
    graph.metadata.update({"neurodeploy.dt": 1e-3, "neurodeploy.integrator": "euler", "neurodeploy.reset": "zero",
                           "neurodeploy.spike_amplitude": 1.0})
    return graph


def compare(label: str, graph: nir.NIRGraph, drop_readout: bool = False) -> None:
    """Compile once, then map with tiles and with strips; one line each. ``drop_readout``: compile
    for the emulator profile (same connections) and map without the dense readout, which no
    Loihi 2 core can hold at HD size (one neuron hearing 230k sources)."""
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.compiler.mapping import map_program
    from neurodeploy.targets import get as get_target

    if drop_readout:
        program = compile_model(graph, Options(target="emulator", allow_degraded=True)).program
        last = program.populations[-1].name
        program = dataclasses.replace(program, populations=program.populations[:-1],
                                      connections=[c for c in program.connections if c.target != last])
    else:
        program = compile_model(graph, Options(target="loihi2", allow_degraded=True, chips=4096)).program
    target = get_target("loihi2")
    variants = [("tiles", target)]
    if any(f.name == "conv_tiles" for f in dataclasses.fields(target)):
        variants.append(("strips", dataclasses.replace(target, conv_tiles=False)))
    for name, t in variants:
        start = time.perf_counter()
        mapping = map_program(program, t, chips=4096)
        took = time.perf_counter() - start
        per_pop = {p.name: sum(c.population == p.name for c in mapping.cores) for p in program.populations}
        print(f"{label:<24} {name:<7} {len(mapping.cores):>6} cores {mapping.chips_used:>4} chips "
              f"{took:7.2f} s  {per_pop}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hd", action="store_true", help="also map the 2x720x1280 network (3M neurons)")
    parser.add_argument("--channels", default="4,8,12,14,16", help="events_motion conv2 channel counts")
    args = parser.parse_args()
    compare("dvs 2x128x128", vision_graph())
    for c in (int(x) for x in args.channels.split(",") if x):
        compare(f"events_motion conv2 {c}ch", events_motion_graph(c))
    if args.hd:
        compare("hd 2x720x1280 (no readout)", vision_graph(720, 1280, (8, 16, 16)), drop_readout=True)


if __name__ == "__main__":
    main()
