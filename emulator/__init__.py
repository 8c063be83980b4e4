"""Float reference simulator and bit-accurate integer kernels, one per target."""
from __future__ import annotations

from typing import Any, Iterable


def run_program(program: Any, inputs: Any, *, record: Iterable[str] = ("v",), progress: bool = False) -> dict:
    """Run a quantized program with the kernel of its target."""
    if program.target == "spinnaker":
        from neurodeploy.emulator.spinnaker import run
    else:
        from neurodeploy.emulator.fixed_point import run
    return run(program, inputs, record=record, progress=progress)
