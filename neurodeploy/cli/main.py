"""The `neurodeploy` command line. Errors print one line (no traceback) and exit 2."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Sequence

import numpy as np

from neurodeploy.cli import conventions
from neurodeploy.cli import convert as cli_convert
from neurodeploy.cli import deploy as cli_deploy
from neurodeploy.cli import export as cli_export
from neurodeploy.cli import files as cli_files
from neurodeploy.cli import profile as cli_profile
from neurodeploy.cli import sweep as cli_sweep
from neurodeploy.errors import NeurodeployError

EXIT_CLOSED_PIPE = 141  # what a shell reports for a writer killed by SIGPIPE (128 + 13)


def _add_semantics(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("semantics contract (what NIR leaves unsaid)")
    group.add_argument("--dt", type=float, help="time step in seconds (default: graph metadata, else 1e-3)")
    group.add_argument("--integrator", choices=["euler", "exact"], help="default: metadata, else euler")
    group.add_argument("--reset", choices=["zero", "subtract"], help="default: metadata, else zero")
    group.add_argument("--spike-amplitude", help="value a spike carries: a number, or 'dirac' for 1/dt (default 1)")


def _semantics(args: argparse.Namespace) -> dict:
    return dict(dt=args.dt, integrator=args.integrator, reset=args.reset, spike_amplitude=args.spike_amplitude)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error; subcommand parsers inherit this class."""

    json_errors = False  # set per command line by _main: under --json, errors are JSON on stdout too

    def error(self, message: str) -> None:  # type: ignore[override]
        _report_error(f"{self.prog}: {_one_line(message)} (see '{self.prog} --help')", 2, _Parser.json_errors)
        sys.exit(2)


def _report_error(message: str, code: int, as_json: bool) -> int:
    """One 'error: ...' line on stderr; under --json also {"error", "exit_status"} on stdout."""
    print(f"error: {message}", file=sys.stderr)
    if as_json:
        print(conventions.json_error(message, code))
    return code


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurodeploy", description="Deploy spiking networks from NIR.",
                     epilog="Example:\n  neurodeploy compile model.nir --target loihi2 -o model.ndp\n\n"
                            "'neurodeploy COMMAND --help' describes each command.",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = conventions.add_command(sub, "inspect", "nodes, shapes, parameter ranges and the semantics a model will use",
                                "neurodeploy inspect model.nir --dt 1e-3")
    p.add_argument("model", help="a .nir file or an .ndp artifact")
    _add_semantics(p)

    p = conventions.add_command(sub, "simulate", "run the float reference simulator",
                                "neurodeploy simulate model.nir --input in.npz -o out.npz --record v")
    p.add_argument("model", help="a .nir file")
    p.add_argument("--input", required=True, help=".npz with array 'input' (batch, steps, *input_shape)")
    p.add_argument("-o", "--output", required=True, help="output .npz (spikes.<node>, v.<node>)")
    p.add_argument("--record", default="", help="comma-separated state to record: v, i (the synaptic current; u is an alias of i); spikes are always recorded")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="floating-point precision of the simulation (default float32)")
    _add_semantics(p)
    cli_deploy.add_parsers(sub, _add_semantics)
    cli_profile.add_parser(sub)
    cli_export.add_parser(sub)
    cli_convert.add_parser(sub)
    cli_sweep.add_parser(sub, _add_semantics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; a reader that closes stdout early (``| head``) ends it quietly."""
    try:
        try:
            code = _main(argv)
        finally:
            sys.stdout.flush()  # inside the try: a closed pipe shows here when the output was buffered
    except BrokenPipeError:
        return _closed_pipe()
    return code


def _closed_pipe() -> int:
    """Exit like a tool killed by SIGPIPE, without Python's 'Exception ignored' on the final flush.

    As Python's documentation of SIGPIPE recommends, stdout is pointed at devnull first.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (a test's capture): nothing will flush into the pipe
    return EXIT_CLOSED_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    _Parser.json_errors = conventions.wants_json(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.version:
        from neurodeploy import __version__

        print(f"neurodeploy {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = COMMANDS[args.command](args)
        except NeurodeployError as exc:  # one line; warnings would only bury it
            return _report_error(_one_line(exc), 2, _Parser.json_errors)
        except KeyboardInterrupt:
            return _report_error("interrupted", 130, _Parser.json_errors)
        except BrokenPipeError:
            raise  # not a bug: the reader of stdout went away (see main)
        except Exception as exc:  # noqa: BLE001 - a bug: still one line, traceback on request
            if os.environ.get("NEURODEPLOY_DEBUG"):
                raise
            return _report_error(f"internal error (a bug in neurodeploy, please report it): {type(exc).__name__}: "
                                 f"{_one_line(exc)[:300]}; set NEURODEPLOY_DEBUG=1 for the traceback", 3,
                                 _Parser.json_errors)
    _print_warnings(caught)
    return code


def _print_warnings(caught) -> None:
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


def cmd_inspect(args: argparse.Namespace) -> int:
    from neurodeploy.format.artifact import sniff

    kind = sniff(args.model)
    if kind == "artifact" or (kind is None and str(args.model).endswith(".ndp")):
        return cli_deploy.inspect_artifact(args.model)
    from neurodeploy.compiler.frontend import load
    from neurodeploy.compiler.lowering import describe, lower

    model = load(args.model, **_semantics(args))
    graph = model.graph
    print(f"{args.model}: {len(graph.nodes)} nodes, {len(graph.edges)} edges")
    for name, node in graph.nodes.items():
        ranges = ", ".join(
            f"{k}=[{np.min(v):.4g}, {np.max(v):.4g}]"
            for k, v in node.params.items()
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size
        )
        print(f"  {name:<20} {node.kind:<10} {list(node.in_shape)} -> {list(node.out_shape)}  {ranges}")
    s, origin = model.semantics, model.semantics_source
    print("semantics:")
    for field, value in s.as_dict().items():
        print(f"  {field} = {value}  ({origin[field]})")
    for warning in graph.warnings:
        print(f"note: {warning}")
    print("network:")
    print(describe(lower(model)))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from neurodeploy import recording
    from neurodeploy.api import build
    from neurodeploy.emulator.reference import simulate
    from neurodeploy.format.npzio import check_output, read_inputs, write_npz

    cli_files.expect_nir(args.model, "simulate")
    check_output(args.output, "-o")  # before any work: a bad output path fails at once
    net = build(args.model, **_semantics(args))
    for warning in net.warnings:
        warnings.warn(warning)
    # the float reference takes graded inputs; the deployed targets take spike counts (input_rules)
    inputs = read_inputs(args.input, {name: port.shape for name, port in net.inputs.items()}, graded=True)
    valid = recording.names("simulate", "")
    asked = recording.parse(args.record, valid, "simulate (the float reference)")
    traces = simulate(net, inputs, record=recording.states(asked, valid), dtype=args.dtype,
                      progress=sys.stderr.isatty())
    traces = recording.rename(traces, asked, valid)
    write_npz(args.output, traces)
    spikes = {k: int(v.sum()) for k, v in traces.items() if k.startswith("spikes.")}
    print(f"wrote {args.output}: " + ", ".join(f"{k} ({n} spikes)" for k, n in spikes.items()))
    return 0


COMMANDS = {"inspect": cmd_inspect, "simulate": cmd_simulate, **cli_deploy.COMMANDS, **cli_profile.COMMANDS,
            **cli_export.COMMANDS, **cli_convert.COMMANDS, **cli_sweep.COMMANDS}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
