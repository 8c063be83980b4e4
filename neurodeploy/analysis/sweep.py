"""A design-space sweep: every target x option variant of one model, compiled, emulated and tabulated.

:func:`variants` expands ``--targets`` and ``--option NAME=V1,V2`` into compile options; the
client compiles each variant into an artifact file, then every (variant, shard) job runs on the
cluster (:func:`sweep_shard`: the float reference, the emulator once, verify's counts, the profile's
energy and latency, the classes under the readout rule, the run-time overflow counters) and
:func:`row` merges a variant's shards into one row of the table.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from neurodeploy.emulator import overflow
from neurodeploy.errors import OptionError
from neurodeploy.sharding.shard import Shard, load, shard_inputs
from neurodeploy.sharding.verify import float_net, partial

# --option NAME: (Options field, value type, targets it applies to; None: every target)
OPTIONS: dict[str, tuple[str, type, tuple[str, ...] | None]] = {
    "per-neuron": ("per_neuron", bool, None),
    "neurons-per-core": ("neurons_per_core", int, None),
    "chips": ("chips", int, None),
    "allow-degraded": ("allow_degraded", bool, None),
    "weight-bits": ("weight_bits", int, ("emulator",)),
    "state-bits": ("state_bits", int, ("emulator",)),
    "decay-bits": ("decay_bits", int, ("emulator",)),
}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def parse_option(text: str) -> tuple[str, list[Any]]:
    """``NAME=V1,V2`` -> (NAME, [values]) with values of the option's type."""
    name, sep, values = text.partition("=")
    if not sep or name not in OPTIONS or not values:
        raise OptionError(f"--option {text}: expected NAME=V1,V2 with NAME one of {', '.join(OPTIONS)}")
    kind = OPTIONS[name][1]
    return name, [_value(name, kind, v.strip()) for v in values.split(",")]


def _value(name: str, kind: type, text: str) -> Any:
    if kind is bool:
        if text.lower() not in _TRUE | _FALSE:
            raise OptionError(f"--option {name}={text}: expected true or false")
        return text.lower() in _TRUE
    try:
        return kind(text)
    except ValueError:
        raise OptionError(f"--option {name}={text}: expected an integer") from None


