"""The torch kernel (emulator/torch_kernel) gives the numpy kernels' integers, on every device.

Zoo models on every target, random NIR networks (tests/helpers/nir_gen.py: dense, sparse and conv
layers, delays, recurrence, several readouts), hand-built conv programs (strides, padding,
dilation, groups, 1-D and 2-D, recurrent convs, per-synapse delays), each product path
(float32, float64, int64), chunks of samples, windows of steps, and the command line. Every
test runs on the CPU and, where torch sees one, on a CUDA device.
"""
from __future__ import annotations

import copy
import functools
import warnings

import nir
import numpy as np
import pytest
import torch

from neurodeploy import models
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.format.convolution import out_size, sparse_arrays
from neurodeploy.emulator import fixed_point, spinnaker, torch_kernel
from neurodeploy.emulator.torch_kernel import arith, memory, synapses
from neurodeploy.emulator.torch_kernel import fixed_point as _torch_fixed_point, spinnaker as _torch_spinnaker  # noqa: F401 (torch_kernel.fixed_point, .spinnaker)
from neurodeploy.errors import NeurodeployError, OptionError
from neurodeploy.models import data, paths
from neurodeploy.format.program import Program, QConnection, QPopulation
from neurodeploy.targets import fixed_point_math as fpm
from neurodeploy.targets import spinnaker_math as sm
from helpers import conv_programs
from helpers.conv_programs import template
from helpers.nir_gen import NumpySource, spike_inputs, valid_spec

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TARGETS = ("loihi2", "spinnaker", "emulator")


def reference(program: Program, x, record: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The readable numpy kernel's traces, every state recorded."""
    module = spinnaker if program.target == "spinnaker" else fixed_point
    return module.run(program, x, record=record or states(program), fast=False)


def states(program: Program) -> tuple[str, ...]:
    return ("v", "i") if program.target == "spinnaker" else ("v", "u")


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def check(program: Program, x, device: str, *, spikes: bool = True, **kwargs) -> dict:
    want = reference(program, x)
    if spikes:
        assert any(v.any() for k, v in want.items() if k.startswith("spikes.")), "a comparison without spikes"
    got = torch_kernel.run(program, x, record=states(program), device=device, **kwargs)
    assert_same(got, want)
    return got


def compiled(graph, target: str, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_model(graph, Options(target=target, allow_degraded=True, **options)).program


# ----------------------------------------------------------------------------- arithmetic

def test_arithmetic_matches_the_numpy_functions():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(-(2**40), 2**40, 4000), rng.integers(-(2**20), 2**20, 4000),
                        np.array([0, 1, -1, 2**31, -(2**31), 2**31 - 1, 2**24, -(2**24)])])
    keep = rng.integers(0, 4097, x.size)
    a = rng.integers(-(2**31), 2**31, x.size)
    t = {k: torch.as_tensor(v) for k, v in dict(x=x, keep=keep, a=a).items()}
    for bits in (0, 1, 12):
        np.testing.assert_array_equal(arith.trunc_shr(t["x"], bits).numpy(), fpm.trunc_shr(x, bits))
        np.testing.assert_array_equal(arith.round_shr(t["x"], bits).numpy(), fpm.round_shr(x, bits))
    for e in (-7, 0, 5):
        np.testing.assert_array_equal(arith.shift_exp(t["a"], e).numpy(), fpm.shift_exp(a, e))
    np.testing.assert_array_equal(arith.wrap32(t["x"]).numpy(), fpm.wrap32(x))
    u = x % (2**24) - 2**23
    for loihi in (True, False):
        np.testing.assert_array_equal(
            arith.next_u(torch.as_tensor(u), t["a"] >> 8, t["keep"], 12, 6, 2**23, loihi).numpy(),
            fpm.next_u(u, a >> 8, keep, 12, 6, 2**23, loihi))
        np.testing.assert_array_equal(
            arith.drive_v(torch.as_tensor(u), t["a"] >> 8, t["keep"], t["keep"], 12, loihi).numpy(),
            fpm.drive_v(u, a >> 8, keep, keep, 12, loihi))
    d = rng.integers(0, 2**32, x.size)
    s32 = fpm.wrap32(x)
    np.testing.assert_array_equal(arith.mul_s1615(torch.as_tensor(s32), t["a"]).numpy(), sm.mul(s32, a))
    np.testing.assert_array_equal(arith.decay_s1615(torch.as_tensor(s32), torch.as_tensor(d)).numpy(),
                                  sm.decay_s1615(s32, d))


