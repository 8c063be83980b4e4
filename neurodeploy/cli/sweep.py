"""`neurodeploy sweep MODEL.nir --input IN.npz --targets T1,T2 [--option NAME=V1,V2 ...] [--json [OUT.json]]`.

Every variant (target x option values) is compiled here into an artifact file; every (variant,
shard) job then runs in this process or on a Dask cluster (``--workers N``, ``--scheduler ADDR``).
The table (JSON ``{"rows": [...]}``, optionally HTML with accuracy against energy and cores) holds
per variant: accuracy (when IN.npz has ``labels``), agreement with the float model, cores and chips,
energy and latency estimates, run-time overflows (``overflow_total`` and, per population and kind,
``overflow``) and health findings.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.format import atomic
from neurodeploy.cli import conventions
from neurodeploy.cli import files as cli_files
from neurodeploy.cli import shard as cli_shard
from neurodeploy.errors import InputDataError, NeurodeployError, OptionError

TARGETS = ("loihi2", "spinnaker", "emulator")


def add_parser(sub, add_semantics) -> None:
    from neurodeploy.analysis.sweep import OPTIONS

    p = conventions.add_command(sub, "sweep", "compile, emulate and tabulate every target x option variant of a model",
                                "neurodeploy sweep model.nir --input in.npz --targets loihi2,spinnaker "
                                "--option per-neuron=false,true --json s.json --html s.html")
    p.add_argument("model", help="a .nir file")
    p.add_argument("--input", required=True, help=".npz with array 'input' (and 'labels' for accuracy)")
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated (default {','.join(TARGETS)})")
    p.add_argument("--option", action="append", default=[], metavar="NAME=V1,V2",
                   help=f"compile option values to combine; NAME one of {', '.join(OPTIONS)} (repeatable)")
    p.add_argument("--calibrate", metavar="IN.npz", help="calibration inputs for every variant")
    p.add_argument("--readout", metavar="POP:RULE", help="population and rule deciding the class (default: the "
                                                         "zoo's for a shipped model, else the output's)")
    p.add_argument("--artifacts", metavar="DIR", help="keep the compiled artifacts here (default: a temporary folder)")
    conventions.add_json_option(p, "the table, {\"rows\": [...]},")
    p.add_argument("--html", metavar="OUT.html", help="also a page with accuracy against energy and cores")
    add_semantics(p)
    cli_shard.add_options(p)


def _targets(text: str) -> list[str]:
    targets = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise OptionError(f"--targets {text}: expected a comma-separated list of {', '.join(TARGETS)}")
    return targets


def _check(args: argparse.Namespace) -> None:
    cli_files.expect_nir(args.model, "sweep")
    cli_files.check_outputs(("--json", conventions.json_file(args)), ("--html", args.html))
    if args.artifacts and not Path(args.artifacts).is_dir():
        raise OptionError(f"--artifacts {args.artifacts}: no such folder; create it first")
    cli_shard.where(args)


def _semantics(args: argparse.Namespace) -> dict[str, Any]:
    return dict(dt=args.dt, integrator=args.integrator, reset=args.reset, spike_amplitude=args.spike_amplitude)


def _labels(path: str, samples: int) -> np.ndarray | None:
    """``labels`` of the input file, if it has them (one per sample)."""
    with np.load(path, allow_pickle=False) as data:
        if "labels" not in data.files:
            return None
        labels = np.asarray(data["labels"])
    if labels.shape != (samples,):
        raise InputDataError(f"{path}: array 'labels': shape {list(labels.shape)}, expected [{samples}] "
                             f"(one class per sample)")
    return labels.astype(np.int64)


def cmd_sweep(args: argparse.Namespace) -> int:
    from neurodeploy.analysis.sweep import parse_option, variants
    from neurodeploy.format.paths import sha256

    _check(args)
    chosen = variants(_targets(args.targets), [parse_option(o) for o in args.option])
    with tempfile.TemporaryDirectory(prefix="neurodeploy-sweep-") as scratch:
        folder = Path(args.artifacts or scratch)
        rows = _sweep(args, chosen, folder)
    table = {"model": args.model, "model_sha256": sha256(args.model), "input": args.input,
             "input_sha256": sha256(args.input), "rows": rows}
    if not conventions.json_to_stdout(args):
        print("\n".join(format_rows(rows)))
    if args.json:
        conventions.emit_json(args, table)
    if args.html:
        from neurodeploy.analysis.sweep_report import sweep_html

        atomic.write_text(args.html, sweep_html(table))
        conventions.say(args, f"wrote {args.html}")
    return 0


def _sweep(args: argparse.Namespace, chosen: list, folder: Path) -> list[dict[str, Any]]:
    """Compile every variant, run every (variant, shard) job, merge each variant's shards into a row."""
    from neurodeploy.sharding import shard
    from neurodeploy.api import build
    from neurodeploy.sharding.cluster import map_jobs, progress
    from neurodeploy.format.npzio import read_inputs
    from neurodeploy.analysis.sweep import row, sweep_shard

    net = build(args.model, warn=False, **_semantics(args))
    shapes = {n: p.shape for n, p in net.inputs.items()}
    keys = shard.input_keys(args.input, shapes)
    samples, steps = shard.input_extent(args.input, keys, shapes)
    labels = _labels(args.input, samples)
    calibration = read_inputs(args.calibrate, shapes) if args.calibrate else None
    compiled = [_compile(args, target, options, calibration, folder / f"variant{i:02d}.{target}.ndp")
                for i, (target, options) in enumerate(chosen)]
    specs = _specs(args, compiled, tuple(keys.items()))
    shards = shard.plan(samples, args.shard_size)
    results: dict[int, dict[int, Any]] = {spec.variant: {} for spec in specs}
    with progress(samples * len(specs)) as bar:
        def take(result: dict[str, Any]) -> None:
            results[result["variant"]][result["shard"].index] = result
            bar.update(result["shard"].size)

        map_jobs(cli_shard.where(args), sweep_shard, [(spec, s) for s in shards for spec in specs], take)
    return [row(target, options, compiled[i][0], [results[i][s.index] for s in shards], labels, samples, steps)
            if compiled[i][0] is not None else compiled[i][1] for i, (target, options) in enumerate(chosen)]


