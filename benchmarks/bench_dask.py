"""Sharded emulation on Dask: speed beside the in-process kernel, and the client's memory as the data grows.

    .venv/bin/python benchmarks/bench_dask.py [--runs digits_mlp:4096 events_motion:256 ...] [--target loihi2]

1. Speed, for each ``MODEL:SAMPLES`` of ``--runs`` (the zoo model's test set repeated), spikes only:
   - the in-process kernel (``run_program``; numba's threads, one per core) and with one thread;
   - ``neurodeploy run`` in one process (reads the input, writes the .npz);
   - ``neurodeploy run --scheduler`` on a warm local cluster of 1 and of 2 single-threaded workers
     (cluster start-up reported apart; one warm-up run first loads numba's cache in the workers).
2. The client's peak memory (its VmHWM, a separate process per run) for ``run --record v``
   over the first run's samples and 4x as many: one process vs ``--workers 2`` (shards on disk).
3. ``--profile-memory``: only the client's peak memory of ``profile --json`` over the first run's
   samples and 4x as many: one process vs ``--workers 2`` (shards reduced on the workers).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # conv_networks, beside this script
DEFAULT_RUNS = [("digits_mlp", 4096), ("events_motion", 256), ("dvs", 256), ("digits_mlp", 32768), ("events_motion", 1024)]


# "dvs": the event-camera network of benchmarks/conv_networks.py (2x128x128 input, 3 conv layers, 75k
# neurons), on random events at 10% per pixel and step, DVS_STEPS steps per sample.
DVS_STEPS, DVS_RATE = 25, 0.10


def _inputs(model: str, samples: int, path: Path, dtype: str = "float32") -> None:
    """The input file: the zoo model's test set repeated (float32, as the zoo ships it), or random
    events for ``dvs``; saved as ``dtype``."""
    if model == "dvs":
        from conv_networks import events

        x = events((2, 128, 128), samples, DVS_STEPS, DVS_RATE, seed=1)
    else:
        from neurodeploy.models import data

        x, _ = data.test_set(model)
        x = np.concatenate([x] * -(-samples // x.shape[0]))[:samples]
    np.savez(path, input=x.astype(dtype))


def _compile(model: str, target: str, folder: Path) -> Path:
    from neurodeploy import models
    from neurodeploy.cli import main as cli

    ndp = folder / f"{model}.{target}.ndp"
    if model == "dvs":
        from conv_networks import vision_graph

        from neurodeploy.compiler.compile import Options, compile_model
        from neurodeploy.format import artifact

        compiled = compile_model(vision_graph(), Options(target=target, allow_degraded=True))
        artifact.write(compiled.to_artifact(ndp), ndp)
        return ndp
    assert cli.main(["compile", str(models.path(model)), "--target", target, "-o", str(ndp)]) == 0
    return ndp


def _timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _kernel_times(ndp: Path, inputs: Path) -> dict[str, float]:
    import numba

    from neurodeploy.format import artifact
    from neurodeploy.emulator import run_program
    from neurodeploy.format.program import from_manifest

    art = artifact.read(ndp)
    program = from_manifest(art.manifest["program"], art.arrays)
    x = np.load(inputs)["input"]
    run_program(program, x[:8], record=())  # compile / load the kernel
    threads = numba.get_num_threads()
    out = {f"kernel, in process ({threads} numba threads)": _timed(lambda: run_program(program, x, record=()))}
    numba.set_num_threads(1)
    out["kernel, in process (1 numba thread)"] = _timed(lambda: run_program(program, x, record=()))
    numba.set_num_threads(threads)
    return out


def _cli_times(ndp: Path, inputs: Path, folder: Path) -> dict[str, float]:
    from distributed import Client

    from neurodeploy.cli import main as cli
    from neurodeploy.sharding.cluster import local_cluster

    run = ["run", str(ndp), "--input", str(inputs), "-o", str(folder / "out.npz")]
    out = {"`run`, one process": _timed(lambda: cli.main(run))}
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    out["`run`, one process, 1 numba thread"] = _timed(lambda: cli.main(run))
    numba.set_num_threads(threads)
    for workers in (1, 2):
        start = time.perf_counter()
        with local_cluster(workers) as cluster, Client(cluster):
            out[f"(local cluster of {workers} started in)"] = time.perf_counter() - start
            sharded = run + ["--scheduler", cluster.scheduler_address]  # the default shard size
            cli.main(sharded)  # warm-up: numba's cache loaded in every worker
            out[f"`run --scheduler`, {workers} worker(s) x 1 thread"] = _timed(lambda: cli.main(sharded))
    return out


# The peak is VmHWM (this process image's high-water mark, in kB), not ru_maxrss: Linux keeps
# ru_maxrss across fork and exec, so a child would report at least the benchmark's own size.
_HWM = "int(next(x for x in open('/proc/self/status') if x.startswith('VmHWM')).split()[1])"
_PEAK = f"""
import sys
from neurodeploy.cli import main as cli
code = cli.main(sys.argv[1:])
print("PEAK", {_HWM}, code)
"""


# The earlier `profile --workers` client, for comparison: every shard's traces gathered and concatenated
# here, then counted at once (``profile(traces=...)``). ARGS: artifact, input, shard size.
_GATHERED = f"""
import os, sys
import numpy as np
from neurodeploy.analysis.profile import profile, record_of
from neurodeploy.cli.shard import _gather
from neurodeploy.format import artifact
from neurodeploy.format.npzio import read_inputs
from neurodeploy.format.program import from_manifest
from neurodeploy.sharding import shard
from neurodeploy.sharding.cluster import Where
ndp, inp, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
art = artifact.read(ndp)
program = from_manifest(art.manifest["program"], art.arrays)
inputs = read_inputs(inp, dict(program.inputs))
keys = shard.input_keys(inp, program.inputs)
samples, _ = shard.input_extent(inp, keys, program.inputs)
spec = shard.RunSpec(os.path.abspath(ndp), art.content_hash, os.path.abspath(inp), tuple(keys.items()),
                     record_of(program), "pad", overflow=True)
