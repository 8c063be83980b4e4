"""A quantized program: integers in one target's number formats, plus what maps them back.

``scale`` is the voltage scale of a population: an integer state value ``x`` means
``x / scale`` in the float reference's units. ``latency`` is how many steps later than the
float reference a population reacts on the target (Loihi adds one step per hop).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class QPopulation:
    name: str
    model: str  # target neuron model, e.g. "cuba_lif", "IF_curr_exp"
    kind: str  # the NetworkIR kind it implements
    shape: tuple[int, ...]
    spiking: bool
    scale: np.ndarray  # per neuron
    params: dict[str, np.ndarray]  # integer arrays, per neuron
    latency: int = 0
    readout: str = "v"  # which state holds the population's value ("u" for linear readouts)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class QConnection:
    name: str
    source: str
    target: str
    kind: str  # dense | sparse | conv
    n_in: int
    n_out: int
    recurrent: bool
    arrays: dict[str, np.ndarray]  # weights (integers), indices, per-synapse delays
    attrs: dict[str, Any] = field(default_factory=dict)  # weight_exp, sign_mode, delay, conv geometry

    @property
    def synapses(self) -> int:
        if self.kind == "conv":
            return int(self.attrs["synapses"])
        return int(np.count_nonzero(self.arrays["weight"]))


@dataclass
class Program:
    target: str
    inputs: dict[str, tuple[int, ...]]
    populations: list[QPopulation]
    connections: list[QConnection]
    outputs: dict[str, str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def population(self, name: str) -> QPopulation:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)


# ------------------------------------------------------------------ (de)serialization
# Plain numpy + json: the Lava runner reads programs in its own Python 3.10 environment.

def to_manifest(program: Program) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    pops = []
    for i, pop in enumerate(program.populations):
        arrays[f"p{i}.scale"] = np.asarray(pop.scale, dtype=np.float64)
        for key, value in sorted(pop.params.items()):
            arrays[f"p{i}.{key}"] = compact(np.asarray(value))
        pops.append({"name": pop.name, "model": pop.model, "kind": pop.kind, "shape": list(pop.shape),
                     "spiking": pop.spiking, "latency": pop.latency, "readout": pop.readout,
                     "params": sorted(pop.params)})
    conns = []
    for j, conn in enumerate(program.connections):
        for key, value in sorted(conn.arrays.items()):
            arrays[f"c{j}.{key}"] = compact(np.asarray(value))
        conns.append({"name": conn.name, "source": conn.source, "target": conn.target, "kind": conn.kind,
                      "n_in": conn.n_in, "n_out": conn.n_out, "recurrent": conn.recurrent,
                      "arrays": sorted(conn.arrays), "attrs": plain(conn.attrs)})
    manifest = {"target": program.target, "inputs": {k: list(v) for k, v in program.inputs.items()},
                "populations": pops, "connections": conns, "outputs": dict(program.outputs),
                "attrs": plain(program.attrs)}
    return manifest, arrays


def from_manifest(manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> Program:
    arrays = {k: (v.astype(np.int64) if v.dtype.kind in "iu" else v) for k, v in arrays.items()}
    pops = []
    for i, p in enumerate(manifest["populations"]):
        params = {key: arrays[f"p{i}.{key}"] for key in p["params"]}
        pops.append(QPopulation(p["name"], p["model"], p["kind"], tuple(p["shape"]), bool(p["spiking"]),
                                arrays[f"p{i}.scale"], params, int(p["latency"]), p["readout"]))
    conns = []
    for j, c in enumerate(manifest["connections"]):
        conns.append(QConnection(c["name"], c["source"], c["target"], c["kind"], int(c["n_in"]), int(c["n_out"]),
                                 bool(c["recurrent"]), {key: arrays[f"c{j}.{key}"] for key in c["arrays"]},
                                 dict(c["attrs"])))
    inputs = {k: tuple(v) for k, v in manifest["inputs"].items()}
    return Program(manifest["target"], inputs, pops, conns, dict(manifest["outputs"]), dict(manifest["attrs"]))


def compact(arr: np.ndarray) -> np.ndarray:
    """Integer arrays in the smallest signed type that holds them (artifacts of 100M synapses
    stay a few hundred MB); readers widen to int64 before any arithmetic."""
    if arr.dtype.kind not in "iu" or arr.size == 0:
        return arr
    lo, hi = int(arr.min()), int(arr.max())
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return arr.astype(dtype, copy=False)
    return arr


def plain(value: Any) -> Any:
    """JSON-ready copy: tuples become lists, numpy scalars and arrays become Python values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
