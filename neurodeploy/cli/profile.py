"""`neurodeploy profile ART.ndp --input IN.npz [--json [P.json]] [--html R.html] [--source MODEL.nir]`.

Wire-up: ``cli_profile.add_parser(sub)`` and ``COMMANDS = {"profile": cmd_profile}``.
"""
from __future__ import annotations

import argparse
from typing import Any


from neurodeploy.cli import conventions
from neurodeploy.cli import files as cli_files
from neurodeploy.cli import shard as cli_shard
from neurodeploy.errors import OptionError


def add_parser(sub) -> None:
    p = conventions.add_command(sub, "profile", "spikes, synaptic ops, footprint, utilisation, energy and latency "
                                                "of an artifact",
                                "neurodeploy profile model.spinnaker.ndp --input in.npz --json p.json --html p.html")
    p.add_argument("artifact", help="an .ndp file")
    p.add_argument("--input", required=True, help=".npz with array 'input' (batch, steps, *input_shape)")
    conventions.add_json_option(p, "the full profile")
    p.add_argument("--html", metavar="R.html", help="write a self-contained HTML report (figures embedded)")
    p.add_argument("--source", metavar="MODEL.nir",
                   help="the float model for float-vs-deployed rasters (default: the artifact's provenance)")
    p.add_argument("--no-pad", action="store_true",
                   help="profile exactly the input steps (default: append the steps the target's latency needs)")
    p.add_argument("--time-scale-factor", type=int, metavar="N",
                   help="SpiNNaker wall-time factor (default: the smallest that meets the real-time budget)")
    p.add_argument("--spinnaker-report", metavar="energy_report.rpt",
                   help="measured: sPyNNaker's energy report of a hardware run")
    p.add_argument("--spinnaker-provenance", metavar="data.sqlite3",
                   help="measured: sPyNNaker's provenance database of a hardware run")
    p.add_argument("--lava-profile", metavar="L.json",
                   help="measured: Loihi 2 profiler readings written by neurodeploy.analysis.profile_ingest.capture_lava_profilers")
    p.add_argument("--measured-samples", type=int, metavar="N",
                   help="inferences the measured run covered (default: the samples in --input)")
    cli_shard.add_options(p)


def cmd_profile(args: argparse.Namespace) -> int:
    from neurodeploy.format import artifact, input_rules
    from neurodeploy.format.npzio import read_inputs
    from neurodeploy.analysis.profile import format_profile, profile
    from neurodeploy.analysis.profile_ingest import IngestError, ingest
    from neurodeploy.format.program import from_manifest

    cli_files.expect_artifact(args.artifact, "profile")
    if args.source:
        cli_files.expect_nir(args.source, "profile --source")
    cli_files.check_outputs(("--json", conventions.json_file(args)), ("--html", args.html))
    if args.time_scale_factor is not None and args.time_scale_factor < 1:
        raise OptionError(f"--time-scale-factor must be >= 1, got {args.time_scale_factor}")
    art = artifact.read(args.artifact)
    program = from_manifest(art.manifest["program"], art.arrays)
    if cli_shard.shards_wanted(args):  # shards emulated and counted where they run; merged here
        inputs = _inputs_for_client(args, art, program)
        reductions = cli_shard.profile_reductions(args.artifact, args.input, art, program, not args.no_pad,
                                                  cli_shard.where(args), args.shard_size)
        result = profile(art, pad=not args.no_pad, time_scale_factor=args.time_scale_factor, reductions=reductions)
    else:
        inputs = read_inputs(args.input, {name: shape for name, shape in program.inputs.items()})
        input_rules.warn_beyond_range(art.calibrated_inputs, inputs, art.calibration_steps)  # beyond the calibration
        result = profile(art, inputs, pad=not args.no_pad, time_scale_factor=args.time_scale_factor)
    if args.spinnaker_report or args.spinnaker_provenance or args.lava_profile:
        try:
            result = ingest(result, spinnaker_report=args.spinnaker_report,
                            spinnaker_provenance=args.spinnaker_provenance, lava=args.lava_profile,
                            samples=args.measured_samples)
        except IngestError as exc:
            raise OptionError(str(exc)) from None
    if not conventions.json_to_stdout(args):
        print("\n".join(format_profile(result)))
    if args.json:
        conventions.emit_json(args, result)
    if args.html:
        from neurodeploy.analysis.report import write_report

        write_report(art, inputs, args.html, source=args.source, artifact_path=args.artifact, profile_data=result)
        conventions.say(args, f"wrote {args.html}")
    return 0


def _inputs_for_client(args: argparse.Namespace, art: Any, program: Any) -> Any:
    """The inputs, read whole on the client only for the HTML report's rasters (otherwise the
    client's memory stays bounded by a shard; the shards check the calibrated range themselves);
    None when nothing needs them. The (steps, batch) hint needs the headers only."""
    from neurodeploy.format import input_rules
    from neurodeploy.format.npzio import read_inputs

    input_rules.warn_beyond_range(None, cli_shard.input_headers(args.input, program.inputs), art.calibration_steps)
    if not args.html:
        return None
    return read_inputs(args.input, {name: shape for name, shape in program.inputs.items()})


COMMANDS = {"profile": cmd_profile}