def test_the_product_dtype_follows_the_exact_range(monkeypatch):
    assert synapses.exact_dtype(2**24) == torch.float32
    assert synapses.exact_dtype(2**24 + 1) == torch.float64
    assert synapses.exact_dtype(2**53) == torch.float64
    assert synapses.exact_dtype(2**53 + 1) == torch.int64
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")  # TF32 / bf16 allowed
    assert synapses.exact_dtype(10) == torch.float64


@pytest.mark.parametrize("device", DEVICES)
def test_products_are_exact_past_float64(device):
    """Weights and counts whose sums pass 2^53: the int64 path, checked against Python integers."""
    rng = np.random.default_rng(1)
    w = rng.integers(-(2**40), 2**40, (7, 9))
    x = rng.integers(-(2**14), 2**14, (9, 3))
    want = np.array([[sum(int(w[i, j]) * int(x[j, b]) for j in range(9)) for b in range(3)] for i in range(7)])
    dev = torch.device(device)
    dense = synapses.Dense(w, 2**14, dev)
    assert dense.dtype == torch.int64
    np.testing.assert_array_equal(dense.apply(torch.as_tensor(x, device=dev)).cpu().numpy(), want)
    mask = rng.random(w.shape) < 0.5
    sparse = synapses.operator("sparse", w[mask], x_max=2**14, device=dev, indices=np.nonzero(mask)[1],
                               indptr=np.concatenate([[0], np.cumsum(mask.sum(axis=1))]), shape=w.shape)
    np.testing.assert_array_equal(sparse.apply(torch.as_tensor(x, device=dev)).cpu().numpy(), (w * mask) @ x)


# ----------------------------------------------------------------------------- zoo models

@functools.lru_cache(maxsize=None)
def zoo_program(model: str, target: str) -> Program:
    return compiled(paths()[model], target)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", models.names())
