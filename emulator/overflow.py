"""Run-time overflow counters of the integer kernels: what wrapped, saturated or was clamped.

Every kernel counts events (one neuron at one step) per population and kind, per sample, and
the first step each sample had one. Asked with ``overflow=True``, a run returns them beside its
traces (existing keys unchanged):

    overflow.<pop>.<kind>         int64 (batch,): events of that kind in each sample
    overflow_first.<pop>.<kind>   int64 (batch,): the first step of each sample with one (-1: none)

Kinds (FIXED_POINT_KINDS for loihi2 and the generic profile, SPINNAKER_KINDS for spinnaker):
    input        the summed input of a connection left int32 before its wrap (loihi2) or its
                 saturation (generic); a neuron counts once per step however many connections did
    u            loihi2: u's wrap by 2^24 taken; generic: u saturated at +-(2^(bits-1) - 1)
    v            fixed point: v clamped at +-(2^(bits-1) - 1); spinnaker: an int32 wrap in the V update
    ring_buffer  spinnaker: a ring-buffer slot's sum over 0xFFFF (either synapse type)
    current      spinnaker: an int32 wrap in the synaptic current (transfer, I_syn sums, drive, I_offset)
    alpha        spinnaker: an int32 wrap in alpha = I * R + V_rest
The torch kernel (emulator/torch_kernel, ``run --device``) counts the same events on its device.
"""
from __future__ import annotations

from typing import Any

import numpy as np

FIXED_POINT_KINDS = ("input", "u", "v")
SPINNAKER_KINDS = ("ring_buffer", "current", "alpha", "v")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
LABELS = {"input": "summed input wrapped", "u": "u wrapped", "v": "v clamped", "ring_buffer": "ring buffer saturated",
          "current": "synaptic current wrapped", "alpha": "alpha wrapped"}
GENERIC_LABELS = {"input": "summed input saturated", "u": "u saturated"}
SPINNAKER_LABELS = {"v": "V wrapped"}


def kinds_of(target: str) -> tuple[str, ...]:
    """The counter kinds of a target's kernel."""
    return SPINNAKER_KINDS if target == "spinnaker" else FIXED_POINT_KINDS


def label(target: str, kind: str) -> str:
    """What one event of ``kind`` means on ``target``, in words."""
    own = SPINNAKER_LABELS if target == "spinnaker" else (GENERIC_LABELS if target != "loihi2" else {})
    return own.get(kind, LABELS[kind])


def outside_int32(x: np.ndarray) -> np.ndarray:
    """Where int64 values lie outside int32 (a wrap or a saturation at int32 changes them)."""
    return (x < INT32_MIN) | (x > INT32_MAX)


class Counters:
    """Counts (batch, populations, kinds) and first steps (-1: none) of one run."""

    def __init__(self, batch: int, n_pops: int, n_kinds: int):
        self.counts = np.zeros((batch, n_pops, n_kinds), dtype=np.int64)
        self.first = np.full((batch, n_pops, n_kinds), -1, dtype=np.int64)

    def add(self, pop: int, kind: int, events: np.ndarray, t: int) -> None:
        """Counts the events (a boolean (batch, neurons) array) of step ``t``."""
        per_sample = events.reshape(events.shape[0], -1).sum(axis=1)
        self.counts[:, pop, kind] += per_sample
        first = self.first[:, pop, kind]
        first[(per_sample > 0) & (first < 0)] = t


def to_traces(program: Any, counts: np.ndarray, first: np.ndarray) -> dict[str, np.ndarray]:
    """The ``overflow.*`` and ``overflow_first.*`` keys of (batch, populations, kinds) counters."""
    out: dict[str, np.ndarray] = {}
    for p_index, pop in enumerate(program.populations):
        for k_index, kind in enumerate(kinds_of(program.target)):
            out[f"overflow.{pop.name}.{kind}"] = counts[:, p_index, k_index].copy()
            out[f"overflow_first.{pop.name}.{kind}"] = first[:, p_index, k_index].copy()
    return out


def split(traces: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the traces without counters, the counters)."""
    is_counter = lambda key: key.startswith(("overflow.", "overflow_first."))  # noqa: E731
    return ({k: v for k, v in traces.items() if not is_counter(k)},
            {k: v for k, v in traces.items() if is_counter(k)})


def summarize(program: Any, traces: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, int | None]]]:
    """Per population and kind: events over all samples, samples with any, and the first step
    over all samples (None: none). Populations and kinds without events are left out."""
    summary: dict[str, dict[str, dict[str, int | None]]] = {}
    for pop in program.populations:
        for kind in kinds_of(program.target):
            counts = traces.get(f"overflow.{pop.name}.{kind}")
            if counts is None or not counts.any():
                continue
            first = traces[f"overflow_first.{pop.name}.{kind}"]
            summary.setdefault(pop.name, {})[kind] = {
                "count": int(counts.sum()), "samples": int((counts > 0).sum()),
                "first_step": int(first[first >= 0].min())}
    return summary


def warning_lines(target: str, summary: dict[str, dict[str, dict[str, int | None]]]) -> list[str]:
    """One line per population that overflowed: "lif1: v clamped 1,234 times (first at step 17); ..."."""
    lines = []
    for pop, kinds in summary.items():
        parts = [f"{label(target, kind)} {c['count']:,} times (first at step {c['first_step']})"
                 for kind, c in kinds.items()]
        lines.append(f"{pop}: " + "; ".join(parts))
    return lines


def warn(program: Any, traces: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Emits one warning per population that overflowed (``warning_lines``); returns the traces
    without the counters."""
    import warnings

    kept, counters = split(traces)
    for line in warning_lines(program.target, summarize(program, counters)):
        warnings.warn(line, stacklevel=2)
    return kept
