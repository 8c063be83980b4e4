"""Building blocks of hand-built conv programs for the emulator and torch-kernel tests: a small
compiled program whose format, neuron parameters and weight scales they start from, and
populations whose per-neuron parameters vary around it."""
from __future__ import annotations

import functools
import warnings

import nir
import numpy as np

from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.format.program import Program, QPopulation


@functools.lru_cache(maxsize=None)
def template(target: str, kind: str = "LIF") -> Program:
    """A small compiled program (12 inputs -> 10 neurons, ``kind`` LIF or CubaLIF)."""
    rng = np.random.default_rng(0)
    n_in, n = 12, 10
    if kind == "LIF":
        cell = nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n))
    else:
        cell = nir.CubaLIF(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n),
                           v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.full(n, 3.0))
    nodes = {"input": nir.Input(input_type=np.array([n_in])), "fc": nir.Linear(weight=rng.normal(0, 1, (n, n_in))),
             "lif": cell, "output": nir.Output(output_type=np.array([n]))}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                         metadata={"neurodeploy.dt": 1e-3}, type_check=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_model(graph, Options(target=target, allow_degraded=True)).program


def population(target: str, name: str, shape: tuple[int, ...], rng: np.random.Generator,
               kind: str = "LIF", threshold_scale: tuple[float, float] = (0.3, 1.0)) -> QPopulation:
    """A population whose per-neuron parameters vary around the template's (thresholds scaled by a
    uniform factor in ``threshold_scale``)."""
    base = template(target, kind).populations[0]
    n = int(np.prod(shape))
    params = {k: np.full(n, int(v.reshape(-1)[0]), dtype=np.int64) for k, v in base.params.items()}
    if target == "spinnaker":
        params["v_thresh"] = (params["v_thresh"] * rng.uniform(*threshold_scale, n)).astype(np.int64)
        params["t_refract"] = rng.integers(0, 3, n)
    else:
        params["vth"] = (params["vth"] * rng.uniform(*threshold_scale, n)).astype(np.int64)
        params["dv"] = rng.integers(100, 1500, n)
        params["du"] = rng.integers(500, 4096, n)
        params["bias_mant"] = rng.integers(-50, 100, n)
    return QPopulation(name, base.model, "LIF", tuple(shape), True, np.ones(n), params)


def conv_matrix(conn, kernel: np.ndarray) -> np.ndarray:
    """(n_out, n_in): what each input entry of conv ``conn`` sends to each output with ``kernel``
    in place of its weights, by pushing unit vectors through the float conv (emulator/ops.py): an
    oracle independent of the backends' index arithmetic."""
    from neurodeploy.emulator.ops import conv

    a = conn.attrs
    basis = np.eye(conn.n_in).reshape((conn.n_in,) + tuple(a["in_shape"]))
    out = conv(basis, kernel.astype(np.float64), a["stride"], a["padding"], a["dilation"], int(a["groups"]))
    return out.reshape(conn.n_in, -1).T
