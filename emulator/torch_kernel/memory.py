"""Which device, and how many samples run at once on it.

A chunk of samples runs with its whole state on the device: neuron state, delay buffers and
ring buffers, the largest temporary of one connection's product, the input counts and the
recorded traces of a window of steps (copied to the host when the window is full). The number
of samples per chunk comes from the device's free memory (CUDA) or a fixed budget (CPU).
"""
from __future__ import annotations

from typing import Callable

import torch

from neurodeploy.emulator.torch_kernel import check_device_name
from neurodeploy.errors import NeurodeployError, OptionError

CPU_MEMORY_BUDGET = 2 << 30  # bytes the CPU kernel may hold (weights, state, windows)
CUDA_FREE_FRACTION = 0.8  # of the free device memory, the rest left to the allocator and libraries
WINDOWS = (64, 16, 4, 1)  # recorded steps held on the device before a copy to the host, tried in order


def resolve(device: str | torch.device) -> torch.device:
    """The torch device, checked to exist here."""
    check_device_name(str(device))
    dev = torch.device(str(device))
    if dev.type != "cuda":
        return dev
    if not torch.cuda.is_available():
        raise OptionError(f"device {device}: torch {torch.__version__} finds no CUDA device here (a CPU-only build, "
                          f"or no GPU visible); run with --device cpu (device='cpu')")
    index = 0 if dev.index is None else dev.index
    count = torch.cuda.device_count()
    if index >= count:
        raise OptionError(f"device {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


def budget(device: torch.device, fixed_bytes: int, memory_budget: int | None) -> int:
    """Bytes left for samples: ``memory_budget`` (or the CPU budget) less the weights already
    built; on CUDA, a fraction of the free memory (the weights are resident by then)."""
    if memory_budget is not None:
        return int(memory_budget) - fixed_bytes
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int((free + cached) * CUDA_FREE_FRACTION)
    return CPU_MEMORY_BUDGET - fixed_bytes


def plan(batch: int, steps: int, per_sample: Callable[[int], int], available: int, device: torch.device,
         fixed_bytes: int) -> tuple[int, int]:
    """(samples per chunk, recorded steps per window): the longest window with which at least one
    sample fits, then as many samples as fit with it."""
    for window in sorted({min(w, steps) for w in WINDOWS}, reverse=True):
        need = per_sample(window)
        if need <= available:
            return max(1, min(batch, available // need)), window
    raise NeurodeployError(
        f"the torch kernel on {device}: one sample needs {_mib(per_sample(1))} (neuron state, delay and ring "
        f"buffers, one connection's product, one recorded step) and {_mib(max(available, 0))} are available "
        f"beside {_mib(fixed_bytes)} of weights; free device memory, record fewer states, or run without --device "
        f"(the compiled CPU kernel)")


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
