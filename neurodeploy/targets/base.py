"""The shape of a target description."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limit:
    """One resource limit: ``name`` (what is counted), ``size`` and where the number comes from."""

    name: str
    size: float
    unit: str
    source: str


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    neurons_per_core: int
    cores_per_chip: int
    chips_per_board: int
    core_limits: dict[str, Limit]  # per core, beyond the neuron count
    formats: dict[str, Any]  # number formats (bits, fractional bits, ranges)
    costs: dict[str, Any] = field(default_factory=dict)  # energy/latency constants with sources
    sources: tuple[str, ...] = ()
