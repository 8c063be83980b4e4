"""Initial state that cancels the drive of the ticks a Loihi population runs before its first input.

On Loihi every population updates from tick 0, but input reaches a population ``latency`` ticks
later (one per hop), and that tick stands for the float model's step 0. In the ticks before,
the bias (and the decay of u_init and v_init) already move the state. This module picks the
integers (u0, v0) that those free ticks, replayed with the chip's arithmetic, bring exactly to
the state the quantizer wants at step 0. SpiNNaker's counterpart is ``spinnaker._prestart``.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.compiler.health import HealthReport
from neurodeploy.targets import fixed_point_math as fpm


def _preimage(r: np.ndarray, keep: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest-magnitude x with ``trunc(x * keep / 2**bits) == r``, and whether one exists."""
    one = 1 << bits
    safe = np.maximum(keep, 1)
    magnitude = -(-np.abs(r) * one // safe)  # ceil(|r| * 2^bits / keep)
    x = np.sign(r) * magnitude
    return x, (keep > 0) | (r == 0)


def _moving(p: dict[str, np.ndarray]) -> np.ndarray:
    """Neurons whose state changes without input: a bias, a decaying u_init, or a leaking v_init."""
    bias = p["bias_mant"] << p["bias_exp"]
    u_want = p.get("u_init", np.zeros_like(p["v_init"]))
    return (bias != 0) | (u_want != 0) | ((p["v_init"] != 0) & (p["dv"] != 0))


def report_lost_start_state(name: str, params: dict[str, np.ndarray], fmt, latency: int,
                            health: HealthReport) -> None:
    """For formats that start every neuron at u = 0 (netx): say what the float model does that
    such a start cannot: a CubaLIF bias's synaptic rise, the drift of the latency ticks."""
    p = {k: np.asarray(v).reshape(-1).astype(np.int64) for k, v in params.items()}
    lost = []
    if np.any(p.get("u_init", 0) != 0):
        lost.append("the bias reaches v at once instead of rising through the synapse")
    moving = _moving(p)
    if latency and fmt.hop_latency and np.any(moving):
        lost.append(f"{100 * np.mean(moving):.0f}% of the neurons drift (bias and decay alone) in the {latency} "
                    f"tick(s) before their first input")
    if lost:
        health.add("warning", name, "no_start_state", float(np.mean(moving)),
                   f"this format starts every neuron at u = 0 and v = 0, so {'; '.join(lost)}")


def replay(u: np.ndarray, v: np.ndarray, params: dict[str, np.ndarray], fmt, ticks: int,
           spiking: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``ticks`` free Loihi updates (no input) from (u, v): final u, v, whether any neuron fired,
    and whether any state left the range where the update is invertible (wrap or saturation)."""
    one, bits = fmt.decay_one, fmt.decay_bits
    keep_u = one - (params["du"] + fmt.du_offset)
    keep_v = one - params["dv"]
    bias = params["bias_mant"] << params["bias_exp"]
    threshold = params["vth"] << fmt.threshold_shift
    limit = fmt.state_max
    fired = np.zeros(u.shape, dtype=bool)
    clipped = np.zeros(u.shape, dtype=bool)
    for _ in range(ticks):
        u = fpm.trunc_shr(u * keep_u, bits)  # no input; a u that leaves the range is flagged below
        y = fpm.drive_v(v, u, bias, keep_v, bits, loihi=True)
        clipped |= (np.abs(y) > limit) | (np.abs(u) > limit)
        v = np.clip(y, -limit, limit)
        if spiking:
            fired |= v > threshold
    return u, v, fired, clipped


def prestart_state(name: str, params: dict[str, np.ndarray], fmt, latency: int, spiking: bool,
                   health: HealthReport) -> tuple[np.ndarray, np.ndarray]:
    """(u_init, v_init) to load at tick 0 so that the state at tick ``latency`` is the wanted one.

    Neurons for which no such state exists (it would saturate, wrap or spike before the first
    input) keep the wanted state as their initial one, and the health report says how many.
    """
    shape = params["v_init"].shape
    p = {k: np.asarray(v).reshape(-1).astype(np.int64) for k, v in params.items()}
    u_want = p.get("u_init", np.zeros_like(p["v_init"]))
    v_want = p["v_init"]
    if latency == 0:
        return u_want.reshape(shape), v_want.reshape(shape)
    one, bits = fmt.decay_one, fmt.decay_bits
    keep_u = one - (p["du"] + fmt.du_offset)
    keep_v = one - p["dv"]
    bias = p["bias_mant"] << p["bias_exp"]
    # Walk back tick by tick: u first (it does not depend on v), then v from the u of each tick.
    us = [u_want]
    ok = np.ones(u_want.shape, dtype=bool)
    for _ in range(latency):
        prev, exists = _preimage(us[-1], keep_u, bits)
        ok &= exists
        us.append(prev)
    v = v_want
    for k in range(latency):
        v, exists = _preimage(v - us[k] - bias, keep_v, bits)
        ok &= exists
    u0 = us[-1]
    u_end, v_end, fired, clipped = replay(u0, v, p, fmt, latency, spiking)
    ok &= (u_end == u_want) & (v_end == v_want) & ~fired & ~clipped
    ok &= (np.abs(u0) <= fmt.state_max) & (np.abs(v) <= fmt.state_max)
    failed = _moving(p) & ~ok
    if np.any(failed):
        health.add("warning", name, "prestart_drift", float(np.mean(failed)),
                   f"{100 * np.mean(failed):.0f}% of the neurons drift in the {latency} tick(s) before their first "
                   f"input (bias and decay alone) and no start state cancels it without saturating or spiking; "
                   f"they start from the step-0 state and run {latency} tick(s) ahead")
    u0 = np.where(ok, u0, u_want)
    v0 = np.where(ok, v, v_want)
    return u0.reshape(shape), v0.reshape(shape)
