"""What a ``.nir`` file's datasets declare, checked before any of them is read.

h5py gives a dataset's shape and dtype from the file's metadata, without reading (or
decompressing) its data. Before the reader loads anything, every dataset's declared size is
summed against :data:`MAX_DATASET_BYTES`, and every node's datasets are held to what the graph
around them allows (upper bounds, so that no file the graph builder accepts is refused here):

* geometry and type fields hold a few values: a shape (Input, Output, Flatten's input_type and
  output_type, any node's input_type/output_type), a conv's stride, padding, dilation and
  input_shape (one per spatial axis), groups, a pooling's kernel_size, stride and padding;
* a neuron's (LIF, CubaLIF, IF, LI, CubaLI, I), Scale's, Threshold's and Delay's parameters hold
  a scalar or one value per neuron: at most the node's size, which the graph gives (the weights
  next to it, an Input's shape, the node's other parameters; the smallest of these);
* an Affine/Linear weight is (out, in): in at most what the node that feeds it sends, out at
  most the size of the node it feeds (a Flatten sends what it takes: its input_type tells); its
  bias at most out;
* a Conv1d/Conv2d weight is (C_out, C_in / groups, *kernel): C_out at most the size of the node
  it feeds, C_in / groups at most what feeds it, each kernel axis at most the padded input;
  its bias at most C_out.

A crafted file that declares a huge, never-written dataset is refused in milliseconds, naming the
node, the dataset and the shape the graph allows; mismatches of datasets under :data:`CHEAP_BYTES`
cost little to read and are left to the graph builder's own messages. A file consistent
throughout is only held to the total, and so is what the graph does not bound: Output shapes,
which real files get wrong and the builder repairs, are not used, so the out axis of a weight
that feeds an Output directly is held to the total only.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodeploy.errors import NIRFileError

MAX_DATASET_BYTES = 4 << 30  # all datasets of one file together, decompressed (4 GiB)
CHEAP_BYTES = 1 << 20  # a dataset over what the graph allows is refused unread above this size
_SMALL = 64  # elements of a dataset read to learn a size (an Input's shape, a graph's type)
_WEIGHTED = ("Affine", "Linear")
_CONV = {"Conv1d": 1, "Conv2d": 2}  # spatial axes
_NEURONS = ("LIF", "CubaLIF", "LI", "IF", "I", "Integrator", "CubaLI")
_PER_NEURON = _NEURONS + ("Scale", "Threshold", "Delay")  # parameters: a scalar or one per neuron
_SAME_SIZE = _PER_NEURON + ("Flatten",)  # nodes that send as many values as they take
_TYPE_FIELDS = ("input_type", "output_type")
_SHAPE_VALUES = 64  # values of a shape (numpy arrays have at most 64 axes)
_GEOMETRY: dict[str, dict[str, int]] = {  # per node type: the most values each geometry field holds
    "Input": {"shape": _SHAPE_VALUES}, "Output": {"shape": _SHAPE_VALUES},
    "Flatten": {"start_dim": 1, "end_dim": 1},
    "SumPool2d": {"kernel_size": 2, "stride": 2, "padding": 2},
    "AvgPool2d": {"kernel_size": 2, "stride": 2, "padding": 2},
    **{kind: {"stride": n, "padding": n, "dilation": n, "input_shape": n, "groups": 1} for kind, n in _CONV.items()},
}


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


def _ints(value: Any) -> list[int] | None:
    """A small integer dataset's values as a list (a scalar as one value), else None."""
    arr = np.asarray(value) if value is not None else None
    if arr is None or arr.dtype.kind not in "iu":
        return None
    return [int(v) for v in arr.reshape(-1)]


def _shape(dataset: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in dataset.shape or ())


def _costly(dataset: h5py.Dataset) -> bool:
    """Whether reading the dataset would cost more than :data:`CHEAP_BYTES` (below, a mismatch is
    left to the graph builder, whose messages say more)."""
    return _declared_bytes(dataset) > CHEAP_BYTES


def _refuse(path: Path, label: str, key: str, shape: tuple[int, ...], expected: str) -> NIRFileError:
    return NIRFileError(f"{path}: node '{label}': dataset '{key}' declares shape {list(shape)}, but the graph allows "
                        f"{expected}; the file is damaged or crafted")


