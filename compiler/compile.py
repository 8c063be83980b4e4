"""The compile pipeline: NIR -> NetworkIR -> quantized Program -> Mapping -> Artifact."""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.format import artifact as artifact_format
from neurodeploy.format import program as program_format
from neurodeploy.format.paths import sha256
from neurodeploy import targets
from neurodeploy.compiler.health import HealthReport
from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.compiler.mapping import Mapping, MappingError, map_program
from neurodeploy.compiler.quantize import quantize
from neurodeploy.compiler.quantize.calibration import calibrate
from neurodeploy.errors import NeurodeployError, OptionError
from neurodeploy.format.program import Program


class DegradedError(NeurodeployError):
    """Quantization lost too much; compile with --allow-degraded to accept it."""


@dataclass
class Options:
    target: str
    dt: float | None = None
    integrator: str | None = None
    reset: str | None = None
    spike_amplitude: float | str | None = None
    per_neuron: bool = False
    allow_degraded: bool = False
    neurons_per_core: int | None = None
    chips: int | None = None
    high_precision: tuple[str, ...] = ()  # connections kept at 16-bit weights (generic profile)
    weight_bits: int | None = None  # generic emulator profile only
    state_bits: int | None = None
    decay_bits: int | None = None
    netx_format: bool = False  # loihi2 only: the part of the format lava-dl's netx holds


    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Compiled:
    net: NetworkIR
    program: Program
    health: HealthReport
    mapping: Mapping
    options: Options
    source_hash: str
    calibration: dict[str, Any] | None = None

    def to_artifact(self, output: str | os.PathLike | None = None) -> artifact_format.Artifact:
        """The .ndp contents; with ``output`` (where it will be written) the provenance also holds
        the source's path relative to the artifact's folder, which `verify ART.ndp` follows."""
        manifest_program, arrays = program_format.to_manifest(self.program)
        manifest = {
            "target": self.options.target,
            "semantics": self.net.semantics.as_dict(),
            "program": manifest_program,
            "mapping": self.mapping.as_dict(),
            "health": self.health.as_dict(),
            "provenance": {
                "source": Path(self.net.source).name if self.net.source != "<graph>" else "<graph>",
                "source_sha256": self.source_hash,
                "options": self.options.as_dict(),
                "calibration": _portable_calibration(self.calibration, output),
                "versions": _versions(),
            },
        }
        relpath = _relpath(self.net.source, output)
        if relpath is not None:
            manifest["provenance"]["source_relpath"] = relpath
        return artifact_format.Artifact(manifest, arrays)

    def write(self, output: str | os.PathLike) -> Path:
        """Write the artifact to ``output`` (atomically), its provenance pointing at the source."""
        return artifact_format.write(self.to_artifact(output), output)


def _portable_calibration(calibration: dict[str, Any] | None, output: str | os.PathLike | None
                          ) -> dict[str, Any] | None:
    """The calibration record with its input file relative to the artifact's folder, and its SHA-256."""
    label = (calibration or {}).get("input")
    if not label or not Path(label).is_file():
        return calibration
    from neurodeploy.format.paths import relative

    folder = Path(output).absolute().parent if output is not None else Path.cwd()
    return {**calibration, "input": relative(label, folder), "input_sha256": sha256(label)}


def _relpath(source: str, output: str | os.PathLike | None) -> str | None:
    """``source`` relative to the folder of ``output`` (POSIX separators), or None where unknown."""
    if output is None or source == "<graph>" or not Path(source).is_file():
        return None
    try:
        rel = os.path.relpath(os.path.abspath(source), os.path.abspath(Path(output).parent))
    except ValueError:  # another drive (Windows): no relative path exists
        return None
    return Path(rel).as_posix()


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import nir

    return {"neurodeploy": version("neurodeploy"), "nir": getattr(nir, "__version__", "1.0.8"),
            "numpy": np.__version__}


