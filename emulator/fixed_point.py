"""Bit-accurate kernel of the fixed-point CUBA LIF: Loihi 2 (Lava fixed_pt) and the generic profile.

Per step t (docs/targets.md; Loihi rules from specs of Lava 0.10.0):
    a  = what every incoming connection delivers at t
    u  = decay(u, du) + (a << activation_shift)            Loihi: trunc toward 0, (du + 1); u wraps once
    v  = clamp(decay(v, dv) + u + bias, +-(2^(bits-1) - 1))
    s  = v > vth << threshold_shift;  v = 0 where s
A connection delivers ``shift_exp(W @ x, weight_exp)`` ``hop + delay`` steps after its source
fired (Loihi: hop = 1 for every connection; generic: hop = 0, recurrent edges one step later).
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Iterable

import numpy as np
import scipy.sparse

from neurodeploy.emulator.inputs import empty_traces, program_inputs, step_range, widened
from neurodeploy.emulator.ops import conv as conv_float
from neurodeploy.emulator.overflow import Counters, outside_int32, to_traces
from neurodeploy.format.program import Program, QConnection, QPopulation
from neurodeploy.targets import fixed_point_math as fpm


class _Synapses:
    """Integer weights of one connection and its delay line."""

    def __init__(self, conn: QConnection, batch: int, hop: int, fmt: dict):
        self.conn = conn
        self.exp = int(conn.attrs["weight_exp"])
        self.shift = int(fmt["activation_shift"])
        w = conn.arrays["weight"].astype(np.int64)
        if conn.kind == "dense":
            self.matrix = w
            self.apply = lambda x: x @ self.matrix.T
        elif conn.kind == "sparse":
            self.matrix = scipy.sparse.csr_matrix((w, conn.arrays["indices"], conn.arrays["indptr"]),
                                                  shape=(conn.n_out, conn.n_in))
            self.apply = lambda x: np.asarray((self.matrix @ x.T).T)
        else:
            a = conn.attrs
            in_shape = tuple(a["in_shape"])
            self.apply = lambda x: conv_float(x.reshape((x.shape[0],) + in_shape), w, a["stride"], a["padding"],
                                              a["dilation"], int(a["groups"])).reshape(x.shape[0], -1)
        base = hop + int(conn.attrs.get("delay", 0)) + (1 if conn.recurrent and hop == 0 else 0)
        self.base = base
        self.loihi = fmt["target"] == "loihi2"
        self.per_synapse = conn.arrays.get("delay")
        depth = base + (int(self.per_synapse.max()) if self.per_synapse is not None and self.per_synapse.size else 0) + 1
        self.depth = depth
        self.buffer = np.zeros((depth, batch, conn.n_out), dtype=np.int64)
        if self.per_synapse is not None:
            self._split_by_delay(w)

    def _split_by_delay(self, w: np.ndarray) -> None:
        """One weight matrix per distinct delay, so each delay group is summed and shifted alone."""
        delays = self.per_synapse
        self.groups = []
        if self.conn.kind == "dense":
            for d in np.unique(delays):
                self.groups.append((int(d), np.where(delays == d, w, 0)))
        else:
            indptr, indices = self.conn.arrays["indptr"], self.conn.arrays["indices"]
            for d in np.unique(delays):
                data = np.where(delays == d, w, 0)
                self.groups.append((int(d), scipy.sparse.csr_matrix((data, indices, indptr),
                                                                     shape=(self.conn.n_out, self.conn.n_in))))

    def send(self, t: int, x: np.ndarray) -> None:
        if not np.any(x):
            return
        if self.per_synapse is None:
            y = fpm.shift_exp(self.apply(x).astype(np.int64), self.exp)
            self.buffer[(t + self.base) % self.depth] += y
            return
        for d, m in self.groups:
            y = x @ m.T if isinstance(m, np.ndarray) else np.asarray((m @ x.T).T)
            self.buffer[(t + self.base + d) % self.depth] += fpm.shift_exp(y.astype(np.int64), self.exp)

    def receive(self, t: int) -> np.ndarray:
        slot = t % self.depth
        out = self.buffer[slot].copy()
        self.buffer[slot] = 0
        self.outside = outside_int32(out)  # the emitted value leaves int32: wrapped or saturated
        if self.loihi:
            return ((out + 2**31) % 2**32) - 2**31  # Lava's emitted value wraps to int32
        return np.clip(out, -(2**31), 2**31 - 1)  # the generic profile saturates


class _Neurons:
    def __init__(self, pop: QPopulation, batch: int, fmt: dict, reset: str = "zero"):
        p = {k: v.reshape(-1).astype(np.int64) for k, v in pop.params.items()}
        self.pop = pop
        c = fpm.neuron_constants(p, fmt)
        self.keep_u, self.keep_v, self.bias, self.threshold = c["keep_u"], c["keep_v"], c["bias"], c["threshold"]
        self.decay_bits, self.shift, self.max, self.loihi = c["decay_bits"], c["shift"], c["state_max"], c["loihi"]
        self.subtract = reset == "subtract"
        n = pop.size
        self.v = np.broadcast_to(p["v_init"], (batch, n)).astype(np.int64)
        self.u = np.broadcast_to(p.get("u_init", np.zeros(n, dtype=np.int64)), (batch, n)).astype(np.int64)

    def step(self, a: np.ndarray, count: bool = True) -> np.ndarray:
        """One step with summed input ``a``; with ``count`` sets ``u_events`` and ``v_events``."""
        if count:
            self.u_events = fpm.u_overflowed(self.u, a, self.keep_u, self.decay_bits, self.shift, self.max,
                                             self.loihi)
        self.u = fpm.next_u(self.u, a, self.keep_u, self.decay_bits, self.shift, self.max, self.loihi)
        y = fpm.drive_v(self.v, self.u, self.bias, self.keep_v, self.decay_bits, self.loihi)
        if count:
            self.v_events = fpm.clamped(y, self.max)
        y = fpm.saturate(y, self.max)
        s = y > self.threshold
        if self.pop.spiking:
            self.v = np.where(s, y - self.threshold if self.subtract else 0, y)
        else:
            self.v = y
            s = np.zeros_like(s)
        return s


def run(program: Program, inputs: np.ndarray | dict[str, np.ndarray], *, record: Iterable[str] = ("v",),
        progress: bool = False, fast: bool = True, overflow: bool = False) -> dict[str, np.ndarray]:
    """Emulate ``program``; returns ``spikes.<pop>`` (0/1) and raw integer ``v.<pop>``/``u.<pop>``;
    with ``overflow`` also the overflow counters (emulator/overflow.py).

    ``fast`` uses the compiled event-driven path (emulator/fixed_point_fast.py) where it applies;
    both paths give the same integers.
    """
    arrays = program_inputs(program, inputs)
    record = tuple(record)
    if fast:
        from neurodeploy.emulator import fixed_point_fast

        if fixed_point_fast.eligible(program):
            return run_fast(program, arrays, record, progress, fixed_point_fast, overflow=overflow)
    return _run_numpy(program, widened(arrays), record, progress, overflow)


def run_fast(program: Program, arrays: dict[str, np.ndarray], record: tuple, progress: bool,
             fast_module, states: tuple[str, ...] = ("v", "u"), overflow: bool = False) -> dict[str, np.ndarray]:
    """Run ``fast_module.Compiled(program)``, whose ``run(inputs, *record_flags, progress)`` returns
    spikes and one trace per item of ``states``, each (batch, steps, all neurons), then the overflow
    counts and first steps (batch, populations, kinds); split per population."""
    key = _contents(program)
    cached = program.__dict__.get("_fast_kernel")  # built once per program: sorting synapses costs
    if cached is None or cached[0] != key:  # first run, or the program (or a deep copy of it) was edited
        cached = program.__dict__["_fast_kernel"] = (key, fast_module.Compiled(program))
    compiled = cached[1]
    parts = [arrays[name] for name in program.inputs]
    stacked = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
    spikes, *values, counts, first = compiled.run(stacked, *(item in record for item in states), progress)
    batch, steps = stacked.shape[:2]
    traces: dict[str, np.ndarray] = {}
    start = 0
    for p in program.populations:
        stop = start + p.size
        if p.spiking:
            traces[f"spikes.{p.name}"] = spikes[:, :, start:stop].reshape((batch, steps) + p.shape)
        for item, trace in zip(states, values):
            if item in record:
                traces[f"{item}.{p.name}"] = trace[:, :, start:stop].reshape((batch, steps) + p.shape)
        start = stop
    if overflow:
        traces.update(to_traces(program, counts, first))
    return traces


def _contents(value: Any) -> Any:
    """A comparable summary of a program's contents: arrays by dtype, shape and CRC-32 (which
    catches any edit of up to 32 bits for certain), dataclasses by their fields, the rest by repr."""
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, zlib.crc32(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return tuple((k, _contents(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_contents(v) for v in value)
    if dataclasses.is_dataclass(value):
        return type(value).__name__, tuple(_contents(getattr(value, f.name)) for f in dataclasses.fields(value))
    return repr(value)


def _run_numpy(program: Program, arrays: dict[str, np.ndarray], record: tuple, progress: bool,
               overflow: bool = False) -> dict[str, np.ndarray]:
    fmt = program.attrs["format"]
    hop = int(program.attrs["hop_latency"])
    batch, steps = next(iter(arrays.values())).shape[:2]
    reset = program.attrs.get("reset", "zero")
    neurons = {p.name: _Neurons(p, batch, fmt, reset) for p in program.populations}
    synapses = [_Synapses(c, batch, hop, fmt) for c in program.connections]
    incoming = {p.name: [s for s in synapses if s.conn.target == p.name] for p in program.populations}
    outgoing: dict[str, list[_Synapses]] = {}
    for s in synapses:
        outgoing.setdefault(s.conn.source, []).append(s)
    traces = empty_traces(program, batch, steps, record)
    counters = Counters(batch, len(program.populations), 3)
    for t in step_range(steps, progress, "step"):
        for name, arr in arrays.items():
            for s in outgoing.get(name, []):
                s.send(t, arr[:, t])
        for p_index, p in enumerate(program.populations):
            cell = neurons[p.name]
            a = np.zeros((batch, p.size), dtype=np.int64)
            outside = np.zeros((batch, p.size), dtype=bool)
            for s in incoming[p.name]:
                a += s.receive(t)
                outside |= s.outside
            spikes = cell.step(a, overflow)
            for kind, events in enumerate((outside, cell.u_events, cell.v_events) if overflow else ()):
                counters.add(p_index, kind, events, t)  # FIXED_POINT_KINDS
            if p.spiking:
                traces[f"spikes.{p.name}"][:, t] = spikes.reshape((batch,) + p.shape)
            for item in record:
                traces[f"{item}.{p.name}"][:, t] = getattr(cell, item).reshape((batch,) + p.shape)
            if p.name in outgoing and np.any(spikes):
                x = spikes.astype(np.int64)
                for s in outgoing[p.name]:
                    s.send(t, x)
    if overflow:
        traces.update(to_traces(program, counters.counts, counters.first))
    return traces