def variants(targets: Sequence[str], options: Sequence[tuple[str, list[Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """(target, {option: value}) for every target and combination; options a target ignores are left
    out of its variants (so they are not repeated)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for target in targets:
        applying = [(n, vals) for n, vals in options if OPTIONS[n][2] is None or target in OPTIONS[n][2]]
        for combo in itertools.product(*(vals for _, vals in applying)):
            chosen = dict(zip((n for n, _ in applying), combo))
            if (target, chosen) not in out:
                out.append((target, chosen))
    return out


def compile_options(target: str, chosen: dict[str, Any], semantics: dict[str, Any]) -> Any:
    """The compiler's Options of one variant."""
    from neurodeploy.compiler.compile import Options

    fields = {OPTIONS[name][0]: value for name, value in chosen.items()}
    return Options(target=target, **semantics, **fields)


# ------------------------------------------------------------------ readout

def readout_of(model: str | Path, program: Any, given: str | None) -> tuple[str, str]:
    """(population, rule) that decides the class: ``--readout NODE:RULE``, else the zoo's rule for a
    shipped model, else verify's (spike count of a spiking output, summed v otherwise)."""
    from neurodeploy import models

    names = [p.name for p in program.populations]
    if given:
        node, _, rule = given.partition(":")
        if node not in names or rule not in models.RULES:
            raise OptionError(f"--readout {given}: expected POPULATION:RULE with a population of {', '.join(names)} "
                              f"and a rule of {', '.join(models.RULES)}")
        return node, rule
    zoo = _zoo_model(Path(model))
    if zoo is not None and zoo.readout_node in names:
        return zoo.readout_node, zoo.rule
    pop = program.population(next(iter(program.outputs.values())))
    return pop.name, "spike_count" if pop.spiking else "v_sum"


def _zoo_model(model: Path) -> Any:
    """The shipped zoo model with the same bytes as ``model`` (else the same file name), or None."""
    from neurodeploy import models

    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    for entry in models.MODELS.values():
        if entry.readout_node and entry.path.is_file() and \
                hashlib.sha256(entry.path.read_bytes()).hexdigest() == digest:
            return entry
    entry = models.MODELS.get(model.stem)
    return entry if entry is not None and entry.readout_node else None


def classes(program: Any, traces: dict, readout: tuple[str, str], emulated: bool) -> np.ndarray:
    """Class per sample under the zoo's rule, from float-grid traces (emulated ones in raw integers)."""
    from neurodeploy.models import decode
    from neurodeploy.analysis.verify import to_float

    node, rule = readout
    pop = program.population(node)
    if rule == "spike_count":
        trace = traces[f"spikes.{node}"]
    elif emulated:
        trace = to_float(pop, program, traces[f"{pop.readout}.{node}"].astype(np.float64), pop.readout)
    else:
        trace = traces[f"v.{node}"]
    return decode(rule, trace.reshape(trace.shape[0], trace.shape[1], -1))


# ------------------------------------------------------------------ one (variant, shard) job

@dataclass(frozen=True)
class SweepSpec:
    variant: int
    artifact: str
    content_hash: str
    model: str
    semantics: tuple[tuple[str, Any], ...]
    input: str
    keys: tuple[tuple[str, str], ...]
    readout: tuple[str, str]


_REFERENCES: dict[tuple, dict] = {}


def _reference(spec: SweepSpec, shard: Shard, inputs: Any) -> dict:
    """The float model's traces of a shard, kept for the next variants of the same shard."""
    from neurodeploy.emulator.reference import simulate

    key = (spec.model, spec.semantics, spec.input, shard.start, shard.stop)
    if key not in _REFERENCES:
        if len(_REFERENCES) >= 4:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[key] = simulate(float_net(spec.model, spec.semantics), inputs, record=("v",), dtype="float64")
    return _REFERENCES[key]


def sweep_shard(spec: SweepSpec, shard: Shard) -> dict[str, Any]:
    """Emulate one shard once; verify's counts, the profile's cost and the classes of it."""
    from neurodeploy.emulator import run_program
    from neurodeploy.analysis.profile import profile, record_of
    from neurodeploy.analysis.verify import align_to_float, pad_for_latency

    art, program = load(spec.artifact, spec.content_hash)
    inputs = shard_inputs(spec.input, dict(spec.keys), shard.start, shard.stop)
    steps = int(np.asarray(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs).shape[1])
    ref = _reference(spec, shard, inputs)
    states = sorted({p.readout for p in program.populations} | {"v"} | set(record_of(program)))
    raw, counters = overflow.split(run_program(program, pad_for_latency(program, inputs), record=states,
                                               overflow=True))
    emu, dropped = align_to_float(program, raw, steps)
    cost = profile(art, inputs, pad=True, traces=raw)
    return {"variant": spec.variant, "shard": shard, "partial": partial(program, ref, emu, dropped),
            "classes": classes(program, emu, spec.readout, True),
            "float_classes": classes(program, ref, spec.readout, False), "cost": _cost_summary(cost),
            "overflow": counters}


def _cost_summary(p: dict) -> dict[str, Any]:
    """What the sweep keeps of a shard's profile: energy and latency per sample (and SpiNNaker's factor)."""
    cost = p["cost"]
    if "energy_j" not in cost:
        return {"model": None, "label": cost.get("label")}
    out = {"model": cost["model"], "label": cost["label"], "energy": np.asarray(cost["energy_j"]["per_sample"]),
           "latency": np.asarray(cost["latency_s"]["per_sample"]), "latency_kind": cost["latency_kind"]}
    if "time_scale_factor" in cost:  # spinnaker: wall-time terms scale with the factor the whole run needs
        out["tsf"] = int(cost["time_scale_factor"])
        out["tsf_needed"] = int(p["realtime"]["min_time_scale_factor"]["conservative"])
        out["packets"] = np.asarray(cost["components_j"]["packets"]["per_sample"])
    return out


# ------------------------------------------------------------------ merging a variant's shards

def energy_latency(costs: list[dict[str, Any]]) -> dict[str, Any]:
    """Energy and latency per inference over every shard (SpiNNaker: at the factor every shard needs)."""
    first = costs[0]
    if first["model"] is None:
        return {"energy_j": None, "latency_s": None, "energy_model": first["label"]}
    energy = np.concatenate([c["energy"] for c in costs])
    latency = np.concatenate([c["latency"] for c in costs])
    out: dict[str, Any] = {"energy_model": first["label"], "latency_kind": first["latency_kind"]}
    if "tsf" in first:
        tsf = max(c["tsf_needed"] for c in costs)
        scale = np.concatenate([np.full(c["energy"].size, tsf / c["tsf"]) for c in costs])
        packets = np.concatenate([c["packets"] for c in costs])
        energy = packets + (energy - packets) * scale
        latency = latency * scale
        out["time_scale_factor"] = tsf
    out.update(energy_j=float(energy.mean()), latency_s=float(latency.mean()))
    return out


def row(target: str, chosen: dict[str, Any], compiled: Any, results: list[dict[str, Any]],
        labels: np.ndarray | None, samples: int, steps: int) -> dict[str, Any]:
    """One row of the sweep: accuracy, agreement with the float model, resources, cost, health."""
    from neurodeploy.sharding.verify import merge

    program = compiled.program
    report = merge(program, [r["partial"] for r in results], samples, steps)
    predicted = np.concatenate([r["classes"] for r in results])
    reference = np.concatenate([r["float_classes"] for r in results])
    spiking = [p for r in results for p in r["partial"]["populations"].values() if "agree" in p]
    values = sum(p["values"] for p in spiking)
    outputs = [o["class_agreement"] for o in report["outputs"].values() if o["class_agreement"] is not None]
    counted = overflow_counts(program, [r["overflow"] for r in results])
    return {
        "target": target, "options": dict(chosen),
        "accuracy": float(np.mean(predicted == labels)) if labels is not None else None,
        "float_accuracy": float(np.mean(reference == labels)) if labels is not None else None,
        "class_agreement": outputs[0] if outputs else None,
        "decision_agreement": float(np.mean(predicted == reference)),
        "spike_agreement": sum(p["agree"] for p in spiking) / values if values else None,
        "cores": len(compiled.mapping.cores), "chips": int(compiled.mapping.chips_used),
        **energy_latency([r["cost"] for r in results]),
        "overflow_total": counted["total"], "overflow": counted["summary"],
        "health": {"severe": len(compiled.health.severe), "warnings": compiled.health.lines(),
                   "overflow": counted["lines"]},
        "populations": report["populations"], "error": None,
    }


def overflow_counts(program: Any, shards: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """A variant's run-time overflows over all its shards (in sample order): ``total``, the events
    of every population and kind together; ``summary``, per population and kind the events, the
    samples with any and the first step (emulator/overflow.py); ``lines``, one per population."""
    merged = {key: np.concatenate([s[key] for s in shards]) for key in (shards[0] if shards else {})}
    summary = overflow.summarize(program, merged)
    total = sum(int(c["count"]) for kinds in summary.values() for c in kinds.values())
    return {"total": total, "summary": summary, "lines": overflow.warning_lines(program.target, summary)}


def error_row(target: str, chosen: dict[str, Any], message: str) -> dict[str, Any]:
    """A variant that did not compile (degraded, does not fit): the reason, no numbers."""
    return {"target": target, "options": dict(chosen), "accuracy": None, "float_accuracy": None,
            "class_agreement": None, "decision_agreement": None, "spike_agreement": None, "cores": None,
            "chips": None, "energy_j": None, "latency_s": None, "overflow_total": None, "overflow": None,
            "health": None, "error": message}
