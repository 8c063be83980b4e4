"""Quantization onto sPyNNaker 7.4.1's IF_curr_exp / IF_curr_delta (s16.15, 16-bit ring buffers).

The integer neuron (docs/targets.md, "spinnaker"), per tick:
    I_syn[s] += decay_s1615(r[s] << shift[s], init_syn)     exp synapses (delta: I_syn[s] += r << shift)
    I      = I_syn[exc] - I_syn[inh] + I_offset              delta: mul(I_syn, input_scale) per type
    alpha  = mul(I, R) + V_rest;  V = alpha - mul(exp_TC, alpha - V)
    spike when V >= V_thresh; then V = V_reset;  exp: I_syn = decay_s1615(I_syn, decay_syn), delta: 0
The core computes R, exp_TC, decay_syn, init_syn itself from tau_m, c_m, tau_syn and the time
step, so the compiler chooses *those parameters* (their s1615 bits) such that the chip's
per-step coefficients are the ones the float reference uses:
    exp_TC   ~ 1 - mem_decay (Euler: 1 - dt/tau, exact: e^(-dt/tau)): tau_m is searched in bits
    decay    ~ 1 - syn_decay, the same way for tau_syn (CubaLIF / CubaLI)
    R        = 1 (c_m = tau_m) for leaky models, so V_rest + I equals the float equilibrium
A float population maps with a voltage scale ``s`` (a power of two; chip V = s * float v) and
chip currents in units of ``s`` mV per float unit. Per kind:
    LIF, LI        IF_curr_delta, I = s*r*(bias + W x)            V_rest = s*v_leak
    CubaLIF, CubaLI IF_curr_exp,  I_syn = s*r*I_float, jump w*init; bias in I_offset with the
                   filter's start-up transient reproduced by an initial isyn (see _population)
    IF, I          IF_curr_delta with the smallest leak the chip has (exp_TC = 32766, i.e.
                   1 - 2**-14 per step: expk(-2**-15) is 32766, not 32767) and R = 2**14 so
                   the increment per step is exact; V loses floor(V / 2**14) bits per step
    Sum            IF_curr_delta with exp_TC = 0: V = I every step (a linear readout)
    Threshold      the same as Sum with a threshold: V = I, spike when V >= s*threshold + 1 LSB
    non-spiking    (LI, CubaLI, I, Sum): V_thresh = INT32_MAX, unreachable in practice
NIR spikes on v > v_threshold; the chip on V >= V_thresh, so V_thresh is one LSB above
s*v_threshold. Reset is to V_reset only, with refractory time 0.

Weights: each connection's float matrix (conv expanded: sPyNNaker takes FromListConnector lists)
is scaled to nA of ring-buffer input and split by sign into excitatory (synapse_type 0) and
inhibitory (1) magnitudes. Per target population and type, the ring-buffer shift follows
sPyNNaker's get_ring_buffer_shifts from the worst case W = max over neurons of the sum of
incoming |w| (what ``max_expected_summed_weight`` must be set to): shift = ceil(log2 W), +1
when 2**shift <= W; each synapse stores w16 = rint(|w| * 2**(15 - shift)). With one spike per
source per tick the ring buffer then never saturates.

Timing: every hop takes at least one tick (sPyNNaker's minimum delay), as on Loihi; the shared
``_latencies``/``_delay`` logic of the Loihi quantizer computes each population's latency and
the extra steps per connection. Connections store total delays in ticks (>= 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurodeploy.compiler.dynamics import dynamics
from neurodeploy.compiler.health import HealthReport
from neurodeploy.compiler.neurons import kinds
from neurodeploy.compiler.ir import NetworkIR, Population
from neurodeploy.compiler.quantize.calibration import Ranges
from neurodeploy.compiler.quantize.fixed_point import _check_activity, _delay, _latencies
from neurodeploy.format import convolution
from neurodeploy.compiler.quantize.synaptic_map import SynapticMap
from neurodeploy.compiler.synapses import Connection, connections
from neurodeploy.targets import spinnaker as chip
from neurodeploy.targets import spinnaker_local_only
from neurodeploy.targets import spinnaker_math as sm
from neurodeploy.errors import OptionError, UnsupportedError
from neurodeploy.format.program import Program, QConnection, QPopulation

EXC, INH = 0, 1
LEAKY = kinds(leaky=True)
INTEGRATORS = kinds(integrator=True)
FOLLOWERS = kinds(stateless=True)
STATEFUL_SPIKING = kinds(spiking=True, stateless=False)
SYN_MODELS = kinds(synaptic=True)


@dataclass(frozen=True)
class SpinnakerFormat:
    """The numbers the quantizer works to (all ranges in s16.15 real units)."""

    target: str = "spinnaker"
    model_exp: str = "IF_curr_exp"
    model_delta: str = "IF_curr_delta"
    hop_latency: int = 1  # sPyNNaker's minimum delay: one tick per hop
    delay_max: int = chip.DELAY_SLOTS_256 * chip.DELAY_EXTENSION_FACTOR - 1  # beyond the hop
    v_limit_bits: int = 13  # |threshold|, |reset|, |rest| <= 2**13 (3 bits of headroom below 2**16)
    alpha_limit_bits: int = 15  # |alpha| = |R*I + V_rest| <= 2**15, so alpha - V never wraps
    ring_buffer_limit: float = 2.0**15  # worst-case summed weight (nA) per type: shift <= 16
    calibration_margin: float = 0.9
    default_scale: float = 2.0**10  # a population with nothing to bound its scale
    zero_warn: float = 0.05
    zero_severe: float = 0.5


SPINNAKER = SpinnakerFormat()


# ------------------------------------------------------------------ entry point

def quantize(net: NetworkIR, ranges: Ranges | None = None, per_neuron: bool = False,
             fmt: SpinnakerFormat = SPINNAKER) -> tuple[Program, HealthReport]:
    health = HealthReport()
    _check_expressible(net, fmt)
    ts = _time_step_bits(net.semantics.dt)
    input_scale = sm.kdivk(sm.ONE, ts)  # IF_curr_delta's input_type scale_factor = 1 / ts
    conns = connections(net)
    matrices = {c.name: SynapticMap.of(c) for c in conns}
    amp = float(net.semantics.spike_amplitude)
    plans = {name: _plan(pop, net, ts, input_scale, fmt, health) for name, pop in net.populations.items()}
    for name, pop in net.populations.items():
        incoming = [c for c in conns if c.target == name]
        plans[name].scale = _choose_scale(pop, plans[name], incoming, matrices, amp, net, ranges, per_neuron,
                                          fmt, health)
    latency = _latencies(net, conns, fmt)
    # Weights in nA of ring-buffer input, signed; then the shifts per target population and type.
    signed = {}
    for c in conns:
        factor = (plans[c.target].scale * plans[c.target].rb_per_unit).reshape(-1) * amp
        signed[c.name] = matrices[c.name].scaled(factor)
    shifts = {name: _shifts(name, [signed[c.name] for c in conns if c.target == name], pop.size, health)
              for name, pop in net.populations.items()}
    populations = [_population(pop, plans[pop.name], latency[pop.name], ts, fmt, health)
                   for pop in net.populations.values()]
    qconns = [_connection(c, signed[c.name], shifts[c.target], latency, fmt, health) for c in conns]
    if ranges is not None:
        _check_activity(net, ranges, health)
    program = Program(
        target=fmt.target,
        inputs={name: port.shape for name, port in net.inputs.items()},
        populations=populations,
        connections=qconns,
        outputs=dict(net.outputs),
        attrs={
            "format": fmt.__dict__, "hop_latency": fmt.hop_latency, "per_neuron": per_neuron,
            "spynnaker": "7.4.1",
            "time_step_ms": ts / sm.ONE, "time_step_bits": ts, "input_scale": input_scale,
            "ring_buffer_shift": {name: list(s) for name, s in shifts.items()},
            "v_recorded": "before_update",  # sPyNNaker records V of tick t before the tick's update
            "delay": "ticks per synapse, total: attrs.delay + arrays.delay, >= 1 (one tick per hop included)",
            "synapse_type": "0 excitatory, 1 inhibitory; weights are magnitudes (uint16 words)",
        },
    )
    spinnaker_local_only.record(program)  # which convs sPyNNaker computes local-only (attrs only)
    return program, health


# ------------------------------------------------------------------ expressibility

def _check_expressible(net: NetworkIR, fmt: SpinnakerFormat) -> None:
    if net.semantics.reset == "subtract":
        stateful = [p.name for p in net.populations.values() if p.kind in STATEFUL_SPIKING]
        if stateful:
            raise UnsupportedError(
                f"node '{stateful[0]}': target {fmt.target} (sPyNNaker IF_curr_exp/IF_curr_delta) resets V to "
                f"V_reset after a spike and cannot reset by subtraction; compile with --reset zero (the nearest "
                f"option), or use --target emulator to study the difference")
    for proj in net.projections:
        src = net.populations.get(proj.source)
        if src is not None and not src.spiking:
            raise UnsupportedError(
                f"node '{proj.source}': a non-spiking {src.kind} feeds '{proj.target}' through '{proj.name}'; "
                f"target {fmt.target} transmits spikes only: make '{proj.source}' a spiking neuron or a readout")


def _time_step_bits(dt: float) -> int:
    ms = dt * 1000.0
    try:
        ts = sm.to_s1615(ms)
    except OverflowError:
        raise OptionError(f"dt = {dt} s is {ms} ms, more than SpiNNaker's s16.15 time step holds") from None
    if ts < 16:
        raise OptionError(f"dt = {dt} s is {ms} ms; SpiNNaker's s16.15 time step needs dt >= 0.5 us "
                          f"(a larger dt)")
    return int(ts)


# ------------------------------------------------------------------ per-population plan

@dataclass
class _Plan:
    """How a population maps: chip model, parameter bits, and gains at scale 1."""

    model: str
    exp_synapse: bool
    tau_m: np.ndarray  # s1615 bits
    c_m: np.ndarray
    r_membrane: np.ndarray
    exp_tc: np.ndarray
    tau_syn: np.ndarray  # s1615 bits (0 for delta models)
    decay_syn: np.ndarray  # u032 bits
    init_syn: np.ndarray
    input_scale: int
    current_per_unit: np.ndarray  # chip nA of steady current per unit of float input current, at s = 1
    rb_per_unit: np.ndarray  # ring-buffer nA per unit of float input (W * x), at s = 1
    alpha_per_current: np.ndarray  # real alpha per chip nA (R)
    keep_syn: np.ndarray  # float synaptic keep (1 - syn_decay), for the bias transient
    scale: np.ndarray | None = None


def _plan(pop: Population, net: NetworkIR, ts: int, input_scale: int, fmt: SpinnakerFormat,
          health: HealthReport) -> _Plan:
    dyn = dynamics(pop, net.semantics)
    shape = pop.shape
    full = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), shape).copy()  # noqa: E731
    p = {k: full(v) for k, v in pop.params.items()}
    kind = pop.kind
    keep_mem = full(1.0 - dyn.mem_decay)
    if kind in LEAKY:
        _check_decay_wanted(pop.name, "membrane", dyn.mem_decay, health)
        tau_m, exp_tc = _membrane_tau(ts, np.clip(keep_mem, 0.0, 1.0))
        c_m = tau_m.copy()  # R = kdivk(tau_m, tau_m) = 1.0 exactly
    elif kind in INTEGRATORS:
        tau_m, exp_tc = _membrane_tau(ts, np.ones(shape))
        r_target = sm.ONE / (sm.ONE - exp_tc.astype(np.float64))  # 1 / (1 - exp_TC): gain 1 per step
        c_m = np.maximum(1, np.rint(tau_m / r_target)).astype(np.int64)
        leak = 1.0 - exp_tc / sm.ONE
        health.add("info", pop.name, "integrator_leak", float(leak.max()),
                   f"{kind} maps to IF_curr_delta with the smallest leak the chip computes (exp_TC = "
                   f"{int(exp_tc.max())}/32768: V loses 1/{int(round(1 / leak.max()))} of itself per step) and "
                   f"R = {float(np.max(sm.kdivk(tau_m, c_m))) / sm.ONE:g} to compensate the gain")
    else:  # Sum, Threshold: V = alpha every tick
        tau_m, exp_tc = _membrane_tau(ts, np.zeros(shape))
        c_m = tau_m.copy()
    r_membrane = sm.kdivk(tau_m, c_m)
    r_real = r_membrane / sm.ONE
    _report_membrane(pop, keep_mem, exp_tc, health)

    exp_synapse = False
    zeros = np.zeros(shape, dtype=np.int64)
    tau_syn, decay_syn, init_syn = zeros, zeros, zeros
    keep_syn = full(1.0 - dyn.syn_decay)
    if kind in SYN_MODELS:
        _check_decay_wanted(pop.name, "synaptic", dyn.syn_decay, health)
        keep = np.clip(keep_syn, 0.0, 1.0)
        t, d = _synapse_tau(ts, keep)
        _, i = sm.synapse_propagators(ts, t)
        if np.all(d > 0) and np.all(i > 0):
            exp_synapse = True
            tau_syn, decay_syn, init_syn = t, d, i
            _report_synapse(pop.name, keep, d, i, health)
        else:  # no synaptic memory left at this dt: the current is instantaneous
            health.add("info", pop.name, "synapse_instantaneous", float(keep.max()),
                       "the synaptic decay per step rounds to 0 on the chip: mapped to IF_curr_delta")
    # Chip current (nA) per unit of float input current at s = 1, so that R*I is the float drive.
    if kind in ("LIF", "LI"):
        current = p["r"] / r_real
    elif kind in SYN_MODELS:
        current = p["r"] * p["w_in"] / r_real
    elif kind in INTEGRATORS:
        current = dyn.mem_gain / ((1.0 - exp_tc / sm.ONE) * r_real)
    else:
        current = 1.0 / r_real
    current = full(current)
    if exp_synapse:  # a jump of w*init in I_syn stands for syn_decay * (input) of steady current
        rb = current * full(dyn.syn_decay) / (init_syn / 2.0**32)
    else:  # delta: the input is multiplied by input_scale (1/ts) before it reaches the membrane
        rb = current / (input_scale / sm.ONE)
    model = fmt.model_exp if exp_synapse else fmt.model_delta
    return _Plan(model, exp_synapse, tau_m, c_m, r_membrane, exp_tc, tau_syn, decay_syn, init_syn, input_scale,
                 current, full(rb), full(r_real), keep_syn)


def _membrane_tau(ts: int, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tau_m bits whose on-chip exp_TC = expk(-kdivk(ts, tau_m)) is nearest to ``keep``.

    keep = 1 asks for the smallest leak (kdivk = 1); keep = 0 for exp_TC = 0 (V = alpha).
    """
    return _search(ts, keep, sm.expk, float(sm.ONE))