def _check_graph(group: Any, path: Path, name: str) -> None:
    """Check every node of one NIRGraph group (and its subgraphs) against the graph around it."""
    nodes = group.get("nodes") if isinstance(group, h5py.Group) else None
    if not isinstance(nodes, h5py.Group):
        return
    kinds = {key: _small(child, "type") for key, child in nodes.items()}
    for key, child in nodes.items():
        if kinds[key] == "NIRGraph":
            _check_graph(child, path, _label(name, key))
        elif isinstance(child, h5py.Group):
            _check_geometry(child, kinds[key], path, _label(name, key))
    edges = [(a, b) for a, b in _edges(group) if a in nodes and b in nodes]
    size_in, size_out = _sizes(nodes, kinds, edges)
    feeds = {key: [size_out[a] for a, b in edges if b == key and size_out.get(a)] for key in nodes}
    fed = {key: [size_in[b] for a, b in edges if a == key and size_in.get(b)] for key in nodes}
    for key, child in nodes.items():
        label, kind = _label(name, key), kinds[key]
        if kind in _PER_NEURON:
            _check_per_neuron(child, size_in.get(key), path, label)
        elif kind in _WEIGHTED:
            _check_dense(child, max(feeds[key], default=None), max(fed[key], default=None), path, label)
        elif kind in _CONV:
            _check_conv(child, _CONV[kind], max(feeds[key], default=None), max(fed[key], default=None), path, label)


def _edges(group: h5py.Group) -> list[tuple[str, str]]:
    item = group.get("edges")
    if not isinstance(item, h5py.Dataset) or item.ndim != 2 or item.shape[1] != 2 or item.size > 2_000_000:
        return []  # the reader reports a malformed edge list itself
    return [(_text(a), _text(b)) for a, b in item[()]]


def _text(value: Any) -> str:
    return value.decode("utf8", errors="replace") if isinstance(value, bytes) else str(value)


def _label(graph: str, key: str) -> str:
    return f"{graph}.{key}" if graph else key


def _check_geometry(node: h5py.Group, kind: str | None, path: Path, label: str) -> None:
    """Geometry and type fields hold a few values (read later as small datasets)."""
    limits = dict(_GEOMETRY.get(kind or "", {}))
    for key in _TYPE_FIELDS:
        limits[key] = _SHAPE_VALUES
    for key, most in limits.items():
        item = node.get(key)
        items = list(item.values()) if isinstance(item, h5py.Group) else [item]  # input_type: {port: shape}
        for dataset in items:
            if isinstance(dataset, h5py.Dataset) and _costly(dataset) and math.prod(_shape(dataset)) > most:
                raise _refuse(path, label, key, _shape(dataset), f"at most {most} value{'s' if most > 1 else ''}")


def _own_sizes(node: h5py.Group, kind: str | None) -> list[int]:
    """The sizes a node that sends what it takes declares itself (scalars and (1,) left out): a
    per-neuron node's parameters, a Flatten's input_type and output_type."""
    if kind == "Flatten":
        sizes = []
        for key in _TYPE_FIELDS:
            item = node.get(key)
            for dataset in (item.values() if isinstance(item, h5py.Group) else [item]):
                shape = _ints(_small(dataset.parent, dataset.name.rsplit("/", 1)[-1])) \
                    if isinstance(dataset, h5py.Dataset) else None
                sizes.append(math.prod(shape) if shape else 0)
    else:
        sizes = [math.prod(_shape(d)) for k, d in node.items()
                 if isinstance(d, h5py.Dataset) and k not in ("type",) + _TYPE_FIELDS]
    return [n for n in sizes if n > 1]


def _anchors(nodes: h5py.Group, kinds: dict) -> tuple[dict[str, int], dict[str, int]]:
    """(size taken, size sent) of the nodes whose own fields tell: an Input's shape (more than one
    value), an Affine/Linear's 2-D weight. Output shapes, which files get wrong, are not used."""
    size_in: dict[str, int] = {}
    size_out: dict[str, int] = {}
    for key, child in nodes.items():
        kind = kinds[key]
        if kind == "Input":
            shape = _ints(_small(child, "shape"))
            if shape and math.prod(shape) > 1:
                size_in[key] = size_out[key] = math.prod(shape)
        elif kind in _WEIGHTED:
            weight = child.get("weight")
            if isinstance(weight, h5py.Dataset) and weight.ndim == 2:
                size_out[key], size_in[key] = _shape(weight)
    return size_in, size_out


