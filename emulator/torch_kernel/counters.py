"""The overflow counters of emulator/overflow.py, kept on the device.

A kernel asked to count holds one :class:`DeviceCounters` per chunk of samples: counts and first
steps as (populations, kinds, batch) int64 tensors, updated in place each step (no copy to the
host, no synchronisation on a GPU). The driver copies them into the (batch, populations, kinds)
host arrays of ``overflow.to_traces`` when the chunk ends.
"""
from __future__ import annotations

import torch

from neurodeploy.emulator.overflow import INT32_MAX, INT32_MIN


def outside_int32(x: torch.Tensor) -> torch.Tensor:
    """Where int64 values lie outside int32 (a wrap or a saturation at int32 changes them)."""
    return (x < INT32_MIN) | (x > INT32_MAX)


def wrapped(x: torch.Tensor, events: torch.Tensor | None) -> torch.Tensor:
    """arith.wrap32(x); with ``events`` (bool, x's shape) marks in it where the wrap changed x."""
    from neurodeploy.emulator.torch_kernel.arith import wrap32

    w = wrap32(x)
    if events is not None:
        events |= w != x
    return w


class DeviceCounters:
    """Counts and first steps (-1: none) of one chunk, (populations, kinds, batch) int64."""

    def __init__(self, n_pops: int, n_kinds: int, batch: int, device: torch.device):
        self.counts = torch.zeros((n_pops, n_kinds, batch), dtype=torch.int64, device=device)
        self.first = torch.full((n_pops, n_kinds, batch), -1, dtype=torch.int64, device=device)

    def add(self, pop: int, events: torch.Tensor, t: int) -> None:
        """Counts the events of step ``t``: a boolean (kinds, neurons, batch) tensor."""
        per_sample = events.sum(dim=1)
        self.counts[pop] += per_sample
        first = self.first[pop]
        first.copy_(torch.where((per_sample > 0) & (first < 0), t, first))

    def host(self) -> tuple:
        """(counts, first) as (batch, populations, kinds) numpy arrays."""
        return (self.counts.permute(2, 0, 1).cpu().numpy(), self.first.permute(2, 0, 1).cpu().numpy())
