"""Read a ``.nir`` file (HDF5) into a RawGraph, with errors that name the file and node.

A damaged HDF5 file can make the HDF5 C library crash (segfault) or loop forever, typically
while it decodes variable-length strings. The file is therefore parsed in a short-lived child
process (where ``os.fork`` exists): a crash or a hang there becomes a one-line NIRFileError.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodeploy.compiler.frontend import declared, isolate
from neurodeploy.compiler.frontend.raw import RawGraph, RawNode
from neurodeploy.errors import NeurodeployError, NIRFileError

ISOLATE = isolate.AVAILABLE  # parse in a child process (see the module docstring)
READ_TIMEOUT_S = 60.0  # plus 1 s per MB: a legitimate file never takes this long


def read_file(path: str | Path) -> RawGraph:
    path = Path(path)
    _check_is_hdf5(path)
    if not ISOLATE:
        return _parse(path)
    timeout = READ_TIMEOUT_S + path.stat().st_size / 1e6
    try:
        return isolate.call_isolated(_parse, path, timeout=timeout)
    except isolate.ChildCrashed as exc:
        raise NIRFileError(f"{path}: the HDF5 library crashed reading the file ({exc}); "
                           f"the file is corrupted") from None
    except isolate.ChildTimeout:
        raise NIRFileError(f"{path}: the HDF5 library did not finish reading the file in {timeout:.0f} s; "
                           f"the file is corrupted (if it is just very large, raise reader.READ_TIMEOUT_S)") from None


def _parse(path: Path) -> RawGraph:
    try:
        with h5py.File(path, "r") as handle:
            if "node" not in handle:
                raise NIRFileError(
                    f"{path}: HDF5 file without a 'node' group; not a NIR graph (keys: {sorted(handle.keys())})"
                )
            declared.check_file(handle, path)  # declared shapes only: nothing large is read before this
            root = _read_node(handle["node"], path, "")
    except NeurodeployError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises many types on a damaged file
        raise NIRFileError(f"{path}: unreadable HDF5 (truncated or corrupted?): {_brief(exc)}") from None
    if root.kind != "NIRGraph" or root.graph is None:
        raise NIRFileError(f"{path}: the top-level node is a {root.kind}, expected a NIRGraph")
    return root.graph


def _check_is_hdf5(path: Path) -> None:
    if not path.exists():
        raise NIRFileError(f"{path}: no such file")
    if path.is_dir():
        raise NIRFileError(f"{path}: is a directory, expected a .nir file")
    if path.stat().st_size == 0:
        raise NIRFileError(f"{path}: the file is empty; expected a NIR graph written by nir.write")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise NIRFileError(f"{path}: cannot be read: {_brief(exc)}") from None
    if not is_hdf5:
        raise NIRFileError(f"{path}: not an HDF5 file; a .nir file is HDF5 as written by nir.write")


def _brief(exc: BaseException) -> str:
    """An exception as one short line: its type and its first words."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _read_value(dataset: Any) -> Any:
    if not isinstance(dataset, h5py.Dataset):
        raise TypeError(f"expected a dataset, found {type(dataset).__name__}")
    value = dataset[()]
    if isinstance(value, bytes):
        return value.decode("utf8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return np.array([v.decode("utf8", errors="replace") if isinstance(v, bytes) else v
                         for v in value.ravel()], dtype=object).reshape(value.shape)
    return value


def _read_item(item: Any) -> Any:
    return _read_group(item) if isinstance(item, h5py.Group) else _read_value(item)


def _read_group(group: h5py.Group) -> dict[str, Any]:
    return {_name(key): _read_item(item) for key, item in group.items()}


def _read_field(group: h5py.Group, key: str, path: Path, label: str) -> Any:
    """One field of a node; a damaged one names the node and field."""
    try:
        return _read_item(group[key])
    except NeurodeployError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises many types on a damaged file
        raise NIRFileError(
            f"{path}: node '{label}': field '{key}': unreadable (corrupted file?): {_brief(exc)}"
        ) from None


def _read_node(group: Any, path: Path, name: str) -> RawNode:
    label = name or "<root>"
    if not isinstance(group, h5py.Group):
        raise NIRFileError(f"{path}: node '{label}': expected an HDF5 group, found a dataset")
    if "type" not in group:
        raise NIRFileError(f"{path}: node '{label}': field 'type' is missing (every NIR node stores its type)")
    kind = _read_field(group, "type", path, label)
    if not isinstance(kind, str):
        raise NIRFileError(f"{path}: node '{label}': field 'type' is not a string; expected a name such as 'LIF'")
    metadata = _read_field(group, "metadata", path, label) if "metadata" in group else {}
    if not isinstance(metadata, dict):
        metadata = {}
    if kind == "NIRGraph":
        if "nodes" not in group or not isinstance(group["nodes"], h5py.Group):
            raise NIRFileError(f"{path}: node '{label}': field 'nodes' is missing; a NIRGraph stores its nodes")
        nodes = {}
        for key, child in group["nodes"].items():
            key = _name(key)  # h5py gives bytes for a name that is not UTF-8
            nodes[key] = _read_node(child, path, f"{name}.{key}" if name else key)
        edges = _read_edges(group, path, label)
        return RawNode(kind, {}, metadata, graph=RawGraph(nodes, edges, metadata))
    fields = {_name(key): _read_field(group, key, path, label) for key in group if key not in ("type", "metadata")}
    return RawNode(kind, fields, metadata)


def _read_edges(group: h5py.Group, path: Path, label: str) -> list[tuple[str, str]]:
    if "edges" not in group:
        raise NIRFileError(f"{path}: node '{label}': field 'edges' is missing; a NIRGraph stores its edges")
    if not isinstance(group["edges"], h5py.Dataset):
        raise NIRFileError(f"{path}: node '{label}': field 'edges' is a group; expected an (n, 2) array of names")
    arr = np.asarray(_read_field(group, "edges", path, label))
    if arr.size == 0:
        return []
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise NIRFileError(
            f"{path}: node '{label}': field 'edges' must be an (n, 2) array of names, got shape {arr.shape}"
        )
    return [(_name(src), _name(dst)) for src, dst in arr]


def _name(value: Any) -> str:
    return value.decode("utf8", errors="replace") if isinstance(value, bytes) else str(value)