def _sizes(nodes: h5py.Group, kinds: dict, edges: list[tuple[str, str]]) -> tuple[dict[str, int], dict[str, int]]:
    """Sizes taken and sent per node: the anchors, then each node that sends what it takes the
    smallest of what its neighbours and its own fields say (repeated, so that chains resolve)."""
    size_in, size_out = _anchors(nodes, kinds)
    own = {key: _own_sizes(nodes[key], kinds[key]) for key in nodes
           if kinds[key] in _SAME_SIZE and isinstance(nodes[key], h5py.Group)}
    for _ in range(len(own) + 1):
        changed = False
        for key in own:
            said = own[key] + [size_out[a] for a, b in edges if b == key and a in size_out] \
                + [size_in[b] for a, b in edges if a == key and b in size_in]
            n = min(said, default=None)
            if n is not None and size_in.get(key) != n:
                size_in[key] = size_out[key] = n
                changed = True
        if not changed:
            break
    return size_in, size_out


def _check_per_neuron(node: Any, size: int | None, path: Path, label: str) -> None:
    """Every parameter: a scalar, or at most one value per neuron."""
    if size is None or not isinstance(node, h5py.Group):
        return
    for key, dataset in node.items():
        if isinstance(dataset, h5py.Dataset) and key not in ("type",) + _TYPE_FIELDS and _costly(dataset) \
                and math.prod(_shape(dataset)) > size:
            raise _refuse(path, label, key, _shape(dataset), f"[{size}] (one value per neuron) or a scalar")


def _check_dense(node: Any, n_in: int | None, n_out: int | None, path: Path, label: str) -> None:
    """An Affine/Linear weight (out, in) within what feeds it and what it feeds; its bias within out."""
    weight = node.get("weight") if isinstance(node, h5py.Group) else None
    if isinstance(weight, h5py.Dataset) and _costly(weight):
        shape = _shape(weight)
        bound = [n_out, n_in]
        if len(shape) == 2 and any(b is not None and n > b for n, b in zip(shape, bound)):
            raise _refuse(path, label, "weight", shape, _at_most(bound, ("out", "in")))
        if len(shape) != 2 and n_in and n_out and math.prod(shape) > n_in * n_out:
            raise _refuse(path, label, "weight", shape, _at_most(bound, ("out", "in")))
    out = _shape(weight)[0] if isinstance(weight, h5py.Dataset) and weight.ndim == 2 else n_out
    _check_bias(node, out, path, label)


def _check_bias(node: Any, out: int | None, path: Path, label: str) -> None:
    bias = node.get("bias") if isinstance(node, h5py.Group) else None
    if out is not None and isinstance(bias, h5py.Dataset) and _costly(bias) and math.prod(_shape(bias)) > out:
        raise _refuse(path, label, "bias", _shape(bias), f"[{out}] (one value per output) or a scalar")


def _at_most(bound: list[int | None], names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"{name} <= {b}" if b is not None else name for name, b in zip(names, bound)) + "]"


def _check_conv(node: Any, dims: int, n_in: int | None, n_out: int | None, path: Path, label: str) -> None:
    """A conv weight (C_out, C_in / groups, *kernel) within the sizes around it; its bias within C_out."""
    weight = node.get("weight") if isinstance(node, h5py.Group) else None
    if not isinstance(weight, h5py.Dataset):
        return
    shape = _shape(weight)
    if not _costly(weight):
        _check_bias(node, shape[0] if len(shape) == dims + 2 else n_out, path, label)
        return
    spatial = _ints(_small(node, "input_shape"))
    padding = _ints(_small(node, "padding"))
    kernel: list[int | None] = [n_in] * dims  # a kernel axis beyond the padded input has no output
    if spatial and len(spatial) in (1, dims):
        spatial = spatial * dims if len(spatial) == 1 else spatial
        if padding is None and node.get("padding") is not None:  # "same", "valid": leave the kernel unbounded
            kernel = [None] * dims
        else:
            pad = padding * dims if padding and len(padding) == 1 else (padding or [0] * dims)
            kernel = [s + 2 * max(p, 0) for s, p in zip(spatial, pad)] if len(pad) == dims else [None] * dims
    bound = [n_out, n_in] + kernel
    names = ("C_out", "C_in/groups") + (("kernel",) if dims == 1 else ("kernel_h", "kernel_w"))
    if len(shape) == dims + 2 and any(b is not None and n > b for n, b in zip(shape, bound)):
        raise _refuse(path, label, "weight", shape, _at_most(bound, names))
    if len(shape) != dims + 2 and n_in and n_out and math.prod(shape) > n_in * n_out:
        raise _refuse(path, label, "weight", shape, _at_most(bound, names))
    _check_bias(node, shape[0] if len(shape) == dims + 2 else n_out, path, label)
