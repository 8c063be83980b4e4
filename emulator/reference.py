"""Float reference simulator: the ground truth of the NIR semantics for one contract.

Runs a NetworkIR on batched inputs (batch, steps, *input_shape), step by step, vectorized
over batch and neurons, and records spikes and (optionally) voltages of every population.

Per step, populations are evaluated in the NetworkIR's order. A projection from a source
evaluated earlier in the step delivers this step's output; a recurrent projection delivers
the previous step's. Neuron updates (dt, a = dt/tau):

  LIF      euler: v += a*((v_leak - v) + r*I)        exact: v = u + (v - u)*exp(-dt/tau), u = v_leak + r*I
  CubaLIF  synapse first, then the membrane sees the updated current (as norse, snnTorch, Lava):
           euler: I = (I - a_syn*I) + a_syn*w_in*S   exact: I = I*e_syn + (1 - e_syn)*w_in*S
           then v as LIF with the new I
  LI, CubaLI: as LIF / CubaLIF without threshold
  IF, I    v += dt*r*I (both integrators)
  Threshold  z = I > threshold (no state);  Sum  v = I (linear readout)
Spikes: z = v > v_threshold; reset "zero": v = v_reset, "subtract": v -= v_threshold - v_reset.
A spike (and every input value) enters projections multiplied by the spike amplitude.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from neurodeploy.compiler.ir import NetworkIR, Population, Projection
from neurodeploy.compiler.neurons import KINDS
from neurodeploy.emulator.ops import apply
from neurodeploy.errors import InputDataError, OptionError

RECORDABLE = ("v", "i")


class _PopulationState:
    """Coefficients and state of one population, in the simulation dtype."""

    def __init__(self, pop: Population, net: NetworkIR, batch: int, dtype: np.dtype):
        s = net.semantics
        self.pop = pop
        self.dtype = dtype
        p = {k: np.asarray(v, dtype=np.float64) for k, v in pop.params.items()}
        c = lambda x: np.asarray(x, dtype=dtype)  # noqa: E731
        exact = s.integrator == "exact"
        self.bias = c(pop.bias)
        self.v = np.zeros((batch,) + pop.shape, dtype=dtype)
        self.i = np.zeros((batch,) + pop.shape, dtype=dtype)
        self.kind = kind = KINDS[pop.kind]
        if kind.leaky and not kind.synaptic:
            self.mem = _membrane(p["tau"], s.dt, exact)
        if kind.synaptic:
            self.mem = _membrane(p["tau_mem"], s.dt, exact)
            if exact:
                e = np.exp(-s.dt / p["tau_syn"])
                self.syn_keep, self.syn_in = c(e), c((1 - e) * p["w_in"])
                self.syn_decay = None
            else:
                a = s.dt / p["tau_syn"]
                self.syn_decay, self.syn_in = c(-a), c(a * p["w_in"])
        if kind.integrator:
            self.gain = c(s.dt * p["r"])
        if kind.name != "Sum" and "r" in p:
            self.r = c(p["r"])
        for name in ("v_leak", "v_threshold", "v_reset", "threshold"):
            if name in p:
                setattr(self, name, c(p[name]))
        if "v_threshold" in p:
            self.reset_step = c(p["v_threshold"] - p["v_reset"])
        self.exact = exact
        self.subtract = s.reset == "subtract"
        if hasattr(self, "mem"):
            self.mem = tuple(c(m) for m in self.mem)

    def step(self, current: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Advance one step with summed input ``current``; returns (spikes or None, output)."""
        kind = self.kind
        if kind.stateless and not kind.spiking:  # Sum
            self.v = current
            return None, current
        if kind.stateless:  # Threshold
            z = current > self.threshold
            return z, z
        if kind.synaptic:
            if self.exact:
                self.i = self.i * self.syn_keep + self.syn_in * current
            else:
                self.i = (self.i + self.syn_decay * self.i) + self.syn_in * current
            drive = self.r * self.i
        elif kind.integrator:
            self.i = current
            self.v = self.v + self.gain * current
            drive = None
        else:
            self.i = current
            drive = self.r * current
        if drive is not None:
            if self.exact:
                keep, _ = self.mem
                target = self.v_leak + drive
                self.v = target + (self.v - target) * keep
            else:
                _, a = self.mem
                self.v = self.v + a * ((self.v_leak - self.v) + drive)
        if not kind.spiking:
            return None, self.v
        z = self.v > self.v_threshold
        if self.subtract:
            self.v = np.where(z, self.v - self.reset_step, self.v)
        else:
            self.v = np.where(z, self.v_reset, self.v)
        return z, z


