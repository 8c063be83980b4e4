"""The compiled artifact (.ndp): one zip holding ``manifest.json`` and ``arrays.npz``.

A leaf module: plain numpy + json + the standard library (and the dependency-free errors
module), Python 3.10 compatible, so the Lava
runner (its own Python 3.10 environment) can read artifacts without the rest of neurodeploy.

Deterministic: zip entries have a fixed timestamp and order, JSON keys are sorted, so the same
program gives a byte-identical file. A SHA-256 content hash over the manifest (without the hash)
and every array's bytes, dtype and shape is stored in the manifest and checked on load.
No pickle anywhere: arrays are written and read with ``allow_pickle=False``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

import numpy as np

from neurodeploy.format import atomic, declared
from neurodeploy.format.declared import ArtifactError  # noqa: F401 - defined beside the declared-size checks


FORMAT = "neurodeploy-artifact"
FORMAT_VERSION = 1
_EPOCH = (1980, 1, 1, 0, 0, 0)
NIR_MAGIC = b"\x89HDF\r\n\x1a\n"  # a .nir graph is HDF5
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .ndp artifact is a zip (the second: an empty one)


@dataclass
class Artifact:
    manifest: Dict[str, Any]
    arrays: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return str(self.manifest["target"])

    @property
    def content_hash(self) -> str:
        return str(self.manifest.get("content_hash", ""))

    @property
    def calibrated_inputs(self) -> Dict[str, Dict[str, int]] | None:
        """``calibrated_input_range`` of the manifest."""
        return calibrated_input_range(self.manifest)

    @property
    def calibration_steps(self) -> int | None:
        """``calibration_steps`` of the manifest."""
        return calibration_steps(self.manifest)


def calibration_steps(manifest: Dict[str, Any]) -> int | None:
    """The steps of the calibration data (``provenance.calibration.steps``), None without calibration."""
    calibration = (manifest.get("provenance") or {}).get("calibration") if isinstance(manifest, dict) else None
    steps = calibration.get("steps") if isinstance(calibration, dict) else None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else None


def calibrated_input_range(manifest: Dict[str, Any]) -> Dict[str, Dict[str, int]] | None:
    """Per input, the largest values `compile --calibrate` saw: ``max`` (one neuron, one step) and
    ``step_max`` (all of the input's neurons, one step), from the optional manifest field
    ``provenance.calibration.input_range``. None for an artifact compiled without calibration
    or before the field existed (it then cannot warn about inputs beyond the calibrated range)."""
    calibration = (manifest.get("provenance") or {}).get("calibration") if isinstance(manifest, dict) else None
    found = calibration.get("input_range") if isinstance(calibration, dict) else None
    if not isinstance(found, dict) or not found:
        return None
    return {str(name): {k: v for k, v in limits.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for name, limits in found.items() if isinstance(limits, dict)}


def from_program(program: Any) -> Artifact:
    """A minimal Artifact around a Program (for programs built in code, as tests do)."""
    from neurodeploy.format.program import to_manifest

    manifest_program, arrays = to_manifest(program)
    return Artifact({"target": program.target, "program": manifest_program}, arrays)


def content_hash(manifest: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    body = {k: v for k, v in manifest.items() if k != "content_hash"}
    digest.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _npz_bytes(arrays: Dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for key in sorted(arrays):
            arr = np.asarray(arrays[key])
            if arr.dtype.kind == "O":
                raise ArtifactError(f"array '{key}' has dtype object; artifacts hold numeric arrays only")
            npy = io.BytesIO()
            np.lib.format.write_array(npy, arr, allow_pickle=False)
            zf.writestr(_entry(f"{key}.npy"), npy.getvalue())
    return buffer.getvalue()


def to_bytes(artifact: Artifact) -> bytes:
    manifest = dict(artifact.manifest)
    manifest["format"] = FORMAT
    manifest["format_version"] = FORMAT_VERSION
    manifest["content_hash"] = content_hash(manifest, artifact.arrays)
    artifact.manifest = manifest
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        text = json.dumps(manifest, sort_keys=True, indent=1, default=_json_default)
        zf.writestr(_entry("manifest.json"), text.encode())
        zf.writestr(_entry("arrays.npz"), _npz_bytes(artifact.arrays))
    return buffer.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a manifest")


def write(artifact: Artifact, path: str | os.PathLike) -> Path:
    """Write atomically: a temp file in the same folder, then rename (``neurodeploy.format.atomic``)."""
    return atomic.write_bytes(path, to_bytes(artifact))


def file_kind(head: bytes) -> str | None:
    """What a file's first bytes say it is: ``"nir"`` (HDF5), ``"artifact"`` (zip) or None."""
    if head.startswith(NIR_MAGIC):
        return "nir"
    if head.startswith(ZIP_MAGIC):
        return "artifact"
    return None


def sniff(path: str | os.PathLike) -> str | None:
    """:func:`file_kind` of the file at ``path``; None where it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return file_kind(handle.read(8))
    except OSError:
        return None


def from_bytes(data: bytes, label: str = "<bytes>") -> Artifact:
    if file_kind(data[:8]) == "nir":
        raise ArtifactError(f"{label}: is a NIR graph, not a compiled artifact (.ndp); compile it first with "
                            f"`neurodeploy compile {label} --target T -o MODEL.ndp`")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if not {"manifest.json", "arrays.npz"} <= names:
                raise ArtifactError(f"{label}: not a neurodeploy artifact (entries: {sorted(names)})")
            for name in ("manifest.json", "arrays.npz"):
                declared.check_member_size(zf.getinfo(name), label)
            manifest = json.loads(zf.read("manifest.json").decode())
            _check_format(manifest, label)
            npz = zf.read("arrays.npz")
        declared.check_arrays(npz, manifest, label)  # headers only: nothing large is decompressed before this
        with np.load(io.BytesIO(npz), allow_pickle=False) as loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, UnicodeDecodeError, EOFError) as exc:
        raise ArtifactError(f"{label}: unreadable artifact ({exc}); recompile it with `neurodeploy compile`") from None
    expected = manifest.get("content_hash")
    actual = content_hash(manifest, arrays)
    if expected != actual:
        raise ArtifactError(
            f"{label}: content hash mismatch (stored {str(expected)[:12]}, computed {actual[:12]}); "
            f"the file was modified after compilation; recompile it"
        )
    return Artifact(manifest, arrays)


def _check_format(manifest: Any, label: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ArtifactError(f"{label}: not a neurodeploy artifact (manifest format {found!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{label}: artifact format version {manifest.get('format_version')} is not supported "
            f"(this neurodeploy reads version {FORMAT_VERSION}); recompile it"
        )


def read_manifest(path: str | os.PathLike) -> Dict[str, Any]:
    """The manifest alone, without reading or checking the arrays (nor the content hash: use
    :func:`read` for anything that runs the program)."""
    label = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("manifest.json")
            declared.check_member_size(info, label)
            manifest = json.loads(zf.read(info).decode())
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, UnicodeDecodeError, EOFError) as exc:
        raise ArtifactError(f"{label}: unreadable artifact ({exc}); recompile it with `neurodeploy compile`") from None
    _check_format(manifest, label)
    return manifest


def read(path: str | os.PathLike) -> Artifact:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact file")
    return from_bytes(path.read_bytes(), str(path))
