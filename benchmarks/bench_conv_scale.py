"""Event-camera convolutional networks: compile time, peak memory and artifact size per target,
and emulation speed beside norse's float forward pass.

    .venv/bin/python benchmarks/bench_conv_scale.py                # both networks, every target
    .venv/bin/python benchmarks/bench_conv_scale.py --nets "" --emulate --repeat 3   # emulation speed only

Networks (benchmarks/conv_networks.py): ``dvs`` 2x128x128 input (DVS Gesture), 3 conv layers
with sum pooling, 102,411 neurons; ``hd`` 2x720x1280 input (an HD event camera), channels
(8, 16, 16), 3.2M neurons. Each compile runs in its own process, so its peak resident memory
(ru_maxrss of that process, the NIR graph included) belongs to that compile alone. Compiled
with --allow-degraded: the random readout has no calibration data (its worst-case range zeroes
most 8-bit weights, which compile would otherwise refuse, rightly).
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from conv_networks import events, neuron_count, vision_graph  # noqa: E402

NETS = {"dvs": dict(height=128, width=128, channels=(16, 32, 16)),
        "hd": dict(height=720, width=1280, channels=(8, 16, 16))}
TARGETS = {"dvs": ("loihi2", "spinnaker", "emulator"), "hd": ("emulator", "spinnaker", "loihi2")}


def compile_one(net: str, target: str, chips: int | None = None) -> dict:
    """Build the graph, compile it and write the artifact; the numbers of this process."""
    from neurodeploy.format import artifact
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.errors import NeurodeployError

    start = time.perf_counter()
    graph = vision_graph(**NETS[net])
    out = {"net": net, "target": target, "chips_given": chips, "neurons": neuron_count(graph),
           "build_s": time.perf_counter() - start}
    start = time.perf_counter()
    try:
        compiled = compile_model(graph, Options(target=target, allow_degraded=True, chips=chips))
    except NeurodeployError as exc:
        out.update(compile_s=time.perf_counter() - start, error=str(exc))
    else:
        out["compile_s"] = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "net.ndp"
            start = time.perf_counter()
            artifact.write(compiled.to_artifact(), path)
            out.update(write_s=time.perf_counter() - start, artifact_bytes=path.stat().st_size)
        out.update(cores=len(compiled.mapping.cores), chips=compiled.mapping.chips_used,
                   synapses=int(sum(c.synapses for c in compiled.program.connections)))
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def _run_one(net: str, target: str, chips: int | None) -> dict | None:
    command = [sys.executable, __file__, "--one", net, target] + ([str(chips)] if chips else [])
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{net:<4} {target:<10} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(r: dict) -> str:
    size = f"{r['artifact_bytes'] / 1e6:12.2f}" if "artifact_bytes" in r else f"{'-':>12}"
    label = r["target"] + (f" --chips {r['chips_given']}" if r.get("chips_given") else "")
    return (f"{r['net']:<4} {label:<22} {r['neurons']:>10,} {r.get('synapses', 0):>12,} {r['compile_s']:>10.1f} "
            f"{r['peak_rss_gib']:>9.2f} {size} {r.get('cores', 0):>6}  {r.get('error', 'ok')}")


def compile_table(nets: list[str]) -> None:
    """One row per net and target; where only the chip count is exceeded, a second row compiled
    with the chips the error names."""
    print(f"{'net':<4} {'target':<22} {'neurons':>10} {'synapses':>12} {'compile s':>10} {'peak GiB':>9} "
          f"{'artifact MB':>12} {'cores':>6}  result")
    for net in nets:
        for target in TARGETS[net]:
            r = _run_one(net, target, None)
            if r is None:
                continue
            print(_row(r))
            needed = re.search(r"pass --chips (\d+)", r.get("error", ""))
            if needed:
                again = _run_one(net, target, int(needed.group(1)))
                if again is not None:
                    print(_row(again))


def norse_forward(graph, x: np.ndarray) -> float:
    """Seconds for norse's float forward pass of the same network (LIF box neurons, torch conv)."""
    import torch
    import torch.nn.functional as F
    from norse.torch import LIFBoxParameters
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step

    n = graph.nodes
    convs = [(torch.tensor(n[k].weight, dtype=torch.float32), tuple(n[k].stride), tuple(n[k].padding))
             for k in ("conv1", "conv2", "conv3")]
    fc = torch.tensor(n["fc"].weight, dtype=torch.float32)
    p = LIFBoxParameters(tau_mem_inv=torch.tensor(100.0))
    xs = torch.tensor(x)
    start = time.perf_counter()
    with torch.no_grad():
        states = [None] * 4
        for t in range(xs.shape[1]):
            z = xs[:, t]
            for i, (w, stride, padding) in enumerate(convs):
                if i:
                    z = F.avg_pool2d(z, 2) * 4
                drive = F.conv2d(z, w, stride=stride, padding=padding)
                states[i] = states[i] or LIFBoxFeedForwardState(torch.zeros_like(drive))
                z, states[i] = lif_box_feed_forward_step(drive, states[i], p)
            drive = (F.avg_pool2d(z, 2) * 4).flatten(1) @ fc.T
            states[3] = states[3] or LIFBoxFeedForwardState(torch.zeros_like(drive))
            _, states[3] = lif_box_feed_forward_step(drive, states[3], p)
    return time.perf_counter() - start


