"""Compiled, event-driven path of the fixed-point kernel (numba), bit-identical to fixed_point.py.

Spikes are delivered synapse by synapse from each source that fired (event-driven), so the cost
follows activity rather than matrix size. Because every weight exponent the compiler emits is
>= 0, shifting each synaptic product equals shifting the per-connection sum, and integer sums
do not depend on order: the result is the same integers as the readable numpy kernel.
Programs outside that envelope (negative exponents) use the numpy kernel.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse

from neurodeploy.emulator.ops import conv as conv_float
from neurodeploy.program import Program, QConnection


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


class Compiled:
    """The program flattened into arrays a numba kernel can walk."""

    def __init__(self, program: Program):
        fmt = program.attrs["format"]
        hop = int(program.attrs["hop_latency"])
        self.program = program
        offsets, start = {}, 0
        for name, shape in program.inputs.items():
            offsets[name] = start
            start += int(np.prod(shape))
        self.n_inputs = start
        neuron_offset = {}
        total = 0
        for pop in program.populations:
            neuron_offset[pop.name] = total
            offsets[pop.name] = self.n_inputs + total
            total += pop.size
        self.n_neurons = total
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

        # Connections: buffers, and synapses grouped by source (global source ids).
        pops = [p.name for p in program.populations]
        conn_target, conn_nout, conn_depth, conn_off, conn_base = [], [], [], [], []
        src, tgt, weight, delay, cid = [], [], [], [], []
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
            order = np.lexsort((coo.row, coo.col))
            src.append(offsets[conn.source] + coo.col[order].astype(np.int64))
            tgt.append(coo.row[order].astype(np.int64))
            weight.append(coo.data[order].astype(np.int64) << int(conn.attrs["weight_exp"]))
            delay.append(d[order] if d.size else d)
            cid.append(np.full(coo.nnz, c_index, dtype=np.int64))
        n_sources = self.n_inputs + self.n_neurons
        empty = np.zeros(0, dtype=np.int64)
        src_all = np.concatenate(src) if src else empty
        tgt_all = np.concatenate(tgt) if tgt else empty
        w_all = np.concatenate(weight) if weight else empty
        d_all = np.concatenate(delay).astype(np.int64) if delay else empty
        c_all = np.concatenate(cid) if cid else empty
        # Synapses sorted by (source, connection, delay): each run of equal keys is a segment
        # that lands in one buffer row, so delivery is a tight loop of adds.
        order = np.lexsort((tgt_all, d_all, c_all, src_all))
        src_all, tgt_all, w_all, d_all, c_all = (a[order] for a in (src_all, tgt_all, w_all, d_all, c_all))
        change = np.ones(len(src_all), dtype=bool)
        if len(src_all):
            change[1:] = (np.diff(src_all) != 0) | (np.diff(c_all) != 0) | (np.diff(d_all) != 0)
        seg_start = np.flatnonzero(change).astype(np.int64)
        self.seg_start = seg_start
        self.seg_stop = np.append(seg_start[1:], len(src_all)).astype(np.int64)
        self.seg_conn = c_all[seg_start].astype(np.int64)
        self.seg_delay = d_all[seg_start].astype(np.int64)
        self.syn_target = tgt_all.astype(np.int64)
        self.syn_weight = w_all.astype(np.int64)
        self.src_ptr = np.zeros(n_sources + 1, dtype=np.int64)
        np.add.at(self.src_ptr, src_all[seg_start] + 1, 1)
        self.src_ptr = np.cumsum(self.src_ptr)
        self.conn_target = np.array(conn_target, dtype=np.int64)
        self.conn_nout = np.array(conn_nout, dtype=np.int64)
        self.conn_depth = np.array(conn_depth, dtype=np.int64)
        self.conn_off = np.array(conn_off, dtype=np.int64)
        self.conn_base = np.array(conn_base, dtype=np.int64)
        self.buffer_size = buffer_size
        self.inc_ptr = np.cumsum([0] + [len(x) for x in incoming]).astype(np.int64)
        self.inc_conn = np.array([c for x in incoming for c in x], dtype=np.int64)

    def run(self, inputs: np.ndarray, record_v: bool, record_u: bool):
        batch, steps = inputs.shape[:2]
        shape_v = (batch, steps, self.n_neurons) if record_v else (0, 0, 0)
        shape_u = (batch, steps, self.n_neurons) if record_u else (0, 0, 0)
        spikes = np.zeros((batch, steps, self.n_neurons), dtype=np.uint8)
        v_out = np.zeros(shape_v, dtype=np.int64)
        u_out = np.zeros(shape_u, dtype=np.int64)
        kernel = _kernel_parallel if batch > 1 else _kernel_serial
        kernel(np.ascontiguousarray(inputs.reshape(batch, steps, -1), dtype=np.int64), self.keep_u, self.keep_v, self.bias,
                self.threshold, self.v_init, self.u_init, self.spiking, self.pop_start, self.pop_stop, self.decay_bits,
                self.shift, self.state_max, self.loihi, self.n_inputs, self.src_ptr, self.seg_start,
                self.seg_stop, self.seg_conn, self.seg_delay, self.syn_target, self.syn_weight, self.conn_target,
                self.conn_depth,
                self.conn_off, self.conn_base, self.buffer_size, self.inc_ptr, self.inc_conn, self.conn_nout,
                spikes, v_out, u_out, record_v, record_u, self.subtract)
        return spikes, v_out, u_out


@numba.njit(cache=True, inline="always")
def _shr(x, bits, loihi):
    if bits == 0:
        return x
    if loihi:
        return x >> bits if x >= 0 else -((-x) >> bits)
    half = 1 << (bits - 1)
    return (x + half) >> bits if x >= 0 else -((-x + half) >> bits)


@numba.njit(cache=True, inline="always")
def _sat32(x):
    return min(max(x, -2147483648), 2147483647)


@numba.njit(cache=True, inline="always")
def _wrap32(x):
    if -2147483648 <= x <= 2147483647:
        return x
    return ((x + 2147483648) % 4294967296) - 2147483648


@numba.njit(cache=True)
def _deliver(buf, source, value, t, src_ptr, seg_start, seg_stop, seg_conn, seg_delay, syn_target, syn_weight,
             conn_depth, conn_off, conn_base, conn_nout):
    for g in range(src_ptr[source], src_ptr[source + 1]):
        c = seg_conn[g]
        row = conn_off[c] + ((t + conn_base[c] + seg_delay[g]) % conn_depth[c]) * conn_nout[c]
        for k in range(seg_start[g], seg_stop[g]):
            buf[row + syn_target[k]] += syn_weight[k] * value


def _kernel_py(inputs, keep_u, keep_v, bias, threshold, v_init, u_init, spiking, pop_start, pop_stop, decay_bits,
            shift, state_max, loihi, n_inputs, src_ptr, seg_start, seg_stop, seg_conn, seg_delay, syn_target,
            syn_weight, conn_target, conn_depth, conn_off, conn_base, buffer_size, inc_ptr, inc_conn, conn_nout,
            spikes, v_out, u_out, record_v, record_u, subtract):
    batch, steps, n_in = inputs.shape
    n = keep_u.shape[0]
    for b in numba.prange(batch):  # samples are independent: one thread each
        u = u_init.copy()
        v = v_init.copy()
        buf = np.zeros(buffer_size, dtype=np.int64)
        acc = np.zeros(n, dtype=np.int64)
        for t in range(steps):
            for i in range(n_in):
                x = inputs[b, t, i]
                if x != 0:
                    _deliver(buf, i, x, t, src_ptr, seg_start, seg_stop, seg_conn, seg_delay, syn_target,
                             syn_weight, conn_depth, conn_off, conn_base, conn_nout)
            for p in range(pop_start.shape[0]):
                lo, hi = pop_start[p], pop_stop[p]
                for j in range(lo, hi):
                    acc[j] = 0
                for q in range(inc_ptr[p], inc_ptr[p + 1]):
                    c = inc_conn[q]
                    row = conn_off[c] + (t % conn_depth[c]) * conn_nout[c]
                    base = conn_target[c]
                    for j in range(conn_nout[c]):
                        acc[base + j] += _wrap32(buf[row + j]) if loihi else _sat32(buf[row + j])
                        buf[row + j] = 0
                for j in range(lo, hi):
                    a = acc[j]
                    x = _shr(u[j] * keep_u[j], decay_bits, loihi) + (a << shift)
                    if loihi:
                        x = _wrap32(x)
                        if x > state_max:
                            x -= 2 * state_max
                        elif x <= -state_max:
                            x += 2 * state_max
                    else:
                        x = min(max(x, -(state_max - 1)), state_max - 1)
                    u[j] = x
                    y = _shr(v[j] * keep_v[j], decay_bits, loihi) + x + bias[j]
                    y = min(max(y, -(state_max - 1)), state_max - 1)
                    fired = spiking[j] and y > threshold[j]
                    v[j] = (y - threshold[j] if subtract else 0) if fired else y
                    if record_v:
                        v_out[b, t, j] = v[j]
                    if record_u:
                        u_out[b, t, j] = u[j]
                    if fired:
                        spikes[b, t, j] = 1
                        _deliver(buf, n_inputs + j, 1, t, src_ptr, seg_start, seg_stop, seg_conn, seg_delay,
                                 syn_target, syn_weight, conn_depth, conn_off, conn_base, conn_nout)
    return 0


_kernel_serial = numba.njit(cache=True)(_kernel_py)
_kernel_parallel = numba.njit(cache=True, parallel=True)(_kernel_py)  # one sample per thread
