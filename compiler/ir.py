"""NetworkIR: the float, hardware-neutral network every later stage works from.

Populations hold neuron models with per-neuron parameters; projections are chains of linear
operators (dense, sparse, conv, pooling, scale, reshape, delay) from a source (an input or a
population) to a target population. Affine and conv biases have been folded into each target
population's constant ``bias`` current.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.compiler.neurons import KINDS, kinds
from neurodeploy.semantics import Semantics

POPULATION_KINDS = tuple(KINDS)
SPIKING = kinds(spiking=True)
OP_KINDS = ("dense", "sparse", "conv", "sumpool", "avgpool", "scale", "reshape", "delay")


@dataclass
class InputPort:
    name: str
    shape: tuple[int, ...]


@dataclass
class Population:
    name: str
    kind: str
    shape: tuple[int, ...]
    params: dict[str, np.ndarray]
    bias: np.ndarray

    @property
    def spiking(self) -> bool:
        return self.kind in SPIKING

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Op:
    """One linear stage of a projection; ``node`` is the NIR node it came from."""

    kind: str
    node: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Projection:
    name: str
    source: str
    target: str
    ops: list[Op]
    recurrent: bool  # the source is evaluated after the target: it delivers last step's output


@dataclass
class NetworkIR:
    inputs: dict[str, InputPort]
    populations: dict[str, Population]  # in evaluation order
    projections: list[Projection]
    outputs: dict[str, str]  # NIR Output node -> population name
    semantics: Semantics
    source: str = "<graph>"
    warnings: list[str] = field(default_factory=list)

    def projections_into(self, target: str) -> list[Projection]:
        return [p for p in self.projections if p.target == target]
