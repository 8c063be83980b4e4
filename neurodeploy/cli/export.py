"""`neurodeploy export`: write an artifact as a program for another tool to run.

Formats (``EXPORTERS``): ``pynn`` -- a standalone PyNN script for sPyNNaker 7.4.1 plus an .npz
of its synapse lists, for spinnaker artifacts; ``netx`` -- lava-dl's netx HDF5 network
(``lava.lib.dl.netx.hdf5.Network``), for loihi2 artifacts that are a feed-forward chain
(``backends/lava/netx.py``). A format is one function ``(artifact, output, args) -> [written
paths]`` and one entry in ``EXPORTERS``, with the targets it accepts.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from neurodeploy.cli import conventions
from neurodeploy.cli import files as cli_files
from neurodeploy.errors import OptionError


@dataclass(frozen=True)
class Exporter:
    targets: tuple[str, ...]  # artifact targets the format can express
    suffix: str  # what -o must end with
    description: str
    write: Callable  # (artifact, output path, args) -> list[Path]


def _pynn(art, output: Path, args: argparse.Namespace) -> list[Path]:
    from neurodeploy.backends.spinnaker.export import write_pynn

    return write_pynn(art, output)


def _netx(art, output: Path, args: argparse.Namespace) -> list[Path]:
    from neurodeploy.backends.lava.netx import export_netx

    return [export_netx(art, output, label=args.artifact)]


EXPORTERS: dict[str, Exporter] = {
    "pynn": Exporter(("spinnaker",), ".py",
                     "a PyNN script for sPyNNaker 7.4.1 (pyNN.spiNNaker) and its .npz of synapse lists", _pynn),
    "netx": Exporter(("loihi2",), ".net",
                     "lava-dl's netx HDF5 network for lava.lib.dl.netx.hdf5.Network (a feed-forward chain of "
                     "dense/conv layers of CUBA neurons)", _netx),
}


def add_parser(sub) -> None:
    formats = "; ".join(f"{name}: {e.description} (targets: {', '.join(e.targets)})" for name, e in EXPORTERS.items())
    p = conventions.add_command(sub, "export", "write an artifact as a program for another tool (a PyNN script "
                                               "for SpiNNaker, a lava-dl netx file for Loihi)",
                                "neurodeploy export model.spinnaker.ndp --format pynn -o net.py",
                                details=f"Formats: {formats}.")
    p.add_argument("artifact", help="an .ndp file")
    p.add_argument("--format", required=True, choices=sorted(EXPORTERS), help="what to write")
    p.add_argument("-o", "--output", required=True,
                   help="the file to write (pynn: net.py; its data goes beside it as net.npz; netx: net.net)")


def cmd_export(args: argparse.Namespace) -> int:
    from neurodeploy.format import artifact

    exporter = EXPORTERS[args.format]
    output = Path(args.output)
    if output.suffix != exporter.suffix:
        raise OptionError(f"{output}: --format {args.format} writes a {exporter.suffix} file")
    cli_files.expect_artifact(args.artifact, "export")
    beside = [("-o (its data beside it)", str(output.with_suffix(".npz")))] if args.format == "pynn" else []
    cli_files.check_outputs(("-o", str(output)), *beside)
    art = artifact.read(args.artifact)
    if art.target not in exporter.targets:
        raise OptionError(f"{args.artifact}: --format {args.format} exports {', '.join(exporter.targets)} artifacts; "
                          f"this one is for {art.target} (compile with --target {exporter.targets[0]})")
    written = exporter.write(art, output, args)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


COMMANDS = {"export": cmd_export}
