"""Event-driven convolution in the compiled kernels (emulator/numba_kernels.py ``conv_events``):
the fast kernels give the numpy kernels' integers on random conv programs, and a DVS-sized
network runs with memory O(neurons + kernel) instead of O(synapses).

Programs are built by hand (random geometry, weights and neuron parameters drawn around those
the compiler emits for a small network), so every conv form is covered: strides 1-3, padding
0-2, dilation 1-2, groups 1, 2 and depthwise, 1-D and 2-D, uniform delays, a conv feeding a
conv, two convs from one source, a recurrent conv, graded input counts.

    python tests/emulator/test_emulator_conv.py [--target loihi2] [--batch 32] [--steps 100]

measures the speed of a DVS-sized network (2x128x128 input, conv 16@5x5 s2, 32@3x3 s2,
64@3x3 s2, dense 11) at 10% input events.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from neurodeploy.format.convolution import ConvGeometry, out_size, synapse_count
from neurodeploy.emulator import fixed_point, fixed_point_fast, spinnaker, spinnaker_fast
from neurodeploy.format.program import Program, QConnection, QPopulation

from helpers.conv_programs import population, template


# ----------------------------------------------------------------------------- building programs

def words(target: str, shape: tuple[int, ...], fan_in: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random weights for ``shape``: signed mantissas (fixed point) or uint16 words with synapse
    types (spinnaker), scaled so that ``fan_in`` active inputs drive the template's neurons."""
    gain = np.sqrt(12.0 / max(fan_in, 1.0))
    if target == "spinnaker":
        w = np.abs(rng.normal(1500, 1500, shape)) * gain * (rng.random(shape) < 0.9)
        types = (rng.random(shape) < 0.25).astype(np.uint8)
        return {"weight": np.minimum(w, 0xFFFF).astype(np.uint16), "synapse_type": types}
    sign = np.where(rng.random(shape) < 0.25, -1, 1) * (rng.random(shape) < 0.9)
    mant = np.minimum(np.abs(rng.normal(60, 60, shape)) * gain, 255) * sign
    return {"weight": mant.astype(np.int64)}


def conv_shape(in_shape: tuple[int, ...], geometry: dict) -> tuple[int, ...]:
    """The output shape (C_out, [H,] W) of a conv with ``geometry`` (1-D when in_shape is (C, W))."""
    spatial = [out_size(n, k, s, p, d) for n, k, s, p, d in zip(in_shape[1:], geometry["kernel"], geometry["stride"],
                                                                 geometry["padding"], geometry["dilation"])]
    return (geometry["c_out"], *spatial)


