"""Python side of the compiled (numba) kernels: source numbering, synapses grouped by source for
event-driven delivery, conv kernels for event-driven convolution, and the schedule of kernel
calls (groups of samples, chunks of steps)."""
from __future__ import annotations

import numpy as np

from neurodeploy.format.convolution import ConvGeometry
from neurodeploy.emulator.inputs import progress_bar
from neurodeploy.format.program import Program

DENSE_ROW_DENSITY = 0.25
"""Channels at least this dense (and without per-synapse delays) are delivered as whole rows."""


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


def source_blocks(program: Program) -> tuple[dict[str, int], np.ndarray, int]:
    """Sources come in blocks: each input, then each population, in program order (conv delivery
    looks connections up per block, not per source). Returns the block of each name, the size of
    every block and the number of input blocks."""
    names = list(program.inputs) + [p.name for p in program.populations]
    sizes = [int(np.prod(shape)) for shape in program.inputs.values()] + [p.size for p in program.populations]
    return {name: k for k, name in enumerate(names)}, np.array(sizes, dtype=np.int64), len(program.inputs)


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


CONV_FIELDS = ("channel", "kernel_at", "h_in", "w_in", "width", "kh", "kw", "in_per_group", "run", "y_taps",
               "x_taps", "packed")
"""Columns of the geometry table of ``ConvLayout.arrays`` (the order ``conv_events`` reads them in):
``width`` entries per output pixel (kinds x c_out), ``run`` per group (kinds x c_out / groups),
``packed``: 1 where each word holds two 32-bit sums (``ConvLayout.add``)."""


def axis_taps(n_in: int, n_out: int, k: int, stride: int, padding: int, dilation: int, out_step: int,
              tap_step: int) -> np.ndarray:
    """Along one axis, per input position i: the number m of kernel taps u that carry i to an
    output o = (i + padding - u * dilation) / stride (integral, inside [0, n_out)), then m pairs
    (o * out_step, u * tap_step); rows of 1 + 2k entries, flat. O(n_in * k)."""
    table = np.zeros((n_in, 1 + 2 * k), dtype=np.int64)
    u = np.arange(k)
    for i in range(n_in):
        q = i + padding - u * dilation
        ok = (q >= 0) & (q % stride == 0) & (q // stride < n_out)
        m = int(ok.sum())
        table[i, 0] = m
        table[i, 1:1 + 2 * m:2] = (q[ok] // stride) * out_step
        table[i, 2:2 + 2 * m:2] = u[ok] * tap_step
    return table.reshape(-1)


class ConvLayout:
    """Conv connections delivered event by event from their kernels (``conv_events``): memory is
    O(kernel + input height and width) per connection, never O(synapses).

    A conv may have several kernels of one geometry ("kinds": SpiNNaker's excitatory and
    inhibitory words), delivered in one pass. It writes into a channel (a ring of rows, as in
    SynapseLayout) laid out channels-last, (h_out, w_out, groups, kinds, c_out / groups), so that
    a source's taps add contiguous runs (its group's output channels of every kind); the kernels
    are stored as (c_in / groups, kh, kw, groups, kinds, c_out / groups) to match. Per input row
    and column, a table lists the taps that reach an output (``axis_taps``), so the inner loops
    do no division. The reader of the channel transposes each row to the population's (c_out,
    h_out, w_out) order, kind by kind (``fold``).
    """

    def __init__(self) -> None:
        self.entries: list[tuple[int, int, np.ndarray, ConvGeometry, bool]] = []

    def add(self, channel: int, block: int, kernels: list[np.ndarray], geom: ConvGeometry,
            packed: bool = False) -> None:
        """A conv from source ``block`` into ``channel``; ``kernels`` hold the int64 weights to add
        per event, one array per kind, (c_out, c_in / groups, kh, kw) or 1-D (c_out, c_in / groups, k).
        ``packed``: one kind whose words are w or w << 32 (two sums of non-negative 16-bit words
        in one int64; the kernel caps each count's product at 0xFFFF, so neither half carries
        while at most 2^16 synapses reach a neuron)."""
        stacked = np.stack([geom.kernel_2d(k).astype(np.int64) for k in kernels])
        self.entries.append((block, channel, stacked, geom, packed))

    def arrays(self, block_sizes: np.ndarray, n_input_blocks: int, weight_dtype=np.int32) -> tuple:
        """The ``convs`` tuple the kernels walk: (entries of each block as a CSR pointer, input block
        starts (n_input_blocks + 1,), geometry table (n_entries, len(CONV_FIELDS)), kernels, tap
        tables). Kernels are stored as ``weight_dtype`` where they all fit, int64 otherwise."""
        order = sorted(range(len(self.entries)), key=lambda e: self.entries[e][0])  # stable: by block
        blocks = np.array([self.entries[e][0] for e in order], dtype=np.int64)
        geometry = np.zeros((len(order), len(CONV_FIELDS)), dtype=np.int64)
        kernels, tables, kernel_at, table_at = [], [], 0, 0
        for row, e in enumerate(order):
            block, channel, w, g, packed = self.entries[e]
            kinds, c_out, per_group, kh, kw = w.shape
            width, run = kinds * c_out, kinds * (c_out // g.groups)
            (_, h_in, w_in), (_, h_out, w_out) = g.in_shape, g.out_shape
            if g.n_in != block_sizes[block]:
                raise ValueError(f"a conv over {g.in_shape} reads a source of {block_sizes[block]} neurons")
            y = axis_taps(h_in, h_out, kh, g.stride[0], g.padding[0], g.dilation[0], w_out * width, kw * width)
            x = axis_taps(w_in, w_out, kw, g.stride[1], g.padding[1], g.dilation[1], width, width)
            geometry[row] = (channel, kernel_at, h_in, w_in, width, kh, kw, per_group, run, table_at, table_at + len(y),
                             packed)
            by_group = w.reshape(kinds, g.groups, c_out // g.groups, per_group, kh, kw)
            kernels.append(np.ascontiguousarray(by_group.transpose(3, 4, 5, 1, 0, 2)).reshape(-1))
            tables += [y, x]
            kernel_at, table_at = kernel_at + w.size, table_at + len(y) + len(x)
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
        flat = cat(kernels)
        info = np.iinfo(weight_dtype)
        if not flat.size or (flat.min() >= info.min and flat.max() <= info.max):
            flat = flat.astype(weight_dtype)
        starts = np.concatenate([[0], np.cumsum(block_sizes[:n_input_blocks])]).astype(np.int64)
        return _by_source(blocks, len(block_sizes)), starts, geometry, flat, cat(tables)


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
