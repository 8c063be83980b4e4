"""The targets' integer arithmetic on torch int64 tensors.

Each function is the tensor twin of one in neurodeploy/targets/fixed_point_math.py (loihi2 and
the generic profile) or emulator/spinnaker.py (sPyNNaker's s16.15 core); tests/test_torch_kernel.py
checks them equal on random integers. ``>>`` on signed torch integers is an arithmetic shift
(floor), as numpy's is. Nothing here converts to floating point.
"""
from __future__ import annotations

import torch

MASK32 = (1 << 32) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# ------------------------------------------------------------------ fixed point (loihi2, generic)

def trunc_shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Shift right rounding toward zero (Lava's decay): integer division truncating, one op."""
    return torch.div(x, 1 << bits, rounding_mode="trunc") if bits else x


def round_shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Shift right rounding to nearest, half away from zero (the generic profile): |x| + half,
    shifted, with x's sign; as a truncating division of x +- half."""
    if bits == 0:
        return x
    half = 1 << (bits - 1)
    return torch.div(x + torch.where(x >= 0, half, -half), 1 << bits, rounding_mode="trunc")


def shift_exp(y: torch.Tensor, e: int) -> torch.Tensor:
    """A connection's weight exponent applied to its summed input."""
    return y << e if e > 0 else (y >> -e if e < 0 else y)


def wrap32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement int32 wrap of int64 values."""
    return ((x - INT32_MIN) & MASK32) + INT32_MIN


def next_u(u: torch.Tensor, a: torch.Tensor, keep_u: torch.Tensor, decay_bits: int, shift: int, state_max: int,
           loihi: bool) -> torch.Tensor:
    """u after one step with summed input ``a``; ``state_max`` is 2^(state_bits - 1)."""
    x = (trunc_shr if loihi else round_shr)(u * keep_u, decay_bits) + (a << shift)
    if loihi:  # the int32 sum, then one wrap by 2^24 (u can stay outside 24 bits)
        x = wrap32(x)
        return torch.where(x > state_max, x - 2 * state_max, torch.where(x <= -state_max, x + 2 * state_max, x))
    return x.clamp(-(state_max - 1), state_max - 1)


def drive_v(v: torch.Tensor, u: torch.Tensor, bias: torch.Tensor, keep_v: torch.Tensor, decay_bits: int,
            loihi: bool) -> torch.Tensor:
    """v after one step, before saturation."""
    return (trunc_shr if loihi else round_shr)(v * keep_v, decay_bits) + u + bias


def saturate(y: torch.Tensor, state_max: int) -> torch.Tensor:
    return y.clamp(-(state_max - 1), state_max - 1)


# ------------------------------------------------------------------ spinnaker (s16.15, u0.32)

def mul_s1615(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """s1615 x s1615: floor(a*b / 2**15), wrapped to int32."""
    return wrap32((a * b) >> 15)


def decay_s1615(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """s1615 x u032: (x * d) >> 32 (|x| < 2^31 and d < 2^32, so the product fits int64)."""
    return (x * d) >> 32
