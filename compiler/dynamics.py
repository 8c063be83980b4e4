"""Per-step coefficients of each neuron kind under the semantics contract.

Every target implements the same two-stage neuron: a synaptic current that decays by a
fraction ``syn_decay`` per step and takes input with gain ``syn_gain``, and a membrane that
decays by ``mem_decay`` and integrates the current with gain ``mem_gain`` plus a constant
``mem_const`` per step. These fractions are exactly what the float reference computes
(emulator/reference.py); targets turn them into their own integers. Each kind's coefficients are
in compiler/neurons.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.compiler.ir import Population
from neurodeploy.compiler.neurons import KINDS
from neurodeploy.semantics import Semantics


@dataclass
class Dynamics:
    syn_decay: np.ndarray  # fraction of the current lost per step (1 = no synaptic memory)
    syn_gain: np.ndarray  # current added per unit of input
    mem_decay: np.ndarray  # fraction of v lost per step (0 = no leak)
    mem_gain: np.ndarray  # v added per unit of current
    mem_const: np.ndarray  # v added per step by the leak towards v_leak
    v_threshold: np.ndarray | None
    v_reset: np.ndarray | None

    @property
    def spike_to_v(self) -> np.ndarray:
        """v added (at the first step) by one unit of input: the gain a weight must carry."""
        return self.mem_gain * self.syn_gain


def dynamics(pop: Population, semantics: Semantics) -> Dynamics:
    p = {k: np.asarray(v, dtype=np.float64) for k, v in pop.params.items()}
    shape = pop.shape
    zero = np.zeros(shape)
    dt, exact = semantics.dt, semantics.integrator == "exact"

    def fraction(tau: np.ndarray) -> np.ndarray:
        return 1.0 - np.exp(-dt / tau) if exact else dt / tau

    syn_decay, syn_gain, mem_decay, mem_gain, const = KINDS[pop.kind].coefficients(p, shape, dt, fraction)
    threshold = p.get("v_threshold", p.get("threshold"))
    reset = p.get("v_reset", zero if threshold is not None else None)
    return Dynamics(syn_decay, syn_gain, mem_decay, mem_gain, const, threshold, reset)
