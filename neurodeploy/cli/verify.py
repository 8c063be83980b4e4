"""`neurodeploy verify`: a deployment against its float model, with gates for CI.

``verify ART.ndp --input IN.npz [--against MODEL.nir]`` checks the artifact as built (the float
model from its provenance, :mod:`neurodeploy.analysis.gate`); ``verify MODEL.nir --target T --input IN.npz``
compiles the model with the given options first. ``--min-spike-agreement``,
``--min-class-agreement`` and ``--max-v-error`` set the exit status: 0 pass, 1 fail, 2 error.
"""
from __future__ import annotations

import argparse
from typing import Any

from neurodeploy.cli import conventions
from neurodeploy.cli import files as cli_files
from neurodeploy.cli import shard as cli_shard
from neurodeploy.errors import OptionError

# verify's compile options (dest, option), meaningful only where verify compiles a .nir itself
_COMPILE_OPTIONS = (("target", "--target"), ("calibrate", "--calibrate"), ("per_neuron", "--per-neuron"),
                    ("high_precision", "--high-precision"), ("neurons_per_core", "--neurons-per-core"),
                    ("chips", "--chips"), ("weight_bits", "--weight-bits"), ("state_bits", "--state-bits"),
                    ("decay_bits", "--decay-bits"), ("dt", "--dt"), ("integrator", "--integrator"),
                    ("reset", "--reset"), ("spike_amplitude", "--spike-amplitude"),
                    ("allow_degraded", "--allow-degraded"))


def add_parser(sub, add_semantics) -> None:
    from neurodeploy.cli.deploy import _compile_options

    p = conventions.add_command(sub, "verify", "float model vs a deployment, per population; gates set the exit "
                                               "status (0 pass, 1 fail, 2 error)",
                                "neurodeploy verify model.loihi2.ndp --input in.npz --min-class-agreement 0.99 --json")
    p.add_argument("model", help="an .ndp artifact (checked as built, against the float model its provenance "
                                 "names) or a .nir file (compiled here with --target and the compile options)")
    p.add_argument("--input", required=True, help=".npz with array 'input'")
    p.add_argument("--against", metavar="MODEL.nir",
                   help="with an artifact: compare with this float model instead of the one its provenance names")
    conventions.add_json_option(p, "the comparison and the gate results")
    g = p.add_argument_group("gates (exit 1 when one is not met)")
    g.add_argument("--min-spike-agreement", type=float, metavar="F",
                   help="every spiking population: fraction of (sample, step, neuron) spike values that agree")
    g.add_argument("--min-class-agreement", type=float, metavar="F",
                   help="every output: fraction of samples whose arg-max class agrees")
    g.add_argument("--max-v-error", type=float, metavar="X",
                   help="every population: largest membrane error, in the float model's units")
    cli_shard.add_options(p)
    _compile_options(p, add_semantics, target_required=False)  # for a .nir only: how to compile it here
    p.add_argument("--allow-degraded", action="store_true", help="with a .nir: verify even with severe health findings")


def cmd_verify(args: argparse.Namespace) -> int:
    from neurodeploy.analysis.gate import Gates, apply_gates

    gates = Gates(args.min_spike_agreement, args.min_class_agreement, args.max_v_error)
    cli_files.check_outputs(("--json", conventions.json_file(args)))
    report = _verify_artifact(args) if _is_artifact(args.model) else _verify_nir(args)
    apply_gates(report, gates)
    _print(report, args)
    return 0 if report["passed"] else 1


def _is_artifact(path: str) -> bool:
    from neurodeploy.format.artifact import sniff

    kind = sniff(path)
    return kind == "artifact" or (kind is None and str(path).endswith(".ndp"))


