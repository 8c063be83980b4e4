"""Every numba function of the compiled kernels (fixed_point_fast.py, spinnaker_fast.py), in one file.

numba's on-disk cache (``cache=True``) decides whether a compiled kernel is stale from the
source file that defines it, not from the files of the functions it inlines: keeping every
kernel and every helper here means that any edit recompiles them all.

Each kernel is compiled once with ``parallel=True`` (one sample per thread) and used for every
batch size; it also runs one sample faster than a serial compile of the same code. Loops work on
slices indexed from 0 (``buf[row:row + n]``), which lets LLVM vectorize them, and neuron updates
have branch-free bodies; loop-invariant flags are passed as literals into inlined helpers.

Spikes and input counts are delivered per source block (an input or a population): its events
are listed once (``nonzero``), then every connection from the block walks them. numba counts
references to the arrays an inlined function receives each time it runs, so helpers that run
once per event take scalars only; array tables are bound once per block. A conv connection adds
each event's kernel slice straight from its kernel (``conv_events``, no synapse lists) into a
channels-last ring that its target reads back in neuron order (``fold``).
"""
from __future__ import annotations

import numba
import numpy as np

RING_BUFFER_MAX = 0xFFFF  # SpiNNaker's uint16 ring-buffer words (emulator/spinnaker.py)


SCAN = 64
"""Sources checked at once for any event (a vectorized test skips a silent run of SCAN sources)."""


@numba.njit(cache=True, inline="always")
def nonzero(values, out):
    """Writes the indices of the non-zero ``values`` (spikes or counts) to ``out``; returns how many."""
    m = 0
    for i0 in range(0, values.shape[0], SCAN):
        chunk = values[i0:i0 + SCAN]
        hits = 0
        for j in range(chunk.shape[0]):
            hits += chunk[j] != 0
        if hits:
            for j in range(chunk.shape[0]):
                if chunk[j] != 0:
                    out[m] = i0 + j
                    m += 1
    return m


@numba.njit(cache=True, inline="always")
def deliver(buf, values, events, first, t, synapses, channels):
    """Add what the sources first + i, i in ``events``, send (``values[i]`` spikes or a count) to
    the buffer rows their channels deliver into; ``synapses`` is ``SynapseLayout.arrays()``,
    ``channels`` the channels' (nout, depth, off, base). One call per block of sources, so the
    arrays are bound once, not per event (numba counts references of arrays passed to inlined code)."""
    n_inputs, row_ptr, row_conn, row_at, row_weight, src_ptr, seg_start, seg_stop, seg_conn, seg_delay, \
        syn_target, syn_weight = synapses
    conn_nout, conn_depth, conn_off, conn_base = channels
    for i in events:
        value = values[i]
        source = first + i
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
def _conv_source(local, h_in, w_in, kh, kw, width, per_in, run):
    """Where source ``local`` = (c, y, x) of a conv starts: (its group's first entry in an output
    pixel, its kernel slice's offset in the conv's kernels, its y and x tap-table rows' offsets)."""
    ci = local // (h_in * w_in)
    pix = local - ci * h_in * w_in
    y = pix // w_in
    group = ci // per_in
    first = group * run
    return first, (ci - group * per_in) * kh * kw * width + first, y * (1 + 2 * kh), (pix - y * w_in) * (1 + 2 * kw)


LOW32 = 0xFFFFFFFF


