"""Compiled, event-driven path of the SpiNNaker kernel, bit-identical to spinnaker.py (the numba
code is in numba_kernels.py).

The tick is spinnaker.py's, per sample and neuron: ring-buffer transfer, V recorded, the membrane
update (refractory neurons hold V), threshold and reset, synaptic decay. Spikes are delivered from
each source that fired, as in fixed_point_fast.py (the same synapse layout and ``deliver``): the
ring buffer of a population is two rings (excitatory, inhibitory) of ``depth`` rows of int64
sums, and every (connection, synapse type) is a channel into one of them. A source's
word lands in row (t + delay) % depth; the sum is clipped to 0xFFFF when its tick transfers it,
which equals saturating each add because words are >= 0. Delivering a population's spikes right
after its update rather than after every population's is the same: delays are >= 1 tick, so no
population reads a row written in the same tick.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.emulator.event_layout import SynapseLayout, schedule, source_offsets
from neurodeploy.emulator.numba_kernels import spinnaker_kernel
from neurodeploy.emulator.spinnaker import is_exp, total_delays
from neurodeploy.program import Program

STATE_BUDGET = 256 * 2**20
"""Bytes of per-sample state (V, I_syn, refractory timers, ring buffers) held at once; larger batches run in groups."""
PROGRESS_STEPS = 100
"""Ticks per kernel call when a progress bar is shown."""
PARAMS = ("v_rest", "v_reset", "v_thresh", "i_offset", "r_membrane", "exp_tc", "t_refract",
          "init_syn_e", "init_syn_i", "decay_syn_e", "decay_syn_i", "input_scale")
"""Per-neuron parameters the kernel reads, in the order ``_tick`` unpacks them."""


class Compiled:
    """The program flattened into arrays a numba kernel can walk."""

    def __init__(self, program: Program):
        self.program = program
        offsets, neuron_offset, self.n_inputs, self.n_neurons = source_offsets(program)
        pops = program.populations

        def per_neuron(key: str) -> np.ndarray:
            return np.concatenate([np.broadcast_to(np.asarray(p.params[key]).reshape(-1).astype(np.int64), (p.size,))
                                   for p in pops]) if pops else np.zeros(0, dtype=np.int64)

        self.params = tuple(per_neuron(key) for key in PARAMS)
        self.start = tuple(per_neuron(key) for key in ("v_init", "isyn_exc_init", "isyn_inh_init"))
        shifts = program.attrs["ring_buffer_shift"]
        delays = [total_delays(c) for c in program.connections]  # checks that every delay is >= 1
        depth = {p.name: 1 + max((int(d.max()) for c, d in zip(program.connections, delays)
                                  if c.target == p.name and d.size), default=1) for p in pops}
        ring_at, buffer_size = {}, 0
        for p in pops:  # per population: excitatory ring, then inhibitory ring, each (depth, size)
            ring_at[p.name] = buffer_size
            buffer_size += 2 * depth[p.name] * p.size
        self.buffer_size = buffer_size
        as_int = lambda values: np.array(values, dtype=np.int64)  # noqa: E731
        start = as_int([neuron_offset[p.name] for p in pops])
        self.pops = (start, start + as_int([p.size for p in pops]),
                     np.array([is_exp(p) for p in pops], dtype=np.bool_),
                     np.array([p.spiking for p in pops], dtype=np.bool_),
                     as_int([shifts[p.name][0] for p in pops]), as_int([shifts[p.name][1] for p in pops]),
                     as_int([ring_at[p.name] for p in pops]), as_int([depth[p.name] for p in pops]))

        # Channels: one per (connection, synapse type), into the target's ring of that type. The
        # connection's own delay is the channel's base; per-synapse delays travel with the synapses.
        layout = SynapseLayout()
        nout, ring_depth, off, base = [], [], [], []
        for conn, total in zip(program.connections, delays):
            a = conn.arrays
            rows = np.repeat(np.arange(conn.n_out, dtype=np.int64), np.diff(a["indptr"]))
            words = a["weight"].astype(np.int64)
            shared = int(conn.attrs.get("delay", 0))
            for kind in (0, 1):
                keep = (a["synapse_type"] == kind) & (words != 0)
                if not keep.any():
                    continue
                nout.append(conn.n_out)
                ring_depth.append(depth[conn.target])
                off.append(ring_at[conn.target] + kind * depth[conn.target] * conn.n_out)
                base.append(shared)
                own = None if a.get("delay") is None else (total[keep] - shared)
                layout.add(len(off) - 1, offsets[conn.source], conn.n_in, conn.n_out, rows[keep],
                           a["indices"][keep].astype(np.int64), words[keep], own)
        self.synapses = layout.arrays(self.n_inputs, self.n_inputs + self.n_neurons, np.uint16)  # 16-bit words
        self.channels = (as_int(nout), as_int(ring_depth), as_int(off), as_int(base))

    def run(self, inputs: np.ndarray, record_v: bool, record_i: bool, progress: bool = False):
        """Spikes (batch, steps, neurons) and, when asked, raw v and i traces of the same shape.

        Samples run in groups whose state fits STATE_BUDGET; with ``progress`` each group runs
        PROGRESS_STEPS ticks per kernel call and a bar counts them.
        """
        batch, steps = inputs.shape[:2]
        inputs = np.ascontiguousarray(inputs.reshape(batch, steps, -1))
        n = self.n_neurons
        spikes = np.zeros((batch, steps, n), dtype=np.uint8)
        v_out = np.zeros((batch, steps, n) if record_v else (0, 0, 0), dtype=np.int64)
        i_out = np.zeros((batch, steps, n) if record_i else (0, 0, 0), dtype=np.int64)
        per_sample = 8 * (self.buffer_size + 4 * n)
        for b0, b1, t0, t1 in schedule(batch, steps, per_sample, progress, STATE_BUDGET, PROGRESS_STEPS):
            if t0 == 0:  # a new group of samples starts from the initial state
                state = tuple(np.repeat(x[None, :], b1 - b0, axis=0) for x in self.start)
                state += (np.zeros((b1 - b0, n), dtype=np.int64),)  # refractory timers
                buf = np.zeros((b1 - b0, self.buffer_size), dtype=np.int64)
            spinnaker_kernel(inputs, b0, t0, t1, state, buf, self.params, self.pops, self.synapses, self.channels,
                    spikes, v_out, i_out, record_v, record_i)
        return spikes, v_out, i_out
