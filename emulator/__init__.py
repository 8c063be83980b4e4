"""Float reference simulator and bit-accurate integer kernels, one per target."""
from __future__ import annotations

from typing import Any, Iterable


def run_program(program: Any, inputs: Any, *, record: Iterable[str] = ("v",), progress: bool = False,
                device: Any = None, overflow: bool = False) -> dict:
    """Run a quantized program with the kernel of its target; with ``device`` (cpu, cuda, cuda:N),
    the torch kernel of emulator/torch_kernel on that device (the same integers). ``overflow``
    adds the overflow counters (``overflow.<pop>.<kind>``, emulator/overflow.py), on every kernel."""
    if device is not None:
        from neurodeploy.emulator.torch_kernel import run as run_torch

        return run_torch(program, inputs, record=record, progress=progress, device=device, overflow=overflow)
    if program.target == "spinnaker":
        from neurodeploy.emulator.spinnaker import run
    else:
        from neurodeploy.emulator.fixed_point import run
    return run(program, inputs, record=record, progress=progress, overflow=overflow)