@numba.njit(cache=True, inline="always")
def conv_events(buf, values, events, t, e, counts, convs, channels):
    """Deliver over conv ``e`` what its sources i in ``events`` send (``values[i]`` spikes, or a
    count where ``counts``): for each tap (u, v) that carries source (c, y, x) to an output
    (oy, ox), the tap's kernel slice over the group's output channels (of every kind), into the
    channels-last row of the conv's channel. ``convs`` is ``ConvLayout.arrays()`` (geometry
    columns: CONV_FIELDS). A packed conv's words carry two 32-bit sums (SpiNNaker's excitatory,
    inhibitory); products with a count > 1 are capped at RING_BUFFER_MAX + 1 so that neither half
    carries (a capped product alone saturates the ring word, and the sum stays over 0xFFFF)."""
    _, _, geometry, kernels, taps = convs
    conn_nout, conn_depth, conn_off, conn_base = channels
    g = geometry[e]
    c, kernel_at, h_in, w_in, width, kh, kw, per_in, run = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8]
    packed = counts and g[11] != 0
    row = conn_off[c] + ((t + conn_base[c]) % conn_depth[c]) * conn_nout[c]
    for i in events:
        value = values[i]
        capped = packed and value > 1  # a word times 1 is at most RING_BUFFER_MAX already
        first, w0, ty, tx = _conv_source(i, h_in, w_in, kh, kw, width, per_in, run)
        ty += g[9]  # the tap tables: a count, then (output offset, kernel offset) pairs
        tx += g[10]
        for a in range(taps[ty]):
            out_y, tap_y = row + first + taps[ty + 1 + 2 * a], kernel_at + w0 + taps[ty + 2 + 2 * a]
            for b in range(taps[tx]):
                at = out_y + taps[tx + 1 + 2 * b]
                w_at = tap_y + taps[tx + 2 + 2 * b]
                dst = buf[at:at + run]  # slices: indices from 0 let the loop vectorize
                weights = kernels[w_at:w_at + run]
                if capped:
                    for j in range(run):
                        x = weights[j]
                        dst[j] += min((x & LOW32) * value, RING_BUFFER_MAX + 1) + \
                            (min(((x >> 32) & LOW32) * value, RING_BUFFER_MAX + 1) << 32)
                else:
                    for j in range(run):
                        dst[j] += weights[j] * value


@numba.njit(cache=True, inline="always")
def deliver_block(buf, values, scratch, block, first, t, counts, synapses, convs, channels):
    """Deliver what source block ``block`` (sources first, first + 1, ...) sends at t: ``values``
    holds each source's spikes or (``counts``) count; ``scratch`` has room for an index per source."""
    events = scratch[:nonzero(values, scratch)]
    if events.shape[0] == 0:
        return
    deliver(buf, values, events, first, t, synapses, channels)
    block_ptr = convs[0]
    for e in range(block_ptr[block], block_ptr[block + 1]):
        conv_events(buf, values, events, t, e, counts, convs, channels)


@numba.njit(cache=True, inline="always")
def deliver_inputs(buf, inputs, scratch, b, t, synapses, convs, channels):
    """Deliver what every input entry sends at step t of sample b (a spike count each)."""
    starts = convs[1]  # input blocks: entries starts[k]:starts[k + 1]
    for k in range(starts.shape[0] - 1):
        deliver_block(buf, inputs[b, t, starts[k]:starts[k + 1]], scratch, k, starts[k], t, True, synapses, convs,
                      channels)


@numba.njit(cache=True, inline="always")
def send_spikes(buf, step_spikes, scratch, lo, hi, t, block, synapses, convs, channels):
    """Deliver the spikes of neurons lo:hi (source block ``block``) at step t, as the neuron update
    wrote them into ``step_spikes`` (the spike output's row of step t: no copy of its own)."""
    deliver_block(buf, step_spikes[lo:hi], scratch, block, synapses[0] + lo, t, False, synapses, convs, channels)


FOLD_TILE = 16
"""Pixels per tile of ``fold``'s transpose: a tile's reads and its c runs of writes stay in cache."""


@numba.njit(cache=True, inline="always")
def _as_emitted(x, wrap, saturate):
    """A connection's sum as its target receives it: wrapped to int32, saturated to int32, or as it is."""
    if wrap:
        return wrap32(x)
    if saturate:
        return min(max(x, -2147483648), 2147483647)
    return x


