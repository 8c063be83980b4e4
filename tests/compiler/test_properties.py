"""Property-based tests: random NIR graphs through the whole compiler.

* Valid graphs (tests/helpers/nir_gen.py: Affine/Linear, LIF, CubaLIF, IF, Threshold, LI/CubaLI/I/Sum
  readouts, Conv2d + pooling, self-recurrence through a Linear back-edge, Delay nodes in whole
  steps, a second input or readout, tau >= 2 dt) compile for loihi2, spinnaker and the emulator
  with reset zero, and an independent checker (tests/helpers/limits_checker.py) confirms that no limit of
  the target is exceeded.
* The emulated artifact stays within the quantization bound derived from its health report
  (tests/helpers/accuracy_bound.py) until the first spike divergence, and spikes part only where a
  neuron was within that bound of its threshold.
* Invalid graphs (NaN/inf, wrong dtypes, absurd declared sizes, cycles without state, shape and
  structure errors, values out of range, valid NIR a chip cannot express) give only
  NeurodeployErrors, in bounded time, and `neurodeploy compile` leaves no file behind.

Issues these generators found are pinned at the end as regressions: each names the file and function, the graph, and what is expected versus what
happens (or happened).

Every test is deterministic (hypothesis ``derandomize=True``); the long run with the same
generators is benchmarks/fuzz_long.py.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.fuzz_cases import run_invalid, run_valid
from helpers.limits_checker import check_artifact
from helpers.nir_gen import INVALID_KINDS, HypothesisSource, NumpySource, Spec, invalid_case, valid_spec
from neurodeploy.format import artifact as artifact_format
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.targets import loihi2 as loihi2_data
from neurodeploy.errors import GraphValidationError, NeurodeployError

warnings.filterwarnings("ignore", category=UserWarning)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FAST = dict(deadline=None, derandomize=True, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@st.composite
def valid_specs(draw, **kwargs):
    return valid_spec(HypothesisSource(draw), **kwargs)


@st.composite
def invalid_cases(draw, kind=None):
    return invalid_case(HypothesisSource(draw), kind)


def _explain(spec, failures) -> str:
    return spec.describe() + "\n" + "\n".join(failures)


# ---------------------------------------------------------------- valid graphs: limits


@settings(max_examples=100, **FAST)
@given(spec=valid_specs(), cap=st.one_of(st.none(), st.integers(1, 64)), per_neuron=st.booleans())
def test_valid_graphs_compile_within_every_target_limit(spec, cap, per_neuron):
    out = run_valid(spec, accuracy=False, neurons_per_core=cap, per_neuron=per_neuron)
    assert not out.failures, _explain(spec, out.failures)


@settings(max_examples=5, **FAST)
@given(spec=valid_specs(wide=True))
def test_wide_fan_in_is_split_within_core_memory(spec):
    """Fan-ins of thousands (up to 4000 inputs into up to 120 neurons): Loihi's 192 KB per core
    then holds only some of a layer's neurons, and the checker recomputes every core's memory."""
    out = run_valid(spec, accuracy=False)
    assert not out.failures, _explain(spec, out.failures)


# ---------------------------------------------------------------- valid graphs: accuracy


@settings(max_examples=80, **FAST)
@given(spec=valid_specs(homogeneous=True))
def test_emulated_artifacts_stay_within_the_health_bound(spec):
    out = run_valid(spec, accuracy=True)
    assert not out.failures, _explain(spec, out.failures)


def test_accuracy_bound_is_not_vacuous():
    """The bound is tight enough to matter: on a fixed sample of graphs, the worst error reaches a
    sizeable fraction of it (and a weight error the health report hides would break it)."""
    ratios = []
    for seed in range(12):
        spec = valid_spec(NumpySource(seed), homogeneous=True)
        out = run_valid(spec, accuracy=True, targets=("emulator",))
        assert not out.failures, _explain(spec, out.failures)
        stats = out.stats.get("emulator.accuracy")
        if stats:
            ratios.append(stats["worst_ratio"])
    assert max(ratios) > 0.05, ratios


def test_accuracy_check_catches_a_wrong_weight():
    """A corrupted weight in the emulated program (health report unchanged) violates the bound."""
    from helpers.accuracy_bound import check

    graph = _lif_graph(np.full((3, 4), 0.4), threshold=5.0)
    options = Options(target="emulator", dt=1e-3, reset="zero", integrator="euler", spike_amplitude=1.0)
    inputs = (np.random.default_rng(0).random((2, 30, 4)) < 0.5).astype(np.float32)
    assert check(compile_model(graph, options), inputs)[0] == []
    compiled = compile_model(graph, options)  # a fresh program: the fast kernel caches its weights
    compiled.program.connections[0].arrays["weight"][0, 0] *= 2
    errors, _ = check(compiled, inputs)
    assert errors and "bound" in errors[0], errors


# ---------------------------------------------------------------- invalid inputs


@settings(max_examples=120, **FAST)
@given(case=invalid_cases(), through_cli=st.integers(0, 3))
def test_invalid_graphs_give_only_neurodeploy_errors(case, through_cli):
    with tempfile.TemporaryDirectory() as tmp:
        out = run_invalid(case, Path(tmp) if through_cli == 0 else None, time_s=30)
    assert not out.failures, _explain(case.spec, out.failures)
    assert out.expected_errors > 0


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_every_invalid_kind_through_the_command_line(kind, tmp_path):
    """Each kind at least once as a file through `neurodeploy compile` (exit 2, no file left)."""
    for seed in range(3):
        case = invalid_case(NumpySource(1000 + seed), kind)
        out = run_invalid(case, tmp_path, time_s=30)
        assert not out.failures, _explain(case.spec, out.failures)


@pytest.mark.parametrize("where", ["linear", "input", "neuron", "affine_bias", "conv_input"])
def test_absurd_declared_sizes_fail_fast(where):
    """A Linear of 10^6 x 10^6 (a zero-stride view: declared, not allocated) is refused at once.

    Was: compiler/frontend/normalize.py::_numeric converted the weight to float64 first, so
    numpy raised MemoryError ("Unable to allocate 7.28 TiB"), not a NeurodeployError (fixed there).
    """
    src = NumpySource(7)
    while True:
        case = invalid_case(src, "absurd_size")
        if case.detail.startswith(where):
            break
    start = time.perf_counter()
    for target in ("loihi2", "spinnaker", "emulator"):
        with pytest.raises(NeurodeployError) as info:
            compile_model(case.spec.to_nir(construct=False), Options(target=target, **case.spec.options()))
        assert "\n" not in str(info.value)
    assert time.perf_counter() - start < 5.0


def test_linear_of_a_million_squared_is_refused_without_allocating():
    n = 10**6
    lif = {k: np.broadcast_to(np.float64(v), (n,)) for k, v in
           dict(tau=0.01, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()}
    spec = Spec({"input": {"type": "Input", "shape": np.array([n])},
                 "fc": {"type": "Linear", "weight": np.broadcast_to(np.float32(0.5), (n, n))},
                 "lif": {"type": "LIF", **lif}, "output": {"type": "Output", "shape": np.array([n])}},
                [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    start = time.perf_counter()
    with pytest.raises(GraphValidationError, match="node 'fc': field 'weight'"):
        compile_model(spec.to_nir(construct=False), Options(target="loihi2", dt=1e-3))
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------- the checker itself


def _lif_graph(weight: np.ndarray, threshold: float = 1.0, bias: np.ndarray | None = None) -> nir.NIRGraph:
    n_out, n_in = weight.shape
    syn = nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([n_in])}), "fc": syn,
               "lif": nir.LIF(tau=np.full(n_out, 0.01), r=np.ones(n_out), v_leak=np.zeros(n_out),
                              v_threshold=np.full(n_out, threshold), v_reset=np.zeros(n_out)),
               "output": nir.Output(output_type={"output": np.array([n_out])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)


def _artifact(target: str, weight=None, **options):
    weight = np.random.default_rng(1).normal(0, 0.5, (6, 5)) if weight is None else weight
    compiled = compile_model(_lif_graph(weight), Options(target=target, dt=1e-3, reset="zero", **options))
    art = compiled.to_artifact()
    return art.manifest, {k: np.array(v) for k, v in art.arrays.items()}


def _broken(target: str, change) -> list[str]:
    manifest, arrays = _artifact(target)
    change(manifest, arrays)
    return check_artifact(artifact_format.Artifact(manifest, arrays))


def _set(key, value):
    def change(manifest, arrays):
        arrays[key] = np.asarray(arrays[key]).astype(np.int64)
        arrays[key].flat[0] = value
    return change


def _core(edit):
    def change(manifest, arrays):
        edit(manifest["mapping"]["cores"])
    return change


@pytest.mark.parametrize("target, change, part", [
    ("loihi2", _set("p0.vth", loihi2_data.VTH_MAX + 1), "vth"),
    ("loihi2", _set("p0.du", 4096), "du"),
    ("loihi2", _set("p0.dv", -1), "dv"),
    ("loihi2", _set("p0.bias_mant", 2**12), "bias mantissa"),
    ("loihi2", _set("c0.weight", 3), "odd"),  # the random weights are mixed-sign
    ("loihi2", _set("c0.weight", 256), "mixed-sign mantissas"),
    ("loihi2", lambda m, a: m["program"]["connections"][0]["attrs"].update(delay=63), "delays"),
    ("loihi2", lambda m, a: m["program"]["connections"][0]["attrs"].update(weight_exp=8), "exponent"),
    ("loihi2", _core(lambda cores: cores.pop()), "on no core"),
    ("loihi2", _core(lambda cores: cores.append(dict(cores[-1], core=len(cores)))), "on several"),
    ("loihi2", _core(lambda cores: cores[-1]["usage"].update(fan_in_axons=1)), "below the actual"),
    ("emulator", _set("p0.dv", 4096), "dv"),
    ("emulator", _set("c0.weight", 255), "mixed-sign"),
    ("spinnaker", _set("c0.weight", 70000), "uint16"),
    ("spinnaker", _set("c0.synapse_type", 2), "synapse types"),
    ("spinnaker", _set("p0.exp_tc", 30000), "exp_tc"),
    ("spinnaker", lambda m, a: m["program"]["attrs"]["ring_buffer_shift"].update(lif=[17, 0]), "shift"),
    ("spinnaker", lambda m, a: m["program"]["connections"][0]["attrs"].update(delay=0), "delays"),
    ("spinnaker", lambda m, a: m["program"]["connections"][0]["attrs"].update(delay=289), "delays"),
    ("spinnaker", _core(lambda cores: cores.pop(0)), "on no core"),  # an input slice
])
def test_checker_detects_each_kind_of_violation(target, change, part):
    assert _artifact(target)[0]["mapping"]["fits"]
    errors = _broken(target, change)
    assert any(part in e for e in errors), errors


def test_checker_accepts_fresh_artifacts_and_core_caps():
    for target in ("loihi2", "spinnaker", "emulator"):
        manifest, arrays = _artifact(target, neurons_per_core=2)
        assert check_artifact(artifact_format.Artifact(manifest, arrays), neurons_per_core=2) == []
        assert check_artifact(artifact_format.Artifact(manifest, arrays), neurons_per_core=1) != []


# ---------------------------------------------------------------- regressions (fixed here)


def test_sparse_weights_rounding_to_zero_before_empty_rows_map():
    """compiler/mapping.py::_fan_in counted non-zero weights per row with np.add.reduceat over
    indptr[:-1]; when the last rows of a sparse matrix are empty, indptr holds len(weights) and
    reduceat raised IndexError ("index 2 out-of-bounds in add.reduceat"). Graph: Linear 8x8 with
    W[0,0] = 1, W[0,1] = 1e-4 (sparse: 2 of 64, the second rounds to 0 at 8 bits) -> LIF(8)."""
    w = np.zeros((8, 8))
    w[0, 0], w[0, 1] = 1.0, 1e-4
    for target in ("loihi2", "emulator", "spinnaker"):
        compiled = compile_model(_lif_graph(w), Options(target=target, dt=1e-3, allow_degraded=True))
        assert check_artifact(compiled.to_artifact()) == []
        if target == "loihi2":  # the 1e-4 weight rounds to 0: one synapse left
            assert compiled.mapping.cores[-1].usage["synapses"] == 1


# ---------------------------------------------------------------- issues found (regressions; one strict xfail)


def test_loihi2_constant_drive_before_first_input():
    """compiler/quantize/fixed_point.py::_population set v_init = -s * v_reset only. On Loihi every
    population runs from tick 0 but its input (and the float model's step 0) arrives at tick
    `latency`; a bias (or a leak towards v_leak != v_reset) integrated during those ticks. Graph:
    Input(1) -> Affine(w=0, b=0.3) -> IF(r=1, v_th=10), dt=1e-3: float v(t) = 3e-4 (t+1); Loihi
    (aligned by verify) gave 3e-4 (t+2), one extra step of drive (10% at t=9; an IF keeps it for
    ever, a LIF spikes up to `latency` steps early). Fixed: compiler/quantize/prestart.py picks
    the start state that the latency ticks bring to the step-0 state (as SpiNNaker's _prestart)."""
    from neurodeploy.emulator.reference import simulate
    from neurodeploy.analysis.verify import emulate_like_reference

    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([1])}),
               "fc": nir.Affine(weight=np.zeros((1, 1)), bias=np.array([0.3])),
               "if": nir.IF(r=np.ones(1), v_threshold=np.full(1, 10.0), v_reset=np.zeros(1)),
               "output": nir.Output(output_type={"output": np.array([1])})},
        edges=[("input", "fc"), ("fc", "if"), ("if", "output")], type_check=False)
    compiled = compile_model(graph, Options(target="loihi2", dt=1e-3))
    pop = compiled.program.populations[0]
    assert pop.latency == 1
    x = np.zeros((1, 10, 1), dtype=np.float32)
    ref = simulate(compiled.net, x, record=("v",), dtype="float64")["v.if"]
    emu = emulate_like_reference(compiled.program, x)["v.if"]
    bias = int(pop.params["bias_mant"][0]) << int(pop.params["bias_exp"][0])
    drive_steps = np.rint(emu[0, :, 0] * float(pop.scale[0]) / bias)
    np.testing.assert_array_equal(drive_steps, np.arange(1, 11))  # t + 1 steps of bias at step t
    np.testing.assert_allclose(emu, ref, rtol=0.5 / bias)  # only the bias's rounding remains


