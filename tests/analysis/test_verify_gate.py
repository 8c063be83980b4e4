"""`neurodeploy verify ART.ndp`: the artifact as built against its float model, with CI gates,
and one time grid that `simulate`, `run --align float`, `verify` and `profile` agree on.

Every command runs through ``neurodeploy.cli.main.main`` exactly as typed on the command line.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.cli import main as cli
from neurodeploy.models import data, path

SAMPLES = 32


def _main(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> dict[str, Path]:
    """models/digits_mlp.nir and build/mlp.ndp compiled from it with --calibrate, as a user keeps them."""
    root = tmp_path_factory.mktemp("project")
    (root / "models").mkdir()
    model = root / "models" / "digits_mlp.nir"
    shutil.copy(path("digits_mlp"), model)
    x, _ = data.test_set("digits_mlp")
    inputs = root / "digits.npz"
    np.savez(inputs, input=x[:SAMPLES])
    ndp = root / "build" / "mlp.ndp"
    ndp.parent.mkdir()
    assert cli.main(["compile", str(model), "--target", "loihi2", "--calibrate", str(inputs), "-o", str(ndp)]) == 0
    return {"root": root, "model": model, "inputs": inputs, "ndp": ndp}


def _moved(deployed: dict[str, Path], tmp_path: Path, model: bool = True) -> Path:
    """A copy of the project (artifact, and the model unless ``model`` is False) to break safely."""
    (tmp_path / "build").mkdir()
    ndp = tmp_path / "build" / "mlp.ndp"
    shutil.copy(deployed["ndp"], ndp)
    if model:
        (tmp_path / "models").mkdir()
        shutil.copy(deployed["model"], tmp_path / "models" / "digits_mlp.nir")
    return ndp


def test_compile_records_the_source_relative_to_the_artifact(deployed: dict[str, Path]) -> None:
    from neurodeploy.format import artifact

    prov = artifact.read(deployed["ndp"]).manifest["provenance"]
    assert prov["source_relpath"] == "../models/digits_mlp.nir"
    assert prov["calibration"]["samples"] == SAMPLES


def test_artifact_passes_sane_gates(deployed: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _main(capsys, "verify", deployed["ndp"], "--input", deployed["inputs"],
                         "--min-class-agreement", "0.9", "--min-spike-agreement", "0.95", "--max-v-error", "5")
    assert code == 0, out
    assert f"verify {deployed['ndp']} as built, against {deployed['model']} (its SHA-256 matches" in out
    assert f"alignment: {SAMPLES} samples x 20 steps on the float model's grid (--align float)" in out
    assert out.rstrip().endswith("verify: PASS")


def test_impossible_gates_fail_with_exit_1(deployed: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _main(capsys, "verify", deployed["ndp"], "--input", deployed["inputs"],
                         "--min-class-agreement", "0.5", "--max-v-error", "0")
    assert code == 1, out
    assert re.search(r"gate --max-v-error: lif1 [0-9.e-]+ <= 0\? FAIL", out), out
    assert re.search(r"gate --min-class-agreement: li1 [0-9.]+ >= 0.5\? pass", out), out
    assert out.rstrip().endswith("verify: FAIL (a gate was not met)")


def test_json_has_a_result_per_population(deployed: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _main(capsys, "verify", deployed["ndp"], "--input", deployed["inputs"], "--json",
                         "--min-spike-agreement", "1.0", "--min-class-agreement", "0.9")
    report = json.loads(out)
    lif1, li1 = report["populations"]["lif1"], report["populations"]["li1"]
    assert report["passed"] is (code == 0) and code in (0, 1)
    assert lif1["gates"]["min_spike_agreement"] == {"value": lif1["spike_agreement"], "threshold": 1.0,
                                                    "passed": lif1["spike_agreement"] == 1.0}
    assert li1["gates"]["min_class_agreement"]["passed"] is True
    assert "v_max_error" in lif1 and "min_spike_agreement" not in li1["gates"]  # li1 does not spike
    assert report["gates"] == {"min_spike_agreement": 1.0, "min_class_agreement": 0.9}
    assert report["alignment"]["grid"] == "float" and report["float_model"]["sha256_matches_provenance"]


def test_modified_float_model_is_refused_by_name(deployed: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    ndp = _moved(deployed, tmp_path)
    model = tmp_path / "models" / "digits_mlp.nir"
    model.write_bytes(model.read_bytes() + b"\0")
    code, out, err = _main(capsys, "verify", ndp, "--input", deployed["inputs"])
    line = _error(err)
    assert code == 2 and out == ""
    assert f"{ndp}: {model} is not the float model it was compiled from" in line, line
    assert f"pass --against {model}" in line, line


def test_missing_float_model_is_refused_by_name(deployed: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    ndp = _moved(deployed, tmp_path, model=False)
    code, _, err = _main(capsys, "verify", ndp, "--input", deployed["inputs"])
    line = _error(err)
    assert code == 2
    assert f"its float model {tmp_path / 'models' / 'digits_mlp.nir'} (from the artifact's provenance) is missing" \
           in line and "--against MODEL.nir" in line, line


def test_against_overrides_the_provenance(deployed: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    ndp = _moved(deployed, tmp_path, model=False)
    code, out, _ = _main(capsys, "verify", ndp, "--input", deployed["inputs"], "--against", path("digits_mlp"),
                         "--min-class-agreement", "0.9")
    assert code == 0, out
    assert f"against {path('digits_mlp')} (its SHA-256 matches the artifact's provenance)" in out
    changed = tmp_path / "changed.nir"
    changed.write_bytes(Path(path("digits_mlp")).read_bytes() + b"\0")
    code, out, _ = _main(capsys, "verify", ndp, "--input", deployed["inputs"], "--against", changed)
    assert code == 0 and "NOT the file the artifact was compiled from (SHA-256 differs)" in out, out


def test_against_another_network_is_refused(deployed: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    other = path("temporal_rnn")
    code, _, err = _main(capsys, "verify", deployed["ndp"], "--input", deployed["inputs"], "--against", other)
    line = _error(err)
    assert code == 2 and f"{other}: input 'input' [64] of the artifact is" in line and "--against" in line, line


@pytest.mark.parametrize("args, message", [
    (["--target", "loihi2"], "--target: compile options of `verify MODEL.nir`; {ndp} is a compiled artifact"),
    (["--calibrate", "{inputs}"], "--calibrate: compile options of `verify MODEL.nir`"),
    (["--min-class-agreement", "95"], "--min-class-agreement 95.0: an agreement is a fraction from 0 to 1"),
    (["--max-v-error", "-1"], "--max-v-error -1.0: must be 0 or more"),
])
def test_bad_verify_options(deployed: dict[str, Path], args: list[str], message: str,
                            capsys: pytest.CaptureFixture) -> None:
    args = [a.format(inputs=deployed["inputs"]) for a in args]
    code, _, err = _main(capsys, "verify", deployed["ndp"], "--input", deployed["inputs"], *args)
    assert code == 2 and message.format(ndp=deployed["ndp"]) in _error(err), err


def test_nir_form_still_compiles_first(deployed: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _main(capsys, "verify", deployed["model"], "--target", "loihi2", "--input", deployed["inputs"],
                         "--min-class-agreement", "0.9")
    assert code == 0 and "compiled here for loihi2" in out and "verify: PASS" in out, out
    code, _, err = _main(capsys, "verify", deployed["model"], "--input", deployed["inputs"])
    assert code == 2 and "add --target (loihi2, spinnaker, emulator)" in _error(err)
    code, _, err = _main(capsys, "verify", deployed["model"], "--target", "loihi2", "--input", deployed["inputs"],
                         "--against", deployed["model"])
    assert code == 2 and "--against names the float model of an artifact" in _error(err)


def _spikes(npz: Path, key: str) -> np.ndarray:
    with np.load(npz) as f:
        return f[key]


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_spike_totals_agree_on_the_same_grid(target: str, deployed: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    """simulate == verify (float); run --align float == verify (deployed); profile counts the padded
    target grid, i.e. run --align float plus the spikes it reports as not kept; profile --no-pad
    counts what run --align target writes."""
    inputs, ndp, key = deployed["inputs"], tmp_path / f"mlp.{target}.ndp", "spikes.lif1"
    assert _main(capsys, "compile", deployed["model"], "--target", target, "-o", ndp)[0] == 0
    assert _main(capsys, "simulate", deployed["model"], "--input", inputs, "-o", tmp_path / "f.npz")[0] == 0
    code, out, _ = _main(capsys, "run", ndp, "--input", inputs, "-o", tmp_path / "a.npz", "--align", "float")
    assert code == 0 and f"{SAMPLES} samples x 20 steps on the float model's grid" in out, out
    not_kept = int(re.search(r"(\d+) spike\(s\) outside these steps not kept", out).group(1))
    code, out, _ = _main(capsys, "run", ndp, "--input", inputs, "-o", tmp_path / "t.npz")
    assert code == 0 and f"{SAMPLES} samples x 20 steps on the target's grid (--align target)" in out, out
    report = json.loads(_main(capsys, "verify", ndp, "--input", inputs, "--json")[1])["populations"]["lif1"]
    for flags, name in (((), "p.json"), (("--no-pad",), "q.json")):
        assert _main(capsys, "profile", ndp, "--input", inputs, "--json", tmp_path / name, *flags)[0] == 0
    padded, unpadded = (json.loads((tmp_path / n).read_text())["populations"]["lif1"]["spikes"]["total"]
                        for n in ("p.json", "q.json"))

    float_spikes, aligned = _spikes(tmp_path / "f.npz", key), _spikes(tmp_path / "a.npz", key)
    assert aligned.shape == float_spikes.shape
    assert report["spikes_reference"] == int(float_spikes.sum())
    assert report["spikes_emulated"] == int(aligned.sum())
    assert report["spike_agreement"] == float(np.mean(aligned.astype(bool) == float_spikes.astype(bool)))
    assert padded == int(aligned.sum()) + not_kept
    assert unpadded == int(_spikes(tmp_path / "t.npz", key).sum())
