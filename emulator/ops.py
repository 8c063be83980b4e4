"""Float implementations of projection operators on batched arrays (batch first).

Shared by the float reference and by lowering (to fold biases). Delays are stateful and
handled by the simulator, not here.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurodeploy.compiler.ir import Op


def apply(op: Op, x: np.ndarray) -> np.ndarray:
    """Apply a stateless operator to ``x`` of shape (batch, *op.in_shape)."""
    batch = x.shape[0]
    p = op.params
    if op.kind == "dense":
        y = x.reshape(batch, -1) @ p["weight_t"]
    elif op.kind == "sparse":
        y = (p["matrix"] @ x.reshape(batch, -1).T).T
    elif op.kind == "conv":
        y = conv(x.reshape((batch,) + op.in_shape), p["weight"], p["stride"], p["padding"], p["dilation"], p["groups"])
    elif op.kind in ("sumpool", "avgpool"):
        y = sum_pool(x.reshape((batch,) + op.in_shape), p["kernel_size"], p["stride"], p["padding"])
        if op.kind == "avgpool":
            y = y / np.asarray(np.prod(p["kernel_size"]), dtype=y.dtype)
    elif op.kind == "scale":
        y = x.reshape((batch,) + op.in_shape) * p["scale"]
    elif op.kind in ("reshape", "delay"):
        y = x
    else:  # pragma: no cover - lowering only creates the kinds above
        raise ValueError(op.kind)
    return np.asarray(y, dtype=x.dtype).reshape((batch,) + op.out_shape)


def _windows(x: np.ndarray, kernel: tuple[int, ...], stride, padding, dilation) -> np.ndarray:
    """(batch, C, *out, *kernel) view of a padded input, for 1-D or 2-D spatial shapes."""
    dims = len(kernel)
    pad = [(0, 0), (0, 0)] + [(int(q), int(q)) for q in padding]
    xp = np.pad(x, pad) if any(int(q) for q in padding) else x
    span = tuple((k - 1) * int(d) + 1 for k, d in zip(kernel, dilation))
    w = sliding_window_view(xp, span, axis=tuple(range(2, 2 + dims)))
    sl = (slice(None), slice(None)) + tuple(slice(None, None, int(s)) for s in stride) + tuple(
        slice(None, None, int(d)) for d in dilation
    )
    return w[sl]


def conv(x: np.ndarray, weight: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    dims = weight.ndim - 2
    win = _windows(x, weight.shape[2:], stride, padding, dilation)  # (B, C, *out, *k)
    batch, channels = win.shape[:2]
    out_sp = win.shape[2:2 + dims]
    cg = channels // groups
    og = weight.shape[0] // groups
    win = win.reshape((batch, groups, cg) + out_sp + weight.shape[2:])
    w = weight.reshape((groups, og, cg) + weight.shape[2:])
    if dims == 2:
        y = np.einsum("bgchwij,gocij->bgohw", win, w, optimize=True)
    else:
        y = np.einsum("bgcli,goci->bgol", win, w, optimize=True)
    return y.reshape((batch, weight.shape[0]) + out_sp)


def sum_pool(x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    win = _windows(x, tuple(int(k) for k in kernel), stride, padding, (1,) * len(kernel))
    return win.sum(axis=(-2, -1))
