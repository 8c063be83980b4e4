"""The Lava backend against Lava itself, the NIR paper's Lava trace and the emulator (bit-exact).

Needs the Lava environment (.venv-lava, `make lava`); without it the Lava runs are skipped.
Lava start-up is slow, so the random networks and the zoo each run in one runner invocation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from neurodeploy.backends import lava
from neurodeploy.backends.lava.backend import LavaBackendError
from neurodeploy.compiler.quantize.fixed_point import LOIHI2
from neurodeploy.emulator.fixed_point import run as emulate
from neurodeploy.errors import NeurodeployError
from neurodeploy.format.program import Program, QConnection, QPopulation

DATA = Path(__file__).parents[1] / "data" / "nir_paper" / "lif"
HAVE_LAVA = lava.lava_python().exists()
needs_lava = pytest.mark.skipif(not HAVE_LAVA, reason=f"{lava.lava_python()} not found: run `make lava` "
                                "(scripts/setup_lava.sh, needs Python 3.10) to run the Lava cross-checks")
N_RANDOM = 60
ATTRS = {"format": LOIHI2.__dict__, "hop_latency": 1}


# ----------------------------------------------------------------------------- programs

def one_neuron_program(weight: int, du: int, dv: int, vth: int, weight_exp: int = 0) -> Program:
    params = {"du": np.array([du]), "dv": np.array([dv]), "vth": np.array([vth]),
              "bias_mant": np.array([0]), "bias_exp": np.array([0]), "v_init": np.array([0])}
    pop = QPopulation("lif", "cuba_lif", "LIF", (1,), True, np.ones(1), params, latency=1)
    conn = QConnection("w", "input", "lif", "dense", 1, 1, False, {"weight": np.array([[weight]])},
                       {"weight_exp": weight_exp, "sign_mode": "exc" if weight >= 0 else "inh", "delay": 0})
    return Program("loihi2", {"input": (1,)}, [pop], [conn], {"out": "lif"}, dict(ATTRS))


def _weights(rng, n_out: int, n_in: int, mode: str, density: float) -> np.ndarray:
    if mode == "exc":
        w = rng.integers(0, 256, (n_out, n_in))
    elif mode == "inh":
        w = -rng.integers(0, 256, (n_out, n_in))
    else:  # mixed: Lava drops the lowest bit, so valid mantissas are even
        w = 2 * rng.integers(-128, 128, (n_out, n_in))
    return np.where(rng.random((n_out, n_in)) < density, w, 0).astype(np.int64)


def _population(rng, name: str, shape: tuple, spiking: bool) -> QPopulation:
    n = int(np.prod(shape))

    def pick(values):
        return int(values[rng.integers(len(values))])

    def param(lo, hi, special):
        base = pick(special) if rng.random() < 0.4 else int(rng.integers(lo, hi))
        if rng.random() < 0.15:  # per-neuron values: Lava's LIF splits into one process per value
            return np.where(rng.random(n) < 0.5, base, int(rng.integers(lo, hi)))
        return np.full(n, base)

    du = param(0, 4096, [0, 4095, 4094, 1])
    dv = param(0, 4096, [0, 4095, 1])
    vth = np.rint(np.exp(np.log(param(1, 4000, [1, 2, 8, 300])) * rng.uniform(0.2, 1.0))).astype(np.int64)
    vth = np.where(rng.random(n) < 0.05, 0, vth) if spiking else np.full(n, 131071)
    bias_exp = np.full(n, int(rng.integers(0, 8)) if rng.random() < 0.5 else 0)
    bias_mant = rng.integers(-4096, 4096, n) >> int(rng.integers(0, 12)) if rng.random() < 0.5 else np.zeros(n, int)
    v_init = rng.integers(-20000, 20000, n) if rng.random() < 0.3 else np.zeros(n, int)
    params = {"du": du, "dv": dv, "vth": vth, "bias_mant": bias_mant, "bias_exp": bias_exp, "v_init": v_init}
    params = {k: np.asarray(v, dtype=np.int64).reshape(shape) for k, v in params.items()}
    return QPopulation(name, "cuba_lif", "LIF" if spiking else "LI", shape, spiking, np.ones(shape), params,
                       readout="v")


def _connection(rng, name: str, src: str, tgt: str, n_in: int, n_out: int, recurrent: bool) -> QConnection:
    mode = str(rng.choice(["exc", "inh", "mixed"], p=[0.45, 0.2, 0.35]))
    w = _weights(rng, n_out, n_in, mode, float(rng.uniform(0.3, 1.0)))
    attrs = {"weight_exp": int(rng.integers(-3, 8)), "sign_mode": mode,
             "delay": int(rng.integers(1, 6)) if rng.random() < 0.2 else 0}
    per_synapse = rng.integers(0, 6, (n_out, n_in)) if rng.random() < 0.25 else None
    if rng.random() < 0.35:
        m = scipy.sparse.csr_matrix(w)
        m.sort_indices()
        arrays = {"weight": m.data.astype(np.int64), "indptr": m.indptr.astype(np.int64),
                  "indices": m.indices.astype(np.int64)}
        if per_synapse is not None:
            arrays["delay"] = per_synapse[np.repeat(np.arange(n_out), np.diff(m.indptr)), m.indices].astype(np.int64)
        return QConnection(name, src, tgt, "sparse", n_in, n_out, recurrent, arrays, attrs)
    arrays = {"weight": w}
    if per_synapse is not None:
        arrays["delay"] = per_synapse.astype(np.int64)
    return QConnection(name, src, tgt, "dense", n_in, n_out, recurrent, arrays, attrs)


def _conv_connection(rng, src: str, tgt: str, in_shape: tuple) -> tuple[QConnection, tuple]:
    dims = len(in_shape) - 1
    groups = int(rng.choice([1, in_shape[0]])) if in_shape[0] > 1 else 1
    out_c = groups * int(rng.integers(1, 3))
    k = tuple(int(rng.integers(1, 4)) for _ in range(dims))
    stride = [int(rng.integers(1, 3)) for _ in range(dims)]
    padding = [int(rng.integers(0, 2)) for _ in range(dims)]
    dilation = [int(rng.integers(1, 3)) for _ in range(dims)]
    spatial = [(in_shape[1 + i] + 2 * padding[i] - dilation[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(dims)]
    if min(spatial) < 1:
        stride, padding, dilation, k = [1] * dims, [1] * dims, [1] * dims, (1,) * dims
        spatial = [in_shape[1 + i] + 2 for i in range(dims)]
    out_shape = (out_c,) + tuple(spatial)
    mode = ["exc", "inh", "mixed"][rng.integers(3)]
    w = _weights(rng, out_c, (in_shape[0] // groups) * int(np.prod(k)), mode, 0.8)
    w = w.reshape((out_c, in_shape[0] // groups) + k)
    attrs = {"weight_exp": int(rng.integers(0, 6)), "sign_mode": mode, "stride": stride, "padding": padding,
             "dilation": dilation, "groups": groups, "in_shape": list(in_shape), "out_shape": list(out_shape),
             "synapses": int(np.count_nonzero(w)), "delay": 0}
    conn = QConnection("conv", src, tgt, "conv", int(np.prod(in_shape)), int(np.prod(out_shape)), False,
                       {"weight": w}, attrs)
    return conn, out_shape


def random_program(seed: int) -> Program:
    """A small random loihi2 program: 1-2 inputs, 1-3 layers (last maybe a non-spiking readout),
    dense/sparse/conv connections of every sign mode and weight exponent, delays, recurrence."""
    rng = np.random.default_rng(seed)
    conns: list[QConnection] = []
    pops: list[QPopulation] = []
    n_layers = int(rng.integers(1, 4))
    if rng.random() < 0.15:  # a conv front end
        in_shape = (int(rng.integers(1, 3)),) + tuple(int(rng.integers(2, 5)) for _ in range(int(rng.integers(1, 3))))
        inputs = {"in0": in_shape}
        conv, shape = _conv_connection(rng, "in0", "l0", in_shape)
        conns.append(conv)
        pops.append(_population(rng, "l0", shape, True))
    else:
        inputs = {f"in{i}": (int(rng.integers(1, 7)),) for i in range(int(rng.integers(1, 3)))}
        shape = (int(rng.integers(1, 9)),) if rng.random() < 0.8 else (2, int(rng.integers(1, 4)))
        pops.append(_population(rng, "l0", shape, n_layers > 1 or rng.random() < 0.8))
        for name, in_shape in inputs.items():
            conns.append(_connection(rng, f"{name}->l0", name, "l0", int(np.prod(in_shape)), pops[0].size, False))
    for j in range(1, n_layers):
        spiking = j < n_layers - 1 or rng.random() < 0.6
        pops.append(_population(rng, f"l{j}", (int(rng.integers(1, 9)),), spiking))
        prev = pops[j - 1]
        conns.append(_connection(rng, f"l{j - 1}->l{j}", prev.name, pops[j].name, prev.size, pops[j].size, False))
        if rng.random() < 0.3:  # skip connection from an input
            name = next(iter(inputs))
            conns.append(_connection(rng, f"{name}->l{j}", name, pops[j].name, int(np.prod(inputs[name])),
                                     pops[j].size, False))
    for pop in pops:  # recurrence: self loops and backward edges from spiking layers
        if pop.spiking and rng.random() < 0.35:
            conns.append(_connection(rng, f"{pop.name}->{pop.name}", pop.name, pop.name, pop.size, pop.size, True))
    if len(pops) > 1 and pops[-1].spiking and rng.random() < 0.3:
        a, b = pops[-1], pops[0]
        conns.append(_connection(rng, f"{a.name}->{b.name}", a.name, b.name, a.size, b.size, True))
    return Program("loihi2", inputs, pops, conns, {"out": pops[-1].name}, dict(ATTRS))


def random_inputs(seed: int, program: Program) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(10_000 + seed)
    batch, steps = int(rng.integers(1, 3)), int(rng.integers(30, 61))
    out = {}
    for name, shape in program.inputs.items():
        density = float(rng.uniform(0.05, 0.5))
        x = (rng.random((batch, steps) + shape) < density).astype(np.int64)
        if rng.random() < 0.3:  # graded spikes: integer counts
            x *= rng.integers(1, 6, x.shape)
            if rng.random() < 0.3:  # (once signed counts; every target now refuses them: same draws, no sign)
                rng.random(x.shape)
        out[name] = x
    return out


def edge_programs() -> list[tuple[str, Program, dict]]:
    """Hand-made corners: int32 overflows, u wrap, v clamp of a readout, threshold 0, negative exponent, delay 62,
    unconnected parts."""
    cases = []
    x = np.zeros((1, 8, 1), dtype=np.int64)
    x[0, 1, 0] = 1100  # 1100 * 255 << 7 << 6 > 2^31: Lava's int32 sum wraps
    x[0, 3, 0] = 3
    cases.append(("int32_overflow", one_neuron_program(255, 4095, 0, 131071, weight_exp=7), {"input": x}))
    x = np.zeros((1, 6, 1), dtype=np.int64)
    x[0, 1, 0] = 70_000  # 70000 * 255 << 7 > 2^31: the connection's emitted value wraps to int32
    cases.append(("emitted_value_wraps", one_neuron_program(255, 4095, 4095, 131071, weight_exp=7), {"input": x}))
    cases.append(("u_wraps_once", one_neuron_program(255, 0, 4095, 2**17 - 1, weight_exp=7),
                  {"input": np.ones((1, 40, 1), dtype=np.int64)}))
    p = one_neuron_program(255, 0, 0, 131071, weight_exp=7)
    p.populations[0] = QPopulation("lif", "cuba_lif", "LI", (1,), False, np.ones(1), p.populations[0].params)
    cases.append(("readout_saturates_never_fires", p, {"input": np.ones((1, 30, 1), dtype=np.int64)}))
    cases.append(("threshold_zero", one_neuron_program(1, 0, 0, 0), {"input": np.ones((1, 10, 1), dtype=np.int64)}))
    p = one_neuron_program(-200, 100, 4000, 5, weight_exp=-2)
    cases.append(("negative_exp_truncation", p, {"input": (np.arange(30) % 3 == 0).reshape(1, 30, 1).astype(np.int64)}))
    p = one_neuron_program(77, 4095, 0, 1000)
    p.connections[0].attrs["delay"] = 40
    p.connections[0].arrays["delay"] = np.array([[22]])
    x = np.zeros((1, 70, 1), dtype=np.int64)
    x[0, 2, 0] = 1
    cases.append(("delay_62", p, {"input": x}))
    # parts Lava would not run on their own: an input that feeds nothing, a bias-driven population without input
    p = one_neuron_program(60, 3000, 200, 50)
    p.inputs = {"unused": (2,), "input": (1,)}
    params = {k: v.copy() for k, v in p.populations[0].params.items()}
    params["bias_mant"] = np.array([900])
    p.populations.append(QPopulation("lone", "cuba_lif", "LIF", (1,), True, np.ones(1), params))
    x = (np.arange(40) % 3 == 0).reshape(1, 40, 1).astype(np.int64)
    cases.append(("unconnected_parts", p, {"unused": np.ones((1, 40, 2), dtype=np.int64), "input": x}))
    return cases


def _compare(label: str, ours: dict, theirs: dict) -> list[str]:
    problems = []
    if sorted(ours) != sorted(theirs):
        return [f"{label}: keys differ: emulator {sorted(ours)} lava {sorted(theirs)}"]
    for key in sorted(ours):
        a, b = ours[key], theirs[key]
        if a.shape != b.shape:
            problems.append(f"{label}: {key} shape {a.shape} vs lava {b.shape}")
            continue
        if key.startswith("spikes.") and b.dtype != np.uint8 or not key.startswith("spikes.") and b.dtype != np.int64:
            problems.append(f"{label}: {key} dtype {b.dtype}")
        diff = np.argwhere(a != b)
        if diff.size:
            sample, step = int(diff[0][0]), int(diff[0][1])
            ours_at, lava_at = a[sample, step].ravel()[:6].tolist(), b[sample, step].ravel()[:6].tolist()
            problems.append(f"{label}: {key} differs at {len(diff)} values, first at sample {sample} step {step}: "
                            f"emulator {ours_at} lava {lava_at}")
    return problems


# ----------------------------------------------------------------------------- Lava runs

@needs_lava
def test_paper_lif_reproduces_lava_cpu_csv():
    """The NIR paper's Lava run (weight 10, du 4095, dv 163, vth 25), through the backend, every step."""
    csv = np.loadtxt(DATA / "lif_lava_cpu_fixed.csv", delimiter=",")
    x = csv[:, 0].reshape(1, -1, 1).astype(np.int64)
    out = lava.run(one_neuron_program(10, 4095, 163, 25), x, record=("v", "u"))
    assert np.array_equal(out["v.lif"][0, :, 0], csv[:, 1])
    assert np.array_equal(out["spikes.lif"][0, :, 0], csv[:, 2])
    assert out["spikes.lif"].sum() == 4
    assert _compare("paper", emulate(one_neuron_program(10, 4095, 163, 25), x, record=("v", "u")), out) == []


