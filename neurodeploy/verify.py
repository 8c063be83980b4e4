"""Float reference vs the emulated artifact, per population, aligned for target latency."""
from __future__ import annotations

from typing import Any

import numpy as np

from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.program import Program, QPopulation


def to_float(pop: QPopulation, program: Program, values: np.ndarray, state: str = "v") -> np.ndarray:
    """Convert a recorded integer state of ``pop`` to the float reference's units."""
    scale = np.asarray(pop.scale, dtype=np.float64).reshape(pop.shape)
    if program.target == "spinnaker":
        return values / 2.0**15 / scale
    if state == "u":
        return values / scale
    zero = pop.params.get("v_zero", pop.params.get("v_init", np.zeros(pop.shape))).reshape(pop.shape)
    return (values - zero) / scale


def _readout_state(pop: QPopulation) -> str:
    return pop.readout


def _alignment(pop: QPopulation, program: Program) -> tuple[int, int]:
    """(spike shift, voltage shift) in steps: emulated[t + shift] corresponds to reference[t]."""
    before = 1 if program.attrs.get("v_recorded") == "before_update" else 0
    return pop.latency, pop.latency + before


def pad_for_latency(program: Program, inputs: Any) -> Any:
    """Append zero steps so that the slowest population sees the whole input on the target."""
    extra = max((p.latency for p in program.populations), default=0)
    if program.attrs.get("v_recorded") == "before_update":
        extra += 1
    if extra == 0:
        return inputs

    def pad(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return np.concatenate([x, np.zeros((x.shape[0], extra) + x.shape[2:], dtype=x.dtype)], axis=1)

    return {k: pad(v) for k, v in inputs.items()} if isinstance(inputs, dict) else pad(inputs)


def compare(net: NetworkIR, program: Program, inputs: Any) -> dict[str, Any]:
    from neurodeploy.emulator import run_program
    from neurodeploy.emulator.reference import simulate

    ref = simulate(net, inputs, record=("v",), dtype="float64")
    states = sorted({p.readout for p in program.populations} | {"v"})
    emu = run_program(program, pad_for_latency(program, inputs), record=states)
    report: dict[str, Any] = {"target": program.target, "populations": {}, "outputs": {}}
    for pop in program.populations:
        s_shift, v_shift = _alignment(pop, program)
        entry: dict[str, Any] = {"latency": pop.latency}
        key = f"spikes.{pop.name}"
        if key in ref and key in emu:
            steps = ref[key].shape[1] - s_shift
            r = ref[key][:, :steps].astype(bool)
            e = emu[key][:, s_shift:s_shift + steps].astype(bool)
            diff = np.any((r != e).reshape(r.shape[0], steps, -1), axis=(0, 2))
            entry.update(
                spikes_reference=int(r.sum()), spikes_emulated=int(e.sum()),
                spike_agreement=float(np.mean(r == e)) if r.size else 1.0,
                first_divergent_step=int(np.argmax(diff)) if diff.any() else None,
            )
        state = _readout_state(pop)
        vkey = f"v.{pop.name}"
        if vkey in ref and f"{state}.{pop.name}" in emu:
            steps = ref[vkey].shape[1] - v_shift
            r = ref[vkey][:, :steps]
            e = to_float(pop, program, emu[f"{state}.{pop.name}"][:, v_shift:v_shift + steps].astype(np.float64), state)
            err = np.abs(r - e)
            if key in ref:  # compare membranes only where neither side just spiked
                spiked = ref[key][:, :steps].astype(bool)
                if key in emu:
                    spiked |= emu[key][:, s_shift:s_shift + steps].astype(bool)
                err = np.where(spiked, 0.0, err)
            scale = max(float(np.abs(r).max()), 1e-12)
            entry.update(v_max_error=float(err.max()) if err.size else 0.0,
                         v_rms_error=float(np.sqrt(np.mean(err**2))) if err.size else 0.0,
                         v_range=scale)
        report["populations"][pop.name] = entry
    for out, pop_name in program.outputs.items():
        pop = program.population(pop_name)
        report["outputs"][out] = _class_agreement(pop, program, ref, emu)
    return report


def _class_agreement(pop: QPopulation, program: Program, ref: dict, emu: dict) -> dict[str, Any]:
    s_shift, v_shift = _alignment(pop, program)
    if pop.spiking:
        key = f"spikes.{pop.name}"
        r = ref[key].reshape(ref[key].shape[0], ref[key].shape[1], -1).sum(axis=1)
        e = emu[key].reshape(emu[key].shape[0], emu[key].shape[1], -1)[:, s_shift:].sum(axis=1)
        rule = "spike count"
    else:
        state = pop.readout
        r = ref[f"v.{pop.name}"]
        r = r.reshape(r.shape[0], r.shape[1], -1)[:, : r.shape[1] - v_shift].sum(axis=1)
        e = to_float(pop, program, emu[f"{state}.{pop.name}"].astype(np.float64), state)
        e = e.reshape(e.shape[0], e.shape[1], -1)[:, v_shift:].sum(axis=1)
        rule = "summed v"
    if r.shape[1] < 2:
        return {"rule": rule, "class_agreement": None}
    return {"rule": rule, "class_agreement": float(np.mean(np.argmax(r, 1) == np.argmax(e, 1)))}


def format_report(report: dict[str, Any]) -> list[str]:
    lines = [f"verify against the float reference, target {report['target']}:"]
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
