"""The compiled kernels' inlined arithmetic (emulator/numba_kernels.py keeps its own copies,
because numba's on-disk cache only tracks the file that defines a kernel) equals the reference
arithmetic of the target descriptions (neurodeploy/targets/) on random and edge operands."""
from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.emulator import numba_kernels as nk
from neurodeploy.targets import fixed_point_math as fpm
from neurodeploy.targets import spinnaker as spinnaker_target
from neurodeploy.targets import spinnaker_math as sm

RNG = np.random.default_rng(2026)
EDGES = np.array([0, 1, -1, 2**23 - 1, -(2**23), 2**31 - 1, -(2**31), 2**31, 2**32 + 5, -(2**33) - 7, 4095, -4096])


def _operands(n: int, bits: int) -> np.ndarray:
    return np.concatenate([EDGES, RNG.integers(-(2**bits), 2**bits, n)]).astype(np.int64)


def test_wrap32_equals_the_reference():
    x = _operands(20_000, 40)
    got = np.array([nk.wrap32(int(v)) for v in x])
    assert np.array_equal(got, fpm.wrap32(x)) and np.array_equal(got, sm.wrap32(x))


@pytest.mark.parametrize("loihi", [True, False])
@pytest.mark.parametrize("bits", [0, 1, 6, 12])
def test_decay_shift_equals_the_reference(loihi, bits):
    x = _operands(5_000, 36)
    got = np.array([nk._shr(int(v), bits, loihi) for v in x])
    want = fpm.trunc_shr(x, bits) if loihi else fpm.round_shr(x, bits)
    assert np.array_equal(got, want)


def test_s1615_multiply_equals_the_reference():
    a, b = _operands(20_000, 31), _operands(20_000, 31)[::-1]
    got = np.array([nk._mul(int(p), int(q)) for p, q in zip(a, b)])
    assert np.array_equal(got, sm.mul(a, b))


def test_ring_buffer_limit_is_the_targets():
    assert nk.RING_BUFFER_MAX == spinnaker_target.RING_BUFFER_MAX


@pytest.mark.parametrize("loihi", [True, False])
@pytest.mark.parametrize("subtract", [False, True])
def test_neuron_update_equals_the_reference(loihi, subtract):
    """One step of the compiled CUBA LIF against next_u / drive_v / saturate, on random states that
    reach the wraps and saturations."""
    n, decay_bits, shift, state_max = 4_000, 12, 6, 2**23
    acc = RNG.integers(-(2**26), 2**26, n)
    u0, v0 = RNG.integers(-(2**24), 2**24, n), RNG.integers(-(2**23) + 1, 2**23, n)
    keep_u, keep_v = RNG.integers(0, 4097, n), RNG.integers(0, 4097, n)
    bias, threshold = RNG.integers(-(2**20), 2**20, n), RNG.integers(0, 2**23, n)
    spiking = RNG.random(n) < 0.8
    zeros = np.zeros(n, dtype=np.int64)
    neurons = (keep_u, keep_v, bias, threshold, zeros, zeros, spiking, np.array([0]), np.array([n]), decay_bits,
               shift, state_max, loihi, subtract)
    u, v, fired = u0.copy(), v0.copy(), np.zeros(n, dtype=np.bool_)
    n_u, n_v = nk._update(acc.copy(), u, v, fired, 0, n, neurons, loihi, subtract)
    want_u = fpm.next_u(u0, acc, keep_u, decay_bits, shift, state_max, loihi)
    y = fpm.drive_v(v0, want_u, bias, keep_v, decay_bits, loihi)
    assert (n_u, n_v) == (int(fpm.u_overflowed(u0, acc, keep_u, decay_bits, shift, state_max, loihi).sum()),
                          int(fpm.clamped(y, state_max).sum()))
    assert n_u > 0 and n_v > 0  # the random states reach both
    y = fpm.saturate(y, state_max)
    spikes = spiking & (y > threshold)
    want_v = np.where(spikes, y - threshold if subtract else 0, y)
    assert np.array_equal(u, want_u) and np.array_equal(v, want_v) and np.array_equal(fired, spikes)
