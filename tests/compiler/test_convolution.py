"""Conv geometry by index arithmetic (neurodeploy/format/convolution.py) and the folding of conv/pool
chains into one kernel (compiler/conv_fold.py), against the float operators applied to inputs."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.format import convolution
from neurodeploy.compiler.conv_fold import fold
from neurodeploy.compiler.ir import Op
from neurodeploy.compiler.synapses import _compose
from neurodeploy.emulator.ops import apply, conv


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    hw = (draw(st.integers(4, 11)), draw(st.integers(4, 11)))
    out = tuple(convolution.out_size(hw[d], k[d], stride[d], padding[d], dilation[d]) for d in range(2))
    seed = draw(st.integers(0, 2**16))
    return groups, c_in, c_out, k, stride, padding, dilation, hw, out, seed


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_synapses_counts_and_row_sums_match_the_float_conv(case):
    groups, c_in, c_out, k, stride, padding, dilation, hw, out, seed = case
    if min(out) < 1:
        return
    rng = np.random.default_rng(seed)
    w = rng.integers(-3, 4, (c_out, c_in // groups) + k).astype(np.int64)
    geom = convolution.ConvGeometry.of(dict(in_shape=(c_in,) + hw, out_shape=(c_out,) + out, stride=stride,
                                            padding=padding, dilation=dilation, groups=groups))
    x = rng.integers(0, 3, (3, c_in) + hw).astype(np.int64)
    expected = conv(x, w, stride, padding, dilation, groups).reshape(3, -1)
    matrix = convolution.as_csr(w, geom)
    assert np.array_equal((matrix @ x.reshape(3, -1).T).T, expected)
    ones = np.ones((1, c_in) + hw, dtype=np.int64)
    assert np.array_equal(convolution.row_sums(np.abs(w), geom), conv(ones, np.abs(w), stride, padding, dilation,
                                                                      groups).reshape(-1))
    assert convolution.synapse_count(w, geom) == matrix.nnz == int(convolution.fan_in(w, geom).sum())
    sparse = convolution.sparse_arrays({"weight": w}, dict(in_shape=(c_in,) + hw, out_shape=(c_out,) + out,
                                                          stride=stride, padding=padding, dilation=dilation,
                                                          groups=groups))
    rebuilt = scipy.sparse.csr_matrix((sparse["weight"], sparse["indices"], sparse["indptr"]), shape=matrix.shape)
    assert np.array_equal(rebuilt.toarray(), matrix.toarray())


def test_a_1d_conv_is_a_2d_conv_of_height_one():
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, (3, 2, 3))
    attrs = dict(in_shape=(2, 9), out_shape=(3, 5), stride=[2], padding=[1], dilation=[1], groups=1)
    x = rng.integers(0, 2, (2, 2, 9))
    m = convolution.as_csr(w, convolution.ConvGeometry.of(attrs))
    assert np.array_equal((m @ x.reshape(2, -1).T).T, conv(x, w, [2], [1], [1], 1).reshape(2, -1))


def _op(kind: str, in_shape, out_shape, **params) -> Op:
    return Op(kind, kind, tuple(in_shape), tuple(out_shape), params)


def _pool(kind: str, c: int, hw, k: int, s: int, p: int = 0) -> Op:
    out = tuple((n + 2 * p - k) // s + 1 for n in hw)
    return _op(kind, (c,) + tuple(hw), (c,) + out, kernel_size=np.array([k, k]), stride=np.array([s, s]),
               padding=np.array([p, p]))


def _conv(rng, c_in: int, c_out: int, hw, k: int, s: int, p: int, groups: int = 1) -> Op:
    out = tuple(convolution.out_size(n, k, s, p, 1) for n in hw)
    w = rng.normal(size=(c_out, c_in // groups, k, k))
    return _op("conv", (c_in,) + tuple(hw), (c_out,) + out, weight=w, stride=np.array([s, s]),
               padding=np.array([p, p]), dilation=np.array([1, 1]), groups=groups)


def _chain_output(ops: list[Op], x: np.ndarray) -> np.ndarray:
    for op in ops:
        x = apply(op, x)
    return x.reshape(x.shape[0], -1)


def _chains(rng):
    yield [_pool("sumpool", 3, (8, 8), 2, 2), _conv(rng, 3, 4, (4, 4), 3, 1, 1)]  # LIF -> pool -> conv
    yield [_pool("avgpool", 2, (9, 7), 2, 2), _conv(rng, 2, 2, (4, 3), 3, 1, 1, groups=2)]  # odd grid
    yield [_conv(rng, 2, 3, (10, 10), 3, 1, 1), _pool("sumpool", 3, (10, 10), 2, 2)]  # conv -> pool
    yield [_conv(rng, 2, 3, (11, 11), 5, 2, 2), _pool("sumpool", 3, (6, 6), 3, 1)]  # overlapping pool
    yield [_pool("sumpool", 2, (6, 6), 3, 1), _conv(rng, 2, 2, (4, 4), 3, 2, 2)]  # not exact: padding reaches input
    yield [_pool("sumpool", 4, (8, 8), 2, 2)]  # pooling alone: a depthwise kernel of ones
    yield [_conv(rng, 2, 4, (7, 7), 3, 1, 0), _conv(rng, 4, 2, (5, 5), 3, 2, 1)]


def test_folded_chains_compute_what_the_chain_computes():
    rng = np.random.default_rng(3)
    folded_any = refused_any = False
    for ops in _chains(rng):
        x = rng.integers(0, 3, (4,) + ops[0].in_shape).astype(np.float64)
        expected = _chain_output(ops, x)
        n_in = int(np.prod(ops[0].in_shape))
        assert np.allclose((_compose(ops, n_in) @ x.reshape(4, -1).T).T, expected)
        folded = fold(ops)
        if folded is None:
            refused_any = True
            continue
        folded_any = True
        got = conv(x, folded.weight, folded.stride, folded.padding, folded.dilation, folded.groups)
        assert got.shape[1:] == ops[-1].out_shape
        assert np.allclose(got.reshape(4, -1), expected)
    assert folded_any and refused_any


def test_pool_then_conv_folds_to_the_paper_cnn_shape():
    rng = np.random.default_rng(0)
    ops = [_pool("sumpool", 16, (16, 16), 2, 2), _conv(rng, 16, 8, (8, 8), 3, 1, 1)]
    folded = fold(ops)
    assert folded is not None
    assert folded.weight.shape == (8, 16, 6, 6) and folded.stride == (2, 2) and folded.padding == (2, 2)
    # each 2x2 block of the folded kernel repeats one weight of the original kernel
    assert np.array_equal(folded.weight[:, :, ::2, ::2], ops[1].params["weight"])
    assert np.array_equal(folded.weight[:, :, 1::2, 1::2], ops[1].params["weight"])
