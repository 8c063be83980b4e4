"""export_norse: every supported norse/torch module, written to .nir, read back and run by the
float reference, must reproduce norse's own simulation (identical spikes, |v error| <= 1e-5)."""
from __future__ import annotations

import collections
import warnings

import nir
import numpy as np
import pytest
import torch

import norse.torch as snn
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.leaky_integrator_box import LIBoxParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_box import LIFBoxParameters
from norse.torch.functional.iaf import IAFParameters
from norse.torch.functional.reset import reset_subtract

from neurodeploy.api import simulate
from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.convert.norse import (
    InitialStateWarning,
    export_norse,
    layer_names,
    load_weights,
    run_norse,
    write_norse,
)

V_TOL = 1e-5
T = 30
BATCH = 4


def t(x):
    return torch.as_tensor(x, dtype=torch.float32)


def _gain(module: torch.nn.Module, gain: float) -> torch.nn.Module:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(gain)
            if isinstance(m, (snn.LIFRecurrentCell, snn.LILinearCell)):
                m.input_weights.mul_(gain)
    return module


def _excitatory(layer: torch.nn.Module) -> torch.nn.Module:
    """Non-negative weights: keeps a leak-free IF neuron's v bounded (a strongly inhibited IF
    neuron drifts to |v| ~ 1e3, where float32 rounding alone exceeds the 1e-5 tolerance)."""
    with torch.no_grad():
        layer.weight.abs_()
    return layer


def _spikes(shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((BATCH, T, *shape), generator=g) < p).float()


# name -> (builder, input shape, initial state of v in norse that the reference shares)
def _case_linear():
    return snn.SequentialState(torch.nn.Linear(6, 5), snn.LIFBoxCell()), (6,)


def _case_linear_nobias():
    return snn.SequentialState(torch.nn.Linear(6, 5, bias=False), snn.LIFBoxCell()), (6,)


def _case_conv2d():
    return snn.SequentialState(torch.nn.Conv2d(2, 3, 3, padding=1), snn.LIFBoxCell()), (2, 6, 6)


def _case_conv2d_stride_nobias():
    m = snn.SequentialState(
        _excitatory(torch.nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False)),
        snn.IAFCell(IAFParameters(v_th=t(2.0)))
    )
    return m, (2, 7, 7)


def _case_lifbox_per_neuron():
    p = LIFBoxParameters(
        tau_mem_inv=t([50.0, 100.0, 200.0, 400.0, 125.0]),
        v_leak=t([0.0, 0.1, -0.2, 0.05, 0.0]),
        v_th=t([0.5, 0.8, 1.0, 0.3, 0.6]),
        v_reset=t([0.0, -0.1, 0.1, 0.0, -0.3]),
    )
    return snn.SequentialState(torch.nn.Linear(6, 5), snn.LIFBoxCell(p)), (6,)


def _case_lif_cuba():
    p = LIFParameters(
        tau_syn_inv=t([100.0, 200.0, 250.0, 500.0, 300.0]),
        tau_mem_inv=t([50.0, 100.0, 80.0, 200.0, 100.0]),
        v_leak=t(0.05),
        v_th=t([0.4, 0.5, 0.6, 0.3, 0.45]),
        v_reset=t(-0.05),
    )
    return snn.SequentialState(torch.nn.Linear(6, 5), snn.LIFCell(p)), (6,)


def _case_libox():
    p = LIBoxParameters(tau_mem_inv=t([50.0, 100.0, 300.0, 70.0]), v_leak=t([0.0, 0.2, -0.1, 0.0]))
    return snn.SequentialState(torch.nn.Linear(6, 4), snn.LIBoxCell(p)), (6,)


def _case_li_cuba():
    p = LIParameters(tau_syn_inv=t([100.0, 200.0, 400.0, 250.0]), tau_mem_inv=t(80.0),
                     v_leak=t(0.1))
    return snn.SequentialState(torch.nn.Linear(6, 4), snn.LICell(p)), (6,)


