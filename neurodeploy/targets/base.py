"""The shape of a target description."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


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
    default_chips: int = 1  # chips a mapping may use unless told (--chips)
    inputs_on_cores: bool = False  # inputs are sources on cores of their own (SpiNNaker's spike sources)
    # (neurons, synapses, distinct sources, max delay) -> use of each core limit; None: no per-core model
    core_usage: Callable[[int, int, int, int], dict[str, float]] | None = None
    # (chip of each core, chips available) -> rows of machine-wide limits beyond chips and per-core ones
    machine_limits: Callable[[list[int], int], list[dict]] | None = None
