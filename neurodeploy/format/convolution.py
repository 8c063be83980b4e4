"""Convolution geometry by index arithmetic: synapse lists, counts and row sums of a kernel.

A conv connection is stored as its kernel (C_out, C_in/groups, *k) plus geometry; nothing here
builds an (n_out, n_in) matrix by pushing a basis through the layer. Every function costs
O(synapses) or less (counts and row sums cost O(kernel x output grid) without materializing
synapses). Cross-correlation, as NIR and torch define it; 1-D convs are 2-D with height 1.
Imports numpy only: the Lava runner (Python 3.10) loads this file as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes (C, H, W) and per-axis (h, w) stride, padding, dilation of a 2-D cross-correlation."""

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> "ConvGeometry":
        """From a connection's attrs (1-D or 2-D; 1-D becomes height 1)."""
        in_shape = [int(s) for s in attrs["in_shape"]]
        out_shape = [int(s) for s in attrs["out_shape"]]
        per_axis = {k: [int(v) for v in np.atleast_1d(attrs[k])] for k in ("stride", "padding", "dilation")}
        dims = len(in_shape) - 1
        if dims == 1:
            in_shape.insert(1, 1)
            out_shape.insert(1, 1)
            per_axis = {"stride": [1] + per_axis["stride"], "padding": [0] + per_axis["padding"],
                        "dilation": [1] + per_axis["dilation"]}
        elif dims != 2:
            raise ValueError(f"conv over {dims} spatial dimensions; 1 or 2 are supported")
        per_axis = {k: v * 2 if len(v) == 1 else v for k, v in per_axis.items()}
        return cls(tuple(in_shape), tuple(out_shape), tuple(per_axis["stride"]), tuple(per_axis["padding"]),
                   tuple(per_axis["dilation"]), int(attrs["groups"]))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def kernel_2d(self, weight: np.ndarray) -> np.ndarray:
        """The kernel as (C_out, C_in/groups, kh, kw)."""
        w = np.asarray(weight)
        return w.reshape(w.shape[:2] + (1,) + w.shape[2:]) if w.ndim == 3 else w

    def input_channel(self, out_channel: np.ndarray, local: np.ndarray | int) -> np.ndarray:
        """Input channel of kernel slot ``local`` for output channel(s) ``out_channel``."""
        per_group_out = self.out_shape[0] // self.groups
        per_group_in = self.in_shape[0] // self.groups
        return (np.asarray(out_channel) // per_group_out) * per_group_in + local


def out_size(n_in: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (n_in + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def valid_taps(n_in: int, n_out: int, k: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """(k, n_out) bool: kernel tap u of output o reads an input inside [0, n_in) (not padding)."""
    pos = np.arange(n_out)[None, :] * stride - padding + np.arange(k)[:, None] * dilation
    return (pos >= 0) & (pos < n_in)


def _axis_tables(geom: ConvGeometry, kernel: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    (_, h_in, w_in), (_, h_out, w_out) = geom.in_shape, geom.out_shape
    vh = valid_taps(h_in, h_out, kernel[0], geom.stride[0], geom.padding[0], geom.dilation[0])
    vw = valid_taps(w_in, w_out, kernel[1], geom.stride[1], geom.padding[1], geom.dilation[1])
    return vh, vw


def synapse_count(weight: np.ndarray, geom: ConvGeometry) -> int:
    """Synapses with a non-zero weight whose input lies inside the input grid (exact)."""
    w = geom.kernel_2d(weight)
    vh, vw = _axis_tables(geom, w.shape[2:])
    per_tap = np.count_nonzero(w, axis=(0, 1))  # (kh, kw)
    return int(np.einsum("uv,u,v->", per_tap, vh.sum(axis=1), vw.sum(axis=1)))


def fan_in(weight: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Synapses (non-zero weights inside the grid) per output neuron, flat (n_out,)."""
    return row_sums((geom.kernel_2d(weight) != 0).astype(np.int64), geom)


def row_sums(weight: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Per output neuron, the sum of the kernel entries whose inputs lie inside the grid: the
    response to an input of all ones; flat (n_out,). Pass |w| or max(w, 0) for worst cases."""
    w = geom.kernel_2d(weight)
    vh, vw = _axis_tables(geom, w.shape[2:])
    per_channel = w.sum(axis=1)  # (C_out, kh, kw): every input channel is all ones
    out = np.einsum("cuv,uy,vx->cyx", per_channel, vh.astype(per_channel.dtype), vw.astype(per_channel.dtype))
    return out.reshape(-1)


def synapses(weight: np.ndarray, geom: ConvGeometry, keep_zero: bool = False
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every synapse as (target, source, tap): flat output index, flat input index and flat index
    into ``weight``; taps outside the input grid are left out, zero weights too unless
    ``keep_zero``. Built tap by tap: memory and time O(synapses)."""
    w = geom.kernel_2d(weight)
    c_out, c_local, kh, kw = w.shape
    (_, h_in, w_in), (_, h_out, w_out) = geom.in_shape, geom.out_shape
    vh, vw = _axis_tables(geom, (kh, kw))
    targets, sources, taps = [], [], []
    oy_all, ox_all = np.arange(h_out), np.arange(w_out)
    for ci_local in range(c_local):
        for u in range(kh):
            oy = oy_all[vh[u]]
            iy = oy * geom.stride[0] - geom.padding[0] + u * geom.dilation[0]
            for v in range(kw):
                ox = ox_all[vw[v]]
                ix = ox * geom.stride[1] - geom.padding[1] + v * geom.dilation[1]
                co = np.arange(c_out) if keep_zero else np.flatnonzero(w[:, ci_local, u, v])
                if not (co.size and oy.size and ox.size):
                    continue
                ci = geom.input_channel(co, ci_local)
                out_pos = (oy[:, None] * w_out + ox[None, :]).reshape(-1)
                in_pos = (iy[:, None] * w_in + ix[None, :]).reshape(-1)
                targets.append((co[:, None] * (h_out * w_out) + out_pos[None, :]).reshape(-1))
                sources.append((ci[:, None] * (h_in * w_in) + in_pos[None, :]).reshape(-1))
                tap = np.ravel_multi_index((co, np.full(co.size, ci_local), np.full(co.size, u), np.full(co.size, v)),
                                           w.shape)
                taps.append(np.repeat(tap, out_pos.size))
    if not targets:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return (np.concatenate(targets).astype(np.int64), np.concatenate(sources).astype(np.int64),
            np.concatenate(taps).astype(np.int64))


def as_csr(weight: np.ndarray, geom: ConvGeometry, values: np.ndarray | None = None):
    """The connection as a scipy CSR matrix (n_out, n_in) of ``values`` (default: the kernel's
    own entries; same shape as the kernel), built from ``synapses``."""
    import scipy.sparse

    w = geom.kernel_2d(weight)
    vals = w if values is None else geom.kernel_2d(values)
    rows, cols, taps = synapses(w, geom)
    data = vals.reshape(-1)[taps]
    matrix = scipy.sparse.csr_matrix((data, (rows, cols)), shape=(geom.n_out, geom.n_in))
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def sparse_arrays(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A conv connection's arrays in the sparse (CSR) form: every kernel-shaped array (weights,
    synapse types) taken per synapse, plus ``indices`` and ``indptr``; zero weights are kept as
    synapses (they are stored words on the targets that keep them). O(synapses)."""
    geom = ConvGeometry.of(attrs)
    kernel = np.asarray(arrays["weight"])
    rows, cols, taps = synapses(kernel, geom, keep_zero=True)
    order = np.lexsort((cols, rows))
    rows, cols, taps = rows[order], cols[order], taps[order]
    out = {key: np.asarray(value).reshape(-1)[taps] for key, value in arrays.items()
           if np.shape(value) == kernel.shape}
    out["indices"] = cols
    out["indptr"] = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=geom.n_out))]).astype(np.int64)
    return out
