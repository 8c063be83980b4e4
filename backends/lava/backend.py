"""Run loihi2 artifacts in Lava: the main-environment side.

Lava 0.10.0 needs Python 3.10 and numpy < 2, so it lives in its own environment (``.venv-lava``,
made by ``make lava`` / ``scripts/setup_lava.sh``). This module writes the inputs to a temporary
``.npz``, runs ``runner.py`` with that environment's interpreter and reads the traces back.
"""
from __future__ import annotations

import json
import importlib.util
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from neurodeploy.errors import NeurodeployError

RUNNER = Path(__file__).resolve().with_name("runner.py")
RECORDABLE = ("v", "u")
CONV_POLICIES = ("auto", "sparse")


class LavaBackendError(NeurodeployError):
    """Lava is missing, or the Lava run failed; the message says what to do."""


def repo_root() -> Path:
    """The folder that holds (or would hold) .venv-lava: the source checkout, else the working directory."""
    here = Path(__file__).resolve()
    root = here.parents[2]
    if (root / "scripts" / "setup_lava.sh").is_file():
        return root
    return Path.cwd()


def lava_python() -> Path:
    """The Lava environment's interpreter: $NEURODEPLOY_LAVA_PYTHON, else .venv-lava/bin/python."""
    env = os.environ.get("NEURODEPLOY_LAVA_PYTHON")
    if env:
        return Path(env)
    return repo_root() / ".venv-lava" / "bin" / "python"


def _require_python() -> Path:
    python = lava_python()
    if not python.exists():
        raise LavaBackendError(
            f"the Lava environment is missing ({python} not found): run `make lava` (needs Python 3.10), "
            f"or set NEURODEPLOY_LAVA_PYTHON to a Python 3.10 interpreter with lava-nc 0.10.0"
        )
    return python


def _package_dir() -> str:
    """The folder of neurodeploy/format/artifact.py, found without importing the package."""
    spec = importlib.util.find_spec("neurodeploy")
    return str(Path(next(iter(spec.submodule_search_locations))).resolve())


def _env() -> dict:
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(key, None)
    env["NEURODEPLOY_PKG"] = _package_dir()
    return env


def program_artifact(program: Any):
    """A minimal Artifact around a Program (neurodeploy.format.artifact.from_program)."""
    from neurodeploy.format import artifact as artifact_format

    return artifact_format.from_program(program)


def _write_artifact(source: Any, folder: Path, name: str) -> str:
    from neurodeploy.format import artifact as artifact_format
    from neurodeploy.format.program import Program

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise LavaBackendError(f"{path}: no such artifact file")
        return str(path.resolve())
    if isinstance(source, Program):
        source = program_artifact(source)
    if isinstance(source, artifact_format.Artifact):
        return str(artifact_format.write(source, folder / f"{name}.ndp"))
    raise LavaBackendError(f"cannot run a {type(source).__name__} in Lava: pass an .ndp path, an Artifact or a Program")


def _input_names(source: Any) -> list[str] | None:
    from neurodeploy.format import artifact as artifact_format
    from neurodeploy.format.program import Program

    if isinstance(source, Program):
        return list(source.inputs)
    if isinstance(source, artifact_format.Artifact):
        return list(source.manifest["program"]["inputs"])
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        return list(artifact_format.read(source).manifest["program"]["inputs"])
    return None


def _write_inputs(source: Any, inputs: Any, path: Path) -> None:
    if not isinstance(inputs, Mapping):
        names = _input_names(source)
        if names is not None and len(names) != 1:
            raise LavaBackendError(f"the program has inputs {', '.join(names)}; pass one array per input")
        inputs = {names[0] if names else "input": inputs}
    arrays = {}
    for key, value in inputs.items():
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            raise LavaBackendError(f"input '{key}': numeric arrays only")
        arrays[str(key)] = arr
    np.savez(path, **arrays)


