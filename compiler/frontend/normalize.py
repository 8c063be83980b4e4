"""Check every node's fields, convert them to numpy, infer shapes, broadcast scalars.

Real NIR files carry torch tensors, 0-d parameters, a batch axis in Input, torch-style
Flatten dims and wrong declared Output types. Each is repaired here with a warning; anything
that cannot be repaired raises a GraphValidationError naming file, node and field.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from neurodeploy.compiler.frontend.graph import (
    ALL_KINDS, NEURON_KINDS, Graph, Node, dfs_order,
)
from neurodeploy.compiler.frontend.raw import RawGraph, RawNode
from neurodeploy.errors import GraphValidationError, UnsupportedError

# Per kind: required fields (None) and optional ones with their default.
NEURON_FIELDS: dict[str, dict[str, float | None]] = {
    "LIF": {"tau": None, "r": None, "v_leak": None, "v_threshold": None, "v_reset": 0.0},
    "CubaLIF": {"tau_syn": None, "tau_mem": None, "r": None, "v_leak": None,
                "v_threshold": None, "v_reset": 0.0, "w_in": 1.0},
    "LI": {"tau": None, "r": None, "v_leak": None},
    "CubaLI": {"tau_syn": None, "tau_mem": None, "r": None, "v_leak": None, "w_in": 1.0},
    "IF": {"r": None, "v_threshold": None, "v_reset": 0.0},
    "I": {"r": None},
}
POSITIVE_FIELDS = ("tau", "tau_syn", "tau_mem")
TYPE_FIELDS = ("input_type", "output_type")  # written by some nir versions; shapes are re-inferred
MAX_SIZE = 2**31  # values in one tensor: more is a damaged file, not a network
DENSE_KINDS = ("Affine", "Linear")


class _Ctx:
    def __init__(self, source: str, warnings: list[str]):
        self.source = source
        self.warnings = warnings

    def fail(self, node: str | None, field: str | None, message: str) -> GraphValidationError:
        where = self.source
        if node is not None:
            where += f": node '{node}'"
        if field is not None:
            where += f": field '{field}'"
        return GraphValidationError(f"{where}: {message}")

    def warn(self, node: str, message: str) -> None:
        self.warnings.append(f"node '{node}': {message}")


def normalize(raw: RawGraph, source: str) -> Graph:
    warnings: list[str] = []
    ctx = _Ctx(source, warnings)
    if not raw.nodes:
        raise ctx.fail(None, None, "the graph has no nodes; expected at least Input -> ... -> Output")
    nodes = {name: _normalize_fields(name, node, ctx) for name, node in raw.nodes.items()}
    _check_edges(nodes, raw.edges, ctx)
    edges = _dedup_edges(raw.edges, ctx)
    graph = Graph(nodes=nodes, edges=edges, metadata=dict(raw.metadata), source=source, warnings=warnings)
    if not graph.inputs:
        raise ctx.fail(None, None, "the graph has no Input node; a graph needs Input -> ... -> Output")
    if not graph.outputs:
        raise ctx.fail(None, None, "the graph has no Output node; a graph needs Input -> ... -> Output")
    _infer_shapes(graph, ctx)
    return graph


# ---------------------------------------------------------------- fields

def _numeric(ctx: _Ctx, node: str, field: str, value: Any, *, integer: bool = False) -> np.ndarray:
    if value is None:
        raise ctx.fail(node, field, "is missing")
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError
        if arr.size > MAX_SIZE:  # before converting: a declared (e.g. broadcast) size must not allocate
            raise ctx.fail(node, field, f"has shape {list(arr.shape)} ({arr.size} values), more than {MAX_SIZE}; "
                                        f"not a network that fits in memory")
        arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ctx.fail(node, field, f"must be numeric, got {type(value).__name__} {str(value)[:40]!r}") from None
    except MemoryError:
        raise ctx.fail(node, field, f"has shape {list(np.shape(value))}: too large to load into memory") from None
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.any(np.isnan(arr)) else "infinite"
        raise ctx.fail(node, field, f"contains {bad} values; every parameter must be finite")
    if not integer:
        return arr
    if np.any(arr != np.round(arr)) or np.any(np.abs(arr) > 2**62):
        odd = arr[(arr != np.round(arr)) | (np.abs(arr) > 2**62)].reshape(-1)[0]
        raise ctx.fail(node, field, f"must be whole numbers, got {odd:g}")
    return arr.astype(np.int64)


def _int_scalar(ctx: _Ctx, node: str, field: str, value: Any) -> int:
    arr = _numeric(ctx, node, field, value, integer=True)
    if arr.size != 1:
        raise ctx.fail(node, field, f"must be a single integer, got {arr.reshape(-1).tolist()[:8]}")
    return int(arr.reshape(-1)[0])


def _require(ctx: _Ctx, name: str, node: RawNode, field: str) -> Any:
    if field not in node.fields or node.fields[field] is None:
        raise ctx.fail(name, field, f"is missing (every {node.kind} node needs {field})")
    return node.fields[field]


def _normalize_fields(name: str, node: RawNode, ctx: _Ctx) -> Node:
    kind = node.kind
    if kind not in ALL_KINDS:
        raise UnsupportedError(
            f"{ctx.source}: node '{name}': field 'type': unknown node type '{kind}'; NIR 1.0 defines "
            f"{', '.join(sorted(set(ALL_KINDS)))}"
        )
    p: dict[str, Any] = {}
    if kind in NEURON_FIELDS:
        _warn_unknown_fields(ctx, name, node, NEURON_FIELDS[kind])
        for field, default in NEURON_FIELDS[kind].items():
            value = node.fields.get(field)
            if value is None:
                if default is None:
                    raise ctx.fail(name, field, f"is missing (every {kind} node needs {field})")
                value = default
            p[field] = _numeric(ctx, name, field, value)
            if field in POSITIVE_FIELDS and np.any(p[field] <= 0):
                raise ctx.fail(name, field, f"must be > 0 seconds, got min {p[field].min():g}")
        return Node(name, kind, p, metadata=node.metadata)
    if kind in ("Input", "Output"):
        shape = node.fields.get("shape")
        if kind == "Input" and shape is None:
            raise ctx.fail(name, "shape", "is missing (an Input node states its shape)")
        p["shape"] = None if shape is None else _shape(ctx, name, "shape", shape)
    elif kind in DENSE_KINDS:
        w = _numeric(ctx, name, "weight", _require(ctx, name, node, "weight"))
        if w.ndim != 2 or w.size == 0:
            raise ctx.fail(name, "weight", f"must be a non-empty 2-D (out, in) matrix, got shape {w.shape}")
        p["weight"] = w
        if kind == "Affine":
            b = _numeric(ctx, name, "bias", _require(ctx, name, node, "bias"))
            if b.ndim == 0:
                b = np.full(w.shape[0], float(b))
            if b.shape != (w.shape[0],):
                raise ctx.fail(name, "bias", f"has shape {b.shape}, expected ({w.shape[0]},) to match weight {w.shape}")
            p["bias"] = b
    elif kind == "Scale":
        p["scale"] = _numeric(ctx, name, "scale", _require(ctx, name, node, "scale"))
    elif kind in ("Conv1d", "Conv2d"):
        p.update(_conv_fields(ctx, name, node, 1 if kind == "Conv1d" else 2))
    elif kind in ("SumPool2d", "AvgPool2d"):
        for field in ("kernel_size", "stride", "padding"):
            p[field] = _pair(ctx, name, field, _require(ctx, name, node, field), 2)
        if np.any(p["kernel_size"] < 1) or np.any(p["stride"] < 1) or np.any(p["padding"] < 0):
            raise ctx.fail(name, "kernel_size", "kernel and stride must be >= 1 and padding >= 0")
    elif kind == "Flatten":
        for field in ("start_dim", "end_dim"):
            value = node.fields.get(field, 0 if field == "start_dim" else -1)
            p[field] = _int_scalar(ctx, name, field, value)
    elif kind == "Delay":
        d = _numeric(ctx, name, "delay", _require(ctx, name, node, "delay"))
        if np.any(d < 0):
            raise ctx.fail(name, "delay", "must be >= 0 seconds")
        p["delay"] = d
    elif kind == "Threshold":
        p["threshold"] = _numeric(ctx, name, "threshold", _require(ctx, name, node, "threshold"))
    return Node(name, kind, p, metadata=node.metadata)


def _warn_unknown_fields(ctx: _Ctx, name: str, node: RawNode, known: dict[str, Any]) -> None:
    """A neuron field the model does not have is ignored, but never silently (e.g. 'tau_mem' on LIF)."""
    unknown = sorted(set(node.fields) - set(known) - set(TYPE_FIELDS))
    if unknown:
        ctx.warn(name, f"ignoring field(s) {', '.join(unknown)}: a {node.kind} node has "
                       f"{', '.join(known)}")


def _shape(ctx: _Ctx, node: str, field: str, value: Any) -> tuple[int, ...]:
    arr = _numeric(ctx, node, field, value, integer=True).reshape(-1)
    if np.any(arr < 1):
        raise ctx.fail(node, field, f"must be positive sizes, got {arr.tolist()}")
    if math.prod(arr.tolist()) > MAX_SIZE:
        raise ctx.fail(node, field, f"{arr.tolist()} is too large ({math.prod(arr.tolist())} values, "
                                    f"at most {MAX_SIZE})")
    return tuple(int(v) for v in arr)


def _pair(ctx: _Ctx, node: str, field: str, value: Any, n: int) -> np.ndarray:
    arr = _numeric(ctx, node, field, value, integer=True).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise ctx.fail(node, field, f"must have {n} values, got {arr.tolist()}")
    return arr


def _conv_fields(ctx: _Ctx, name: str, node: RawNode, dims: int) -> dict[str, Any]:
    w = _numeric(ctx, name, "weight", _require(ctx, name, node, "weight"))
    if w.ndim != dims + 2 or w.size == 0:
        raise ctx.fail(name, "weight", f"must be a non-empty {dims + 2}-D (out, in/groups, kernel...) array, "
                       f"got shape {w.shape}")
    p: dict[str, Any] = {"weight": w}
    p["stride"] = _pair(ctx, name, "stride", node.fields.get("stride", 1), dims)
    p["dilation"] = _pair(ctx, name, "dilation", node.fields.get("dilation", 1), dims)
    groups = _int_scalar(ctx, name, "groups", node.fields.get("groups", 1))
    if groups < 1 or w.shape[0] % groups:
        raise ctx.fail(name, "groups", f"must divide the {w.shape[0]} output channels, got {groups}")
    p["groups"] = groups
    padding = node.fields.get("padding", 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if np.any(p["stride"] != 1):
                raise ctx.fail(name, "padding", "'same' padding needs stride 1")
            padding = (p["dilation"] * (np.array(w.shape[2:]) - 1)) // 2
        else:
            raise ctx.fail(name, "padding", f"must be integers, 'same' or 'valid', got {padding!r}")
    p["padding"] = _pair(ctx, name, "padding", padding, dims)
    if np.any(p["stride"] < 1) or np.any(p["dilation"] < 1) or np.any(p["padding"] < 0):
        raise ctx.fail(name, "stride", "stride and dilation must be >= 1, padding >= 0")
    bias = node.fields.get("bias")
    if bias is None:
        bias = 0.0
    b = _numeric(ctx, name, "bias", bias)
    if b.ndim == 0:
        b = np.full(w.shape[0], float(b))
    if b.shape != (w.shape[0],):
        raise ctx.fail(name, "bias", f"has shape {b.shape}, expected ({w.shape[0]},)")
    p["bias"] = b
    in_shape = node.fields.get("input_shape")
    p["input_shape"] = None if in_shape is None else _shape(ctx, name, "input_shape", in_shape)
    return p


def _dedup_edges(edges: list[tuple[str, str]], ctx: _Ctx) -> list[tuple[str, str]]:
    for (src, dst), count in Counter(edges).items():
        if count > 1:
            ctx.warn(dst, f"edge ({src!r} -> {dst!r}) is listed {count} times; counted once")
    return list(dict.fromkeys(edges))


def _check_edges(nodes: dict[str, Node], edges: list[tuple[str, str]], ctx: _Ctx) -> None:
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                near = [n for n in nodes if n.split(".")[-1] == end.split(".")[-1]]
                hint = f"; did you mean {near[0]!r}?" if near else f"; nodes are {', '.join(list(nodes)[:12])}"
                raise ctx.fail(None, "edges", f"edge ({src!r} -> {dst!r}) names node '{end}', "
                               f"which does not exist{hint}")
        if nodes[dst].kind == "Input":
            raise ctx.fail(None, "edges", f"edge ({src!r} -> {dst!r}) leads into Input node '{dst}'; "
                           f"an Input has no predecessors")
        if nodes[src].kind == "Output":
            raise ctx.fail(None, "edges", f"edge ({src!r} -> {dst!r}) leaves Output node '{src}'; "
                           f"an Output has no successors")
    connected = {n for e in edges for n in e}
    for name, node in nodes.items():
        if name not in connected:
            raise ctx.fail(name, None, f"the {node.kind} node has no edges; connect it or remove it")


# ---------------------------------------------------------------- shapes

def _expected_input(node: Node) -> tuple[int, ...] | int | None:
    """What a node needs as input from its parameters alone: a shape, an element count, or None."""
    p = node.params
    if node.kind in DENSE_KINDS:
        return int(p["weight"].shape[1])
    if node.kind in ("Conv1d", "Conv2d") and p["input_shape"] is not None:
        return (int(p["weight"].shape[1] * p["groups"]),) + tuple(p["input_shape"])
    if node.kind in NEURON_KINDS:
        shapes = [v.shape for v in p.values() if v.ndim > 0]
        return shapes[0] if shapes else None
    return None


def _takes_without_batch(node: Node, shape: tuple[int, ...]) -> bool:
    """Does ``node`` take ``shape`` minus its leading axis as its natural input?"""
    rest = tuple(shape[1:])
    if node.kind in DENSE_KINDS:
        return len(rest) == 1 and rest[0] == int(node.params["weight"].shape[1])
    if node.kind in ("Conv1d", "Conv2d"):
        w = node.params["weight"]
        channels = int(w.shape[1] * node.params["groups"])
        return len(rest) == w.ndim - 1 and rest[0] == channels
    return False


def _fits(shape: tuple[int, ...], expected: tuple[int, ...] | int | None) -> bool:
    if expected is None:
        return True
    if isinstance(expected, int):
        return math.prod(shape) == expected
    return math.prod(shape) == math.prod(expected) and (shape == tuple(expected) or len(shape) == 1 or len(expected) == 1)


def _describe_need(expected: tuple[int, ...] | int) -> str:
    return f"{expected} values" if isinstance(expected, int) else f"shape {list(expected)}"


def _fix_input_shapes(graph: Graph, ctx: _Ctx) -> None:
    for name in graph.inputs:
        node = graph.nodes[name]
        shape = node.params["shape"]
        successors = [graph.nodes[s] for s in graph.successors(name)]
        needs = {s.name: _expected_input(s) for s in successors}
        needs = {s: e for s, e in needs.items() if e is not None}
        if len(shape) > 1 and shape[0] == 1 and successors and all(_takes_without_batch(s, shape) for s in successors):
            # norse's to_nir keeps a batch axis of 1: Input [1, 3] before an Affine(3), or
            # [1, C, H, W] before a Conv2d without input_shape.
            ctx.warn(name, f"shape {list(shape)} has a leading batch axis; using {list(shape[1:])}")
            node.params["shape"] = shape[1:]
            continue
        if all(_fits(shape, e) for e in needs.values()):
            continue
        if len(shape) > 1 and all(_fits(shape[1:], e) for e in needs.values()):
            ctx.warn(name, f"shape {list(shape)} has a leading batch axis; using {list(shape[1:])}")
            node.params["shape"] = shape[1:]
            continue
        wanted = ", ".join(f"'{s}' takes {_describe_need(e)}" for s, e in needs.items())
        raise ctx.fail(name, "shape", f"{list(shape)} does not fit its successors: {wanted}")


def _infer_shapes(graph: Graph, ctx: _Ctx) -> None:
    _fix_input_shapes(graph, ctx)
    order, back = dfs_order(graph.nodes, graph.edges, graph.inputs)
    known: set[str] = set()
    for name in order:
        node = graph.nodes[name]
        preds = [a for a, b in graph.edges if b == name and (a, name) not in back and a in known]
        in_shapes = [graph.nodes[a].out_shape for a in preds]
        if node.kind == "Input":
            node.in_shape = node.out_shape = node.params["shape"]
            known.add(name)
            continue
        if not in_shapes:
            late = [a for a, b in graph.edges if b == name]
            raise ctx.fail(name, None, f"its input shape cannot be inferred: it is only reached through a cycle "
                           f"from {late}; a cycle needs a neuron node to hold state")
        first = in_shapes[0]
        for other, src in zip(in_shapes[1:], preds[1:]):
            if math.prod(other) != math.prod(first):
                raise ctx.fail(name, None, f"inputs disagree in size: '{preds[0]}' gives {list(first)}, "
                               f"'{src}' gives {list(other)}; summed inputs must have one shape")
        node.in_shape = first
        node.out_shape = _output_shape(graph, node, ctx)
        known.add(name)
    # Back edges (recurrence) must agree with the shape of their destination.
    for src, dst in back:
        if math.prod(graph.nodes[src].out_shape) != math.prod(graph.nodes[dst].in_shape):
            raise ctx.fail(dst, None, f"recurrent edge from '{src}' gives {list(graph.nodes[src].out_shape)}, "
                           f"expected {list(graph.nodes[dst].in_shape)}")


def _output_shape(graph: Graph, node: Node, ctx: _Ctx) -> tuple[int, ...]:
    kind, p, shape = node.kind, node.params, node.in_shape
    size = math.prod(shape)
    if kind == "Output":
        declared = p.get("shape")
        if declared is not None and math.prod(declared) != size:
            ctx.warn(node.name, f"declared shape {list(declared)} disagrees with its input {list(shape)}; using {list(shape)}")
        return shape
    if kind in DENSE_KINDS:
        n_in = p["weight"].shape[1]
        if size != n_in:
            raise ctx.fail(node.name, "weight", f"expects {n_in} inputs, but receives shape {list(shape)} ({size} values)")
        return (int(p["weight"].shape[0]),)
    if kind == "Scale":
        s = p["scale"]
        if s.ndim == 0:
            p["scale"] = np.full(shape, float(s))
        elif s.size != size:
            raise ctx.fail(node.name, "scale", f"has {s.size} values, input has {size}")
        p["scale"] = p["scale"].reshape(shape)
        return shape
    if kind in ("Conv1d", "Conv2d"):
        return _conv_shape(node, ctx)
    if kind in ("SumPool2d", "AvgPool2d"):
        if len(shape) != 3:
            raise ctx.fail(node.name, None, f"pooling needs a (channels, height, width) input, got {list(shape)}")
        k, s, pad = p["kernel_size"], p["stride"], p["padding"]
        hw = (np.array(shape[1:]) + 2 * pad - k) // s + 1
        if np.any(hw < 1):
            raise ctx.fail(node.name, "kernel_size", f"{k.tolist()} is larger than the padded input {list(shape[1:])}")
        return (shape[0], int(hw[0]), int(hw[1]))
    if kind == "Flatten":
        return _flatten_shape(graph, node, ctx)
    if kind == "Delay":
        d = p["delay"]
        if d.ndim == 0:
            p["delay"] = np.full(shape, float(d))
        elif d.size != size:
            raise ctx.fail(node.name, "delay", f"has {d.size} values, input has {size}")
        p["delay"] = p["delay"].reshape(shape)
        return shape
    # Neurons and Threshold: parameters define the shape; scalars are broadcast to it.
    param_shapes = [v.shape for v in p.values() if isinstance(v, np.ndarray) and v.ndim > 0]
    for ps in param_shapes:
        if math.prod(ps) != size:
            field = next(f for f, v in p.items() if isinstance(v, np.ndarray) and v.shape == ps)
            raise ctx.fail(node.name, field, f"has shape {list(ps)} ({math.prod(ps)} neurons), "
                           f"but the node receives {list(shape)} ({size} values)")
    target = max(param_shapes, key=len) if param_shapes else shape
    node.in_shape = target
    for field, value in p.items():
        if isinstance(value, np.ndarray):
            p[field] = np.broadcast_to(value.reshape(-1) if value.ndim else value, (size,)).reshape(target).copy()
    return target


def _conv_shape(node: Node, ctx: _Ctx) -> tuple[int, ...]:
    p, shape = node.params, node.in_shape
    w = p["weight"]
    dims = w.ndim - 2
    channels = w.shape[1] * p["groups"]
    spatial = p["input_shape"]
    if len(shape) == dims + 1:
        if spatial is not None and tuple(shape[1:]) != tuple(spatial):
            raise ctx.fail(node.name, "input_shape", f"{list(spatial)} disagrees with the incoming shape {list(shape)}")
        spatial = tuple(shape[1:])
    elif spatial is None:
        raise ctx.fail(node.name, "input_shape", f"is missing and the incoming shape {list(shape)} is not (channels, *spatial)")
    if shape[0] != channels and math.prod(shape) != channels * math.prod(spatial):
        raise ctx.fail(node.name, "weight", f"expects {channels} input channels of {list(spatial)}, receives {list(shape)}")
    node.in_shape = (channels,) + tuple(spatial)
    p["input_shape"] = tuple(spatial)
    k = np.array(w.shape[2:])
    out = (np.array(spatial) + 2 * p["padding"] - p["dilation"] * (k - 1) - 1) // p["stride"] + 1
    if np.any(out < 1):
        raise ctx.fail(node.name, "weight", f"kernel {k.tolist()} does not fit the padded input {list(spatial)}")
    return (int(w.shape[0]),) + tuple(int(v) for v in out)


def _flatten_shape(graph: Graph, node: Node, ctx: _Ctx) -> tuple[int, ...]:
    shape, p = node.in_shape, node.params
    rank = len(shape)
    start, end = p["start_dim"], p["end_dim"]

    def resolve(s: int, e: int) -> tuple[int, int] | None:
        s = s + rank if s < 0 else s
        e = e + rank if e < 0 else e
        return (s, e) if 0 <= s <= e < rank else None

    dims = resolve(start, end)
    wants_vector = all(_expected_input(graph.nodes[s]) is not None and isinstance(_expected_input(graph.nodes[s]), int)
                       for s in graph.successors(node.name))
    torch_style = resolve(start - 1, end - 1 if end > 0 else end)
    if (dims is None or (wants_vector and dims[0] > 0)) and torch_style is not None:
        ctx.warn(node.name, f"start_dim={start} counts the batch axis (torch style); using start_dim={start - 1}")
        dims = torch_style
        p["start_dim"], p["end_dim"] = dims
    if dims is None:
        raise ctx.fail(node.name, "start_dim", f"dims ({start}, {end}) are out of range for input {list(shape)}")
    s, e = dims
    return tuple(shape[:s]) + (math.prod(shape[s:e + 1]),) + tuple(shape[e + 1:])
