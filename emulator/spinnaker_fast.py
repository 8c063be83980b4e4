"""Compiled, event-driven path of the SpiNNaker kernel, bit-identical to spinnaker.py (the numba
code is in numba_kernels.py).

The tick is spinnaker.py's, per sample and neuron: ring-buffer transfer, V recorded, the membrane
update (refractory neurons hold V), threshold and reset, synaptic decay. Spikes are delivered from
each source that fired, as in fixed_point_fast.py (the same synapse layout and ``deliver``): the
ring buffer of a population is two rings (excitatory, inhibitory) of ``depth`` rows of int64
sums, and every (sparse connection, synapse type) is a channel into one of them. A source's
word lands in row (t + delay) % depth; the sum is clipped to 0xFFFF when its tick transfers it,
which equals saturating each add because words are >= 0. Delivering a population's spikes right
after its update rather than after every population's is the same: delays are >= 1 tick, so no
population reads a row written in the same tick.

A conv connection is delivered from its kernel (event_layout.ConvLayout, memory O(kernel)) into
a ring of its own in channels-last order, whose row of tick t is added into the population's
rings just before the transfer (sums commute; the clip comes after). A conv that uses both
synapse types packs them into one word (inhibitory words << 32): one pass per event adds both
sums, and the fold splits them. That is exact while no half can carry: each product with an
input count is capped at 0x10000 first (a capped product alone saturates its ring word, so the
clipped sum and the overflow counter do not change), and at most PACKED_FAN_IN synapses reach a neuron; beyond that
fan-in the conv has one kernel per type.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.format.convolution import ConvGeometry
from neurodeploy.emulator.event_layout import ConvLayout, SynapseLayout, schedule, source_blocks, source_offsets
from neurodeploy.emulator.numba_kernels import spinnaker_kernel
from neurodeploy.emulator.overflow import SPINNAKER_KINDS
from neurodeploy.emulator.spinnaker import is_exp, total_delays
from neurodeploy.format.program import Program, QConnection

STATE_BUDGET = 256 * 2**20
"""Bytes of per-sample state (V, I_syn, refractory timers, ring buffers) held at once; larger batches run in groups."""
PROGRESS_STEPS = 100
"""Ticks per kernel call when a progress bar is shown."""
PARAMS = ("v_rest", "v_reset", "v_thresh", "i_offset", "r_membrane", "exp_tc", "t_refract",
          "init_syn_e", "init_syn_i", "decay_syn_e", "decay_syn_i", "input_scale")
"""Per-neuron parameters the kernel reads, in the order ``_tick`` unpacks them."""


def _by_type(conn: QConnection):
    """(synapse type, mask of its non-zero words) for each type the connection uses."""
    words, types = conn.arrays["weight"], conn.arrays["synapse_type"]
    for kind in (0, 1):
        keep = (types == kind) & (words != 0)
        if keep.any():
            yield kind, keep


PACKED = 3
"""Fold code of a conv whose words carry both synapse types (0, 1: one type; 2: two kernels)."""
PACKED_FAN_IN = 2**16 - 1
"""Most synapses from one conv into a neuron for packed words: 2^16 - 1 products capped at 0x10000 fit 32 bits."""


def _conv_kernels(conn: QConnection, used: list, geom: ConvGeometry) -> tuple[list[np.ndarray], int]:
    """A conv's kernels and fold code: its words as one kernel where it uses one synapse type,
    packed (inhibitory words << 32) where it uses both and its fan-in allows, else one kernel
    per type (the other type's words zeroed: they add nothing)."""
    words = conn.arrays["weight"].astype(np.int64)
    if len(used) == 1:
        return [words], used[0][0]
    fan_in = int(np.prod(geom.kernel_2d(words).shape[1:]))
    if fan_in <= PACKED_FAN_IN:
        return [words << (32 * conn.arrays["synapse_type"].astype(np.int64))], PACKED
    return [np.where(keep, words, 0) for _, keep in used], 2


def _narrow(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """The arrays as int32 where every value of every one fits, else as they are (int64).

    The tick reads a dozen per-neuron parameters and four states per neuron and tick; held in
    int32 they cost half the memory traffic (on the DVS network's 102k neurons, 10-12% of a tick's
    time). The arithmetic is the same: it runs in int64 on the values read, and every state it
    stores is int32-wrapped first (V, I_syn), so int32 states started from int32 values hold it.
    All or none, so that a program compiles at most one more kernel signature."""
    info = np.iinfo(np.int32)
    if all(not a.size or (int(a.min()) >= info.min and int(a.max()) <= info.max) for a in arrays):
        return tuple(a.astype(np.int32) for a in arrays)
    return arrays


def _append(table: tuple[list[int], ...], n: int, depth: int, at: int, delay: int) -> None:
    """Appends a channel (rows of n words, ``depth`` rows from ``at``, base ``delay``) to ``table``."""
    for column, x in zip(table, (n, depth, at, delay)):
        column.append(x)


class Compiled:
    """The program flattened into arrays a numba kernel can walk."""

    def __init__(self, program: Program):
        self.program = program
        offsets, neuron_offset, self.n_inputs, self.n_neurons = source_offsets(program)
        pops = program.populations

        def per_neuron(key: str) -> np.ndarray:
            return np.concatenate([np.broadcast_to(np.asarray(p.params[key]).reshape(-1).astype(np.int64), (p.size,))
                                   for p in pops]) if pops else np.zeros(0, dtype=np.int64)

        self.params = _narrow(tuple(per_neuron(key) for key in PARAMS))
        self.start = _narrow(tuple(per_neuron(key) for key in ("v_init", "isyn_exc_init", "isyn_inh_init")))
        shifts = program.attrs["ring_buffer_shift"]
        delays = [total_delays(c) for c in program.connections]  # checks that every delay is >= 1
        # A population's rings: rows for the sparse connections' delays; with convs only, one row
        # (their rings of their own are added into it just before it is read).
        depth = {p.name: 1 + max((int(d.max()) for c, d in zip(program.connections, delays)
                                  if c.target == p.name and d.size and c.kind != "conv"), default=0) for p in pops}
        ring_at, buffer_size = {}, 0
        for p in pops:  # per population: excitatory ring, then inhibitory ring, each (depth, size)
            ring_at[p.name] = buffer_size
            buffer_size += 2 * depth[p.name] * p.size
        as_int = lambda values: np.array(values, dtype=np.int64)  # noqa: E731
        start = as_int([neuron_offset[p.name] for p in pops])
        self.pops = (start, start + as_int([p.size for p in pops]),
                     np.array([is_exp(p) for p in pops], dtype=np.bool_),
                     np.array([p.spiking for p in pops], dtype=np.bool_),
                     as_int([shifts[p.name][0] for p in pops]), as_int([shifts[p.name][1] for p in pops]),
                     as_int([ring_at[p.name] for p in pops]), as_int([depth[p.name] for p in pops]))

        self._channels(program, offsets, depth, ring_at, buffer_size)

    def _channels(self, program: Program, offsets: dict[str, int], depth: dict[str, int], ring_at: dict[str, int],
                  buffer_size: int) -> None:
        """Channels: one per (sparse connection, synapse type), into the target's ring of that type
        (the connection's own delay is the channel's base; per-synapse delays travel with the
        synapses), and one per conv connection, a ring of its own after the populations' whose
        kinds (one kernel per synapse type used) are added into the target's rings (``folds``)."""
        layout, convs = SynapseLayout(), ConvLayout()
        block_of, block_sizes, n_input_blocks = source_blocks(program)
        pops = [p.name for p in program.populations]
        table: tuple[list[int], ...] = ([], [], [], [])  # nout, depth, off, base of each channel
        folds: list[list[tuple[int, ...]]] = [[] for _ in pops]  # (channel, groups, c_out / groups, types)
        for conn in program.connections:
            shared = int(conn.attrs.get("delay", 0))
            used = list(_by_type(conn))
            if conn.kind == "conv" and used:
                geom = ConvGeometry.of(conn.attrs)
                kernels, types = _conv_kernels(conn, used, geom)
                convs.add(len(table[0]), block_of[conn.source], kernels, geom, packed=types == PACKED)
                folds[pops.index(conn.target)].append((len(table[0]), geom.groups, geom.out_shape[0] // geom.groups,
                                                       types))
                width = len(kernels) * conn.n_out  # rows of (pixels, groups, kinds, c_out / groups) words
                _append(table, width, shared + 1, buffer_size, shared)
                buffer_size += (shared + 1) * width
            elif conn.kind != "conv":
                for kind, keep in used:
                    self._add_sparse(layout, len(table[0]), conn, keep, offsets[conn.source])
                    at = ring_at[conn.target] + kind * depth[conn.target] * conn.n_out
                    _append(table, conn.n_out, depth[conn.target], at, shared)
        self.buffer_size = buffer_size
        self.synapses = layout.arrays(self.n_inputs, self.n_inputs + self.n_neurons, np.uint16)  # 16-bit words
        self.convs = convs.arrays(block_sizes, n_input_blocks, np.uint16)
        as_int = lambda values: np.array(values, dtype=np.int64)  # noqa: E731
        self.channels = tuple(as_int(column) for column in table)
        flat = [f for per_pop in folds for f in per_pop]
        self.folds = (np.cumsum([0] + [len(f) for f in folds]).astype(np.int64),
                      *(as_int([f[i] for f in flat]) for i in range(4)))

    @staticmethod
    def _add_sparse(layout: SynapseLayout, channel: int, conn: QConnection, keep: np.ndarray, first: int) -> None:
        """The words of one synapse type of a sparse connection (``keep``: which stored synapses)."""
        a = conn.arrays
        rows = np.repeat(np.arange(conn.n_out, dtype=np.int64), np.diff(a["indptr"]))
        shared = int(conn.attrs.get("delay", 0))
        own = None if a.get("delay") is None else (total_delays(conn)[keep] - shared)
        layout.add(channel, first, conn.n_in, conn.n_out, rows[keep], a["indices"][keep].astype(np.int64),
                   a["weight"].astype(np.int64)[keep], own)

    def run(self, inputs: np.ndarray, record_v: bool, record_i: bool, progress: bool = False):
        """Spikes (batch, steps, neurons), when asked raw v and i traces of the same shape, and the
        overflow counts and first steps (batch, populations, SPINNAKER_KINDS; -1: none).

        Samples run in groups whose state fits STATE_BUDGET; with ``progress`` each group runs
        PROGRESS_STEPS ticks per kernel call and a bar counts them.
        """
        batch, steps = inputs.shape[:2]
        inputs = np.ascontiguousarray(inputs.reshape(batch, steps, -1))
        n = self.n_neurons
        spikes = np.zeros((batch, steps, n), dtype=np.uint8)
        v_out = np.zeros((batch, steps, n) if record_v else (0, 0, 0), dtype=np.int64)
        i_out = np.zeros((batch, steps, n) if record_i else (0, 0, 0), dtype=np.int64)
        counts = np.zeros((batch, len(self.pops[0]), len(SPINNAKER_KINDS)), dtype=np.int64)
        first = np.full(counts.shape, -1, dtype=np.int64)
        per_sample = 8 * (self.buffer_size + 4 * n)
        for b0, b1, t0, t1 in schedule(batch, steps, per_sample, progress, STATE_BUDGET, PROGRESS_STEPS):
            if t0 == 0:  # a new group of samples starts from the initial state
                state = tuple(np.repeat(x[None, :], b1 - b0, axis=0) for x in self.start)
                state += (np.zeros((b1 - b0, n), dtype=np.int64),)  # refractory timers
                buf = np.zeros((b1 - b0, self.buffer_size), dtype=np.int64)
            spinnaker_kernel(inputs, b0, t0, t1, state, buf, self.params, self.pops, self.folds, self.synapses,
                             self.convs, self.channels, spikes, v_out, i_out, record_v, record_i, counts, first)
        return spikes, v_out, i_out, counts, first