@needs_lava
def test_input_column_k_reaches_u_at_step_k_plus_2():
    x = np.zeros((2, 6, 1), dtype=np.int64)
    x[0, 2, 0] = 1
    x[1, 0, 0] = 1
    out = lava.run(one_neuron_program(100, 4095, 0, 1000), x, record=("u",))
    u = out["u.lif"][:, :, 0]
    assert u[0].tolist() == [0, 0, 0, 100 << 6, 0, 0]  # 0-based index k + 1 = 1-based step k + 2
    assert u[1].tolist() == [0, 100 << 6, 0, 0, 0, 0]  # the second sample starts from a clean state


@needs_lava
def test_random_networks_bit_exact():
    """Emulator == Lava (spikes, u, v at every step) on seeded random networks and hand-made corners."""
    cases = [(f"seed {s}", random_program(s), random_inputs(s, random_program(s))) for s in range(N_RANDOM)]
    cases += edge_programs()
    outs = lava.run_many([(p, x) for _, p, x in cases], record=("v", "u"))
    problems = []
    spikes = 0
    for (label, program, x), theirs in zip(cases, outs):
        ours = emulate(program, x, record=("v", "u"))
        problems += _compare(label, ours, theirs)
        spikes += sum(int(v.sum()) for k, v in ours.items() if k.startswith("spikes."))
    assert not problems, "\n".join(problems)
    assert spikes > 1000  # the networks are not silent


