"""Exact integer arithmetic of sPyNNaker 7.4.1's LIF cores (s16.15 and u0.32), in numpy.

Every function takes and returns raw integer bits (Python ints or int64 arrays), never floats:
``s1615`` values are int32 with 15 fractional bits (value = bits / 2**15) and ``u032`` values
are uint32 with 32 fractional bits (value = bits / 2**32). The rules are those
of sPyNNaker 7.4.1 (docs/targets.md, "spinnaker"; spinn_common's fixed-point types, the host side):

    mul(a, b)                 floor(a * b / 2**15), wrapped to int32 (GCC's accum multiply)
    kdivk(a, b)               uint32((a << 15) // b) reinterpreted as int32, a, b > 0
    kdivui(a, n)              a // n
    decay_s1615(x, d)         (x * d) >> 32                    x s1615, d u032
    decay_s1615_to_u032(x, d) uint32((uint64(x) * d) >> 15)
    ceil_accum(v)             (v >> 15) + (1 if v & 0x7FFF else 0)

``expk`` (s1615 -> s1615) and ``expulr`` (s1615 -> u032) follow spinn_common's
``src/stdfix-exp.c`` (github.com/SpiNNakerManchester/spinn_common): a table of e**k for whole
k, a 16-entry table of 1 - e**(-i/16), and a two-term series for the last 11 bits of the
fraction, with the rounding of ``scale64``/``round64`` (include/utils.h). The three constant
tables below are the values printed in that file (facts about the chip's results); the
algorithm is re-derived here, not transcribed. ``propagators`` is what a core computes at load
time from the parameters the host writes (neuron_model_lif_impl.h, exp_synapse_utils.h,
input_type_delta.h).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRACTION_BITS = 15
ONE = 1 << FRACTION_BITS  # 1.0 in s1615
U032_ONE = 0xFFFFFFFF  # "1.0ulr": the largest u0.32 value
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
_MASK32 = (1 << 32) - 1
_MASK64 = (1 << 64) - 1

# stdfix-exp.c, __exp_hi: round(e**(k - 13) * 2**32) for k = 0..25.
EXP_HI = (
    9708, 26389, 71733, 194991, 530041, 1440801, 3916503, 10646160, 28939262, 78665070,
    213833830, 581260615, 1580030169, 4294967296, 11674931555, 31735754293, 86266724208,
    234497268814, 637429664642, 1732713474316, 4710003551159, 12803117065094, 34802480465680,
    94602950235157, 257157480542844, 699026506411923,
)
# stdfix-exp.c, __expm1_mid: about (1 - e**(-i/16)) * 2**32 for i = 0..15.
EXPM1_MID = (
    0, 260218914, 504671961, 734314346, 950043403, 1152702096, 1343082321, 1521927990,
    1689937949, 1847768698, 1996036966, 2135322113, 2266168400, 2389087112, 2504558555, 2613033936,
)
# stdfix-exp.c, __exp_series: 1 - e**(-x) ~ c0 + x * (c1 - c2 * x) for x < 2**-4 (u0.32 terms).
EXP_SERIES = (5294, 4293434720, 2081624032)
# expk/expulr saturate outside this argument range (raw s1615 bits).
EXP_ARG_MAX = 363408  # above: expk = INT32_MAX, expulr = 0x7FFFFFFF
EXP_ARG_MIN = -340695  # below: 0


# ------------------------------------------------------------------ wrap-around and conversions

def wrap32(x):
    """Reinterpret the low 32 bits as a signed int32 (two's complement wrap-around)."""
    if isinstance(x, (int, np.integer)):
        x = int(x) & _MASK32
        return x - (1 << 32) if x >> 31 else x
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & _MASK32) - (1 << 31)


def to_s1615(value):
    """Host conversion of a float to s1615 bits: round half to even of value * 2**15 (as sPyNNaker).

    Raises OverflowError when a value does not fit int32 (sPyNNaker refuses such parameters).
    """
    scaled = np.rint(np.asarray(value, dtype=np.float64) * ONE)  # * 2**15 is exact; rint is half-even
    if np.any(~np.isfinite(scaled)) or np.any(scaled > INT32_MAX) or np.any(scaled < INT32_MIN):
        raise OverflowError(f"value {np.max(np.abs(value))!r} does not fit s16.15 (|x| < 65536)")
    out = scaled.astype(np.int64)
    return int(out) if out.ndim == 0 else out