def _source_hash(source: Any, net: NetworkIR) -> str:
    if isinstance(source, (str, Path)) and Path(source).is_file():
        return sha256(source)
    digest = hashlib.sha256()
    for name, pop in net.populations.items():
        digest.update(name.encode())
        for key in sorted(pop.params):
            digest.update(np.ascontiguousarray(pop.params[key]).tobytes())
    return digest.hexdigest()


def analyse(source: Any, options: Options, calibration_inputs=None, calibration_label: str | None = None
            ) -> Compiled:
    """Everything `compile` does except the degraded/fit checks and writing."""
    from neurodeploy.compiler.build import build

    target = targets.get(options.target)
    if options.target != "emulator" and any(
            v is not None for v in (options.weight_bits, options.state_bits, options.decay_bits)):
        raise OptionError("--weight-bits/--state-bits/--decay-bits configure the generic profile; use --target emulator")
    if isinstance(source, NetworkIR):  # generated networks (benchmarks) skip the NIR frontend
        net = source
    else:
        net = build(source, dt=options.dt, integrator=options.integrator, reset=options.reset,
                    spike_amplitude=options.spike_amplitude)
    ranges = calibrate(net, calibration_inputs) if calibration_inputs is not None else None
    program, health = quantize(net, options, ranges)
    for warning in net.warnings:
        health.add("info", "graph", "frontend", 0, warning)
    mapping = map_program(program, target, neurons_per_core=options.neurons_per_core, chips=options.chips)
    calibration = None
    if ranges is not None:
        calibration = {"input": calibration_label, "samples": ranges.samples, "steps": ranges.steps,
                       "input_range": ranges.inputs}
    return Compiled(net, program, health, mapping, options, _source_hash(source, net), calibration)


def compile_model(source: Any, options: Options, calibration_inputs=None,
                  calibration_label: str | None = None) -> Compiled:
    compiled = analyse(source, options, calibration_inputs, calibration_label)
    severe = compiled.health.severe
    if severe and not options.allow_degraded:
        details = "; ".join(f"{f.layer}: {f.message}" for f in severe)
        raise DegradedError(f"quantization for {options.target} is degraded: {details} "
                            f"(pass --allow-degraded to compile anyway)")
    if not compiled.mapping.fits:
        over = [l for l in compiled.mapping.limits if l["margin"] < 0]
        details = "; ".join(f"{l['limit']}: {l['value']:.0f} > {l['size']:.0f}" for l in over)
        raise MappingError(f"the program does not fit {options.target}: {details}{_fit_hint(compiled.mapping)}")
    return compiled


def _fit_hint(mapping: Mapping) -> str:
    """The nearest option when only the chip count is exceeded."""
    over = {l["limit"] for l in mapping.limits if l["margin"] < 0}
    if not over <= {"chips", "application cores"}:
        return ""
    per_board = targets.get(mapping.target).chips_per_board
    chips, boards = mapping.chips_used, ""
    cores = next((l for l in mapping.limits if l["limit"] == "application cores"), None)
    if per_board > 1:
        per_board_cores = cores["size"] / max(1, mapping.chips_available // per_board) if cores else math.inf
        count = max(-(-mapping.chips_used // per_board), math.ceil(len(mapping.cores) / per_board_cores))
        chips, boards = count * per_board, f" ({count} boards of {per_board})"
    return f"; it needs {chips} chips: pass --chips {chips} for a machine that has them{boards}, or shrink the network"


def compile_for_netx(source: Any, options: Options | None = None, calibration_inputs=None,
                     calibration_label: str | None = None) -> Compiled:
    """``compile_model`` for loihi2 in the part of its format that lava-dl's netx holds: weight
    exponent 0 (effective weights are the 8-bit mantissas), bias exponent 6, no start state."""
    options = options if options is not None else Options(target="loihi2")
    if options.target != "loihi2":
        raise OptionError(f"compile_for_netx compiles for target loihi2, not {options.target!r}")
    return compile_model(source, replace(options, netx_format=True), calibration_inputs, calibration_label)
