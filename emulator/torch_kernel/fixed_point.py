"""The fixed-point CUBA LIF (loihi2, generic profile) on torch: emulator/fixed_point.py's steps.

Per step t: every input sends its counts of t; then each population in program order sums what
its incoming connections deliver at t, steps (arith.next_u, drive_v, saturate; reset to zero or
by subtraction), and sends its spikes. A connection delivers ``shift_exp(W @ x, weight_exp)`` to
the ring slot ``(t + base + d) % depth`` (base = hop + delay, plus one for a recurrent edge
without hop; d a synapse's own delay, one product per distinct d), and the target reads slot
``t % depth``: Loihi wraps the sum to int32, the generic profile saturates it. Asked to count,
a step also marks the overflow events of emulator/overflow.py (FIXED_POINT_KINDS: a summed
input outside int32, u's wrap or saturation, v clamped), as the numpy kernel does.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from neurodeploy.targets import fixed_point_math as fpm
from neurodeploy.emulator.overflow import FIXED_POINT_KINDS
from neurodeploy.emulator.torch_kernel import arith
from neurodeploy.emulator.torch_kernel.counters import DeviceCounters, outside_int32
from neurodeploy.emulator.torch_kernel.synapses import Operator, operator
from neurodeploy.errors import OptionError
from neurodeploy.format.program import Program, QConnection, QPopulation

RECORDABLE = ("v", "u")


def check_record(record: tuple[str, ...]) -> None:
    for item in record:
        if item not in RECORDABLE:
            raise OptionError(f"cannot record {item!r}; the fixed-point kernel records {', '.join(RECORDABLE)}")


def conn_operator(conn: QConnection, weight: np.ndarray, x_max: int, device: torch.device) -> Operator:
    """The exact product of ``conn``'s synapses with ``weight`` in place of its stored weights."""
    a = conn.arrays
    return operator(conn.kind, weight, attrs=conn.attrs, x_max=x_max, device=device, indices=a.get("indices"),
                    indptr=a.get("indptr"), shape=(conn.n_out, conn.n_in))


class _Connection:
    """One connection's products and its delay line (depth, n_out, batch)."""

    def __init__(self, conn: QConnection, hop: int, fmt: dict[str, Any], x_max: int, device: torch.device):
        self.conn = conn
        self.exp = int(conn.attrs["weight_exp"])
        self.loihi = fmt["target"] == "loihi2"
        self.base = hop + int(conn.attrs.get("delay", 0)) + (1 if conn.recurrent and hop == 0 else 0)
        w = np.asarray(conn.arrays["weight"], dtype=np.int64)
        per = conn.arrays.get("delay")
        if per is None:
            self.groups = [(0, conn_operator(conn, w, x_max, device))]
        else:  # one product per distinct delay, each shifted alone (as the numpy kernel sums them)
            self.groups = [(int(d), conn_operator(conn, np.where(per == d, w, 0), x_max, device))
                           for d in np.unique(per)]
        self.depth = self.base + (int(per.max()) if per is not None and per.size else 0) + 1
        self.buffer = torch.zeros(0)

    def start(self, batch: int, device: torch.device) -> None:
        self.buffer = torch.zeros((self.depth, self.conn.n_out, batch), dtype=torch.int64, device=device)

    def send(self, t: int, x: torch.Tensor) -> None:
        for d, op in self.groups:
            self.buffer[(t + self.base + d) % self.depth] += arith.shift_exp(op.apply(x), self.exp)

    def receive(self, t: int, outside: torch.Tensor | None = None) -> torch.Tensor:
        """The summed input of step t; marks in ``outside`` where it left int32 (wrapped or saturated)."""
        slot = self.buffer[t % self.depth]
        if outside is not None:
            outside |= outside_int32(slot)
        out = arith.wrap32(slot) if self.loihi else slot.clamp(arith.INT32_MIN, arith.INT32_MAX)
        slot.zero_()
        return out


