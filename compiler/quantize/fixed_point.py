"""Quantization onto a fixed-point CUBA LIF: Loihi 2 (Lava fixed_pt) and the generic profile.

The integer neuron (docs/targets.md):
    u = decay(u, du) + (shift_exp(sum W*x, weight_exp) << activation_shift)
    v = decay(v, dv) + u + bias;  spike when v > vth << threshold_shift;  then v = 0
A float population maps onto it with a voltage scale ``s`` (integer = s * float):
    du from the synaptic decay, dv from the membrane decay, u carries s * mem_gain * I,
    weights carry s * mem_gain * syn_gain * amplitude * W, the bias carries the constant drive,
    and v_reset is moved to 0 by shifting v (threshold and leak shift with it; v starts at -v_reset).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse

from neurodeploy.format import convolution
from neurodeploy.compiler.dynamics import Dynamics, dynamics
from neurodeploy.compiler.quantize.prestart import prestart_state, report_lost_start_state
from neurodeploy.compiler.health import HealthReport
from neurodeploy.compiler.ir import NetworkIR, Population
from neurodeploy.format.program import Program, QConnection, QPopulation
from neurodeploy.compiler.quantize.calibration import Ranges
from neurodeploy.compiler.synapses import Connection, connections
from neurodeploy.errors import UnsupportedError


@dataclass(frozen=True)
class FixedPointFormat:
    target: str
    model: str = "cuba_lif"
    state_bits: int = 24
    weight_bits: int = 8
    decay_bits: int = 12
    activation_shift: int = 6
    threshold_shift: int = 6
    du_offset: int = 1  # Lava decays u by (du + 1)/4096
    hop_latency: int = 1  # steps each connection adds (Loihi: one per hop)
    weight_exp_range: tuple[int, int] = (0, 7)
    bias_mant_bits: int = 13
    bias_exp_range: tuple[int, int] = (0, 7)
    delay_max: int = 62
    headroom_bits: int = 3  # v may reach 2**headroom_bits x threshold before saturating
    reset_subtract: bool = False  # can the neuron reset by subtracting its threshold?
    zero_warn: float = 0.05  # fraction of weights lost to zero: warning / severe
    zero_severe: float = 0.5
    start_state: bool = True  # the target loads u_init/v_init per neuron (netx: no, every layer starts at 0)

    @property
    def state_max(self) -> int:
        return 2 ** (self.state_bits - 1) - 1

    @property
    def decay_one(self) -> int:
        return 2**self.decay_bits

    @property
    def vth_max(self) -> int:
        return self.state_max >> self.threshold_shift

    @property
    def bias_mant_max(self) -> int:
        return 2 ** (self.bias_mant_bits - 1) - 1


LOIHI2 = FixedPointFormat(target="loihi2")


HIGH_PRECISION_WEIGHT_BITS = 16


def quantize(net: NetworkIR, fmt: FixedPointFormat, ranges: Ranges | None = None,
             per_neuron: bool = False, high_precision: tuple[str, ...] = ()) -> tuple[Program, HealthReport]:
    """``high_precision``: connections (by name or NIR node) quantized with 16-bit weights,
    where the format allows it (the generic profile)."""
    health = HealthReport()
    conns = connections(net)
    wide = _high_precision(conns, high_precision, fmt)
    amp = net.semantics.spike_amplitude
    _check_expressible(net, conns, fmt)
    dyn = {name: dynamics(pop, net.semantics) for name, pop in net.populations.items()}
    scales = {name: _choose_scale(pop, dyn[name], conns, amp, fmt, ranges, per_neuron, health)
              for name, pop in net.populations.items()}
    latency = _latencies(net, conns, fmt)
    populations = [_population(pop, dyn[pop.name], scales[pop.name], latency[pop.name], fmt, health)
                   for pop in net.populations.values()]
    qconns = [_connection(c, scales[c.target] * dyn[c.target].spike_to_v * amp, latency,
                          replace(fmt, weight_bits=HIGH_PRECISION_WEIGHT_BITS) if c.name in wide else fmt, health)
              for c in conns]
    if ranges is not None:
        _check_activity(net, ranges, health)
    program = Program(
        target=fmt.target,
        inputs={name: port.shape for name, port in net.inputs.items()},
        populations=populations,
        connections=qconns,
        outputs=dict(net.outputs),
        attrs={"format": fmt.__dict__, "hop_latency": fmt.hop_latency, "per_neuron": per_neuron,
               "reset": net.semantics.reset},
    )
    return program, health


# ------------------------------------------------------------------ expressibility

def _high_precision(conns: list[Connection], names: tuple[str, ...], fmt: FixedPointFormat) -> set[str]:
    if not names:
        return set()
    if fmt.target != "emulator":
        raise UnsupportedError(
            f"target {fmt.target} holds {fmt.weight_bits}-bit weight mantissas on every connection; keeping "
            f"layers at higher precision is possible with --target emulator"
        )
    chosen = {c.name for c in conns if c.name in names or any(part in names for part in c.name.split("/"))}
    unknown = [n for n in names if not any(n == c.name or n in c.name.split("/") for c in conns)]
    if unknown:
        raise UnsupportedError(
            f"--high-precision names {', '.join(unknown)}, which is no connection; connections are "
            f"{', '.join(c.name for c in conns)}"
        )
    return chosen


def _check_expressible(net: NetworkIR, conns: list[Connection], fmt: FixedPointFormat) -> None:
    subtract = net.semantics.reset == "subtract"
    if subtract and not fmt.reset_subtract and any(p.spiking for p in net.populations.values()):
        first = next(p.name for p in net.populations.values() if p.spiking)
        raise UnsupportedError(
            f"node '{first}': target {fmt.target} resets v to 0 after a spike and cannot reset by subtraction; "
            f"compile with --reset zero (the nearest option), or use --target emulator to study the difference"
        )
    for c in conns:
        src = net.populations.get(c.source)
        if src is not None and not src.spiking:
            raise UnsupportedError(
                f"node '{c.source}': a non-spiking {src.kind} feeds '{c.target}' through '{c.name}'; "
                f"target {fmt.target} transmits spikes only: make '{c.source}' a spiking neuron or a readout"
            )


# ------------------------------------------------------------------ scales

def _max_abs_rows(c: Connection) -> np.ndarray:
    """Largest |weight| per target neuron."""
    if c.kind == "dense":
        return np.abs(c.weight).max(axis=1) if c.weight.size else np.zeros(c.n_out)
    if c.kind == "sparse":
        return np.asarray(abs(c.weight).max(axis=1).todense()).reshape(-1)
    per_channel = np.abs(c.weight).reshape(c.weight.shape[0], -1).max(axis=1)
    return np.repeat(per_channel, int(np.prod(c.conv["out_shape"][1:])))


def _choose_scale(pop: Population, dyn: Dynamics, conns: list[Connection], amp: float,
                  fmt: FixedPointFormat, ranges: Ranges | None, per_neuron: bool,
                  health: HealthReport) -> np.ndarray:
    """The voltage scale: as large as precision wants, as small as every format limit needs."""
    n = pop.size
    limit = float(fmt.state_max)
    caps: dict[str, np.ndarray] = {}
    threshold = _shifted_threshold(dyn)
    if threshold is not None:
        thr = np.maximum(np.abs(threshold).reshape(-1), 1e-12)
        caps["threshold"] = limit / 2**fmt.headroom_bits / thr
        caps["vth"] = fmt.vth_max * 2**fmt.threshold_shift / thr
    # Weights: the largest mantissa at the largest exponent.
    w_cap = (2 ** fmt.weight_bits - 2) * 2 ** (fmt.weight_exp_range[1] + fmt.activation_shift)  # mixed sign: even mantissas
    gain = np.abs(dyn.spike_to_v).reshape(-1) * amp
    incoming = [c for c in conns if c.target == pop.name]
    for c in incoming:
        per_row = _max_abs_rows(c) * gain
        with np.errstate(divide="ignore"):
            caps.setdefault("weights", np.full(n, np.inf))
            caps["weights"] = np.minimum(caps["weights"], np.where(per_row > 0, w_cap / per_row, np.inf))
    drive = np.abs(_constant_drive(pop, dyn)).reshape(-1)
    if np.any(drive > 0):
        b_cap = fmt.bias_mant_max * 2 ** fmt.bias_exp_range[1]
        with np.errstate(divide="ignore"):
            caps["bias"] = np.where(drive > 0, b_cap / drive, np.inf)
    if ranges is not None and pop.name in ranges.v_max:
        v_seen = ranges.v_max[pop.name].reshape(-1) + (np.abs(dyn.v_reset).reshape(-1) if dyn.v_reset is not None else 0)
        u_seen = ranges.i_max.get(pop.name, np.zeros(n)).reshape(-1) * np.abs(dyn.mem_gain).reshape(-1)
        seen = np.maximum(v_seen, u_seen)
        with np.errstate(divide="ignore"):
            caps["calibration"] = np.where(seen > 0, 0.9 * limit / seen, np.inf)
    elif threshold is None:
        caps["range_estimate"] = limit / 2**fmt.headroom_bits / _range_estimate(pop, dyn, incoming, amp)
        health.add("info", pop.name, "range_estimate", 0,
                   "no calibration data: the range of this non-spiking layer is a worst-case estimate; "
                   "pass --calibrate IN.npz for finer precision")
    scale = np.full(n, np.inf)
    for cap in caps.values():
        scale = np.minimum(scale, cap)
    if ranges is None and threshold is not None and incoming:
        _warn_saturation_risk(pop, dyn, incoming, amp, scale, limit, fmt, health)
    if not np.all(np.isfinite(scale)):
        scale = np.where(np.isfinite(scale), scale, limit / 2**fmt.headroom_bits)
    if not per_neuron:
        scale = np.full(n, scale.min())
    return scale.reshape(pop.shape)


def _warn_saturation_risk(pop: Population, dyn: Dynamics, incoming: list[Connection], amp: float,
                          scale: np.ndarray, limit: float, fmt: FixedPointFormat, health: HealthReport) -> None:
    """Without calibration, flag layers whose worst-case drive exceeds the representable range."""
    finite = np.where(np.isfinite(scale), scale, np.nan)
    if np.all(np.isnan(finite)):
        return
    worst = _range_estimate(pop, dyn, incoming, amp)
    reach = float(np.nanmax(worst * finite / limit))
    # Lava's fixed-point LIF wraps the summed input and u (two's complement) and clamps only v
    overflow = "summed input and u wrap around, v saturates" if fmt.target == "loihi2" else "v saturates there"
    if reach > 1:
        health.add("warning", pop.name, "saturation_risk", reach,
                   f"with every input active, |v| could reach {reach:.1f}x the representable range at this scale "
                   f"({overflow}); pass --calibrate IN.npz to size the range from real inputs")


def _shifted_threshold(dyn: Dynamics) -> np.ndarray | None:
    if dyn.v_threshold is None:
        return None
    return dyn.v_threshold - (dyn.v_reset if dyn.v_reset is not None else 0)


def _constant_drive(pop: Population, dyn: Dynamics) -> np.ndarray:
    """v added per step by the bias current and the leak (with v shifted so that reset is 0)."""
    reset = dyn.v_reset if dyn.v_reset is not None else 0.0
    leak_target = pop.params.get("v_leak")
    leak = dyn.mem_decay * ((leak_target if leak_target is not None else 0.0) - reset) if leak_target is not None else 0.0
    bias = np.asarray(pop.bias, dtype=np.float64)
    steady_current = np.where(dyn.syn_decay > 0, dyn.syn_gain * bias / np.maximum(dyn.syn_decay, 1e-300), 0.0)
    return dyn.mem_gain * steady_current + leak


def _synaptic_drive(pop: Population, dyn: Dynamics) -> np.ndarray:
    """The part of the constant drive that passes through the synaptic current (the bias)."""
    bias = np.asarray(pop.bias, dtype=np.float64)
    steady_current = np.where(dyn.syn_decay > 0, dyn.syn_gain * bias / np.maximum(dyn.syn_decay, 1e-300), 0.0)
    return dyn.mem_gain * steady_current


def _range_estimate(pop: Population, dyn: Dynamics, incoming: list[Connection], amp: float) -> np.ndarray:
    """Worst-case |v| of a non-spiking layer: every input active every step, at steady state."""
    total = np.zeros(pop.size)
    for c in incoming:
        if c.kind == "conv":
            total += convolution.row_sums(np.abs(np.asarray(c.weight, dtype=np.float64)),
                                          convolution.ConvGeometry.of(c.conv))
        else:
            total += np.asarray(abs(c.as_matrix()).sum(axis=1)).reshape(-1)
    per_step = total * amp * np.abs(dyn.spike_to_v).reshape(-1) + np.abs(_constant_drive(pop, dyn)).reshape(-1)
    syn = np.maximum(dyn.syn_decay.reshape(-1), 1e-3)
    mem = np.maximum(dyn.mem_decay.reshape(-1), 1e-2)  # integrators: assume about 100 steps
    return np.maximum(per_step / syn / mem, 1e-12)


# ------------------------------------------------------------------ populations

def _population(pop: Population, dyn: Dynamics, scale: np.ndarray, latency: int,
                fmt: FixedPointFormat, health: HealthReport) -> QPopulation:
    one = fmt.decay_one
    syn = dyn.syn_decay * np.ones(pop.shape)
    mem = dyn.mem_decay * np.ones(pop.shape)
    du = np.clip(np.rint(syn * one) - fmt.du_offset, 0, one - 1).astype(np.int64)
    dv = np.clip(np.rint(mem * one), 0, one - 1).astype(np.int64)
    _check_decay(pop.name, "synaptic", syn, (du + fmt.du_offset) / one, health)
    _check_decay(pop.name, "membrane", mem, dv / one, health)
    if pop.kind in ("Sum", "Threshold"):
        dv = np.full(pop.shape, one - 1, dtype=np.int64)  # v follows u (a residue of v/4096 remains)
    params = {"du": du, "dv": dv}
    threshold = _shifted_threshold(dyn)
    if threshold is not None:
        vth_f = scale * threshold / 2**fmt.threshold_shift
        vth = np.clip(np.rint(vth_f), 0, fmt.vth_max).astype(np.int64)
        err = np.abs(vth - vth_f) / np.maximum(np.abs(vth_f), 1e-12)
        health.metric(pop.name, "threshold_error", float(err.max()))
        if np.any(threshold < 0):
            health.add("severe", pop.name, "threshold_sign", float(threshold.min()),
                       f"threshold - reset is negative ({threshold.min():.3g}); {fmt.target} thresholds are >= 0")
        if err.max() > 0.01:
            health.add("warning", pop.name, "threshold_resolution", err.max(),
                       f"threshold rounds with up to {100 * err.max():.1f}% error")
        params["vth"] = vth
    else:
        # A readout never spikes. Lava's LIF would fire above vth_max << 6 (v reaches 2^23 - 1), so
        # the Lava runner raises a readout's threshold to 2^17 in simulation.
        params["vth"] = np.full(pop.shape, fmt.vth_max, dtype=np.int64)
    bias_f = scale * _constant_drive(pop, dyn)
    mant, exp = _bias(bias_f, fmt, pop.name, health)
    params["bias_mant"], params["bias_exp"] = mant, exp
    reset = dyn.v_reset if dyn.v_reset is not None else np.zeros(pop.shape)
    params["v_init"] = np.rint(-scale * reset).astype(np.int64)
    params["v_zero"] = params["v_init"].copy()  # the integer v that stands for float v = 0 (reset shifted to 0)
    # The bias current of a CubaLIF reaches v through the synapse and rises over the first steps;
    # Loihi adds its steady-state value to v from step 0. Starting u at minus that value makes u
    # decay towards 0 exactly as the float current rises: v sees bias + u = the float drive.
    params["u_init"] = np.where(np.ones(pop.shape) * dyn.syn_decay < 1,
                                -np.rint(scale * _synaptic_drive(pop, dyn)), 0).astype(np.int64)
    # A linear readout (Sum) is read from u, which follows the input exactly (du clears it every
    # step); with a bias, which Loihi adds to v only, it is read from v (dv = 4095 leaves 1/4096).
    readout = "u" if pop.kind == "Sum" and not np.any(params["bias_mant"]) else "v"
    if not fmt.start_state:
        report_lost_start_state(pop.name, params, fmt, latency, health)
        params["u_init"] = np.zeros(pop.shape, dtype=np.int64)
    elif fmt.hop_latency and latency:
        params["u_init"], params["v_init"] = prestart_state(pop.name, params, fmt, latency, pop.spiking, health)
    return QPopulation(pop.name, fmt.model, pop.kind, pop.shape, pop.spiking, scale, params,
                       latency, readout=readout)


def _check_decay(layer: str, which: str, wanted: np.ndarray, got: np.ndarray, health: HealthReport) -> None:
    if np.any(wanted > 1):
        health.add("severe", layer, "decay_collapsed", float(wanted.max()),
                   f"{which} decay per step is {wanted.max():.3g} > 1 (tau < dt): the float model overshoots "
                   f"and no integer decay reproduces it; use a smaller dt or --integrator exact")
    elif np.any((wanted > 0) & (got <= 0)):
        health.add("severe", layer, "decay_vanished", float(wanted[wanted > 0].min()),
                   f"{which} decay {wanted[wanted > 0].min():.2e} per step rounds to no decay at all; "
                   f"use a larger dt")
    elif np.any((wanted < 1) & (wanted >= 1 - 1 / 4096) & (wanted > 0)):
        health.add("warning", layer, "decay_full", float(wanted.max()),
                   f"{which} decay ~ 1 per step (tau ~ dt): the state is cleared every step")
    mask = wanted > 0
    if np.any(mask):
        rel = np.abs(got[mask] - wanted[mask]) / wanted[mask]
        health.metric(layer, f"{which}_decay_error", float(rel.max()))
        if rel.max() > 0.02:
            health.add("warning", layer, "decay_resolution", rel.max(),
                       f"{which} decay rounds with up to {100 * rel.max():.1f}% error (time constant off by as much)")


def _bias(bias_f: np.ndarray, fmt: FixedPointFormat, layer: str, health: HealthReport):
    mant_max = fmt.bias_mant_max
    lo, hi = fmt.bias_exp_range
    peak = float(np.abs(bias_f).max()) if bias_f.size else 0.0
    exp = lo
    while exp < hi and peak / 2**exp > mant_max:
        exp += 1
    mant = np.rint(bias_f / 2**exp)
    if np.any(np.abs(mant) > mant_max):
        health.add("severe", layer, "bias_saturated", peak,
                   f"bias needs {peak:.3g} state units, more than the format holds; values clipped")
    mant = np.clip(mant, -mant_max, mant_max).astype(np.int64)
    return mant, np.full(bias_f.shape, exp, dtype=np.int64)


# ------------------------------------------------------------------ connections

def _quantize_values(values: np.ndarray, fmt: FixedPointFormat) -> tuple[np.ndarray, int, str, float]:
    """8-bit mantissas and one exponent; returns (mantissas, exponent, sign mode, clipped fraction)."""
    if values.size == 0 or not np.any(values):
        return np.zeros(values.shape, dtype=np.int64), fmt.weight_exp_range[0], "exc", 0.0
    mixed = values.min() < 0 < values.max()
    sign_mode = "mixed" if mixed else ("inh" if values.max() <= 0 else "exc")
    step = 2 if mixed else 1  # mixed-sign matrices lose their lowest mantissa bit
    mant_max = 2**fmt.weight_bits - 1 if not mixed else 2**fmt.weight_bits - 2
    unit = 2.0**fmt.activation_shift
    peak = float(np.abs(values).max())
    lo, hi = fmt.weight_exp_range
    exp = lo
    while exp < hi and peak / (unit * 2**exp) > mant_max:
        exp += 1
    scaled = values / (unit * 2**exp)
    mant = np.rint(scaled / step) * step
    clipped = float(np.mean(np.abs(mant) > mant_max))
    mant = np.clip(mant, -mant_max if mixed else (-mant_max if sign_mode == "inh" else 0),
                   mant_max if sign_mode != "inh" else 0)
    return mant.astype(np.int64), exp, sign_mode, clipped


def _connection(c: Connection, factor: np.ndarray, latency: dict[str, int], fmt: FixedPointFormat,
                health: HealthReport) -> QConnection:
    factor = factor.reshape(-1)
    kind = c.kind
    per_channel = factor.reshape(c.conv["out_shape"][0], -1) if kind == "conv" else None
    if kind == "conv" and np.any(np.ptp(per_channel, axis=1) > 0):
        kind = "sparse"  # scales that differ inside a channel do not share one kernel
    if kind == "conv":
        values = c.weight * per_channel[:, :1].reshape((-1,) + (1,) * (np.ndim(c.weight) - 1))
    elif kind == "dense":
        values = c.weight * factor[:, None]
    else:
        matrix = c.as_matrix() if c.kind == "conv" else c.weight
        matrix = (scipy.sparse.diags(factor) @ matrix).tocsr()
        matrix.sort_indices()
        values = matrix.data
    mant, exp, sign_mode, clipped = _quantize_values(np.asarray(values, dtype=np.float64), fmt)
    effective = mant * 2.0 ** (exp + fmt.activation_shift)
    _report_weights(c.name, np.asarray(values), effective, clipped, fmt, health)
    arrays: dict[str, np.ndarray] = {}
    attrs: dict = {"weight_exp": exp, "sign_mode": sign_mode}
    if kind == "conv":
        arrays["weight"] = mant
        attrs.update({k: np.asarray(v).tolist() if not isinstance(v, (int, tuple)) else v
                      for k, v in c.conv.items()})
        attrs["synapses"] = convolution.synapse_count(mant, convolution.ConvGeometry.of(c.conv))
    elif kind == "dense":
        arrays["weight"] = mant
    else:
        arrays["weight"] = mant
        arrays["indptr"] = matrix.indptr.astype(np.int64)
        arrays["indices"] = matrix.indices.astype(np.int64)
    delay, per_synapse = _delay(c, kind, latency, fmt, health, matrix if kind == "sparse" else None)
    attrs["delay"] = delay
    if per_synapse is not None:
        arrays["delay"] = per_synapse
    return QConnection(c.name, c.source, c.target, kind, c.n_in, c.n_out, c.recurrent, arrays, attrs)


def _report_weights(name: str, values: np.ndarray, effective: np.ndarray, clipped: float,
                    fmt: FixedPointFormat, health: HealthReport) -> None:
    nonzero = values != 0
    health.weight_loss(name, values[nonzero], effective[nonzero], clipped, f"at {fmt.weight_bits} bits",
                       "spread the weights, use --per-neuron scales, or --calibrate", fmt.zero_warn, fmt.zero_severe)


# ------------------------------------------------------------------ timing

def _nir_delay(c: Connection) -> np.ndarray | int:
    """Total NIR delay per synapse (array aligned with the target x source grid) or a uniform int."""
    if c.delay_in is None and c.delay_out is None:
        return c.delay
    d_in = c.delay_in if c.delay_in is not None else np.zeros(c.n_in, dtype=np.int64)
    d_out = c.delay_out if c.delay_out is not None else np.zeros(c.n_out, dtype=np.int64)
    return c.delay + d_out[:, None] + d_in[None, :]


def _latencies(net: NetworkIR, conns: list[Connection], fmt: FixedPointFormat) -> dict[str, int]:
    latency = {name: 0 for name in net.inputs}
    for name in net.populations:
        forward = [latency[c.source] + fmt.hop_latency for c in conns
                   if c.target == name and not c.recurrent and c.source in latency]
        latency[name] = max(forward, default=0)
    return latency


def _delay(c: Connection, kind: str, latency: dict[str, int], fmt: FixedPointFormat,
           health: HealthReport, matrix=None) -> tuple[int, np.ndarray | None]:
    """Steps to add on this connection so that every population keeps the NIR timing.

    On the target, a spike reaches the next population ``hop_latency + delay`` steps later; in
    the NIR semantics it arrives after the NIR delay (plus one step for a recurrent edge).
    """
    skew = latency[c.target] - latency[c.source] + (1 if c.recurrent else 0) - fmt.hop_latency
    if fmt.hop_latency == 0:
        skew = 0
    nir = _nir_delay(c)
    total = nir + skew
    low = int(np.min(total))
    if low < 0:
        health.add("severe", c.name, "loop_latency", low,
                   f"this recurrent loop spans several hops; {fmt.target} adds {fmt.hop_latency} step per hop, so "
                   f"the loop arrives {-low} step(s) later than the NIR timing (add a Delay node to the loop)")
        total = np.maximum(total, 0)
    high = int(np.max(total))
    if high > fmt.delay_max:
        raise UnsupportedError(
            f"projection '{c.name}': needs a delay of {high} steps; {fmt.target} holds at most {fmt.delay_max} "
            f"(shorten the NIR delay or increase dt)"
        )
    if np.isscalar(total) or np.ndim(total) == 0:
        return int(total), None
    if kind == "conv":
        raise UnsupportedError(f"projection '{c.name}': per-element delays on a convolution are not supported")
    grid = np.asarray(total, dtype=np.int64)
    if kind == "dense":
        return 0, grid
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    return 0, grid[rows, matrix.indices].astype(np.int64)


# ------------------------------------------------------------------ activity

def _check_activity(net: NetworkIR, ranges: Ranges, health: HealthReport) -> None:
    for name, count in ranges.spikes.items():
        health.metric(name, "calibration_spikes", count)
        if count == 0:
            health.add("warning", name, "dead_layer", 0,
                       f"no spikes on the calibration data ({ranges.samples} samples x {ranges.steps} steps)")

