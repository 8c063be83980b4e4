"""Exact products W @ x of one connection's integer weights with integer inputs, on any device.

Layout is neuron-major: ``x`` is (n_in, batch) int64 and the result (n_out, batch) int64.

Where the arithmetic is floating point, it is provably exact: every weight and input is an
integer, and every partial sum of row i, added in any order, is at most
``bound = max_i sum_j |W_ij| * max|x|`` in magnitude. float32 holds every integer up to 2^24
and float64 every integer up to 2^53, so while ``bound`` stays within that, each product and
each partial sum is an exact integer, whatever order or fusion the library (MKL, cuBLAS,
cuSPARSE) uses, and the result converts back to int64 without rounding. float32 is used only
while torch's float32 matmul precision is "highest" (no TF32 or bf16 internal formats). Above
2^53 the product is computed in int64 (gather, multiply, index_add), exact by construction.

Three operators, one per connection kind:
    Dense   the (n_out, n_in) matrix;
    Sparse  a CSR matrix (torch sparse CSR x dense; int64 fallback: COO gather and index_add);
    Conv    the kernel and its geometry: each output's receptive field gathered by ``unfold``
            (memory O(output neurons x kernel taps x batch)), times the flattened kernel; never an
            (n_out, n_in) matrix nor a synapse list. float conv2d is not used: cuDNN may pick FFT
            or Winograd algorithms, which are not exact.
"""
from __future__ import annotations

import warnings
from typing import Union

import numpy as np
import scipy.sparse
import torch

from neurodeploy.format.convolution import ConvGeometry, row_sums

FLOAT32_LIMIT = 1 << 24  # largest bound computed in float32
FLOAT64_LIMIT = 1 << 53  # largest bound computed in float64; above it, int64
INT64_CHUNK = 1 << 22  # int64 elements per chunk of the int64 sparse path


def exact_dtype(bound: int) -> torch.dtype:
    """The cheapest dtype in which a product whose partial sums stay within ``bound`` is exact."""
    if bound <= FLOAT32_LIMIT and torch.get_float32_matmul_precision() == "highest" \
            and not torch.backends.cuda.matmul.allow_tf32:
        return torch.float32
    if bound <= FLOAT64_LIMIT:
        return torch.float64
    return torch.int64


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


class Dense:
    """A dense (n_out, n_in) integer matrix."""

    def __init__(self, weight: np.ndarray, x_max: int, device: torch.device):
        w = np.asarray(weight, dtype=np.int64)
        self.n_out, self.n_in = w.shape
        self.bound = int(np.abs(w).sum(axis=1).max(initial=0)) * int(x_max)
        self.dtype = exact_dtype(self.bound)
        if self.dtype == torch.int64:
            rows, cols = np.nonzero(w)
            self.fallback = Sparse(scipy.sparse.csr_matrix((w[rows, cols], (rows, cols)), shape=w.shape), x_max,
                                   device)
            self.dtype = self.fallback.dtype
            self.fixed_bytes = self.fallback.fixed_bytes
        else:
            self.fallback = None
            self.matrix = torch.as_tensor(w, device=device).to(self.dtype)
            self.fixed_bytes = w.size * _itemsize(self.dtype)
        self.transient_bytes = (self.n_in + 2 * self.n_out) * 8

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.fallback is not None:
            return self.fallback.apply(x)
        return torch.mm(self.matrix, x.to(self.dtype)).to(torch.int64)


