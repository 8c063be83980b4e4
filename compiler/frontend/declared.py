"""What a ``.nir`` file's datasets declare, checked before any of them is read.

h5py gives a dataset's shape and dtype from the file's metadata, without reading (or
decompressing) its data. Before the reader loads anything, every dataset's declared size is
summed against :data:`MAX_DATASET_BYTES`, and every large weight (over :data:`CHECK_BYTES`) must
match the sizes the graph gives it: its last axis the size of the node that feeds it, its first
the size of the node it feeds. A crafted file that declares a huge, never-written dataset
is refused in milliseconds; small mismatches are left to the graph builder's own messages.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodeploy.errors import NIRFileError

MAX_DATASET_BYTES = 4 << 30  # all datasets of one file together, decompressed (4 GiB)
CHECK_BYTES = 64 << 20  # weights above this must match the graph's sizes before they are read
_SMALL = 64  # elements of a dataset read to learn a size (an Input's shape, a graph's type)
_WEIGHTED = ("Affine", "Linear")
_NEURONS = ("LIF", "CubaLIF", "LI", "IF", "Integrator", "CubaLI")


def check_file(handle: h5py.File, path: Path) -> None:
    """Refuse a file whose datasets declare more than the limit or than its graph allows."""
    _check_graph(handle["node"], path, "")
    _check_total(handle, path)


def _check_total(handle: h5py.File, path: Path) -> None:
    total = 0
    found: list[tuple[str, tuple[int, ...]]] = []

    def visit(name: str, item: Any) -> None:
        nonlocal total
        if isinstance(item, h5py.Dataset) and not found:
            total += _declared_bytes(item)
            if total > MAX_DATASET_BYTES:
                found.append((name, tuple(item.shape or ())))

    handle.visititems(visit)
    if found:
        name, shape = found[0]
        raise NIRFileError(f"{path}: dataset '{name}' declares shape {list(shape)}, taking the file's datasets over "
                           f"{MAX_DATASET_BYTES} bytes in all; the file is damaged or crafted")


def _declared_bytes(dataset: h5py.Dataset) -> int:
    shape = dataset.shape or ()
    itemsize = dataset.dtype.itemsize if dataset.dtype.kind != "O" else 64
    return math.prod(int(n) for n in shape) * max(int(itemsize), 1)


def _small(group: Any, key: str) -> Any:
    """The value of a small dataset ``key`` of ``group``, else None (absent, a group or large)."""
    item = group.get(key) if isinstance(group, h5py.Group) else None
    if not isinstance(item, h5py.Dataset) or math.prod(item.shape or ()) > _SMALL:
        return None
    value = item[()]
    return value.decode("utf8", errors="replace") if isinstance(value, bytes) else value


def _check_graph(group: Any, path: Path, name: str) -> None:
    """Check the large weights of one NIRGraph group (and its subgraphs) against its edges."""
    nodes = group.get("nodes") if isinstance(group, h5py.Group) else None
    if not isinstance(nodes, h5py.Group):
        return
    kinds = {key: _small(child, "type") for key, child in nodes.items()}
    for key, child in nodes.items():
        if kinds[key] == "NIRGraph":
            _check_graph(child, path, f"{name}.{key}" if name else key)
    for src, dst in _edges(group):
        _check_edge(nodes, kinds, src, dst, path, name)


def _edges(group: h5py.Group) -> list[tuple[str, str]]:
    item = group.get("edges")
    if not isinstance(item, h5py.Dataset) or item.ndim != 2 or item.shape[1] != 2 or item.size > 2_000_000:
        return []  # the reader reports a malformed edge list itself
    return [(_text(a), _text(b)) for a, b in item[()]]


def _text(value: Any) -> str:
    return value.decode("utf8", errors="replace") if isinstance(value, bytes) else str(value)


def _check_edge(nodes: h5py.Group, kinds: dict, src: str, dst: str, path: Path, graph: str) -> None:
    """A large weight of ``dst`` must take the size of ``src``; one of ``src`` must give the size of ``dst``."""
    if src in nodes and dst in nodes and kinds.get(dst) in _WEIGHTED:
        _check_weight(nodes[dst], _size_out(nodes[src], kinds.get(src)), -1, src, path, _label(graph, dst))
    if src in nodes and dst in nodes and kinds.get(src) in _WEIGHTED:
        _check_weight(nodes[src], _size_in(nodes[dst], kinds.get(dst)), 0, dst, path, _label(graph, src))


def _label(graph: str, key: str) -> str:
    return f"{graph}.{key}" if graph else key


def _check_weight(node: h5py.Group, size: int | None, axis: int, other: str, path: Path, label: str) -> None:
    weight = node.get("weight")
    if size is None or not isinstance(weight, h5py.Dataset) or _declared_bytes(weight) <= CHECK_BYTES:
        return
    shape = tuple(int(n) for n in weight.shape or ())
    if not shape or shape[axis] != size:
        side = "input" if axis == -1 else "output"
        raise NIRFileError(f"{path}: node '{label}': dataset 'weight' declares shape {list(shape)}, but its {side} "
                           f"'{other}' has {size} values; the file is damaged or crafted")


def _size_out(node: h5py.Group, kind: str | None) -> int | None:
    """How many values ``node`` sends, where its declared shapes tell (None where they do not)."""
    if kind in _WEIGHTED:
        weight = node.get("weight")
        return int(weight.shape[0]) if isinstance(weight, h5py.Dataset) and weight.ndim == 2 else None
    return _size_in(node, kind)


def _size_in(node: h5py.Group, kind: str | None) -> int | None:
    """How many values ``node`` takes, where its declared shapes tell (None where they do not)."""
    if kind in ("Input", "Output"):
        shape = _small(node, "shape")
        return int(np.prod(shape)) if isinstance(shape, np.ndarray) and shape.dtype.kind in "iu" else None
    if kind in _NEURONS:
        sizes = [math.prod(d.shape) for d in node.values() if isinstance(d, h5py.Dataset) and d.ndim >= 1]
        size = max(sizes, default=0)
        return int(size) if size > 1 else None
    if kind in _WEIGHTED:
        weight = node.get("weight")
        return int(weight.shape[-1]) if isinstance(weight, h5py.Dataset) and weight.ndim == 2 else None
    return None