results = _gather(Where(2, None), shard.run_shard, spec, shard.plan(samples, size), samples)
traces = {{k: np.concatenate([r.arrays[k] for r in results]) for k in results[0].arrays}}
profile(art, inputs, traces=traces)
print("PEAK", {_HWM}, 0)
"""


def _peak_mb(args: list[str], script: str = _PEAK) -> float:
    """Peak resident memory of a client process running ``neurodeploy ARGS`` (MB)."""
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("PEAK")][-1].split()
    assert line[2] == "0", done.stderr
    return int(line[1]) / 1024


def _memory(model: str, ndp: Path, samples: int, folder: Path) -> list[tuple[int, float, float]]:
    rows = []
    for n in (samples, 4 * samples):
        inputs = folder / f"in{n}.npz"
        _inputs(model, n, inputs)
        run = ["run", str(ndp), "--input", str(inputs), "-o", str(folder / "mem.npz"), "--record", "v"]
        rows.append((n, _peak_mb(run), _peak_mb(run + ["--workers", "2", "--shard-size", "256"])))
    return rows


def _profile_memory(model: str, target: str, samples: int, folder: Path) -> list[tuple[int, float, float, float]]:
    """Client peak MB of ``profile`` at ``samples`` and 4x: (samples, one process, --workers 2, the
    earlier --workers client that gathered every shard's traces)."""
    ndp = _compile(model, target, folder)
    rows = []
    for n in (samples, 4 * samples):
        inputs = folder / f"in{n}.npz"
        _inputs(model, n, inputs)
        prof = ["profile", str(ndp), "--input", str(inputs), "--json", str(folder / "p.json")]
        rows.append((n, _peak_mb(prof), _peak_mb(prof + ["--workers", "2", "--shard-size", "256"]),
                     _peak_mb([str(ndp), str(inputs), "256"], _GATHERED)))
    return rows


def _print_profile_memory(model: str, target: str, rows: list[tuple[int, float, float, float]]) -> None:
    print(f"client peak memory, {model} on {target}, `profile --json` (MB):")
    print(f"  {'samples':>8} {'one process':>12} {'--workers 2':>12} {'traces gathered':>16}")
    for n, one, sharded, gathered in rows:
        print(f"  {n:>8} {one:>12.0f} {sharded:>12.0f} {gathered:>16.0f}")
    print(json.dumps({"profile_memory_mb": rows}))


def _run_spec(text: str) -> tuple[str, int]:
    model, _, samples = text.partition(":")
    return model, int(samples or 4096)


def _speed(model: str, samples: int, target: str, folder: Path, dtype: str) -> tuple[Path, int, dict[str, float]]:
    ndp = _compile(model, target, folder)
    inputs = folder / f"{model}.in.npz"
    _inputs(model, samples, inputs, dtype)
    steps = int(np.load(inputs)["input"].shape[1])
    return ndp, steps, {**_kernel_times(ndp, inputs), **_cli_times(ndp, inputs, folder)}


def _default_shard(ndp: Path, samples: int, steps: int) -> int:
    from neurodeploy.format import artifact
    from neurodeploy.format.program import from_manifest
    from neurodeploy.sharding import shard

    art = artifact.read(ndp)
    return shard.default_size(samples, shard.work_per_sample(from_manifest(art.manifest["program"], art.arrays), steps))


def _print_speed(model: str, target: str, samples: int, steps: int, times: dict[str, float],
                 shard_samples: int) -> None:
    print(f"\n{model} on {target}: {samples} samples x {steps} steps, spikes only (best of 3), "
          f"shards of {shard_samples} (the default)")
    for label, seconds in times.items():
        rate = "" if label.startswith("(") else f"  {samples * steps / seconds:>12,.0f} sample-steps/s"
        print(f"  {label:<48} {seconds:8.2f} s{rate}")
    one, two = times["`run --scheduler`, 1 worker(s) x 1 thread"], times["`run --scheduler`, 2 worker(s) x 1 thread"]
    single, run_single = times["kernel, in process (1 numba thread)"], times["`run`, one process, 1 numba thread"]
    print(f"  2 workers vs 1: {one / two:.2f}x; 1 worker vs the in-process kernel on 1 thread: {one / single:.2f}x "
          f"the time, vs `run` on 1 thread: {one / run_single:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_dask.py")
    parser.add_argument("--runs", nargs="+", type=_run_spec, default=DEFAULT_RUNS,
                        help="MODEL:SAMPLES pairs, measured one after the other in this run (default: the issue's "
                             "sizes, then 8x and 4x them, where the fixed cost of a command weighs less)")
    parser.add_argument("--target", default="loihi2")
    parser.add_argument("--input-dtype", default="float32", choices=["float32", "uint8"],
                        help="how the input files store their spike counts (the zoo ships float32)")
    parser.add_argument("--no-memory", action="store_true", help="skip the client memory measurement")
    parser.add_argument("--profile-memory", action="store_true",
                        help="only the client's peak memory of `profile` over the first run's samples and 4x")
    args = parser.parse_args(argv)
    if args.profile_memory:
        model, samples = args.runs[0]
        with tempfile.TemporaryDirectory() as tmp:
            _print_profile_memory(model, args.target, _profile_memory(model, args.target, samples, Path(tmp)))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for model, samples in args.runs:
            ndp, steps, times = _speed(model, samples, args.target, folder, args.input_dtype)
            results.append({"model": model, "samples": samples, "steps": steps, "times_s": times, "ndp": ndp,
                            "shard_size": _default_shard(ndp, samples, steps)})
        first = results[0]
        memory = [] if args.no_memory else _memory(first["model"], first["ndp"], first["samples"], folder)
    for r in results:
        _print_speed(r["model"], args.target, r["samples"], r["steps"], r["times_s"], r["shard_size"])
    if memory:
        print(f"client peak memory, {first['model']}, `run --record v` (MB):")
        print(f"  {'samples':>8} {'one process':>12} {'--workers 2':>12}")
        for n, one, sharded in memory:
            print(f"  {n:>8} {one:>12.0f} {sharded:>12.0f}")
    print(json.dumps({"runs": [{k: v for k, v in r.items() if k != "ndp"} for r in results], "memory_mb": memory}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
