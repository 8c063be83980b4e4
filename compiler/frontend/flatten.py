"""Inline nested NIRGraph nodes: inner nodes become ``outer.inner``; their Input/Output vanish."""
from __future__ import annotations

from neurodeploy.compiler.frontend.raw import RawGraph, RawNode
from neurodeploy.errors import GraphValidationError


def flatten_graph(graph: RawGraph, source: str) -> RawGraph:
    nodes: dict[str, RawNode] = {}
    edges: list[tuple[str, str]] = []
    passthrough: set[str] = set()
    ports: dict[str, tuple[list[str], list[str]]] = {}  # subgraph -> (its inputs, its outputs)

    for name, node in graph.nodes.items():
        if node.kind != "NIRGraph":
            nodes[name] = node
            continue
        inner = flatten_graph(node.graph, source)  # type: ignore[arg-type]
        ins = [f"{name}.{n}" for n, child in inner.nodes.items() if child.kind == "Input"]
        outs = [f"{name}.{n}" for n, child in inner.nodes.items() if child.kind == "Output"]
        ports[name] = (ins, outs)
        for child_name, child in inner.nodes.items():
            full = f"{name}.{child_name}"
            if full in graph.nodes:
                raise GraphValidationError(
                    f"{source}: node '{full}': name clashes with a node of subgraph '{name}'; rename one of them"
                )
            nodes[full] = child
            if child.kind in ("Input", "Output"):
                passthrough.add(full)
        edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in inner.edges]

    for src, dst in graph.edges:
        edges.append((_port(src, ports, 1, source), _port(dst, ports, 0, source)))
    return _remove_passthrough(RawGraph(nodes, edges, graph.metadata), passthrough)


def _port(name: str, ports: dict[str, tuple[list[str], list[str]]], side: int, source: str) -> str:
    """An edge end naming a subgraph attaches to its single Input (side 0) or Output (side 1)."""
    if name not in ports:
        return name
    candidates = ports[name][side]
    if len(candidates) != 1:
        kind, way = ("Input", "to") if side == 0 else ("Output", "from")
        raise GraphValidationError(
            f"{source}: field 'edges': an edge {way} subgraph '{name}' is ambiguous: it has "
            f"{len(candidates)} {kind} nodes ({', '.join(candidates) or 'none'}); "
            f"name one as '{name}.<{kind.lower()}>'"
        )
    return candidates[0]


def _remove_passthrough(graph: RawGraph, passthrough: set[str]) -> RawGraph:
    edges = list(graph.edges)
    for name in sorted(passthrough):
        preds = [a for a, b in edges if b == name]
        succs = [b for a, b in edges if a == name]
        edges = [(a, b) for a, b in edges if name not in (a, b)]
        edges += [(p, s) for p in preds for s in succs]
    nodes = {n: node for n, node in graph.nodes.items() if n not in passthrough}
    return RawGraph(nodes, edges, graph.metadata)
