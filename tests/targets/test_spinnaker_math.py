"""The s16.15 / u0.32 helpers of sPyNNaker's LIF cores (neurodeploy/targets/spinnaker_math.py).

Expected values are sPyNNaker 7.4.1's number formats (docs/targets.md, "spinnaker"; seen on sPyNNaker
7.4.1 and in an ARMv5TE build of the C arithmetic), worked examples computed by hand below, or
float math with a tolerance that comes from stdfix-exp.c's series (its constant term is 5294 / 2**32).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.targets import spinnaker_math as sm

ONE = 1 << 15


def test_mul_truncates_toward_minus_infinity():
    assert sm.mul(3, 3) == 0
    assert sm.mul(-3, 3) == -1
    assert sm.mul(12345, -12345) == -4651
    assert sm.mul(ONE, ONE) == ONE
    assert sm.mul(-ONE, 3 * ONE) == -3 * ONE
    np.testing.assert_array_equal(sm.mul(np.array([3, -3, 12345]), np.array([3, 3, -12345])), [0, -1, -4651])


def test_mul_and_wrap_are_int32():
    big = 40000 * ONE  # 40000.0 * 2.0 = 80000 does not fit s16.15: it wraps, no saturation
    assert sm.mul(big, 2 * ONE) == sm.wrap32(80000 * ONE)
    assert sm.mul(big, 2 * ONE) < 0
    assert sm.wrap32(2**31) == -(2**31)
    np.testing.assert_array_equal(sm.wrap32(np.array([2**31, -(2**31) - 1, 5])), [-(2**31), 2**31 - 1, 5])


def test_kdivk_kdivui_decay_and_ceil():
    assert sm.kdivk(ONE, 2 * ONE) == ONE // 2
    assert sm.kdivk(ONE, 3 * ONE) == 10922  # floor(32768 / 3)
    assert sm.kdivk(20 * ONE, 20 * ONE) == ONE
    assert sm.kdivk(ONE, 1) == sm.wrap32(1 << 30)
    assert sm.kdivui(7 * ONE, 2) == 7 * ONE // 2
    assert sm.decay_s1615(ONE, 1 << 31) == ONE // 2
    assert sm.decay_s1615(-3, 1 << 31) == -2  # floor(-1.5)
    assert sm.decay_s1615_to_u032(ONE, 0xFFFFFFFF) == 0xFFFFFFFF
    assert sm.decay_s1615_to_u032(ONE // 2, 0xFFFFFFFF) == 0x7FFFFFFF
    assert sm.ceil_accum(ONE) == 1 and sm.ceil_accum(ONE + 1) == 2 and sm.ceil_accum(0) == 0
    assert sm.ceil_accum(-ONE - 1) == -1  # (bits >> 15) + 1: -2 + 1


def test_host_conversion_rounds_half_to_even():
    assert sm.to_s1615(1.0) == ONE
    assert sm.to_s1615(0.1) == 3277  # 3276.8
    assert sm.to_s1615(0.5 / ONE) == 0 and sm.to_s1615(1.5 / ONE) == 2 and sm.to_s1615(2.5 / ONE) == 2
    assert sm.to_s1615(-2.5 / ONE) == -2
    with pytest.raises(OverflowError):
        sm.to_s1615(70000.0)


@pytest.mark.parametrize("tau, exp_tc, init", [(20.0, 31170, 0.975202), (2.0, 19874, 0.786940),
                                               (10.0, 29650, 0.951412)])
def test_seen_propagators(tau, exp_tc, init):
    """tau_m = tau_syn = tau, c_m = 1, dt = 1 ms: the values sPyNNaker 7.4.1 cores report."""
    ts = sm.to_s1615(1.0)
    t = sm.to_s1615(tau)
    got = sm.propagators(ts, t, sm.to_s1615(1.0), t, t, 0)
    assert got.exp_tc == exp_tc
    assert round(got.init_syn_e / 2**32, 6) == init
    assert got.init_syn_i == got.init_syn_e
    assert got.r_membrane == t  # tau_m / c_m with c_m = 1
    assert got.t_refract == 0
    assert got.input_scale == ONE  # IF_curr_delta's 1/ts
    k = sm.kdivk(ts, t) / ONE  # dt/tau floored to 2**-15
    assert got.decay_syn_e / 2**32 == pytest.approx(math.exp(-k), abs=2e-6)
    assert got.exp_tc / ONE == pytest.approx(math.exp(-k), abs=2 / ONE)


def test_effective_tau_is_floored():
    """kdivk(ts, tau) floors: tau=100 ms at dt=0.1 ms behaves like about 102.4 ms (spec)."""
    ts, tau = sm.to_s1615(0.1), sm.to_s1615(100.0)
    k = sm.kdivk(ts, tau)
    assert ts / ONE / (k / ONE) == pytest.approx(102.4, rel=2e-3)


def test_refractory_steps_round_up():
    ts = sm.to_s1615(1.0)
    assert sm.propagators(ts, ONE, ONE, ONE, ONE, sm.to_s1615(2.0)).t_refract == 2
    assert sm.propagators(ts, ONE, ONE, ONE, ONE, sm.to_s1615(2.1)).t_refract == 3


def test_expk_saturation_bounds():
    assert sm.expk(sm.EXP_ARG_MAX + 1) == 2**31 - 1
    assert sm.expk(sm.EXP_ARG_MIN - 1) == 0
    assert sm.expk(sm.EXP_ARG_MAX) == pytest.approx(math.exp(sm.EXP_ARG_MAX / ONE) * ONE, rel=2e-6)
    assert sm.expk(sm.EXP_ARG_MAX) < 2**31
    assert sm.expk(sm.EXP_ARG_MIN) in (0, 1)  # e**-10.397 = 3.05e-5 ~ 1 LSB
    assert sm.expulr(sm.EXP_ARG_MIN - 1) == 0
    assert sm.expulr(sm.EXP_ARG_MAX + 1) == 2**31 - 1


def test_expk_whole_numbers_come_from_the_table():
    for k in range(-10, 12):
        assert sm.expk(k * ONE) == sm.EXP_HI[13 + k] >> 17
    assert sm.expk(0) == ONE
    assert sm.expulr(0) == 0  # e**0 = 2**32 does not fit u0.32: it wraps to 0, as on the chip


def test_expk_just_below_zero_is_two_lsb_down():
    """The series' constant term (5294/2**32) makes expk(-2**-15) = 32766, not 32767: the chip's
    smallest membrane leak is 2**-14 per step (what the IF mapping uses)."""
    assert sm.expk(-1) == 32766
    assert [sm.expk(-k) for k in range(2, 5)] == [32765, 32764, 32763]


def test_tables_are_what_their_formulas_say():
    for k, value in enumerate(sm.EXP_HI):
        assert abs(value - math.exp(k - 13) * 2**32) <= 1
    for i, value in enumerate(sm.EXPM1_MID):
        assert abs(value - (1 - math.exp(-i / 16)) * 2**32) < 4e-6 * 2**32


def test_vectorized_matches_scalar():
    x = np.array([-340695, -40000, -32768, -1, 0, 1, 5000, 363408])
    np.testing.assert_array_equal(sm.expk(x), [sm.expk(int(v)) for v in x])
    np.testing.assert_array_equal(sm.expulr(x[:4]), [sm.expulr(int(v)) for v in x[:4]])


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=sm.EXP_ARG_MIN, max_value=sm.EXP_ARG_MAX))
def test_expk_close_to_exp(n):
    """Within 2 LSB plus the series' relative error (about 1.3e-6; 2741 LSB at the top, e**11 * 2**15)."""
    ref = math.exp(n / ONE) * ONE
    assert abs(sm.expk(n) - ref) <= 2 + 1.3e-6 * ref


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=sm.EXP_ARG_MIN, max_value=-1))
def test_expulr_close_to_exp(n):
    """Within 2 LSB plus 1.3e-6 of 2**32 (the series' constant, 5294 LSB)."""
    ref = math.exp(n / ONE) * 2**32
    assert abs(sm.expulr(n) - ref) <= 2 + 1.3e-6 * 2**32
    assert abs(sm.expulr(n) - ref) <= 2 + 1e-5 * ref + 5300


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_mul_is_floor_of_exact_product(a, b):
    exact = (a * b) // ONE  # Python's // floors
    assert sm.mul(a, b) == sm.wrap32(exact)
    assert sm.mul(np.array([a]), np.array([b]))[0] == sm.wrap32(exact)


def test_ring_buffer_shift_rule():
    assert sm.ring_buffer_shift(0.0) == 0
    assert sm.ring_buffer_shift(0.3) == 0  # log2 < 0 -> 0, and 2**0 > 0.3
    assert sm.ring_buffer_shift(1.0) == 1  # 2**0 <= 1: one more
    assert sm.ring_buffer_shift(3.0) == 2
    assert sm.ring_buffer_shift(4.0) == 3
    assert sm.ring_buffer_shift(4.5) == 3
    assert sm.weight_scale(3) == 4096.0
    np.testing.assert_array_equal(sm.weight_word([0.5, -0.5, 2.5 / 4096], 3), [2048, 2048, 2])
    assert sm.weight_word(16.0, 0) == 0  # 16 * 32768 = 2**19 wraps to 0 in the 16-bit word