@numba.njit(cache=True, inline="always")
def _fold_tile(src, dst, dst_2, hits, p0, n, hw, groups, per_out, kinds, packed, wrap, saturate):
    """``fold`` of the n pixels from p0 (n is a literal FOLD_TILE but in the last tile)."""
    width = groups * kinds * per_out
    tile = src[p0 * width:(p0 + n) * width]
    marked = 0
    for kind in range(kinds):
        out = dst_2 if kind else dst
        for g in range(groups):
            for co in range(per_out):
                at = (g * per_out + co) * hw + p0
                s = (g * kinds + kind) * per_out + co
                d = out[at:at + n]
                if packed:  # the low and high 32 bits of each word
                    d_2 = dst_2[at:at + n]
                    for j in range(n):
                        x = tile[j * width + s]
                        d[j] += x & LOW32
                        d_2[j] += (x >> 32) & LOW32
                elif wrap or saturate:  # a fixed-point conv: count sums outside int32 in hits
                    changed = 0  # non-zero where some x left int32 (an OR of x ^ emitted: cheaper than counting)
                    for j in range(n):
                        x = tile[j * width + s]
                        y = _as_emitted(x, wrap, saturate)
                        changed |= x ^ y
                        d[j] += y
                    if changed:  # rare: mark the neurons whose sum left int32
                        h = hits[at:at + n]
                        for j in range(n):
                            h[j] += outside_int32(tile[j * width + s])
                        marked += 1
                else:
                    for j in range(n):
                        d[j] += tile[j * width + s]
    tile[:] = 0
    return marked


@numba.njit(cache=True, inline="always")
def fold(src, dst, dst_2, hits, groups, per_out, kinds, packed, wrap, saturate):
    """dst (c_out, h, w) += the first kind of src (h, w, groups, kinds, per_out), dst_2 += the
    second (kinds 1 or 2; ``packed``: the low and the high 32 bits of one kind), each value
    through ``_as_emitted`` (with ``wrap`` or ``saturate``, hits += where it left int32: returns
    non-zero when it marked any); clears src. Reads a conv's channels-last row in neuron order,
    transposing tiles of FOLD_TILE pixels."""
    hw = src.shape[0] // (groups * kinds * per_out)
    tiled = hw - hw % FOLD_TILE
    marked = 0
    for p0 in range(0, tiled, FOLD_TILE):
        marked += _fold_tile(src, dst, dst_2, hits, p0, FOLD_TILE, hw, groups, per_out, kinds, packed, wrap,
                             saturate)
    if tiled < hw:
        marked += _fold_tile(src, dst, dst_2, hits, tiled, hw - tiled, hw, groups, per_out, kinds, packed, wrap,
                             saturate)
    return marked


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
def outside_int32(x):
    """1 where an int64 lies outside int32 (its wrap or saturation at int32 changes it), else 0."""
    return (x < -2147483648) | (x > 2147483647)


@numba.njit(cache=True, inline="always")
def tally(counts, first, b, p, kind, events, t):
    """Adds ``events`` overflow events of step t to counter (b, p, kind); the first step with one."""
    counts[b, p, kind] += events
    if events != 0 and first[b, p, kind] < 0:
        first[b, p, kind] = t


@numba.njit(cache=True, inline="always")
def _gather(buf, acc, hits, t, p, loihi, buffers):
    """Sum what every incoming connection of population p delivers at t into acc; clear those slots.
    Where a connection's sum left int32, hits += 1 (a vectorized count first: the marking pass runs
    only when there is one); returns non-zero when hits of p may be set."""
    conn_target, conn_nout, conn_depth, conn_off, conn_base, buffer_size, inc_ptr, inc_conn, conn_cl = buffers
    marked = 0
    for q in range(inc_ptr[p], inc_ptr[p + 1]):
        c = inc_conn[q]
        n = conn_nout[c]
        row = conn_off[c] + (t % conn_depth[c]) * n
        src = buf[row:row + n]
        dst = acc[conn_target[c]:conn_target[c] + n]
        hit = hits[conn_target[c]:conn_target[c] + n]
        if conn_cl[c]:  # a conv's channels-last row (fold marks hits)
            marked += fold(src, dst, dst, hit, 1, conn_cl[c], 1, False, loihi, not loihi)
            continue
        changed = 0  # non-zero where some x left int32 (an OR of x ^ emitted: cheaper than counting)
        for j in range(n):
            # Loihi wraps the emitted value to int32; the generic profile saturates it
            x = src[j]
            y = wrap32(x) if loihi else min(max(x, -2147483648), 2147483647)
            changed |= x ^ y
            dst[j] += y
        if changed:
            for j in range(n):
                hit[j] += outside_int32(src[j])
            marked += 1
        src[:] = 0
    return marked


