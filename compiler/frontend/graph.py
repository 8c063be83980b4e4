"""The normalized, flat, shape-checked graph the frontend hands to lowering."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from neurodeploy.compiler.neurons import kinds

NEURON_KINDS = kinds(nir=True, stateless=False)
SPIKING_KINDS = kinds(spiking=True)
OPERATOR_KINDS = (
    "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Delay",
)
ALL_KINDS = ("Input", "Output", "NIRGraph", "Threshold") + NEURON_KINDS + OPERATOR_KINDS


@dataclass
class Node:
    name: str
    kind: str
    params: dict[str, Any]
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A flat NIR graph: numpy parameters, known shapes, no nested subgraphs."""

    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    metadata: dict[str, Any]
    source: str
    warnings: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.kind == "Input"]

    @property
    def outputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.kind == "Output"]

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]


def dfs_order(names: Iterable[str], edges: list[tuple[str, str]], roots: list[str]) -> tuple[list[str], set[tuple[str, str]]]:
    """Reverse post-order from ``roots`` (then any unreached node), and the back edges.

    A back edge closes a cycle: its destination is evaluated before its source, so at run time
    it carries the source's value from the previous step. Deterministic: successors are visited
    in sorted order.
    """
    names = list(names)
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        succ[a].append(b)
    for n in succ:
        succ[n] = sorted(set(succ[n]))
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    post: list[str] = []
    back: set[tuple[str, str]] = set()
    for root in list(roots) + sorted(names):
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[node] = 2
                post.append(node)
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
            elif state[child] == 1:
                back.add((node, child))
    return post[::-1], back


def as_float(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)