def _rates(n: int, seconds: list[float]) -> str:
    """Sample-steps/s of the timed runs: best, median."""
    return f"best {n / min(seconds):8,.0f}  median {n / float(np.median(seconds)):8,.0f}"


def emulate(batch: int, steps: int, rate: float, targets: tuple[str, ...], repeat: int) -> None:
    """Emulation speed per target beside norse's float forward pass. Each is run once at full size
    untimed ("first": the process's first touch of its memory, which costs this virtual machine
    about a second per GB, falls on whichever runs first), then the timed runs go round-robin over
    norse and the targets ``repeat`` times, so that a change in the machine's load meets them all;
    best and median of those."""
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.emulator import run_program

    graph = vision_graph(**NETS["dvs"])
    x = events((2, 128, 128), batch, steps, rate, seed=1)
    n = batch * steps
    runs = {"norse": lambda: norse_forward(graph, x)}
    programs = {}
    for target in targets:
        programs[target] = compile_model(graph, Options(target=target, allow_degraded=True, chips=64)).program
        run_program(programs[target], {"input": x[:1, :2]}, record=())  # the one-time kernel compile
        runs[target] = lambda program=programs[target]: _timed_run(program, x)
    took: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat + 1):
        for name, run in runs.items():
            took[name].append(run())
    print(f"DVS network, batch {batch} x {steps} steps at {rate:.0%} input events, {repeat} timed runs each "
          f"(round-robin):")
    print(f"  norse float forward (torch, {__import__('torch').get_num_threads()} threads): "
          f"{_rates(n, took['norse'][1:])} sample-steps/s  (first {n / took['norse'][0]:8,.0f})")
    norse = float(np.median(took["norse"][1:]))
    for target in targets:
        traces = run_program(programs[target], {"input": x}, record=())
        per_step = {k[len("spikes."):]: int(v.sum()) / n for k, v in traces.items() if k.startswith("spikes.")}
        spikes = ", ".join(f"{k} {v:,.0f}" for k, v in per_step.items())
        print(f"  emulator, {target:<10} {_rates(n, took[target][1:])} sample-steps/s  (first "
              f"{n / took[target][0]:8,.0f}; {norse / float(np.median(took[target][1:])):.2f}x norse; spikes per "
              f"sample-step: {spikes})")


def _timed_run(program, x: np.ndarray) -> float:
    """Seconds for one emulation of ``x`` (spikes only, as a user's run records them)."""
    from neurodeploy.emulator import run_program

    start = time.perf_counter()
    run_program(program, {"input": x}, record=())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default="dvs,hd", help="comma-separated: dvs, hd")
    parser.add_argument("--emulate", action="store_true", help="also measure emulation speed (DVS network)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.10)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per target after an untimed first run")
    parser.add_argument("--targets", default="loihi2,spinnaker,emulator", help="emulation targets, in this order")
    parser.add_argument("--one", nargs="+", metavar="NET TARGET [CHIPS]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        net, target, *chips = args.one
        print(json.dumps(compile_one(net, target, int(chips[0]) if chips else None)))
        return
    compile_table([n for n in args.nets.split(",") if n])
    if args.emulate:
        emulate(args.batch, args.steps, args.rate, tuple(args.targets.split(",")), args.repeat)


if __name__ == "__main__":
    main()