def test_loihi2_output_axons_per_core_are_respected():
    """neurodeploy/targets/loihi2.py declares fan_out_axons = 4096 per core. Was: compiler/mapping.py
    ::_loihi2_usage computed only neurons, memory, fan-in axons and synapses, so the limit was never
    enforced (fixed: map_program now places again with capped slices). Graph: Input(4) ->
    Linear(5000x4) -> LIF(5000) -> LIF(5000) (one-to-one edge). The first LIF fits one core (80 KB)
    by memory, but each of its 5000 neurons needs an output axon to a core of the second layer:
    5000 > 4096. Expected: the mapper splits the layer (or refuses); was: one core, 5000 axons."""
    n = 5000

    def lif(k):
        return nir.LIF(tau=np.full(k, 0.01), r=np.ones(k), v_leak=np.zeros(k), v_threshold=np.ones(k),
                       v_reset=np.zeros(k))

    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([4])}),
               "fc": nir.Linear(weight=np.full((n, 4), 0.5)), "lif": lif(n), "lif2": lif(n),
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "lif2"), ("lif2", "output")], type_check=False)
    try:
        compiled = compile_model(graph, Options(target="loihi2", dt=1e-3))
    except NeurodeployError:
        return  # refusing is a correct answer
    assert check_artifact(compiled.to_artifact()) == []