def _verify_artifact(args: argparse.Namespace) -> dict[str, Any]:
    from neurodeploy.cli import files as cli_files
    from neurodeploy.analysis.gate import verify_artifact

    given = [option for dest, option in _COMPILE_OPTIONS if getattr(args, dest, None) not in (None, False, "")]
    if given:
        raise OptionError(f"{', '.join(given)}: compile options of `verify MODEL.nir`; {args.model} is a compiled "
                          f"artifact, verified as built: drop them (or verify the .nir with them)")
    if args.against:
        cli_files.expect_nir(args.against, "verify --against")
    sharded = cli_shard.shards_wanted(args)
    inputs = _warn_beyond_calibration(args.model, args.input, headers_only=sharded)  # shards check their values
    if sharded:
        return cli_shard.sharded_verify(args.model, args.input, args.against, cli_shard.where(args), args.shard_size)
    return verify_artifact(args.model, args.input if inputs is None else inputs, args.against)


def _warn_beyond_calibration(path: str, input_path: str, *, headers_only: bool = False) -> Any:
    """Warn where the inputs exceed what `compile --calibrate` saw; the inputs are read (and
    returned, for the verification to reuse) only for an artifact that records a calibrated range
    (artifacts compiled without one cannot warn); None otherwise. ``headers_only``: the (steps,
    batch) hint from the file's headers; shards check the values."""
    from neurodeploy.format import artifact, input_rules
    from neurodeploy.format.npzio import read_inputs

    manifest = artifact.read_manifest(path)  # the arrays are read (and the hash checked) by the verification
    calibrated, steps = artifact.calibrated_input_range(manifest), artifact.calibration_steps(manifest)
    shapes = {name: tuple(shape) for name, shape in manifest["program"]["inputs"].items()}
    if headers_only:
        input_rules.warn_beyond_range(None, cli_shard.input_headers(input_path, shapes), steps)
        return None
    if not (calibrated or steps):
        return None
    inputs = read_inputs(input_path, shapes)
    input_rules.warn_beyond_range(calibrated, inputs, steps)
    return inputs


def _verify_nir(args: argparse.Namespace) -> dict[str, Any]:
    from neurodeploy.cli import files as cli_files
    from neurodeploy.cli.deploy import TARGETS, _calibration, _options
    from neurodeploy.compiler.build import build
    from neurodeploy.compiler.compile import compile_model
    from neurodeploy.format import input_rules
    from neurodeploy.format.npzio import read_inputs
    from neurodeploy.analysis.verify import compare

    cli_files.expect_nir(args.model, "verify")
    if args.against:
        raise OptionError(f"--against names the float model of an artifact; verify {args.model} compiles "
                          f"{args.model} itself: drop --against, or verify an .ndp artifact")
    if not args.target:
        raise OptionError(f"verify {args.model} compiles it first: add --target ({', '.join(TARGETS)}), or verify "
                          f"the artifact you deploy: `neurodeploy verify MODEL.ndp --input {args.input}`")
    if cli_shard.shards_wanted(args):
        return cli_shard.verify_compiled(args)
    net = build(args.model, dt=args.dt, integrator=args.integrator, reset=args.reset,
                spike_amplitude=args.spike_amplitude, warn=False)
    inputs = read_inputs(args.input, {n: p.shape for n, p in net.inputs.items()})  # bad inputs fail first
    compiled = compile_model(args.model, _options(args), _calibration(args), args.calibrate)
    calibration = compiled.calibration or {}
    input_rules.warn_beyond_range(calibration.get("input_range"), inputs, calibration.get("steps"))
    report = compare(compiled.net, compiled.program, inputs)
    report["float_model"] = {"path": args.model, "sha256": compiled.source_hash, "compiled_here": True}
    return report


def _print(report: dict[str, Any], args: argparse.Namespace) -> None:
    from neurodeploy.analysis.gate import format_gates
    from neurodeploy.analysis.verify import format_report

    if not conventions.json_to_stdout(args):
        print(_subject(report))
        print("\n".join(format_report(report) + format_gates(report)))
    if args.json:
        conventions.emit_json(args, report)


def _subject(report: dict[str, Any]) -> str:
    model = report["float_model"]
    if "artifact" not in report:
        return f"verify {model['path']}, compiled here for {report['target']} with the given options"
    match = ("its SHA-256 matches the artifact's provenance" if model["sha256_matches_provenance"]
             else "NOT the file the artifact was compiled from (SHA-256 differs), compared as asked by --against")
    return f"verify {report['artifact']} as built, against {model['path']} ({match})"
