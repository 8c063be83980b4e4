"""sPyNNaker's IF_curr_exp / IF_curr_delta cores on torch: emulator/spinnaker.py's ticks.

Per tick t, each population in program order: ring-buffer transfer (min(rb, 0xFFFF) << shift,
through init_syn for exp synapses, int32 wrap), the neuron update (V recorded before it,
refractory timer, V >= V_thresh spikes, synapse decay or clear); then every spike of tick t
(and every input count) adds its words into the target's ring slot ``(t + d) % depth``, one
product per (synapse type, total delay) of a connection. Ring buffers sum in int64 and are
clipped at transfer: all words are >= 0, so this equals saturating each add. Asked to count, a
tick also marks the overflow events of emulator/overflow.py (SPINNAKER_KINDS: a ring-buffer slot
over 0xFFFF, an int32 wrap of the current, of alpha, of V), as the numpy kernel does.
"""
from __future__ import annotations

import numpy as np
import torch

from neurodeploy.emulator.spinnaker import RECORDABLE, RING_BUFFER_MAX, is_exp, total_delays
from neurodeploy.emulator.overflow import SPINNAKER_KINDS
from neurodeploy.emulator.torch_kernel import arith
from neurodeploy.emulator.torch_kernel.counters import DeviceCounters, wrapped
from neurodeploy.emulator.torch_kernel.fixed_point import conn_operator
from neurodeploy.emulator.torch_kernel.synapses import Operator
from neurodeploy.errors import OptionError
from neurodeploy.format.program import Program, QConnection, QPopulation


def check_record(record: tuple[str, ...]) -> None:
    for item in record:
        if item not in RECORDABLE:
            raise OptionError(f"cannot record {item!r}; the spinnaker emulator records {', '.join(RECORDABLE)}")


def type_delay_groups(conn: QConnection, x_max: int, device: torch.device) -> list[tuple[int, int, Operator]]:
    """(synapse type, total delay, exact product) for each pair with a non-zero word."""
    w = np.asarray(conn.arrays["weight"], dtype=np.int64)
    types = np.broadcast_to(np.asarray(conn.arrays["synapse_type"]), w.shape)
    total = total_delays(conn)
    groups = []
    for kind in (0, 1):
        for d in np.unique(total[types == kind]):
            keep = (types == kind) & (total == d) & (w != 0)
            if keep.any():
                groups.append((kind, int(d), conn_operator(conn, np.where(keep, w, 0), x_max, device)))
    return groups


