"""Event-camera convolutional networks as NIR graphs, at the sizes users deploy.

``vision_graph(height, width, channels)``: input 2 x H x W (ON/OFF events) ->
conv 2->c1 5x5 stride 2 padding 2 -> LIF -> sum pool 2 -> conv c1->c2 3x3 padding 1 -> LIF ->
sum pool 2 -> conv c2->c3 3x3 padding 1 -> LIF -> sum pool 2 -> flatten -> dense -> 11 LI.
At 2x128x128 with the default (16, 32, 16) channels: 102,411 neurons
(DVS Gesture's input and class count). Weights are seeded, scaled so that each layer is active.
"""
from __future__ import annotations

import math

import nir
import numpy as np

DT = 1e-3
CLASSES = 11


def _lif(shape: tuple[int, ...]) -> nir.LIF:
    ones = np.ones(shape)
    return nir.LIF(tau=ones * 0.01, r=ones * 10.0, v_leak=ones * 0.0, v_threshold=ones * 1.0, v_reset=ones * 0.0)


def _conv(rng: np.random.Generator, c_in: int, c_out: int, k: int, stride: int, padding: int,
          hw: tuple[int, int]) -> nir.Conv2d:
    weight = rng.normal(0.0, 1.0 / math.sqrt(c_in * k * k), (c_out, c_in, k, k))
    return nir.Conv2d(input_shape=hw, weight=weight, stride=(stride, stride), padding=(padding, padding),
                      dilation=(1, 1), groups=1, bias=np.zeros(c_out))


def _pool() -> nir.SumPool2d:
    return nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))


def vision_graph(height: int = 128, width: int = 128, channels: tuple[int, int, int] = (16, 32, 16),
                 seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    c1, c2, c3 = channels
    h1, w1 = (height - 1) // 2 + 1, (width - 1) // 2 + 1  # 5x5, stride 2, padding 2
    nodes: dict = {"input": nir.Input(input_type=np.array([2, height, width]))}
    nodes["conv1"] = _conv(rng, 2, c1, 5, 2, 2, (height, width))
    nodes["lif1"] = _lif((c1, h1, w1))
    nodes["pool1"] = _pool()
    nodes["conv2"] = _conv(rng, c1, c2, 3, 1, 1, (h1 // 2, w1 // 2))
    h2, w2 = h1 // 2, w1 // 2
    nodes["lif2"] = _lif((c2, h2, w2))
    nodes["pool2"] = _pool()
    nodes["conv3"] = _conv(rng, c2, c3, 3, 1, 1, (h2 // 2, w2 // 2))
    h3, w3 = h2 // 2, w2 // 2
    nodes["lif3"] = _lif((c3, h3, w3))
    nodes["pool3"] = _pool()
    flat = c3 * (h3 // 2) * (w3 // 2)
    nodes["flatten"] = nir.Flatten(input_type={"input": np.array([c3, h3 // 2, w3 // 2])}, start_dim=0, end_dim=-1)
    nodes["fc"] = nir.Affine(weight=rng.normal(0.0, 1.0 / math.sqrt(flat), (CLASSES, flat)), bias=np.zeros(CLASSES))
    ones = np.ones(CLASSES)
    nodes["li"] = nir.LI(tau=ones * 0.01, r=ones, v_leak=ones * 0.0)
    nodes["output"] = nir.Output(output_type=np.array([CLASSES]))
    order = ["input", "conv1", "lif1", "pool1", "conv2", "lif2", "pool2", "conv3", "lif3", "pool3", "flatten",
             "fc", "li", "output"]
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])), type_check=False)
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.integrator": "euler", "neurodeploy.reset": "zero",
                           "neurodeploy.spike_amplitude": 1.0})
    return graph


def neuron_count(graph: nir.NIRGraph) -> int:
    return sum(int(np.size(node.tau)) for node in graph.nodes.values() if isinstance(node, (nir.LIF, nir.LI)))


def events(shape: tuple[int, ...], batch: int, steps: int, rate: float, seed: int = 0) -> np.ndarray:
    """Random ON/OFF events: (batch, steps, *shape) of 0/1 at ``rate`` per pixel and step."""
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps) + tuple(shape)) < rate).astype(np.float32)
