"""The bit-accurate emulator as a backend (backends/registry.py)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence


def run_backend(artifact: Any, inputs: Any, *, record: Sequence[str], progress: bool,
                options: Mapping[str, Any]) -> dict:
    from neurodeploy.format import artifact as artifact_format
    from neurodeploy.emulator import run_program
    from neurodeploy.format.program import from_manifest

    art = artifact_format.read(artifact) if not isinstance(artifact, artifact_format.Artifact) else artifact
    program = from_manifest(art.manifest["program"], art.arrays)
    return run_program(program, inputs, record=record, progress=progress, device=options.get("device"),
                       overflow=bool(options.get("overflow", False)))


def doctor() -> dict[str, Any]:
    try:
        import numba
    except ImportError as exc:  # the numpy kernels still run
        return {"available": True, "detail": f"built in (numpy kernels only: {exc})"}
    return {"available": True, "detail": f"built in (compiled kernels: numba {numba.__version__})"}
