"""`verify` over shards: per-shard sums and extremes that merge into :func:`neurodeploy.analysis.verify.compare`'s report.

Each shard runs the float reference and the emulator on its samples and returns counts (spikes,
agreeing values, matching classes), extremes (largest membrane error, range, first divergent
step) and the sum of squared membrane errors. Merged, the counts, extremes and agreements equal
one process's; the RMS error sums squares shard by shard (the same bits for any number of workers,
since shards do not depend on them, and equal to one process's to rounding).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from neurodeploy.format.input_rules import range_excess
from neurodeploy.sharding.shard import Shard, load, shard_inputs

_NETS: dict[tuple, Any] = {}


@dataclass(frozen=True)
class VerifySpec:
    """What a verify shard needs: the artifact, its float model, its semantics and the input (paths)."""

    artifact: str
    content_hash: str
    model: str
    semantics: tuple[tuple[str, Any], ...]  # dt, integrator, reset, spike_amplitude
    input: str
    keys: tuple[tuple[str, str], ...]


def float_net(model: str, semantics: Iterable[tuple[str, Any]]) -> Any:
    """The float model's network, built once per process, file version and semantics."""
    from neurodeploy.compiler.build import build

    semantics = tuple(semantics)
    stat = os.stat(model)
    key = (model, stat.st_mtime_ns, stat.st_size, semantics)
    if key not in _NETS:
        if len(_NETS) >= 4:
            _NETS.pop(next(iter(_NETS)))
        _NETS[key] = build(model, warn=False, **dict(semantics))
    return _NETS[key]


def verify_shard(spec: VerifySpec, shard: Shard) -> dict[str, Any]:
    """The shard's partial comparison (see :func:`partial`)."""
    from neurodeploy.emulator import overflow, run_program
    from neurodeploy.emulator.reference import simulate
    from neurodeploy.analysis.verify import align_to_float, pad_for_latency

    art, program = load(spec.artifact, spec.content_hash)
    net = float_net(spec.model, spec.semantics)
    inputs = shard_inputs(spec.input, dict(spec.keys), shard.start, shard.stop)
    excess = range_excess(art.calibrated_inputs, inputs)
    steps = int(np.asarray(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs).shape[1])
    ref = simulate(net, inputs, record=("v",), dtype="float64")
    states = sorted({p.readout for p in program.populations} | {"v"})
    raw, counters = overflow.split(run_program(program, pad_for_latency(program, inputs), record=states,
                                               overflow=True))
    emu, dropped = align_to_float(program, raw, steps)
    return {"shard": shard, "overflow": overflow.summarize(program, counters), "excess": excess,
            **partial(program, ref, emu, dropped)}


def partial(program: Any, ref: dict, emu: dict, dropped: int) -> dict[str, Any]:
    """Counts and extremes of one shard, per population and output (traces on the float grid)."""
    pops = {p.name: {"latency": p.latency, **_spikes(p, ref, emu), **_membrane(p, program, ref, emu)}
            for p in program.populations}
    outputs = {out: {"population": name, **_classes(program.population(name), program, ref, emu)}
               for out, name in program.outputs.items()}
    return {"populations": pops, "outputs": outputs, "dropped": dropped}


def _spikes(pop: Any, ref: dict, emu: dict) -> dict[str, Any]:
    from neurodeploy.analysis.verify import spike_counts

    return spike_counts(pop, ref, emu)


def _membrane(pop: Any, program: Any, ref: dict, emu: dict) -> dict[str, Any]:
    """Verify's membrane error (float units, zero where either side just spiked) as sums to merge."""
    from neurodeploy.analysis.verify import membrane_error

    err = membrane_error(pop, program, ref, emu)
    if err is None:
        return {}
    r = ref[f"v.{pop.name}"]
    return {"v_max_error": float(err.max()) if err.size else 0.0, "v_sq_sum": float(np.sum(err**2)),
            "v_count": int(err.size), "v_range": float(np.abs(r).max()) if r.size else 0.0}