@needs_lava
def test_zoo_models_bit_exact():
    from neurodeploy import models
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.models import data

    jobs, expected = [], []
    for name, path in models.paths().items():
        if not path.is_file():
            continue
        compiled = compile_model(str(path), Options(target="loihi2"))
        x = data.test_set(name)[0][:2]
        jobs.append((name, compiled.to_artifact(), x))
        expected.append(emulate(compiled.program, x, record=("v", "u")))
    if not jobs:
        pytest.skip("no zoo model file (models/zoo/*.nir) present")
    outs = lava.run_many([(art, x) for _, art, x in jobs], record=("v", "u"))
    problems = []
    for (name, _, _), ours, theirs in zip(jobs, expected, outs):
        problems += _compare(name, ours, theirs)
    assert not problems, "\n".join(problems)


@needs_lava
def test_artifact_file_and_cli(tmp_path):
    from neurodeploy.format import artifact
    from neurodeploy.cli.main import main

    program = one_neuron_program(60, 3000, 200, 50)
    path = artifact.write(lava.program_artifact(program), tmp_path / "one.loihi2.ndp")
    x = (np.arange(40) % 4 == 0).reshape(1, 40, 1).astype(np.int64)
    np.savez(tmp_path / "in.npz", input=x)
    assert main(["run", str(path), "--input", str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npz"),
                 "--record", "v,u", "--backend", "lava"]) == 0
    with np.load(tmp_path / "out.npz", allow_pickle=False) as f:
        got = {k: f[k] for k in f.files}
    assert _compare("cli", emulate(program, x, record=("v", "u")), got) == []


