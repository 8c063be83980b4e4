"""Compiled, event-driven path of the fixed-point kernel, bit-identical to fixed_point.py (the numba
code is in numba_kernels.py).

Spikes are delivered from each source that fired (event-driven), so the cost follows activity
rather than matrix size: a dense connection adds the source's whole weight row (a contiguous,
vectorized add), a sparse connection adds synapse by synapse, and a conv connection adds the
source's kernel slice into its output window straight from the kernel (memory O(neurons +
kernel), never O(synapses); event_layout.ConvLayout). Because every weight exponent the compiler
emits is >= 0, shifting each synaptic product equals shifting the per-connection sum, and
integer sums do not depend on order: the result is the same integers as the readable numpy
kernel. Programs outside that envelope (negative exponents) use the numpy kernel.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from neurodeploy.format.convolution import ConvGeometry
from neurodeploy.emulator.event_layout import ConvLayout, SynapseLayout, schedule, source_blocks, source_offsets
from neurodeploy.emulator.numba_kernels import fixed_point_kernel
from neurodeploy.emulator.overflow import FIXED_POINT_KINDS
from neurodeploy.targets import fixed_point_math as fpm
from neurodeploy.format.program import Program, QConnection

STATE_BUDGET = 256 * 2**20
"""Bytes of per-sample state (u, v, connection buffers) held at once; larger batches run in groups."""
PROGRESS_STEPS = 100
"""Steps per kernel call when a progress bar is shown."""


def eligible(program: Program) -> bool:
    return all(int(c.attrs["weight_exp"]) >= 0 for c in program.connections)


def _matrix(conn: QConnection) -> scipy.sparse.csr_matrix:
    """A dense or sparse connection's integer weights as a (n_out, n_in) CSR matrix, keeping
    explicit entries (conv connections are delivered from their kernels instead)."""
    w = conn.arrays["weight"].astype(np.int64)
    if conn.kind == "dense":
        rows, cols = np.nonzero(w)
        return scipy.sparse.csr_matrix((w[rows, cols], (rows, cols)), shape=(conn.n_out, conn.n_in))
    return scipy.sparse.csr_matrix((w, conn.arrays["indices"], conn.arrays["indptr"]), shape=(conn.n_out, conn.n_in))


def _delays(conn: QConnection, matrix: scipy.sparse.csr_matrix) -> np.ndarray:
    per = conn.arrays.get("delay")
    if per is None:
        return np.zeros(matrix.nnz, dtype=np.int64)
    if conn.kind == "dense":
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        return per[rows, matrix.indices].astype(np.int64)
    return per.astype(np.int64)  # sparse: aligned with the stored entries


class Compiled:
    """The program flattened into arrays a numba kernel can walk."""

    def __init__(self, program: Program):
        fmt = program.attrs["format"]
        self.program = program
        offsets, neuron_offset, self.n_inputs, self.n_neurons = source_offsets(program)
        cat = lambda key: np.concatenate([p.params[key].reshape(-1).astype(np.int64) for p in program.populations])  # noqa: E731
        c = fpm.neuron_constants({k: cat(k) for k in ("du", "dv", "bias_mant", "bias_exp", "vth")}, fmt)
        self.keep_u, self.keep_v, self.bias, self.threshold = c["keep_u"], c["keep_v"], c["bias"], c["threshold"]
        self.v_init = cat("v_init")
        self.u_init = np.concatenate([p.params.get("u_init", np.zeros(p.size, dtype=np.int64)).reshape(-1)
                                      .astype(np.int64) for p in program.populations])
        self.spiking = np.concatenate([np.full(p.size, p.spiking) for p in program.populations])
        self.pop_start = np.array([neuron_offset[p.name] for p in program.populations], dtype=np.int64)
        self.pop_stop = self.pop_start + np.array([p.size for p in program.populations], dtype=np.int64)
        self.decay_bits, self.shift, self.state_max, self.loihi = (c["decay_bits"], c["shift"], c["state_max"],
                                                                   c["loihi"])
        self.subtract = program.attrs.get("reset", "zero") == "subtract"
        self._connections(program, offsets, neuron_offset)

    def _connections(self, program: Program, offsets: dict[str, int], neuron_offset: dict[str, int]) -> None:
        """One ring buffer (channel) per connection; synapses as dense rows or segments by source,
        conv connections as kernels (channels-last rows, ``conn_cl`` output channels)."""
        hop = int(program.attrs["hop_latency"])
        pops = [p.name for p in program.populations]
        conn_target, conn_nout, conn_depth, conn_off, conn_base, conn_cl = [], [], [], [], [], []
        layout, convs = SynapseLayout(), ConvLayout()
        block_of, block_sizes, n_input_blocks = source_blocks(program)
        buffer_size = 0
        incoming: list[list[int]] = [[] for _ in pops]
        for c_index, conn in enumerate(program.connections):
            base = hop + int(conn.attrs.get("delay", 0)) + (1 if conn.recurrent and hop == 0 else 0)
            exp = int(conn.attrs["weight_exp"])
            if conn.kind == "conv":  # no per-synapse delays: the compiler refuses them on a conv
                geom = ConvGeometry.of(conn.attrs)
                convs.add(c_index, block_of[conn.source], [conn.arrays["weight"].astype(np.int64) << exp], geom)
                depth, cl = base + 1, geom.out_shape[0]
            else:
                matrix = _matrix(conn)
                d = _delays(conn, matrix)
                depth, cl = base + (int(d.max()) if d.size else 0) + 1, 0
                coo = matrix.tocoo()
                layout.add(c_index, offsets[conn.source], conn.n_in, conn.n_out, coo.row, coo.col,
                           coo.data.astype(np.int64) << exp, None if conn.arrays.get("delay") is None else d)
            for values, x in zip((conn_target, conn_nout, conn_depth, conn_off, conn_base, conn_cl),
                                 (neuron_offset[conn.target], conn.n_out, depth, buffer_size, base, cl)):
                values.append(x)
            buffer_size += depth * conn.n_out
            incoming[pops.index(conn.target)].append(c_index)
        self.synapses = layout.arrays(self.n_inputs, self.n_inputs + self.n_neurons)
        self.convs = convs.arrays(block_sizes, n_input_blocks)
        as_int = lambda values: np.array(values, dtype=np.int64)  # noqa: E731
        self.conn_target, self.conn_nout, self.conn_depth = as_int(conn_target), as_int(conn_nout), as_int(conn_depth)
        self.conn_off, self.conn_base, self.conn_cl = as_int(conn_off), as_int(conn_base), as_int(conn_cl)
        self.buffer_size = buffer_size
        self.inc_ptr = np.cumsum([0] + [len(x) for x in incoming]).astype(np.int64)
        self.inc_conn = as_int([c for x in incoming for c in x])

    def run(self, inputs: np.ndarray, record_v: bool, record_u: bool, progress: bool = False):
        """Spikes (batch, steps, neurons), when asked raw v and u traces of the same shape, and the
        overflow counts and first steps (batch, populations, FIXED_POINT_KINDS; -1: none).

        Samples run in groups whose state (u, v, connection buffers) fits STATE_BUDGET; with
        ``progress`` each group runs PROGRESS_STEPS steps per kernel call and a bar counts them.
        """
        batch, steps = inputs.shape[:2]
        inputs = np.ascontiguousarray(inputs.reshape(batch, steps, -1))
        shape_v = (batch, steps, self.n_neurons) if record_v else (0, 0, 0)
        shape_u = (batch, steps, self.n_neurons) if record_u else (0, 0, 0)
        spikes = np.zeros((batch, steps, self.n_neurons), dtype=np.uint8)
        v_out = np.zeros(shape_v, dtype=np.int64)
        u_out = np.zeros(shape_u, dtype=np.int64)
        counts = np.zeros((batch, len(self.pop_start), len(FIXED_POINT_KINDS)), dtype=np.int64)
        first = np.full(counts.shape, -1, dtype=np.int64)
        neurons = (self.keep_u, self.keep_v, self.bias, self.threshold, self.v_init, self.u_init, self.spiking,
                   self.pop_start, self.pop_stop, self.decay_bits, self.shift, self.state_max, self.loihi,
                   self.subtract)
        buffers = (self.conn_target, self.conn_nout, self.conn_depth, self.conn_off, self.conn_base,
                   self.buffer_size, self.inc_ptr, self.inc_conn, self.conn_cl)
        per_sample = 8 * (self.buffer_size + 2 * self.n_neurons)
        for b0, b1, t0, t1 in schedule(batch, steps, per_sample, progress, STATE_BUDGET, PROGRESS_STEPS):
            if t0 == 0:  # a new group of samples starts from the initial state
                u = np.repeat(self.u_init[None, :], b1 - b0, axis=0)
                v = np.repeat(self.v_init[None, :], b1 - b0, axis=0)
                buf = np.zeros((b1 - b0, self.buffer_size), dtype=np.int64)
            # One kernel for every batch size: compiled with parallel=True it also runs one
            # sample faster than a serial compile of the same code (546k vs 316k steps/s).
            fixed_point_kernel(inputs, b0, t0, t1, u, v, buf, neurons, self.synapses, self.convs, buffers, spikes,
                               v_out, u_out, record_v, record_u, counts, first)
        return spikes, v_out, u_out, counts, first
