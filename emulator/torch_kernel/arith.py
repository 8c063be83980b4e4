"""The targets' integer arithmetic on torch int64 tensors.

The fixed-point neuron (loihi2 and the generic profile) is neurodeploy/targets/fixed_point_math.py
itself, run on the torch namespace; the two s16.15 helpers of sPyNNaker's core are torch twins of
neurodeploy/targets/spinnaker_math.py; tests/emulator/test_torch_kernel.py checks them equal on random
integers. ``>>`` on signed torch integers is an arithmetic shift (floor), as numpy's is. Nothing
here converts to floating point.
"""
from __future__ import annotations

from functools import partial

import torch

from neurodeploy.targets import fixed_point_math as fpm

MASK32 = (1 << 32) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# ------------------------------------------------------------------ fixed point (loihi2, generic)

trunc_shr = partial(fpm.trunc_shr, xp=torch)
round_shr = partial(fpm.round_shr, xp=torch)
shift_exp = fpm.shift_exp
next_u = partial(fpm.next_u, xp=torch)
drive_v = partial(fpm.drive_v, xp=torch)
saturate = partial(fpm.saturate, xp=torch)


def wrap32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement int32 wrap of int64 values (a mask: cheaper than fixed_point_math's modulo)."""
    return ((x - INT32_MIN) & MASK32) + INT32_MIN


# ------------------------------------------------------------------ spinnaker (s16.15, u0.32)

def mul_s1615(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """s1615 x s1615: floor(a*b / 2**15), wrapped to int32."""
    return wrap32((a * b) >> 15)


def decay_s1615(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """s1615 x u032: (x * d) >> 32 (|x| < 2^31 and d < 2^32, so the product fits int64)."""
    return (x * d) >> 32