class _Neurons:
    """One population's u and v, (n, batch) int64; parameters (n, 1)."""

    def __init__(self, pop: QPopulation, fmt: dict[str, Any], reset: str, device: torch.device):
        p = {k: torch.as_tensor(np.asarray(v).reshape(-1, 1).astype(np.int64), device=device)
             for k, v in pop.params.items()}
        self.pop = pop
        c = fpm.neuron_constants(p, fmt)
        self.keep_u, self.keep_v, self.bias, self.threshold = c["keep_u"], c["keep_v"], c["bias"], c["threshold"]
        self.decay_bits, self.shift, self.max, self.loihi = c["decay_bits"], c["shift"], c["state_max"], c["loihi"]
        self.subtract = reset == "subtract"
        self.v_init = p["v_init"]
        self.u_init = p.get("u_init", torch.zeros_like(p["v_init"]))
        self.v = self.u = self.v_init

    def start(self, batch: int) -> None:
        n = self.pop.size
        self.v = self.v_init.expand(n, batch).clone()
        self.u = self.u_init.expand(n, batch).clone()

    def step(self, a: torch.Tensor, count: bool = False) -> torch.Tensor | None:
        """One step with summed input ``a``; the spikes (bool), None for a non-spiking population.
        With ``count`` sets ``u_events`` and ``v_events`` (u wrapped or saturated, v clamped)."""
        if count:
            self.u_events = fpm.u_overflowed(self.u, a, self.keep_u, self.decay_bits, self.shift, self.max,
                                             self.loihi, xp=torch)
        self.u = arith.next_u(self.u, a, self.keep_u, self.decay_bits, self.shift, self.max, self.loihi)
        y = arith.drive_v(self.v, self.u, self.bias, self.keep_v, self.decay_bits, self.loihi)
        if count:
            self.v_events = fpm.clamped(y, self.max)
        y = arith.saturate(y, self.max)
        if not self.pop.spiking:
            self.v = y
            return None
        s = y > self.threshold
        self.v = torch.where(s, y - self.threshold if self.subtract else torch.zeros_like(y), y)
        return s


class Kernel:
    """A fixed-point program on one device (driver.Kernel)."""

    def __init__(self, program: Program, x_max: dict[str, int], device: torch.device, record: tuple[str, ...],
                 overflow: bool = False):
        fmt = program.attrs["format"]
        hop = int(program.attrs["hop_latency"])
        reset = program.attrs.get("reset", "zero")
        self.program, self.device, self.record = program, device, record
        self.neurons = {p.name: _Neurons(p, fmt, reset, device) for p in program.populations}
        self.connections = [_Connection(c, hop, fmt, x_max.get(c.source, 1), device) for c in program.connections]
        self.incoming = {p.name: [c for c in self.connections if c.conn.target == p.name] for p in program.populations}
        self.outgoing: dict[str, list[_Connection]] = {}
        for c in self.connections:
            self.outgoing.setdefault(c.conn.source, []).append(c)
        self.fixed_bytes = sum(op.fixed_bytes for c in self.connections for _, op in c.groups)
        self.batch = 0
        self.overflow = overflow
        self.counters: DeviceCounters | None = None

    def sample_bytes(self) -> int:
        state = sum(10 * 8 * p.size for p in self.program.populations)
        buffers = sum(8 * c.depth * c.conn.n_out for c in self.connections)
        transient = max((op.transient_bytes for c in self.connections for _, op in c.groups), default=0)
        counters = 16 * len(FIXED_POINT_KINDS) * len(self.program.populations) if self.overflow else 0
        return state + buffers + transient + counters

    def start(self, batch: int) -> None:
        self.batch = batch
        if self.overflow:
            self.counters = DeviceCounters(len(self.program.populations), len(FIXED_POINT_KINDS), batch, self.device)
        for cell in self.neurons.values():
            cell.start(batch)
        for c in self.connections:
            c.start(batch, self.device)

    def _send(self, t: int, source: str, x: torch.Tensor) -> None:
        connections = self.outgoing.get(source, ())
        if connections and (self.device.type != "cpu" or bool(x.any())):  # on a GPU, no sync to skip silence
            for c in connections:
                c.send(t, x)

    def step(self, t: int, inputs: dict[str, torch.Tensor]) -> list:
        """One step; (population, spikes or None, recorded states) per population (driver.Kernel)."""
        for name, x in inputs.items():
            self._send(t, name, x)
        outputs, counters = [], self.counters
        for p_index, p in enumerate(self.program.populations):
            cell = self.neurons[p.name]
            a = torch.zeros((p.size, self.batch), dtype=torch.int64, device=self.device)
            outside = torch.zeros_like(a, dtype=torch.bool) if counters is not None else None
            for c in self.incoming[p.name]:
                a += c.receive(t, outside)
            spikes = cell.step(a, counters is not None)
            if counters is not None:
                counters.add(p_index, torch.stack((outside, cell.u_events, cell.v_events)), t)  # FIXED_POINT_KINDS
            outputs.append((p, spikes, {item: getattr(cell, item) for item in self.record}))
            if spikes is not None:
                self._send(t, p.name, spikes)
        return outputs
