"""Emulator speed, measured side by side in one run (this machine is shared and noisy).

    python benchmarks/bench_emulator.py [--steps 10000] [--batch 256]

Network: 64 inputs -> 128 recurrent LIF -> 8 LIF (seeded random weights, 10% input rate),
compiled for loihi2. Reports steps/s for one sample, sample-steps/s for a batch, for the
event-driven (numba) and the dense (numpy) kernel, and the ratio against norse's float
forward pass of the same network. Then the same network compiled for spinnaker: the
event-driven (numba) and the readable numpy kernel of emulator/spinnaker.py, on the same inputs.
"""
from __future__ import annotations

import argparse
import time
import warnings

import nir
import numpy as np

from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.emulator import spinnaker
from neurodeploy.emulator.fixed_point import run


def network(seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    lif = lambda n: nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n),  # noqa: E731
                            v_threshold=np.ones(n), v_reset=np.zeros(n))
    nodes = {
        "input": nir.Input(input_type=np.array([64])),
        "w_in": nir.Linear(weight=rng.normal(0, 1.2, (128, 64))),
        "hidden": lif(128),
        "w_rec": nir.Linear(weight=rng.normal(0, 0.3, (128, 128))),
        "w_out": nir.Linear(weight=rng.normal(0, 1.0, (8, 128))),
        "out": lif(8),
        "output": nir.Output(output_type=np.array([8])),
    }
    edges = [("input", "w_in"), ("w_in", "hidden"), ("hidden", "w_rec"), ("w_rec", "hidden"),
             ("hidden", "w_out"), ("w_out", "out"), ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": 1e-3})


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def norse_forward(graph: nir.NIRGraph, x: np.ndarray) -> float:
    import torch
    from norse.torch import LIFBoxParameters
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step

    torch.set_num_threads(1)
    w_in = torch.tensor(graph.nodes["w_in"].weight, dtype=torch.float32)
    w_rec = torch.tensor(graph.nodes["w_rec"].weight, dtype=torch.float32)
    w_out = torch.tensor(graph.nodes["w_out"].weight, dtype=torch.float32)
    p = LIFBoxParameters(tau_mem_inv=torch.tensor(50.0))
    xs = torch.tensor(x, dtype=torch.float32)

    def go():
        with torch.no_grad():
            b = xs.shape[0]
            s1, s2 = LIFBoxFeedForwardState(torch.zeros(b, 128)), LIFBoxFeedForwardState(torch.zeros(b, 8))
            z = torch.zeros(b, 128)
            for t in range(xs.shape[1]):
                z, s1 = lif_box_feed_forward_step(xs[:, t] @ w_in.T + z @ w_rec.T, s1, p)
                _, s2 = lif_box_feed_forward_step(z @ w_out.T, s2, p)

    return timed(go, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batch-steps", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    graph = network()
    program = compile_model(graph, Options(target="loihi2")).program
    rng = np.random.default_rng(1)
    one = (rng.random((1, args.steps, 64)) < 0.1).astype(np.int64)
    many = (rng.random((args.batch, args.batch_steps, 64)) < 0.1).astype(np.int64)
    run(program, one[:, :10], record=())  # compile (or load from numba's cache) the kernel once

    same = all(np.array_equal(a, b) for a, b in zip(
        run(program, one[:, :2000], record=("v",)).values(), run(program, one[:, :2000], record=("v",), fast=False).values()))
    t_fast = timed(lambda: run(program, one, record=()))
    t_numpy = timed(lambda: run(program, one, record=(), fast=False), 1)
    t_batch_fast = timed(lambda: run(program, many, record=()), 1)
    t_batch_numpy = timed(lambda: run(program, many, record=(), fast=False), 1)
    t_norse_one = norse_forward(graph, one.astype(np.float32))
    t_norse_batch = norse_forward(graph, many.astype(np.float32))
    spikes = int(run(program, one, record=())["spikes.hidden"].sum())
    print(f"network: 64 -> 128 recurrent LIF -> 8, loihi2 program; {spikes} hidden spikes in {args.steps} steps")
    print(f"fast and numpy kernels identical on 2000 steps: {same}")
    print(f"one sample, {args.steps} steps:")
    print(f"  event-driven (numba): {args.steps / t_fast:12,.0f} steps/s")
    print(f"  dense (numpy):        {args.steps / t_numpy:12,.0f} steps/s")
    print(f"  norse float (torch):  {args.steps / t_norse_one:12,.0f} steps/s   ratio emulator/norse {t_norse_one / t_fast:.1f}x")
    n = args.batch * args.batch_steps
    print(f"batch {args.batch} x {args.batch_steps} steps:")
    print(f"  event-driven (numba): {n / t_batch_fast:12,.0f} sample-steps/s")
    print(f"  dense (numpy):        {n / t_batch_numpy:12,.0f} sample-steps/s")
    print(f"  norse float (torch):  {n / t_norse_batch:12,.0f} sample-steps/s   ratio emulator/norse "
          f"{t_norse_batch / min(t_batch_fast, t_batch_numpy):.1f}x")
    activity_sweep(program)
    spinnaker_speed(graph, one, many)


def spinnaker_speed(graph: nir.NIRGraph, one: np.ndarray, many: np.ndarray) -> None:
    """The spinnaker kernel's compiled and numpy paths on the same network and inputs."""
    program = compile_model(graph, Options(target="spinnaker")).program
    sp_run = spinnaker.run
    sp_run(program, one[:, :10], record=())  # compile (or load from numba's cache) the kernel once
    same = all(np.array_equal(a, b) for a, b in zip(
        sp_run(program, one[:, :2000], record=("v", "i")).values(),
        sp_run(program, one[:, :2000], record=("v", "i"), fast=False).values()))
    t_fast = timed(lambda: sp_run(program, one, record=()))
    t_numpy = timed(lambda: sp_run(program, one, record=(), fast=False), 1)
    t_batch_fast = timed(lambda: sp_run(program, many, record=()), 1)
    t_batch_numpy = timed(lambda: sp_run(program, many, record=(), fast=False), 1)
    steps = one.shape[1]
    spikes = int(sp_run(program, one, record=())["spikes.hidden"].sum())
    print(f"spinnaker program (IF_curr_delta, 16-bit words): {spikes} hidden spikes in {steps} ticks")
    print(f"fast and numpy kernels identical on 2000 ticks (spikes, v, i): {same}")
    print(f"  one sample, {steps} ticks:  event-driven (numba) {steps / t_fast:12,.0f} steps/s   "
          f"numpy {steps / t_numpy:10,.0f} steps/s   {t_numpy / t_fast:5.0f}x")
    n = many.shape[0] * many.shape[1]
    print(f"  batch {many.shape[0]} x {many.shape[1]} ticks: event-driven (numba) {n / t_batch_fast:12,.0f} "
          f"sample-steps/s   numpy {n / t_batch_numpy:10,.0f} sample-steps/s   {t_batch_numpy / t_batch_fast:5.0f}x")


def activity_sweep(program, batch: int = 32, steps: int = 200) -> None:
    """Both kernels across input rates: is the event-driven one still faster when most inputs fire?"""
    print(f"activity sweep, batch {batch} x {steps} steps (sample-steps/s):")
    print("  input rate  hidden rate  event-driven       dense (numpy)  ratio")
    rng = np.random.default_rng(2)
    for rate in (0.02, 0.1, 0.3, 0.6, 1.0):
        x = (rng.random((batch, steps, 64)) < rate).astype(np.int64)
        t_fast = timed(lambda: run(program, x, record=()))
        t_numpy = timed(lambda: run(program, x, record=(), fast=False), 1)
        hidden = float(run(program, x, record=())["spikes.hidden"].mean())
        n = batch * steps
        print(f"  {rate:10.2f}  {hidden:11.2f}  {n / t_fast:12,.0f}  {n / t_numpy:18,.0f}  {t_numpy / t_fast:5.0f}x")


if __name__ == "__main__":
    main()
