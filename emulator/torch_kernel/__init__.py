"""The bit-accurate integer kernels on torch: the numpy kernels' integers on a CPU or a GPU.

``run(program, inputs, record=..., device="cuda")`` returns what emulator/fixed_point.py (loihi2,
generic profile) or emulator/spinnaker.py returns for the same program and inputs, integer for
integer: every neuron state is an int64 tensor and every step follows the numpy kernel's order
and arithmetic (wraps and saturations included; arith.py). Connection products are exact by
construction (synapses.py: float32/float64 only where every partial sum is provably an integer
within the format's exact range, int64 otherwise). Samples run in chunks sized to the device's
memory (memory.py); a GPU pays off for large networks and batches, where the numba kernels
(fast=True of the numpy modules) walk events one by one on the CPU.

Importing this package does not import torch; ``run`` does.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from neurodeploy.errors import NeurodeployError, OptionError

__all__ = ["run", "check_device_name"]


def check_device_name(device: str) -> None:
    """Refuse a device string other than cpu, cuda or cuda:N, without importing torch."""
    import re

    if not re.fullmatch(r"cpu|cuda(:\d+)?", str(device)):
        raise OptionError(f"device {device!r}: expected cpu, cuda or cuda:N")


def run(program: Any, inputs: Any, *, record: Iterable[str] = ("v",), device: Any = "cpu", progress: bool = False,
        memory_budget: int | None = None, overflow: bool = False) -> dict[str, np.ndarray]:
    """Emulate ``program`` on ``device`` (cpu, cuda, cuda:N); the numpy kernel's traces:
    ``spikes.<pop>`` (uint8) and ``v.<pop>``, ``u.<pop>`` (fixed point) or ``v.<pop>``, ``i.<pop>``
    (spinnaker) as int64, each (batch, steps, *shape). ``memory_budget`` (bytes) caps what one
    chunk of samples may hold on the device (default: 80% of the free GPU memory, 2 GiB on CPU).
    ``overflow`` adds the numpy kernels' overflow counters (emulator/overflow.py), counted on the device."""
    check_device_name(device)
    try:
        import torch
    except ImportError as exc:
        raise NeurodeployError(f"the torch kernel needs torch ({exc}); install it, or run without --device") from None
    from neurodeploy.emulator.overflow import kinds_of
    from neurodeploy.emulator.torch_kernel import driver, memory

    dev = memory.resolve(device)
    record = tuple(record)
    kernel_module, arrays = _checked(program, inputs, record)
    x_max = {name: max(-int(a.min()), int(a.max())) if a.size else 0 for name, a in arrays.items()}
    try:
        with torch.inference_mode():
            kernel = kernel_module.Kernel(program, x_max, dev, record, overflow)
            kinds = len(kinds_of(program.target)) if overflow else None
            return driver.execute(kernel, program, arrays, record, dev, progress, memory_budget, kinds)
    except torch.cuda.OutOfMemoryError as exc:
        raise NeurodeployError(f"the torch kernel ran out of memory on {dev} ({str(exc).splitlines()[0]}); "
                               f"pass a smaller memory_budget, or run on fewer samples") from None


def _checked(program: Any, inputs: Any, record: tuple[str, ...]) -> tuple[Any, dict[str, np.ndarray]]:
    """(kernel module, {input: (batch, steps, size) int64}) with the numpy kernel's checks."""
    from neurodeploy.emulator.inputs import program_inputs

    if program.target == "spinnaker":
        from neurodeploy.emulator.torch_kernel import spinnaker as module

        module.check_record(record)
        return module, program_inputs(program, inputs, target_label="SpiNNaker", allow_negative=False)
    from neurodeploy.emulator.torch_kernel import fixed_point as module

    module.check_record(record)
    return module, program_inputs(program, inputs)
