"""`run`, `verify` and `profile` over shards of samples, in this process or on a Dask cluster.

``--workers N`` (a local cluster on 127.0.0.1) or ``--scheduler ADDRESS`` (a running one) send
shards of ``--shard-size`` samples to Dask workers, each reading the artifact and its input rows
itself; ``run --probe POP[,POP]`` keeps the named populations, ``--format events`` writes spikes as
(sample, step, neuron) rows, and ``-o DIR/`` keeps the per-shard parts with an index. Results equal
one process's, whatever the workers; the client holds a bounded number of shards.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.format.paths import sha256
from neurodeploy.cli import files as cli_files
from neurodeploy.sharding.cluster import Where, map_shards, progress
from neurodeploy.errors import OptionError
from neurodeploy.sharding.shard import MAX_SHARD, MIN_SHARD, RunSpec, ShardResult, plan, run_shard, work_per_sample


def add_options(p: argparse.ArgumentParser, *, traces: bool = False) -> None:
    """``--workers``, ``--scheduler``, ``--shard-size`` (and for `run`: ``--probe``, ``--format``)."""
    g = p.add_argument_group("shards of samples on Dask (default: one process)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="start a local Dask cluster of N single-threaded worker processes (127.0.0.1 only)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="use a running Dask cluster, e.g. tcp://10.0.0.5:8786; its workers read the files at "
                        "the same paths (a shared folder)")
    g.add_argument("--shard-size", type=int, metavar="S",
                   help=f"samples per shard (default: about 16M neuron-steps each, {MIN_SHARD}-{MAX_SHARD} samples, at "
                        f"least 8 shards); the client holds a few shards at once")
    if traces:
        g.add_argument("--probe", default="", metavar="POP[,POP]",
                       help="record only these populations (default: all)")
        g.add_argument("--format", default="dense", choices=["dense", "events"], dest="trace_format",
                       help="'events': spikes as events.<pop> rows (sample, step, neuron) with shape.<pop>; "
                            "state traces stay dense")


def where(args: argparse.Namespace) -> Where:
    w = Where(getattr(args, "workers", None), getattr(args, "scheduler", None))
    w.check()
    return w


def run_wanted(args: argparse.Namespace) -> bool:
    """Whether `run` goes through shards: a cluster, a probe, events, or an output folder."""
    return bool(args.workers is not None or args.scheduler or args.probe or args.trace_format != "dense"
                or args.shard_size or folder_output(args.output))


def folder_output(output: str) -> bool:
    """``-o DIR/`` (or an existing folder): one .npz part per shard and an index.json."""
    return str(output).endswith(("/", os.sep)) or Path(output).is_dir()


def _probe_names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _check_run(args: argparse.Namespace) -> Path:
    """Options of a sharded `run`, before any work; returns the output path."""
    if args.backend != "emulator":
        raise OptionError(f"--workers, --scheduler, --probe, --format and folder outputs run the emulator; "
                          f"drop them to run on --backend {args.backend}")
    cli_files.expect_artifact(args.artifact, "run")
    output = Path(args.output)
    if not folder_output(args.output):
        from neurodeploy.format.npzio import check_output

        check_output(output, "-o")
    elif output.exists() and not output.is_dir():
        raise OptionError(f"-o {args.output}: is a file; name an .npz file, or a folder (DIR/) for per-shard parts")
    elif not output.parent.is_dir():
        raise OptionError(f"-o {args.output}: folder {output.parent} does not exist; create it first")
    return output


def _run_spec(args: argparse.Namespace, art: Any, program: Any) -> tuple[RunSpec, int, int]:
    """The workers' spec (absolute paths), and the input's (samples, steps) from its headers."""
    from neurodeploy.sharding import shard

    keys = shard.input_keys(args.input, program.inputs)
    samples, steps = shard.input_extent(args.input, keys, program.inputs)
    names = _probe_names(args.probe)
    shard.check_probe(program, names)
    record = tuple(r.strip() for r in args.record.split(",") if r.strip())
    spec = RunSpec(os.path.abspath(args.artifact), art.content_hash, os.path.abspath(args.input),
                   tuple(keys.items()), record, args.align, names, args.trace_format == "events", packed=True)
    return spec, samples, steps


def cmd_run(args: argparse.Namespace) -> int:
    """`run` over shards; writes one .npz (or a folder of parts) and prints what `run` prints."""
    from neurodeploy.format import artifact
    from neurodeploy.format.program import from_manifest
    from neurodeploy.sharding.tracestore import PartStore

    output = _check_run(args)
    cluster = where(args)
    art = artifact.read(args.artifact)
    program = from_manifest(art.manifest["program"], art.arrays)
    spec, samples, steps = _run_spec(args, art, program)
    store = PartStore(output, samples, {"samples": samples, "steps": steps, "format": args.trace_format,
                                        "align": args.align}, folder=folder_output(args.output))
    totals = _Totals()
    try:
        with progress(samples) as bar:
            def take(result: ShardResult) -> None:
                store.add(result.shard, result.arrays)
                totals.add(result)
                bar.update(result.shard.size)

            shards = plan(samples, args.shard_size, work_per_sample(program, steps))
            map_shards(cluster, run_shard, spec, shards, take)
        store.finish(_event_shapes(program, spec, samples, steps))
    except BaseException:
        store.discard()
        raise
    warn_excess(totals.excess)
    written = [f"{k} ({n} spikes)" for k, n in totals.spikes.items()] + totals.states
    print(f"wrote {output}: " + ", ".join(written))
    print(_grid_line(program, samples, steps, args.align, totals.dropped))
    return 0


class _Totals:
    """Spike counts and dropped spikes, summed over shards in the population order of the first."""

    def __init__(self) -> None:
        self.spikes: dict[str, int] = {}
        self.states: list[str] = []  # state traces written (v.<pop>, u.<pop>)
        self.dropped = 0
        self.excess: list[dict[str, Any]] = []

    def add(self, result: ShardResult) -> None:
        self.states = self.states or [k for k in result.arrays if not k.startswith(("spikes.", "events."))]
        for key, count in result.spikes.items():
            self.spikes[key] = self.spikes.get(key, 0) + count
        self.dropped += result.dropped
        self.excess.append(result.excess)


def input_headers(input_path: str | Path, program_inputs: Any) -> Any:
    """Stand-ins of the inputs with their shapes only (read from the .npy headers, no values): what
    the (steps, batch) hint needs, without reading the data set on the client."""
    from neurodeploy.sharding import shard

    keys = shard.input_keys(input_path, program_inputs)
    shapes = {name: shard.array_info(input_path, key).shape for name, key in keys.items()}
    stand_ins = {name: np.broadcast_to(np.zeros((), np.int64), shape) for name, shape in shapes.items()}
    return stand_ins if len(stand_ins) > 1 else next(iter(stand_ins.values()))


def warn_excess(parts: list[dict[str, Any]]) -> None:
    """Warn, as one run would, where the shards' inputs exceed the artifact's calibrated range."""
    import warnings

    from neurodeploy.format import input_rules

    for line in input_rules.excess_lines(input_rules.merge_excess(parts)):
        warnings.warn(line, stacklevel=2)


def _event_shapes(program: Any, spec: RunSpec, samples: int, steps: int) -> dict[str, np.ndarray]:
    """``shape.<pop>`` = (samples, steps, *shape) of every spiking population written as events."""
    if not spec.events:
        return {}
    kept = set(spec.probe) or {p.name for p in program.populations}
    return {f"shape.{p.name}": np.asarray((samples, steps) + tuple(p.shape), dtype=np.int64)
            for p in program.populations if p.spiking and p.name in kept}


def _grid_line(program: Any, samples: int, steps: int, align: str, dropped: int) -> str:
    """The alignment line `run` prints, for the whole run."""
    from neurodeploy.analysis.verify import _alignment_info, format_alignment, on_grid

    if align == "float":
        return f"alignment: {format_alignment(_alignment_info(program, samples, steps, dropped))}"
    return on_grid(program, {}, samples, steps, "target")[1]


# ------------------------------------------------------------------ verify

SEMANTICS = ("dt", "integrator", "reset", "spike_amplitude")


def shards_wanted(args: argparse.Namespace) -> bool:
    return bool(args.workers is not None or args.scheduler or args.shard_size)


def verify_compiled(args: argparse.Namespace) -> dict[str, Any]:
    """`verify MODEL.nir --target T` over shards: compiled here into a temporary artifact the workers read."""
    import tempfile

    from neurodeploy.format import artifact
    from neurodeploy.cli.deploy import _calibration, _options
    from neurodeploy.compiler.compile import compile_model

    compiled = compile_model(args.model, _options(args), _calibration(args), args.calibrate)
    with tempfile.TemporaryDirectory(prefix="neurodeploy-verify-") as folder:
        ndp = Path(folder) / "model.ndp"
        artifact.write(compiled.to_artifact(ndp), ndp)
        report = sharded_verify(ndp, args.input, args.model, where(args), args.shard_size)
    del report["artifact"]
    report["float_model"] = {"path": args.model, "compiled_here": True}
    return report


def sharded_verify(artifact_path: str | Path, input_path: str | Path, against: str | None, cluster: Where,
                   shard_size: int | None = None) -> dict[str, Any]:
    """:func:`neurodeploy.analysis.gate.verify_artifact` with the comparison done shard by shard where ``cluster`` says."""
    from neurodeploy.format import artifact
    from neurodeploy.sharding import shard
    from neurodeploy.analysis.gate import _check_same_network, find_float_model
    from neurodeploy.format.program import from_manifest
    from neurodeploy.sharding.verify import VerifySpec, float_net, merge, verify_shard

    art = artifact.read(artifact_path)
    program = from_manifest(art.manifest["program"], art.arrays)
    model, hash_matches = find_float_model(artifact_path, art.manifest, against)
    semantics = tuple((k, art.manifest["semantics"][k]) for k in SEMANTICS)
    _check_same_network(float_net(str(model), semantics), program, model)
    keys = shard.input_keys(input_path, program.inputs)
    samples, steps = shard.input_extent(input_path, keys, program.inputs)
    spec = VerifySpec(os.path.abspath(artifact_path), art.content_hash, os.path.abspath(model), semantics,
                      os.path.abspath(input_path), tuple(keys.items()))
    shards = plan(samples, shard_size, work_per_sample(program, steps))
    partials = _gather(cluster, verify_shard, spec, shards, samples)
    warn_excess([p["excess"] for p in partials])
    report = merge(program, partials, samples, steps)
    report["artifact"] = str(artifact_path)
    report["float_model"] = {"path": str(model), "sha256": sha256(model), "sha256_matches_provenance": hash_matches}
    return report


def _gather(cluster: Where, task: Any, spec: Any, shards: list, samples: int) -> list[Any]:
    """Every shard's result of ``task``, in shard order, with one progress bar."""
    results: dict[int, Any] = {}
    with progress(samples) as bar:
        def take(result: Any) -> None:
            shard = result.shard if hasattr(result, "shard") else result["shard"]
            results[shard.index] = result
            bar.update(shard.size)

        map_shards(cluster, task, spec, shards, take)
    return [results[s.index] for s in shards]


# ------------------------------------------------------------------ profile

def profile_reductions(artifact_path: str, input_path: str, art: Any, program: Any, pad: bool, cluster: Where,
                       shard_size: int | None = None) -> Any:
    """What :func:`neurodeploy.analysis.profile.profile` counts of the input, shard by shard where
    ``cluster`` says: every shard is emulated and reduced to a few numbers per sample where it runs,
    and the client merges them (it never holds a shard's activity)."""
    from neurodeploy.sharding import shard
    from neurodeploy.analysis.profile import merge, record_of

    keys = shard.input_keys(input_path, program.inputs)
    samples, steps = shard.input_extent(input_path, keys, program.inputs)
    spec = RunSpec(os.path.abspath(artifact_path), art.content_hash, os.path.abspath(input_path),
                   tuple(keys.items()), record_of(program), "pad" if pad else "target", overflow=True)
    shards = plan(samples, shard_size, work_per_sample(program, steps))
    results = _gather(cluster, shard.profile_shard, spec, shards, samples)
    warn_excess([r["excess"] for r in results])
    return merge([r["reductions"] for r in results])
