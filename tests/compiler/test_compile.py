"""The compiler: artifacts, determinism, health, limits, target expressibility."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.format import artifact
from neurodeploy.compiler.compile import DegradedError, Options, analyse, compile_model
from neurodeploy.emulator.fixed_point import run
from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.models import paths

DATA = Path(__file__).parents[1] / "data" / "nir_paper" / "lif"
warnings.filterwarnings("ignore", category=UserWarning)


def lif_graph(weight: np.ndarray, bias: np.ndarray | None = None, tau=0.01, v_th=1.0) -> nir.NIRGraph:
    n_out, n_in = weight.shape
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Affine(weight=weight.astype(np.float32),
                         bias=(np.zeros(n_out) if bias is None else bias).astype(np.float32)),
        "lif": nir.LIF(tau=np.full(n_out, tau), r=np.ones(n_out), v_leak=np.zeros(n_out),
                       v_threshold=np.full(n_out, v_th), v_reset=np.zeros(n_out)),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


@pytest.mark.parametrize("target", ["loihi2", "emulator"])
@pytest.mark.parametrize("model", ["digits_mlp", "digits_conv", "temporal_rnn", "lif_paper"])
def test_every_zoo_model_compiles(model, target):
    path = paths()[model]
    if not path.exists():
        pytest.skip(f"{path} not built")
    compiled = compile_model(path, Options(target=target))
    assert compiled.mapping.fits
    assert not compiled.health.severe
    art = compiled.to_artifact()
    assert art.manifest["program"]["populations"]


def test_recompiling_gives_byte_identical_artifacts(tmp_path):
    path = paths()["digits_mlp"]
    a, b = tmp_path / "a.ndp", tmp_path / "b.ndp"
    artifact.write(compile_model(path, Options(target="loihi2")).to_artifact(), a)
    artifact.write(compile_model(path, Options(target="loihi2")).to_artifact(), b)
    assert a.read_bytes() == b.read_bytes()
    # ... and in a fresh process with another hash seed.
    code = ("import warnings; warnings.simplefilter('ignore');"
            "from neurodeploy.format import artifact; from neurodeploy.compiler.compile import Options, compile_model;"
            f"artifact.write(compile_model({str(path)!r}, Options(target='loihi2')).to_artifact(), {str(tmp_path / 'c.ndp')!r})")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert (tmp_path / "c.ndp").read_bytes() == a.read_bytes()


def test_tampered_artifact_is_rejected(tmp_path):
    import io
    import zipfile

    path = tmp_path / "m.ndp"
    artifact.write(compile_model(paths()["digits_mlp"], Options(target="emulator")).to_artifact(), path)
    art = artifact.read(path)
    art.arrays["c0.weight"] = art.arrays["c0.weight"].copy()
    art.arrays["c0.weight"].flat[0] += 1
    # Re-pack the modified weights but keep the old manifest (and its hash).
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buffer, "w") as dst:
        dst.writestr("manifest.json", src.read("manifest.json"))
        dst.writestr("arrays.npz", artifact._npz_bytes(art.arrays))
    bad = tmp_path / "bad.ndp"
    bad.write_bytes(buffer.getvalue())
    with pytest.raises(NeurodeployError, match="content hash mismatch"):
        artifact.read(bad)
    garbage = tmp_path / "garbage.ndp"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(NeurodeployError, match="garbage.ndp"):
        artifact.read(garbage)


def test_paper_lif_on_loihi2_spikes_within_one_step_of_exact_integration():
    trace = np.loadtxt(DATA / "lif_norse.csv", delimiter=",")
    exact = np.flatnonzero(np.loadtxt(DATA / "lif_exact.csv", delimiter=",")[:, 2])
    compiled = compile_model(DATA / "lif_norse.nir", Options(target="loihi2", dt=1e-4))
    pop = compiled.program.populations[0]
    out = run(compiled.program, trace[:, 0].reshape(1, -1, 1))
    spikes = np.flatnonzero(out[f"spikes.{pop.name}"][0, :, 0]) - pop.latency
    assert len(spikes) == len(exact)
    assert np.all(np.abs(spikes - exact) <= 1)


def test_reset_by_subtraction_is_refused_on_loihi2_with_the_nearest_option():
    with pytest.raises(UnsupportedError) as err:
        compile_model(DATA / "lif_norse.nir", Options(target="loihi2", dt=1e-4, reset="subtract"))
    message = str(err.value)
    assert "'1'" in message and "loihi2" in message and "--reset zero" in message


def test_health_catches_weights_lost_at_8_bits():
    rng = np.random.default_rng(0)
    weight = rng.uniform(1e-4, 3e-4, size=(20, 30))
    weight[0, 0] = 1.0  # one large weight sets the exponent; the rest round to zero
    graph = lif_graph(weight)
    with pytest.raises(DegradedError, match="round to zero"):
        compile_model(graph, Options(target="loihi2", dt=1e-3))
    compiled = compile_model(graph, Options(target="loihi2", dt=1e-3, allow_degraded=True))
    finding = next(f for f in compiled.health.findings if f.check == "weights_zeroed")
    assert finding.severity == "severe" and finding.layer == "fc" and finding.value > 0.9


def test_health_reports_collapsed_decay():
    graph = lif_graph(np.ones((2, 2)), tau=1e-4)  # tau < dt: Euler overshoots
    with pytest.raises(DegradedError, match="tau < dt"):
        compile_model(graph, Options(target="loihi2", dt=1e-3))


def test_check_reports_a_network_too_big_for_one_loihi2_chip(tmp_path):
    n = 128 * 8192 + 1000  # needs 129 cores
    graph = lif_graph(np.ones((n, 1)))
    compiled = analyse(graph, Options(target="loihi2", dt=1e-3))
    assert not compiled.mapping.fits
    chips = next(l for l in compiled.mapping.limits if l["limit"] == "chips")
    assert chips["value"] == 2 and chips["size"] == 1 and chips["margin"] == -1


def test_impossible_mapping_names_population_limit_and_size():
    from neurodeploy.compiler.mapping import MappingError

    graph = lif_graph(np.ones((4, 5000)))  # every neuron needs 5000 input axons; a core has 4096
    with pytest.raises(MappingError) as err:
        compile_model(graph, Options(target="loihi2", dt=1e-3))
    message = str(err.value)
    assert "'lif'" in message and "fan_in_axons" in message and "5000" in message and "4096" in message


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurodeploy", *args], capture_output=True, text=True)


def test_cli_compile_check_inspect_run(tmp_path):
    model = tmp_path / "lif.nir"
    model.write_bytes((DATA / "lif_norse.nir").read_bytes())
    done = _cli("compile", str(model), "--target", "loihi2", "--dt", "1e-4")
    assert done.returncode == 0, done.stderr
    art = tmp_path / "lif.loihi2.ndp"
    assert art.exists() and "cores" in done.stdout
    shown = _cli("inspect", str(art))
    assert shown.returncode == 0 and "cuba_lif" in shown.stdout
    check = _cli("check", str(model), "--target", "loihi2", "--dt", "1e-4", "--json")
    assert check.returncode == 0
    report = json.loads(check.stdout)
    assert report["fits"] and all({"limit", "value", "size", "margin"} <= set(l) for l in report["limits"])
    big = tmp_path / "big.nir"
    nir.write(big, lif_graph(np.ones((300, 1))))
    over = _cli("check", str(big), "--target", "loihi2", "--neurons-per-core", "2", "--json")
    assert over.returncode == 1 and not json.loads(over.stdout)["fits"]
    trace = np.loadtxt(DATA / "lif_norse.csv", delimiter=",")
    np.savez(tmp_path / "in.npz", input=trace[:, 0].reshape(1, -1, 1))
    ran = _cli("run", str(art), "--input", str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npz"), "--record", "v")
    assert ran.returncode == 0, ran.stderr
    with np.load(tmp_path / "out.npz") as out:
        assert int(out["spikes.1"].sum()) == 4 and "v.1" in out.files
    bad = _cli("check", str(tmp_path / "missing.nir"), "--target", "loihi2")
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_high_precision_layers_on_the_generic_profile_only():
    path = paths()["digits_conv"]
    plain = compile_model(path, Options(target="emulator"))
    wide = compile_model(path, Options(target="emulator", high_precision=("fc1",)))
    name = "pool1/flatten1/fc1"
    assert wide.health.metrics[name]["weight_error"] < plain.health.metrics[name]["weight_error"] / 4
    assert wide.health.metrics["conv1"] == plain.health.metrics["conv1"]  # other layers untouched
    with pytest.raises(UnsupportedError, match="--target emulator"):
        compile_model(path, Options(target="loihi2", high_precision=("fc1",)))
    with pytest.raises(UnsupportedError, match="no connection; connections are conv1"):
        compile_model(path, Options(target="emulator", high_precision=("nope",)))