@numba.njit(cache=True, inline="always")
def _update(acc, u, v, fired, lo, hi, neurons, loihi, subtract):
    """One step of the CUBA LIF for neurons lo:hi (branch-free body on slices, so it vectorizes);
    returns the overflow events (u wrapped or saturated, v clamped)."""
    keep_u, keep_v, bias, threshold, v_init, u_init, spiking, pop_start, pop_stop, decay_bits, shift, \
        state_max, _, _ = neurons
    a, uu, vv, ku, kv = acc[lo:hi], u[lo:hi], v[lo:hi], keep_u[lo:hi], keep_v[lo:hi]
    bb, th, sp, ff = bias[lo:hi], threshold[lo:hi], spiking[lo:hi], fired[lo:hi]
    n_u, n_v = 0, 0
    for j in range(hi - lo):
        x = _shr(uu[j] * ku[j], decay_bits, loihi) + (a[j] << shift)
        if loihi:  # int32 sum, then u wraps once by 2^24
            x = wrap32(x)
            xu = x - 2 * state_max if x > state_max else (x + 2 * state_max if x <= -state_max else x)
        else:
            xu = min(max(x, -(state_max - 1)), state_max - 1)
        n_u += xu != x  # the wrap taken, or a saturation
        uu[j] = xu
        y = _shr(vv[j] * kv[j], decay_bits, loihi) + xu + bb[j]
        yc = min(max(y, -(state_max - 1)), state_max - 1)
        n_v += yc != y
        y = yc
        f = sp[j] & (y > th[j])
        vv[j] = ((y - th[j]) if subtract else 0) if f else y
        ff[j] = f
        a[j] = 0
    return n_u, n_v


@numba.njit(cache=True, inline="always")
def _input_events(hits, lo, hi):
    """Neurons lo:hi with a connection's sum outside int32 this step (hits > 0); clears hits."""
    h = hits[lo:hi]
    events = 0
    for j in range(hi - lo):
        events += h[j] != 0
        h[j] = 0
    return events


@numba.njit(cache=True, parallel=True)
def fixed_point_kernel(inputs, b0, t0, t1, u, v, buf, neurons, synapses, convs, buffers, spikes, v_out, u_out, record_v,
                       record_u, counts, first):
    """Steps t0..t1 of samples b0..b0 + len(u), continuing from (and updating) their state u, v, buf;
    adds the overflow events to counts and first (batch, populations, FIXED_POINT_KINDS)."""
    pop_start, pop_stop, loihi, subtract = neurons[7], neurons[8], neurons[12], neurons[13]
    channels = (buffers[1], buffers[2], buffers[3], buffers[4])  # (nout, depth, off, base) of each connection
    n_input_blocks = convs[1].shape[0] - 1
    n = u.shape[1]
    for k in numba.prange(u.shape[0]):  # samples are independent: one thread each
        b = b0 + k
        uu, vv, bb = u[k], v[k], buf[k]
        acc = np.zeros(n, dtype=np.int64)
        hits = np.zeros(n, dtype=np.int64)  # connections whose sum left int32, per neuron, this step
        scratch = np.empty(max(n, inputs.shape[2]), dtype=np.int64)  # event indices of one source block
        for t in range(t0, t1):
            deliver_inputs(bb, inputs, scratch, b, t, synapses, convs, channels)
            fired = spikes[b, t]  # the update writes the step's spikes straight into the output
            for p in range(pop_start.shape[0]):
                lo, hi = pop_start[p], pop_stop[p]
                if loihi:
                    marked = _gather(bb, acc, hits, t, p, True, buffers)
                    if subtract:
                        events = _update(acc, uu, vv, fired, lo, hi, neurons, True, True)
                    else:
                        events = _update(acc, uu, vv, fired, lo, hi, neurons, True, False)
                else:
                    marked = _gather(bb, acc, hits, t, p, False, buffers)
                    if subtract:
                        events = _update(acc, uu, vv, fired, lo, hi, neurons, False, True)
                    else:
                        events = _update(acc, uu, vv, fired, lo, hi, neurons, False, False)
                tally(counts, first, b, p, 0, _input_events(hits, lo, hi) if marked else 0, t)
                tally(counts, first, b, p, 1, events[0], t)
                tally(counts, first, b, p, 2, events[1], t)
                if record_v:
                    v_out[b, t, lo:hi] = vv[lo:hi]
                if record_u:
                    u_out[b, t, lo:hi] = uu[lo:hi]
                send_spikes(bb, fired, scratch, lo, hi, t, n_input_blocks + p, synapses, convs, channels)
    return 0