class Sparse:
    """A sparse integer matrix (scipy CSR or anything scipy converts to it)."""

    def __init__(self, matrix, x_max: int, device: torch.device):
        m = scipy.sparse.csr_matrix(matrix, dtype=np.int64)
        m.sum_duplicates()
        m.eliminate_zeros()
        self.n_out, self.n_in = m.shape
        self.nnz = int(m.nnz)
        row_abs = np.asarray(abs(m).sum(axis=1)).reshape(-1)
        self.bound = int(row_abs.max(initial=0)) * int(x_max)
        self.dtype = exact_dtype(self.bound)
        self.device = device
        crow = torch.as_tensor(m.indptr.astype(np.int64), device=device)
        col = torch.as_tensor(m.indices.astype(np.int64), device=device)
        if self.dtype == torch.int64:
            self.rows = torch.repeat_interleave(torch.arange(self.n_out, device=device), crow.diff())
            self.cols = col
            self.values = torch.as_tensor(m.data, device=device)
            self.fixed_bytes = self.nnz * 24 + INT64_CHUNK * 16  # the indices and values, one chunk's gather
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "sparse CSR support is in beta": the product is checked exact
                self.matrix = torch.sparse_csr_tensor(crow, col, torch.as_tensor(m.data, device=device).to(self.dtype),
                                                      size=m.shape)
            self.fixed_bytes = self.nnz * (8 + _itemsize(self.dtype)) + (self.n_out + 1) * 8
        self.transient_bytes = (self.n_in + 2 * self.n_out) * 8

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[1]
        if self.nnz == 0:
            return torch.zeros((self.n_out, batch), dtype=torch.int64, device=x.device)
        if self.dtype != torch.int64:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch.sparse.mm(self.matrix, x.to(self.dtype)).to(torch.int64)
        out = torch.zeros((self.n_out, batch), dtype=torch.int64, device=x.device)
        step = max(1, INT64_CHUNK // max(batch, 1))
        for start in range(0, self.nnz, step):
            stop = start + step
            out.index_add_(0, self.rows[start:stop], x[self.cols[start:stop]] * self.values[start:stop, None])
        return out


class Conv:
    """A 1-D or 2-D cross-correlation with an integer kernel (C_out, C_in/groups, [kh,] kw).

    Float path: ``unfold`` gathers each output's receptive field (zeros in the padding: an exact
    copy), then one batched matmul per group with the flattened kernel. int64 path: a sum over
    kernel taps of strided views of the zero-padded input, one input channel at a time (CUDA has
    no integer matmul)."""

    def __init__(self, kernel: np.ndarray, geom: ConvGeometry, x_max: int, device: torch.device):
        k = geom.kernel_2d(np.asarray(kernel, dtype=np.int64))
        self.geom = geom
        self.n_in, self.n_out = geom.n_in, geom.n_out
        self.bound = int(row_sums(np.abs(k), geom).max(initial=0)) * int(x_max)
        self.dtype = exact_dtype(self.bound)
        g = geom.groups
        c_out, c_local, kh, kw = k.shape
        self.kernel_hw = (kh, kw)
        self.shape = (g, c_out // g, c_local)
        if self.dtype == torch.int64:
            self.taps = [(u, v, torch.as_tensor(np.ascontiguousarray(k[:, :, u, v]), device=device).reshape(self.shape))
                         for u in range(kh) for v in range(kw) if k[:, :, u, v].any()]
        else:
            self.matrix = torch.as_tensor(k, device=device).to(self.dtype).reshape(g, c_out // g, c_local * kh * kw)
        self.fixed_bytes = k.size * 8
        size = _itemsize(self.dtype)
        positions = int(np.prod(geom.out_shape[1:]))
        self.transient_bytes = (geom.in_shape[0] * kh * kw * positions + 2 * self.n_in) * size \
            + (2 * self.n_out) * 8 + self.n_out * size

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype == torch.int64:
            return self._apply_int64(x)
        batch = x.shape[1]
        g, per_out, c_local = self.shape
        cols = torch.nn.functional.unfold(x.t().reshape((batch,) + self.geom.in_shape).to(self.dtype),
                                          self.kernel_hw, dilation=self.geom.dilation, padding=self.geom.padding,
                                          stride=self.geom.stride)  # (batch, C_in * kh * kw, positions)
        y = torch.matmul(self.matrix, cols.reshape(batch, g, -1, cols.shape[-1]))  # (batch, g, per_out, positions)
        return y.reshape(batch, self.n_out).t().to(torch.int64)

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """x as (groups, C_in/groups, H + 2 ph, W + 2 pw, batch) int64, zeros around."""
        (c, h, w), (ph, pw) = self.geom.in_shape, self.geom.padding
        batch = x.shape[1]
        xs = x.reshape(c, h, w, batch).to(torch.int64)
        if ph or pw:
            padded = torch.zeros((c, h + 2 * ph, w + 2 * pw, batch), dtype=torch.int64, device=x.device)
            padded[:, ph:ph + h, pw:pw + w] = xs
            xs = padded
        return xs.reshape((self.shape[0], self.shape[2]) + xs.shape[1:])

    def _apply_int64(self, x: torch.Tensor) -> torch.Tensor:
        g, per_out, c_local = self.shape
        _, ho, wo = self.geom.out_shape
        (sh, sw), (dh, dw) = self.geom.stride, self.geom.dilation
        batch = x.shape[1]
        length = ho * wo * batch
        xg = self._padded(x)
        out = torch.zeros((g, per_out, length), dtype=torch.int64, device=x.device)
        for u, v, w in self.taps:
            y0, x0 = u * dh, v * dw
            window = xg[:, :, y0:y0 + sh * (ho - 1) + 1:sh, x0:x0 + sw * (wo - 1) + 1:sw].reshape(g, c_local, length)
            for c in range(c_local):
                out += w[:, :, c:c + 1] * window[:, c:c + 1]
        return out.reshape(self.n_out, batch)


Operator = Union[Dense, Sparse, Conv]


def operator(kind: str, weight: np.ndarray, *, attrs: dict | None = None, x_max: int, device: torch.device,
             indices: np.ndarray | None = None, indptr: np.ndarray | None = None,
             shape: tuple[int, int] | None = None) -> Operator:
    """The operator of a connection's weights: ``dense`` (n_out, n_in), ``sparse`` (CSR arrays and
    ``shape``) or ``conv`` (kernel and ``attrs``)."""
    if kind == "dense":
        return Dense(weight, x_max, device)
    if kind == "sparse":
        return Sparse(scipy.sparse.csr_matrix((np.asarray(weight, dtype=np.int64), indices, indptr), shape=shape),
                      x_max, device)
    if kind == "conv":
        return Conv(weight, ConvGeometry.of(attrs), x_max, device)
    raise ValueError(f"unknown connection kind {kind!r}")
