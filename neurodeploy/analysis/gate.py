"""Pass/fail gates on a ``verify`` report, and the artifact-level check a CI runs.

``verify_artifact(path, inputs)`` checks a compiled artifact as it was built (its own program,
with whatever calibration it was compiled with) against the float model its provenance names:
the source file at ``provenance.source_relpath`` from the artifact's folder (else the file named
``provenance.source`` beside it) whose SHA-256 matches ``provenance.source_sha256``; ``against``
names another file instead. ``apply_gates(report, Gates(...))`` marks every population with the
gates it passed; ``report["passed"]`` then decides the exit status (0 pass, 1 fail).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurodeploy.format.paths import sha256
from neurodeploy.errors import OptionError

# gate -> (report field it reads, True where the value must be at least the threshold, option)
_GATES = {
    "min_spike_agreement": ("spike_agreement", True, "--min-spike-agreement"),
    "min_class_agreement": ("class_agreement", True, "--min-class-agreement"),
    "max_v_error": ("v_max_error", False, "--max-v-error"),
}
_NOTHING_TO_GATE = {
    "min_spike_agreement": "no population of this model spikes",
    "min_class_agreement": "no output has two or more values to pick a class from",
    "max_v_error": "no population has a membrane to compare",
}


@dataclass(frozen=True)
class Gates:
    """Thresholds: agreements are fractions in [0, 1]; the v error is in the float model's units."""

    min_spike_agreement: float | None = None
    min_class_agreement: float | None = None
    max_v_error: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_spike_agreement", "min_class_agreement"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise OptionError(f"{_GATES[name][2]} {value}: an agreement is a fraction from 0 to 1 (e.g. 0.99)")
        if self.max_v_error is not None and not self.max_v_error >= 0.0:
            raise OptionError(f"--max-v-error {self.max_v_error}: must be 0 or more (float model units)")

    def given(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in _GATES if getattr(self, name) is not None}


def apply_gates(report: dict[str, Any], gates: Gates) -> dict[str, Any]:
    """Add ``gates`` (per population: value, threshold, passed) and ``passed`` to a verify report.

    Class agreement is copied onto the population behind each output, so that every result a
    gate reads sits in ``report["populations"]``. A gate nothing can be measured for is an error.
    """
    pops = report["populations"]
    for out in report.get("outputs", {}).values():
        if out.get("class_agreement") is not None and out.get("population") in pops:
            pops[out["population"]]["class_agreement"] = out["class_agreement"]
    for entry in pops.values():
        entry["gates"] = {}
    for name, threshold in gates.given().items():
        field, at_least, option = _GATES[name]
        measured = [e for e in pops.values() if e.get(field) is not None]
        if not measured:
            raise OptionError(f"{option}: {_NOTHING_TO_GATE[name]}; drop this gate")
        for entry in measured:
            value = entry[field]
            entry["gates"][name] = {"value": value, "threshold": threshold,
                                    "passed": bool(value >= threshold if at_least else value <= threshold)}
    report["gates"] = gates.given()
    report["passed"] = all(g["passed"] for e in pops.values() for g in e["gates"].values())
    return report


def format_gates(report: dict[str, Any]) -> list[str]:
    """One line per gate result, then PASS or FAIL; nothing when no gate was set."""
    if not report.get("gates"):
        return []
    lines = []
    for pop, entry in report["populations"].items():
        for name, g in entry.get("gates", {}).items():
            relation = ">=" if _GATES[name][1] else "<="
            verdict = "pass" if g["passed"] else "FAIL"
            lines.append(f"  gate {_GATES[name][2]}: {pop} {g['value']:.4g} {relation} {g['threshold']:g}? {verdict}")
    lines.append("verify: PASS" if report["passed"] else "verify: FAIL (a gate was not met)")
    return lines


# ------------------------------------------------------------------ the artifact's float model

def find_float_model(artifact_path: str | os.PathLike, manifest: dict[str, Any],
                     against: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """(the .nir file to compare with, whether its SHA-256 is the one the artifact was built from)."""
    prov = manifest.get("provenance", {})
    expected = prov.get("source_sha256")
    if against is not None:
        path = Path(against)
        if not path.is_file():
            raise OptionError(f"--against {against}: no such file; pass the .nir the artifact was compiled from")
        return path, sha256(path) == expected
    path = provenance_path(Path(artifact_path), prov)
    if path is None:
        raise OptionError(f"{artifact_path}: compiled from an in-memory graph, so it names no float model file; "
                          f"pass --against MODEL.nir")
    if not path.is_file():
        raise OptionError(f"{artifact_path}: its float model {path} (from the artifact's provenance) is missing; "
                          f"put it back or pass --against MODEL.nir")
    actual = sha256(path)
    if actual != expected:
        raise OptionError(f"{artifact_path}: {path} is not the float model it was compiled from (SHA-256 "
                          f"{actual[:16]}, provenance {str(expected)[:16]}); recompile the artifact, or pass "
                          f"--against {path} to verify against this file anyway")
    return path, True


def provenance_path(artifact_path: str | os.PathLike, prov: dict[str, Any]) -> Path | None:
    """Where the provenance says the source is, relative to the artifact's folder; None for an
    artifact compiled from an in-memory graph."""
    rel = prov.get("source_relpath") or prov.get("source")
    if not rel or rel == "<graph>":
        return None
    return Path(os.path.normpath(Path(artifact_path).parent / rel))


def float_net(path: str | os.PathLike, semantics: dict[str, Any]) -> Any:
    """The float model at ``path`` built with an artifact's semantics (time step, integrator, reset,
    spike amplitude), as the artifact was compiled."""
    from neurodeploy.compiler.build import build

    return build(str(path), dt=semantics["dt"], integrator=semantics["integrator"], reset=semantics["reset"],
                 spike_amplitude=semantics["spike_amplitude"], warn=False)


def _check_same_network(net: Any, program: Any, model: Path) -> None:
    """The float model must have the artifact's inputs and populations, with the same shapes."""
    pairs = [("input", name, tuple(shape), net.inputs.get(name)) for name, shape in program.inputs.items()]
    pairs += [("population", p.name, tuple(p.shape), net.populations.get(p.name)) for p in program.populations]
    for kind, name, shape, other in pairs:
        if other is None or tuple(other.shape) != shape:
            found = "missing" if other is None else f"shape {list(other.shape)}"
            raise OptionError(f"{model}: {kind} '{name}' {list(shape)} of the artifact is {found} here; this is "
                              f"not the model the artifact was compiled from (pass that one with --against)")


def verify_artifact(artifact_path: str | os.PathLike, inputs: Any,
                    against: str | os.PathLike | None = None) -> dict[str, Any]:
    """Compare the artifact's own program with its float model (see the module docstring).

    ``inputs``: an array (batch, steps, *input_shape), a dict of them, or an .npz path.
    """
    from neurodeploy.format import artifact
    from neurodeploy.format.npzio import read_inputs
    from neurodeploy.format.program import from_manifest
    from neurodeploy.analysis.verify import compare

    art = artifact.read(artifact_path)
    program = from_manifest(art.manifest["program"], art.arrays)
    model, hash_matches = find_float_model(artifact_path, art.manifest, against)
    net = float_net(model, art.manifest["semantics"])
    _check_same_network(net, program, model)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = read_inputs(inputs, dict(program.inputs))
    report = compare(net, program, inputs)
    report["artifact"] = str(artifact_path)
    report["float_model"] = {"path": str(model), "sha256": sha256(model), "sha256_matches_provenance": hash_matches}
    return report
