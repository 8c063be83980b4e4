"""Read a ``.nir`` file (HDF5) into a RawGraph, with errors that name the file and node."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodeploy.compiler.frontend.raw import RawGraph, RawNode
from neurodeploy.errors import NIRFileError


def read_file(path: str | Path) -> RawGraph:
    path = Path(path)
    if not path.exists():
        raise NIRFileError(f"{path}: no such file")
    if path.is_dir():
        raise NIRFileError(f"{path}: is a directory, expected a .nir file")
    if path.stat().st_size == 0:
        raise NIRFileError(f"{path}: the file is empty; expected a NIR graph written by nir.write")
    if not h5py.is_hdf5(path):
        raise NIRFileError(f"{path}: not an HDF5 file; a .nir file is HDF5 as written by nir.write")
    try:
        with h5py.File(path, "r") as handle:
            if "node" not in handle:
                raise NIRFileError(
                    f"{path}: HDF5 file without a 'node' group; not a NIR graph (keys: {sorted(handle.keys())})"
                )
            root = _read_node(handle["node"], path, "")
    except NIRFileError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise NIRFileError(f"{path}: unreadable HDF5 (truncated or corrupted?): {exc}") from None
    if root.kind != "NIRGraph" or root.graph is None:
        raise NIRFileError(f"{path}: the top-level node is a {root.kind}, expected a NIRGraph")
    return root.graph


def _read_value(dataset: h5py.Dataset) -> Any:
    value = dataset[()]
    if isinstance(value, bytes):
        return value.decode("utf8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return np.array([v.decode("utf8") if isinstance(v, bytes) else v for v in value.ravel()],
                        dtype=object).reshape(value.shape)
    return value


def _read_group(group: h5py.Group) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in group.items():
        out[key] = _read_group(item) if isinstance(item, h5py.Group) else _read_value(item)
    return out


def _read_node(group: Any, path: Path, name: str) -> RawNode:
    label = name or "<root>"
    if not isinstance(group, h5py.Group):
        raise NIRFileError(f"{path}: node '{label}': expected an HDF5 group, found a dataset")
    if "type" not in group:
        raise NIRFileError(f"{path}: node '{label}': field 'type' is missing (every NIR node stores its type)")
    kind = _read_value(group["type"])
    if not isinstance(kind, str):
        raise NIRFileError(f"{path}: node '{label}': field 'type' is not a string")
    metadata = _read_group(group["metadata"]) if isinstance(group.get("metadata"), h5py.Group) else {}
    if kind == "NIRGraph":
        if "nodes" not in group or not isinstance(group["nodes"], h5py.Group):
            raise NIRFileError(f"{path}: node '{label}': field 'nodes' is missing")
        nodes = {
            key: _read_node(child, path, f"{name}.{key}" if name else key)
            for key, child in group["nodes"].items()
        }
        edges = _read_edges(group, path, label)
        return RawNode(kind, {}, metadata, graph=RawGraph(nodes, edges, metadata))
    fields = {
        key: (_read_group(item) if isinstance(item, h5py.Group) else _read_value(item))
        for key, item in group.items()
        if key not in ("type", "metadata")
    }
    return RawNode(kind, fields, metadata)


def _read_edges(group: h5py.Group, path: Path, label: str) -> list[tuple[str, str]]:
    if "edges" not in group:
        raise NIRFileError(f"{path}: node '{label}': field 'edges' is missing")
    raw = group["edges"][()]
    arr = np.asarray(raw)
    if arr.size == 0:
        return []
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise NIRFileError(f"{path}: node '{label}': field 'edges' must be an (n, 2) array of names, got shape {arr.shape}")
    edges = []
    for src, dst in arr:
        src = src.decode("utf8") if isinstance(src, bytes) else str(src)
        dst = dst.decode("utf8") if isinstance(dst, bytes) else str(dst)
        edges.append((src, dst))
    return edges
