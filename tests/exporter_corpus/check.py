"""Check a built corpus with neurodeploy: load each file, run the float reference on the stored
input, compare with the framework's stored run, and compile for every target."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .spec import one_line, read_npz


def semantics_of(entry: dict[str, Any], patched: bool = False) -> dict[str, Any]:
    sem = dict(entry["semantics"])
    if patched:
        sem.update(entry["patch"].get("semantics", {}))
    return sem


def patched_graph(path: Path, patch: dict[str, Any]):
    """The file as neurodeploy reads it, with the patch's field values put in (nested nodes are
    named ``outer.inner``)."""
    from neurodeploy.compiler.frontend.reader import read_file

    raw = read_file(path)
    for dotted, values in patch["fields"].items():
        graph, *parts = raw, *dotted.split(".")
        for part in parts[:-1]:
            graph = graph.nodes[part].graph
        node = graph.nodes[parts[-1]]
        for name, value in values.items():
            old = np.asarray(node.fields[name])
            node.fields[name] = np.asarray(value, dtype=np.float64).reshape(old.shape).astype(old.dtype)
    return raw


def simulate(entry: dict[str, Any], out: Path, *, semantics: dict[str, Any] | None = None,
             patched: bool = False) -> dict[str, np.ndarray]:
    """neurodeploy's float reference on the case's file and stored input."""
    from neurodeploy.api import simulate as run

    path = Path(out) / entry["file"]
    source = patched_graph(path, entry["patch"]) if patched else path
    sem = semantics if semantics is not None else semantics_of(entry, patched)
    x = read_npz(Path(out) / entry["reference"])["input"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(source, x, dtype=entry["tolerance"]["dtype"], **sem)


def compare(entry: dict[str, Any], got: dict[str, np.ndarray], out: Path) -> dict[str, Any]:
    """Compare neurodeploy's traces with the framework's under the entry's tolerance.

    Returns {"ok", "spikes_equal", "spike_differences", "max_rate_difference", "max_abs_dv", "v_ok"}.
    """
    ref = read_npz(Path(out) / entry["reference"])
    tol = entry["tolerance"]
    steps = entry["input"]["steps"]
    result: dict[str, Any] = {"spikes_equal": True, "spike_differences": 0, "max_rate_difference": 0.0,
                              "max_abs_dv": 0.0, "v_ok": True, "missing": []}
    for key in entry["compared"]:
        if key not in got:
            result["missing"].append(key)
            continue
        a, b = np.asarray(got[key], dtype=np.float64), ref[key]
        if a.shape != b.shape:
            result["missing"].append(f"{key} shape {a.shape} != {b.shape}")
            continue
        if key.startswith("spikes."):
            diff = int(np.count_nonzero(a != b))
            result["spike_differences"] += diff
            result["spikes_equal"] &= diff == 0
            rate = np.abs(a.sum(axis=1) - b.sum(axis=1)) / steps
            result["max_rate_difference"] = max(result["max_rate_difference"], float(rate.max(initial=0.0)))
        else:
            dv = np.abs(a - b)
            dv = np.where(np.isfinite(dv), dv, np.inf)  # a non-finite v counts as an infinite error
            result["max_abs_dv"] = max(result["max_abs_dv"], float(np.max(dv, initial=0.0)))
            if "v" in tol:
                result["v_ok"] &= bool(np.allclose(a, b, rtol=tol["v"]["rtol"], atol=tol["v"]["atol"]))
    if tol["spikes"] == "equal":
        spikes_ok = result["spikes_equal"]
    else:
        spikes_ok = result["max_rate_difference"] <= tol["rate_atol"]
    result["ok"] = not result["missing"] and spikes_ok and result["v_ok"]
    return result


def compile_target(entry: dict[str, Any], out: Path, target: str) -> str:
    """"ok", or "<ErrorClass>: <message>" for a NeurodeployError. Any other exception propagates:
    it is a bug in neurodeploy, not an answer."""
    from neurodeploy.api import compile as run
    from neurodeploy.errors import NeurodeployError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(Path(out) / entry["file"], target, **entry["semantics"])
    except NeurodeployError as exc:
        return one_line(exc, limit=400)
    return "ok"


def load(entry: dict[str, Any], out: Path):
    """The file through neurodeploy's loader and lowering (NetworkIR), under the entry's semantics."""
    from neurodeploy.api import build

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build(Path(out) / entry["file"], **entry["semantics"])


def result_of(entry: dict[str, Any], out: Path) -> dict[str, Any]:
    """Everything the corpus table reports about one exported file."""
    from neurodeploy.errors import NeurodeployError

    res: dict[str, Any] = {}
    try:
        load(entry, out)
    except NeurodeployError as exc:
        res["load"] = one_line(exc)
        return res
    res["load"] = "ok"
    res["compare"] = compare(entry, simulate(entry, out), out)
    if "patch" in entry:
        res["patched"] = compare(entry, simulate(entry, out, patched=True), out)
    if "nominal" in entry:
        res["nominal"] = compare(entry, simulate(entry, out, semantics=entry["nominal"]["semantics"]), out)
    res["compile"] = {t: compile_target(entry, out, t) for t in entry["compile"]}
    res["deployed"] = {t: deployed_agreement(entry, out, t) for t, outcome in res["compile"].items() if outcome == "ok"}
    return res


__all__ = ["compare", "compile_target", "deployed_agreement", "load", "patched_graph", "result_of", "semantics_of", "simulate"]


def deployed_agreement(entry: dict[str, Any], out: Path, target: str) -> float:
    """Lowest spike agreement, over the spiking populations, between the float reference and the
    program compiled for ``target`` and emulated bit-accurately, on the case's stored input
    (``neurodeploy verify``'s measure: the fraction of equal (sample, step, neuron) spike values,
    aligned for the target's latency)."""
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.analysis.verify import compare as verify

    x = read_npz(Path(out) / entry["reference"])["input"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = compile_model(Path(out) / entry["file"], Options(target=target, **entry["semantics"]))
        report = verify(compiled.net, compiled.program, x)
    return min((p["spike_agreement"] for p in report["populations"].values() if "spike_agreement" in p),
               default=1.0)
