"""The shipped model zoo: every file loads, the float reference reproduces norse's simulation
of the trained module (rebuilt from the .nir file itself), and accuracies hold."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy import models
from neurodeploy.api import simulate
from neurodeploy.models import data, definitions
from neurodeploy.convert.norse import run_norse, write_norse

V_TOL = 1e-5
SUBSET = 64
TRAINED = [n for n in models.names() if models.get(n).readout is not None]
PAPER_CSV = Path(__file__).parents[1] / "data" / "nir_paper" / "lif" / "lif_norse.csv"


def _compare(ours: dict, ref: dict) -> None:
    keys = sorted(k for k in ours if k != "output")
    assert sorted(ref) == keys
    for key in keys:
        a, b = ours[key], np.asarray(ref[key])
        assert a.shape == b.shape, key
        if key.startswith("spikes."):
            diff = int((a.astype(np.uint8) != b.astype(np.uint8)).sum())
            assert diff == 0, f"{key}: {diff} spikes differ"
        else:
            err = float(np.max(np.abs(a - b.astype(np.float32))))
            assert err <= V_TOL, f"{key}: max |v error| {err}"


@pytest.mark.parametrize("name", models.names())
def test_zoo_file_loads(name):
    info = models.get(name)
    assert info.path.is_file(), f"{info.path} missing: run python -m neurodeploy.models.train {name}"
    graph = nir.read(str(info.path))
    assert float(graph.metadata["neurodeploy.dt"]) == pytest.approx(info.dt, rel=1e-12)
    assert graph.metadata["neurodeploy.integrator"] == "euler"
    assert graph.metadata["neurodeploy.reset"] == "zero"
    assert tuple(int(s) for s in graph.nodes["input"].input_type["input"]) == info.input_shape
    if info.readout is not None:
        node, rule = info.readout
        assert rule in models.RULES
        assert node in graph.nodes
        assert isinstance(graph.nodes[node], (nir.LI, nir.CubaLI))
        assert tuple(graph.nodes[node].output_type["output"]) == (info.classes,)
    x, y = data.test_set(name)
    assert x.dtype == np.float32 and x.shape[1:] == (info.steps, *info.input_shape)
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert len(y) == (len(x) if info.readout is not None else 0)


@pytest.mark.parametrize("name", TRAINED)
def test_reference_equals_norse(name):
    module = definitions.load(name)  # norse module rebuilt from the .nir weights
    x, _ = data.test_set(name, n=SUBSET)
    ours = run_norse(module, x)
    ref = simulate(models.path(name), x, record=("v",))
    _compare(ours, ref)
    # a trained network is not silent
    assert any(ours[k].any() for k in ours if k.startswith("spikes."))


@pytest.mark.parametrize("name", TRAINED)
def test_zoo_file_is_what_the_exporter_writes(name, tmp_path):
    """Re-exporting the rebuilt module reproduces the shipped file byte for byte."""
    module = definitions.load(name)
    write_norse(module, definitions.sample(name), tmp_path / "again.nir", dt=definitions.DT)
    assert (tmp_path / "again.nir").read_bytes() == models.path(name).read_bytes()


def test_digits_mlp_accuracy_on_float_reference():
    x, y = data.test_set("digits_mlp")
    traces = simulate(models.path("digits_mlp"), x, record=("v",))
    acc = models.accuracy("digits_mlp", traces, y)
    assert acc >= 0.90, acc


@pytest.mark.parametrize("name", [n for n in TRAINED if n != "digits_mlp"])
def test_other_accuracies_on_float_reference(name):
    x, y = data.test_set(name, n=256)
    traces = simulate(models.path(name), x, record=("v",))
    acc = models.accuracy(name, traces, y)
    assert acc >= 0.85, acc
    # the float reference and norse decide identically
    norse_pred = models.predict(name, run_norse(definitions.load(name), x))
    assert np.array_equal(models.predict(name, traces), norse_pred)


def test_lif_paper_reproduces_the_papers_norse_trace():
    x, _ = data.test_set("lif_paper")
    paper = np.loadtxt(PAPER_CSV, delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(x[0, :, 0], paper[:, 0])
    ref = simulate(models.path("lif_paper"), x, record=("v",))
    spikes = np.asarray(ref["spikes.lif1"])[0, :, 0]
    assert np.flatnonzero(spikes).tolist() == [460, 510, 710, 760]
    np.testing.assert_array_equal(spikes.astype(np.float32), paper[:, 2])
    np.testing.assert_allclose(np.asarray(ref["v.lif1"])[0, :, 0], paper[:, 1], rtol=0, atol=1e-6)
    # and norse itself, built with the same parameters, agrees
    module, dt = definitions.lif_paper_norse()
    _compare(run_norse(module, x), ref)
    graph = nir.read(str(models.path("lif_paper")))
    lif = graph.nodes["lif1"]
    assert float(lif.tau[0]) == pytest.approx(2.5e-3) and float(lif.v_threshold[0]) == pytest.approx(0.1)


def test_decode_rules():
    trace = np.zeros((2, 3, 4), np.float32)
    trace[0, 0, 1] = 5.0  # early peak
    trace[0, 1:, 2] = 2.0  # larger sum
    trace[1, 2, 3] = 1.0  # last step
    assert models.decode("v_max", trace).tolist() == [1, 3]
    assert models.decode("v_sum", trace).tolist() == [1, 3]
    trace[0, 1:, 2] = 3.0
    assert models.decode("v_sum", trace)[0] == 2
    assert models.decode("v_last", trace).tolist() == [2, 3]
    with pytest.raises(ValueError):
        models.decode("nope", trace)


def test_registry_import_is_light():
    code = ("import sys, neurodeploy.models as m; m.names(); m.path('digits_mlp'); "
            "print(sorted(k for k in ('torch', 'norse', 'sklearn') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_temporal_task_is_deterministic_and_balanced():
    x1, y1 = data.temporal_task(200, seed=5)
    x2, y2 = data.temporal_task(200, seed=5)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert set(y1.tolist()) == {0, 1, 2, 3}
    # every channel bursts once (TEMPORAL_BURST consecutive spikes) in every sample
    for k in range(5):
        for ch in range(data.TEMPORAL_CHANNELS):
            run = np.convolve(x1[k, :, ch], np.ones(data.TEMPORAL_BURST), mode="valid")
            assert run.max() == data.TEMPORAL_BURST


def test_events_task_is_deterministic_and_physical():
    x, y = data.events_task(160, seed=5)
    assert x.shape == (160, data.EVENTS_STEPS, 2, data.EVENTS_SIZE, data.EVENTS_SIZE)
    assert x.dtype == np.float32 and set(np.unique(x)) <= {0.0, 1.0}
    x2, y2 = data.events_task(160, seed=5)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    # a shorter set is the start of a longer one, across the chunk boundary
    x3, y3 = data.events_task(130, seed=5)
    assert np.array_equal(x3, x[:130]) and np.array_equal(y3, y[:130])
    assert not np.array_equal(data.events_task(8, seed=6)[0], x[:8])
    assert set(y.tolist()) == set(range(len(data.EVENTS_MOTIONS)))
    on, off = x[:, :, 0].sum(axis=(1, 2, 3)), x[:, :, 1].sum(axis=(1, 2, 3))
    expand, contract = data.EVENTS_MOTIONS.index("expand"), data.EVENTS_MOTIONS.index("contract")
    assert np.all(on[y == expand] > 3 * off[y == expand])  # a growing bright shape: ON events
    assert np.all(off[y == contract] > 3 * on[y == contract])
    # a shape moving right: ON events (leading edge) right of the OFF events (trailing edge)
    cols = np.arange(data.EVENTS_SIZE)
    for k in np.flatnonzero(y == data.EVENTS_MOTIONS.index("right"))[:5]:
        on_x = (x[k, :, 0].sum(axis=(0, 1)) * cols).sum() / x[k, :, 0].sum()
        off_x = (x[k, :, 1].sum(axis=(0, 1)) * cols).sum() / x[k, :, 1].sum()
        assert on_x > off_x + 2


def test_subsets_are_the_start_of_the_sets():
    for name in TRAINED:
        x, y = data.test_set(name, n=5)
        assert len(x) == len(y) == 5
    full_x, full_y = data.test_set("digits_conv")
    x, y = data.test_set("digits_conv", n=5)
    assert np.array_equal(x, full_x[:5]) and np.array_equal(y, full_y[:5])
    assert np.array_equal(data.train_set("temporal_rnn", n=7)[0], data.train_set("temporal_rnn")[0][:7])


def test_main_job_row_of_the_event_camera_model(tmp_path):
    """The main job's table has a row for events_motion with an accuracy on every target."""
    from neurodeploy.models import main_job

    assert "events_motion" in models.names()
    row = main_job.run_model("events_motion", tmp_path, samples=16)
    for target in main_job.TARGETS:
        assert row[target].endswith(")") and "%" in row[target], row
        assert (tmp_path / f"events_motion.{target}.ndp").is_file()
    assert float(row["float"].rstrip("%")) >= 80.0
