"""A NIR graph as plain data: node type names and numpy fields, before any checking.

Both sources (a ``.nir`` HDF5 file, an in-memory ``nir.NIRGraph``) are turned into this one
form, so normalization and validation run once, on one representation, with no help from
nir's own type inference (which fails on scalar parameters and on several real files).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RawNode:
    kind: str  # the NIR type name, e.g. "LIF"
    fields: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    graph: "RawGraph | None" = None  # set for nested NIRGraph nodes


@dataclass
class RawGraph:
    nodes: dict[str, RawNode]
    edges: list[tuple[str, str]]
    metadata: dict[str, Any] = field(default_factory=dict)


_TYPE_FIELDS = ("input_type", "output_type", "metadata")


def _to_numpy(value: Any) -> Any:
    """torch tensors and lists become numpy arrays; strings and None stay as they are."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    try:
        return np.asarray(value)
    except Exception:  # noqa: BLE001 - keep the odd value; validation names it later
        return value


def from_nir_graph(graph: Any) -> RawGraph:
    """Convert an in-memory ``nir.NIRGraph`` (any nir 1.x version) to a RawGraph."""
    nodes: dict[str, RawNode] = {}
    for name, node in dict(getattr(graph, "nodes", {})).items():
        nodes[str(name)] = _node_from_nir(node)
    edges = [(str(a), str(b)) for a, b in getattr(graph, "edges", [])]
    return RawGraph(nodes=nodes, edges=edges, metadata=dict(getattr(graph, "metadata", None) or {}))


def _node_from_nir(node: Any) -> RawNode:
    kind = type(node).__name__
    metadata = dict(getattr(node, "metadata", None) or {})
    if kind == "NIRGraph":
        return RawNode(kind, {}, metadata, graph=from_nir_graph(node))
    fields: dict[str, Any] = {}
    for name, value in vars(node).items():
        if name in _TYPE_FIELDS:
            continue
        fields[name] = _to_numpy(value)
    if kind == "Input":
        fields["shape"] = _first_type(getattr(node, "input_type", None))
    elif kind == "Output":
        fields["shape"] = _first_type(getattr(node, "output_type", None))
    elif kind == "Flatten":
        fields["input_type"] = _first_type(getattr(node, "input_type", None))
    return RawNode(kind, fields, metadata)


def _first_type(types: Any) -> Any:
    if isinstance(types, dict) and types:
        return _to_numpy(next(iter(types.values())))
    return None
