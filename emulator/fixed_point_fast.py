"""Compiled, event-driven path of the fixed-point kernel (numba), bit-identical to fixed_point.py.

Spikes are delivered from each source that fired (event-driven), so the cost follows activity
rather than matrix size: a dense connection adds the source's whole weight row (a contiguous,
vectorized add), a sparse or conv connection adds synapse by synapse. Because every weight
exponent the compiler emits is >= 0, shifting each synaptic product equals shifting the
per-connection sum, and integer sums do not depend on order: the result is the same integers as
the readable numpy kernel. Programs outside that envelope (negative exponents) use the numpy
kernel.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse

from neurodeploy.emulator.inputs import progress_bar
from neurodeploy.emulator.ops import conv as conv_float
from neurodeploy.program import Program, QConnection

DENSE_ROW_DENSITY = 0.25
"""Connections at least this dense (and without per-synapse delays) are delivered as whole rows."""
STATE_BUDGET = 256 * 2**20
"""Bytes of per-sample state (u, v, connection buffers) held at once; larger batches run in groups."""
PROGRESS_STEPS = 100
"""Steps per kernel call when a progress bar is shown."""


def eligible(program: Program) -> bool:
    return all(int(c.attrs["weight_exp"]) >= 0 for c in program.connections)


def _matrix(conn: QConnection) -> scipy.sparse.csr_matrix:
    """The connection's integer weights as a (n_out, n_in) CSR matrix, keeping explicit entries."""
    w = conn.arrays["weight"].astype(np.int64)
    if conn.kind == "dense":
        rows, cols = np.nonzero(w)
        return scipy.sparse.csr_matrix((w[rows, cols], (rows, cols)), shape=(conn.n_out, conn.n_in))
    if conn.kind == "sparse":
        return scipy.sparse.csr_matrix((w, conn.arrays["indices"], conn.arrays["indptr"]),
                                       shape=(conn.n_out, conn.n_in))
    a = conn.attrs  # conv: apply the kernel to unit vectors
    basis = np.eye(conn.n_in, dtype=np.int64).reshape((conn.n_in,) + tuple(a["in_shape"]))
    dense = conv_float(basis, w, a["stride"], a["padding"], a["dilation"], int(a["groups"]))
    return scipy.sparse.csr_matrix(dense.reshape(conn.n_in, -1).T)


def _delays(conn: QConnection, matrix: scipy.sparse.csr_matrix) -> np.ndarray:
    per = conn.arrays.get("delay")
    if per is None:
        return np.zeros(matrix.nnz, dtype=np.int64)
    if conn.kind == "dense":
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        return per[rows, matrix.indices].astype(np.int64)
    return per.astype(np.int64)  # sparse: aligned with the stored entries


def _by_source(keys: np.ndarray, n_sources: int) -> np.ndarray:
    """CSR-style pointer: entries of source s are ``ptr[s]:ptr[s + 1]`` of arrays sorted by source."""
    ptr = np.zeros(n_sources + 1, dtype=np.int64)
    np.add.at(ptr, keys + 1, 1)
    return np.cumsum(ptr)


def source_offsets(program: Program) -> tuple[dict[str, int], dict[str, int], int, int]:
    """Source numbering shared by the compiled kernels: every input's flattened entries, then every
    population's neurons, in program order. Returns (first source id of each input and population,
    first neuron index of each population, number of input entries, number of neurons)."""
    offsets, start = {}, 0
    for name, shape in program.inputs.items():
        offsets[name] = start
        start += int(np.prod(shape))
    neuron_offset, total = {}, 0
    for pop in program.populations:
        neuron_offset[pop.name] = total
        offsets[pop.name] = start + total
        total += pop.size
    return offsets, neuron_offset, start, total


