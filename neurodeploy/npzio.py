"""The .npz conventions of `simulate` and `run`.

Input: array ``input`` (batch, steps, *input_shape); a model with several inputs takes
``input.<name>`` per input. Output: ``spikes.<node>`` and ``v.<node>`` (batch, steps, *shape).
Files are read with ``allow_pickle=False`` and written atomically (temp file, then rename).
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from neurodeploy.errors import InputDataError, OptionError


def read_inputs(path: str | Path, input_names: list[str]) -> np.ndarray | dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: no such input file (expected an .npz with array 'input')")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputDataError(f"{path}: not a readable .npz file ({exc}); save inputs with numpy.savez") from None
    if "input" in arrays and len(input_names) == 1:
        return arrays["input"]
    named = {n: arrays[f"input.{n}"] for n in input_names if f"input.{n}" in arrays}
    if len(named) == len(input_names):
        return named
    wanted = "'input'" if len(input_names) == 1 else ", ".join(f"'input.{n}'" for n in input_names)
    raise InputDataError(f"{path}: expected array {wanted}, found {sorted(arrays) or 'no arrays'}")


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically: nothing half-written is ever left behind."""
    path = Path(path)
    if path.suffix != ".npz":
        raise OptionError(f"{path}: output must end in .npz")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OptionError(f"{path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
