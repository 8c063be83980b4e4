"""The torch kernel on a device beside the compiled (numba) kernel on the CPU, on the DVS network.

    .venv/bin/python benchmarks/bench_torch_kernel.py                        # cuda if torch sees one
    .venv/bin/python benchmarks/bench_torch_kernel.py --device cpu --batch 8 --steps 20 --torch-threads 1

Network: ``vision_graph()`` of benchmarks/conv_networks.py (2x128x128 input, three conv layers
with sum pooling, 102,411 neurons), compiled per target with --allow-degraded and 64 chips (as
bench_conv_scale.py does). Input: random ON/OFF events at ``--rate`` per pixel and step. Both
kernels record spikes only. Each is run once on two samples x two steps first (numba compiles
its kernels, torch initializes its device), then timed on the batch; the torch kernel's spikes
are checked equal to the numba kernel's on the samples both ran.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from conv_networks import events, neuron_count, vision_graph  # noqa: E402


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(torch.device(device))} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} torch threads (torch {torch.__version__})"


def timed(fn) -> tuple[float, dict]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def spikes_of(traces: dict) -> dict:
    return {k: v for k, v in traces.items() if k.startswith("spikes.")}


def measure(program, x: np.ndarray, device: str, numba_batch: int) -> dict:
    """Sample-steps/s of the numba kernel (CPU) and the torch kernel (``device``), spikes compared."""
    import torch

    from neurodeploy.emulator import run_program

    run_program(program, x[:2, :2], record=())  # the one-time numba compile
    run_program(program, x[:2, :2], record=(), device=device)
    numba_s, numba = timed(lambda: run_program(program, x[:numba_batch], record=()))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(device))
    torch_s, ours = timed(lambda: run_program(program, x, record=(), device=device))
    same = all(np.array_equal(v, ours[k][:numba_batch]) for k, v in spikes_of(numba).items())
    steps = x.shape[1]
    out = {"numba": numba_batch * steps / numba_s, "torch": x.shape[0] * steps / torch_s, "same": same,
           "spikes": sum(int(v.sum()) for v in spikes_of(ours).values())}
    if device.startswith("cuda"):
        out["peak_gib"] = torch.cuda.max_memory_allocated(torch.device(device)) / 2**30
    return out


def main() -> None:
    import numba
    import torch

    from neurodeploy.compiler.compile import Options, compile_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.10)
    parser.add_argument("--targets", default="loihi2,spinnaker,emulator")
    parser.add_argument("--numba-batch", type=int, help="samples the numba kernel runs (default: the whole batch)")
    parser.add_argument("--torch-threads", type=int, help="CPU threads of torch (default: torch's own choice)")
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    numba_batch = min(args.batch, args.numba_batch or args.batch)
    graph = vision_graph()
    x = events((2, 128, 128), args.batch, args.steps, args.rate, seed=1)
    print(f"DVS network ({neuron_count(graph):,} neurons), batch {args.batch} x {args.steps} steps at "
          f"{args.rate:.0%} input events")
    print(f"  torch kernel on {args.device}: {device_name(args.device)}")
    print(f"  numba kernel on the CPU: {numba.get_num_threads()} threads, {numba_batch} samples")
    print(f"  {'target':<10} {'numba sample-steps/s':>21} {'torch sample-steps/s':>21} {'torch/numba':>12}  same spikes")
    for target in [t for t in args.targets.split(",") if t]:
        program = compile_model(graph, Options(target=target, allow_degraded=True, chips=64)).program
        r = measure(program, x, args.device, numba_batch)
        peak = f", peak {r['peak_gib']:.1f} GiB on the device" if "peak_gib" in r else ""
        print(f"  {target:<10} {r['numba']:>21,.0f} {r['torch']:>21,.0f} {r['torch'] / r['numba']:>11.2f}x  "
              f"{'yes' if r['same'] else 'NO'} ({r['spikes']:,} spikes{peak})")


if __name__ == "__main__":
    main()
