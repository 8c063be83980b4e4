"""Split populations into core slices, place them on cores and chips, and check every limit.

Each target's per-core cost model is a function from a slice (its neurons, their fan-in
synapses, distinct source neurons, output axons) to resource use; the mapper shrinks slices
until every core limit holds, then fills chips in order. An impossible mapping raises an
error naming the population, the limit, the value and the limit's size. Convolutions are
counted from their receptive fields (``_ConvField``): exact fan-in, distinct sources and output
axons without listing synapses. On targets with ``conv_tiles``, a population fed only by convs is
cut into 2-D tiles (channel group x rows x columns; ``_tile_population``) where that takes no more
cores than strips; every other population into 1-D strips of its flat (C, H, W) order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import scipy.sparse

from neurodeploy.format import convolution, core_slices
from neurodeploy.format.convolution import ConvGeometry
from neurodeploy.format.program import Program, QConnection
from neurodeploy.targets import Target
from neurodeploy.errors import NeurodeployError


class MappingError(NeurodeployError):
    """The program cannot be placed on the target within its limits."""


@dataclass(frozen=True)
class Tile:
    """Output channels [c0, c1) x rows [y0, y1) x columns [x0, x1) of a population of ``shape``
    (C, H, W; a 1-D conv's layer is (C, 1, W))."""

    shape: tuple[int, int, int]
    channels: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def size(self) -> int:
        return ((self.channels[1] - self.channels[0]) * (self.rows[1] - self.rows[0])
                * (self.cols[1] - self.cols[0]))

    def indices(self) -> np.ndarray:
        """Flat indices of the tile's neurons, ascending."""
        return core_slices.tile_indices(self.shape, self.channels, self.rows, self.cols)


@dataclass
class CoreSlice:
    core: int
    chip: int
    population: str
    start: int  # strip: first neuron (flat index); tile: the tile's first neuron
    stop: int  # strip: one past the last neuron; tile: one past its last (its flat span, not all its own)
    usage: dict[str, float]  # resource -> amount used
    tile: Tile | None = None  # a 2-D tile's channels, rows and columns; None for a 1-D strip

    @property
    def size(self) -> int:
        return self.tile.size if self.tile is not None else self.stop - self.start

    def indices(self) -> np.ndarray | slice:
        """The slice's neurons: a ``slice`` for a strip, flat indices for a tile."""
        return self.tile.indices() if self.tile is not None else slice(self.start, self.stop)


@dataclass
class Mapping:
    target: str
    cores: list[CoreSlice]
    chips_used: int
    chips_available: int
    cores_per_chip: int
    limits: list[dict]  # every limit with value, size, margin (for `check --json`)
    fits: bool

    def as_dict(self) -> dict:
        return {
            "target": self.target, "chips_used": self.chips_used, "chips_available": self.chips_available,
            "cores_used": len(self.cores), "cores_per_chip": self.cores_per_chip, "fits": self.fits,
            "cores": [asdict(c) for c in self.cores], "limits": self.limits,
        }


Rect = tuple[int, int, int, int]  # output rows [y0, y1) x columns [x0, x1) of one channel
Part = tuple[np.ndarray, np.ndarray, np.ndarray]  # input channels, row reach (P, rows), column reach (P, columns)
Segment = tuple[int, int, list[Rect]]  # output channels [a, b), each covering the same rectangles
_CACHE_SIZE = 4096  # entries per memo of a _ConvField (cleared when full)


@dataclass
class _ConvField:
    """Which source neurons a contiguous range of a conv's output neurons hears, exactly (non-zero
    kernel taps, padding left out), by index arithmetic on rows and columns: a range is, per output
    channel, at most three rectangles, and each rectangle reaches, through kernel row u, a set of
    input rows times a set of input columns. Rows and columns are taken inside the window of input
    rows and columns that the range can reach, so a range costs O((window height + width) x
    rectangles x kh) per distinct tap pattern, never O(synapses)."""

    geom: ConvGeometry
    taps_cum: np.ndarray  # (C_out + 1, C_in/groups, kh, kw): non-zero taps summed over output channels
    _memo: dict = field(default_factory=dict, repr=False)  # slices of a layer repeat rows, columns, channels

    @classmethod
    def of(cls, c: QConnection) -> "_ConvField":
        geom = ConvGeometry.of(c.attrs)
        nonzero = geom.kernel_2d(c.arrays["weight"]) != 0  # SpiNNaker words: a synapse where non-zero
        cum = np.zeros((nonzero.shape[0] + 1,) + nonzero.shape[1:], dtype=np.int64)
        np.cumsum(nonzero, axis=0, out=cum[1:])
        return cls(geom, cum)

    def count(self, start: int, stop: int) -> int:
        """Distinct source neurons heard by output neurons [start, stop)."""
        return self.count_segments(self._segments(start, stop))

    def count_tile(self, tile: Tile) -> int:
        """Distinct source neurons heard by the neurons of a tile."""
        return self.count_segments(_tile_segments(tile))

    def count_segments(self, segments: list[Segment]) -> int:
        total = 0
        _, parts = self._parts(segments)
        for channels, reach_rows, reach_cols in parts:
            _, inverse, cols = _row_union(reach_rows, reach_cols)
            total += channels.size * int(np.bincount(inverse) @ cols.sum(axis=1))
        return total

    def mark(self, counts: np.ndarray, start: int, stop: int) -> None:
        """Add 1 to ``counts`` (flat, one per source neuron) at every source that output neurons
        [start, stop) hear."""
        self.mark_segments(counts, self._segments(start, stop))

    def mark_tile(self, counts: np.ndarray, tile: Tile) -> None:
        """Add 1 to ``counts`` at every source that the tile's neurons hear."""
        self.mark_segments(counts, _tile_segments(tile))

    def mark_segments(self, counts: np.ndarray, segments: list[Segment]) -> None:
        grid = counts.reshape(self.geom.in_shape)
        (row_lo, _, col_lo, col_hi), parts = self._parts(segments)
        for channels, reach_rows, reach_cols in parts:
            rows, inverse, cols = _row_union(reach_rows, reach_cols)
            grid[np.ix_(channels, rows + row_lo, np.arange(col_lo, col_hi))] += cols[inverse]

    def weights(self, c0: int, c1: int) -> int:
        """Non-zero kernel entries of output channels [c0, c1): what a core holding any of their
        neurons stores where the target shares conv weights."""
        return int((self.taps_cum[c1] - self.taps_cum[c0]).sum())

    def channel_key(self, c0: int, c1: int) -> bytes:
        """Output channels [c0, c1) as the source count sees them: which taps any of them uses, per
        (group touched, input slot, kh, kw). Ranges with the same key hear as many sources from
        the same rows and columns."""
        per_group = (self.taps_cum.shape[0] - 1) // self.geom.groups
        groups = range(c0 // per_group, (c1 - 1) // per_group + 1)
        taps = [self.taps_cum[min(max(c1, g * per_group), (g + 1) * per_group)]
                - self.taps_cum[min(max(c0, g * per_group), (g + 1) * per_group)] > 0 for g in groups]
        return np.packbits(np.stack(taps)).tobytes()

    def _parts(self, segments: list[Segment]) -> tuple[Rect, list[Part]]:
        """The window (input rows [r0, r1) x columns [c0, c1)) that the segments reach, and per
        distinct tap pattern among the input channels: (input channels, row reach (P, r1 - r0),
        column reach (P, c1 - c0)); those channels hear the union of the P products rows x columns."""
        window = self._window([r for _, _, rects in segments for r in rects])
        reach = [[self._rect_reach(r, window) for r in rects] for _, _, rects in segments]
        patterns, channels = self._cached(("taps",) + tuple((a, b) for a, b, _ in segments),
                                          lambda: self._patterns(segments))
        parts = []
        for pattern, chans in zip(patterns, channels):
            reach_rows, reach_cols = [], []
            for taps, used, rect_reach in zip(*pattern, reach):  # one segment: its taps (kh, kw)
                if not used.any():
                    continue
                for rows, cols in rect_reach:
                    reach_rows.append(rows[used])
                    reach_cols.append(taps[used] @ cols)  # boolean product: OR over kernel columns
            parts.append((chans, np.concatenate(reach_rows), np.concatenate(reach_cols)))
        return window, parts

    def _cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key not in self._memo:
            if len(self._memo) >= _CACHE_SIZE:
                self._memo.clear()
            self._memo[key] = make()
        return self._memo[key]

    def _segments(self, start: int, stop: int) -> list[Segment]:
        """The range as (first channel, last channel + 1, rectangles) with every channel of a
        segment covering the same rectangles: a partial first channel, full channels, a partial last."""
        _, h, w = self.geom.out_shape
        hw = h * w
        first, last = start // hw, (stop - 1) // hw
        if first == last:
            return [(first, first + 1, _rects(start - first * hw, stop - first * hw, w))]
        segments = []
        full_lo, full_hi = first, last + 1
        if start > first * hw:
            segments.append((first, first + 1, _rects(start - first * hw, hw, w)))
            full_lo += 1
        if stop < (last + 1) * hw:
            segments.append((last, last + 1, _rects(0, stop - last * hw, w)))
            full_hi -= 1
        if full_hi > full_lo:
            segments.append((full_lo, full_hi, [(0, h, 0, w)]))
        return segments

    def _window(self, rects: list[Rect]) -> Rect:
        """Input rows [r0, r1) and columns [c0, c1) inside the grid that the rectangles can reach."""
        g, (kh, kw) = self.geom, self.taps_cum.shape[2:]
        bounds = []
        for axis, k, (lo_index, hi_index) in ((0, kh, (0, 1)), (1, kw, (2, 3))):
            n_in, stride, padding, dilation = (g.in_shape[axis + 1], g.stride[axis], g.padding[axis],
                                               g.dilation[axis])
            lo = min(r[lo_index] for r in rects) * stride - padding
            hi = (max(r[hi_index] for r in rects) - 1) * stride - padding + (k - 1) * dilation + 1
            lo, hi = max(lo, 0), min(hi, n_in)
            bounds += [lo, max(lo, hi)]
        return bounds[0], bounds[1], bounds[2], bounds[3]

    def _rect_reach(self, rect: Rect, window: Rect) -> tuple[np.ndarray, np.ndarray]:
        """(kh, r1 - r0) and (kw, c1 - c0) bool: the window's input rows (columns) that kernel row u
        (column v) of the rectangle's outputs reads."""
        g, (kh, kw) = self.geom, self.taps_cum.shape[2:]
        (y0, y1, x0, x1), (r0, r1, c0, c1) = rect, window
        rows = self._cached(("rows", y0, y1, r0, r1), lambda: _axis_reach(
            y0, y1, r0, r1, kh, g.stride[0], g.padding[0], g.dilation[0]))
        cols = self._cached(("cols", x0, x1, c0, c1), lambda: _axis_reach(
            x0, x1, c0, c1, kw, g.stride[1], g.padding[1], g.dilation[1]))
        return rows, cols

    def _patterns(self, segments: list[Segment]) -> tuple[list, list[np.ndarray]]:
        """Distinct non-zero tap patterns over the input channels of the groups that the segments
        touch, each as (taps (segments, kh, kw), kernel rows used (segments, kh)), with its input
        channels."""
        c_out, c_local = self.taps_cum.shape[0] - 1, self.taps_cum.shape[1]
        per_group = c_out // self.geom.groups
        lo, hi = min(a for a, _, _ in segments), max(b for _, b, _ in segments)
        groups = np.arange(lo // per_group, (hi - 1) // per_group + 1)
        g_lo, g_hi = groups * per_group, (groups + 1) * per_group
        taps = np.stack([self.taps_cum[np.clip(b, g_lo, g_hi)] - self.taps_cum[np.clip(a, g_lo, g_hi)] > 0
                         for a, b, _ in segments], axis=2)  # (groups, C_in/groups, segments, kh, kw)
        taps = taps.reshape((groups.size * c_local,) + taps.shape[2:])
        in_channels = (groups[:, None] * c_local + np.arange(c_local)[None, :]).reshape(-1)
        packed = np.packbits(taps.reshape(taps.shape[0], -1), axis=1)
        if (packed == packed[0]).all():
            first, inverse = np.zeros(1, dtype=np.int64), np.zeros(taps.shape[0], dtype=np.int64)
        else:
            _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.reshape(-1)
        patterns, channels = [], []
        for i, row in enumerate(first):
            if taps[row].any():
                patterns.append((taps[row], taps[row].any(axis=2)))
                channels.append(in_channels[inverse == i])
        return patterns, channels


def _tile_segments(tile: Tile) -> list[Segment]:
    """A tile as one segment: its channels, each covering one rectangle."""
    return [(tile.channels[0], tile.channels[1], [(tile.rows[0], tile.rows[1], tile.cols[0], tile.cols[1])])]


def _rects(a: int, b: int, w: int) -> list[Rect]:
    """Flat range [a, b) of one channel's H x W grid (row-major) as at most three rectangles."""
    y0, x0 = divmod(a, w)
    y1, x1 = divmod(b, w)
    if y0 == y1:
        return [(y0, y0 + 1, x0, x1)]
    rects = []
    if x0:
        rects.append((y0, y0 + 1, x0, w))
        y0 += 1
    if y1 > y0:
        rects.append((y0, y1, 0, w))
    if x1:
        rects.append((y1, y1 + 1, 0, x1))
    return rects


def _axis_reach(lo: int, hi: int, start: int, stop: int, k: int, stride: int, padding: int,
                dilation: int) -> np.ndarray:
    """(k, stop - start) bool along one axis: the inputs in [start, stop) (a window inside the
    grid) that tap t of outputs lo..hi-1 reads."""
    pos = (np.arange(lo, hi) * stride - padding - start)[None, :] + dilation * np.arange(k)[:, None]
    size = stop - start
    pos = np.where((pos >= 0) & (pos < size), pos, size)  # outside: a spare last column
    reach = np.zeros((k, size + 1), dtype=bool)
    reach[np.arange(k)[:, None], pos] = True
    return reach[:, :size]


def _row_union(reach_rows: np.ndarray, reach_cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The union of the products reach_rows[p] x reach_cols[p]: the rows it touches, each row's
    index into the distinct column sets, and those column sets (S, columns). Rows reached by the
    same products share one column set, so the work is O(P x (rows + S x columns))."""
    rows = np.flatnonzero(reach_rows.any(axis=0))
    signature = reach_rows[:, rows]  # (P, rows): which products reach each row
    if signature.shape[0] < 63:  # one int64 key per row
        keys = (np.int64(1) << np.arange(signature.shape[0], dtype=np.int64)) @ signature
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        unique = signature[:, first].T
    else:
        unique, inverse = np.unique(np.ascontiguousarray(signature.T), axis=0, return_inverse=True)
    return rows, inverse.reshape(-1), unique @ reach_cols


@dataclass
class _Fan:
    """Per target neuron: incoming synapses (all, and those of dense/sparse connections); per
    connection: its matrix or conv receptive fields (for distinct sources)."""

    synapses: np.ndarray
    plain: np.ndarray  # synapses of dense and sparse connections (stored one weight each on every target)
    matrices: list[tuple[QConnection, scipy.sparse.csr_matrix | _ConvField | None]] = field(default_factory=list)
    max_delay: int = 0

    def fields(self) -> list[_ConvField]:
        return [m for _, m in self.matrices if isinstance(m, _ConvField)]


def _fan_in(program: Program, name: str, size: int) -> _Fan:
    fan = _Fan(np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64))
    for c in program.connections:
        if c.target != name:
            continue
        if c.kind == "dense":
            fan.plain += np.count_nonzero(c.arrays["weight"], axis=1)
            fan.matrices.append((c, None))
        elif c.kind == "sparse":
            indptr = c.arrays["indptr"]
            counts = np.diff(indptr)
            nz = c.arrays["weight"] != 0
            if not nz.all():  # count only the non-zero weights of each row (rows may be empty)
                rows = np.repeat(np.arange(counts.size), counts)
                counts = np.bincount(rows[nz], minlength=counts.size)
            fan.plain += counts
            matrix = scipy.sparse.csr_matrix((np.ones(len(c.arrays["indices"]), dtype=np.int8),
                                              c.arrays["indices"], indptr), shape=(c.n_out, c.n_in))
            fan.matrices.append((c, matrix))
        else:  # conv: non-zero kernel taps whose inputs lie inside the grid, per output neuron
            field_ = _ConvField.of(c)
            fan.synapses += convolution.fan_in(c.arrays["weight"], field_.geom)
            fan.matrices.append((c, field_))
        delays = c.arrays.get("delay")
        fan.max_delay = max(fan.max_delay, int(c.attrs.get("delay", 0)), int(delays.max()) if delays is not None and delays.size else 0)
    fan.synapses += fan.plain
    return fan


def _distinct_sources(fan: _Fan, start: int, stop: int) -> int:
    total = 0
    for c, matrix in fan.matrices:
        if matrix is None:
            total += c.n_in  # dense: every source may reach the slice
        elif isinstance(matrix, _ConvField):
            total += matrix.count(start, stop)
        else:
            total += int(np.unique(matrix.indices[matrix.indptr[start]:matrix.indptr[stop]]).size)
    return total


def _usage(target: Target, fan: _Fan, neurons: int, synapses: int, sources: int,
           stored: Callable[[], int]) -> dict[str, float]:
    """The target's cost model for one slice; ``stored`` (the weights the slice keeps where conv
    kernels are shared) is asked only of targets that share them."""
    if target.core_usage is None:
        return {"neurons": neurons}
    if target.shared_conv_weights:
        return target.core_usage(neurons, synapses, sources, fan.max_delay, stored_weights=stored())
    return target.core_usage(neurons, synapses, sources, fan.max_delay)


def _strip_weights(fan: _Fan, start: int, stop: int, synapses: int) -> int:
    """Weights a strip stores where conv kernels are shared: one per dense/sparse synapse, each conv
    kernel once for the output channels the strip touches (never more than its synapses)."""
    stored = int(fan.plain[start:stop].sum())
    for f in fan.fields():
        hw = f.geom.out_shape[1] * f.geom.out_shape[2]
        stored += f.weights(start // hw, (stop - 1) // hw + 1)
    return min(stored, synapses)


# ------------------------------------------------------------------ 2-D tiles of conv-fed layers

Usage = dict[str, float]


@dataclass
class _TileCosts:
    """Exact per-tile usage of a population fed only by convs: neurons, synapses (from a summed-
    area table of fan-in), distinct sources (the union of the tile's receptive fields over every
    inbound conv) and stored weights; memoised by what a tile's counts depend on."""

    shape: tuple[int, int, int]
    fan: _Fan
    target: Target
    table: np.ndarray  # (C + 1, H + 1, W + 1) summed-area table of synapses per neuron
    _sources: dict = field(default_factory=dict)

    @classmethod
    def of(cls, fan: _Fan, target: Target) -> "_TileCosts | None":
        """None where the population is not fed only by convs of one output shape."""
        fields = [m for _, m in fan.matrices]
        if not fields or not all(isinstance(m, _ConvField) for m in fields):
            return None
        shape = fields[0].geom.out_shape
        if any(f.geom.out_shape != shape for f in fields):
            return None
        table = np.zeros((shape[0] + 1, shape[1] + 1, shape[2] + 1), dtype=np.int64)
        table[1:, 1:, 1:] = fan.synapses.reshape(shape).cumsum(0).cumsum(1).cumsum(2)
        return cls(shape, fan, target, table)

    def usage(self, tile: Tile) -> Usage:
        (c0, c1), (y0, y1), (x0, x1) = tile.channels, tile.rows, tile.cols
        t = self.table
        synapses = int(t[c1, y1, x1] - t[c0, y1, x1] - t[c1, y0, x1] - t[c1, y1, x0] + t[c0, y0, x1]
                       + t[c0, y1, x0] + t[c1, y0, x0] - t[c0, y0, x0])
        key = (self.channel_key(c0, c1), tile.rows, tile.cols)
        if key not in self._sources:
            self._sources[key] = sum(f.count_tile(tile) for f in self.fan.fields())
        stored = lambda: min(synapses, sum(f.weights(c0, c1) for f in self.fan.fields()))  # noqa: E731
        return _usage(self.target, self.fan, tile.size, synapses, self._sources[key], stored)

    def channel_key(self, c0: int, c1: int) -> tuple:
        return tuple(f.channel_key(c0, c1) for f in self.fan.fields())

    def axis_classes(self, axis: int, size: int) -> list[tuple[int, int]]:
        """Ranges of tiles of ``size`` along output axis 1 (rows) or 2 (columns) whose usage bounds
        every tile's: one full-size range whose receptive fields lie inside the input (any tile
        then counts no more than it, being a translate of part of it, clipped), else one range per
        distinct (size, clipping) class."""
        n = self.shape[axis]
        classes: dict[tuple, tuple[int, int]] = {}
        for a in range(0, n, size):
            b = min(a + size, n)
            clip = []
            for f in self.fan.fields():
                g, k = f.geom, f.taps_cum.shape[axis + 1]
                lo = a * g.stride[axis - 1] - g.padding[axis - 1]
                hi = (b - 1) * g.stride[axis - 1] - g.padding[axis - 1] + (k - 1) * g.dilation[axis - 1] + 1
                clip += [max(0, -lo), max(0, hi - g.in_shape[axis])]
            if b - a == size and not any(clip):
                return [(a, b)]
            classes.setdefault((b - a, tuple(clip)), (a, b))
        return list(classes.values())

    def worst(self, cg: int, th: int, tw: int) -> Iterator[Usage]:
        """Usage of the tiles that bound every tile of a (cg, th, tw) tiling, lazily: per channel
        group (synapses differ between groups; sources are memoised by what they depend on), the
        bounding rows and columns."""
        c = self.shape[0]
        rows, cols = self.axis_classes(1, th), self.axis_classes(2, tw)
        for c0 in range(0, c, cg):
            for r in rows:
                for q in cols:
                    yield self.usage(Tile(self.shape, (c0, min(c, c0 + cg)), r, q))


def _tile_sizes(n: int) -> list[int]:
    """Tile sizes along an axis of n, one per tile count (the smallest size giving that count),
    ascending."""
    return sorted({-(-n // m) for m in range(1, n + 1)})


def _search_tiles(costs: _TileCosts, target: Target, cap: int) -> tuple[int, int, int] | None:
    """The (channels, rows, columns) tile that fits every core limit with the fewest cores; ties go
    to the tiling whose busiest core hears the fewest sources, then to smaller channel groups and
    fewer rows. Per (channels, rows) the widest fitting tile is found by bisection (usage grows with
    the tile); a row count that does not fit one column wide ends the rows for that channel group."""
    c, h, w = costs.shape
    best: tuple | None = None

    def peak_sources(cg: int, th: int, tw: int) -> float | None:
        peak = 0.0
        for u in costs.worst(cg, th, tw):  # the first tile over a limit settles it
            if _over_limits(u, target):
                return None
            peak = max(peak, u.get("fan_in_axons", 0))
        return peak

    for cg in _tile_sizes(c):
        for th in _tile_sizes(h):
            widths = [tw for tw in _tile_sizes(w) if cg * th * tw <= cap]
            if not widths:
                break
            fixed = -(-c // cg) * -(-h // th)
            if best is not None and fixed * -(-w // widths[-1]) > best[0][0]:
                continue
            lo, hi, found = 0, len(widths) - 1, None
            while lo <= hi:
                mid = (lo + hi) // 2
                peak = peak_sources(cg, th, widths[mid])
                if peak is None:
                    hi = mid - 1
                else:
                    found, lo = (widths[mid], peak), mid + 1
            if found is None:
                if widths[0] == 1:
                    break
                continue
            tw, peak = found
            key = (fixed * -(-w // tw), peak, cg, th, tw)
            if best is None or key < best[0]:
                best = (key, (cg, th, tw))
    return None if best is None else best[1]


def _tile_population(fan: _Fan, target: Target, cap: int) -> list[tuple[Tile, Usage]] | None:
    """The population as tiles of the best (channels, rows, columns) size, in (C, H, W) order, each
    with its exact usage; None where it is not fed only by convs or no tile fits."""
    costs = _TileCosts.of(fan, target)
    if costs is None:
        return None
    size = _search_tiles(costs, target, cap)
    if size is None:
        return None
    (c, h, w), (cg, th, tw) = costs.shape, size
    out = []
    for c0 in range(0, c, cg):
        for y0 in range(0, h, th):
            for x0 in range(0, w, tw):
                tile = Tile(costs.shape, (c0, min(c, c0 + cg)), (y0, min(h, y0 + th)), (x0, min(w, x0 + tw)))
                usage = costs.usage(tile)
                if _over_limits(usage, target):  # the bound of axis_classes failed: keep strips
                    return None
                out.append((tile, usage))
    return out


# ------------------------------------------------------------------ mapping

Piece = tuple[int, int, Usage, Tile | None]  # start, stop, usage, tile


@dataclass
class _Memo:
    """What stays the same between the placements of one map_program call: fan-ins, the slices of
    a population for a given first slice size, the output axons a conv's target slices ask of
    each source neuron."""

    fans: dict[str, _Fan] = field(default_factory=dict)
    slices: dict[tuple[str, int], list[Piece]] = field(default_factory=dict)
    marks: dict[int, tuple[tuple, np.ndarray]] = field(default_factory=dict)  # connection index -> (slices, axons)


def map_program(program: Program, target: Target, *, neurons_per_core: int | None = None,
                chips: int | None = None) -> Mapping:
    """Place every population; where a core sends more output axons than the target allows,
    cap that population's slice size and place again (output axons depend on where the
    targets landed, so they are checked after a placement)."""
    caps: dict[str, int] = {}
    memo = _Memo()
    for _ in range(8):
        mapping = _place(program, target, neurons_per_core, chips, caps, memo)
        over = _fan_out_overflow(program, target, mapping, memo)
        if not over:
            return mapping
        for name, (largest, slice_size) in over.items():
            caps[name] = max(1, int(slice_size * target.core_limits["fan_out_axons"].size // largest))
    name, (largest, _) = next(iter(over.items()))
    raise MappingError(
        f"population '{name}': its cores still send {largest} output axons after 8 placements, more than "
        f"{target.name}'s limit of {target.core_limits['fan_out_axons'].size:.0f} per core; reduce its fan-out"
    )


def _place(program: Program, target: Target, neurons_per_core: int | None, chips: int | None,
           caps: dict[str, int], memo: _Memo) -> Mapping:
    per_core = min(neurons_per_core or target.neurons_per_core, target.neurons_per_core)
    if per_core < 1:
        raise MappingError(f"neurons per core must be >= 1, got {neurons_per_core}")
    chips_available = chips or target.default_chips
    cores: list[CoreSlice] = []
    for name, shape in program.inputs.items():  # inputs occupy source cores (SpiNNaker's spike sources)
        if target.inputs_on_cores:
            size = int(np.prod(shape))
            for start in range(0, size, per_core):
                stop = min(size, start + per_core)
                cores.append(CoreSlice(len(cores), 0, name, start, stop, {"neurons": stop - start}))
    for pop in program.populations:
        if pop.name not in memo.fans:
            memo.fans[pop.name] = _fan_in(program, pop.name, pop.size)
        _check_whole_population(pop.name, memo.fans[pop.name], target)
        size_hint = min(per_core, caps.get(pop.name, per_core))
        key = (pop.name, size_hint)
        if key not in memo.slices:
            memo.slices[key] = _pieces(pop.name, pop.size, memo.fans[pop.name], target, size_hint)
        for start, stop, usage, tile in memo.slices[key]:
            cores.append(CoreSlice(len(cores), 0, pop.name, start, stop, dict(usage), tile))
    for core in cores:
        core.chip = core.core // target.cores_per_chip
    chips_used = (len(cores) + target.cores_per_chip - 1) // target.cores_per_chip
    limits = _limit_table(cores, target, chips_used, chips_available)
    fits = all(l["margin"] >= 0 for l in limits)
    return Mapping(target.name, cores, chips_used, chips_available, target.cores_per_chip, limits, fits)


def _pieces(name: str, size: int, fan: _Fan, target: Target, size_hint: int) -> list[Piece]:
    """Strips; on a target with conv_tiles, tiles instead where they take no more cores (strips
    are not computed where the tiles already reach the fewest cores any slicing could)."""
    tiles = _tile_population(fan, target, size_hint) if target.conv_tiles else None
    as_pieces = None if tiles is None else [
        core_slices.tile_span(t.shape, t.channels, t.rows, t.cols) + (u, t) for t, u in tiles]
    if as_pieces is not None and len(as_pieces) <= -(-size // _first_strip(fan, target, size, size_hint)):
        return as_pieces  # strips could not take fewer cores: none is longer than the first
    try:
        strips = [(a, b, u, None) for a, b, u in _slice_population(name, size, fan, target, size_hint)]
    except MappingError:
        if as_pieces is None:  # neither fits: the strips' error names the limit
            raise
        return as_pieces
    return as_pieces if as_pieces is not None and len(as_pieces) <= len(strips) else strips


def _strip_usage(fan: _Fan, target: Target, start: int, n: int) -> Usage:
    synapses = int(fan.synapses[start:start + n].sum())
    return _usage(target, fan, n, synapses, _distinct_sources(fan, start, start + n),
                  lambda: _strip_weights(fan, start, start + n, synapses))


def _first_strip(fan: _Fan, target: Target, size: int, size_hint: int) -> int:
    """Length of the first strip _slice_population would cut (it halves from there on)."""
    n = min(size_hint, size)
    while n > 1 and _over_limits(_strip_usage(fan, target, 0, n), target):
        n //= 2
    return n


def _slice_population(name: str, size: int, fan: _Fan, target: Target,
                      size_hint: int) -> list[tuple[int, int, dict[str, float]]]:
    """Contiguous slices (start, stop, usage), each halved until it fits a core; slices of one
    population are alike, so each starts from the size the previous one settled on."""
    out: list[tuple[int, int, dict[str, float]]] = []
    start = 0
    while start < size:
        n = min(size_hint, size - start)
        while True:
            usage = _strip_usage(fan, target, start, n)
            over = _over_limits(usage, target)
            if not over:
                break
            if n == 1:
                key, value, limit = over[0]
                raise MappingError(
                    f"population '{name}': a single neuron needs {key} = {value:.0f}, more than "
                    f"{target.name}'s limit of {limit:.0f} per core ({target.core_limits[key].name}); "
                    f"reduce its fan-in or split the layer"
                )
            n = max(1, n // 2)
        out.append((start, start + n, usage))
        start += n
        size_hint = n
    return out


def _fan_out_overflow(program: Program, target: Target, mapping: Mapping,
                      memo: _Memo) -> dict[str, tuple[int, int]]:
    """Output axons per core (one per source neuron and destination core it reaches); returns the
    populations whose cores exceed the limit: {name: (largest count, that core's slice size)}."""
    limit = target.core_limits.get("fan_out_axons")
    if limit is None:
        return {}
    slices: dict[str, list[CoreSlice]] = {}
    for core in mapping.cores:
        slices.setdefault(core.population, []).append(core)
    sizes = {p.name: p.size for p in program.populations}
    per_neuron = {name: np.zeros(size, dtype=np.int64) for name, size in sizes.items()}
    for i, c in enumerate(program.connections):
        if c.source not in per_neuron:
            continue
        if c.kind == "conv":
            per_neuron[c.source] += _conv_fan_out(i, c, slices[c.target], memo)
            continue
        core_of_row = np.empty(c.n_out, dtype=np.int64)
        for core in slices[c.target]:
            core_of_row[core.indices()] = core.core
        if c.kind == "sparse":
            rows = np.repeat(np.arange(c.n_out), np.diff(c.arrays["indptr"]))
            keys = np.unique(c.arrays["indices"] * (len(mapping.cores) + 1) + core_of_row[rows])
            per_neuron[c.source] += np.bincount(keys // (len(mapping.cores) + 1), minlength=c.n_in)
        else:  # dense: every target core may hear every source neuron (an upper bound)
            per_neuron[c.source] += len(slices[c.target])
    over: dict[str, tuple[int, int]] = {}
    for name, cores in slices.items():
        if name not in per_neuron:
            continue
        for core in cores:
            axons = int(per_neuron[name][core.indices()].sum())
            core.usage["fan_out_axons"] = axons
            if axons > limit.size and axons > over.get(name, (0, 0))[0]:
                over[name] = (axons, core.size)
    if over:  # a single neuron over the limit cannot be helped by smaller slices
        for name, (axons, size) in over.items():
            if size == 1:
                raise MappingError(
                    f"population '{name}': a single neuron needs fan_out_axons = {axons}, more than "
                    f"{target.name}'s limit of {limit.size:.0f} per core ({limit.name}); reduce its fan-out"
                )
    else:
        mapping.limits[:] = _limit_table(mapping.cores, target, mapping.chips_used, mapping.chips_available)
        mapping.fits = all(l["margin"] >= 0 for l in mapping.limits)
    return over


def _conv_fan_out(index: int, c: QConnection, target_cores: list[CoreSlice], memo: _Memo) -> np.ndarray:
    """Per source neuron of a conv: the number of target cores whose receptive fields hold it
    (exact; one output axon each)."""
    bounds = tuple((core.start, core.stop, core.tile) for core in target_cores)
    known = memo.marks.get(index)
    if known is None or known[0] != bounds:
        field_ = next(m for conn, m in memo.fans[c.target].matrices if conn is c)
        axons = np.zeros(c.n_in, dtype=np.int64)
        for start, stop, tile in bounds:
            if tile is None:
                field_.mark(axons, start, stop)
            else:
                field_.mark_tile(axons, tile)
        known = memo.marks[index] = (bounds, axons)
    return known[1]


def _check_whole_population(name: str, fan: _Fan, target: Target) -> None:
    limit = target.core_limits.get("delay_steps")
    if limit is not None and fan.max_delay > limit.size:
        raise MappingError(
            f"population '{name}': needs a synaptic delay of {fan.max_delay} steps, more than {target.name}'s "
            f"limit of {limit.size:.0f} ({limit.name}); shorten delays or raise dt"
        )


def _over_limits(usage: dict[str, float], target: Target) -> list[tuple[str, float, float]]:
    return [(k, usage[k], lim.size) for k, lim in target.core_limits.items()
            if k in usage and usage[k] > lim.size]


def _limit_table(cores: list[CoreSlice], target: Target, chips_used: int, chips_available: int) -> list[dict]:
    rows = [{"limit": "chips", "value": chips_used, "size": chips_available,
             "margin": chips_available - chips_used, "unit": "chips",
             "source": f"{target.description}: {target.cores_per_chip} cores per chip"}]
    if target.machine_limits is not None:
        rows += target.machine_limits([c.chip for c in cores], chips_available)
    for key, lim in target.core_limits.items():
        values = [c.usage[key] for c in cores if key in c.usage]
        if not values:
            continue
        peak = max(values)
        rows.append({"limit": lim.name, "value": peak, "size": lim.size, "margin": lim.size - peak,
                     "unit": lim.unit, "source": lim.source})
    peak_neurons = max((c.usage.get("neurons", 0) for c in cores), default=0)
    rows.append({"limit": "neurons per core", "value": peak_neurons, "size": target.neurons_per_core,
                 "margin": target.neurons_per_core - peak_neurons, "unit": "neurons",
                 "source": target.description})
    return rows


