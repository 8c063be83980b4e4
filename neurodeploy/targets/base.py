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
    # (neurons, synapses, distinct sources, max delay[, stored_weights=]) -> use of each core limit;
    # None: no per-core model. stored_weights is passed only where shared_conv_weights holds.
    core_usage: Callable[..., dict[str, float]] | None = None
    # Conv-fed populations are sliced as 2-D tiles (channel group x rows x columns) rather than
    # 1-D strips of the flat (C, H, W) order: a tile hears the union of a small window's receptive
    # fields, shared by its channels. Off where the target's own tools split populations 1-D.
    conv_tiles: bool = False
    # A core stores a conv kernel once (the non-zero entries of its output channels), not one
    # weight per synapse; the mapper then passes core_usage the weights a core stores.
    shared_conv_weights: bool = False
    # (chip of each core, chips available) -> rows of machine-wide limits beyond chips and per-core ones
    machine_limits: Callable[[list[int], int], list[dict]] | None = None
