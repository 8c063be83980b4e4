"""Reports and JSON name no absolute path of the machine that wrote them: files are named relative
to the output (with their SHA-256), counts carry their units."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.cli import main as cli
from neurodeploy.format import artifact
from neurodeploy.format.paths import portable, portable_text, relative
from neurodeploy.models import ZOO_DIR

REPO = Path(__file__).resolve().parents[2]
MODEL = ZOO_DIR / "lif_paper.nir"  # compiled where it lies, in the repository


def _main(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_portable(path: Path, *roots: Path) -> None:
    text = path.read_text()
    for root in roots:
        assert str(root) not in text, f"{path.name} names {root}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("portable")
    inputs = folder / "in.npz"
    np.savez(inputs, input=(np.random.default_rng(0).random((2, 20, 1)) < 0.3).astype(np.float32))
    ndp = folder / "m.loihi2.ndp"
    assert cli.main(["compile", str(MODEL), "--target", "loihi2", "-o", str(ndp), "--report", str(folder / "c.html"),
                     "--calibrate", str(inputs.resolve())]) == 0
    return {"folder": folder, "inputs": inputs, "ndp": ndp}


def test_reports_and_json_name_no_absolute_path(built: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    folder, ndp, inputs = built["folder"], built["ndp"], built["inputs"]
    assert _main(capsys, "profile", ndp, "--input", inputs, "--json", folder / "p.json",
                 "--html", folder / "p.html")[0] == 0
    assert _main(capsys, "verify", ndp, "--input", inputs, "--json", folder / "v.json")[0] in (0, 1)
    assert _main(capsys, "check", MODEL, "--target", "loihi2", "--json", folder / "k.json")[0] in (0, 1)
    for name in ("c.html", "p.html", "p.json", "v.json", "k.json"):
        _assert_portable(folder / name, folder.resolve(), REPO)
    page = (folder / "p.html").read_text()
    assert "lif_paper.nir (SHA-256 " in page  # the float model named with its hash
    verify = json.loads((folder / "v.json").read_text())
    named = verify["float_model"]["path"]  # relative to the JSON's folder; only the name if they share only /
    assert not Path(named).is_absolute()
    assert named == MODEL.name or (folder / named).resolve() == MODEL.resolve(), named


def test_manifest_names_no_absolute_path(built: dict[str, Path]) -> None:
    manifest = artifact.read(built["ndp"]).manifest
    assert str(built["folder"].resolve()) not in json.dumps(manifest) and f'"{REPO}' not in json.dumps(manifest)
    calibration = manifest["provenance"]["calibration"]
    assert calibration["input"] == "in.npz" and len(calibration["input_sha256"]) == 64


@pytest.mark.skipif(importlib.util.find_spec("spynnaker") is None, reason="sPyNNaker is not installed")
def test_spinnaker_mapping_report_names_no_absolute_path(built: dict[str, Path],
                                                         capsys: pytest.CaptureFixture) -> None:
    folder = built["folder"]
    sp = folder / "m.spinnaker.ndp"
    assert _main(capsys, "compile", MODEL, "--target", "spinnaker", "-o", sp)[0] == 0
    code, _, err = _main(capsys, "run", sp, "--input", built["inputs"], "-o", folder / "y.npz",
                         "--backend", "spinnaker")
    assert code == 1, err  # a virtual board maps without running
    report_path = folder / "y.spinnaker.json"
    _assert_portable(report_path, folder.resolve(), REPO)
    report = json.loads(report_path.read_text())
    assert report["artifact"] == "m.spinnaker.ndp" and len(report["artifact_sha256"]) == 64


def test_paths_relative_to_the_output(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    model = tmp_path / "a" / "m.nir"
    assert relative(model, tmp_path / "a" / "b") == "../m.nir"
    assert relative("/elsewhere/x.nir", tmp_path) == "x.nir"  # only the root in common: the name
    text = f"float model {model}, run in {tmp_path}/run/log.txt"
    assert portable_text(text, tmp_path / "a", [(tmp_path / "run", "<run folder>")]) == \
        "float model m.nir, run in <run folder>/log.txt"
    assert portable({"k": [str(model), "1/dt", "2 of 128 cores"]}, tmp_path) == {
        "k": ["a/m.nir", "1/dt", "2 of 128 cores"]}
    assert os.path.isabs(str(model))
