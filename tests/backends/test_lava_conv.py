"""Conv connections in the Lava backend: Lava's ``Conv`` process where its fixed-point model computes
exactly what the artifact means, the expanded ``Sparse`` matrix otherwise; both bit-exact with the
emulator (spikes, u and v at every step), and the path each connection took is reported.

Random conv networks are compiled from NIR for loihi2 (strides 1-2 per axis, padding, groups,
non-square grids and kernels, a SumPool2d folded into the next conv), once in the netx format
(weight exponent 0: every conv runs as Conv) and once with the default quantization (exponents
above 0 run as Sparse), and each program runs in Lava twice: ``conv="auto"`` and ``conv="sparse"``.
Hand-made programs cover the 24-bit bound of Conv's sum, 1-D convs, a recurrent conv, delays and
the zoo's digits_conv. Needs the Lava environment (.venv-lava, ``make lava``); without it the Lava
runs are skipped (``NEURODEPLOY_REQUIRE_LAVA=1`` makes a missing environment fail).
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
from scipy import signal

from neurodeploy.backends import lava
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.compiler.quantize.fixed_point import LOIHI2
from neurodeploy.format.convolution import ConvGeometry, out_size
from neurodeploy.emulator.fixed_point import run as run_emulator
from neurodeploy.emulator.ops import conv as reference_conv
from neurodeploy.format.program import Program, QConnection, QPopulation

HAVE_LAVA = lava.lava_python().exists()
needs_lava = pytest.mark.skipif(not HAVE_LAVA, reason=f"{lava.lava_python()} not found: run `make lava` "
                                "(scripts/setup_lava.sh, needs Python 3.10) to run the Lava conv cross-checks")
ATTRS = {"format": LOIHI2.__dict__, "hop_latency": 1}
N_GRAPHS = 4
GAIN = 4.0  # weights large enough that both layers of the compiled networks fire


def _runner():
    """backends/lava/runner.py as a module (it imports Lava only inside the functions that build processes)."""
    spec = importlib.util.spec_from_file_location("lava_runner", Path(lava.__file__).with_name("runner.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- NIR graphs

def _cuba(shape: tuple[int, ...], rng: np.random.Generator) -> nir.CubaLIF:
    """Per-channel time constants and thresholds (a conv stays one kernel when its scale is per channel)."""
    per = lambda lo, hi: np.broadcast_to(rng.uniform(lo, hi, (shape[0], 1, 1)), shape).copy()  # noqa: E731
    return nir.CubaLIF(tau_syn=np.full(shape, 5e-3), tau_mem=per(0.01, 0.03), r=np.ones(shape),
                       v_leak=np.zeros(shape), v_threshold=per(0.4, 1.2), v_reset=np.zeros(shape), w_in=np.ones(shape))


def _conv_node(rng, c_in: int, hw: tuple[int, int], c_out: int, stride_max: int):
    """A random Conv2d on (c_in, *hw) with per-axis kernel, stride and padding; None if the output is empty."""
    groups = int(rng.choice([g for g in (1, 2) if c_in % g == 0 and c_out % g == 0]))
    k = tuple(int(rng.integers(1, 4)) for _ in range(2))
    stride = tuple(int(rng.integers(1, stride_max + 1)) for _ in range(2))
    padding = tuple(int(rng.integers(0, 2)) for _ in range(2))
    out = tuple(out_size(hw[d], k[d], stride[d], padding[d], 1) for d in range(2))
    if min(out) < 1:
        return None, None
    weight = rng.normal(0.5, 1.0, (c_out, c_in // groups) + k) * GAIN
    node = nir.Conv2d(input_shape=hw, weight=weight, stride=stride, padding=padding, dilation=(1, 1),
                      groups=groups, bias=np.zeros(c_out))
    return node, (c_out,) + out


def conv_graph(seed: int) -> nir.NIRGraph:
    """input -> conv1 -> lif1 -> sumpool 2x2 -> conv2 -> lif2 (pool folded into conv2 by the compiler);
    conv1's output grid is even, so the fold is exact and conv2 stays one (strided) conv."""
    rng = np.random.default_rng(seed)
    while True:
        c0, hw = int(rng.integers(1, 3)), (int(rng.integers(5, 10)), int(rng.integers(5, 10)))
        conv1, s1 = _conv_node(rng, c0, hw, 2 * int(rng.integers(1, 3)), 2)
        if s1 is not None and s1[1] % 2 == 0 and s1[2] % 2 == 0 and min(s1[1:]) >= 2:
            conv2, s2 = _conv_node(rng, s1[0], (s1[1] // 2, s1[2] // 2), 2 * int(rng.integers(1, 3)), 1)
            if s2 is not None:
                break
    nodes = {"input": nir.Input(input_type=np.array((c0,) + hw)), "conv1": conv1, "lif1": _cuba(s1, rng),
             "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "conv2": conv2, "lif2": _cuba(s2, rng), "output": nir.Output(output_type=np.array(s2))}
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool1"), ("pool1", "conv2"), ("conv2", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": 1e-3}, type_check=False)


def compiled_program(seed: int, netx_format: bool) -> Program:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = Options(target="loihi2", allow_degraded=True, netx_format=netx_format)
        return compile_model(conv_graph(seed), options).program


def spikes_in(seed: int, program: Program, batch: int = 2, steps: int = 25, density: float = 0.35) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    shape = next(iter(program.inputs.values()))
    return (rng.random((batch, steps) + tuple(shape)) < density).astype(np.int64)


# ----------------------------------------------------------------------------- hand-made programs

def _pop(name: str, shape: tuple[int, ...], vth: int, rng: np.random.Generator, spiking: bool = True) -> QPopulation:
    n = int(np.prod(shape))
    params = {"du": np.full(n, int(rng.integers(200, 4096))), "dv": rng.integers(50, 1500, n),
              "vth": np.full(n, vth if spiking else 131071), "bias_mant": rng.integers(-20, 40, n),
              "bias_exp": np.full(n, 3), "v_init": np.zeros(n, dtype=np.int64)}
    params = {k: np.asarray(v, dtype=np.int64).reshape(shape) for k, v in params.items()}
    return QPopulation(name, "cuba_lif", "LIF" if spiking else "LI", shape, spiking, np.ones(shape), params)


def _conv(name: str, source: str, target: str, weight: np.ndarray, in_shape, stride, padding, dilation=None,
          groups: int = 1, weight_exp: int = 0, delay: int = 0, recurrent: bool = False) -> QConnection:
    dims = len(in_shape) - 1
    dilation = dilation or [1] * dims
    spatial = [out_size(in_shape[1 + d], weight.shape[2 + d], stride[d], padding[d], dilation[d]) for d in range(dims)]
    out_shape = (weight.shape[0],) + tuple(spatial)
    attrs = {"weight_exp": weight_exp, "sign_mode": "mixed" if weight.min() < 0 < weight.max() else
             ("inh" if weight.max() <= 0 else "exc"), "stride": list(stride), "padding": list(padding),
             "dilation": list(dilation), "groups": groups, "in_shape": list(in_shape), "out_shape": list(out_shape),
             "synapses": int(np.count_nonzero(weight)), "delay": delay}
    return QConnection(name, source, target, "conv", int(np.prod(in_shape)), int(np.prod(out_shape)), recurrent,
                       {"weight": weight.astype(np.int64)}, attrs)


def _even(rng, shape) -> np.ndarray:
    """Mixed-sign mantissas Lava keeps unchanged (even values in -256..254)."""
    return 2 * rng.integers(-60, 100, shape)


def bound_program(count: int) -> tuple[Program, dict]:
    """3x3 kernel of 255 on a 1x4x4 graded input: the centre output's worst sum is 9 * 255 * count,
    at the 24-bit bound of Conv's sum for count 3655 (8,388,225) and over it for 3656."""
    rng = np.random.default_rng(7)
    conn = _conv("c", "in", "out", np.full((1, 1, 3, 3), 255), (1, 4, 4), [1, 1], [1, 1])
    pop = _pop("out", (1, 4, 4), 131071, rng, spiking=False)
    x = np.zeros((1, 12, 1, 4, 4), dtype=np.int64)
    x[0, 2] = count  # every input at the peak: the sum reaches the worst case
    x[0, 5, 0, 1:3, 1:3] = count
    return Program("loihi2", {"in": (1, 4, 4)}, [pop], [conn], {"out": "out"}, dict(ATTRS)), {"in": x}


def one_d_program() -> tuple[Program, dict]:
    """1-D convs (height 1 in Lava): stride 2, padding 1, then grouped and dilated."""
    rng = np.random.default_rng(8)
    c1 = _conv("c1", "in", "a", _even(rng, (4, 2, 3)), (2, 11), [2], [1])
    c2 = _conv("c2", "a", "b", _even(rng, (2, 2, 2)), (4, 6), [1], [1], dilation=[2], groups=2)
    pops = [_pop("a", (4, 6), 300, rng), _pop("b", tuple(c2.attrs["out_shape"]), 300, rng)]
    x = (rng.random((2, 30, 2, 11)) < 0.4).astype(np.int64)
    return Program("loihi2", {"in": (2, 11)}, pops, [c1, c2], {"out": "b"}, dict(ATTRS)), {"in": x}


def recurrent_program() -> tuple[Program, dict]:
    """Non-square grid and kernel, dilation: an input conv, a recurrent conv onto the same population and
    a dense readout, all arriving at shared ports."""
    rng = np.random.default_rng(9)
    c_in = _conv("c_in", "in", "a", _even(rng, (3, 2, 3, 2)), (2, 5, 7), [1, 2], [1, 0], dilation=[2, 1])
    shape = tuple(c_in.attrs["out_shape"])
    c_rec = _conv("c_rec", "a", "a", _even(rng, (3, 1, 3, 3)), shape, [1, 1], [1, 1], groups=3, recurrent=True)
    a = _pop("a", shape, 200, rng)
    n = int(np.prod(shape))
    b = _pop("b", (4,), 131071, rng, spiking=False)
    dense = QConnection("d", "a", "b", "dense", n, 4, False, {"weight": _even(rng, (4, n))},
                        {"weight_exp": 1, "sign_mode": "mixed", "delay": 0})
    x = (rng.random((2, 30, 2, 5, 7)) < 0.3).astype(np.int64) * rng.integers(1, 4, (2, 30, 2, 5, 7))
    return Program("loihi2", {"in": (2, 5, 7)}, [a, b], [c_in, c_rec, dense], {"out": "b"}, dict(ATTRS)), {"in": x}


def delayed_program() -> tuple[Program, dict]:
    """weight_exp 0 but a delay of 3 steps: Conv has no delay line, so the connection runs as DelaySparse."""
    rng = np.random.default_rng(10)
    conn = _conv("c", "in", "a", _even(rng, (2, 1, 3, 3)), (1, 6, 6), [1, 1], [1, 1], delay=3)
    pop = _pop("a", tuple(conn.attrs["out_shape"]), 150, rng)
    x = (rng.random((1, 30, 1, 6, 6)) < 0.4).astype(np.int64)
    return Program("loihi2", {"in": (1, 6, 6)}, [pop], [conn], {"out": "a"}, dict(ATTRS)), {"in": x}


def zoo_digits_conv() -> tuple[Program, dict] | None:
    """The zoo's digits_conv in the netx format (weight exponent 0) on 2 test digits, if present."""
    from neurodeploy import models
    from neurodeploy.models import data

    path = models.paths().get("digits_conv")
    if path is None or not path.is_file():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = compile_model(str(path), Options(target="loihi2", allow_degraded=True, netx_format=True)).program
    return program, data.test_set("digits_conv")[0][:2]


# ----------------------------------------------------------------------------- comparing

def emulate(program: Program, x, record=("v", "u")) -> dict:
    """The numpy reference kernel (emulator/fixed_point.py), the oracle for both Lava paths."""
    return run_emulator(program, x, record=record, fast=False)


def _compare(label: str, ours: dict, theirs: dict) -> list[str]:
    if sorted(ours) != sorted(theirs):
        return [f"{label}: keys differ: emulator {sorted(ours)} lava {sorted(theirs)}"]
    problems = []
    for key in sorted(ours):
        diff = np.argwhere(ours[key] != theirs[key]) if ours[key].shape == theirs[key].shape else [[-1, -1]]
        if len(diff):
            problems.append(f"{label}: {key} differs at {len(diff)} values, first at (sample, step) "
                            f"{tuple(int(i) for i in diff[0][:2])}")
    return problems


def _run_both(cases: list[tuple[str, Program, dict]]) -> dict[str, list]:
    """Each case in Lava with conv="auto" and conv="sparse", compared with the emulator; the paths taken."""
    jobs = [(program, x) for _, program, x in cases]
    results = {policy: lava.run_many(jobs, record=("v", "u"), conv=policy) for policy in ("auto", "sparse")}
    problems = []
    for i, (label, program, x) in enumerate(cases):
        ours = emulate(program, x, record=("v", "u"))
        for policy, outs in results.items():
            problems += _compare(f"{label} [{policy}]", ours, outs[i])
    assert not problems, "\n".join(problems)
    return {policy: [lava.conv_paths(out) for out in outs] for policy, outs in results.items()}


def _spike_counts(program: Program, x) -> dict[str, int]:
    return {k: int(v.sum()) for k, v in emulate(program, x, record=()).items()}


# ----------------------------------------------------------------------------- Lava runs

@needs_lava
def test_compiled_conv_networks_bit_exact_on_both_paths():
    """netx-format compiles: every conv (the pool folded into conv2 included) runs as Conv under "auto";
    default compiles: a conv runs as Conv exactly when its weight exponent is 0. Both paths == emulator."""
    cases, expected = [], []
    for seed in range(N_GRAPHS):
        for netx_format in (True, False):
            program = compiled_program(seed, netx_format)
            convs = {c.name: c for c in program.connections if c.kind == "conv"}
            assert set(convs) == {"conv1", "pool1/conv2"}, [(c.name, c.kind) for c in program.connections]
            assert all(s % 2 == 0 for s in convs["pool1/conv2"].attrs["stride"])  # the pool's stride 2, folded
            if netx_format:
                assert all(c.attrs["weight_exp"] == 0 for c in convs.values())
            expected.append({name: "Conv" if c.attrs["weight_exp"] == 0 else "Sparse" for name, c in convs.items()})
            cases.append((f"seed {seed} {'netx' if netx_format else 'default'}", program, spikes_in(seed, program)))
    paths = _run_both(cases)
    assert paths["auto"] == expected
    assert all(set(p.values()) == {"Sparse"} for p in paths["sparse"])
    assert sum(list(p.values()).count("Sparse") for p in paths["auto"]) > 0  # the default compile reaches Sparse
    counts = [_spike_counts(p, x) for _, p, x in cases]
    assert min(sum(c[f"spikes.{pop}"] for c in counts) for pop in ("lif1", "lif2")) > 500  # no silent layer


@needs_lava
def test_hand_made_conv_programs_bit_exact_on_both_paths():
    """24-bit bound of Conv's sum (at it: Conv; one count over: Sparse), 1-D convs, a recurrent conv beside
    a dense connection on shared ports, and a delayed conv."""
    named = [("bound_at", *bound_program(3655)), ("bound_over", *bound_program(3656)), ("one_d", *one_d_program()),
             ("recurrent", *recurrent_program()), ("delayed", *delayed_program())]
    zoo = zoo_digits_conv()
    if zoo is not None:
        named.append(("digits_conv", *zoo))
    paths = _run_both(named)["auto"]
    by_label = dict(zip([label for label, _, _ in named], paths))
    assert by_label["bound_at"] == {"c": "Conv"}
    assert by_label["bound_over"] == {"c": "Sparse"}
    assert by_label["one_d"] == {"c1": "Conv", "c2": "Conv"}
    assert by_label["recurrent"] == {"c_in": "Conv", "c_rec": "Conv"}
    assert by_label["delayed"] == {"c": "DelaySparse"}
    if zoo is not None:
        assert by_label["digits_conv"] and set(by_label["digits_conv"].values()) == {"Conv"}
    for label, program, x in named:
        assert min(_spike_counts(program, x).values(), default=1) > 0, label


@needs_lava
def test_run_reports_paths_with_reasons():
    program, x = bound_program(3656)
    out = lava.run(program, x, record=())
    entry = out.summary["connections"]["c"]
    assert entry["process"] == "Sparse" and "2^23 - 1" in entry["reason"]
    assert lava.summary_lines(out) == [f"conv connection 'c' ran as Lava Sparse ({entry['reason']})"]
    program, x = bound_program(1)
    out = lava.run(program, x, record=())
    assert lava.summary_lines(out) == ["conv connection 'c' ran as Lava Conv"]


# ----------------------------------------------------------------------------- without Lava

def test_lava_environment_present_when_required():
    """CI sets NEURODEPLOY_REQUIRE_LAVA=1 after `make lava`: a missing environment then fails, not skips."""
    if os.environ.get("NEURODEPLOY_REQUIRE_LAVA") and not HAVE_LAVA:
        pytest.fail(f"NEURODEPLOY_REQUIRE_LAVA is set but {lava.lava_python()} does not exist: run `make lava`")


def test_conv_policy_is_validated():
    with pytest.raises(lava.LavaBackendError, match="conv='dense'"):
        lava.run(bound_program(1)[0], np.zeros((1, 2, 1, 4, 4)), conv="dense")


def _lava_style_conv(x_whc: np.ndarray, kernel: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """What lava.proc.conv.utils.conv_scipy computes: a true convolution over (X, Y, C) with a
    (C_out, kx, ky, C_in/groups) kernel, dilated, zero-padded, strided; fields in (x, y) order."""
    c_out, kx, ky, c_local = kernel.shape
    dil = np.zeros((c_out, dilation[0] * (kx - 1) + 1, dilation[1] * (ky - 1) + 1, c_local), dtype=np.int64)
    dil[:, ::dilation[0], ::dilation[1], :] = kernel
    padded = np.pad(x_whc, ((padding[0],) * 2, (padding[1],) * 2, (0, 0)))
    out = None
    per_out, per_in = c_out // groups, x_whc.shape[2] // groups
    for o in range(c_out):
        g = o // per_out
        acc = sum(signal.convolve2d(padded[:, :, g * per_in + c], dil[o, :, :, c], mode="valid")
                  for c in range(c_local))[::stride[0], ::stride[1]]
        out = np.zeros(acc.shape + (c_out,), dtype=np.int64) if out is None else out
        out[:, :, o] = acc
    return out


def test_lava_kernel_layout_is_the_emulators_cross_correlation():
    """The flipped, transposed kernel under Lava's convolution (re-done with scipy, as Lava does) gives the
    emulator's cross-correlation on non-square grids, kernels, strides, paddings, dilations and groups."""
    runner = _runner()
    rng = np.random.default_rng(3)
    for case in range(60):
        groups = int(rng.integers(1, 3))
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        stride, padding, dilation = ([int(rng.integers(lo, hi)) for _ in range(2)]
                                     for lo, hi in ((1, 3), (0, 3), (1, 3)))
        hw = (int(rng.integers(3, 9)), int(rng.integers(3, 9)))
        if min(out_size(hw[d], k[d], stride[d], padding[d], dilation[d]) for d in range(2)) < 1:
            continue
        weight = rng.integers(-255, 256, (c_out, c_in // groups) + k)
        conn = _conv("c", "in", "out", weight, (c_in,) + hw, stride, padding, dilation, groups)
        geom = ConvGeometry.of(conn.attrs)
        x = rng.integers(-3, 4, (c_in,) + hw)
        want = reference_conv(x[None], weight, stride, padding, dilation, groups)[0]
        got = _lava_style_conv(x.transpose(2, 1, 0), runner.lava_conv_kernel(weight, geom), stride[::-1],
                               padding[::-1], dilation[::-1], groups)
        np.testing.assert_array_equal(got.transpose(2, 1, 0), want, err_msg=str(case))


def test_worst_sum_is_the_largest_row_of_the_expanded_matrix():
    runner = _runner()
    rng = np.random.default_rng(4)
    for _ in range(30):
        weight = rng.integers(-255, 256, (2, 1, int(rng.integers(1, 4)), int(rng.integers(1, 4))))
        conn = _conv("c", "in", "out", weight, (2, int(rng.integers(3, 7)), int(rng.integers(3, 7))),
                     [int(rng.integers(1, 3))] * 2, [int(rng.integers(0, 3))] * 2, groups=2)
        matrix = abs(runner.conv_matrix(conn))
        assert runner.conv_worst_sum(conn.arrays["weight"], runner.conv_geometry(conn)) == matrix.sum(axis=1).max()


@pytest.mark.parametrize("change, peak, single, policy, on_chip, reason", [
    ({}, 1, True, "auto", False, None),
    ({}, 3655, True, "auto", False, None),
    ({}, 3656, True, "auto", False, "worst per-step sum 8390520 > 2^23 - 1"),
    ({"weight_exp": 1}, 1, True, "auto", False, "weight_exp 1"),
    ({"delay": 2}, 1, True, "auto", False, "delay 2"),
    ({"padding": [128, 1]}, 1, True, "auto", False, "padding 128 beyond Conv's int8 fields"),
    ({}, 1, False, "auto", False, "split into several LIF processes"),
    ({}, 1, True, "sparse", False, "conv=sparse asked for"),
    ({}, 1, True, "auto", True, "on a chip"),
])
def test_refusal_reasons(change, peak, single, policy, on_chip, reason):
    runner = _runner()
    conn = bound_program(1)[0].connections[0]
    conn.attrs.update(change)
    geom = ConvGeometry.of(conn.attrs)
    got = runner.conv_process_refusal(conn, geom, peak, single, policy, on_chip)
    assert got is None if reason is None else reason in got, got


def test_unrepresentable_kernel_is_left_to_the_sparse_path():
    runner = _runner()
    conn = bound_program(1)[0].connections[0]
    conn.arrays["weight"] = conn.arrays["weight"] - 256  # -1 in an inhibitory kernel: fine; odd mixed: not
    conn.arrays["weight"][0, 0, 0, 0] = 3
    conn.attrs["sign_mode"] = "mixed"
    got = runner.conv_process_refusal(conn, ConvGeometry.of(conn.attrs), 1, True, "auto", False)
    assert "8-bit" in got
