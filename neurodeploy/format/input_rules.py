"""The one set of rules for input arrays, on every target and command.

Inputs are (batch, steps, *input_shape) spike counts: finite integers >= 0 (a float array of
whole numbers is accepted). `run` (every backend), `verify`, `profile`, `compile --calibrate`,
`check --calibrate` and the Python API all apply them. The one exception is the float
reference, `simulate`: its model is linear in its input, so it takes graded values (any
finite number, negative included), as the NIR graph's float semantics do; a graded input
that `simulate` accepts is refused by the deployed targets, with a message that says so.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from neurodeploy.errors import InputDataError

GRADED_HINT = "only the float reference (`neurodeploy simulate`) takes graded values"


BLOCK = 1 << 16
"""Values converted and compared at once by :func:`byte_counts`: a block and its copy stay in cache."""


def byte_counts(arr: np.ndarray, *, keep: bool = True) -> np.ndarray | None:
    """``arr`` as uint8 when every value is a whole number in [0, 255], else None.

    One pass in cache-sized blocks: a value survives the cast to uint8 and back unchanged exactly
    when it is such a count (NaN, infinities, fractions, negatives and values above 255 do not).
    Spike counts of one input in one step almost always fit a byte, and the kernels then read 1
    byte per input value instead of 8. ``keep=False`` only checks (returns ``arr`` or None).
    """
    if arr.dtype == np.uint8 or arr.dtype == np.bool_:
        return arr.view(np.uint8) if keep else arr
    src = np.ascontiguousarray(arr).reshape(-1)
    out = np.empty(src.shape if keep else min(src.size, BLOCK), dtype=np.uint8)
    with np.errstate(invalid="ignore"):  # NaN and out-of-range floats cast to anything: the comparison catches them
        for i in range(0, src.size, BLOCK):
            block = src[i:i + BLOCK]
            dst = out[i:i + BLOCK] if keep else out[:block.size]
            np.copyto(dst, block, casting="unsafe")
            if not np.array_equal(dst, block):
                return None
    return out.reshape(arr.shape) if keep else arr


def as_counts(arr: np.ndarray, where: str) -> np.ndarray:
    """Checked spike counts (:func:`check_values`): uint8 where every count fits a byte, else int64."""
    small = byte_counts(arr)
    if small is not None:
        return small
    check_values(arr, where)
    return np.asarray(arr, dtype=np.int64)


def check_values(arr: np.ndarray, where: str, *, graded: bool = False) -> None:
    """Refuse what no target can send: negative or non-integer spike counts (unless ``graded``)."""
    if graded or arr.dtype.kind in "bu" or arr.size == 0:
        return
    if byte_counts(arr, keep=False) is not None:  # the common case, in one pass
        return
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise InputDataError(f"{where}: contains NaN or infinite values; inputs must be finite spike counts")
        fractional = arr != np.rint(arr)
        if np.any(fractional):
            index, value = _first(arr, fractional)
            raise InputDataError(f"{where}: non-integer value {value:g} at {index}; inputs are spike counts per "
                                 f"step (whole numbers >= 0): encode graded values as counts (e.g. rate coding); "
                                 f"{GRADED_HINT}")
    negative = arr < 0
    if np.any(negative):
        index, value = _first(arr, negative)
        raise InputDataError(f"{where}: negative value {value:g} at {index}; inputs are spike counts per step "
                             f"(>= 0) on every target: rectify them, or split signed data into two inputs "
                             f"(ON/OFF); {GRADED_HINT}")


def _first(arr: np.ndarray, mask: np.ndarray) -> tuple[list[int], float]:
    index = tuple(int(i[0]) for i in np.nonzero(mask))
    return list(index), float(arr[index])


def check_axes(shapes: Mapping[str, tuple[int, ...]], where: str, steps: int | None = None) -> None:
    """All inputs share (batch, steps); name a likely (steps, batch, ...) mix-up."""
    first = None
    for key, shape in shapes.items():
        if len(shape) < 2:
            continue
        if steps is not None and shape[1] != steps and shape[0] == steps:
            raise InputDataError(f"{where}: array '{key}': shape {list(shape)} looks like (steps, batch, ...): the "
                                 f"model runs {steps} steps on the second axis; save array.swapaxes(0, 1)")
        if first is None:
            first = (key, tuple(shape[:2]))
            continue
        ref_key, ref = first
        if tuple(shape[:2]) != ref:
            swapped = tuple(shape[:2]) == ref[::-1]
            hint = (" looks like (steps, batch, ...): save it with array.swapaxes(0, 1)" if swapped
                    else " must be the same for every input")
            raise InputDataError(f"{where}: array '{key}': (batch, steps) {list(shape[:2])} differs from array "
                                 f"'{ref_key}' {list(ref)};{hint}")


# ------------------------------------------------------------------ the calibrated input range

def value_range(arrays: Mapping[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Per input: ``max``, the largest count of one neuron in one step, and ``step_max``, the
    largest count of all its neurons together in one step of one sample (what `compile
    --calibrate` records, and run-time inputs are checked against)."""
    out = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.ndim < 2 or arr.size == 0:
            continue
        per_step = arr.reshape(arr.shape[0], arr.shape[1], -1)
        out[name] = {"max": _whole(per_step.max()), "step_max": _whole(per_step.sum(axis=2, dtype=np.float64).max())}
    return out