def _case_iaf():
    p = IAFParameters(v_th=t([1.0, 2.0, 0.5, 1.5, 1.2]), v_reset=t([0.0, 0.2, -0.5, 0.0, 0.1]))
    return snn.SequentialState(torch.nn.Linear(6, 5), snn.IAFCell(p)), (6,)


def _case_lifrec():
    p = LIFParameters(tau_syn_inv=t(250.0), tau_mem_inv=t(120.0), v_th=t(0.5))
    return snn.SequentialState(snn.LIFRecurrentCell(6, 8, p=p)), (6,)


def _case_lifrec_autapses():
    p = LIFParameters(tau_syn_inv=t(200.0), tau_mem_inv=t(100.0),
                      v_th=t(np.linspace(0.3, 0.7, 7)), v_reset=t(-0.1))
    cell = snn.LIFRecurrentCell(5, 7, p=p, autapses=True)
    return snn.SequentialState(cell, torch.nn.Linear(7, 3), snn.LICell()), (5,)


def _case_lilinear():
    return snn.SequentialState(torch.nn.Linear(6, 6), snn.LIFBoxCell(), snn.LILinearCell(6, 3)), (6,)


def _case_pools():
    m = snn.SequentialState(
        torch.nn.Conv2d(1, 2, 3, padding=1),
        snn.LIFBoxCell(LIFBoxParameters(v_th=t(0.5))),
        torch.nn.AvgPool2d(2),  # -> nir.AvgPool2d
        torch.nn.Conv2d(2, 2, 1),
        snn.LIFBoxCell(LIFBoxParameters(v_th=t(0.2))),
        torch.nn.AvgPool2d(2, divisor_override=1),  # -> nir.SumPool2d
        torch.nn.Flatten(),
        _excitatory(torch.nn.Linear(8, 4)),
        snn.IAFCell(IAFParameters(v_th=t(20.0))),
    )
    return m, (1, 8, 8)


def _case_lppool():
    m = snn.SequentialState(
        torch.nn.Conv2d(1, 2, 3, padding=1), snn.LIFBoxCell(LIFBoxParameters(v_th=t(0.5))),
        torch.nn.LPPool2d(1, 2), torch.nn.Flatten(), torch.nn.Linear(32, 3), snn.LIBoxCell(),
    )
    return m, (1, 8, 8)


def _case_mixed():
    m = snn.SequentialState(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        snn.LIFBoxCell(LIFBoxParameters(v_th=t(0.4))),
        torch.nn.AvgPool2d(2, divisor_override=1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 20),
        snn.LIFCell(LIFParameters(v_th=t(0.3))),
        snn.LIFRecurrentCell(20, 12, p=LIFParameters(v_th=t(0.3))),
        _excitatory(torch.nn.Linear(12, 6, bias=False)),
        snn.IAFCell(IAFParameters(v_th=t(1.0))),
        torch.nn.Linear(6, 4),
        snn.LICell(),
        torch.nn.Linear(4, 3),
        snn.LIBoxCell(),
    )
    return m, (1, 8, 8)


def _case_nested():
    m = snn.SequentialState(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(18, 7)),
        snn.LIFBoxCell(LIFBoxParameters(v_th=t(0.5))),
        torch.nn.Linear(7, 3),
        snn.LIBoxCell(),
    )
    return m, (2, 3, 3)


def _case_bare_cell():
    return snn.LIFBoxCell(LIFBoxParameters(tau_mem_inv=t(300.0), v_th=t(0.3))), (5,)


CASES = {
    name[len("_case_"):]: fn for name, fn in dict(globals()).items() if name.startswith("_case_")
}


# weight gains that give every spiking layer a moderate rate on 30% input spikes
GAINS = {"mixed": 2.5, "conv2d_stride_nobias": 5.0, "lifrec": 3.0, "lifrec_autapses": 3.0, "conv2d": 20.0, "pools": 20.0, "lppool": 40.0, "lilinear": 20.0,
         "lifbox_per_neuron": 20.0}


