"""Float reference vs the emulated artifact, per population, aligned for target latency."""
from __future__ import annotations

from typing import Any

import numpy as np

from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.format.program import Program, QPopulation


def to_float(pop: QPopulation, program: Program, values: np.ndarray, state: str = "v") -> np.ndarray:
    """Convert a recorded integer state of ``pop`` to the float reference's units."""
    scale = np.asarray(pop.scale, dtype=np.float64).reshape(pop.shape)
    if program.target == "spinnaker":
        return values / 2.0**15 / scale
    if state == "u":
        return values / scale
    zero = pop.params.get("v_zero", pop.params.get("v_init", np.zeros(pop.shape))).reshape(pop.shape)
    return (values - zero) / scale


def _alignment(pop: QPopulation, program: Program) -> tuple[int, int]:
    """(spike shift, voltage shift) in steps: emulated[t + shift] corresponds to reference[t]."""
    before = 1 if program.attrs.get("v_recorded") == "before_update" else 0
    return pop.latency, pop.latency + before


def latency_steps(program: Program) -> int:
    """Steps the target needs after the input for every population's state to cover all of it."""
    extra = max((p.latency for p in program.populations), default=0)
    return extra + 1 if program.attrs.get("v_recorded") == "before_update" else extra


def pad_for_latency(program: Program, inputs: Any) -> Any:
    """Append zero steps so that the slowest population sees the whole input on the target."""
    extra = latency_steps(program)
    if extra == 0:
        return inputs

    def pad(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return np.concatenate([x, np.zeros((x.shape[0], extra) + x.shape[2:], dtype=x.dtype)], axis=1)

    return {k: pad(v) for k, v in inputs.items()} if isinstance(inputs, dict) else pad(inputs)


def _shift(program: Program, key: str) -> int:
    """Steps by which trace ``key`` (``<state>.<population>``) lags the float model's grid."""
    state, _, name = key.partition(".")
    s_shift, v_shift = _alignment(program.population(name), program)
    return s_shift if state == "spikes" else v_shift


def align_to_float(program: Program, traces: dict[str, np.ndarray], steps: int) -> tuple[dict[str, np.ndarray], int]:
    """Traces of a run on padded inputs, moved onto the float model's grid: index t is its step t.

    Each population's traces are shifted back by its latency and cut to ``steps``; returns them
    and the number of spikes that fell outside those steps (before the latency or after the input).
    """
    aligned: dict[str, np.ndarray] = {}
    dropped = 0
    for key, trace in traces.items():
        shift = _shift(program, key)
        if trace.shape[1] < shift + steps:
            raise ValueError(f"{key}: {trace.shape[1]} steps, {shift + steps} needed; pad the input with "
                             f"pad_for_latency first")
        aligned[key] = trace[:, shift:shift + steps]
        if key.startswith("spikes."):
            dropped += int(trace.sum()) - int(aligned[key].sum())
    return aligned, dropped


def on_grid(program: Program, traces: dict[str, np.ndarray], samples: int, steps: int,
            align: str) -> tuple[dict[str, np.ndarray], str]:
    """`run`'s traces on the grid ``align`` names ("target" or "float", the latter from a run on
    inputs padded by :func:`pad_for_latency`) and the line that says which grid that is."""
    if align == "float":
        traces, dropped = align_to_float(program, traces, steps)
        return traces, f"alignment: {format_alignment(_alignment_info(program, samples, steps, dropped))}"
    lags = ", ".join(f"{p.name} {p.latency}" for p in program.populations)
    return traces, (f"alignment: {samples} samples x {steps} steps on the target's grid (--align target): "
                    f"populations lag the float model by their latency ({lags}); --align float puts step t on "
                    f"`simulate`'s step t")


def _steps(inputs: Any) -> tuple[int, int]:
    """(samples, steps) of an input array or dict of input arrays."""
    first = np.asarray(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
    return int(first.shape[0]), int(first.shape[1])


def compare(net: NetworkIR, program: Program, inputs: Any) -> dict[str, Any]:
    """Float reference vs the emulated program, per population, every input step on the float grid."""
    from neurodeploy.emulator import overflow, run_program
    from neurodeploy.emulator.reference import simulate

    samples, steps = _steps(inputs)
    ref = simulate(net, inputs, record=("v",), dtype="float64")
    states = sorted({p.readout for p in program.populations} | {"v"})
    raw, counters = overflow.split(run_program(program, pad_for_latency(program, inputs), record=states,
                                               overflow=True))
    emu, dropped = align_to_float(program, raw, steps)
    report: dict[str, Any] = {"target": program.target, "populations": {}, "outputs": {},
                              "alignment": _alignment_info(program, samples, steps, dropped)}
    overflowed = overflow.summarize(program, counters)
    for pop in program.populations:
        entry: dict[str, Any] = {"latency": pop.latency}
        entry.update(_spike_entry(pop, ref, emu))
        entry.update(_v_entry(pop, program, ref, emu))
        entry["overflow"] = overflowed.get(pop.name, {})  # kind: count, samples, first_step (padded grid)
        report["populations"][pop.name] = entry
    for out, pop_name in program.outputs.items():
        report["outputs"][out] = {"population": pop_name,
                                  **_class_agreement(program.population(pop_name), program, ref, emu)}
    return report


def _alignment_info(program: Program, samples: int, steps: int, dropped: int) -> dict[str, Any]:
    return {"grid": "float", "samples": samples, "steps": steps, "padded_steps": latency_steps(program),
            "spikes_not_kept": dropped,
            "shifts": {p.name: _alignment(p, program)[0] for p in program.populations}}


def spike_counts(pop: QPopulation, ref: dict, emu: dict) -> dict[str, Any]:
    """Spikes on each side, agreeing values out of all, and the first step where they part."""
    key = f"spikes.{pop.name}"
    if key not in ref or key not in emu:
        return {}
    r, e = ref[key].astype(bool), emu[key].astype(bool)
    diff = np.any((r != e).reshape(r.shape[0], r.shape[1], -1), axis=(0, 2))
    return {"spikes_reference": int(r.sum()), "spikes_emulated": int(e.sum()), "agree": int(np.sum(r == e)),
            "values": int(r.size), "first_divergent_step": int(np.argmax(diff)) if diff.any() else None}


def _spike_entry(pop: QPopulation, ref: dict, emu: dict) -> dict[str, Any]:
    counts = spike_counts(pop, ref, emu)
    if not counts:
        return {}
    agree, values = counts.pop("agree"), counts.pop("values")
    return {"spikes_reference": counts["spikes_reference"], "spikes_emulated": counts["spikes_emulated"],
            "spike_agreement": agree / values if values else 1.0,
            "first_divergent_step": counts["first_divergent_step"]}


def membrane_error(pop: QPopulation, program: Program, ref: dict, emu: dict) -> np.ndarray | None:
    """|float v - deployed v| in float units, 0 where either side just spiked (a reset hides the
    value); None when either side lacks the trace."""
    state, key, vkey = pop.readout, f"spikes.{pop.name}", f"v.{pop.name}"
    if vkey not in ref or f"{state}.{pop.name}" not in emu:
        return None
    err = np.abs(ref[vkey] - to_float(pop, program, emu[f"{state}.{pop.name}"].astype(np.float64), state))
    if key in ref:
        spiked = ref[key].astype(bool) | (emu[key].astype(bool) if key in emu else False)
        err = np.where(spiked, 0.0, err)
    return err


def _v_entry(pop: QPopulation, program: Program, ref: dict, emu: dict) -> dict[str, Any]:
    err = membrane_error(pop, program, ref, emu)
    if err is None:
        return {}
    r = ref[f"v.{pop.name}"]
    return dict(v_max_error=float(err.max()) if err.size else 0.0,
                v_rms_error=float(np.sqrt(np.mean(err**2))) if err.size else 0.0,
                v_range=max(float(np.abs(r).max()), 1e-12) if r.size else 1e-12)


def _class_agreement(pop: QPopulation, program: Program, ref: dict, emu: dict) -> dict[str, Any]:
    """Arg-max agreement of the output: spike counts, or summed readout state for non-spiking ones."""
    if pop.spiking:
        key = f"spikes.{pop.name}"
        r, e, rule = ref[key], emu[key], "spike count"
    else:
        state = pop.readout
        r = ref[f"v.{pop.name}"]
        e = to_float(pop, program, emu[f"{state}.{pop.name}"].astype(np.float64), state)
        rule = "summed v"
    r = r.reshape(r.shape[0], r.shape[1], -1).sum(axis=1)
    e = e.reshape(e.shape[0], e.shape[1], -1).sum(axis=1)
    if r.shape[1] < 2:
        return {"rule": rule, "class_agreement": None}
    return {"rule": rule, "class_agreement": float(np.mean(np.argmax(r, 1) == np.argmax(e, 1)))}


def format_alignment(info: dict[str, Any]) -> str:
    """One line saying which time grid the numbers are on, and why they may differ from `run`'s."""
    shifts = ", ".join(f"{name} {shift}" for name, shift in info["shifts"].items())
    return (f"{info['samples']} samples x {info['steps']} steps on the float model's grid (--align float): "
            f"input padded by {info['padded_steps']} step(s), populations shifted back by their latency "
            f"({shifts}); {info['spikes_not_kept']} spike(s) outside these steps not kept")


def format_report(report: dict[str, Any]) -> list[str]:
    lines = [f"verify against the float reference, target {report['target']}:"]
    if "alignment" in report:
        lines.append(f"  alignment: {format_alignment(report['alignment'])}")
    for name, e in report["populations"].items():
        parts = [f"latency {e['latency']}"]
        if "spike_agreement" in e:
            parts.append(f"spikes {e['spikes_emulated']}/{e['spikes_reference']} (emulated/float), "
                         f"agreement {100 * e['spike_agreement']:.2f}%")
            first = e["first_divergent_step"]
            parts.append("identical" if first is None else f"first divergence at step {first}")
        if "v_max_error" in e:
            parts.append(f"v error max {e['v_max_error']:.3g} rms {e['v_rms_error']:.3g} (range {e['v_range']:.3g})")
        lines.append(f"  {name}: " + "; ".join(parts))
        if e.get("overflow"):
            from neurodeploy.emulator.overflow import warning_lines

            lines.append("    overflow: " + warning_lines(report["target"], {name: e["overflow"]})[0].split(": ", 1)[1])
    for out, e in report["outputs"].items():
        if e.get("class_agreement") is not None:
            lines.append(f"  output {out}: class agreement {100 * e['class_agreement']:.1f}% ({e['rule']})")
    return lines


def emulate_like_reference(program: Program, inputs: Any, steps: int | None = None) -> dict[str, np.ndarray]:
    """Run ``program`` and return traces on the float reference's step grid and units.

    Inputs are padded for the target's latency; ``spikes.<pop>`` and ``v.<pop>`` (float units)
    are shifted back so that index t means the reference's step t.
    """
    from neurodeploy.emulator import run_program

    first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    steps = steps or int(np.asarray(first).shape[1])
    states = sorted({p.readout for p in program.populations} | {"v"})
    emu = run_program(program, pad_for_latency(program, inputs), record=states)
    out: dict[str, np.ndarray] = {}
    for pop in program.populations:
        s_shift, v_shift = _alignment(pop, program)
        key = f"spikes.{pop.name}"
        if key in emu:
            out[key] = emu[key][:, s_shift:s_shift + steps]
        raw = emu[f"{pop.readout}.{pop.name}"][:, v_shift:v_shift + steps].astype(np.float64)
        out[f"v.{pop.name}"] = to_float(pop, program, raw, pop.readout)
    return out
