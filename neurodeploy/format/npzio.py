"""The .npz conventions of `simulate` and `run`.

Input: array ``input`` (batch, steps, *input_shape); a model with several inputs takes
``input.<name>`` per input. Output: ``spikes.<node>`` and ``v.<node>`` (batch, steps, *shape).
Files are read with ``allow_pickle=False`` and written atomically (temp file, then rename).
Every error names the file and the array.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from neurodeploy.format import input_rules
from neurodeploy.format.atomic import check_writable, open_atomic
from neurodeploy.errors import InputDataError, OptionError

Shapes = Mapping[str, tuple[int, ...]]


def read_inputs(
    path: str | Path, inputs: Sequence[str] | Shapes, *, graded: bool = False, steps: int | None = None
) -> np.ndarray | dict[str, np.ndarray]:
    """Read the input arrays for a model with the given input names (or {name: shape}).

    Returns the array ``input`` for a one-input model, else ``{name: array}``. Arrays must be
    finite numbers; where shapes are given they must be (batch, steps, *shape). The same rules
    hold for every command and target (see :mod:`neurodeploy.format.input_rules`): spike counts,
    integers >= 0, unless ``graded`` (the float reference, `simulate`, takes any finite value).
    ``steps``, where the model states it, catches a (steps, batch, ...) array.
    """
    path = Path(path)
    names = list(inputs)
    with _open(path) as data:
        keys = _input_keys(path, names, list(data.files))
        arrays = {name: _load_array(path, data, key) for name, key in keys.items()}
    for name, key in keys.items():
        shape = inputs.get(name) if isinstance(inputs, Mapping) else None
        _check_array(path, key, arrays[name], shape)
        input_rules.check_values(arrays[name], f"{path}: array '{key}'", graded=graded)
    input_rules.check_axes({keys[n]: a.shape for n, a in arrays.items()}, str(path), steps)
    if len(names) == 1 and keys[names[0]] == "input":
        return arrays[names[0]]
    return arrays


def _open(path: Path) -> np.lib.npyio.NpzFile:
    if not path.is_file():
        raise InputDataError(f"{path}: no such input file (expected an .npz with array 'input')")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputDataError(
            f"{path}: not a readable .npz file ({_brief(exc)}); save inputs with numpy.savez(path, input=array)"
        ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise InputDataError(
            f"{path}: is a single .npy array, not an .npz archive; save inputs with numpy.savez(path, input=array)"
        )
    return data


def _input_keys(path: Path, names: list[str], files: list[str]) -> dict[str, str]:
    """Which array of the archive feeds each input."""
    if len(names) == 1 and "input" in files:
        return {names[0]: "input"}
    keys = {n: f"input.{n}" for n in names}
    if all(key in files for key in keys.values()):
        return keys
    wanted = "'input'" if len(names) == 1 else ", ".join(f"'{k}'" for k in keys.values())
    raise InputDataError(f"{path}: expected array {wanted}, found {sorted(files) or 'no arrays'}")


def _load_array(path: Path, data: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    try:
        return data[key]
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib and numpy raise many types on a damaged file
        if isinstance(exc, ValueError) and "pickle" in str(exc):
            raise InputDataError(
                f"{path}: array '{key}' holds Python objects, which would need pickle; save a numeric array"
            ) from None
        raise InputDataError(f"{path}: array '{key}' is unreadable: {_brief(exc)}") from None


def _check_array(path: Path, key: str, arr: np.ndarray, shape: tuple[int, ...] | None) -> None:
    if arr.dtype.kind not in "biuf":
        raise InputDataError(f"{path}: array '{key}': expected numbers, got dtype {arr.dtype}")
    if shape is not None and not _shape_fits(arr.shape, tuple(shape)):
        raise InputDataError(
            f"{path}: array '{key}': shape {list(arr.shape)} does not match "
            f"(batch, steps, {', '.join(map(str, shape))}); batch and steps must be >= 1"
            + input_rules.missing_axis(tuple(arr.shape), tuple(shape))
        )
    if shape is None and arr.ndim < 2:
        raise InputDataError(f"{path}: array '{key}': shape {list(arr.shape)} is not (batch, steps, ...)")
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.any(np.isnan(arr)) else "infinite"
        raise InputDataError(f"{path}: array '{key}': contains {bad} values; inputs must be finite")


def _shape_fits(got: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """(batch, steps, *shape), or (batch, steps, n) with n = the number of input values."""
    if len(got) < 2 or got[0] < 1 or got[1] < 1:
        return False
    return got[2:] == shape or (len(got) == 3 and got[2] == math.prod(shape))


def _brief(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def check_output(path: str | Path, option: str = "") -> Path:
    """Fail early, before any work, on an output path that cannot be written."""
    path = Path(path)
    if path.suffix != ".npz":
        label = f"{option} {path}" if option else str(path)
        raise OptionError(f"{label}: output must end in .npz")
    return check_writable(path, option)


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically: nothing half-written is ever left behind.

    Compressed at zlib level 1 (:mod:`neurodeploy.format.npz_chunks`): spike traces shrink about as
    much as at the default level and are written about 3x faster; a sharded run writes the same
    layout from its workers' chunks."""
    from neurodeploy.format.npz_chunks import NpzStreamWriter

    path = check_output(path)
    with open_atomic(path, "wb") as handle, NpzStreamWriter(handle) as writer:
        for key, value in arrays.items():
            writer.write_array(key, np.asarray(value))