@pytest.fixture(params=sorted(CASES))
def case(request):
    torch.manual_seed(sum(map(ord, request.param)))
    module, shape = CASES[request.param]()
    _gain(module, GAINS.get(request.param, 10.0))
    return request.param, module, shape


def _compare(module, x, tmp_path, dt=1e-3, name="m"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = write_norse(module, x[:, 0], tmp_path / f"{name}.nir", dt=dt)
    nonzero_start = any(issubclass(w.category, InitialStateWarning) for w in caught)
    ours = run_norse(module, x, initial_v="zero" if nonzero_start else "norse")
    ref = simulate(tmp_path / f"{name}.nir", x.numpy(), record=("v",))
    neuron_keys = sorted(k for k in ours if k != "output")
    assert sorted(ref) == neuron_keys
    for key in neuron_keys:
        a, b = ours[key], ref[key]
        assert a.shape == b.shape, key
        if key.startswith("spikes."):
            assert np.array_equal(a.astype(np.uint8), np.asarray(b).astype(np.uint8)), (
                f"{key}: {int((a != b).sum())} spikes differ"
            )
        else:
            err = float(np.max(np.abs(a - np.asarray(b, dtype=np.float32))))
            assert err <= V_TOL, f"{key}: max |v error| {err}"
    return graph, ours, ref


def test_export_matches_norse(case, tmp_path):
    name, module, shape = case
    x = _spikes(shape, seed=1)
    graph, ours, _ = _compare(module, x, tmp_path, name=name)
    # the comparison must not be vacuous: every spiking layer spikes, but not always
    for key, a in ours.items():
        if key.startswith("spikes."):
            rate = float(a.mean())
            assert 0.01 < rate < 0.95, f"{name}: {key} spike rate {rate}"
        elif key.startswith("v."):
            assert float(np.abs(a).max()) > 1e-3, f"{name}: {key} never moves"


def test_real_valued_inputs(tmp_path):
    torch.manual_seed(3)
    module, shape = _case_mixed()
    x = torch.randn(BATCH, T, *shape) * 0.8
    _compare(module, x, tmp_path)


def test_non_default_dt(tmp_path):
    torch.manual_seed(4)
    dt = 5e-4
    module = snn.SequentialState(
        torch.nn.Linear(5, 6),
        snn.LIFBoxCell(LIFBoxParameters(tau_mem_inv=t(200.0), v_th=t(0.3)), dt=dt),
        torch.nn.Linear(6, 6),
        snn.LIFCell(LIFParameters(tau_syn_inv=t(400.0), tau_mem_inv=t(150.0), v_th=t(0.2)), dt=dt),
        snn.LIFRecurrentCell(6, 5, p=LIFParameters(v_th=t(0.2)), dt=dt),
        torch.nn.Linear(5, 4),
        snn.IAFCell(IAFParameters(v_th=t(0.5)), dt=dt),
        torch.nn.Linear(4, 2),
        snn.LICell(dt=dt),
    )
    _gain(module, 3.0)
    graph, ours, _ = _compare(module, _spikes((5,), p=0.4, seed=5), tmp_path, dt=dt)
    assert graph.metadata["neurodeploy.dt"] == dt
    assert np.allclose(graph.nodes["if1"].r, 1.0 / dt)
    assert np.allclose(graph.nodes["lif2"].w_in, (1 / 400.0) / dt)
    assert ours["spikes.lif1"].any() and ours["spikes.lif3"].any()


# ---------------------------------------------------------------------------------------
# structure and parameters


def _neuron_fields(node):
    return {k: v for k, v in vars(node).items()
            if k not in ("input_type", "output_type", "metadata")}


def test_parameters_are_per_neuron_float32_arrays(case):
    name, module, shape = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InitialStateWarning)
        graph = export_norse(module, torch.zeros(2, *shape))
    neuron_types = (nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI, nir.IF)
    found = 0
    for node_name, node in graph.nodes.items():
        if not isinstance(node, neuron_types):
            continue
        found += 1
        layer_shape = tuple(int(s) for s in node.output_type["output"])
        for field, value in _neuron_fields(node).items():
            assert isinstance(value, np.ndarray), (node_name, field, type(value))
            assert value.dtype == np.float32, (node_name, field, value.dtype)
            assert value.shape == layer_shape, (node_name, field, value.shape, layer_shape)
    assert found >= 1
    assert isinstance(graph.nodes["input"], nir.Input)
    assert tuple(graph.nodes["input"].input_type["input"]) == shape  # no batch dimension
    assert isinstance(graph.nodes["output"], nir.Output)


