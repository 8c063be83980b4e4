"""The step loop shared by both kernels: chunks of samples, windows of steps, recorded traces.

A kernel (fixed_point.Kernel, spinnaker.Kernel) holds the state of one chunk of samples on the
device and advances it one step at a time; the driver feeds it the input counts of each step,
keeps the recorded values of a window of steps on the device and copies them into the host
arrays (the numpy kernels' ``empty_traces``) when the window is full.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from neurodeploy.emulator.inputs import empty_traces, progress_bar
from neurodeploy.emulator.overflow import to_traces
from neurodeploy.emulator.torch_kernel import memory
from neurodeploy.emulator.torch_kernel.counters import DeviceCounters
from neurodeploy.format.program import Program, QPopulation

Outputs = list[tuple[QPopulation, "torch.Tensor | None", dict[str, torch.Tensor]]]


class Kernel(Protocol):
    fixed_bytes: int  # weights on the device
    counters: "DeviceCounters | None"  # the chunk's overflow counters, None when not counting

    def sample_bytes(self) -> int:
        """Device bytes per sample: state, buffers and the largest temporary of one step."""

    def start(self, batch: int) -> None:
        """Fresh state for ``batch`` samples."""

    def step(self, t: int, inputs: dict[str, torch.Tensor]) -> Outputs:
        """Advance one step; (population, spikes (n, batch) bool or None, recorded states (n, batch))."""


class Recorder:
    """Recorded values of a window of steps, on the device, neuron-major: (window, n, batch)."""

    def __init__(self, program: Program, record: tuple[str, ...], window: int, batch: int, device: torch.device):
        self.buffers: dict[str, torch.Tensor] = {}
        for p in program.populations:
            if p.spiking:
                self.buffers[f"spikes.{p.name}"] = torch.zeros((window, p.size, batch), dtype=torch.uint8, device=device)
            for item in record:
                self.buffers[f"{item}.{p.name}"] = torch.zeros((window, p.size, batch), dtype=torch.int64,
                                                               device=device)

    def put(self, slot: int, outputs: Outputs) -> None:
        for pop, spikes, states in outputs:
            if spikes is not None:
                self.buffers[f"spikes.{pop.name}"][slot].copy_(spikes)
            for item, value in states.items():
                self.buffers[f"{item}.{pop.name}"][slot].copy_(value)

    def flush(self, traces: dict[str, np.ndarray], samples: slice, t0: int, count: int) -> None:
        for key, buf in self.buffers.items():
            host = buf[:count].permute(2, 0, 1).contiguous().cpu().numpy()  # (batch, count, n)
            out = traces[key][samples, t0:t0 + count]
            out[...] = host.reshape(out.shape)


def window_bytes(program: Program, arrays: dict[str, np.ndarray], record: tuple[str, ...], window: int) -> int:
    """Device bytes per sample of a window: recorded traces and the input counts (int64)."""
    neurons = sum(p.size for p in program.populations)
    spiking = sum(p.size for p in program.populations if p.spiking)
    inputs = sum(int(np.prod(a.shape[2:])) for a in arrays.values())
    return window * (spiking + 8 * neurons * len(record) + 16 * inputs)


def execute(kernel: Kernel, program: Program, arrays: dict[str, np.ndarray], record: tuple[str, ...],
            device: torch.device, progress: bool, memory_budget: int | None,
            kinds: int | None = None) -> dict[str, np.ndarray]:
    """Run every sample of ``arrays`` ({input: (batch, steps, size) int64}) through ``kernel``;
    with ``kinds`` (the kernel counts that many overflow kinds) the traces hold its counters too."""
    batch, steps = next(iter(arrays.values())).shape[:2] if arrays else (1, 0)
    traces = empty_traces(program, batch, steps, record)
    counts = np.zeros((batch, len(program.populations), kinds or 0), dtype=np.int64)
    first = np.full_like(counts, -1)
    if kinds is not None:
        traces.update(to_traces(program, counts, first))  # zeros, filled in chunk by chunk below
    if batch == 0 or steps == 0:
        return traces
    available = memory.budget(device, kernel.fixed_bytes, memory_budget)
    chunk, window = memory.plan(batch, steps, lambda w: kernel.sample_bytes() + window_bytes(program, arrays, record, w),
                                available, device, kernel.fixed_bytes)
    bar = progress_bar(batch * steps, "sample-step") if progress else None
    arrays = {name: compact(a) for name, a in arrays.items()}
    for start in range(0, batch, chunk):
        samples = slice(start, min(batch, start + chunk))
        _run_chunk(kernel, program, arrays, traces, record, samples, window, device, bar)
        if kinds is not None and kernel.counters is not None:
            counts[samples], first[samples] = kernel.counters.host()
    if bar is not None:
        bar.close()
    if kinds is not None:
        traces.update(to_traces(program, counts, first))
    return traces


def _run_chunk(kernel: Kernel, program: Program, arrays: dict[str, np.ndarray], traces: dict[str, np.ndarray],
               record: tuple[str, ...], samples: slice, window: int, device: torch.device, bar) -> None:
    batch = samples.stop - samples.start
    steps = next(iter(arrays.values())).shape[1]
    kernel.start(batch)
    recorder = Recorder(program, record, window, batch, device)
    for t0 in range(0, steps, window):
        count = min(window, steps - t0)
        xs = {name: _window_inputs(a[samples, t0:t0 + count], device) for name, a in arrays.items()}
        for k in range(count):
            recorder.put(k, kernel.step(t0 + k, {name: x[k] for name, x in xs.items()}))
        recorder.flush(traces, samples, t0, count)
        if bar is not None:
            bar.update(batch * count)


def compact(counts: np.ndarray) -> np.ndarray:
    """Input counts in the smallest integer type that holds them: what crosses to the device."""
    lo, hi = (int(counts.min()), int(counts.max())) if counts.size else (0, 0)
    small = next(t for t in (np.int8, np.int16, np.int32, np.int64) if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max)
    return counts.astype(small, copy=False)


def _window_inputs(counts: np.ndarray, device: torch.device) -> torch.Tensor:
    """(batch, count, size) host counts as (count, size, batch) int64 on the device; the transpose
    and the widening happen there."""
    host = counts if counts.flags.writeable else counts.copy()  # torch shares only writeable numpy memory
    return torch.from_numpy(host).to(device).permute(1, 2, 0).contiguous().to(torch.int64)