# ----------------------------------------------------------------------------- SpiNNaker

@numba.njit(cache=True, inline="always")
def _mul(a, b):
    """s1615 x s1615: floor(a*b / 2**15), wrapped to int32."""
    return wrap32((a * b) >> 15)


@numba.njit(cache=True, inline="always")
def _wrapped(x):
    """(wrap32(x), 1 where that changed x)."""
    return wrap32(x), outside_int32(x)


@numba.njit(cache=True, inline="always")
def _membrane(e, i, offset, r_m, rest, tc, scale, v0, exp):
    """V after the update from I_syn e, i (spinnaker.py's ``_membrane``) and whether the synaptic
    current, alpha and the V update wrapped (0/1 each)."""
    if exp:
        drive, c0 = _wrapped(e - i)
    else:
        me, c1 = _wrapped((e * scale) >> 15)
        mi, c2 = _wrapped((i * scale) >> 15)
        drive, c0 = _wrapped(me - mi)
        c0 = c0 | c1 | c2
    cur, c3 = _wrapped(drive + offset)
    m, a0 = _wrapped((cur * r_m) >> 15)
    alpha, a1 = _wrapped(m + rest)
    gap, w0 = _wrapped(alpha - v0)
    m2, w1 = _wrapped((tc * gap) >> 15)
    v_new, w2 = _wrapped(alpha - m2)
    return v_new, c0 | c3, a0 | a1, w0 | w1 | w2


@numba.njit(cache=True, inline="always")
def _tick(ring_e, ring_i, v, i_exc, i_inh, refract, current, fired, params, lo, hi, shift_e, shift_i, spiking, exp):
    """One tick of neurons lo:hi after the transfer from ``ring_e``/``ring_i`` (which it clears);
    ``current`` gets I_syn[exc] - I_syn[inh] after the transfer. A branch-free body on slices
    indexed from 0, so it vectorizes; ``exp`` is a literal (IF_curr_exp or IF_curr_delta).
    Returns the overflow events (SPINNAKER_KINDS: ring buffer, current, alpha, v)."""
    v_rest, v_reset, v_thresh, i_offset, r_membrane, exp_tc, t_refract, init_e, init_i, decay_e, decay_i, \
        input_scale = params
    vv, syn_e, syn_i, rr, cc, ff = v[lo:hi], i_exc[lo:hi], i_inh[lo:hi], refract[lo:hi], current[lo:hi], fired[lo:hi]
    rest, reset, thresh, offset = v_rest[lo:hi], v_reset[lo:hi], v_thresh[lo:hi], i_offset[lo:hi]
    r_m, tc, t_ref, scale = r_membrane[lo:hi], exp_tc[lo:hi], t_refract[lo:hi], input_scale[lo:hi]
    in_e, in_i, de, di = init_e[lo:hi], init_i[lo:hi], decay_e[lo:hi], decay_i[lo:hi]
    n_ring, n_cur, n_alpha, n_v = 0, 0, 0, 0
    for j in range(hi - lo):
        re, ri = ring_e[j], ring_i[j]
        n_ring += (re > RING_BUFFER_MAX) | (ri > RING_BUFFER_MAX)
        add_e, c0 = _wrapped(min(re, RING_BUFFER_MAX) << shift_e)
        add_i, c1 = _wrapped(min(ri, RING_BUFFER_MAX) << shift_i)
        ring_e[j] = 0
        ring_i[j] = 0
        if exp:
            add_e = (add_e * in_e[j]) >> 32  # decay_s1615: s1615 x u032
            add_i = (add_i * in_i[j]) >> 32
        e, c2 = _wrapped(syn_e[j] + add_e)
        i, c3 = _wrapped(syn_i[j] + add_i)
        cc[j] = wrap32(e - i)
        v0 = vv[j]
        v_new, cm, am, vm = _membrane(e, i, offset[j], r_m[j], rest[j], tc[j], scale[j], v0, exp)
        r0 = rr[j]
        active = r0 <= 0
        n_cur += c0 | c1 | c2 | c3 | (cm & active)
        n_alpha += am & active
        n_v += vm & active
        v1 = v_new if active else v0
        r1 = r0 if active else r0 - 1
        spike = v1 >= thresh[j]
        vv[j] = reset[j] if spike else v1
        rr[j] = t_ref[j] if spike else r1
        ff[j] = spike & spiking
        if exp:
            syn_e[j] = (e * de[j]) >> 32
            syn_i[j] = (i * di[j]) >> 32
        else:
            syn_e[j] = 0
            syn_i[j] = 0
    return n_ring, n_cur, n_alpha, n_v