def test_emulator_profile_saturates_instead_of_wrapping():
    """docs/targets.md: the generic emulator profile's state "saturates instead of wrapping".
    Was: emulator/fixed_point.py::_Synapses.receive (and fixed_point_fast's kernel) wrapped every
    summed input to int32 (Lava's rule) for every target. Graph: Input(3000) -> Linear(1x3000, all
    1.0) -> LIF(tau=10 ms, v_th=0.1), all inputs spiking at step 0: the float model spikes at step
    0; the emulator target (mantissa 128 << 13 per synapse, 3000 of them: 3.1e9 > 2^31) wrapped to a
    negative input, v = -0.8 and no spike (fixed: the generic profile now saturates). On loihi2 the
    wrap is what Lava does; there the saturation_risk warning's "v saturates" is inexact."""
    from neurodeploy.emulator.reference import simulate
    from neurodeploy.analysis.verify import emulate_like_reference

    n = 3000
    graph = _lif_graph(np.ones((1, n)), threshold=0.1)
    compiled = compile_model(graph, Options(target="emulator", dt=1e-3))
    x = np.zeros((1, 5, n), dtype=np.float32)
    x[0, 0] = 1
    ref = simulate(compiled.net, x)["spikes.lif"]
    emu = emulate_like_reference(compiled.program, x)["spikes.lif"]
    assert ref[0, 0, 0] == 1
    assert emu[0, 0, 0] == 1, f"emulated v = {emulate_like_reference(compiled.program, x)['v.lif'][0, :, 0]}"