class SynapseLayout:
    """Synapses grouped by source for event-driven delivery (``deliver``).

    A channel ``c`` is a ring of ``depth[c]`` rows of ``nout[c]`` int64 words starting at ``off[c]``
    of a sample's buffer; what a source sends over ``c`` at step t (plus a synapse's own delay)
    lands in row ``(t + base[c] + delay) % depth[c]``. Channels may share buffer rows: adds commute.
    """

    def __init__(self) -> None:
        self.row_src: list[np.ndarray] = []
        self.row_chan: list[np.ndarray] = []
        self.row_weights: list[np.ndarray] = []
        self.parts: list[tuple[np.ndarray, ...]] = []  # (source, target, weight, delay, channel) per add

    def add(self, channel: int, first_source: int, n_in: int, n_out: int, rows: np.ndarray, cols: np.ndarray,
            weights: np.ndarray, delays: np.ndarray | None = None) -> None:
        """The synapses of one channel: target ``rows``, source ``cols`` (from ``first_source``), int64
        ``weights`` and per-synapse ``delays`` (or None: no delay of their own). Without delays, a
        channel at least DENSE_ROW_DENSITY dense is delivered as whole rows."""
        if delays is None and len(weights) >= DENSE_ROW_DENSITY * n_in * n_out:
            rows_of = np.zeros((n_in, n_out), dtype=np.int64)  # (source, target): one contiguous row each
            np.add.at(rows_of, (cols, rows), weights)
            self.row_src.append(first_source + np.arange(n_in, dtype=np.int64))
            self.row_chan.append(np.full(n_in, channel, dtype=np.int64))
            self.row_weights.append(rows_of.reshape(-1))
            return
        d = np.zeros(len(weights), dtype=np.int64) if delays is None else delays
        self.parts.append((first_source + cols.astype(np.int64), rows, weights, d,
                           np.full(len(weights), channel, dtype=np.int64)))

    def arrays(self, n_inputs: int, n_sources: int, weight_dtype=np.int64) -> tuple:
        """The ``synapses`` tuple that ``deliver`` walks; weights are stored as ``weight_dtype`` where
        they all fit (a narrower type is read faster), int64 otherwise."""
        empty = np.zeros(0, dtype=np.int64)
        cat_or_empty = lambda parts: np.concatenate(parts).astype(np.int64) if parts else empty  # noqa: E731

        # Dense rows, sorted by source: row g of source s adds row_weight[row_at[g]:+nout] to its channel.
        r_src, r_chan = cat_or_empty(self.row_src), cat_or_empty(self.row_chan)
        row_at = np.zeros(len(r_src), dtype=np.int64)
        if len(r_src):
            nouts = np.concatenate([np.full(len(s), len(w) // len(s)) for s, w in zip(self.row_src, self.row_weights)])
            row_at = np.concatenate([[0], np.cumsum(nouts)[:-1]]).astype(np.int64)
        order = np.argsort(r_src, kind="stable")
        row_ptr = _by_source(r_src[order], n_sources)

        # Other synapses sorted by (source, channel, delay): each run of equal keys is a segment
        # that lands in one buffer row, so delivery is a tight loop of adds.
        src_all, tgt_all, w_all, d_all, c_all = (cat_or_empty([p[i] for p in self.parts]) for i in range(5))
        by_key = np.lexsort((tgt_all, d_all, c_all, src_all))
        src_all, tgt_all, w_all, d_all, c_all = (a[by_key] for a in (src_all, tgt_all, w_all, d_all, c_all))
        change = np.ones(len(src_all), dtype=bool)
        if len(src_all):
            change[1:] = (np.diff(src_all) != 0) | (np.diff(c_all) != 0) | (np.diff(d_all) != 0)
        seg_start = np.flatnonzero(change).astype(np.int64)
        seg_stop = np.append(seg_start[1:], len(src_all)).astype(np.int64)
        row_weight = cat_or_empty(self.row_weights)
        info = np.iinfo(weight_dtype)
        if all(not len(w) or (w.min() >= info.min and w.max() <= info.max) for w in (row_weight, w_all)):
            row_weight, w_all = row_weight.astype(weight_dtype), w_all.astype(weight_dtype)
        return (n_inputs, row_ptr, r_chan[order], row_at[order], row_weight,
                _by_source(src_all[seg_start], n_sources), seg_start, seg_stop, c_all[seg_start],
                d_all[seg_start], tgt_all, w_all)


def schedule(batch: int, steps: int, per_sample: int, progress: bool, budget: int, chunk: int):
    """Yields (b0, b1, t0, t1) for each kernel call: samples in groups whose state (``per_sample``
    bytes each) fits ``budget``, all steps in one call or, with ``progress``, ``chunk`` steps per
    call under a progress bar. A group's first call has t0 == 0; later calls continue its state."""
    group = max(1, min(batch, budget // max(per_sample, 1)))
    stride = chunk if progress else max(steps, 1)
    bar = progress_bar(batch * steps, "sample-step") if progress else None
    try:
        for b0 in range(0, batch, group):
            b1 = min(batch, b0 + group)
            for t0 in range(0, steps, stride):
                t1 = min(steps, t0 + stride)
                yield b0, b1, t0, t1
                if bar is not None:
                    bar.update((b1 - b0) * (t1 - t0))
    finally:
        if bar is not None:
            bar.close()


class Compiled:
    """The program flattened into arrays a numba kernel can walk."""

    def __init__(self, program: Program):
        fmt = program.attrs["format"]
        hop = int(program.attrs["hop_latency"])
        self.program = program
        offsets, neuron_offset, self.n_inputs, self.n_neurons = source_offsets(program)
        one = 1 << int(fmt["decay_bits"])
        cat = lambda key: np.concatenate([p.params[key].reshape(-1).astype(np.int64) for p in program.populations])  # noqa: E731
        self.keep_u = one - (cat("du") + int(fmt["du_offset"]))
        self.keep_v = one - cat("dv")
        self.bias = cat("bias_mant") << cat("bias_exp")
        self.threshold = cat("vth") << int(fmt["threshold_shift"])
        self.v_init = cat("v_init")
        self.u_init = np.concatenate([p.params.get("u_init", np.zeros(p.size, dtype=np.int64)).reshape(-1)
                                      .astype(np.int64) for p in program.populations])
        self.spiking = np.concatenate([np.full(p.size, p.spiking) for p in program.populations])
        self.pop_start = np.array([neuron_offset[p.name] for p in program.populations], dtype=np.int64)
        self.pop_stop = self.pop_start + np.array([p.size for p in program.populations], dtype=np.int64)
        self.decay_bits = int(fmt["decay_bits"])
        self.shift = int(fmt["activation_shift"])
        self.state_max = 2 ** (int(fmt["state_bits"]) - 1)
        self.loihi = fmt["target"] == "loihi2"
        self.subtract = program.attrs.get("reset", "zero") == "subtract"
        n_sources = self.n_inputs + self.n_neurons

        # Connections: one ring buffer (channel) each; synapses as dense rows or as segments, by source.
        pops = [p.name for p in program.populations]
        conn_target, conn_nout, conn_depth, conn_off, conn_base = [], [], [], [], []
        layout = SynapseLayout()
        buffer_size = 0
        incoming: list[list[int]] = [[] for _ in pops]
        for c_index, conn in enumerate(program.connections):
            matrix = _matrix(conn)
            d = _delays(conn, matrix)
            base = hop + int(conn.attrs.get("delay", 0)) + (1 if conn.recurrent and hop == 0 else 0)
            depth = base + (int(d.max()) if d.size else 0) + 1
            conn_target.append(neuron_offset[conn.target])
            conn_nout.append(conn.n_out)
            conn_depth.append(depth)
            conn_off.append(buffer_size)
            conn_base.append(base)
            buffer_size += depth * conn.n_out
            incoming[pops.index(conn.target)].append(c_index)
            coo = matrix.tocoo()
            layout.add(c_index, offsets[conn.source], conn.n_in, conn.n_out, coo.row, coo.col,
                       coo.data.astype(np.int64) << int(conn.attrs["weight_exp"]),
                       None if conn.arrays.get("delay") is None else d)
        self.synapses = layout.arrays(self.n_inputs, n_sources)
        self.conn_target = np.array(conn_target, dtype=np.int64)
        self.conn_nout = np.array(conn_nout, dtype=np.int64)
        self.conn_depth = np.array(conn_depth, dtype=np.int64)
        self.conn_off = np.array(conn_off, dtype=np.int64)
        self.conn_base = np.array(conn_base, dtype=np.int64)
        self.buffer_size = buffer_size
        self.inc_ptr = np.cumsum([0] + [len(x) for x in incoming]).astype(np.int64)
        self.inc_conn = np.array([c for x in incoming for c in x], dtype=np.int64)

    def run(self, inputs: np.ndarray, record_v: bool, record_u: bool, progress: bool = False):
        """Spikes (batch, steps, neurons) and, when asked, raw v and u traces of the same shape.

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
        neurons = (self.keep_u, self.keep_v, self.bias, self.threshold, self.v_init, self.u_init, self.spiking,
                   self.pop_start, self.pop_stop, self.decay_bits, self.shift, self.state_max, self.loihi,
                   self.subtract)
        buffers = (self.conn_target, self.conn_nout, self.conn_depth, self.conn_off, self.conn_base,
                   self.buffer_size, self.inc_ptr, self.inc_conn)
        per_sample = 8 * (self.buffer_size + 2 * self.n_neurons)
        for b0, b1, t0, t1 in schedule(batch, steps, per_sample, progress, STATE_BUDGET, PROGRESS_STEPS):
            if t0 == 0:  # a new group of samples starts from the initial state
                u = np.repeat(self.u_init[None, :], b1 - b0, axis=0)
                v = np.repeat(self.v_init[None, :], b1 - b0, axis=0)
                buf = np.zeros((b1 - b0, self.buffer_size), dtype=np.int64)
            # One kernel for every batch size: compiled with parallel=True it also runs one
            # sample faster than a serial compile of the same code (546k vs 316k steps/s).
            _kernel(inputs, b0, t0, t1, u, v, buf, neurons, self.synapses, buffers, spikes, v_out, u_out,
                    record_v, record_u)
        return spikes, v_out, u_out


# deliver, deliver_inputs, send_spikes and wrap32 are compiled into spinnaker_fast's kernel too.
# numba's on-disk cache checks only the source of the file a kernel is defined in: after editing
# them, delete emulator/__pycache__/spinnaker_fast.*.nb[ci], or the SpiNNaker kernel keeps running
# the cached old code.


@numba.njit(cache=True, inline="always")
def deliver(buf, source, value, t, synapses, channels):
    """Add what ``source`` sends (``value`` spikes) to the buffer rows its channels deliver into;
    ``synapses`` is ``SynapseLayout.arrays()``, ``channels`` the channels' (nout, depth, off, base)."""
    n_inputs, row_ptr, row_conn, row_at, row_weight, src_ptr, seg_start, seg_stop, seg_conn, seg_delay, \
        syn_target, syn_weight = synapses
    conn_nout, conn_depth, conn_off, conn_base = channels
    for g in range(row_ptr[source], row_ptr[source + 1]):
        c = row_conn[g]
        n = conn_nout[c]
        row = conn_off[c] + ((t + conn_base[c]) % conn_depth[c]) * n
        dst = buf[row:row + n]  # slices: indices from 0 let the loop vectorize
        weights = row_weight[row_at[g]:row_at[g] + n]
        for k in range(n):
            dst[k] += weights[k] * value
    for g in range(src_ptr[source], src_ptr[source + 1]):
        c = seg_conn[g]
        row = conn_off[c] + ((t + conn_base[c] + seg_delay[g]) % conn_depth[c]) * conn_nout[c]
        for k in range(seg_start[g], seg_stop[g]):
            buf[row + syn_target[k]] += syn_weight[k] * value


@numba.njit(cache=True, inline="always")
def deliver_inputs(buf, inputs, b, t, synapses, channels):
    """Deliver what every input entry sends at step t of sample b (a spike count each)."""
    for i in range(inputs.shape[2]):
        x = inputs[b, t, i]
        if x != 0:
            deliver(buf, i, x, t, synapses, channels)


@numba.njit(cache=True, inline="always")
def send_spikes(buf, fired, step_spikes, lo, hi, t, synapses, channels):
    """Mark in ``step_spikes`` and deliver the spikes of the neurons lo:hi that fired at step t."""
    n_inputs = synapses[0]
    for j in range(lo, hi):
        if fired[j]:
            step_spikes[j] = 1
            deliver(buf, n_inputs + j, 1, t, synapses, channels)


@numba.njit(cache=True, inline="always")
def _shr(x, bits, loihi):
    """Shift right: toward zero (Loihi's decay) or to nearest, half away from zero (generic)."""
    if loihi:
        return x >> bits if x >= 0 else -((-x) >> bits)
    half = (1 << bits) >> 1
    return (x + half) >> bits if x >= 0 else -((-x + half) >> bits)


@numba.njit(cache=True, inline="always")
def wrap32(x):
    """Two's-complement int32 wrap of an int64 (branch-free, so loops over it vectorize)."""
    return ((x + 2147483648) & 4294967295) - 2147483648


@numba.njit(cache=True, inline="always")
def _gather(buf, acc, t, p, loihi, buffers):
    """Sum what every incoming connection of population p delivers at t into acc; clear those slots."""
    conn_target, conn_nout, conn_depth, conn_off, conn_base, buffer_size, inc_ptr, inc_conn = buffers
    for q in range(inc_ptr[p], inc_ptr[p + 1]):
        c = inc_conn[q]
        n = conn_nout[c]
        row = conn_off[c] + (t % conn_depth[c]) * n
        src = buf[row:row + n]
        dst = acc[conn_target[c]:conn_target[c] + n]
        for j in range(n):
            # Loihi wraps the emitted value to int32; the generic profile saturates it
            dst[j] += wrap32(src[j]) if loihi else min(max(src[j], -2147483648), 2147483647)
            src[j] = 0


@numba.njit(cache=True, inline="always")
def _update(acc, u, v, fired, lo, hi, neurons, loihi, subtract):
    """One step of the CUBA LIF for neurons lo:hi (branch-free body on slices, so it vectorizes)."""
    keep_u, keep_v, bias, threshold, v_init, u_init, spiking, pop_start, pop_stop, decay_bits, shift, \
        state_max, _, _ = neurons
    a, uu, vv, ku, kv = acc[lo:hi], u[lo:hi], v[lo:hi], keep_u[lo:hi], keep_v[lo:hi]
    bb, th, sp, ff = bias[lo:hi], threshold[lo:hi], spiking[lo:hi], fired[lo:hi]
    for j in range(hi - lo):
        x = _shr(uu[j] * ku[j], decay_bits, loihi) + (a[j] << shift)
        if loihi:  # int32 sum, then u wraps once by 2^24
            x = wrap32(x)
            x = x - 2 * state_max if x > state_max else (x + 2 * state_max if x <= -state_max else x)
        else:
            x = min(max(x, -(state_max - 1)), state_max - 1)
        uu[j] = x
        y = _shr(vv[j] * kv[j], decay_bits, loihi) + x + bb[j]
        y = min(max(y, -(state_max - 1)), state_max - 1)
        f = sp[j] & (y > th[j])
        vv[j] = ((y - th[j]) if subtract else 0) if f else y
        ff[j] = f
        a[j] = 0


@numba.njit(cache=True, parallel=True)
def _kernel(inputs, b0, t0, t1, u, v, buf, neurons, synapses, buffers, spikes, v_out, u_out, record_v, record_u):
    """Steps t0..t1 of samples b0..b0 + len(u), continuing from (and updating) their state u, v, buf."""
    pop_start, pop_stop, loihi, subtract = neurons[7], neurons[8], neurons[12], neurons[13]
    channels = (buffers[1], buffers[2], buffers[3], buffers[4])  # (nout, depth, off, base) of each connection
    n = u.shape[1]
    for k in numba.prange(u.shape[0]):  # samples are independent: one thread each
        b = b0 + k
        uu, vv, bb = u[k], v[k], buf[k]
        acc = np.zeros(n, dtype=np.int64)
        fired = np.zeros(n, dtype=np.bool_)
        for t in range(t0, t1):
            deliver_inputs(bb, inputs, b, t, synapses, channels)
            for p in range(pop_start.shape[0]):
                lo, hi = pop_start[p], pop_stop[p]
                if loihi:
                    _gather(bb, acc, t, p, True, buffers)
                    if subtract:
                        _update(acc, uu, vv, fired, lo, hi, neurons, True, True)
                    else:
                        _update(acc, uu, vv, fired, lo, hi, neurons, True, False)
                else:
                    _gather(bb, acc, t, p, False, buffers)
                    if subtract:
                        _update(acc, uu, vv, fired, lo, hi, neurons, False, True)
                    else:
                        _update(acc, uu, vv, fired, lo, hi, neurons, False, False)
                if record_v:
                    v_out[b, t, lo:hi] = vv[lo:hi]
                if record_u:
                    u_out[b, t, lo:hi] = uu[lo:hi]
                send_spikes(bb, fired, spikes[b, t], lo, hi, t, synapses, channels)
    return 0
