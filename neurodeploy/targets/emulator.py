"""A generic integer profile for exploring precision; runs only in the emulator.

Widths are configurable (``--weight-bits`` etc. map onto ``Profile``); the defaults mirror
Loihi's 8-bit weights and 24-bit state with 12-bit decays, but without Loihi's quirks
(no ``du + 1``, rounding instead of truncation, no one-step-per-hop latency).
"""
from __future__ import annotations

from dataclasses import dataclass

from neurodeploy.targets.base import Target


@dataclass(frozen=True)
class Profile:
    weight_bits: int = 8
    state_bits: int = 24
    decay_bits: int = 12


TARGET = Target(
    name="emulator",
    description="generic integer profile (configurable widths), emulator only",
    neurons_per_core=1 << 20,
    cores_per_chip=1 << 10,
    chips_per_board=1,
    core_limits={},
    formats={"default_profile": Profile().__dict__},
    sources=("neurodeploy's own definition; see docs/targets.md#emulator",),
)