def test_default_time_constants_in_seconds():
    m = snn.SequentialState(
        torch.nn.Linear(3, 4), snn.LIFBoxCell(), torch.nn.Linear(4, 4), snn.LIFCell(),
        torch.nn.Linear(4, 4), snn.LIBoxCell(), torch.nn.Linear(4, 4), snn.LICell(),
        torch.nn.Linear(4, 2), snn.IAFCell(),
    )
    g = export_norse(m, torch.zeros(1, 3))
    assert list(g.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "fc3", "li1", "fc4", "li2",
                             "fc5", "if1", "output"]
    f32 = np.float32
    lif = g.nodes["lif1"]
    assert isinstance(lif, nir.LIF)
    np.testing.assert_array_equal(lif.tau, np.full(4, f32(0.01)))  # tau_mem_inv = 100 1/s
    np.testing.assert_array_equal(lif.r, np.ones(4, f32))
    np.testing.assert_array_equal(lif.v_threshold, np.ones(4, f32))
    np.testing.assert_array_equal(lif.v_reset, np.zeros(4, f32))
    cuba = g.nodes["lif2"]
    assert isinstance(cuba, nir.CubaLIF)
    np.testing.assert_array_equal(cuba.tau_syn, np.full(4, f32(0.005)))
    np.testing.assert_array_equal(cuba.tau_mem, np.full(4, f32(0.01)))
    np.testing.assert_allclose(cuba.w_in, np.full(4, 5.0), rtol=1e-6)  # tau_syn / dt
    assert isinstance(g.nodes["li1"], nir.LI)
    np.testing.assert_array_equal(g.nodes["li1"].tau, np.full(4, f32(0.01)))
    assert isinstance(g.nodes["li2"], nir.CubaLI)
    np.testing.assert_allclose(g.nodes["li2"].w_in, np.full(4, 5.0), rtol=1e-6)
    iaf = g.nodes["if1"]
    assert isinstance(iaf, nir.IF)
    np.testing.assert_allclose(iaf.r, np.full(2, 1000.0), rtol=1e-6)  # norse: v += x
    assert isinstance(g.nodes["fc1"], nir.Affine)
    assert g.nodes["fc1"].weight.dtype == np.float32


def test_layer_shapes_conv_pool_flatten():
    torch.manual_seed(0)
    m, shape = _case_mixed()
    g = export_norse(m, torch.zeros(3, *shape))
    conv = g.nodes["conv1"]
    assert isinstance(conv, nir.Conv2d)
    assert tuple(conv.input_shape) == (8, 8)
    assert g.nodes["lif1"].tau.shape == (4, 8, 8)
    assert isinstance(g.nodes["pool1"], nir.SumPool2d)
    flat = g.nodes["flatten1"]
    assert isinstance(flat, nir.Flatten)
    assert flat.start_dim == 0  # torch's start_dim=1 minus the batch dimension
    assert tuple(flat.input_type["input"]) == (4, 4, 4)
    assert tuple(flat.output_type["output"]) == (64,)
    assert isinstance(g.nodes["fc2"], nir.Linear)  # no bias
    assert isinstance(g.nodes["fc1"], nir.Affine)


