"""`neurodeploy sweep` on a zoo model over three targets, in one process and on a local Dask cluster."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurodeploy import models
from neurodeploy.format import artifact
from neurodeploy.cli import main as cli
from neurodeploy.models import data
from neurodeploy.format.program import from_manifest
from neurodeploy.analysis.sweep import parse_option, variants
from neurodeploy.analysis.verify import emulate_like_reference

SAMPLES = 48
ROW_KEYS = {"target", "options", "accuracy", "float_accuracy", "spike_agreement", "class_agreement", "cores",
            "chips", "energy_j", "latency_s", "health", "error"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    x, y = data.test_set("digits_mlp")
    path = tmp_path_factory.mktemp("sweep") / "in.npz"
    np.savez(path, input=x[:SAMPLES], labels=y[:SAMPLES])
    return path


def _sweep(inputs: Path, folder: Path, *extra: str) -> dict:
    out = folder / "sweep.json"
    args = ["sweep", str(models.path("digits_mlp")), "--input", str(inputs), "--targets", "loihi2,spinnaker,emulator",
            "--option", "per-neuron=false,true", "--json", str(out), "--artifacts", str(folder), *extra]
    assert cli.main(args) == 0
    return json.loads(out.read_text())


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "populations"} for r in rows]


def test_sweep_three_targets(inputs, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    table = _sweep(inputs, local, "--html", str(local / "sweep.html"))
    rows = table["rows"]
    assert [(r["target"], r["options"]) for r in rows] == [
        (t, {"per-neuron": p}) for t in ("loihi2", "spinnaker", "emulator") for p in (False, True)]
    labels = np.load(inputs)["labels"]
    x = np.load(inputs)["input"]
    for i, r in enumerate(rows):
        assert ROW_KEYS <= set(r) and r["error"] is None
        art = artifact.read(local / f"variant{i:02d}.{r['target']}.ndp")
        program = from_manifest(art.manifest["program"], art.arrays)
        expected = models.accuracy("digits_mlp", emulate_like_reference(program, x), labels)
        assert r["accuracy"] == pytest.approx(expected)
        assert r["cores"] == art.manifest["mapping"]["cores_used"] and r["chips"] >= 1
        assert 0.9 < r["spike_agreement"] <= 1.0
        assert (r["energy_j"] is None) == (r["target"] == "emulator")
    page = (local / "sweep.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    assert _comparable(_sweep(inputs, cluster, "--workers", "2", "--shard-size", "16")["rows"]) == _comparable(rows)


def test_variants_and_option_errors(capsys, inputs, tmp_path):
    options = [parse_option("per-neuron=false,true"), parse_option("weight-bits=4,8")]
    chosen = variants(["loihi2", "emulator"], options)
    assert len(chosen) == 2 + 4 and chosen[0] == ("loihi2", {"per-neuron": False})
    base = ["sweep", str(models.path("digits_mlp")), "--input", str(inputs), "--json", str(tmp_path / "s.json")]
    for extra, message in {("--option", "speed=1"): "expected NAME=V1,V2 with NAME one of",
                           ("--option", "per-neuron=maybe"): "expected true or false",
                           ("--targets", "loihi3"): "--targets loihi3: expected a comma-separated list"}.items():
        assert cli.main(base + list(extra)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_pareto_front_keeps_the_points_nothing_beats():
    from neurodeploy.analysis.sweep_report import pareto_front

    points = [(3.0, 90.0), (1.0, 80.0), (2.0, 85.0), (2.5, 84.0), (4.0, 90.0), (1.0, 70.0)]
    assert pareto_front(points) == [(1.0, 80.0), (2.0, 85.0), (3.0, 90.0)]


@pytest.mark.skipif(__import__("shutil").which("chromium") is None,
                    reason="chromium is not installed: run scripts/setup_browser.sh to render the sweep page")
def test_vision_model_sweep_renders_in_headless_chromium(tmp_path):
    """The event-camera model over three targets and two options: six rows, both plots decode."""
    import re
    import shutil
    import subprocess

    x, y = data.test_set("events_motion", n=24)
    inputs = tmp_path / "in.npz"
    np.savez(inputs, input=x, labels=y)
    out, page = tmp_path / "sweep.json", tmp_path / "sweep.html"
    args = ["sweep", str(models.path("events_motion")), "--input", str(inputs), "--targets",
            "loihi2,spinnaker,emulator", "--option", "per-neuron=false,true", "--json", str(out), "--html", str(page)]
    assert cli.main(args) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 6 and all(r["error"] is None and r["accuracy"] >= 0.8 for r in rows), rows
    chromium = shutil.which("chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}"]
    dom = subprocess.run([chromium, *flags, "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html_dom = dom.stdout
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", html_dom)) == 2
    assert html_dom.count("<tr") >= 7  # a header and one row per variant
