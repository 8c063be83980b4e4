"""pytest plugin: pin a deployment's behaviour in a user's CI.

Installed as a pytest11 entry point, so any project that installs neurodeploy gets:

- ``neurodeploy_compile(model, target, **options)``: compile (cached per session), returns the
  compiled object (``.program``, ``.health``, ``.mapping``, ``.to_artifact()``);
- ``neurodeploy_emulate(compiled_or_program, inputs)``: bit-accurate traces on the float
  reference's step grid (``spikes.<node>``, ``v.<node>`` in float units);
- ``neurodeploy_golden``: ``neurodeploy_golden.check(name, traces)`` compares with
  ``<golden dir>/<name>.npz`` and records it when missing or with ``--neurodeploy-update-golden``;
- ``assert_traces_equal(expected, actual)``: an assertion with a readable diff;
- ``neurodeploy_verify(artifact, inputs, min_class_agreement=..., ...)`` (also the plain function
  ``assert_artifact_passes``): the gate of ``neurodeploy verify ART.ndp --input IN.npz
  --min-...``, checking the artifact as built against the float model its provenance names
  (``against=`` another one); returns the report, fails the test naming every unmet gate.

The golden folder defaults to ``tests/golden`` (ini option ``neurodeploy_golden_dir``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--neurodeploy-update-golden", action="store_true",
                     help="re-record neurodeploy golden traces instead of comparing")
    parser.addini("neurodeploy_golden_dir", "folder of neurodeploy golden traces", default="tests/golden")


def describe_difference(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray],
                        atol: float = 0.0) -> str | None:
    """None when equal; otherwise a short human-readable account of the first differences."""
    lines = []
    missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    if missing:
        lines.append(f"missing traces: {', '.join(missing)}")
    if extra:
        lines.append(f"unexpected traces: {', '.join(extra)}")
    for key in sorted(set(expected) & set(actual)):
        e, a = np.asarray(expected[key]), np.asarray(actual[key])
        if e.shape != a.shape:
            lines.append(f"{key}: shape {list(a.shape)}, expected {list(e.shape)}")
            continue
        bad = ~np.isclose(a.astype(np.float64), e.astype(np.float64), rtol=0, atol=atol) if atol else a != e
        if not bad.any():
            continue
        where = np.argwhere(bad)
        first = tuple(int(i) for i in where[0])
        desc = f"{key}: {int(bad.sum())} of {bad.size} values differ; first at (sample, step, ...) = {first}: " \
               f"got {a[first]!r}, expected {e[first]!r}"
        if key.startswith("spikes."):
            desc += f"; spike count {int(a.sum())}, expected {int(e.sum())}"
        lines.append(desc)
    return "\n".join(lines) if lines else None


def assert_traces_equal(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], atol: float = 0.0) -> None:
    diff = describe_difference(expected, actual, atol)
    if diff:
        raise AssertionError("traces differ:\n" + diff)


class Golden:
    def __init__(self, folder: Path, update: bool):
        self.folder = folder
        self.update = update

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.npz"

    def check(self, name: str, traces: dict[str, np.ndarray], atol: float = 0.0) -> None:
        path = self.path(name)
        if self.update or not path.exists():
            from neurodeploy.format.npzio import write_npz

            self.folder.mkdir(parents=True, exist_ok=True)
            write_npz(path, {k: np.asarray(v) for k, v in traces.items()})
            return
        with np.load(path, allow_pickle=False) as data:
            expected = {k: data[k] for k in data.files}
        diff = describe_difference(expected, traces, atol)
        if diff:
            raise AssertionError(f"deployment differs from golden trace {path} "
                                 f"(re-record with --neurodeploy-update-golden if intended):\n{diff}")


@pytest.fixture
def neurodeploy_golden(request: pytest.FixtureRequest) -> Golden:
    folder = Path(request.config.rootpath) / request.config.getini("neurodeploy_golden_dir")
    return Golden(folder, bool(request.config.getoption("--neurodeploy-update-golden")))


_CACHE: dict[tuple, Any] = {}


@pytest.fixture
def neurodeploy_compile() -> Callable[..., Any]:
    from neurodeploy.compiler.compile import Options, compile_model

    def compile_(model: Any, target: str, calibrate: Any = None, **options: Any):
        key = (str(model), target, tuple(sorted(options.items()))) if calibrate is None else None
        if key is not None and key in _CACHE:
            return _CACHE[key]
        compiled = compile_model(model, Options(target=target, **options), calibrate)
        if key is not None:
            _CACHE[key] = compiled
        return compiled

    return compile_


@pytest.fixture
def neurodeploy_emulate() -> Callable[..., dict[str, np.ndarray]]:
    from neurodeploy.analysis.verify import emulate_like_reference

    def emulate(compiled: Any, inputs: Any) -> dict[str, np.ndarray]:
        program = getattr(compiled, "program", compiled)
        return emulate_like_reference(program, inputs)

    return emulate


def assert_artifact_passes(artifact: Any, inputs: Any, *, against: Any = None,
                           min_spike_agreement: float | None = None, min_class_agreement: float | None = None,
                           max_v_error: float | None = None) -> dict[str, Any]:
    """``neurodeploy verify ARTIFACT --input INPUTS`` with its gates, as an assertion.

    ``artifact``: an .ndp path; ``inputs``: an array (batch, steps, *input_shape), a dict of them
    or an .npz path. Returns the verify report; raises AssertionError listing the unmet gates.
    """
    from neurodeploy.analysis.gate import Gates, apply_gates, format_gates, verify_artifact

    gates = Gates(min_spike_agreement, min_class_agreement, max_v_error)
    report = apply_gates(verify_artifact(artifact, inputs, against), gates)
    if not report["passed"]:
        failed = [line.strip() for line in format_gates(report) if line.endswith("FAIL")]
        raise AssertionError(f"{artifact} does not pass its gate: " + "; ".join(failed))
    return report


@pytest.fixture
def neurodeploy_verify() -> Callable[..., dict[str, Any]]:
    return assert_artifact_passes
