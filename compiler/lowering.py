"""Lower a normalized NIR graph to NetworkIR.

Neuron nodes (and Threshold) become populations. Every path of linear operator nodes from a
source (Input or population) to a population becomes one projection; fan-in is a sum, so
paths are independent. Biases are folded: the operator graph is evaluated once with all
sources at zero, and what arrives at a population is its constant bias current. An Output
fed by operators rather than a neuron gets a ``Sum`` population (v = summed input) so that
its value can be recorded.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse

from neurodeploy.compiler.frontend import Graph, LoadedModel, Node
from neurodeploy.compiler.frontend.graph import NEURON_KINDS, OPERATOR_KINDS, dfs_order
from neurodeploy.compiler.ir import InputPort, NetworkIR, Op, Population, Projection
from neurodeploy.emulator.ops import apply
from neurodeploy.errors import GraphValidationError
from neurodeploy.semantics import Semantics

SPARSE_DENSITY = 0.1  # a weight matrix with fewer non-zeros than this is stored sparse


def lower(model: LoadedModel) -> NetworkIR:
    graph, semantics = model.graph, model.semantics
    warnings = list(graph.warnings)
    sources = {n for n, node in graph.nodes.items() if _is_population(node) or node.kind == "Input"}
    ops = {name: _lower_op(graph.nodes[name], semantics, warnings)
           for name, node in graph.nodes.items() if node.kind in OPERATOR_KINDS}

    # Outputs fed by operators get a Sum population named after the Output node.
    sum_pops: dict[str, Node] = {}
    outputs: dict[str, str] = {}
    for out in graph.outputs:
        preds = graph.predecessors(out)
        if len(preds) == 1 and preds[0] in sources and graph.nodes[preds[0]].kind != "Input":
            outputs[out] = preds[0]
        else:
            node = graph.nodes[out]
            sum_pops[out] = Node(out, "Sum", {}, node.in_shape, node.in_shape)
            outputs[out] = out
    targets = {n for n, node in graph.nodes.items() if _is_population(node)} | set(sum_pops)

    paths = _paths(graph, sources, targets, sum_pops)
    order = _population_order(graph, paths, targets)
    position = {name: i for i, name in enumerate(order)}
    bias = _fold_biases(graph, ops, targets, sum_pops)

    _check_time_constants(graph, semantics, warnings)
    populations: dict[str, Population] = {}
    for name in order:
        node = sum_pops.get(name) or graph.nodes[name]
        params = {k: np.asarray(v, dtype=np.float64) for k, v in node.params.items()}
        populations[name] = Population(name, node.kind, tuple(node.out_shape), params,
                                       bias.get(name, np.zeros(node.out_shape)))
    projections = []
    for src, chain, dst in paths:
        name = "/".join(chain) if chain else f"{src}->{dst}"
        shape = graph.nodes[src].out_shape
        chain_ops = [ops[c] for c in chain] or [Op("reshape", f"{src}->{dst}", shape, populations[dst].shape)]
        if chain_ops[-1].out_shape != populations[dst].shape:
            last = chain_ops[-1]
            chain_ops.append(Op("reshape", last.node, last.out_shape, populations[dst].shape))
        recurrent = src in position and position[src] >= position[dst]
        projections.append(Projection(name, src, dst, chain_ops, recurrent))
    inputs = {n: InputPort(n, tuple(graph.nodes[n].out_shape)) for n in graph.inputs}
    return NetworkIR(inputs, populations, projections, outputs, semantics, graph.source, warnings)


def _check_time_constants(graph: Graph, semantics: Semantics, warnings: list[str]) -> None:
    """Forward Euler with dt > tau overshoots (the decay factor 1 - dt/tau turns negative)."""
    if semantics.integrator != "euler":
        return
    for name, node in graph.nodes.items():
        for field in ("tau", "tau_mem", "tau_syn"):
            tau = node.params.get(field)
            if tau is not None and np.max(semantics.dt / tau) > 1:
                warnings.append(
                    f"node '{name}': dt/{field} = {np.max(semantics.dt / tau):.3g} > 1, so forward Euler "
                    f"overshoots; use a smaller --dt (<= {np.min(tau):.3g} s) or --integrator exact"
                )


def _is_population(node: Node) -> bool:
    return node.kind in NEURON_KINDS or node.kind == "Threshold"


def _paths(graph: Graph, sources: set[str], targets: set[str], sum_pops: dict[str, Node]):
    """All (source, [operator nodes], target) paths; an operator-only cycle is an error."""
    found: list[tuple[str, list[str], str]] = []

    def walk(src: str, node: str, chain: list[str]) -> None:
        for nxt in sorted(set(graph.successors(node))):
            kind = graph.nodes[nxt].kind
            if nxt in targets:
                found.append((src, chain, nxt))
            elif kind == "Output":
                if nxt in sum_pops:
                    found.append((src, chain, nxt))
            elif kind in OPERATOR_KINDS:
                if nxt in chain:
                    raise GraphValidationError(
                        f"{graph.source}: node '{nxt}': cycle through {' -> '.join(chain + [nxt])} has no "
                        f"neuron node; a cycle needs a stateful node (LIF, CubaLIF, ...) to be computable"
                    )
                walk(src, nxt, chain + [nxt])

    for src in sorted(sources):
        walk(src, src, [])
    return found


def _population_order(graph: Graph, paths, targets: set[str]) -> list[str]:
    edges = sorted({(src, dst) for src, _, dst in paths})
    names = sorted(targets | {s for s, _ in edges})
    order, _ = dfs_order(names, edges, sorted(graph.inputs))
    return [n for n in order if n in targets]


def _fold_biases(graph: Graph, ops: dict[str, Op], targets: set[str], sum_pops) -> dict[str, np.ndarray]:
    """Evaluate the operator nodes with every source at zero; what reaches a target is its bias."""
    op_edges = [(a, b) for a, b in graph.edges if a in ops and (b in ops or b in targets or b in sum_pops)]
    order, _ = dfs_order(list(ops) + sorted(targets), op_edges, [])
    value: dict[str, np.ndarray] = {}
    bias: dict[str, np.ndarray] = {}
    for name in order:
        if name not in ops:
            continue
        node, op = graph.nodes[name], ops[name]
        incoming = [value[a] for a in graph.predecessors(name) if a in value]
        x = sum(v.reshape(op.in_shape) for v in incoming) if incoming else np.zeros(op.in_shape)
        y = apply(op, x[None])[0] if incoming else np.zeros(op.out_shape)
        b = node.params.get("bias")
        if b is not None and np.any(b):
            y = y + (b if node.kind in ("Affine",) else b.reshape((-1,) + (1,) * (len(op.out_shape) - 1)))
        if np.any(y):
            value[name] = y
    for target in sorted(targets | set(sum_pops)):
        parts = [value[a] for a in graph.predecessors(target) if a in value]
        if parts:
            shape = (sum_pops[target] if target in sum_pops else graph.nodes[target]).out_shape
            bias[target] = sum(p.reshape(shape) for p in parts)
    return bias


def _lower_op(node: Node, semantics: Semantics, warnings: list[str]) -> Op:
    p, kind = node.params, node.kind
    base = dict(node=node.name, in_shape=tuple(node.in_shape), out_shape=tuple(node.out_shape))
    if kind in ("Affine", "Linear"):
        w = p["weight"]
        density = np.count_nonzero(w) / w.size
        if density < SPARSE_DENSITY and w.size >= 64:
            return Op("sparse", params={"matrix": scipy.sparse.csr_matrix(w), "density": density}, **base)
        return Op("dense", params={"weight": w, "weight_t": np.ascontiguousarray(w.T)}, **base)
    if kind in ("Conv1d", "Conv2d"):
        return Op("conv", params={k: p[k] for k in ("weight", "stride", "padding", "dilation", "groups")}, **base)
    if kind in ("SumPool2d", "AvgPool2d"):
        return Op("sumpool" if kind == "SumPool2d" else "avgpool",
                  params={k: p[k] for k in ("kernel_size", "stride", "padding")}, **base)
    if kind == "Scale":
        return Op("scale", params={"scale": p["scale"]}, **base)
    if kind == "Flatten":
        return Op("reshape", **base)
    if kind == "Delay":
        steps_f = p["delay"] / semantics.dt
        steps = np.rint(steps_f).astype(np.int64)
        if np.any(np.abs(steps_f - steps) > 1e-6 * np.maximum(1, steps_f)):
            warnings.append(f"node '{node.name}': delays are not multiples of dt={semantics.dt:g}; rounded to whole steps")
        return Op("delay", params={"steps": steps.reshape(node.in_shape)}, **base)
    raise GraphValidationError(f"node '{node.name}': {kind} is not an operator")  # pragma: no cover


def describe(net: NetworkIR) -> str:
    """A short human-readable summary, used by `neurodeploy inspect`."""
    lines = []
    for pop in net.populations.values():
        lines.append(f"  population {pop.name}: {pop.kind} x{math.prod(pop.shape)} {list(pop.shape)}")
    for proj in net.projections:
        kinds = "+".join(op.kind for op in proj.ops)
        lines.append(f"  projection {proj.name}: {proj.source} -> {proj.target} [{kinds}]"
                     + (" (recurrent: previous step)" if proj.recurrent else ""))
    return "\n".join(lines)
