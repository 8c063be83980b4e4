"""Byte-identical artifacts across runs, processes, hash seeds and thread counts.

Two zoo models (digits_mlp: dense layers; temporal_rnn: recurrent CubaLIF with a CubaLI readout),
every target, with and without ``--calibrate`` inputs, compiled

* in this process through the Python API (twice),
* in fresh processes through the command line (``neurodeploy.cli.main.main``), each with another
  PYTHONHASHSEED (0, 4242, random) and another BLAS/numba thread count,
* and once through ``python -m neurodeploy compile`` itself,

must give the same bytes, file for file. Every run writes into a sibling folder of the others, as
the artifact's provenance holds the source's path relative to the artifact's folder.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.format import artifact
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.models import get, paths

MODELS = ("digits_mlp", "temporal_rnn")
TARGETS = ("loihi2", "spinnaker", "emulator")
REPO = Path(__file__).resolve().parents[2]

DRIVER = r"""
import sys, warnings
warnings.simplefilter("ignore")
from neurodeploy.cli import main as cli
out, jobs = sys.argv[1], sys.argv[2:]
for job in jobs:
    model, target, path, calibrate = job.split("|")
    args = ["compile", path, "--target", target, "-o", f"{out}/{model}.{target}.{'cal' if calibrate else 'plain'}.ndp"]
    if calibrate:
        args += ["--calibrate", calibrate]
    code = cli.main(args)
    if code != 0:
        sys.exit(f"compile {job} exited {code}")
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Calibration inputs (seeded spike trains) and the job list shared by every run."""
    root = tmp_path_factory.mktemp("determinism")
    jobs = []
    for name in MODELS:
        path = paths()[name]
        if not path.exists():
            pytest.skip(f"{path} not built")
        model = get(name)
        rng = np.random.default_rng(sum(map(ord, name)))
        calib = root / f"{name}.calibration.npz"
        np.savez(calib, input=(rng.random((8, model.steps) + model.input_shape) < 0.3).astype(np.float32))
        for target in TARGETS:
            for cal in ("", str(calib)):
                jobs.append((name, target, str(path), cal))
    return root, jobs


def _name(job) -> str:
    model, target, _, cal = job
    return f"{model}.{target}.{'cal' if cal else 'plain'}.ndp"


def _in_process(root: Path, jobs, label: str) -> Path:
    from neurodeploy.format.npzio import read_inputs

    out = root / label
    out.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for job in jobs:
            model, target, path, cal = job
            inputs = read_inputs(cal, {"input": get(model).input_shape}) if cal else None
            compiled = compile_model(path, Options(target=target), inputs, cal or None)
            compiled.write(out / _name(job))
    return out


def _subprocess(root: Path, jobs, label: str, hash_seed: str, threads: str) -> Path:
    out = root / label
    out.mkdir()
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONWARNINGS="ignore", OMP_NUM_THREADS=threads,
               OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads)
    args = [sys.executable, "-c", DRIVER, str(out)] + ["|".join(job) for job in jobs]
    proc = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ndp"))}


def test_artifacts_are_byte_identical_across_processes_and_hash_seeds(workspace):
    root, jobs = workspace
    runs = {
        "api-1": _in_process(root, jobs, "api-1"),
        "api-2": _in_process(root, jobs, "api-2"),
        "cli-hashseed-0": _subprocess(root, jobs, "cli-0", "0", "1"),
        "cli-hashseed-4242": _subprocess(root, jobs, "cli-4242", "4242", "2"),
        "cli-hashseed-random": _subprocess(root, jobs, "cli-random", "random", "1"),
    }
    reference = _digests(runs["api-1"])
    assert sorted(reference) == sorted(_name(job) for job in jobs)
    for label, folder in runs.items():
        digests = _digests(folder)
        differing = sorted(name for name in reference if digests.get(name) != reference[name])
        assert not differing, f"{label}: {differing} differ from the first in-process run"
    # The calibrated artifacts really are calibrated (and differ from the plain ones).
    for model in MODELS:
        for target in TARGETS:
            plain = artifact.read(runs["api-1"] / f"{model}.{target}.plain.ndp")
            cal = artifact.read(runs["api-1"] / f"{model}.{target}.cal.ndp")
            assert plain.manifest["provenance"]["calibration"] is None
            assert cal.manifest["provenance"]["calibration"]["samples"] == 8
            assert cal.content_hash != plain.content_hash


def test_python_m_neurodeploy_compile_matches(workspace):
    """The installed entry point (`python -m neurodeploy compile`), with its own hash seed."""
    root, jobs = workspace
    reference = _in_process(root, jobs, "api-entry")
    env = dict(os.environ, PYTHONHASHSEED="77", PYTHONWARNINGS="ignore")
    for job in (jobs[1], jobs[-1]):  # digits_mlp on loihi2 with calibration, temporal_rnn on the emulator
        model, target, path, cal = job
        output = root / "cli-entry" / _name(job)  # a sibling of the reference: the same relative source path
        output.parent.mkdir(exist_ok=True)
        args = [sys.executable, "-m", "neurodeploy", "compile", path, "--target", target, "-o", str(output)]
        if cal:
            args += ["--calibrate", cal]
        proc = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert output.read_bytes() == (reference / _name(job)).read_bytes(), _name(job)