def test_recurrent_cell_structure_and_autapses():
    torch.manual_seed(1)
    cell = snn.LIFRecurrentCell(3, 5)  # autapses=False zeroes the diagonal at construction
    m = snn.SequentialState(cell)
    g = export_norse(m, torch.zeros(1, 3))
    assert set(g.edges) == {("input", "lif1_in"), ("lif1_in", "lif1"), ("lif1", "lif1_rec"),
                            ("lif1_rec", "lif1"), ("lif1", "output")}
    np.testing.assert_array_equal(g.nodes["lif1_in"].weight, cell.input_weights.detach().numpy())
    rec = g.nodes["lif1_rec"].weight
    np.testing.assert_array_equal(rec, cell.recurrent_weights.detach().numpy())
    assert np.all(np.diag(rec) == 0) and np.any(rec != 0)
    # norse's forward uses the stored matrix as is: a diagonal written later is exported
    with torch.no_grad():
        cell.recurrent_weights.fill_diagonal_(0.25)
    g2 = export_norse(m, torch.zeros(1, 3))
    np.testing.assert_array_equal(np.diag(g2.nodes["lif1_rec"].weight), np.full(5, 0.25, np.float32))


def test_metadata_round_trip_and_deterministic_file(tmp_path):
    torch.manual_seed(2)
    m, shape = _case_mixed()
    x = torch.zeros(2, *shape)
    write_norse(m, x, tmp_path / "a.nir")
    write_norse(m, x, tmp_path / "b.nir")
    assert (tmp_path / "a.nir").read_bytes() == (tmp_path / "b.nir").read_bytes()
    g = nir.read(str(tmp_path / "a.nir"))
    md = g.metadata
    assert float(md["neurodeploy.dt"]) == 1e-3
    assert md["neurodeploy.integrator"] == "euler"
    assert md["neurodeploy.reset"] == "zero"
    assert float(md["neurodeploy.spike_amplitude"]) == 1.0
    assert md["neurodeploy.exporter"] == "neurodeploy.export_norse"
    # nir.read returns the nodes in HDF5 (alphabetical) order, not the written order
    assert sorted(g.nodes) == sorted(export_norse(m, x).nodes)
    assert sorted(g.edges) == sorted(export_norse(m, x).edges)


def test_names_follow_sequential_child_names():
    m = torch.nn.Sequential(collections.OrderedDict(
        [("features", torch.nn.Flatten()), ("hidden", torch.nn.Linear(8, 4))]
    ))
    g = export_norse(m, torch.zeros(1, 2, 4))
    assert list(g.nodes) == ["input", "features", "hidden", "output"]
    seq = snn.SequentialState(torch.nn.Linear(4, 4), snn.LIFBoxCell(), torch.nn.Linear(4, 2),
                              snn.LIBoxCell())
    assert layer_names(seq) == {"0": "fc1", "1": "lif1", "2": "fc2", "3": "li1"}


def test_reset_subtract_is_recorded(tmp_path):
    torch.manual_seed(5)
    p = LIFBoxParameters(v_th=t(0.5), reset_method=reset_subtract)
    m = _gain(snn.SequentialState(torch.nn.Linear(4, 3), snn.LIFBoxCell(p)), 2.0)
    x = _spikes((4,), p=0.5, seed=6)
    write_norse(m, x[:, 0], tmp_path / "s.nir")
    assert nir.read(str(tmp_path / "s.nir")).metadata["neurodeploy.reset"] == "subtract"
    mixed = snn.SequentialState(torch.nn.Linear(4, 3), snn.LIFBoxCell(p), snn.LIFCell())
    with pytest.raises(UnsupportedError, match="reset"):
        export_norse(mixed, x[:, 0])


