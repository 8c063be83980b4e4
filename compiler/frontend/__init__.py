"""NIR frontend: read a .nir file or an in-memory nir.NIRGraph, normalize, validate, and
attach the semantics contract."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurodeploy.compiler.frontend.flatten import flatten_graph
from neurodeploy.compiler.frontend.graph import Graph, Node
from neurodeploy.compiler.frontend.normalize import normalize
from neurodeploy.compiler.frontend.raw import RawGraph, from_nir_graph
from neurodeploy.compiler.frontend.reader import read_file
from neurodeploy.errors import NeurodeployError
from neurodeploy.semantics import Semantics, resolve

__all__ = ["LoadedModel", "Graph", "Node", "load", "load_graph"]


@dataclass
class LoadedModel:
    graph: Graph
    semantics: Semantics
    semantics_source: dict[str, str]  # "option" | "metadata" | "default" per field


def load_graph(source: Any) -> Graph:
    """Read and normalize without resolving semantics."""
    if isinstance(source, (str, Path)):
        raw, label = read_file(source), str(source)
    elif isinstance(source, RawGraph):
        raw, label = source, "<graph>"
    elif type(source).__name__ == "NIRGraph":
        raw, label = from_nir_graph(source), "<graph>"
    else:
        raise NeurodeployError(
            f"cannot load a {type(source).__name__}; pass a .nir path or a nir.NIRGraph"
        )
    return normalize(flatten_graph(raw, label), label)


def load(
    source: Any,
    *,
    dt: float | None = None,
    integrator: str | None = None,
    reset: str | None = None,
    spike_amplitude: float | str | None = None,
    warn: bool = True,
) -> LoadedModel:
    graph = load_graph(source)
    semantics, origin = resolve(
        graph.metadata, dt=dt, integrator=integrator, reset=reset,
        spike_amplitude=spike_amplitude, warn=warn, source=graph.source,
    )
    return LoadedModel(graph, semantics, origin)