def conv(target: str, name: str, source: QPopulation | tuple, target_pop: QPopulation, geometry: dict,
         rng: np.random.Generator, delay: int = 0, recurrent: bool = False, active: float | None = None) -> QConnection:
    """A conv connection from ``source`` (a population, or (input name, shape)) in the target's
    format, weights scaled for a fraction ``active`` of its inputs sending (default: all of an
    input, a fifth of a population)."""
    src_name, in_shape = (source.name, source.shape) if isinstance(source, QPopulation) else source
    groups = geometry["groups"]
    kernel = (geometry["c_out"], in_shape[0] // groups, *geometry["kernel"])
    if active is None:
        active = 1.0 if isinstance(source, tuple) else 0.2
    arrays = words(target, kernel, active * np.prod(kernel[1:]), rng)
    attrs = {k: list(geometry[k]) for k in ("stride", "padding", "dilation")}
    attrs.update(in_shape=list(in_shape), out_shape=list(target_pop.shape), groups=groups, delay=delay)
    attrs["synapses"] = synapse_count(arrays["weight"], ConvGeometry.of(attrs))
    if target == "spinnaker":
        attrs["ring_buffer_shift"] = list(template(target).attrs["ring_buffer_shift"]["lif"])
    else:
        attrs.update(weight_exp=int(template(target).connections[0].attrs["weight_exp"]), sign_mode="mixed")
    return QConnection(name, src_name, target_pop.name, "conv", int(np.prod(in_shape)), target_pop.size, recurrent,
                       arrays, attrs)


def dense(target: str, name: str, source: QPopulation, target_pop: QPopulation, rng: np.random.Generator,
          delay: int = 0) -> QConnection:
    """A dense (fixed point) or fully connected sparse (spinnaker) connection."""
    n_in, n_out = source.size, target_pop.size
    arrays = words(target, (n_out, n_in), n_in // 4, rng)
    if target == "spinnaker":
        arrays["indices"] = np.tile(np.arange(n_in, dtype=np.int64), n_out)
        arrays["indptr"] = np.arange(n_out + 1, dtype=np.int64) * n_in
        arrays = {k: (v.reshape(-1) if k in ("weight", "synapse_type") else v) for k, v in arrays.items()}
        attrs = {"ring_buffer_shift": [15, 14], "delay": delay}
        return QConnection(name, source.name, target_pop.name, "sparse", n_in, n_out, False, arrays, attrs)
    attrs = {"weight_exp": int(template(target).connections[0].attrs["weight_exp"]), "sign_mode": "mixed",
             "delay": delay}
    return QConnection(name, source.name, target_pop.name, "dense", n_in, n_out, False, arrays, attrs)


def assemble(target: str, inputs: dict[str, tuple[int, ...]], pops: list[QPopulation],
             conns: list[QConnection]) -> Program:
    """A program in the template's format: each spinnaker population gets the template's ring-buffer shifts."""
    attrs = copy.deepcopy(template(target).attrs)
    if target == "spinnaker":
        shift = attrs["ring_buffer_shift"]["lif"]
        attrs["ring_buffer_shift"] = {p.name: list(shift) for p in pops}
    return Program(target, dict(inputs), pops, conns, {"output": pops[-1].name}, attrs)


def random_geometry(rng: np.random.Generator, in_shape: tuple[int, ...], *, same: bool = False) -> dict:
    """A random valid conv geometry on ``in_shape`` (C, [H,] W); ``same``: stride 1 and an output of
    the input's shape (for a recurrent conv)."""
    c_in, spatial = in_shape[0], in_shape[1:]
    for _ in range(100):
        groups = int(rng.choice([g for g in (1, 2, c_in) if c_in % g == 0]))
        c_out = c_in if same else groups * int(rng.integers(1, 4))
        kernel = tuple(int(rng.choice([1, 3])) if same else int(rng.integers(1, 5)) for _ in spatial)
        dilation = tuple(1 if same else int(rng.integers(1, 3)) for _ in spatial)
        stride = tuple(1 if same else int(rng.integers(1, 4)) for _ in spatial)
        padding = tuple((k - 1) // 2 if same else int(rng.integers(0, 3)) for k in kernel)
        geometry = dict(c_out=c_out, kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
        if min(conv_shape(in_shape, geometry)[1:]) >= 1:
            return geometry
    raise AssertionError("no valid geometry")


def random_program(target: str, seed: int, dims: int) -> Program:
    """input -> conv -> p1 (+ recurrent conv) -> conv -> p2 -> dense -> out, and input -> conv -> p3:
    two convs from one input and from p1, convs from an input and from populations, delays."""
    rng = np.random.default_rng(seed)
    c_in = int(rng.choice([2, 4]))
    in_shape = (c_in,) + tuple(int(rng.integers(5, 12)) for _ in range(dims))
    min_delay = 1 if target == "spinnaker" else 0
    kinds = ("LIF", "CubaLIF") if target == "spinnaker" else ("LIF",)
    kind = lambda: str(rng.choice(kinds))  # noqa: E731  IF_curr_delta or IF_curr_exp per population
    g1 = random_geometry(rng, in_shape)
    p1 = population(target, "p1", conv_shape(in_shape, g1), rng, kind())
    g2 = random_geometry(rng, p1.shape)
    p2 = population(target, "p2", conv_shape(p1.shape, g2), rng, kind())
    g3 = random_geometry(rng, in_shape)
    p3 = population(target, "p3", conv_shape(in_shape, g3), rng, kind())
    out = population(target, "out", (5,), rng)
    delay = lambda: int(rng.integers(min_delay, min_delay + 4))  # noqa: E731
    conns = [conv(target, "c1", ("input", in_shape), p1, g1, rng, delay()),
             conv(target, "c2", p1, p2, g2, rng, delay()),
             conv(target, "c3", ("input", in_shape), p3, g3, rng, delay()),
             dense(target, "d", p2, out, rng, delay())]
    if rng.random() < 0.7:
        rec = conv(target, "rec", p1, p1, random_geometry(rng, p1.shape, same=True), rng, delay(), recurrent=True)
        rec.arrays["weight"] = (rec.arrays["weight"] // 4).astype(rec.arrays["weight"].dtype)
        conns.append(rec)
    return assemble(target, {"input": in_shape}, [p1, p2, p3, out], conns)


def counts(target: str, shape: tuple[int, ...], rng: np.random.Generator, rate: float = 0.3) -> np.ndarray:
    """Graded input: spike counts 0-3 per step (inputs are whole numbers >= 0 on every target)."""
    return rng.integers(0, 4, size=shape) * (rng.random(shape) < rate)


def lively(target: str, program: Program, x: np.ndarray, names: tuple[str, ...] = ("p1", "p2", "p3")) -> Program:
    """``program`` with the thresholds of the named populations lowered (x 1/4, up to 4 times, by
    the numpy kernel's spikes) until each fires: a silent population would test none of its convs."""
    module, key = (spinnaker, "v_thresh") if target == "spinnaker" else (fixed_point, "vth")
    for _ in range(4):
        spikes = module.run(program, x[:1], record=(), fast=False)
        silent = [name for name in names if not spikes[f"spikes.{name}"].any()]
        if not silent:
            break
        for name in silent:
            params = program.population(name).params
            params[key] = np.maximum(params[key] // 4, 1)
    return program


# ----------------------------------------------------------------------------- checks

def run_both(target: str, program: Program, x: np.ndarray) -> tuple[dict, dict, object]:
    """(fast traces, numpy traces, the compiled kernel that ran) on fresh copies of ``program``."""
    module, fast_module, record = ((spinnaker, spinnaker_fast, ("v", "i")) if target == "spinnaker"
                                   else (fixed_point, fixed_point_fast, ("v", "u")))
    program = copy.deepcopy(program)
    program.__dict__.pop("_fast_kernel", None)
    slow = module.run(program, x, record=record, fast=False, overflow=True)  # the overflow counters too
    assert program.__dict__.get("_fast_kernel") is None  # the numpy kernel ran
    fast = module.run(program, x, record=record, fast=True, overflow=True)
    compiled = program.__dict__["_fast_kernel"][1]
    assert isinstance(compiled, fast_module.Compiled)  # the compiled kernel ran
    return fast, slow, compiled


def convs_in(compiled) -> int:
    """Conv entries of the compiled kernel's conv table."""
    return compiled.convs[2].shape[0]


def assert_same(fast: dict, slow: dict) -> None:
    assert set(fast) == set(slow)
    for key in slow:
        assert fast[key].dtype == slow[key].dtype, key
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", ["loihi2", "emulator", "spinnaker"])
def test_random_conv_programs_match_the_numpy_kernel(target, seed, dims):
    rng = np.random.default_rng(seed)
    program = random_program(target, 10 * seed + dims, dims)
    x = counts(target, (3, 40) + program.inputs["input"], rng)
    program = lively(target, program, x)
    fast, slow, compiled = run_both(target, program, x)
    n_conv = sum(c.kind == "conv" for c in program.connections)
    assert convs_in(compiled) == n_conv  # delivered from kernels
    assert len(compiled.synapses[10]) <= program.connections[3].arrays["weight"].size  # only the dense synapses
    for name in ("p1", "p2", "p3"):
        assert slow[f"spikes.{name}"].any(), f"no spikes in {name}: the comparison would not test its convs"
    assert_same(fast, slow)


@pytest.mark.parametrize("target", ["loihi2", "emulator", "spinnaker"])
def test_depthwise_and_grouped_convs_with_large_strides_and_dilations(target):
    """Fixed geometries at the edges of the ranges: depthwise 3x3 with dilation 2 and padding 2,
    stride 3 with a kernel smaller than the stride (some inputs feed nothing), 2 groups, and
    recurrent convs with one sign only (spinnaker: excitatory words only, inhibitory only)."""
    rng = np.random.default_rng(7)
    in_shape = (4, 11, 9)
    depthwise = dict(c_out=8, kernel=(3, 3), stride=(1, 2), padding=(2, 1), dilation=(2, 2), groups=4)
    sparse_taps = dict(c_out=6, kernel=(2, 1), stride=(3, 3), padding=(0, 2), dilation=(1, 1), groups=2)
    same = dict(c_out=6, kernel=(3, 1), stride=(1, 1), padding=(1, 0), dilation=(1, 1), groups=3)
    p1 = population(target, "p1", conv_shape(in_shape, depthwise), rng)
    p2 = population(target, "p2", conv_shape(p1.shape, sparse_taps), rng)
    low = 1 if target == "spinnaker" else 0
    conns = [conv(target, "c1", ("input", in_shape), p1, depthwise, rng, low),
             conv(target, "c2", p1, p2, sparse_taps, rng, low + 2)]
    for sign, name in ((1, "excite"), (-1, "inhibit")):
        rec = conv(target, name, p2, p2, same, rng, low, recurrent=True)
        w = rec.arrays["weight"]
        if target == "spinnaker":
            rec.arrays["synapse_type"] = np.full(w.shape, int(sign < 0), dtype=np.uint8)
        else:
            rec.arrays["weight"] = sign * np.abs(w) // 2
        conns.append(rec)
    program = assemble(target, {"input": in_shape}, [p1, p2], conns)
    x = counts(target, (2, 50) + in_shape, rng, rate=0.5)
    fast, slow, compiled = run_both(target, program, x)
    assert convs_in(compiled) == 4 and len(compiled.synapses[10]) == 0  # no synapse lists at all
    if target == "spinnaker":
        assert sorted(compiled.folds[4].tolist()) == [0, 1, 3, 3]  # excitatory only, inhibitory only, packed
    assert slow["spikes.p1"].any() and slow["spikes.p2"].any()
    assert_same(fast, slow)


@pytest.mark.parametrize("target", ["loihi2", "emulator", "spinnaker"])
def test_conv_sums_beyond_the_targets_ranges(target):
    """Per-step conv sums beyond int32 (Loihi wraps them, the generic profile saturates them) and
    beyond SpiNNaker's 16-bit ring buffer (clipped at 0xFFFF): the fold must treat each
    connection's sum as the numpy kernel does."""
    program = random_program(target, 5, 2)
    for conn in program.connections:
        if target == "spinnaker":
            conn.arrays["weight"] = np.where(conn.arrays["weight"] > 0, np.uint16(60000), np.uint16(0))
        else:
            conn.attrs["weight_exp"] = 22  # 255 << 22 is 2^30: a few inputs overflow int32
    x = counts(target, (2, 30) + program.inputs["input"], np.random.default_rng(3), rate=0.6)
    fast, slow, compiled = run_both(target, program, x)
    assert convs_in(compiled) == sum(c.kind == "conv" for c in program.connections)
    assert_same(fast, slow)


@pytest.mark.parametrize("seed", range(3))
def test_spinnaker_convs_beyond_the_packed_fan_in_keep_one_kernel_per_synapse_type(seed, monkeypatch):
    """Both synapse types share one word (inhibitory << 32) up to PACKED_FAN_IN synapses per
    neuron; beyond it, one kernel per type. Both give the numpy kernel's integers, with counts
    and words large enough to overflow the ring buffer."""
    program = random_program("spinnaker", 100 + seed, 2)
    x = counts("spinnaker", (2, 30) + program.inputs["input"], np.random.default_rng(seed), rate=0.5) * 40
    program = lively("spinnaker", program, x)
    for fan_in, code in ((spinnaker_fast.PACKED_FAN_IN, spinnaker_fast.PACKED), (0, 2)):
        monkeypatch.setattr(spinnaker_fast, "PACKED_FAN_IN", fan_in)
        fast, slow, compiled = run_both("spinnaker", program, x)
        assert code in compiled.folds[4].tolist()
        assert_same(fast, slow)


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_groups_of_samples_and_chunks_of_steps_continue_conv_rings(target, monkeypatch):
    """Conv rings (channels-last) carry over between kernel calls and groups of samples."""
    program = random_program(target, 3, 2)
    x = counts(target, (4, 30) + program.inputs["input"], np.random.default_rng(1))
    module, fast_module = (spinnaker, spinnaker_fast) if target == "spinnaker" else (fixed_point, fixed_point_fast)
    whole = module.run(copy.deepcopy(program), x, record=("v",))
    monkeypatch.setattr(fast_module, "PROGRESS_STEPS", 7)
    monkeypatch.setattr(fast_module, "STATE_BUDGET", 1)
    chunked = module.run(copy.deepcopy(program), x, record=("v",), progress=True)
    assert whole["spikes.p2"].any()
    assert_same(chunked, whole)


# ----------------------------------------------------------------------------- a DVS-sized network

DVS_LAYERS = (dict(c_out=16, kernel=(5, 5), stride=(2, 2), padding=(2, 2), dilation=(1, 1), groups=1),
              dict(c_out=32, kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1),
              dict(c_out=64, kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1))


ACTIVE = {"loihi2": 4.0, "emulator": 4.0, "spinnaker": 2.0}
"""Weights of the DVS-sized network scaled down (as if 4x or 2x the inputs sent): 5-15% of the
neurons of each conv layer fire per step at 10% input events."""


def dvs_network(target: str, seed: int = 0) -> Program:
    """2x128x128 events -> conv 16@5x5 s2 -> LIF -> conv 32@3x3 s2 -> LIF -> conv 64@3x3 s2 -> LIF
    -> dense -> 11 LIF: 114,699 neurons, about 11M conv synapses."""
    rng = np.random.default_rng(seed)
    source, pops, conns = ("input", (2, 128, 128)), [], []
    delay = 1 if target == "spinnaker" else 0
    for k, geometry in enumerate(DVS_LAYERS):
        in_shape = source[1] if isinstance(source, tuple) else source.shape
        pop = population(target, f"l{k}", conv_shape(in_shape, geometry), rng)
        conns.append(conv(target, f"conv{k}", source, pop, geometry, rng, delay, active=ACTIVE[target]))
        pops.append(pop)
        source = pop
    pops.append(population(target, "out", (11,), rng))
    conns.append(dense(target, "fc", source, pops[-1], rng, delay))
    return assemble(target, {"input": (2, 128, 128)}, pops, conns)


def array_bytes(value) -> int:
    """Bytes of every numpy array held by ``value`` (an object's attributes, tuples, lists)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(array_bytes(v) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, Program):
        return sum(array_bytes(v) for v in vars(value).values())
    return 0


@pytest.mark.parametrize("target", ["loihi2", "emulator", "spinnaker"])
def test_a_dvs_sized_conv_network_runs_in_bounded_memory(target):
    """About 11M conv synapses: the compiled kernel holds per-neuron parameters, 95 kB of kernels
    and tap tables, not synapse lists (an identity basis of this input alone would be 2^15 x 2^15
    int64 = 8 GiB; synapse lists at least 16 B per synapse)."""
    program = dvs_network(target)
    assert sum(p.size for p in program.populations) > 100_000
    module, fast_module = (spinnaker, spinnaker_fast) if target == "spinnaker" else (fixed_point, fixed_point_fast)
    x = (np.random.default_rng(0).random((2, 12, 2, 128, 128)) < 0.1).astype(np.int64)
    fast = module.run(program, x, record=())
    compiled = program.__dict__["_fast_kernel"][1]
    assert isinstance(compiled, fast_module.Compiled)  # the compiled kernel ran
    assert array_bytes(compiled) < 32 * 2**20  # 9 MB (loihi2), 17 MB (spinnaker): per-neuron parameters
    assert array_bytes(compiled.convs) < 2**20
    assert convs_in(compiled) == 3 and len(compiled.synapses[10]) <= 11 * 64 * 16 * 16  # only the dense layer's
    assert fast["spikes.l0"].any() and fast["spikes.l1"].any()
    if target != "spinnaker":  # the numpy kernel convolves with sliding windows: cheap enough here
        assert_same(fast, module.run(program, x, record=(), fast=False))


def benchmark(target: str, batch: int, steps: int, rate: float) -> None:
    """Prints sample-steps per second of wall time and per CPU second (all threads together: the
    wall figure on idle cores is about that times their number, whatever else runs now)."""
    import os
    import time

    program = dvs_network(target)
    module = spinnaker if target == "spinnaker" else fixed_point
    x = (np.random.default_rng(1).random((batch, steps, 2, 128, 128)) < rate).astype(np.int64)
    module.run(program, x[:1, :2], record=())  # compiles (or loads) the kernel, lays the program out
    start, cpu = time.perf_counter(), time.process_time()
    out = module.run(program, x, record=())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rates = ", ".join(f"{p.name} {out[f'spikes.{p.name}'].mean():.3f}" for p in program.populations)
    print(f"{target}: {sum(p.size for p in program.populations)} neurons, batch {batch}, {steps} steps, "
          f"{rate:.0%} input events: {seconds:.2f} s, {batch * steps / seconds:.0f} sample-steps/s "
          f"({batch * steps / cpu:.0f} per CPU second; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores; spike rates: {rates})")


if __name__ == "__main__":
    import argparse

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description="speed of the compiled kernel on a DVS-sized conv network")
    parser.add_argument("--target", default="loihi2", choices=["loihi2", "emulator", "spinnaker"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.1)
    args = parser.parse_args()
    benchmark(args.target, args.batch, args.steps, args.rate)


@pytest.mark.parametrize("target", ["loihi2", "emulator"])
def test_conv_sums_outside_int32_are_counted_where_they_happen(target):
    """The fold marks the neurons whose conv sum left int32 only in the runs of pixels where one
    did: the compiled kernel's counts (neurons x steps per population) equal the numpy kernel's,
    and they are neither none nor every neuron-step, so both the marking and the skipping ran."""
    program = random_program(target, 5, 2)
    for conn in program.connections:
        conn.attrs["weight_exp"] = 22  # 255 << 22 is 2^30: some sums leave int32, most do not
    x = counts(target, (2, 30) + program.inputs["input"], np.random.default_rng(3), rate=0.6)
    fast, slow, _ = run_both(target, program, x)
    assert_same(fast, slow)
    for name in ("p1", "p3"):  # p1: a conv and a recurrent conv; p3: one conv alone
        events = slow[f"overflow.{name}.input"]
        assert 0 < events.sum() < x.shape[1] * program.population(name).size * x.shape[0], name


@pytest.mark.parametrize("high", [255, 300])
@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_large_input_counts_as_bytes_or_int64_match_the_numpy_kernel(target, high):
    """Counts up to 255 reach the compiled kernel as uint8, larger ones as int64 (the numpy kernel
    widens both to int64): the products with the largest weights are the same integers either way."""
    from neurodeploy.emulator.inputs import program_inputs

    rng = np.random.default_rng(high)
    program = random_program(target, 7, 2)
    shape = (2, 12) + program.inputs["input"]
    x = (rng.integers(high - 40, high + 1, size=shape) * (rng.random(shape) < 0.05)).astype(np.float32)
    assert x.max() == high
    assert program_inputs(program, x)["input"].dtype == (np.uint8 if high <= 255 else np.int64)
    fast, slow, _ = run_both(target, program, x)
    assert_same(fast, slow)
    assert any(v.sum() for k, v in slow.items() if k.startswith("overflow.")) or any(
        fast[k].any() for k in fast if k.startswith("spikes."))
