"""A connection's float weights as the quantizers see them: a sparse matrix or a conv kernel.

A conv kernel stays a kernel through scaling (a scale per output channel folds into it) and
its per-neuron sums come from the geometry (neurodeploy/format/convolution.py), so a vision layer is
quantized in O(kernel + neurons), never as an expanded matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse

from neurodeploy.format import convolution
from neurodeploy.compiler.synapses import Connection


@dataclass
class SynapticMap:
    matrix: scipy.sparse.csr_matrix | None = None  # (n_out, n_in)
    kernel: np.ndarray | None = None  # (C_out, C_in/groups, *k)
    geometry: convolution.ConvGeometry | None = None

    @classmethod
    def of(cls, c: Connection) -> "SynapticMap":
        if c.kind == "conv":
            return cls(kernel=np.asarray(c.weight, dtype=np.float64), geometry=convolution.ConvGeometry.of(c.conv))
        m = c.as_matrix().astype(np.float64).tocsr()
        m.eliminate_zeros()
        m.sort_indices()
        return cls(matrix=m)

    @property
    def is_conv(self) -> bool:
        return self.kernel is not None

    def row_sums(self, fn: Callable[[np.ndarray], np.ndarray] = np.abs) -> np.ndarray:
        """Per target neuron, the sum of ``fn(w)`` over its synapses (fn(0) must be 0)."""
        if self.is_conv:
            return convolution.row_sums(fn(self.kernel), self.geometry)
        m = self.matrix.copy()
        m.data = fn(m.data)
        return np.asarray(m.sum(axis=1)).reshape(-1)

    def scaled(self, factor: np.ndarray) -> "SynapticMap":
        """Every target neuron's weights times its ``factor``; a kernel stays a kernel where the
        factor is uniform within each output channel."""
        factor = np.asarray(factor, dtype=np.float64).reshape(-1)
        if self.is_conv:
            per_channel = factor.reshape(self.kernel.shape[0], -1)
            if not np.any(np.ptp(per_channel, axis=1) > 0):
                shape = (-1,) + (1,) * (self.kernel.ndim - 1)
                return SynapticMap(kernel=self.kernel * per_channel[:, 0].reshape(shape), geometry=self.geometry)
            matrix = convolution.as_csr(self.kernel, self.geometry)
        else:
            matrix = self.matrix
        m = (scipy.sparse.diags(factor) @ matrix).tocsr()
        m.eliminate_zeros()
        m.sort_indices()
        return SynapticMap(matrix=m)
