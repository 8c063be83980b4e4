"""What a corpus case is, and the small helpers every exporter module shares.

A case is one small, seeded model for one exporter. It says how to build the model, how to
export it, how to run the framework's own simulation, and what is expected of the result:
the export fails upstream, or the file exists and neurodeploy loads it (or rejects it with a
named error), reproduces the framework within a tolerance (or shows a documented mismatch),
and compiles for each target (or fails with a named error).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

TARGETS = ("loihi2", "spinnaker", "emulator")

# The columns of the corpus table. A case covers one or more of them.
KINDS = ("dense", "conv", "recurrent", "cubalif", "if", "li", "delay", "scalar")
KIND_TITLES = {
    "dense": "dense (Linear -> spiking, per-neuron params)",
    "conv": "conv (Conv2d -> spiking)",
    "recurrent": "recurrent",
    "cubalif": "CubaLIF (current synapse)",
    "if": "IF",
    "li": "LI readout",
    "delay": "delays",
    "scalar": "scalar (default) params",
}

SUBTRACT_UNSUPPORTED = "cannot reset by subtraction"


@dataclass(frozen=True)
class Exporter:
    name: str  # the prefix of every file name, e.g. "snntorch"
    package: str  # the distribution whose version is recorded
    api: str  # the export function, in words
    modules: tuple[str, ...]  # what must import for the exporter to run
    assumed_dt: str  # the time step the exporter assumes, in words
    importer: Callable[[], Any] | None = None  # imports the exporter's modules, where a plain import is unsafe


@dataclass(frozen=True)
class Inputs:
    """Seeded Bernoulli spikes of shape (batch, steps, *shape), times ``scale``."""

    shape: tuple[int, ...]
    steps: int = 40
    batch: int = 2
    p: float = 0.4
    seed: int = 0
    scale: float = 1.0

    def make(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        spikes = rng.random((self.batch, self.steps, *self.shape)) < self.p
        return spikes.astype(np.float64) * self.scale

    def as_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "steps": self.steps, "batch": self.batch, "p": self.p,
                "seed": self.seed, "scale": self.scale}


@dataclass(frozen=True)
class Tolerance:
    """How a file's float reference run is compared with the framework's run.

    spikes: "equal" (every spike of every compared layer) or "rate" (per-neuron spike counts
    may differ by at most ``rate_atol`` spikes per step). v: compared with ``np.allclose(rtol,
    atol)`` when ``v_rtol`` is not None. ``dtype``: the float reference's precision.
    """

    spikes: str = "equal"
    rate_atol: float = 0.0
    v_rtol: float | None = 1e-5
    v_atol: float | None = 1e-6
    dtype: str = "float32"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"spikes": self.spikes, "dtype": self.dtype}
        if self.spikes == "rate":
            out["rate_atol"] = self.rate_atol
        if self.v_rtol is not None:
            out["v"] = {"rtol": self.v_rtol, "atol": self.v_atol}
        return out


@dataclass
class Case:
    exporter: Exporter
    name: str  # "dense_lif": the file is "<exporter>__<name>.nir"
    kinds: tuple[str, ...]
    model: str  # the model, in words
    make: Callable[[], tuple[Any, Any]] | None = None  # -> (module, export sample)
    export: Callable[[Any, Any], Any] | None = None  # (module, sample) -> nir graph
    run: Callable[[Any, np.ndarray], dict[str, np.ndarray]] | None = None  # framework's own run
    inputs: Inputs | None = None
    semantics: dict[str, Any] = field(default_factory=dict)  # dt, integrator, reset, spike_amplitude
    tolerance: Tolerance = field(default_factory=Tolerance)
    # Expectations (checked by tests/convert/test_corpus.py):
    upstream_failure: tuple[str, str, str] | None = None  # (stage, exception type, part of message)
    not_expressible: str | None = None  # why this exporter cannot write this kind of model
    load_error: str | None = None  # part of the NeurodeployError neurodeploy's loader raises
    mismatch: str | None = None  # the known export bug that keeps the file from matching
    patch: Callable[[Any], dict[str, Any]] | None = None  # module -> {"fields", "semantics"} that fix it
    patch_expect: str = "match"  # "mismatch" where the patch fixes only part of the problem
    nominal: dict[str, Any] | None = None  # the semantics the exporter claims, if they do not match
    compile: dict[str, str | None] | None = None  # target -> part of the expected error (None: compiles)
    note: str = ""

    @property
    def stem(self) -> str:
        return f"{self.exporter.name}__{self.name}"

    def expected_compile(self) -> dict[str, str | None]:
        if self.compile is not None:
            return dict(self.compile)
        if self.load_error:  # the loader's error, whatever the target
            return {t: self.load_error for t in TARGETS}
        subtract = self.semantics.get("reset") == "subtract"
        return {t: (SUBTRACT_UNSUPPORTED if subtract and t != "emulator" else None) for t in TARGETS}

    @property
    def expect(self) -> str:
        if self.not_expressible:
            return "not_expressible"
        if self.upstream_failure:
            return "failed_upstream"
        if self.load_error:
            return "rejected"
        return "mismatch" if self.mismatch else "match"


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def one_line(exc: BaseException, limit: int = 240) -> str:
    """``Type: first line of the message``, at most ``limit`` characters."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0].strip()}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive with fixed entry dates and order: the same arrays give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue())
    return buffer.getvalue()


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def as_list(value: Any) -> list[float]:
    """Parameter values for the manifest (JSON): a flat list of Python floats."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]