@numba.njit(cache=True, inline="always")
def _fold_convs(bb, ring_e, ring_i, t, p, folds, channels):
    """Add the row of tick t of every conv channel into population p's rings (each kind into the
    ring of its synapse type) and clear it."""
    fold_ptr, fold_chan, fold_groups, fold_per_out, fold_types = folds
    nout, depth, off, _ = channels
    for q in range(fold_ptr[p], fold_ptr[p + 1]):
        c = fold_chan[q]
        row = off[c] + (t % depth[c]) * nout[c]
        src = bb[row:row + nout[c]]
        types = fold_types[q]  # 0, 1: one kind of that type; 2: excitatory, inhibitory kinds; 3: packed
        first = ring_i if types == 1 else ring_e
        fold(src, first, ring_i, ring_i, fold_groups[q], fold_per_out[q], 2 if types == 2 else 1, types == 3, False,
             False)


@numba.njit(cache=True, parallel=True)
def spinnaker_kernel(inputs, b0, t0, t1, state, buf, params, pops, folds, synapses, convs, channels, spikes, v_out,
                     i_out, record_v, record_i, counts, first):
    """Ticks t0..t1 of samples b0..b0 + len(buf), continuing from (and updating) their state and buf;
    adds the overflow events to counts and first (batch, populations, SPINNAKER_KINDS)."""
    pop_start, pop_stop, pop_exp, pop_spiking, shift_e, shift_i, ring_at, depth = pops
    v, i_exc, i_inh, refract = state
    n_input_blocks = convs[1].shape[0] - 1
    n = v.shape[1]
    for k in numba.prange(v.shape[0]):  # samples are independent: one thread each
        b = b0 + k
        bb = buf[k]
        current = np.zeros(n, dtype=np.int64)
        scratch = np.empty(max(n, inputs.shape[2]), dtype=np.int64)  # event indices of one source block
        for t in range(t0, t1):
            deliver_inputs(bb, inputs, scratch, b, t, synapses, convs, channels)
            fired = spikes[b, t]  # the update writes the step's spikes straight into the output
            for p in range(pop_start.shape[0]):
                lo, hi = pop_start[p], pop_stop[p]
                size = hi - lo
                row_e = ring_at[p] + (t % depth[p]) * size
                row_i = row_e + depth[p] * size
                ring_e, ring_i = bb[row_e:row_e + size], bb[row_i:row_i + size]
                _fold_convs(bb, ring_e, ring_i, t, p, folds, channels)
                if record_v:
                    v_out[b, t, lo:hi] = v[k, lo:hi]  # V before the update
                if pop_exp[p]:
                    events = _tick(ring_e, ring_i, v[k], i_exc[k], i_inh[k], refract[k], current, fired, params, lo,
                                   hi, shift_e[p], shift_i[p], pop_spiking[p], True)
                else:
                    events = _tick(ring_e, ring_i, v[k], i_exc[k], i_inh[k], refract[k], current, fired, params, lo,
                                   hi, shift_e[p], shift_i[p], pop_spiking[p], False)
                for kind in range(4):
                    tally(counts, first, b, p, kind, events[kind], t)
                if record_i:
                    i_out[b, t, lo:hi] = current[lo:hi]
                send_spikes(bb, fired, scratch, lo, hi, t, n_input_blocks + p, synapses, convs, channels)
    return 0