@needs_lava
def test_unrepresentable_weights_name_the_connection():
    program = one_neuron_program(-3, 4095, 0, 10)
    program.connections[0].arrays["weight"] = np.array([[-3, 5]])[:, :1]
    program.connections[0].attrs["sign_mode"] = "mixed"  # odd mantissa in a mixed-sign matrix: Lava drops the bit
    with pytest.raises(LavaBackendError, match=r"connection 'w'.*not representable"):
        lava.run(program, np.ones((1, 5, 1)), record=())


@needs_lava
def test_spinnaker_artifact_is_refused():
    program = one_neuron_program(10, 4095, 0, 10)
    program.target = "spinnaker"
    with pytest.raises(LavaBackendError, match="loihi2 artifacts only"):
        lava.run(program, np.ones((1, 5, 1)), record=())


@needs_lava
def test_on_chip_names_what_is_missing():
    with pytest.raises(LavaBackendError, match="lava-loihi"):
        lava.run(one_neuron_program(10, 4095, 0, 10), np.ones((1, 5, 1)), on_chip=True)


@needs_lava
def test_doctor_reports_lava():
    report = lava.doctor()
    assert report["available"], report["detail"]
    assert "0.10.0" in report["detail"]
    from neurodeploy.backends import registry

    assert set(registry.doctor()) == {"emulator", "lava", "spinnaker"}


