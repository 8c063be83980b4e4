"""Fold a chain of 2-D convolutions and poolings into one convolution, where that is exact.

NIR graphs of vision networks put pooling between a neuron layer and the next convolution
(LIF -> SumPool2d -> Conv2d -> LIF). Hardware holds one synaptic map per connection, so the chain
becomes one kernel: pooling is a depthwise convolution with a kernel of ones, and two
convolutions in a row compose into one (strides multiply, kernels convolve). Along one axis, with
A (kernel ka, stride sa, padding pa, dilation da) followed by B (kb, sb, pb, db), output m of B
reads input m*sb*sa - (pb*sa + pa) + v*db*sa + u*da for taps v of B and u of A: a convolution of
stride sb*sa and padding pb*sa + pa with taps t = v*db*sa + u*da. The composition is exact unless
B's zero padding covers positions whose A-taps would land inside A's input (then the chain keeps
its exact sparse form); ``fold`` checks that per axis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.compiler.ir import Op
from neurodeploy.format.convolution import ConvGeometry, out_size

FOLDABLE = ("conv", "sumpool", "avgpool")


@dataclass(frozen=True, eq=False)
class Conv2d(ConvGeometry):
    """A 2-D convolution's geometry with its float ``weight`` (C_out, C_in/groups, kh, kw)."""

    weight: np.ndarray

    def full_kernel(self) -> np.ndarray:
        """(C_out, C_in, kh, kw) with the groups written out as zero blocks."""
        c_out, c_local = self.weight.shape[:2]
        full = np.zeros((c_out, self.in_shape[0]) + self.weight.shape[2:], dtype=self.weight.dtype)
        per_group_out = c_out // self.groups
        for g in range(self.groups):
            rows = slice(g * per_group_out, (g + 1) * per_group_out)
            full[rows, g * c_local:(g + 1) * c_local] = self.weight[rows]
        return full

    @property
    def depthwise_identity(self) -> bool:
        """Each output channel reads only its own input channel (a pooling)."""
        return self.groups == self.in_shape[0] == self.out_shape[0] and self.weight.shape[1] == 1

    def geometry(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups,
                "in_shape": self.in_shape, "out_shape": self.out_shape}


def _pair(value) -> tuple[int, int]:
    v = [int(x) for x in np.atleast_1d(value)]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def as_conv(op: Op) -> Conv2d | None:
    """A conv, sum- or average-pooling operator over (C, H, W) as a Conv2d; None otherwise."""
    if op.kind not in FOLDABLE or len(op.in_shape) != 3 or len(op.out_shape) != 3:
        return None
    p = op.params
    if op.kind == "conv":
        weight = np.asarray(p["weight"], dtype=np.float64)
        if weight.ndim != 4:
            return None
        return Conv2d(tuple(op.in_shape), tuple(op.out_shape), _pair(p["stride"]), _pair(p["padding"]),
                      _pair(p["dilation"]), int(p["groups"]), weight)
    kernel = _pair(p["kernel_size"])
    channels = int(op.in_shape[0])
    value = 1.0 if op.kind == "sumpool" else 1.0 / np.asarray(np.prod(kernel), dtype=np.float64)
    weight = np.full((channels, 1) + kernel, value, dtype=np.float64)
    return Conv2d(tuple(op.in_shape), tuple(op.out_shape), _pair(p["stride"]), _pair(p["padding"]), (1, 1),
                  channels, weight)


def _axis_exact(n0: int, n1: int, n2: int, a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """No tap of B that falls into B's padding reaches A's input through A's taps (one axis).
    ``a``/``b`` are (kernel, stride, padding, dilation)."""
    ka, sa, pa, da = a
    kb, sb, pb, db = b
    i = np.arange(n2)[:, None] * sb - pb + np.arange(kb)[None, :] * db
    outside = i[(i < 0) | (i >= n1)]
    if not outside.size:
        return True
    x = outside[:, None] * sa - pa + np.arange(ka)[None, :] * da
    return not np.any((x >= 0) & (x < n0))


def _compose(a: Conv2d, b: Conv2d) -> Conv2d | None:
    """B after A as one Conv2d, or None where that is not exact."""
    ka, kb = a.weight.shape[2:], b.weight.shape[2:]
    stride, padding, size = [], [], []
    for d in range(2):
        if not _axis_exact(a.in_shape[d + 1], a.out_shape[d + 1], b.out_shape[d + 1],
                           (ka[d], a.stride[d], a.padding[d], a.dilation[d]),
                           (kb[d], b.stride[d], b.padding[d], b.dilation[d])):
            return None
        stride.append(b.stride[d] * a.stride[d])
        padding.append(b.padding[d] * a.stride[d] + a.padding[d])
        size.append((kb[d] - 1) * b.dilation[d] * a.stride[d] + (ka[d] - 1) * a.dilation[d] + 1)
        if out_size(a.in_shape[d + 1], size[d], stride[d], padding[d], 1) != b.out_shape[d + 1]:
            return None
    full_a, full_b = a.full_kernel(), b.full_kernel()
    kernel = np.zeros((b.out_shape[0], a.in_shape[0], size[0], size[1]))
    for vh, vw, uh, uw in np.ndindex(kb[0], kb[1], ka[0], ka[1]):
        th = vh * b.dilation[0] * a.stride[0] + uh * a.dilation[0]
        tw = vw * b.dilation[1] * a.stride[1] + uw * a.dilation[1]
        kernel[:, :, th, tw] += full_b[:, :, vh, vw] @ full_a[:, :, uh, uw]
    groups = b.groups if a.depthwise_identity else (a.groups if b.depthwise_identity else 1)
    return Conv2d(a.in_shape, b.out_shape, tuple(stride), tuple(padding), (1, 1), groups, _regroup(kernel, groups))


def _regroup(full: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, C_in, ...) block-diagonal kernel -> (C_out, C_in/groups, ...)."""
    c_out, c_in = full.shape[:2]
    og, ig = c_out // groups, c_in // groups
    return np.concatenate([full[g * og:(g + 1) * og, g * ig:(g + 1) * ig] for g in range(groups)], axis=0)


def fold(ops: list[Op]) -> Conv2d | None:
    """The chain (reshapes and delays already removed) as one Conv2d, or None."""
    convs = [as_conv(op) for op in ops]
    if not convs or any(c is None for c in convs):
        return None
    result = convs[0]
    for nxt in convs[1:]:
        if tuple(nxt.in_shape) != tuple(result.out_shape):
            return None
        result = _compose(result, nxt)
        if result is None:
            return None
    return result