def _synapse_tau(ts: int, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tau_syn bits whose on-chip decay = expulr(-kdivk(ts, tau_syn)) is nearest to ``keep``."""
    return _search(ts, keep, sm.expulr, 2.0**32)


def _search(ts: int, keep: np.ndarray, exp_fn, unit: float) -> tuple[np.ndarray, np.ndarray]:
    flat = np.asarray(keep, dtype=np.float64).reshape(-1)
    values, inverse = np.unique(flat, return_inverse=True)
    taus, outs = [], []
    total = ts << sm.FRACTION_BITS  # kdivk(ts, tau) = total // tau
    for keep_value in values:
        tau, out = _best_tau(total, float(keep_value), exp_fn, unit)
        taus.append(tau)
        outs.append(out)
    tau = np.asarray(taus, dtype=np.int64)[inverse].reshape(np.shape(keep))
    out = np.asarray(outs, dtype=np.int64)[inverse].reshape(np.shape(keep))
    return tau, out


def _best_tau(total: int, keep: float, exp_fn, unit: float) -> tuple[int, int]:
    if keep <= 0.0:
        tau = max(1, total >> 20)  # kdivk = total // tau in [2**20, 2**21): below expk's range, exp = 0
        return tau, int(exp_fn(-(total // tau)))
    k_star = 0.5 if keep >= 1.0 else -math.log(keep) * sm.ONE
    lo, hi = max(1, int(math.floor(k_star)) - 2), int(math.ceil(k_star)) + 3
    best = None
    for k in range(lo, hi):
        tau = min(total // k, sm.INT32_MAX)
        if tau < 1:
            continue
        actual = total // tau
        if actual < 1 or actual > sm.INT32_MAX:
            continue
        out = int(exp_fn(-actual))
        err = abs(out - keep * unit)
        if best is None or err < best[0]:
            best = (err, tau, out)
    if best is None:  # tau would exceed int32 (dt very large): take the largest tau there is
        tau = sm.INT32_MAX
        return tau, int(exp_fn(-(total // tau)))
    return best[1], best[2]


def _check_decay_wanted(layer: str, which: str, fraction: np.ndarray, health: HealthReport) -> None:
    if np.any(np.asarray(fraction) > 1):
        health.add("severe", layer, "decay_collapsed", float(np.max(fraction)),
                   f"{which} decay per step is {np.max(fraction):.3g} > 1 (tau < dt): the float model overshoots "
                   f"and no chip decay reproduces it; use a smaller dt or --integrator exact")


def _report_membrane(pop: Population, keep: np.ndarray, exp_tc: np.ndarray, health: HealthReport) -> None:
    if pop.kind not in LEAKY:
        return
    wanted = np.clip(1.0 - keep, 1e-300, None)  # fraction lost per step
    got = 1.0 - exp_tc / sm.ONE
    rel = np.abs(got - wanted) / wanted
    health.metric(pop.name, "membrane_decay_error", float(rel.max()))
    if rel.max() > 0.02:
        health.add("warning", pop.name, "decay_resolution", float(rel.max()),
                   f"membrane decay rounds with up to {100 * rel.max():.1f}% error on the chip's s16.15 exp_TC "
                   f"(time constant off by as much)")


def _report_synapse(layer: str, keep: np.ndarray, decay: np.ndarray, init: np.ndarray,
                    health: HealthReport) -> None:
    wanted = np.clip(1.0 - keep, 1e-300, None)
    got = 1.0 - decay / 2.0**32
    rel = np.abs(got - wanted) / wanted
    health.metric(layer, "synaptic_decay_error", float(rel.max()))
    ideal = (1.0 - decay / 2.0**32) / np.maximum(-np.log(np.maximum(decay, 1) / 2.0**32), 1e-300)
    health.metric(layer, "synaptic_init", float(np.mean(init / 2.0**32)))
    health.metric(layer, "synaptic_init_error", float(np.max(np.abs(init / 2.0**32 - ideal) / ideal)))
    if rel.max() > 0.02:
        health.add("warning", layer, "decay_resolution", float(rel.max()),
                   f"synaptic decay rounds with up to {100 * rel.max():.1f}% error")


# ------------------------------------------------------------------ scales

def _choose_scale(pop: Population, plan: _Plan, incoming: list[Connection], matrices, amp: float,
                  net: NetworkIR, ranges: Ranges | None, per_neuron: bool, fmt: SpinnakerFormat,
                  health: HealthReport) -> np.ndarray:
    """The voltage scale s (chip mV per float unit): a power of two under every range limit."""
    n = pop.size
    flat = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), pop.shape).reshape(-1)  # noqa: E731
    p = {k: flat(v) for k, v in pop.params.items()}
    caps: dict[str, np.ndarray] = {}
    levels = [np.abs(p[k]) for k in ("v_threshold", "threshold", "v_reset") if k in p]
    if pop.kind in LEAKY and "v_leak" in p:
        levels.append(np.abs(p["v_leak"]))
    if levels:
        level = np.max(levels, axis=0)
        with np.errstate(divide="ignore"):
            caps["threshold"] = np.where(level > 0, 2.0**fmt.v_limit_bits / level, np.inf)
    rows = np.zeros(n)
    for c in incoming:
        rows += matrices[c.name].row_sums(np.abs)
    bias = np.abs(flat(pop.bias))
    current = np.abs(flat(plan.current_per_unit))
    r = flat(plan.alpha_per_current)
    leak = np.abs(p["v_leak"]) if (pop.kind in LEAKY and "v_leak" in p) else np.zeros(n)
    alpha = leak + current * r * (rows * amp + bias)  # worst case: every source spikes every tick
    with np.errstate(divide="ignore"):
        caps["alpha"] = np.where(alpha > 0, 2.0**fmt.alpha_limit_bits / alpha, np.inf)
        summed = rows * amp * np.abs(flat(plan.rb_per_unit))
        caps["ring_buffer"] = np.where(summed > 0, fmt.ring_buffer_limit / summed, np.inf)
    if ranges is not None and pop.name in ranges.v_max:
        seen_v = ranges.v_max[pop.name].reshape(-1)
        seen_i = ranges.i_max.get(pop.name, np.zeros(n)).reshape(-1)
        per_i = current / (np.abs(p["w_in"]) if pop.kind in SYN_MODELS else 1.0)  # "i" of Cuba* is I_syn
        seen_alpha = leak + per_i * r * seen_i
        seen = np.maximum(seen_v, seen_alpha)
        with np.errstate(divide="ignore"):
            caps["alpha"] = np.where(seen > 0, fmt.calibration_margin * 2.0**fmt.alpha_limit_bits / seen, np.inf)
        health.add("info", pop.name, "calibrated_range", float(seen.max()),
                   "the voltage/current range comes from calibration data; the ring-buffer shift stays worst-case")
    scale = np.full(n, np.inf)
    binding = np.full(n, "", dtype=object)
    for name, cap in caps.items():
        binding = np.where(cap < scale, name, binding)
        scale = np.minimum(scale, cap)
    if not np.all(np.isfinite(scale)):
        scale = np.where(np.isfinite(scale), scale, fmt.default_scale)
    if not per_neuron:
        scale = np.full(n, scale.min())
    scale = 2.0 ** np.floor(np.log2(np.maximum(scale, 2.0**-30)))
    health.metric(pop.name, "scale", float(scale.min()))
    limited = sorted({b for b in binding.tolist() if b})
    health.add("info", pop.name, "scale", float(scale.min()),
               f"voltage scale {scale.min():g} chip mV per unit (power of two), set by the "
               f"{', '.join(limited) or 'default'} limit")
    if pop.kind in INTEGRATORS:
        floor_v = 2.0**16 / scale.min()
        health.add("info", pop.name, "integrator_range", floor_v,
                   f"v wraps around (int32) beyond +-{floor_v:.3g}: keep inhibition from driving it that low")
    return scale.reshape(pop.shape)


# ------------------------------------------------------------------ populations

def _population(pop: Population, plan: _Plan, latency: int, ts: int, fmt: SpinnakerFormat,
                health: HealthReport) -> QPopulation:
    shape = pop.shape
    scale = np.asarray(plan.scale, dtype=np.float64).reshape(shape)
    full = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), shape)  # noqa: E731
    p = {k: full(v) for k, v in pop.params.items()}
    zeros = np.zeros(shape, dtype=np.int64)
    threshold = p.get("v_threshold", p.get("threshold"))
    if pop.spiking and threshold is not None:
        exact = scale * threshold * sm.ONE
        v_thresh = sm.to_s1615(scale * threshold) + 1  # NIR: v > th; chip: V >= V_thresh
        health.metric(pop.name, "threshold_error", float(np.max(np.abs(np.rint(exact) - exact)
                                                              / np.maximum(np.abs(exact), 1e-300))))
        reset = p.get("v_reset", np.zeros(shape))
        v_reset = sm.to_s1615(scale * reset)
    else:
        v_thresh = np.full(shape, sm.INT32_MAX, dtype=np.int64)  # a readout: never reached in practice
        v_reset = zeros
    v_rest = sm.to_s1615(scale * p["v_leak"]) if (pop.kind in LEAKY and "v_leak" in p) else zeros
    bias = full(pop.bias)
    steady = scale * plan.current_per_unit * bias  # nA of I_offset
    i_offset = sm.to_s1615(steady)
    isyn_exc, isyn_inh = zeros, zeros
    if plan.exp_synapse and np.any(bias != 0):
        # The float filter starts from I = 0 at step 0 (chip tick ``latency``) and approaches
        # w_in*bias as 1 - keep**(t+1); the chip's I_offset is on from tick 0. An initial isyn of
        # -keep**(1 - latency) * I_offset, decaying by keep each tick, reproduces the transient:
        # I(tick t + latency) = I_offset * (1 - keep**(t+1)).
        keep = np.clip(plan.keep_syn, 1e-6, 1.0)
        start = -(keep ** (1.0 - latency)) * steady
        limit = 2.0**fmt.alpha_limit_bits
        if np.any(np.abs(start) > limit):
            health.add("warning", pop.name, "bias_transient", float(np.abs(start).max()),
                       "the bias current's start-up transient does not fit s16.15 at this depth; clipped")
            start = np.clip(start, -limit, limit)
        isyn_exc = sm.to_s1615(np.maximum(start, 0.0))
        isyn_inh = sm.to_s1615(np.maximum(-start, 0.0))
    err = np.abs(i_offset / sm.ONE - steady)
    if np.any(bias != 0):
        health.metric(pop.name, "bias_error", float(err.max() / max(float(np.abs(steady).max()), 1e-300)))
        lost = (i_offset == 0) & (bias != 0)
        if np.any(lost):
            health.add("warning", pop.name, "bias_vanished", float(np.mean(lost)),
                       f"{100 * np.mean(lost):.0f}% of the bias currents round to 0 at 2**-15 nA")
    params = {
        "v_init": zeros, "v_rest": v_rest, "v_reset": v_reset, "v_thresh": np.asarray(v_thresh, dtype=np.int64),
        "i_offset": np.asarray(i_offset, dtype=np.int64).reshape(shape),
        "tau_m": plan.tau_m, "cm": plan.c_m, "tau_refrac": zeros,
        "tau_syn_e": plan.tau_syn, "tau_syn_i": plan.tau_syn,
        "isyn_exc_init": np.asarray(isyn_exc, dtype=np.int64).reshape(shape),
        "isyn_inh_init": np.asarray(isyn_inh, dtype=np.int64).reshape(shape),
        # what the core computes at load time (spinnaker_math.propagators), used by the emulator
        "r_membrane": plan.r_membrane, "exp_tc": plan.exp_tc, "t_refract": zeros,
        "decay_syn_e": plan.decay_syn, "decay_syn_i": plan.decay_syn,
        "init_syn_e": plan.init_syn, "init_syn_i": plan.init_syn,
        "input_scale": np.full(shape, plan.input_scale if not plan.exp_synapse else sm.ONE, dtype=np.int64),
    }
    params = {k: np.asarray(v, dtype=np.int64).reshape(shape) for k, v in params.items()}
    _verify_propagators(pop.name, params, ts, plan.exp_synapse)
    if latency > 0 and pop.kind not in FOLLOWERS:
        params["v_init"] = _prestart(pop.name, params, plan.exp_synapse, latency, health).reshape(shape)
    return QPopulation(pop.name, plan.model, pop.kind, shape, pop.spiking, scale, params, latency, readout="v")


def _prestart(name: str, params: dict[str, np.ndarray], exp_synapse: bool, latency: int,
              health: HealthReport) -> np.ndarray:
    """V_init such that V is 0 after the ``latency`` ticks the chip runs before the first input.

    The chip runs every population from tick 0, but input reaches a population at tick
    ``latency`` (one tick per hop), which stands for the float model's step 0 where v = 0. In the
    ticks before, V_rest and I_offset already move V; V_init is the integer that those ticks
    (replayed here with the chip's arithmetic) bring exactly, or nearest, to 0. The map from
    V_init to V is monotone, so a bisection over int32 finds it.
    """
    p = {k: v.reshape(-1).astype(np.int64) for k, v in params.items()}
    drift = np.any(p["v_rest"] != 0) or np.any(p["i_offset"] != 0)
    if not drift:
        return np.zeros_like(p["v_init"])

    def replay(v0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v, exc, inh = v0.copy(), p["isyn_exc_init"].copy(), p["isyn_inh_init"].copy()
        fired = np.zeros(v.shape, dtype=bool)
        for _ in range(latency):
            current = sm.wrap32((exc - inh if exp_synapse else 0) + p["i_offset"])
            alpha = sm.wrap32(sm.mul(current, p["r_membrane"]) + p["v_rest"])
            v = sm.wrap32(alpha - sm.mul(p["exp_tc"], sm.wrap32(alpha - v)))
            fired |= v >= p["v_thresh"]
            if exp_synapse:
                exc, inh = sm.decay_s1615(exc, p["decay_syn_e"]), sm.decay_s1615(inh, p["decay_syn_i"])
        return v, fired

    lo = np.full(p["v_init"].shape, sm.INT32_MIN // 2, dtype=np.int64)
    hi = np.full(p["v_init"].shape, sm.INT32_MAX // 2, dtype=np.int64)
    while np.any(hi - lo > 1):  # invariant: replay(lo) < 0 <= replay(hi) where reachable
        mid = (lo + hi) // 2
        up = replay(mid)[0] >= 0
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    v_hi, fired_hi = replay(hi)
    v_lo, fired_lo = replay(lo)
    v0 = np.where(np.abs(v_lo) < np.abs(v_hi), lo, hi)
    _, fired = replay(v0)
    if np.any(fired):
        health.add("warning", name, "prestart_spikes", float(np.mean(fired)),
                   f"{100 * np.mean(fired):.0f}% of the neurons would spike in the {latency} tick(s) before their "
                   f"first input (bias and leak alone); their V starts at 0 instead")
        v0 = np.where(fired, 0, v0)
    health.metric(name, "v_init_residual", float(np.max(np.abs(np.where(fired, 0, replay(v0)[0])))))
    return v0


def _verify_propagators(name: str, params: dict[str, np.ndarray], ts: int, exp_synapse: bool) -> None:
    """The recorded propagators are the chip's own (a guard against drift between the two paths)."""
    tau_syn = np.where(params["tau_syn_e"] > 0, params["tau_syn_e"], sm.ONE)
    got = sm.propagators(ts, params["tau_m"], params["cm"], tau_syn, tau_syn, params["tau_refrac"])
    assert np.array_equal(got.r_membrane, params["r_membrane"]) and np.array_equal(got.exp_tc, params["exp_tc"]), name
    assert np.array_equal(got.t_refract, params["t_refract"]), name
    if exp_synapse:
        assert np.array_equal(got.decay_syn_e, params["decay_syn_e"]), name
        assert np.array_equal(got.init_syn_e, params["init_syn_e"]), name


# ------------------------------------------------------------------ connections

def _shifts(name: str, maps: list[SynapticMap], size: int, health: HealthReport) -> tuple[int, int]:
    """Ring-buffer shift per synapse type from the worst-case summed weight into each neuron."""
    sums = np.zeros((2, size))
    for m in maps:
        sums[EXC] += m.row_sums(lambda w: np.maximum(w, 0.0))
        sums[INH] += m.row_sums(lambda w: np.maximum(-w, 0.0))
    out = []
    for kind, label in ((EXC, "exc"), (INH, "inh")):
        w = float(sums[kind].max()) if size else 0.0
        shift = sm.ring_buffer_shift(w)
        health.metric(name, f"max_summed_weight_{label}", w)
        health.metric(name, f"ring_buffer_shift_{label}", shift)
        if shift > 16:
            health.add("severe", name, "ring_buffer_shift", shift,
                       f"the {label} summed weight {w:.3g} nA needs a ring-buffer shift of {shift} > 16: "
                       f"r << shift overflows int32 on the chip")
        out.append(shift)
    return out[0], out[1]


def _connection(c: Connection, signed: SynapticMap, shifts: tuple[int, int],
                latency: dict[str, int], fmt: SpinnakerFormat, health: HealthReport) -> QConnection:
    """Words (uint16 magnitudes) and synapse types per synapse, or per kernel entry for a conv."""
    values = signed.kernel if signed.is_conv else signed.matrix.data
    synapse_type = np.where(values < 0, INH, EXC).astype(np.uint8)
    shift = np.where(synapse_type == INH, shifts[INH], shifts[EXC])
    unit = 2.0 ** (sm.FRACTION_BITS - shift)
    words = np.rint(np.abs(values) * unit)
    saturated = float(np.mean(words[values != 0] > 0xFFFF)) if np.any(values) else 0.0
    words = np.minimum(words, 0xFFFF).astype(np.uint16)
    effective = np.where(synapse_type == INH, -1.0, 1.0) * words / unit
    nonzero = values != 0
    _report_weights(c.name, values[nonzero], effective[nonzero], saturated, fmt, health)
    kind = "conv" if signed.is_conv else "sparse"
    extra, per_synapse = _delay(c, kind, latency, fmt, health, None if signed.is_conv else signed.matrix)
    arrays: dict[str, np.ndarray] = {"weight": words, "synapse_type": synapse_type}
    attrs = {"ring_buffer_shift": [int(shifts[EXC]), int(shifts[INH])], "source_kind": c.kind}
    if signed.is_conv:
        attrs.update(_conv_attrs(signed.geometry, c))
        attrs["synapses"] = convolution.synapse_count(values, signed.geometry)
    else:
        arrays["indices"] = signed.matrix.indices.astype(np.int64)
        arrays["indptr"] = signed.matrix.indptr.astype(np.int64)
        attrs["synapses"] = int(values.size)
    if per_synapse is None:
        attrs["delay"] = fmt.hop_latency + int(extra)
    else:
        attrs["delay"] = 0
        arrays["delay"] = (fmt.hop_latency + per_synapse).astype(np.int64)
    return QConnection(c.name, c.source, c.target, kind, c.n_in, c.n_out, c.recurrent, arrays, attrs)


def _conv_attrs(geometry: convolution.ConvGeometry, c: Connection) -> dict:
    """The conv geometry as the artifact stores it (the connection's own shapes, 1-D or 2-D)."""
    plain = lambda v: np.asarray(v).astype(int).tolist()  # noqa: E731
    return {k: plain(c.conv[k]) for k in ("in_shape", "out_shape", "stride", "padding", "dilation")} | {
        "groups": int(c.conv["groups"])}


def _report_weights(name: str, values: np.ndarray, effective: np.ndarray, saturated: float,
                    fmt: SpinnakerFormat, health: HealthReport) -> None:
    health.weight_loss(name, values, effective, saturated, "in 16-bit ring-buffer words",
                       "a few large weights set the shift: spread them, or use --per-neuron", fmt.zero_warn,
                       fmt.zero_severe)
    if values.size:
        health.metric(name, "weights_excitatory", float(np.mean(values > 0)))