def _record(record: Iterable[str] | str) -> list[str]:
    items = [r.strip() for r in record.split(",")] if isinstance(record, str) else [str(r) for r in record]
    items = [r for r in items if r]
    for item in items:
        if item not in RECORDABLE:
            raise LavaBackendError(f"cannot record '{item}' in Lava: choose from {', '.join(RECORDABLE)}")
    return items


def _invoke(args: list[str], folder: Path, progress: bool, timeout: float | None) -> None:
    python = _require_python()
    error_file = folder / "error.txt"
    cmd = [str(python), str(RUNNER)] + args + ["--error-file", str(error_file)]
    if progress:
        cmd.append("--progress")
    try:
        proc = subprocess.run(cmd, env=_env(), stdout=subprocess.PIPE, timeout=timeout,
                              stderr=None if progress else subprocess.PIPE, text=True)
    except subprocess.TimeoutExpired:
        raise LavaBackendError(f"the Lava run took longer than {timeout:.0f} s and was stopped") from None
    except OSError as exc:
        raise LavaBackendError(f"cannot start the Lava environment's Python {python}: {exc}; run `make lava`") from None
    if proc.returncode != 0:
        message = error_file.read_text().strip() if error_file.is_file() else ""
        if not message:
            lines = [l for l in (proc.stderr or "").splitlines() if l.strip()]
            message = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise LavaBackendError(f"Lava run failed: {message}")


class LavaTraces(dict):
    """The traces of a Lava run (``{key: array}``, as the emulator returns them) plus ``summary``:
    ``{"connections": {name: {"kind", "process", "reason"}}}``, which Lava process each connection ran
    as (a conv connection: ``Conv``, or ``Sparse`` with the reason Conv was not exact for it)."""

    summary: dict[str, Any]

    def __init__(self, traces: Mapping[str, np.ndarray], summary: dict[str, Any]):
        super().__init__(traces)
        self.summary = summary


def _read(path: Path, summary: Path) -> LavaTraces:
    with np.load(path, allow_pickle=False) as data:
        traces = {key: data[key] for key in data.files}
    info = json.loads(summary.read_text()) if summary.is_file() else {"connections": {}}
    return LavaTraces(traces, info)


def conv_paths(traces: Mapping[str, np.ndarray]) -> dict[str, str]:
    """``{conv connection: "Conv" | "Sparse"}`` of a Lava run's result."""
    summary = getattr(traces, "summary", {"connections": {}})
    return {name: entry["process"] for name, entry in summary["connections"].items() if entry["kind"] == "conv"}


def summary_lines(traces: Mapping[str, np.ndarray]) -> list[str]:
    """One line per conv connection of a Lava run: the process it ran as and, for Sparse, why."""
    summary = getattr(traces, "summary", {"connections": {}})
    lines = []
    for name, entry in summary["connections"].items():
        if entry["kind"] == "conv":
            why = f" ({entry['reason']})" if entry.get("reason") else ""
            lines.append(f"conv connection '{name}' ran as Lava {entry['process']}{why}")
    return lines


def _conv_policy(conv: str) -> str:
    if conv not in CONV_POLICIES:
        raise LavaBackendError(f"conv={conv!r}: choose from {', '.join(CONV_POLICIES)}")
    return conv


