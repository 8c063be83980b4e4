"""Value ranges from float-reference traces on sample inputs (``--calibrate IN.npz``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.format.input_rules import value_range


@dataclass
class Ranges:
    v_max: dict[str, np.ndarray]  # per population, per neuron: max |v| seen
    i_max: dict[str, np.ndarray]  # per population, per neuron: max |input current| seen
    spikes: dict[str, int]  # per spiking population: spikes seen
    samples: int
    steps: int
    # per input: the largest count of one neuron in one step ("max") and of all its neurons in one
    # step ("step_max"); the artifact records it, and run/verify/profile warn above it
    inputs: dict[str, dict[str, int]] = field(default_factory=dict)


def calibrate(net: NetworkIR, inputs) -> Ranges:
    from neurodeploy.emulator.reference import simulate

    traces = simulate(net, inputs, record=("v", "i"), dtype="float64")
    # Ranges are rounded up to 3 significant digits: the last bits of a float simulation depend
    # on the BLAS build, and artifacts must not.
    v_max, i_max, spikes = {}, {}, {}
    some = next(iter(traces.values()))
    for name, pop in net.populations.items():
        flat = lambda key: _round_up(np.abs(traces[key]).reshape(-1, pop.size).max(axis=0))  # noqa: E731
        if f"v.{name}" in traces:
            v_max[name] = flat(f"v.{name}")
        if f"i.{name}" in traces:
            i_max[name] = flat(f"i.{name}")
        if f"spikes.{name}" in traces:
            spikes[name] = int(traces[f"spikes.{name}"].sum())
    named = inputs if isinstance(inputs, Mapping) else {next(iter(net.inputs)): inputs}
    return Ranges(v_max, i_max, spikes, int(some.shape[0]), int(some.shape[1]), value_range(named))


def _round_up(values: np.ndarray, digits: int = 3) -> np.ndarray:
    out = np.zeros_like(values, dtype=np.float64)
    nz = values > 0
    exponent = np.floor(np.log10(values[nz])) - (digits - 1)
    out[nz] = np.ceil(values[nz] / 10.0**exponent) * 10.0**exponent
    return out