def _whole(value: float) -> int:
    return int(np.ceil(float(value)))


_RANGE_CHECKS = (("max", "one neuron's count in one step"), ("step_max", "the input's total count in one step"))


def range_excess(calibrated: Mapping[str, Mapping[str, int]] | None, inputs: np.ndarray | Mapping[str, np.ndarray]
                 ) -> dict[str, dict[str, dict[str, float]]]:
    """Per calibrated input and check (``max``, ``step_max``): the largest value seen and how many
    samples and (sample, step) pairs exceed the calibrated maximum, out of how many. Counts add and
    maxima take the largest over shards (:func:`merge_excess`), so a sharded run warns as one run."""
    if not calibrated:
        return {}
    if not isinstance(inputs, Mapping):
        if len(calibrated) != 1:
            return {}
        inputs = {next(iter(calibrated)): inputs}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, arr in inputs.items():
        limits = calibrated.get(name)
        arr = np.asarray(arr)
        if not isinstance(limits, Mapping) or arr.ndim < 2 or arr.size == 0:
            continue
        per_step = arr.reshape(arr.shape[0], arr.shape[1], -1)
        values = {"max": per_step.max(axis=2), "step_max": per_step.sum(axis=2, dtype=np.float64)}
        for key, _ in _RANGE_CHECKS:
            limit = limits.get(key)
            if not isinstance(limit, (int, float)):
                continue
            over = values[key] > limit
            out.setdefault(name, {})[key] = {
                "limit": float(limit), "max": float(values[key].max()), "over_samples": int(over.any(axis=1).sum()),
                "over_steps": int(over.sum()), "samples": int(over.shape[0]), "sample_steps": int(over.size)}
    return out


def merge_excess(parts: list[dict[str, dict[str, dict[str, float]]]]) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`range_excess` of several shards as of one run over all their samples."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for part in parts:
        for name, checks in part.items():
            for key, got in checks.items():
                have = out.setdefault(name, {}).get(key)
                if have is None:
                    out[name][key] = dict(got)
                    continue
                have["max"] = max(have["max"], got["max"])
                for count in ("over_samples", "over_steps", "samples", "sample_steps"):
                    have[count] += got[count]
    return out


def excess_lines(excess: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[str]:
    """One line per input of :func:`range_excess` whose values exceed what calibration saw."""
    lines = []
    for name, checks in excess.items():
        parts = []
        for key, what in _RANGE_CHECKS:
            got = checks.get(key)
            if not got or not got["over_steps"]:
                continue
            parts.append(f"{what} reaches {_whole(got['max']):,}, over the calibrated maximum {int(got['limit']):,}, "
                         f"in {int(got['over_samples']):,} of {int(got['samples']):,} samples "
                         f"({int(got['over_steps']):,} of {int(got['sample_steps']):,} sample-steps)")
        if parts:
            lines.append(f"input '{name}': " + "; ".join(parts) + ": the quantized ranges were sized on the "
                         "calibration data (compile --calibrate), so layers may saturate; see the overflow "
                         "counters, or calibrate on inputs like these")
    return lines


def beyond_range(calibrated: Mapping[str, Mapping[str, int]], inputs: np.ndarray | Mapping[str, np.ndarray]
                 ) -> list[str]:
    """One line per input whose values exceed what calibration saw (``value_range`` of the
    calibration data): the calibrated and the observed maximum, and how many samples and
    (sample, step) pairs exceed it. Inputs not in ``calibrated`` are not checked."""
    return excess_lines(range_excess(calibrated, inputs))


def swapped_axes(steps: int | None, inputs: np.ndarray | Mapping[str, np.ndarray]) -> list[str]:
    """One line per input whose shape looks like (steps, batch, ...) by the artifact's calibration:
    its first axis has the ``steps`` the calibration data had, its second does not. (Only a hint:
    running on another number of steps is legitimate; a warning, not an error.)"""
    arrays = inputs if isinstance(inputs, Mapping) else {"input": inputs}
    lines = []
    for name, arr in arrays.items():
        shape = np.shape(arr)
        if steps and len(shape) >= 2 and shape[0] == steps and shape[1] != steps:
            lines.append(f"input '{name}': shape {list(shape)} looks like (steps, batch, ...): the artifact was "
                         f"calibrated on {steps} steps (compile --calibrate) and this runs {shape[1]} steps of "
                         f"{shape[0]} samples; if the first axis is time, save array.swapaxes(0, 1)")
    return lines


def missing_axis(got: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """A hint for an array one axis short of (batch, steps, *shape), else ''."""
    if len(got) >= 1 and (got[1:] == tuple(shape) or (len(got) == 2 and got[1] == int(np.prod(shape)))):
        return ("; it has one axis too few: one sample's (steps, ...)? save array[None]; one step of each "
                "sample? save array[:, None]")
    return ""


def warn_beyond_range(calibrated: Mapping[str, Mapping[str, int]] | None,
                      inputs: np.ndarray | Mapping[str, np.ndarray], steps: int | None = None) -> list[str]:
    """Emit ``beyond_range``'s lines (nothing without a calibrated range) and, with the calibration's
    ``steps``, ``swapped_axes``' lines as warnings; returns them."""
    import warnings

    lines = (beyond_range(calibrated, inputs) if calibrated else []) + swapped_axes(steps, inputs)
    for line in lines:
        warnings.warn(line, stacklevel=2)
    return lines
