"""Inputs checked in one pass and kept as uint8 where every count fits a byte (input_rules.as_counts)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neurodeploy.errors import InputDataError
from neurodeploy.format import input_rules


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int16, np.uint16, np.uint8, np.bool_])
def test_counts_that_fit_a_byte_become_uint8(dtype):
    x = (np.arange(300) % (2 if dtype == np.bool_ else 256)).astype(dtype).reshape(3, 100)
    got = input_rules.as_counts(x, "x")
    assert got.dtype == np.uint8 and got.shape == x.shape
    np.testing.assert_array_equal(got.astype(np.int64), x.astype(np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint16])
def test_larger_counts_stay_whole_as_int64(dtype):
    x = np.array([[0, 255, 256, 40000]], dtype=dtype)
    got = input_rules.as_counts(x, "x")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [[0, 255, 256, 40000]])


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN"), (np.inf, "infinite"), (-1.0, "negative value -1"),
                                          (0.5, "non-integer value 0.5"), (255.5, "non-integer value 255.5"),
                                          (-300.0, "negative value -300")])
def test_what_no_target_can_send_is_refused_by_name(bad, message):
    x = np.zeros((2, 3, 70000), dtype=np.float32)  # more than one block: the bad value in the second
    x[1, 2, 69999] = bad
    with pytest.raises(InputDataError, match=message):
        input_rules.as_counts(x, "input 'x'")
    with pytest.raises(InputDataError, match=message):
        input_rules.check_values(x, "input 'x'")


def test_negative_integers_are_refused():
    with pytest.raises(InputDataError, match="negative value -3"):
        input_rules.as_counts(np.array([[1, -3]], dtype=np.int8), "x")


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=3, max_side=70),
                  elements=st.sampled_from([0.0, 1.0, 2.0, 255.0, 256.0, 0.5, -1.0, -0.0, 1e9])))
def test_one_pass_agrees_with_the_detailed_rules(x):
    """byte_counts accepts exactly the arrays of whole numbers in [0, 255]; as_counts keeps their values."""
    whole = bool(np.all(x == np.rint(x)) and np.all(x >= 0))
    fits = whole and (x.size == 0 or x.max() <= 255)
    assert (input_rules.byte_counts(x) is not None) == fits
    assert (input_rules.byte_counts(x, keep=False) is not None) == fits
    if whole:
        np.testing.assert_array_equal(input_rules.as_counts(x, "x").astype(np.float64), x.astype(np.float64))
    else:
        with pytest.raises(InputDataError):
            input_rules.as_counts(x, "x")