def test_zoo_models(model, target, device):
    x, _ = data.test_set(model)
    check(zoo_program(model, target), x[:3], device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("path", ["float32", "float64", "int64"])
@pytest.mark.parametrize("target", TARGETS)
def test_every_product_path_gives_the_same_integers(target, path, device, monkeypatch):
    if path != "float32":
        monkeypatch.setattr(synapses, "FLOAT32_LIMIT", -1)
    if path == "int64":
        monkeypatch.setattr(synapses, "FLOAT64_LIMIT", -1)
        monkeypatch.setattr(synapses, "INT64_CHUNK", 1000)  # several chunks per product
    x, _ = data.test_set("digits_conv")
    program = zoo_program("digits_conv", target)
    kernel = torch_kernel.fixed_point if target != "spinnaker" else torch_kernel.spinnaker
    built = kernel.Kernel(program, {"input": 1}, torch.device(device), ())
    ops = [op for c in built.connections for _, op in c.groups] if target != "spinnaker" else built.ops
    assert {op.dtype for op in ops} == {getattr(torch, path)}
    check(program, x[:3], device)


# ----------------------------------------------------------------------------- random NIR networks

# nir_gen seeds whose networks spike on every target: conv (3, 13, 21, 48), sparse (9, 28, 40),
# per-synapse delays with recurrence (11, 26), recurrence (38), uniform delays (26).
RANDOM_SEEDS = (3, 9, 11, 13, 21, 26, 28, 38, 40, 48)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_networks(seed, device):
    """nir_gen's valid graphs (mlp and conv families, dense/sparse weights, NIR delays, recurrent
    back-edges, every readout) on every target."""
    spec = valid_spec(NumpySource(1000 + seed), family="conv" if seed % 3 == 0 else None)
    x = spike_inputs(spec, np.random.default_rng(seed), batch=3, steps=30, rate=0.4)
    for target in TARGETS:
        program = compiled(spec.to_nir(), target, **spec.options())
        check(program, x, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("target,reset", [("loihi2", "zero"), ("emulator", "subtract"), ("spinnaker", "zero")])
def test_recurrence_per_synapse_delays_and_sparse_weights(target, reset, seed, device):
    rng = np.random.default_rng(200 + seed)
    n_in, n, dt = 16, 24, 1e-3
    sparse = rng.random((n, n)) < 0.05
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Affine(weight=rng.normal(0, 2.0, (n, n_in)), bias=rng.normal(0, 0.05, n)),
        "delay": nir.Delay(delay=dt * rng.integers(1, 4, n)),
        "lif": nir.CubaLIF(tau_syn=rng.uniform(2e-3, 2e-2, n), tau_mem=rng.uniform(5e-3, 5e-2, n), r=np.ones(n),
                           v_leak=np.zeros(n), v_threshold=rng.uniform(0.5, 1.5, n), v_reset=np.zeros(n),
                           w_in=np.full(n, 3.0)),
        "rec": nir.Linear(weight=rng.normal(0, 3.0, (n, n)) * sparse),
        "out": nir.Linear(weight=rng.normal(0, 1.0, (3, n))),
        "li": nir.LI(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3)),
        "output": nir.Output(output_type=np.array([3])),
    }
    edges = [("input", "fc"), ("fc", "delay"), ("delay", "lif"), ("lif", "rec"), ("rec", "lif"),
             ("lif", "out"), ("out", "li"), ("li", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurodeploy.dt": dt}, type_check=False)
    program = compiled(graph, target, reset=reset)
    assert any("delay" in c.arrays for c in program.connections), "no per-synapse delays to test"
    if target != "spinnaker":
        assert {"dense", "sparse"} <= {c.kind for c in program.connections}
    x = rng.integers(0, 3, size=(3, 50, n_in)) * (rng.random((3, 50, n_in)) < 0.3)
    check(program, x, device)


# ----------------------------------------------------------------------------- hand-built conv programs

def population(target: str, name: str, shape: tuple[int, ...], rng: np.random.Generator,
               kind: str = "LIF") -> QPopulation:
    return conv_programs.population(target, name, shape, rng, kind, threshold_scale=(0.2, 0.8))

def kernel_words(target: str, shape: tuple[int, ...], fan_in: float, rng: np.random.Generator) -> dict:
    gain = np.sqrt(12.0 / max(fan_in, 1.0))
    if target == "spinnaker":
        w = np.abs(rng.normal(1500, 1500, shape)) * gain * (rng.random(shape) < 0.9)
        return {"weight": np.minimum(w, 0xFFFF).astype(np.int64),
                "synapse_type": (rng.random(shape) < 0.25).astype(np.int64)}
    sign = np.where(rng.random(shape) < 0.25, -1, 1) * (rng.random(shape) < 0.9)
    return {"weight": (np.minimum(np.abs(rng.normal(60, 60, shape)) * gain, 255) * sign).astype(np.int64)}


def geometry(rng: np.random.Generator, in_shape: tuple[int, ...], same: bool = False) -> dict:
    """A random valid conv geometry on (C, [H,] W); ``same``: stride 1, output shaped like the input."""
    c_in, spatial = in_shape[0], in_shape[1:]
    while True:
        groups = int(rng.choice([g for g in (1, 2, c_in) if c_in % g == 0]))
        kernel = tuple(int(rng.choice([1, 3])) if same else int(rng.integers(1, 5)) for _ in spatial)
        g = dict(c_out=c_in if same else groups * int(rng.integers(1, 4)), kernel=kernel, groups=groups,
                 stride=tuple(1 if same else int(rng.integers(1, 4)) for _ in spatial),
                 dilation=tuple(1 if same else int(rng.integers(1, 3)) for _ in spatial),
                 padding=tuple((k - 1) // 2 if same else int(rng.integers(0, 3)) for k in kernel))
        out = tuple(out_size(*a) for a in zip(spatial, kernel, g["stride"], g["padding"], g["dilation"]))
        if min(out) >= 1:
            return dict(g, out_shape=(g["c_out"],) + out)


def conv(target: str, name: str, source, pop: QPopulation, g: dict, rng: np.random.Generator, delay: int,
         recurrent: bool = False, per_synapse: bool = False) -> QConnection:
    """A conv connection from ``source`` (a population, or (input name, shape)) onto ``pop``."""
    src, in_shape = (source.name, source.shape) if isinstance(source, QPopulation) else source
    shape = (g["c_out"], in_shape[0] // g["groups"]) + g["kernel"]
    arrays = kernel_words(target, shape, 0.3 * np.prod(shape[1:]), rng)
    if per_synapse:
        arrays["delay"] = rng.integers(0, 3, shape)
    attrs = {k: list(g[k]) for k in ("stride", "padding", "dilation")}
    attrs.update(in_shape=list(in_shape), out_shape=list(pop.shape), groups=g["groups"], delay=delay,
                 synapses=int(np.count_nonzero(arrays["weight"])))
    if target != "spinnaker":
        attrs.update(weight_exp=int(template(target).connections[0].attrs["weight_exp"]), sign_mode="mixed")
    return QConnection(name, src, pop.name, "conv", int(np.prod(in_shape)), pop.size, recurrent, arrays, attrs)


def conv_program(target: str, seed: int, dims: int, per_synapse: bool = False) -> Program:
    """input -> conv -> p1 (+ a recurrent conv) -> conv -> p2 -> dense -> out, and input -> conv -> p3."""
    rng = np.random.default_rng(seed)
    in_shape = (int(rng.choice([2, 4])),) + tuple(int(rng.integers(5, 11)) for _ in range(dims))
    low = 1 if target == "spinnaker" else 0
    kinds = ("LIF", "CubaLIF") if target == "spinnaker" else ("LIF",)
    g1 = geometry(rng, in_shape)
    p1 = population(target, "p1", g1["out_shape"], rng, str(rng.choice(kinds)))
    g2 = geometry(rng, p1.shape)
    p2 = population(target, "p2", g2["out_shape"], rng, str(rng.choice(kinds)))
    g3 = geometry(rng, in_shape)
    p3 = population(target, "p3", g3["out_shape"], rng, str(rng.choice(kinds)))
    out = population(target, "out", (5,), rng)
    conns = [conv(target, "c1", ("input", in_shape), p1, g1, rng, low + 1, per_synapse=per_synapse),
             conv(target, "c2", p1, p2, g2, rng, low, per_synapse=per_synapse),
             conv(target, "c3", ("input", in_shape), p3, g3, rng, low + 2),
             readout(target, p2, out, rng)]
    rec = conv(target, "rec", p1, p1, geometry(rng, p1.shape, same=True), rng, low, recurrent=True)
    rec.arrays["weight"] //= 4
    conns.append(rec)
    attrs = copy.deepcopy(template(target).attrs)
    if target == "spinnaker":
        attrs["ring_buffer_shift"] = {p.name: list(attrs["ring_buffer_shift"]["lif"]) for p in (p1, p2, p3, out)}
    return Program(target, {"input": in_shape}, [p1, p2, p3, out], conns, {"output": "out"}, attrs)


def readout(target: str, source: QPopulation, pop: QPopulation, rng: np.random.Generator) -> QConnection:
    arrays = kernel_words(target, (pop.size, source.size), source.size / 4, rng)
    if target == "spinnaker":
        arrays = {"weight": arrays["weight"].reshape(-1), "synapse_type": arrays["synapse_type"].reshape(-1),
                  "indices": np.tile(np.arange(source.size), pop.size),
                  "indptr": np.arange(pop.size + 1) * source.size}
        return QConnection("d", source.name, pop.name, "sparse", source.size, pop.size, False, arrays, {"delay": 1})
    attrs = {"weight_exp": int(template(target).connections[0].attrs["weight_exp"]), "delay": 0}
    return QConnection("d", source.name, pop.name, "dense", source.size, pop.size, False, arrays, attrs)


def lively(program: Program, x: np.ndarray) -> Program:
    """Thresholds of silent populations lowered until each fires (a silent one tests none of its convs)."""
    key = "v_thresh" if program.target == "spinnaker" else "vth"
    for _ in range(5):
        spikes = reference(program, x[:1], record=())
        silent = [p for p in program.populations[:3] if not spikes[f"spikes.{p.name}"].any()]
        for p in silent:
            p.params[key] = np.maximum(p.params[key] // 4, 1)
        if not silent:
            break
    return program


def counts(target: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Graded input: spike counts 0-3 (inputs are whole numbers >= 0 on every target)."""
    return rng.integers(0, 4, size=shape) * (rng.random(shape) < 0.3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("target", TARGETS)
def test_conv_programs(target, seed, dims, device):
    """Strides 1-3, padding 0-2, dilation 1-2, groups 1, 2 and depthwise, a conv feeding a conv,
    two convs from one input, a recurrent conv, uniform delays, graded counts."""
    rng = np.random.default_rng(seed)
    program = conv_program(target, 10 * seed + dims, dims, per_synapse=target == "spinnaker" and seed == 0)
    x = counts(target, (3, 30) + program.inputs["input"], rng)
    got = check(lively(program, x), x, device)
    for name in ("p1", "p2", "p3"):
        assert got[f"spikes.{name}"].any(), name


def as_sparse(program: Program) -> Program:
    """``program`` with every conv connection stored as its sparse (CSR) expansion."""
    out = copy.deepcopy(program)
    for c in out.connections:
        if c.kind == "conv":
            c.arrays = sparse_arrays(c.arrays, c.attrs)
            c.kind = "sparse"
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("target", ["loihi2", "emulator"])
def test_conv_with_per_synapse_delays_equals_its_sparse_expansion(target, device):
    """Kernel-shaped delays (the numpy fixed-point kernel takes them on sparse connections only):
    the conv path must give what the same synapses give as a sparse connection."""
    rng = np.random.default_rng(5)
    conv_form = conv_program(target, 77, 2, per_synapse=True)
    x = counts(target, (2, 30) + conv_form.inputs["input"], rng)
    program = lively(as_sparse(conv_form), x)
    for p in conv_form.populations:
        p.params = program.population(p.name).params
    got = torch_kernel.run(conv_form, x, record=("v", "u"), device=device)
    assert_same(got, check(program, x, device))


# ----------------------------------------------------------------------------- chunks, windows, errors

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("target", TARGETS)
def test_chunks_of_samples_and_windows_of_steps(target, device, monkeypatch, capsys):
    """A budget for one sample per chunk and a window of one step: the same traces, in pieces."""
    program = zoo_program("temporal_rnn", target)
    x, _ = data.test_set("temporal_rnn")
    x = x[:5]
    whole = torch_kernel.run(program, x, record=states(program), device=device)
    built = (torch_kernel.spinnaker if target == "spinnaker" else torch_kernel.fixed_point).Kernel(
        program, {"input": int(np.abs(x).max())}, torch.device(device), states(program))
    one = built.sample_bytes() + torch_kernel.driver.window_bytes(program, {"input": x}, states(program), 1)
    monkeypatch.setattr(memory, "WINDOWS", (7, 1))
    for budget in (built.fixed_bytes + one, built.fixed_bytes + 3 * one + 7 * 10**4):
        chunked = torch_kernel.run(program, x, record=states(program), device=device, memory_budget=budget,
                                   progress=True)
        assert_same(chunked, whole)
    assert "sample-step" in capsys.readouterr().err
    with pytest.raises(NeurodeployError, match="one sample needs"):
        torch_kernel.run(program, x, record=states(program), device=device,
                         memory_budget=built.fixed_bytes + one - 1)


def test_plan_picks_the_longest_window_that_fits():
    cpu = torch.device("cpu")
    assert memory.plan(100, 500, lambda w: 10 * w, 10 * 64 * 4, cpu, 0) == (4, 64)
    assert memory.plan(100, 3, lambda w: 10 * w, 10**6, cpu, 0) == (100, 3)
    assert memory.plan(2, 500, lambda w: 1000 + w, 1001, cpu, 0) == (1, 1)


def test_devices_and_records_are_checked():
    program = zoo_program("digits_mlp", "loihi2")
    x, _ = data.test_set("digits_mlp")
    with pytest.raises(OptionError, match="expected cpu, cuda or cuda:N"):
        torch_kernel.run(program, x[:1], device="gpu")
    with pytest.raises(OptionError, match="records v, u"):
        torch_kernel.run(program, x[:1], record=("i",))
    with pytest.raises(OptionError, match="records v, i"):
        torch_kernel.run(zoo_program("digits_mlp", "spinnaker"), x[:1], record=("u",))
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="--device cpu"):
            torch_kernel.run(program, x[:1], device="cuda")
    else:
        with pytest.raises(OptionError, match="CUDA device"):
            torch_kernel.run(program, x[:1], device=f"cuda:{torch.cuda.device_count()}")


def test_empty_runs_keep_the_shapes():
    program = zoo_program("digits_mlp", "emulator")
    got = torch_kernel.run(program, np.zeros((2, 0, 64)), record=("v",))
    assert got["v.lif1"].shape == (2, 0, 128) and got["spikes.lif1"].dtype == np.uint8


# ----------------------------------------------------------------------------- entry points

@pytest.mark.parametrize("target", TARGETS)
def test_cli_run_with_device_cpu_writes_the_default_output(target, tmp_path, capsys):
    from neurodeploy.format import artifact
    from neurodeploy.cli.main import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = compile_model(paths()["digits_conv"], Options(target=target)).to_artifact()
    ndp = artifact.write(art, tmp_path / f"m.{target}.ndp")
    x, _ = data.test_set("digits_conv")
    np.savez(tmp_path / "x.npz", input=x[:4])
    record = ",".join(states(zoo_program("digits_conv", target)))
    base = ["run", str(ndp), "--input", str(tmp_path / "x.npz"), "--record", record]
    assert main(base + ["-o", str(tmp_path / "default.npz")]) == 0
    assert main(base + ["-o", str(tmp_path / "torch.npz"), "--device", "cpu"]) == 0
    with np.load(tmp_path / "default.npz") as a, np.load(tmp_path / "torch.npz") as b:
        assert_same({k: b[k] for k in b.files}, {k: a[k] for k in a.files})
    assert main(base + ["-o", str(tmp_path / "y.npz"), "--device", "tpu"]) == 2
    assert "expected cpu, cuda or cuda:N" in capsys.readouterr().err
    other = "spinnaker" if target == "spinnaker" else "lava"
    assert main(base + ["-o", str(tmp_path / "y.npz"), "--device", "cpu", "--backend", other]) == 2
    assert "takes no --device" in capsys.readouterr().err
    assert main(base + ["-o", str(tmp_path / "y.npz"), "--device", "cpu", "--workers", "2"]) == 2
    assert "sharded runs" in capsys.readouterr().err


def test_api_run_and_run_program_take_a_device():
    from neurodeploy import api
    from neurodeploy.emulator import run_program

    program = zoo_program("temporal_rnn", "loihi2")
    x, _ = data.test_set("temporal_rnn")
    want = reference(program, x[:2], record=("v",))
    assert_same(run_program(program, x[:2], device="cpu"), want)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = compile_model(paths()["temporal_rnn"], Options(target="loihi2")).to_artifact()
    assert_same(api.run(art, x[:2], record=("v",), device="cpu"), want)