def scores(pop: Any, program: Any, ref: dict, emu: dict) -> tuple[str, np.ndarray, np.ndarray]:
    """(rule, float scores, emulated scores): verify's per-sample class scores of an output."""
    from neurodeploy.analysis.verify import to_float

    if pop.spiking:
        key = f"spikes.{pop.name}"
        r, e, rule = ref[key], emu[key], "spike count"
    else:
        r = ref[f"v.{pop.name}"]
        e = to_float(pop, program, emu[f"{pop.readout}.{pop.name}"].astype(np.float64), pop.readout)
        rule = "summed v"
    return rule, r.reshape(r.shape[0], r.shape[1], -1).sum(axis=1), e.reshape(e.shape[0], e.shape[1], -1).sum(axis=1)


def _classes(pop: Any, program: Any, ref: dict, emu: dict) -> dict[str, Any]:
    rule, r, e = scores(pop, program, ref, emu)
    if r.shape[1] < 2:
        return {"rule": rule, "matches": None, "samples": int(r.shape[0])}
    return {"rule": rule, "matches": int(np.sum(np.argmax(r, 1) == np.argmax(e, 1))), "samples": int(r.shape[0])}


# ------------------------------------------------------------------ merging

def merge(program: Any, partials: list[dict[str, Any]], samples: int, steps: int) -> dict[str, Any]:
    """One report, as :func:`neurodeploy.analysis.verify.compare` gives it, from every shard's partial."""
    from neurodeploy.analysis.verify import _alignment_info

    dropped = sum(p["dropped"] for p in partials)
    report: dict[str, Any] = {"target": program.target, "populations": {}, "outputs": {},
                              "alignment": _alignment_info(program, samples, steps, dropped)}
    for pop in program.populations:
        report["populations"][pop.name] = _merge_population([p["populations"][pop.name] for p in partials])
        report["populations"][pop.name]["overflow"] = _merge_overflow([p.get("overflow", {}).get(pop.name, {})
                                                                        for p in partials])
    for out in program.outputs:
        report["outputs"][out] = _merge_output([p["outputs"][out] for p in partials])
    return report


def _merge_population(parts: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"latency": parts[0]["latency"]}
    if "agree" in parts[0]:
        values = sum(p["values"] for p in parts)
        firsts = [p["first_divergent_step"] for p in parts if p["first_divergent_step"] is not None]
        entry.update(spikes_reference=sum(p["spikes_reference"] for p in parts),
                     spikes_emulated=sum(p["spikes_emulated"] for p in parts),
                     spike_agreement=sum(p["agree"] for p in parts) / values if values else 1.0,
                     first_divergent_step=min(firsts) if firsts else None)
    if "v_count" in parts[0]:
        count = sum(p["v_count"] for p in parts)
        entry.update(v_max_error=max(p["v_max_error"] for p in parts),
                     v_rms_error=float(np.sqrt(sum(p["v_sq_sum"] for p in parts) / count)) if count else 0.0,
                     v_range=max(max(p["v_range"] for p in parts), 1e-12))
    return entry


def _merge_overflow(parts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Per kind: events and samples summed over shards, the earliest first step."""
    merged: dict[str, dict[str, int]] = {}
    for part in parts:
        for kind, c in part.items():
            m = merged.setdefault(kind, {"count": 0, "samples": 0, "first_step": c["first_step"]})
            m["count"] += c["count"]
            m["samples"] += c["samples"]
            m["first_step"] = min(m["first_step"], c["first_step"])
    return merged


def _merge_output(parts: list[dict[str, Any]]) -> dict[str, Any]:
    first = parts[0]
    if first["matches"] is None:
        return {"population": first["population"], "rule": first["rule"], "class_agreement": None}
    samples = sum(p["samples"] for p in parts)
    return {"population": first["population"], "rule": first["rule"],
            "class_agreement": sum(p["matches"] for p in parts) / samples}