class _Core:
    """One population's state, (n, batch) int64, and its ring buffers (depth, 2, n, batch)."""

    def __init__(self, pop: QPopulation, shifts, depth: int, device: torch.device):
        p = {k: torch.as_tensor(np.asarray(v).reshape(-1, 1).astype(np.int64), device=device)
             for k, v in pop.params.items()}
        self.pop, self.p, self.depth, self.device = pop, p, depth, device
        self.exp = is_exp(pop)
        self.shift = (int(shifts[0]), int(shifts[1]))
        self.decay = (p["decay_syn_e"], p["decay_syn_i"])
        self.init = (p["init_syn_e"], p["init_syn_i"])
        self.count = False
        self.events = torch.zeros(0, dtype=torch.bool)  # (SPINNAKER_KINDS, n, batch) when counting

    def start(self, batch: int, count: bool = False) -> None:
        """Fresh state for ``batch`` samples; with ``count``, each tick sets ``events`` (SPINNAKER_KINDS)."""
        self.count = count
        n, p = self.pop.size, self.p
        if count:
            self.events = torch.zeros((len(SPINNAKER_KINDS), n, batch), dtype=torch.bool, device=self.device)
        self.v = p["v_init"].expand(n, batch).clone()
        self.i_syn = [p["isyn_exc_init"].expand(n, batch).clone(), p["isyn_inh_init"].expand(n, batch).clone()]
        self.refract = torch.zeros((n, batch), dtype=torch.int64, device=self.device)
        self.i_rec = torch.zeros((n, batch), dtype=torch.int64, device=self.device)
        self.rb = torch.zeros((self.depth, 2, n, batch), dtype=torch.int64, device=self.device)

    def _wrap(self, x: torch.Tensor, kind: int) -> torch.Tensor:
        """wrap32(x); when counting, marks where the wrap changes x as an event of ``kind``."""
        return wrapped(x, self.events[kind] if self.count else None)

    def _mul(self, a: torch.Tensor, b: torch.Tensor, kind: int) -> torch.Tensor:
        """arith.mul_s1615, its wrap counted as ``kind``."""
        return self._wrap((a * b) >> 15, kind)

    def transfer(self, t: int) -> None:
        slot = self.rb[t % self.depth]
        if self.count:
            self.events[1:].zero_()
            torch.logical_or(slot[0] > RING_BUFFER_MAX, slot[1] > RING_BUFFER_MAX, out=self.events[0])
        for kind in (0, 1):
            inp = self._wrap(slot[kind].clamp(max=RING_BUFFER_MAX) << self.shift[kind], 1)
            if self.exp:
                inp = arith.decay_s1615(inp, self.init[kind])
            self.i_syn[kind] = self._wrap(self.i_syn[kind] + inp, 1)
        slot.zero_()

    def update(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The neuron update; (spikes, V recorded before the update). When counting, the events of
        the membrane (current, alpha, V) count only for neurons not refractory."""
        p, (exc, inh) = self.p, self.i_syn
        v_rec = self.v
        active = self.refract <= 0
        transferred = self.events[1].clone() if self.count else None
        if not self.exp:
            exc, inh = self._mul(exc, p["input_scale"], 1), self._mul(inh, p["input_scale"], 1)
        self.i_rec = arith.wrap32(self.i_syn[0] - self.i_syn[1])
        current = self._wrap(self._wrap(exc - inh, 1) + p["i_offset"], 1)
        alpha = self._wrap(self._mul(current, p["r_membrane"], 2) + p["v_rest"], 2)
        v_new = self._wrap(alpha - self._mul(p["exp_tc"], self._wrap(alpha - self.v, 3), 3), 3)
        if self.count:
            self.events[1] = transferred | (self.events[1] & active)
            self.events[2:] &= active
        v = torch.where(active, v_new, self.v)
        refract = torch.where(active, self.refract, self.refract - 1)
        spikes = v >= p["v_thresh"]
        self.v = torch.where(spikes, p["v_reset"], v)
        self.refract = torch.where(spikes, p["t_refract"], refract)
        if self.exp:
            self.i_syn = [arith.decay_s1615(self.i_syn[0], self.decay[0]), arith.decay_s1615(self.i_syn[1], self.decay[1])]
        else:
            self.i_syn = [torch.zeros_like(self.i_syn[0]), torch.zeros_like(self.i_syn[1])]
        return spikes, v_rec


class Kernel:
    """A spinnaker program on one device (driver.Kernel)."""

    def __init__(self, program: Program, x_max: dict[str, int], device: torch.device, record: tuple[str, ...],
                 overflow: bool = False):
        self.program, self.device, self.record = program, device, record
        self.overflow = overflow
        self.counters: DeviceCounters | None = None
        self.outgoing: dict[str, list[tuple[str, list]]] = {}
        max_delay: dict[str, int] = {}
        for c in program.connections:
            groups = type_delay_groups(c, x_max.get(c.source, 1), device)
            self.outgoing.setdefault(c.source, []).append((c.target, groups))
            max_delay[c.target] = max([max_delay.get(c.target, 1)] + [d for _, d, _ in groups])
        shifts = program.attrs["ring_buffer_shift"]
        self.cores = {p.name: _Core(p, shifts[p.name], 1 + max_delay.get(p.name, 1), device)
                      for p in program.populations}
        self.fixed_bytes = sum(op.fixed_bytes for out in self.outgoing.values() for _, g in out for _, _, op in g)
        self.ops = [op for out in self.outgoing.values() for _, g in out for _, _, op in g]

    def sample_bytes(self) -> int:
        state = sum(16 * 8 * p.size for p in self.program.populations)
        rings = sum(8 * 2 * core.depth * core.pop.size for core in self.cores.values())
        counters = 16 * len(SPINNAKER_KINDS) * len(self.program.populations) if self.overflow else 0
        return state + rings + counters + max((op.transient_bytes for op in self.ops), default=0)

    def start(self, batch: int) -> None:
        if self.overflow:
            self.counters = DeviceCounters(len(self.program.populations), len(SPINNAKER_KINDS), batch, self.device)
        for core in self.cores.values():
            core.start(batch, self.overflow)

    def step(self, t: int, inputs: dict[str, torch.Tensor]) -> list:
        """One step; (population, spikes or None, recorded states) per population (driver.Kernel)."""
        outputs, sent = [], dict(inputs)
        for p_index, p in enumerate(self.program.populations):
            core = self.cores[p.name]
            core.transfer(t)
            spikes, v_rec = core.update()
            if self.counters is not None:
                self.counters.add(p_index, core.events, t)  # SPINNAKER_KINDS
            states = {"v": v_rec, "i": core.i_rec}
            outputs.append((p, spikes if p.spiking else None, {item: states[item] for item in self.record}))
            if p.spiking:
                sent[p.name] = spikes
        # Spikes of tick t land in slots t + d (d >= 1): delivering after every update is the same.
        for source, x in sent.items():
            targets = self.outgoing.get(source, ())
            if not targets or (self.device.type == "cpu" and not bool(x.any())):
                continue
            for target, groups in targets:
                core = self.cores[target]
                for kind, d, op in groups:
                    core.rb[(t + d) % core.depth, kind] += op.apply(x)
        return outputs
