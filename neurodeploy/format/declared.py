"""What an artifact's arrays declare, checked before any of them is decompressed.

A leaf module (numpy + the standard library, Python 3.10 compatible), used by
:mod:`neurodeploy.format.artifact`. Each ``.npy`` member of ``arrays.npz`` starts with a small
header (dtype, shape); it is read from the zip member's stream, which decompresses only those
first bytes. Every array must be one the manifest names, hold numbers, fit the population or
connection it belongs to, and all of them together must stay under :data:`MAX_ARRAY_BYTES`.
A crafted file that declares a huge array is refused in milliseconds, before its data is read.
"""
from __future__ import annotations

import io
import math
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

from neurodeploy.errors import NeurodeployError

MAX_ARRAY_BYTES = 4 << 30  # all arrays of one artifact together, decompressed (4 GiB)
_SLACK = 64  # elements any array may hold beyond its bound (scalars, small tables)
Declared = Tuple[np.dtype, Tuple[int, ...]]


class ArtifactError(NeurodeployError):
    """A .ndp file that cannot be trusted: unreadable, wrong format or version, tampered."""


class DeclaredSizeError(ArtifactError):
    """An artifact whose arrays declare more than its manifest allows."""


def check_member_size(info: zipfile.ZipInfo, label: str) -> None:
    """Refuse a zip member that declares more decompressed bytes than any artifact holds."""
    if info.file_size > MAX_ARRAY_BYTES + (1 << 20):
        raise DeclaredSizeError(f"{label}: entry '{info.filename}' declares {info.file_size} bytes decompressed, "
                                f"over the limit of {MAX_ARRAY_BYTES} bytes; the file is damaged or crafted")


def check_arrays(npz: bytes, manifest: Dict[str, Any], label: str) -> None:
    """Check the header of every array in ``npz`` against ``manifest`` before loading any data."""
    bounds = _bounds(manifest, label)
    total = 0
    with zipfile.ZipFile(io.BytesIO(npz)) as zf:
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            dtype, shape = _header(zf, info, label, key)
            total += _check_one(key, dtype, shape, bounds, label)
            if total > MAX_ARRAY_BYTES:
                raise DeclaredSizeError(f"{label}: arrays declare over {MAX_ARRAY_BYTES} bytes in all (at array "
                                        f"'{key}', shape {list(shape)}); the file is damaged or crafted")


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, key: str) -> Declared:
    """(dtype, shape) from the npy header of one member; reads only the header's bytes."""
    try:
        with zf.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"npy format version {version} is not one artifacts use")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DeclaredSizeError(f"{label}: array '{key}': unreadable header ({exc}); recompile it") from None
    return np.dtype(dtype), tuple(int(n) for n in shape)


def _check_one(key: str, dtype: np.dtype, shape: Tuple[int, ...], bounds: Dict[str, int], label: str) -> int:
    """The array's declared bytes, once its name, dtype and size are known to be allowed."""
    if key not in bounds:
        raise DeclaredSizeError(f"{label}: array '{key}' (shape {list(shape)}) is not named by the manifest")
    if dtype.kind not in "biuf" or dtype.hasobject:
        raise DeclaredSizeError(f"{label}: array '{key}' declares dtype {dtype}; artifacts hold numbers only")
    count = math.prod(shape)
    if count > bounds[key]:
        raise DeclaredSizeError(f"{label}: array '{key}' declares shape {list(shape)} ({count} values), more than "
                                f"the manifest allows ({bounds[key]}); the file is damaged or crafted")
    return count * dtype.itemsize


def _bounds(manifest: Dict[str, Any], label: str) -> Dict[str, int]:
    """Most values each array may hold: a population's size, a connection's n_in x n_out."""
    program = manifest.get("program") if isinstance(manifest, dict) else None
    if not isinstance(program, dict):
        return {}
    bounds: Dict[str, int] = {}
    try:
        for i, pop in enumerate(program.get("populations", [])):
            size = math.prod(int(n) for n in pop["shape"]) + _SLACK
            for key in ["scale"] + list(pop.get("params", [])):
                bounds[f"p{i}.{key}"] = size
        for j, conn in enumerate(program.get("connections", [])):
            size = 4 * int(conn["n_in"]) * int(conn["n_out"]) + _SLACK
            for key in conn.get("arrays", []):
                bounds[f"c{j}.{key}"] = size
    except (TypeError, KeyError, ValueError) as exc:
        raise DeclaredSizeError(f"{label}: manifest: malformed program description ({exc!r}); recompile it") from None
    return bounds
