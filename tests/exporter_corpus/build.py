"""Regenerate the corpus: export every case, write the files, run each framework, write the manifest."""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .spec import KINDS, Case, Exporter, npz_bytes, one_line, version

MANIFEST = "manifest.json"
FORMAT = 1


def all_cases() -> list[Case]:
    from . import nirtorch_cases, norse_cases, rockpool_cases, sinabs_cases, snntorch_cases

    return [*norse_cases.norse_cases(), *norse_cases.neurodeploy_cases(), *snntorch_cases.cases(),
            *sinabs_cases.cases(), *rockpool_cases.cases(), *nirtorch_cases.cases()]


def unavailable(exporter: Exporter) -> str | None:
    """Why the exporter cannot run here (a one-line import error), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter.importer is not None:
                exporter.importer()
            for module in exporter.modules:
                importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not installed here"
        return one_line(exc)
    return None


def attempt(case: Case, path: Path | None = None) -> tuple[Any, str | None, str | None]:
    """Build the model, export it and ``nir.write`` it (to ``path``, else to a temporary file
    that is removed again).

    Returns (graph, stage, error): stage is "export" or "nir.write" when that step raised, and
    error the exception's one-line message; both None on success.
    """
    import nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module, sample = case.make()
        try:
            graph = case.export(module, sample)
        except Exception as exc:  # noqa: BLE001 - recording the upstream failure is the point
            return None, "export", one_line(exc)
    target = path if path is not None else Path(tempfile.mkdtemp(prefix="corpus-")) / "probe.nir"
    try:
        nir.write(str(target), graph)
    except Exception as exc:  # noqa: BLE001
        if target.exists():
            target.unlink()
        return graph, "nir.write", one_line(exc)
    finally:
        if path is None:
            if target.exists():
                target.unlink()
            target.parent.rmdir()
    return graph, None, None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nir_read(path: Path) -> str:
    """Whether nir 1.0.8's own reader accepts the file ("ok" or its one-line error)."""
    import nir

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nir.read(str(path))
    except Exception as exc:  # noqa: BLE001
        return one_line(exc)
    return "ok"


def _base_entry(case: Case) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "case": case.stem,
        "exporter": case.exporter.name,
        "package": case.exporter.package,
        "version": version(case.exporter.package),
        "api": case.exporter.api,
        "kinds": list(case.kinds),
        "model": case.model,
        "expect": case.expect,
    }
    if case.note:
        entry["note"] = case.note
    if case.upstream_failure:
        stage, exc_type, message = case.upstream_failure
        entry["expected_failure"] = {"stage": stage, "type": exc_type, "message": message}
    if case.not_expressible:
        entry["reason"] = case.not_expressible
    return entry


def build_case(case: Case, out: Path, missing: str | None) -> dict[str, Any]:
    entry = _base_entry(case)
    if case.not_expressible:
        entry["status"] = "not_expressible"
        return entry
    if missing:
        entry["status"] = "not_installed"
        entry["error"] = missing
        return entry
    path = out / f"{case.stem}.nir"
    _, stage, error = attempt(case, path)
    if stage is not None:
        entry.update(status="failed_upstream", stage=stage, error=error)
        return entry
    # The file exists: run the framework on a fresh copy of the model (the export may have run it).
    x = case.inputs.make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module, _ = case.make()
        traces = case.run(module, x)
    reference = out / f"{case.stem}.npz"
    arrays = {"input": x, **{k: np.asarray(v, dtype=np.float64) for k, v in traces.items()}}
    reference.write_bytes(npz_bytes(arrays))
    entry.update(
        status="exported",
        file=path.name,
        reference=reference.name,
        nir_read=_nir_read(path),
        sha256={"nir": _sha256(path), "npz": _sha256(reference)},
        input=case.inputs.as_dict(),
        compared=sorted(k for k in traces),
        semantics=dict(case.semantics),
        tolerance=case.tolerance.as_dict(),
        compile=case.expected_compile(),
    )
    if case.nominal:
        entry["nominal"] = {"semantics": dict(case.nominal), "expect": "mismatch"}
    if case.load_error:
        entry["load_error"] = case.load_error
    if case.mismatch:
        entry["mismatch"] = case.mismatch
    if case.patch:
        entry["patch"] = {**case.patch(module), "expect": case.patch_expect}
    return entry


def versions() -> dict[str, str | None]:
    names = ("nir", "nirtorch", "torch", "numpy", "h5py", "norse", "snntorch", "sinabs", "rockpool", "neurodeploy")
    return {name: version(name) for name in names}


def build(out: str | os.PathLike, exporters: Iterable[str] | None = None) -> dict[str, Any]:
    """Regenerate the corpus into ``out`` (created; stale files of this corpus are replaced).

    ``exporters``: only these exporter names (default: all). Returns the manifest, also written
    to ``out/manifest.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(exporters) if exporters is not None else None
    cases = [c for c in all_cases() if wanted is None or c.exporter.name in wanted]
    for old in list(out.glob("*__*.nir")) + list(out.glob("*__*.npz")):
        old.unlink()
    availability: dict[str, str | None] = {}
    entries = []
    for case in cases:
        if case.exporter.name not in availability:
            availability[case.exporter.name] = unavailable(case.exporter)
        entries.append(build_case(case, out, availability[case.exporter.name]))
    manifest = {
        "format": FORMAT,
        "kinds": list(KINDS),
        "versions": versions(),
        "exporters": {c.exporter.name: {"package": c.exporter.package, "api": c.exporter.api,
                                        "assumed_dt": c.exporter.assumed_dt,
                                        "available": availability[c.exporter.name] is None}
                      for c in cases},
        "cases": entries,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def load_manifest(out: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(out) / MANIFEST).read_text())