def _compile(args: argparse.Namespace, target: str, options: dict[str, Any], calibration: Any,
             path: Path) -> tuple[Any, Any]:
    """(compiled, artifact path) of one variant, or (None, its error row) when it does not compile."""
    from neurodeploy.format import artifact
    from neurodeploy.compiler.compile import compile_model
    from neurodeploy.analysis.sweep import compile_options, error_row

    try:
        compiled = compile_model(args.model, compile_options(target, options, _semantics(args)), calibration,
                                 args.calibrate)
    except NeurodeployError as exc:
        return None, error_row(target, options, " ".join(str(exc).split()))
    artifact.write(compiled.to_artifact(path), path)
    return compiled, path


def _specs(args: argparse.Namespace, compiled: list[tuple[Any, Any]], keys: tuple) -> list[Any]:
    """A job spec per compiled variant (paths and names only)."""
    from neurodeploy.format import artifact
    from neurodeploy.cli.shard import SEMANTICS
    from neurodeploy.analysis.sweep import SweepSpec, readout_of

    specs = []
    for i, (result, path) in enumerate(compiled):
        if result is None:
            continue
        art = artifact.read(path)
        semantics = tuple((k, art.manifest["semantics"][k]) for k in SEMANTICS)
        specs.append(SweepSpec(i, os.path.abspath(path), art.content_hash, os.path.abspath(args.model), semantics,
                               os.path.abspath(args.input), keys, readout_of(args.model, result.program, args.readout)))
    return specs


def format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The table as text, one line per variant."""
    head = f"{'target':<10} {'options':<32} {'accuracy':>8} {'spikes=':>8} {'cores':>5} {'chips':>5} " \
           f"{'energy/inf':>11} {'latency':>10}  health"
    lines = [head]
    for r in rows:
        options = ",".join(f"{k}={v}" for k, v in r["options"].items()) or "-"
        if r["error"]:
            lines.append(f"{r['target']:<10} {options:<32} error: {r['error'][:120]}")
            continue
        health = f"{r['health']['severe']} severe, {len(r['health']['warnings'])} findings"
        if r.get("overflow_total"):
            health += f", {r['overflow_total']:,} run-time overflows"
        lines.append(f"{r['target']:<10} {options:<32} {_pct(r['accuracy']):>8} {_pct(r['spike_agreement']):>8} "
                     f"{r['cores']:>5} {r['chips']:>5} {_si(r['energy_j'], 'J'):>11} {_si(r['latency_s'], 's'):>10}"
                     f"  {health}")
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


COMMANDS = {"sweep": cmd_sweep}