def run(artifact: Any, inputs: Any, record: Iterable[str] | str = ("v",), *, on_chip: bool = False,
        profile_out: str | os.PathLike | None = None, progress: bool = False,
        timeout: float | None = None, conv: str = "auto") -> LavaTraces:
    """Run ``artifact`` (an .ndp path, an Artifact or a Program) in Lava on ``inputs``.

    ``inputs``: one array ``(batch, steps, *input_shape)`` or a dict per input name, integer
    spike counts. Returns the keys of the emulator: ``spikes.<pop>`` (uint8) and the recorded
    ``v.<pop>`` / ``u.<pop>`` (int64), indexed by step like ``neurodeploy.emulator``.
    ``on_chip``: Loihi2HwCfg on a Loihi 2 system (needs Intel's lava-loihi extension);
    ``profile_out``: there, a JSON file with the on-chip profiler's energy/power/time breakdowns.
    ``conv``: ``"auto"`` runs conv connections as Lava's Conv process where it computes exactly what
    the emulator does (else Sparse), ``"sparse"`` always as Sparse. The result's ``summary`` (and
    ``summary_lines``) says which process each connection ran as.
    """
    items = _record(record)
    policy = _conv_policy(conv)
    _require_python()
    with tempfile.TemporaryDirectory(prefix="neurodeploy-lava-") as tmp:
        folder = Path(tmp)
        art = _write_artifact(artifact, folder, "program")
        _write_inputs(artifact, inputs, folder / "in.npz")
        args = [art, str(folder / "in.npz"), str(folder / "out.npz"), "--record", ",".join(items),
                "--conv", policy, "--summary", str(folder / "summary.json")]
        if on_chip:
            args.append("--on-chip")
            if profile_out is not None:
                args += ["--profile-out", str(Path(profile_out).resolve())]
        _invoke(args, folder, progress, timeout)
        return _read(folder / "out.npz", folder / "summary.json")


def run_many(jobs: Sequence[tuple[Any, Any]], record: Iterable[str] | str = ("v",), *, progress: bool = False,
             timeout: float | None = None, conv: str = "auto") -> list[LavaTraces]:
    """Run several ``(artifact, inputs)`` pairs in one Lava process (Lava's start-up is paid once);
    ``conv`` as in ``run``."""
    items = _record(record)
    policy = _conv_policy(conv)
    _require_python()
    with tempfile.TemporaryDirectory(prefix="neurodeploy-lava-") as tmp:
        folder = Path(tmp)
        spec = []
        for i, (art, inputs) in enumerate(jobs):
            path = _write_artifact(art, folder, f"job{i}")
            _write_inputs(art, inputs, folder / f"job{i}.in.npz")
            spec.append({"artifact": path, "input": str(folder / f"job{i}.in.npz"),
                         "output": str(folder / f"job{i}.out.npz"), "record": items, "conv": policy,
                         "summary": str(folder / f"job{i}.summary.json")})
        (folder / "jobs.json").write_text(json.dumps(spec))
        _invoke(["--jobs", str(folder / "jobs.json")], folder, progress, timeout)
        return [_read(Path(job["output"]), Path(job["summary"])) for job in spec]


def run_backend(artifact: Any, inputs: Any, *, record: Sequence[str], progress: bool,
                options: Mapping[str, Any]) -> dict:
    """The registry's entry point (backends/registry.py): ``run`` plus which process each conv took."""
    traces = run(artifact, inputs, record=record, on_chip=bool(options.get("on_chip")), progress=progress,
                 conv=options.get("conv") or "auto")
    for line in summary_lines(traces):
        print(line)
    return traces


def doctor() -> dict[str, Any]:
    """Can Lava run here: ``{"available": bool, "detail": str, "on_chip": bool}``."""
    report: dict[str, dict[str, Any]] = {}
    python = lava_python()
    if not python.exists():
        report["lava"] = {"available": False, "detail": f"{python} not found: run `make lava`"}
    else:
        probe = ("import lava, numpy; from lava.magma.core.run_configs import Loihi2SimCfg; "
                 "import importlib.metadata as m; from lava.utils import loihi; "
                 "print(m.version('lava-nc'), numpy.__version__, loihi.is_installed())")
        try:
            out = subprocess.run([str(python), "-c", probe], env=_env(), capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            report["lava"] = {"available": False, "detail": f"{python}: {exc}"}
        else:
            if out.returncode == 0:
                lava_version, numpy_version, on_chip = out.stdout.split()
                report["lava"] = {"available": True, "on_chip": on_chip == "True",
                                  "detail": f"lava-nc {lava_version}, numpy {numpy_version} ({python}); "
                                            f"on-chip (lava-loihi): {'yes' if on_chip == 'True' else 'no'}"}
            else:
                last = (out.stderr.strip().splitlines() or ["import failed"])[-1]
                report["lava"] = {"available": False, "detail": f"{python}: {last}; run `make lava`"}
    return report["lava"]
