"""How far an emulated artifact may drift from the float reference, from its health report.

The bound (float units, per population ``p``), for binary inputs and as long as every population
upstream has produced exactly the float reference's spikes (so ``p`` sees identical input):

    E_p = K * ( G_p * eps_w                       weight quantization
              + Dm/(1 - Dm) * V_span              membrane decay rounding
              + Ds/(1 - Ds) * G_p * I_max         synaptic decay rounding (and the u residue)
              + LSB_p * rho_p / a_m'              per-step rounding, accumulated by the leak
              + target terms )                    see below

with ``K = 2`` for second-order effects, and

* ``eps_w = amp * sum_c werr_c * ||W_c||_F * sqrt(fan-in_c)``: the largest error of the summed
  input current of one neuron, from the health report's relative weight error ``werr_c``
  (``||dW||_F / ||W||_F``) of every connection into ``p`` (the l1 norm of a row of dW is at
  most sqrt(its length) times its l2 norm, which is at most ``||dW||_F``);
* ``G_p``: the gain from an input current to v (``r``, ``r * w_in`` for Cuba kinds, ``T dt r``
  for integrators over T steps, 1 for Sum);
* ``Dm``, ``Ds``: the health report's ``membrane_decay_error`` and ``synaptic_decay_error``;
* ``V_span``: the largest ``|v - v_reset|`` of the reference, plus the largest drive;
* ``LSB_p = 1 / scale`` (``1 / (2^15 scale)`` on SpiNNaker) and ``rho_p`` the rounding per step of
  the target's arithmetic (0.5 LSB per rounded decay on the emulator, 1 LSB per truncation on
  Loihi 2 and SpiNNaker, half the bias step), ``a_m'`` the integer membrane decay per step;
* target terms, each a documented behaviour: the fixed-point neuron adds a Cuba* bias to v at once
  (docs/targets.md; ``r w_in |b|``); SpiNNaker's IF leaks ``V / 2^14`` per tick (``(T + 1) V / 2^14``)
  and starts V within ``v_init_residual`` of 0; a constant drive (bias, leak towards v_leak) acts
  during the ``latency`` ticks before a population's first input only where the start state
  cannot undo it (neurons the health report lists under ``prestart_spikes`` on SpiNNaker or
  ``prestart_drift`` on Loihi 2).

The checked property (``check``): before the first step at which any population's spikes differ,
every population's v stays within ``E_p`` of the reference (steps at which either side spiked are
skipped, as ``verify.compare`` does); at that first step, each neuron that disagrees (in the first
population in evaluation order that disagrees, whose inputs still agree) was within
``E_p + threshold rounding`` of its threshold on the side that did not spike. After that, spike
trains may legitimately part (a neuron on the edge of its threshold), and nothing is claimed.
Likewise nothing is claimed once the reference leaves the range the integer state can hold
(``_out_of_range``; tests/helpers/fuzz_cases.py then requires a ``saturation_risk`` warning), nor when a
population fires in the ticks before its input arrives (``_prestart_spikes``: no float step
corresponds to those ticks; docs/targets.md notes it for Threshold nodes with a large bias).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from neurodeploy.compiler.dynamics import dynamics
from neurodeploy.compiler.synapses import connections
from neurodeploy.emulator.reference import simulate as reference
from neurodeploy.analysis.verify import compare, emulate_like_reference

K = 2.0


def _metric(health, layer: str, name: str) -> float:
    return float(health.metrics.get(layer, {}).get(name, 0.0))


def bounds(compiled, ref: dict[str, np.ndarray], steps: int) -> dict[str, dict[str, float]]:
    """Per population: the bound E and its parts (float units)."""
    net, program, health = compiled.net, compiled.program, compiled.health
    target = program.target
    amp = float(net.semantics.spike_amplitude)
    dt = float(net.semantics.dt)
    conns = {c.name: c for c in connections(net)}
    out: dict[str, dict[str, float]] = {}
    for qpop in program.populations:
        pop = net.populations[qpop.name]
        dyn = dynamics(pop, net.semantics)
        p = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in pop.params.items()}
        kind = pop.kind
        r = float(np.max(np.abs(p.get("r", np.ones(1)))))
        w_in = float(np.max(np.abs(p.get("w_in", np.ones(1)))))
        if kind in ("LIF", "LI"):
            gain = r
        elif kind in ("CubaLIF", "CubaLI"):
            gain = r * w_in
        elif kind in ("IF", "I"):
            gain = steps * dt * r
        else:  # Sum, Threshold
            gain = 1.0
        # input current: binary inputs/spikes through every incoming connection, plus the bias
        eps_w, rows = 0.0, np.zeros(qpop.size)
        for qc in program.connections:
            if qc.target != qpop.name:
                continue
            c = conns[qc.name]
            m = abs(c.as_matrix()).tocsr()
            rows += np.asarray(m.sum(axis=1)).reshape(-1)
            werr = _metric(health, qc.name, "weight_error")
            if qc.kind == "conv":  # the relative error is over the kernel
                norm, fan = float(np.linalg.norm(c.weight)), int(np.prod(np.shape(c.weight)[1:]))
            else:
                norm, fan = float(np.sqrt((m.data**2).sum())), int(np.diff(m.indptr).max()) if m.nnz else 0
            eps_w += amp * werr * norm * math.sqrt(fan)
        bias = np.abs(np.asarray(pop.bias, dtype=np.float64).reshape(-1))
        i_max = float(np.max(amp * rows + bias)) if qpop.size else 0.0
        v_reset = p.get("v_reset", np.zeros(1))
        threshold = p.get("v_threshold", p.get("threshold"))
        v_ref = ref.get(f"v.{qpop.name}")
        span = float(np.max(np.abs(v_ref.reshape(v_ref.shape[0], v_ref.shape[1], -1)
                                   - v_reset.reshape(1, 1, -1)))) if v_ref is not None else 0.0
        if threshold is not None:
            span = max(span, float(np.max(np.abs(threshold - v_reset))))
        leak = float(np.max(np.abs(p.get("v_leak", np.zeros(1)) - v_reset)))
        span += (r if kind not in ("IF", "I", "Sum", "Threshold") else 1.0) * w_in * i_max + leak
        dm = _metric(health, qpop.name, "membrane_decay_error")
        ds = _metric(health, qpop.name, "synaptic_decay_error")
        parts = {"weights": gain * eps_w}
        if kind in ("LIF", "LI", "CubaLIF", "CubaLI") or target != "spinnaker":
            parts["membrane_decay"] = dm / max(1e-12, 1 - dm) * span
        parts["synaptic_decay"] = ds / max(1e-12, 1 - ds) * gain * i_max
        scale = float(np.min(np.asarray(qpop.scale)))
        params = {k: np.asarray(v).astype(np.int64).reshape(-1) for k, v in qpop.params.items()}
        if target == "spinnaker":
            lsb = 1.0 / (2**15 * scale)
            a_m = max(1.0 - float(np.max(params["exp_tc"])) / 2**15, 1.0 / steps) \
                if kind not in ("Sum", "Threshold") else 1.0
            a_s = 1.0 - float(np.max(params["decay_syn_e"])) / 2**32 if qpop.model == "IF_curr_exp" else 1.0
            rho = 1.0 + 1.0 + 1.0 + (2.0 / max(a_s, 1e-9) if qpop.model == "IF_curr_exp" else 0.0)
            parts["rounding"] = lsb * rho / a_m
            parts["v_init"] = _metric(health, qpop.name, "v_init_residual") * lsb
            if any(f.check == "bias_transient" and f.layer == qpop.name for f in health.findings):
                # warned: the initial isyn that reproduces the bias's start-up transient was clipped
                parts["bias_transient"] = gain * float(np.max(bias))
            if kind in ("IF", "I"):  # the chip's smallest leak: V loses floor(V / 2^14) per tick
                parts["integrator_leak"] = (steps + 1) * (span + gain * i_max) / 2**14
        else:
            lsb = 1.0 / scale
            loihi = target == "loihi2"
            fmt = program.attrs.get("format", {})
            one = 2 ** int(fmt.get("decay_bits", 12))
            du_offset = int(fmt.get("du_offset", 0))
            keep_u = one - (params["du"] + du_offset)
            a_m = float(np.min(params["dv"])) / one if kind not in ("IF", "I") else 1.0 / steps
            a_s = 1.0 - float(np.max(keep_u)) / one
            step = 1.0 if loihi else 0.5
            rho_u = step if np.any((keep_u > 0) & (keep_u < one)) else 0.0
            rho_v = step if np.any(params["dv"] > 0) else 0.0
            rho_b = 0.5 * 2.0 ** float(np.max(params["bias_exp"])) if np.any(params["bias_mant"]) else 0.0
            parts["rounding"] = lsb * (rho_v + rho_b + rho_u / max(a_s, 1.0 / one)) / max(a_m, 1.0 / steps)
            if kind in ("CubaLIF", "CubaLI") and np.any(bias):
                # docs/targets.md: the fixed-point neuron adds a constant bias to v directly, where the
                # float model passes it through the synaptic filter (differs in the first tau_syn steps)
                parts["bias_in_v"] = r * w_in * float(np.max(bias))
        # v added in the first step from v = 0 by the bias and the leak towards v_leak (it only shrinks
        # as v approaches v_leak + r b, so `latency` such steps bound the offset)
        drive = float(np.max(np.abs(dyn.mem_const.reshape(-1))
                             + np.abs(dyn.mem_gain * dyn.syn_gain).reshape(-1) * bias
                             / np.maximum(dyn.syn_decay.reshape(-1), 1e-12))) if qpop.size else 0.0
        warned = any(f.check in ("prestart_spikes", "prestart_drift") and f.layer == qpop.name
                     for f in health.findings)
        if qpop.latency > 0 and drive > 0 and warned:
            # The target runs a population from tick 0, its input arrives at tick `latency`. Both
            # targets choose the start state that undoes what bias and leak do in those ticks, except
            # for neurons where none exists (health warnings prestart_spikes on SpiNNaker,
            # prestart_drift on Loihi 2: they start from the step-0 state instead).
            steady = drive / max(float(np.min(dyn.mem_decay)), 1e-12) if kind not in ("IF", "I") else np.inf
            parts["prestart"] = min(qpop.latency * drive, steady)
        bound = K * sum(parts.values()) + 1e-9
        thr_q = 0.0
        if threshold is not None:
            thr_q = _metric(health, qpop.name, "threshold_error") * float(np.max(np.abs(threshold - v_reset))) \
                + 2 * lsb * (64 if target == "loihi2" else 1)
        out[qpop.name] = {"bound": bound, "threshold_rounding": thr_q, "i_max": i_max, "gain": gain, **parts}
    return out


def _out_of_range(compiled, ref: dict[str, np.ndarray], steps: int) -> tuple[int, str]:
    """The first step at which the reference leaves the range the integer state can hold (and where)."""
    net, program = compiled.net, compiled.program
    first, where = steps, ""
    for qpop in program.populations:
        pop = net.populations[qpop.name]
        dyn = dynamics(pop, net.semantics)
        scale = np.asarray(qpop.scale, dtype=np.float64).reshape(-1)
        v = ref.get(f"v.{qpop.name}")
        if v is None or pop.kind == "Threshold":
            continue
        v = v.reshape(v.shape[0], steps, -1)
        reset = (dyn.v_reset if dyn.v_reset is not None else np.zeros(pop.shape)).reshape(-1)
        if program.target == "spinnaker":  # V (s16.15, int32) = 2^15 s v wraps at 2^16 / s
            limit = 0.99 * 2.0**16 / scale
            state = np.abs(v)
        else:  # v - v_reset in state units saturates at 2^(bits-1) - 1; u wraps (Loihi) or saturates
            bits = int(program.attrs.get("format", {}).get("state_bits", 24))
            limit = 0.99 * (2.0 ** (bits - 1) - 1) / scale
            state = np.abs(v - reset)
            i = ref.get(f"i.{qpop.name}")
            if i is not None:
                u = np.abs(i.reshape(i.shape[0], steps, -1) * np.abs(dyn.mem_gain).reshape(1, 1, -1))
                state = np.maximum(state, u)
        over = (state > limit).any(axis=(0, 2))
        if over.any() and int(np.argmax(over)) < first:
            first, where = int(np.argmax(over)), qpop.name
    return first, where


def _prestart_spikes(program, inputs: np.ndarray) -> list[str]:
    """Populations that spike on the target before any input can reach them (ticks < latency)."""
    from neurodeploy.emulator import run_program
    from neurodeploy.analysis.verify import pad_for_latency

    late = [p for p in program.populations if p.spiking and p.latency > 0]
    if not late:
        return []
    raw = run_program(program, pad_for_latency(program, inputs), record=())
    return [p.name for p in late if np.any(raw[f"spikes.{p.name}"][:, :p.latency])]


def check(compiled, inputs: np.ndarray) -> tuple[list[str], dict[str, Any]]:
    """(violations, statistics) of the property described in the module docstring."""
    net, program = compiled.net, compiled.program
    first_input = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    steps = int(np.asarray(first_input).shape[1])
    report = compare(net, program, inputs)
    ref = reference(net, inputs, record=("v", "i"), dtype="float64")
    emu = emulate_like_reference(program, inputs, steps)
    limits = bounds(compiled, ref, steps)
    errors: list[str] = []
    stats: dict[str, Any] = {"steps": steps, "worst_ratio": 0.0,
                             "agreement": min((e.get("spike_agreement", 1.0) for e in report["populations"].values()),
                                              default=1.0),
                             "bounds": {k: v["bound"] for k, v in limits.items()}}
    stats["prestart"] = _prestart_spikes(program, inputs)
    if stats["prestart"]:
        # A population fired in the ticks before its input arrives (a bias above its threshold):
        # docs/targets.md notes this for Threshold nodes; the targets have no float step for those
        # ticks, so what follows is not comparable step by step.
        stats["first_divergence"] = 0
        return errors, stats
    saturate, where = _out_of_range(compiled, ref, steps)
    stats["out_of_range"] = (saturate, where) if saturate < steps else None
    # the first step at which any population's spikes differ
    first = steps
    diverging: dict[str, np.ndarray] = {}
    for pop in program.populations:
        key = f"spikes.{pop.name}"
        if key in ref and key in emu:
            r = ref[key].reshape(ref[key].shape[0], steps, -1).astype(bool)
            e = emu[key].reshape(emu[key].shape[0], -1, r.shape[2])[:, :steps].astype(bool)
            if e.shape[1] < steps:
                errors.append(f"'{pop.name}': emulated trace has {e.shape[1]} of {steps} steps")
                continue
            diff = r != e
            diverging[pop.name] = diff
            if diff.any():
                first = min(first, int(np.argmax(diff.any(axis=(0, 2)))))
    stats["first_divergence"] = first
    window = min(first, saturate)
    worst = 0.0
    for pop in program.populations:
        if pop.kind == "Threshold":  # stateless: the reference records no v for it
            continue
        v_ref = ref[f"v.{pop.name}"].reshape(ref[f"v.{pop.name}"].shape[0], steps, -1)[:, :window]
        v_emu = emu[f"v.{pop.name}"].reshape(v_ref.shape[0], -1, v_ref.shape[2])[:, :window]
        err = np.abs(v_ref - v_emu)
        key = f"spikes.{pop.name}"
        if key in ref:
            spiked = ref[key].reshape(v_ref.shape[0], steps, -1)[:, :window].astype(bool)
            spiked |= emu[key].reshape(v_ref.shape[0], -1, v_ref.shape[2])[:, :window].astype(bool)
            err = np.where(spiked, 0.0, err)
        bound = limits[pop.name]["bound"]
        peak = float(err.max()) if err.size else 0.0
        worst = max(worst, peak / bound)
        if peak > bound:
            b, t, i = np.unravel_index(int(np.argmax(err)), err.shape)
            errors.append(f"'{pop.name}' ({pop.kind}): |v error| {peak:.4g} > bound {bound:.4g} at sample {b}, "
                          f"step {t}, neuron {i} (before any spike divergence; first divergence at {first}); "
                          f"parts {_parts(limits[pop.name])}")
    stats["worst_ratio"] = worst
    if first < saturate:
        culprit = next(p for p in program.populations if p.name in diverging and diverging[p.name][:, first].any())
        if culprit.kind != "Threshold":
            lim = limits[culprit.name]
            margin = lim["bound"] + lim["threshold_rounding"]
            th = np.asarray(net.populations[culprit.name].params["v_threshold"], dtype=np.float64).reshape(-1)
            r = ref[f"spikes.{culprit.name}"].reshape(-1, steps, th.size)[:, first].astype(bool)
            e = emu[f"spikes.{culprit.name}"].reshape(r.shape[0], -1, th.size)[:, first].astype(bool)
            v_r = ref[f"v.{culprit.name}"].reshape(r.shape[0], steps, th.size)[:, first]
            v_e = emu[f"v.{culprit.name}"].reshape(r.shape[0], -1, th.size)[:, first]
            quiet_v = np.where(r & ~e, v_e, np.where(e & ~r, v_r, np.inf))  # the side that did not spike
            gap = np.where(r != e, np.broadcast_to(th, quiet_v.shape) - quiet_v, -np.inf)
            stats["divergence_gap"] = float(np.max(gap)) / margin
            if np.max(gap) > margin:
                b, i = np.unravel_index(int(np.argmax(gap)), gap.shape)
                side = "emulated" if r[b, i] else "reference"
                errors.append(f"'{culprit.name}' ({culprit.kind}): spikes part at step {first} (sample {b}, neuron "
                              f"{i}) while the {side} v was {gap[b, i]:.4g} below threshold {th[i]:.4g}, more than "
                              f"the bound {margin:.4g}")
    if first == steps and saturate == steps:
        for name, entry in report["populations"].items():
            if entry.get("spike_agreement", 1.0) != 1.0:
                errors.append(f"'{name}': verify.compare reports spike agreement {entry['spike_agreement']} "
                              f"where the aligned traces agree")
            if "v_max_error" in entry and entry["v_max_error"] > limits[name]["bound"] \
                    and net.populations[name].kind != "Threshold":
                errors.append(f"'{name}': verify.compare reports v error {entry['v_max_error']:.4g} above the "
                              f"bound {limits[name]['bound']:.4g}")
    return errors, stats


def _parts(entry: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in entry.items() if k not in ("bound",))
