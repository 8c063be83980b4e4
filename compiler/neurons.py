"""Neuron kinds as data: one frozen description per kind, read by the frontend, lowering, the
quantizers and the float reference instead of lists of kind names.

Every kind is a case of one two-stage neuron (per step, ``x`` the summed input):

    i = i - syn_decay * i + syn_gain * x          (no synaptic memory: syn_decay = 1, i = x)
    v = v - mem_decay * v + mem_gain * i + mem_const
    spike where v > v_threshold; then v = v_reset (or v - (v_threshold - v_reset))

``coefficients`` gives those per-step fractions under a semantics contract (Euler: dt/tau; exact:
1 - exp(-dt/tau)); the targets turn them into their integers (compiler/dynamics.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Fraction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class NeuronKind:
    name: str
    fields: tuple[str, ...]  # NIR parameters (per neuron)
    spiking: bool
    synaptic: bool  # a synaptic current with its own time constant (CUBA)
    leaky: bool  # the membrane decays towards v_leak
    integrator: bool  # the membrane integrates without leak (IF, I)
    stateless: bool  # v is this step's input (Threshold, Sum)
    nir: bool  # a NIR neuron node (Sum is made by lowering)
    equation: str

    @property
    def stateful_spiking(self) -> bool:
        return self.spiking and not self.stateless

    def coefficients(self, p: dict[str, np.ndarray], shape: tuple[int, ...], dt: float,
                     fraction: Fraction) -> tuple[np.ndarray, ...]:
        """(syn_decay, syn_gain, mem_decay, mem_gain, mem_const) per neuron."""
        one, zero = np.ones(shape), np.zeros(shape)
        if self.stateless:
            return one, one, one, one, zero
        if self.integrator:
            return one, one, zero, dt * p["r"], zero
        tau = p["tau_mem"] if self.synaptic else p["tau"]
        m = fraction(tau)
        if self.synaptic:
            s = fraction(p["tau_syn"])
            return s, s * p["w_in"], m, m * p["r"], m * p["v_leak"]
        return one, one, m, m * p["r"], m * p["v_leak"]


def _kind(name: str, fields: str, spiking: bool, equation: str, *, synaptic: bool = False, leaky: bool = False,
          integrator: bool = False, stateless: bool = False, nir: bool = True) -> NeuronKind:
    return NeuronKind(name, tuple(fields.split()), spiking, synaptic, leaky, integrator, stateless, nir, equation)


KINDS: dict[str, NeuronKind] = {k.name: k for k in (
    _kind("LIF", "tau r v_leak v_threshold v_reset", True, "tau dv/dt = (v_leak - v) + r x", leaky=True),
    _kind("CubaLIF", "tau_syn tau_mem r v_leak v_threshold v_reset w_in", True,
          "tau_syn di/dt = -i + w_in x;  tau_mem dv/dt = (v_leak - v) + r i", synaptic=True, leaky=True),
    _kind("IF", "r v_threshold v_reset", True, "dv/dt = r x", integrator=True),
    _kind("LI", "tau r v_leak", False, "tau dv/dt = (v_leak - v) + r x", leaky=True),
    _kind("CubaLI", "tau_syn tau_mem r v_leak w_in", False,
          "tau_syn di/dt = -i + w_in x;  tau_mem dv/dt = (v_leak - v) + r i", synaptic=True, leaky=True),
    _kind("I", "r", False, "dv/dt = r x", integrator=True),
    _kind("Threshold", "threshold", True, "spike where x > threshold (no state)", stateless=True),
    _kind("Sum", "", False, "v = x (a linear readout; no state)", stateless=True, nir=False),
)}


def kinds(**flags: bool) -> tuple[str, ...]:
    """Names of the kinds whose flags have the given values, in KINDS order."""
    return tuple(name for name, k in KINDS.items() if all(getattr(k, f) == v for f, v in flags.items()))
