"""Small hand-built networks that several tests share."""
from __future__ import annotations

import nir
import numpy as np


def two_layer_lif(n_in: int, hidden: int, n_out: int, *, seed: int = 0, means: tuple[float, float] = (0.3, 0.2),
                  std: float = 1.0) -> nir.NIRGraph:
    """input -> Linear -> LIF(hidden) -> Linear -> LIF(n_out) -> output, weights normal(mean, std)
    per layer (drawn in that order from ``seed``), dt 1 ms."""
    rng = np.random.default_rng(seed)
    lif = lambda n: nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n),  # noqa: E731
                            v_threshold=np.ones(n), v_reset=np.zeros(n))
    nodes = {"input": nir.Input(input_type=np.array([n_in])),
             "w1": nir.Linear(weight=rng.normal(means[0], std, (hidden, n_in))), "lif1": lif(hidden),
             "w2": nir.Linear(weight=rng.normal(means[1], std, (n_out, hidden))), "lif2": lif(n_out),
             "output": nir.Output(output_type=np.array([n_out]))}
    edges = [("input", "w1"), ("w1", "lif1"), ("lif1", "w2"), ("w2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": 1e-3})
