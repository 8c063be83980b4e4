"""Turn each NetworkIR projection into one hardware-shaped connection.

A projection is a chain of linear operators; hardware holds one synaptic map per connection.
A chain that is a single dense, sparse or conv operator keeps its form (conv stays conv); a
chain of convolutions and poolings is folded into one convolution where that is exact
(compiler/conv_fold.py). Any other chain (pooling then a dense layer, a scale, ...) is the
product of its operators' sparse matrices, each built by index arithmetic in O(synapses).
Delay operators become synaptic delays in steps:
a uniform delay anywhere, or per-element delays on the source or target side of the chain.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse

from neurodeploy.format import convolution
from neurodeploy.compiler.conv_fold import fold
from neurodeploy.compiler.ir import NetworkIR, Op, Projection
from neurodeploy.errors import UnsupportedError

LINEAR_KINDS = ("dense", "sparse", "conv", "sumpool", "avgpool", "scale")
SPARSE_DENSITY = 0.1


@dataclass
class Connection:
    """One connection's float synaptic map (weights act on the source's flat output)."""

    name: str
    source: str
    target: str
    kind: str  # dense | sparse | conv
    n_in: int
    n_out: int
    recurrent: bool
    weight: Any  # dense: (n_out, n_in) array; sparse: scipy CSR (n_out, n_in); conv: kernel
    delay: int = 0  # uniform part, steps
    delay_in: np.ndarray | None = None  # per source neuron, steps (added to ``delay``)
    delay_out: np.ndarray | None = None  # per target neuron, steps
    conv: dict[str, Any] = field(default_factory=dict)  # stride, padding, dilation, groups, in/out shape

    @property
    def synapses(self) -> int:
        if self.kind == "dense":
            return int(np.count_nonzero(self.weight))
        if self.kind == "sparse":
            return int(self.weight.nnz)
        return convolution.synapse_count(self.weight, convolution.ConvGeometry.of(self.conv))

    def max_delay(self) -> int:
        extra = 0
        if self.delay_in is not None:
            extra += int(self.delay_in.max())
        if self.delay_out is not None:
            extra += int(self.delay_out.max())
        return self.delay + extra

    def as_matrix(self) -> scipy.sparse.csr_matrix:
        """The connection as an explicit (n_out, n_in) sparse matrix (any kind)."""
        if self.kind == "dense":
            return scipy.sparse.csr_matrix(self.weight)
        if self.kind == "sparse":
            return self.weight.tocsr()
        return convolution.as_csr(np.asarray(self.weight, dtype=np.float64), convolution.ConvGeometry.of(self.conv))


def connections(net: NetworkIR) -> list[Connection]:
    return [_connection(net, proj) for proj in net.projections]


def _connection(net: NetworkIR, proj: Projection) -> Connection:
    ops = [op for op in proj.ops if op.kind != "reshape"]
    linear = [op for op in ops if op.kind in LINEAR_KINDS]
    n_in = _size_of(net, proj.source)
    n_out = net.populations[proj.target].size
    delay, delay_in, delay_out = _delays(proj, ops)
    base = dict(name=proj.name, source=proj.source, target=proj.target, n_in=n_in, n_out=n_out,
                recurrent=proj.recurrent, delay=delay, delay_in=delay_in, delay_out=delay_out)
    if len(linear) == 1 and linear[0].kind == "dense":
        return Connection(kind="dense", weight=linear[0].params["weight"], **base)
    if len(linear) == 1 and linear[0].kind == "sparse":
        return Connection(kind="sparse", weight=linear[0].params["matrix"].tocsr(), **base)
    if len(linear) == 1 and linear[0].kind == "conv":
        op = linear[0]
        geometry = {k: op.params[k] for k in ("stride", "padding", "dilation", "groups")}
        geometry.update(in_shape=op.in_shape, out_shape=op.out_shape)
        return Connection(kind="conv", weight=op.params["weight"], conv=geometry, **base)
    folded = fold(linear)
    if folded is not None:
        return Connection(kind="conv", weight=folded.weight, conv=folded.geometry(), **base)
    if not linear:  # identity (a direct edge, or only reshapes/delays)
        matrix = scipy.sparse.identity(n_in, format="csr")
    else:
        matrix = _compose(linear, n_in)
    if matrix.nnz >= SPARSE_DENSITY * n_in * n_out:
        return Connection(kind="dense", weight=matrix.toarray(), **base)
    return Connection(kind="sparse", weight=matrix, **base)


def _size_of(net: NetworkIR, name: str) -> int:
    if name in net.inputs:
        return int(np.prod(net.inputs[name].shape))
    return net.populations[name].size


def _compose(ops: list[Op], n_in: int) -> scipy.sparse.csr_matrix:
    """The exact matrix of a chain of linear operators: the product of each operator's matrix."""
    matrix = scipy.sparse.identity(n_in, format="csr", dtype=np.float64)
    for op in ops:
        matrix = (_op_matrix(op) @ matrix).tocsr()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def _op_matrix(op: Op) -> scipy.sparse.csr_matrix:
    """One linear operator as an (n_out, n_in) sparse matrix, by index arithmetic."""
    p = op.params
    if op.kind == "dense":
        return scipy.sparse.csr_matrix(np.asarray(p["weight"], dtype=np.float64))
    if op.kind == "sparse":
        return p["matrix"].astype(np.float64).tocsr()
    if op.kind == "scale":
        scale = np.broadcast_to(np.asarray(p["scale"], dtype=np.float64), op.in_shape).reshape(-1)
        return scipy.sparse.diags(scale, format="csr")
    as_conv = fold([op])
    if as_conv is not None:
        return convolution.as_csr(as_conv.weight, as_conv)
    if op.kind == "conv":  # 1-D
        geometry = {k: p[k] for k in ("stride", "padding", "dilation", "groups")}
        geometry.update(in_shape=op.in_shape, out_shape=op.out_shape)
        return convolution.as_csr(np.asarray(p["weight"], dtype=np.float64), convolution.ConvGeometry.of(geometry))
    raise UnsupportedError(f"node '{op.node}': operator {op.kind} over shape {list(op.in_shape)} has no synaptic form")


def _delays(proj: Projection, ops: list[Op]) -> tuple[int, np.ndarray | None, np.ndarray | None]:
    uniform = 0
    per_in = per_out = None
    for index, op in enumerate(ops):
        if op.kind != "delay":
            continue
        steps = np.asarray(op.params["steps"]).reshape(-1)
        if steps.size and np.all(steps == steps[0]):
            uniform += int(steps[0])
        elif all(o.kind == "delay" for o in ops[:index]):
            per_in = steps if per_in is None else per_in + steps
        elif all(o.kind == "delay" for o in ops[index + 1:]):
            per_out = steps if per_out is None else per_out + steps
        else:
            raise UnsupportedError(
                f"projection '{proj.name}': node '{op.node}' delays elements differently in the middle of a "
                f"chain of operators; hardware delays are per synapse: move the Delay next to a neuron layer "
                f"or make its delays uniform"
            )
    return uniform, per_in, per_out