def from_s1615(bits):
    return np.asarray(bits, dtype=np.float64) / ONE


# ------------------------------------------------------------------ the core's helpers

def mul(a, b):
    """s1615 x s1615 -> s1615: floor(a*b / 2**15), wrapped to int32 (no rounding, no saturation)."""
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return wrap32((int(a) * int(b)) >> FRACTION_BITS)
    return wrap32((np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)) >> FRACTION_BITS)


def kdivk(a, b):
    """s1615 / s1615 for a, b > 0: uint32((uint64(a) << 15) // uint64(b)) seen as int32."""
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        if b <= 0 or a < 0:
            raise ValueError(f"kdivk expects a >= 0 and b > 0, got {a}, {b}")
        return wrap32(((int(a) << FRACTION_BITS) // int(b)) & _MASK32)
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if np.any(b <= 0) or np.any(a < 0):
        raise ValueError("kdivk expects a >= 0 and b > 0")
    return wrap32(((a << FRACTION_BITS) // b) & _MASK32)


def kdivui(a, n):
    """s1615 / unsigned integer (truncating)."""
    if isinstance(a, (int, np.integer)):
        return wrap32((int(a) & _MASK64) // int(n))
    return wrap32((np.asarray(a, dtype=np.int64).astype(np.uint64) // np.uint64(n)).astype(np.int64))


def decay_s1615(x, d):
    """s1615 x u032 -> s1615: (int64(x) * int64(d)) >> 32 (floor)."""
    if isinstance(x, (int, np.integer)) and isinstance(d, (int, np.integer)):
        return wrap32((int(x) * (int(d) & _MASK32)) >> 32)
    return (np.asarray(x, dtype=np.int64) * np.asarray(d, dtype=np.int64)) >> 32


def decay_s1615_to_u032(x, d):
    """s1615 x u032 -> u032: uint32((uint64(x) * uint64(d)) >> 15)."""
    if isinstance(x, (int, np.integer)) and isinstance(d, (int, np.integer)):
        return (((int(x) & _MASK64) * (int(d) & _MASK32) & _MASK64) >> FRACTION_BITS) & _MASK32
    xu = np.asarray(x, dtype=np.int64).astype(np.uint64)
    du = np.asarray(d, dtype=np.int64).astype(np.uint64) & np.uint64(_MASK32)
    return ((xu * du >> np.uint64(FRACTION_BITS)) & np.uint64(_MASK32)).astype(np.int64)


def ceil_accum(v):
    """Ceiling of an s1615 value, as an integer (lif_ceil_accum)."""
    if isinstance(v, (int, np.integer)):
        v = int(v)
        return (v >> FRACTION_BITS) + (1 if v & 0x7FFF else 0)
    v = np.asarray(v, dtype=np.int64)
    return (v >> FRACTION_BITS) + ((v & 0x7FFF) > 0)


# ------------------------------------------------------------------ exponentials (stdfix-exp.c)

def _round64(x: int) -> int:
    """utils.h round64: the high word, plus one when the low word is >= 0x7FFFFFFF."""
    return (x >> 32) + (1 if (x & _MASK32) >= INT32_MAX else 0)


def _scale64(x: int, y: int) -> int:
    """utils.h scale64: x * (y / 2**32) for a 64-bit x, rounding only the low word's product."""
    return (_round64((x & _MASK32) * y) + (x >> 32) * y) & _MASK64


def _coef_mult(c: int, x: int) -> int:
    return ((c * x) >> 32) & _MASK32


def _series(y: int) -> int:
    """1 - e**(-f / 2**15) in u0.32 for the low 11 bits f of the fraction (y = f << 17)."""
    c0, c1, c2 = EXP_SERIES
    t = (c1 - _coef_mult(c2, y)) & _MASK32
    return (_coef_mult(t, y) + c0) & _MASK32


def _exp_u32_32(n: int) -> int:
    """e**(n / 2**15) as a 64-bit integer with 32 fractional bits (__expi64), for n in range."""
    whole = n >> FRACTION_BITS
    frac = n - (whole << FRACTION_BITS)
    if frac == 0:
        return EXP_HI[13 + whole]
    # e**(whole + frac) = e**(whole + 1) * e**(-(1 - frac)): step down from the next whole power.
    whole += 1
    down = ONE - frac  # 1..32767, in 2**-15
    value = EXP_HI[13 + whole]
    value = (value - _scale64(value, EXPM1_MID[down >> 11])) & _MASK64
    value = (value - _scale64(value, _series((down & 0x7FF) << 17))) & _MASK64
    return value


def _expk_scalar(n: int) -> int:
    if n > EXP_ARG_MAX:
        return INT32_MAX
    if n < EXP_ARG_MIN:
        return 0
    return wrap32(_exp_u32_32(n) >> 17)


def _expulr_scalar(n: int) -> int:
    if n > EXP_ARG_MAX:
        return INT32_MAX
    if n < EXP_ARG_MIN:
        return 0
    return _exp_u32_32(n) & _MASK32  # e**0 = 2**32 wraps to 0, as on the chip


def _elementwise(fn, x):
    if isinstance(x, (int, np.integer)):
        return fn(int(x))
    x = np.asarray(x, dtype=np.int64)
    values, inverse = np.unique(x, return_inverse=True)
    out = np.array([fn(int(v)) for v in values], dtype=np.int64)
    return out[inverse].reshape(x.shape)


def expk(x):
    """e**x for s1615 bits x, as s1615 bits (INT32_MAX above 363408, 0 below -340695)."""
    return _elementwise(_expk_scalar, x)


def expulr(x):
    """e**x for s1615 bits x, as u032 bits (intended for x < 0)."""
    return _elementwise(_expulr_scalar, x)


# ------------------------------------------------------------------ load-time propagators

@dataclass
class Propagators:
    """What a core derives at load time; all raw bits (arrays shaped like the inputs)."""

    r_membrane: np.ndarray  # s1615, kdivk(tau_m, c_m)
    exp_tc: np.ndarray  # s1615, expk(-kdivk(ts, tau_m))
    t_refract: np.ndarray  # whole steps
    decay_syn_e: np.ndarray  # u032
    init_syn_e: np.ndarray  # u032
    decay_syn_i: np.ndarray
    init_syn_i: np.ndarray
    input_scale: int  # s1615, IF_curr_delta's kdivk(1.0, ts) (input_type_delta.h)


def synapse_propagators(ts, tau_syn):
    """(decay, init) in u032 for an exponential synapse of time constant tau_syn (both s1615 bits)."""
    decay = expulr(wrap32(-kdivk(ts, tau_syn)))
    inverse = (U032_ONE - decay) & _MASK32
    init = decay_s1615_to_u032(kdivk(tau_syn, ts), inverse)
    return decay, init


def membrane_propagators(ts, tau_m, c_m):
    """(R, exp_TC) in s1615 bits."""
    r = kdivk(tau_m, c_m)
    k = kdivk(ts, tau_m)
    return r, expk(wrap32(-k))


def propagators(time_step, tau_m, c_m, tau_syn_e, tau_syn_i, tau_refrac, n_steps_per_timestep: int = 1
                ) -> Propagators:
    """The load-time block of the spec (neuron_model_initialise, decay_and_init), from s1615 bits."""
    ts = kdivui(time_step, n_steps_per_timestep)
    r, exp_tc = membrane_propagators(ts, tau_m, c_m)
    t_refract = ceil_accum(kdivk(tau_refrac, ts))
    decay_e, init_e = synapse_propagators(ts, tau_syn_e)
    decay_i, init_i = synapse_propagators(ts, tau_syn_i)
    input_scale = kdivk(ONE, int(ts))
    return Propagators(r, exp_tc, t_refract, decay_e, init_e, decay_i, init_i, input_scale)


# ------------------------------------------------------------------ host-side ring-buffer rules

def ring_buffer_shift(max_summed_weight: float) -> int:
    """PopulationVertex.get_ring_buffer_shifts for one synapse type: ceil(log2 W), +1 at powers of two."""
    w = float(max_summed_weight)
    if w <= 0:
        return 0
    shift = int(np.ceil(max(0.0, np.log2(w))))
    if 2.0**shift <= w:
        shift += 1
    return shift


def weight_scale(shift: int) -> float:
    """Current-input weight scale: a weight w (nA) is stored as rint(|w| * 2**(15 - shift))."""
    return 2.0 ** (FRACTION_BITS - shift)


def weight_word(weight, shift: int):
    """The 16-bit synaptic word the host writes: uint32(rint(|w| * weight_scale)) & 0xFFFF."""
    w = np.rint(np.abs(np.asarray(weight, dtype=np.float64)) * weight_scale(shift)).astype(np.int64)
    return w & 0xFFFF