# ----------------------------------------------------------------------------- without Lava

def test_lava_environment_present_when_required():
    """CI sets NEURODEPLOY_REQUIRE_LAVA=1 after `make lava`: a missing environment then fails, not skips."""
    import os

    if os.environ.get("NEURODEPLOY_REQUIRE_LAVA") and not HAVE_LAVA:
        pytest.fail(f"NEURODEPLOY_REQUIRE_LAVA is set but {lava.lava_python()} does not exist: run `make lava`")


def test_missing_environment_says_make_lava(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURODEPLOY_LAVA_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(NeurodeployError, match="make lava"):
        lava.run(one_neuron_program(10, 4095, 0, 10), np.ones((1, 5, 1)))
    assert lava.doctor()["available"] is False


def test_record_is_validated():
    with pytest.raises(NeurodeployError, match="cannot record 'i'"):
        lava.run(one_neuron_program(10, 4095, 0, 10), np.ones((1, 5, 1)), record=("i",))


def test_conv_expansion_matches_the_emulator_kernel():
    """The runner's conv -> sparse matrix expansion is the emulator's convolution (no Lava needed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lava_runner", Path(lava.__file__).with_name("runner.py"))
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    from neurodeploy.emulator.ops import conv

    for seed in range(40):
        rng = np.random.default_rng(seed)
        dims = 1 + seed % 2
        in_shape = (int(rng.integers(1, 4)),) + tuple(int(rng.integers(2, 7)) for _ in range(dims))
        c, _ = _conv_connection(rng, "in", "out", in_shape)
        m = runner.conv_matrix(c)
        x = rng.integers(0, 3, (3,) + in_shape)
        a = c.attrs
        want = conv(x, c.arrays["weight"], a["stride"], a["padding"], a["dilation"], a["groups"]).reshape(3, -1)
        assert np.array_equal((m @ x.reshape(3, -1).T).T, want), seed
