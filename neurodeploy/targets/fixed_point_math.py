"""The integer arithmetic of the fixed-point CUBA LIF: Loihi 2 (Lava 0.10.0's fixed_pt LIF) and
the generic emulator profile. One neuron step (docs/targets.md, "loihi2"):

    u = decay(u, du) + (a << activation_shift)    Loihi: int32 sum, then u wraps once by 2^24
    v = saturate(decay(v, dv) + u + bias)          |v| <= 2^(state_bits - 1) - 1
    spike where v > vth << threshold_shift; then v = 0 (or v - threshold with reset by subtraction)

Loihi's decay truncates toward zero; the generic profile rounds to nearest (half away from zero)
and saturates u instead of wrapping it. The numpy kernel (emulator/fixed_point.py) and the
prestart replay (compiler/quantize/prestart.py) use these functions; the compiled kernel's
inlined copy (emulator/numba_kernels.py) is tested equal to them (tests/targets/test_target_arithmetic.py).
Every function takes the array namespace ``xp`` (numpy by default; the torch kernel passes torch):
one definition of the arithmetic for both.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def trunc_shr(x: np.ndarray, bits: int, xp: Any = np) -> np.ndarray:
    """Shift right rounding toward zero (Lava's decay)."""
    return xp.where(x >= 0, x >> bits, -((-x) >> bits))


def round_shr(x: np.ndarray, bits: int, xp: Any = np) -> np.ndarray:
    """Shift right rounding to nearest, half away from zero (the generic profile)."""
    if bits == 0:
        return x
    half = 1 << (bits - 1)
    return xp.where(x >= 0, (x + half) >> bits, -((-x + half) >> bits))


def shift_exp(y: np.ndarray, e: int) -> np.ndarray:
    """A connection's weight exponent applied to its summed input."""
    return y << e if e > 0 else (y >> -e if e < 0 else y)


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap of int64 values (Lava's fixed-point LIF adds u's terms in int32)."""
    return ((x + 2**31) % 2**32) - 2**31


def next_u(u: np.ndarray, a: np.ndarray, keep_u: np.ndarray, decay_bits: int, shift: int, state_max: int,
           loihi: bool, xp: Any = np) -> np.ndarray:
    """u after one step with summed input ``a``; ``state_max`` is 2^(state_bits - 1)."""
    x = (trunc_shr if loihi else round_shr)(u * keep_u, decay_bits, xp) + (a << shift)
    if loihi:  # the int32 sum, then one wrap by 2^24 (u can stay outside 24 bits)
        x = wrap32(x)
        return xp.where(x > state_max, x - 2 * state_max, xp.where(x <= -state_max, x + 2 * state_max, x))
    return xp.clip(x, -(state_max - 1), state_max - 1)


def drive_v(v: np.ndarray, u: np.ndarray, bias: np.ndarray, keep_v: np.ndarray, decay_bits: int,
            loihi: bool, xp: Any = np) -> np.ndarray:
    """v after one step, before saturation."""
    return (trunc_shr if loihi else round_shr)(v * keep_v, decay_bits, xp) + u + bias


def saturate(y: np.ndarray, state_max: int, xp: Any = np) -> np.ndarray:
    return xp.clip(y, -(state_max - 1), state_max - 1)


def u_overflowed(u: np.ndarray, a: np.ndarray, keep_u: np.ndarray, decay_bits: int, shift: int, state_max: int,
                 loihi: bool, xp: Any = np) -> np.ndarray:
    """Where ``next_u`` takes its wrap by 2^24 (Loihi) or saturates (generic): the overflow counter's events."""
    x = (trunc_shr if loihi else round_shr)(u * keep_u, decay_bits, xp) + (a << shift)
    if loihi:
        x = wrap32(x)
        return (x > state_max) | (x <= -state_max)
    return (x > state_max - 1) | (x < -(state_max - 1))


def clamped(y: np.ndarray, state_max: int) -> np.ndarray:
    """Where ``saturate`` changes y (v clamped at +-(state_max - 1))."""
    return (y > state_max - 1) | (y < -(state_max - 1))


def neuron_constants(params: dict[str, np.ndarray], fmt: dict) -> dict[str, Any]:
    """What one step needs from a population's integer parameters (arrays flat or concatenated):
    the decay keeps, bias and threshold in state units, and the format's shifts and range."""
    one = 1 << int(fmt["decay_bits"])
    return {"keep_u": one - (params["du"] + int(fmt["du_offset"])), "keep_v": one - params["dv"],
            "bias": params["bias_mant"] << params["bias_exp"],
            "threshold": params["vth"] << int(fmt["threshold_shift"]),
            "decay_bits": int(fmt["decay_bits"]), "shift": int(fmt["activation_shift"]),
            "state_max": 2 ** (int(fmt["state_bits"]) - 1), "loihi": fmt["target"] == "loihi2"}