def _membrane(tau: np.ndarray, dt: float, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """(exp(-dt/tau), dt/tau): the exact decay and the Euler step size."""
    return np.exp(-dt / tau), dt / tau


class _Delay:
    """Per-element delay line of ``steps`` (>= 0) for one delay operator."""

    def __init__(self, steps: np.ndarray, batch: int, dtype: np.dtype):
        self.steps = steps.reshape(-1)
        self.depth = int(self.steps.max()) + 1 if self.steps.size else 1
        self.buffer = np.zeros((self.depth, batch, self.steps.size), dtype=dtype)
        self.t = 0
        self.cols = np.arange(self.steps.size)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(x.shape[0], -1)
        self.buffer[self.t % self.depth] = flat
        rows = (self.t - self.steps) % self.depth
        out = self.buffer[rows, :, self.cols].T  # (batch, n)
        out = np.where(self.steps <= self.t, out, 0)
        self.t += 1
        return out.reshape(x.shape).astype(x.dtype, copy=False)


def simulate(
    net: NetworkIR,
    inputs: np.ndarray | dict[str, np.ndarray],
    *,
    record: Iterable[str] = ("v",),
    dtype: str | np.dtype = "float32",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``net``; returns ``spikes.<pop>`` for spiking populations, ``v.<pop>``/``i.<pop>`` as asked."""
    record = tuple(record)
    for item in record:
        if item not in RECORDABLE:
            raise OptionError(f"cannot record {item!r}; the float reference records {', '.join(RECORDABLE)}")
    dtype = np.dtype(dtype)
    arrays = _check_inputs(net, inputs, dtype)
    batch, steps = next(iter(arrays.values())).shape[:2]
    states = {name: _PopulationState(pop, net, batch, dtype) for name, pop in net.populations.items()}
    delays = {(id(proj), k): _Delay(op.params["steps"], batch, dtype)
              for proj in net.projections for k, op in enumerate(proj.ops) if op.kind == "delay"}
    into: dict[str, list[Projection]] = {name: net.projections_into(name) for name in net.populations}
    amp = dtype.type(net.semantics.spike_amplitude)
    outputs: dict[str, np.ndarray] = {}
    for name, pop in net.populations.items():
        outputs[name] = np.zeros((batch,) + pop.shape, dtype=dtype)
    traces: dict[str, np.ndarray] = {}
    for name, pop in net.populations.items():
        if pop.spiking:
            traces[f"spikes.{name}"] = np.zeros((batch, steps) + pop.shape, dtype=np.uint8)
        for item in record:
            if item == "i" and KINDS[pop.kind].stateless:
                continue
            traces[f"{item}.{name}"] = np.zeros((batch, steps) + pop.shape, dtype=dtype)

    iterator = range(steps)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="simulate", unit="step")
    for t in iterator:
        for name, arr in arrays.items():
            outputs[name] = arr[:, t] * amp
        for name, state in states.items():
            current = np.broadcast_to(state.bias, (batch,) + state.pop.shape).copy()
            for proj in into[name]:
                x = outputs[proj.source]
                for k, op in enumerate(proj.ops):
                    x = delays[(id(proj), k)](x) if op.kind == "delay" else apply(op, x)
                current += x.reshape(current.shape)
            spikes, out = state.step(current)
            if spikes is not None:
                traces[f"spikes.{name}"][:, t] = spikes
                outputs[name] = spikes.astype(dtype) * amp
            else:
                outputs[name] = out
            for item in record:
                key = f"{item}.{name}"
                if key in traces:
                    traces[key][:, t] = state.v if item == "v" else state.i
    return traces


def _check_inputs(net: NetworkIR, inputs, dtype: np.dtype) -> dict[str, np.ndarray]:
    if not isinstance(inputs, dict):
        if len(net.inputs) != 1:
            raise InputDataError(
                f"the model has {len(net.inputs)} inputs ({', '.join(net.inputs)}); pass one array per input"
            )
        inputs = {next(iter(net.inputs)): inputs}
    missing = set(net.inputs) - set(inputs)
    if missing:
        raise InputDataError(f"no data for input(s) {', '.join(sorted(missing))}")
    arrays = {}
    lengths = set()
    for name, port in net.inputs.items():
        arr = np.asarray(inputs[name])
        if arr.dtype.kind not in "biuf":
            raise InputDataError(f"input '{name}': expected numbers, got dtype {arr.dtype}")
        if arr.ndim < 2 or arr.size // max(1, arr.shape[0] * arr.shape[1]) != int(np.prod(port.shape)) \
                or (arr.shape[2:] != port.shape and arr.ndim != 3):
            raise InputDataError(
                f"input '{name}': shape {list(arr.shape)} does not match (batch, steps, {', '.join(map(str, port.shape))})"
            )
        if not np.all(np.isfinite(arr)):
            raise InputDataError(f"input '{name}': contains NaN or infinite values")
        arrays[name] = arr.reshape(arr.shape[:2] + port.shape).astype(dtype, copy=False)
        lengths.add(arr.shape[:2])
    if len(lengths) != 1:
        raise InputDataError(f"inputs disagree in (batch, steps): {sorted(lengths)}")
    return arrays
