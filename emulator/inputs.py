"""What every integer kernel shares: checked inputs, empty trace arrays, the step loop."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from neurodeploy.errors import InputDataError
from neurodeploy.format import input_rules
from neurodeploy.format.program import Program


def program_inputs(program: Program, inputs: Any, *, target_label: str = "the deployed program",
                   allow_negative: bool = True) -> dict[str, np.ndarray]:
    """``{input: (batch, steps, size) counts}`` from one array or a dict per input name: uint8 where
    every count fits a byte, else int64 (:func:`neurodeploy.format.input_rules.as_counts`).

    The rules of :mod:`neurodeploy.format.input_rules` hold on every target: whole numbers >= 0
    (``allow_negative`` is kept for callers and no longer relaxes them)."""
    if not isinstance(inputs, dict):
        if len(program.inputs) != 1:
            raise InputDataError(f"the program has inputs {', '.join(program.inputs)}; pass one array per input")
        inputs = {next(iter(program.inputs)): inputs}
    out = {}
    for name, shape in program.inputs.items():
        if name not in inputs:
            raise InputDataError(f"no data for input '{name}'")
        arr = np.asarray(inputs[name])
        size = int(np.prod(shape))
        if arr.ndim < 2 or int(np.prod(arr.shape[2:])) != size:
            raise InputDataError(f"input '{name}': shape {list(arr.shape)} does not match "
                                 f"(batch, steps, {', '.join(map(str, shape))})")
        if arr.dtype.kind not in "biuf":
            raise InputDataError(f"input '{name}': expected spike counts, got dtype {arr.dtype}")
        counts = input_rules.as_counts(arr.reshape(arr.shape[:2] + (size,)), f"input '{name}' ({target_label})")
        out[name] = np.require(counts, requirements=["C", "W"])  # one kernel signature per dtype: no read-only views
    return out


def widened(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs as int64, for the numpy reference kernels (whose arithmetic mixes them with other types)."""
    return {name: np.asarray(arr, dtype=np.int64) for name, arr in arrays.items()}


def empty_traces(program: Program, batch: int, steps: int, record: Iterable[str]) -> dict[str, np.ndarray]:
    """``spikes.<pop>`` (uint8) for spiking populations and ``<state>.<pop>`` (int64) per recorded state."""
    traces: dict[str, np.ndarray] = {}
    for p in program.populations:
        if p.spiking:
            traces[f"spikes.{p.name}"] = np.zeros((batch, steps) + p.shape, dtype=np.uint8)
        for item in record:
            traces[f"{item}.{p.name}"] = np.zeros((batch, steps) + p.shape, dtype=np.int64)
    return traces


def step_range(steps: int, progress: bool, unit: str) -> Iterable[int]:
    """``range(steps)``, with a progress bar on long runs when asked."""
    if not progress:
        return range(steps)
    from tqdm import tqdm

    return tqdm(range(steps), desc="emulate", unit=unit)


def progress_bar(total: int, unit: str):
    """A progress bar over ``total`` units of work (tqdm, to stderr)."""
    from tqdm import tqdm

    return tqdm(total=total, desc="emulate", unit=unit, unit_scale=True)
