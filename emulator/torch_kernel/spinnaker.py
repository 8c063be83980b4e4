"""sPyNNaker's IF_curr_exp / IF_curr_delta cores on torch: emulator/spinnaker.py's ticks.

Per tick t, each population in program order: ring-buffer transfer (min(rb, 0xFFFF) << shift,
through init_syn for exp synapses, int32 wrap), the neuron update (V recorded before it,
refractory timer, V >= V_thresh spikes, synapse decay or clear); then every spike of tick t
(and every input count) adds its words into the target's ring slot ``(t + d) % depth``, one
product per (synapse type, total delay) of a connection. Ring buffers sum in int64 and are
clipped at transfer: all words are >= 0, so this equals saturating each add.
"""
from __future__ import annotations

import numpy as np
import torch

from neurodeploy.emulator.spinnaker import RECORDABLE, RING_BUFFER_MAX, is_exp, total_delays
from neurodeploy.emulator.torch_kernel import arith
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

    def start(self, batch: int) -> None:
        n, p = self.pop.size, self.p
        self.v = p["v_init"].expand(n, batch).clone()
        self.i_syn = [p["isyn_exc_init"].expand(n, batch).clone(), p["isyn_inh_init"].expand(n, batch).clone()]
        self.refract = torch.zeros((n, batch), dtype=torch.int64, device=self.device)
        self.i_rec = torch.zeros((n, batch), dtype=torch.int64, device=self.device)
        self.rb = torch.zeros((self.depth, 2, n, batch), dtype=torch.int64, device=self.device)

    def transfer(self, t: int) -> None:
        slot = self.rb[t % self.depth]
        for kind in (0, 1):
            inp = arith.wrap32(slot[kind].clamp(max=RING_BUFFER_MAX) << self.shift[kind])
            if self.exp:
                inp = arith.decay_s1615(inp, self.init[kind])
            self.i_syn[kind] = arith.wrap32(self.i_syn[kind] + inp)
        slot.zero_()

    def update(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The neuron update; (spikes, V recorded before the update)."""
        p, (exc, inh) = self.p, self.i_syn
        v_rec = self.v
        if not self.exp:
            exc, inh = arith.mul_s1615(exc, p["input_scale"]), arith.mul_s1615(inh, p["input_scale"])
        self.i_rec = arith.wrap32(self.i_syn[0] - self.i_syn[1])
        current = arith.wrap32(arith.wrap32(exc - inh) + p["i_offset"])
        alpha = arith.wrap32(arith.mul_s1615(current, p["r_membrane"]) + p["v_rest"])
        v_new = arith.wrap32(alpha - arith.mul_s1615(p["exp_tc"], arith.wrap32(alpha - self.v)))
        active = self.refract <= 0
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

    def __init__(self, program: Program, x_max: dict[str, int], device: torch.device, record: tuple[str, ...]):
        self.program, self.device, self.record = program, device, record
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
        return state + rings + max((op.transient_bytes for op in self.ops), default=0)

    def start(self, batch: int) -> None:
        for core in self.cores.values():
            core.start(batch)

    def step(self, t: int, inputs: dict[str, torch.Tensor]) -> list:
        """One step; (population, spikes or None, recorded states) per population (driver.Kernel)."""
        outputs, sent = [], dict(inputs)
        for p in self.program.populations:
            core = self.cores[p.name]
            core.transfer(t)
            spikes, v_rec = core.update()
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