def test_initial_state_warning():
    fc = torch.nn.Linear(2, 2)
    with torch.no_grad():
        fc.weight.zero_()
        fc.bias.fill_(0.5)
    m = snn.SequentialState(fc, snn.LIFBoxCell(LIFBoxParameters(v_leak=t(0.2))))
    with pytest.warns(InitialStateWarning, match="v_leak"):
        export_norse(m, torch.zeros(1, 2))
    default = snn.SequentialState(torch.nn.Linear(2, 2), snn.LIFBoxCell())
    with warnings.catch_warnings():
        warnings.simplefilter("error", InitialStateWarning)
        export_norse(default, torch.zeros(1, 2))
    x = torch.zeros(1, 3, 2)
    # norse starts at v_leak = 0.2: v1 = 0.2 + 0.1*((0.2 - 0.2) + 0.5)
    assert run_norse(m, x)["v.lif1"][0, 0, 0] == pytest.approx(0.25)
    # the reference (and initial_v="zero") start at 0: v1 = 0.1*((0.2 - 0) + 0.5)
    assert run_norse(m, x, initial_v="zero")["v.lif1"][0, 0, 0] == pytest.approx(0.07)


def test_load_weights_round_trip(tmp_path):
    torch.manual_seed(7)
    m, shape = _case_mixed()
    _gain(m, 2.5)
    x = _spikes(shape, seed=8)
    write_norse(m, x[:, 0], tmp_path / "w.nir")
    torch.manual_seed(99)
    fresh, _ = _case_mixed()
    load_weights(fresh, tmp_path / "w.nir", x[:, 0])
    a, b = run_norse(m, x), run_norse(fresh, x)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    other = snn.SequentialState(torch.nn.Linear(64, 3), snn.LIFBoxCell())
    with pytest.raises(NeurodeployError):
        load_weights(other, tmp_path / "w.nir", torch.zeros(1, 64))


# ---------------------------------------------------------------------------------------
# errors


def test_unsupported_module_names_path_and_type():
    m = snn.SequentialState(torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2), snn.LIFBoxCell())
    with pytest.raises(UnsupportedError) as info:
        export_norse(m, torch.zeros(1, 1, 6, 6))
    msg = str(info.value)
    assert "'1'" in msg and "torch.nn.modules.pooling.MaxPool2d" in msg
    assert "LIFBoxCell" in msg and "Supported types" in msg
    assert isinstance(info.value, NeurodeployError)


def test_unsupported_neuron_and_custom_module():
    with pytest.raises(NeurodeployError, match="LSNNCell"):
        export_norse(snn.SequentialState(torch.nn.Linear(2, 2), snn.LSNNCell()), torch.zeros(1, 2))

    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(UnsupportedError, match="the root module of type .*Custom"):
        export_norse(Custom(), torch.zeros(1, 2))


def test_other_errors():
    m = snn.SequentialState(torch.nn.Linear(2, 2), snn.LIFBoxCell(dt=1e-4))
    with pytest.raises(NeurodeployError, match="dt=0.0001"):
        export_norse(m, torch.zeros(1, 2), dt=1e-3)
    with pytest.raises(UnsupportedError, match="batch"):
        export_norse(torch.nn.Sequential(torch.nn.Flatten(0)), torch.zeros(2, 3))
    with pytest.raises(NeurodeployError, match="batch dimension"):
        export_norse(snn.LIFBoxCell(), torch.zeros(3))
    with pytest.raises(NeurodeployError, match="shape"):
        export_norse(snn.SequentialState(torch.nn.Linear(3, 2)), torch.zeros(1, 5))
    with pytest.raises(UnsupportedError, match="SequentialState"):
        export_norse(torch.nn.Sequential(torch.nn.Linear(2, 2), snn.LIFBoxCell()), torch.zeros(1, 2))
    shared = torch.nn.Linear(2, 2)
    with pytest.raises(UnsupportedError, match="same object"):
        export_norse(torch.nn.Sequential(shared, shared), torch.zeros(1, 2))
