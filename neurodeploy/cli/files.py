"""What every command checks of its files before doing any work.

Output paths (``-o``, ``--report``, ``--html``, ``--json FILE``, ...) must be writable, so that a
bad one fails at once and nothing is written; an input file of the wrong kind (a NIR graph where
an artifact is expected, or the reverse) is recognised by its first bytes and named.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Optional

from neurodeploy.format.atomic import check_writable
from neurodeploy.errors import OptionError

Output = tuple[str, Optional[str]]  # (option, path or None where the option was not given)


def check_outputs(*outputs: Output) -> list[Path]:
    """Every given output can be written and no two name the same file; returns the given paths."""
    checked: dict[Path, str] = {}
    for option, value in outputs:
        if not value:
            continue
        path = check_writable(value, option)
        key = Path(os.path.abspath(path))
        if key in checked:
            raise OptionError(f"{option} {value}: the same file as {checked[key]}; give each output its own name")
        checked[key] = f"{option} {value}"
    return list(checked)


def _kind(path: str) -> Optional[str]:
    from neurodeploy.format.artifact import sniff

    return sniff(path)


def expect_artifact(path: str, command: str) -> None:
    """``path`` must not be a NIR graph: ``command`` takes a compiled artifact."""
    if _kind(path) == "nir":
        ndp = Path(path).with_suffix(".ndp")
        raise OptionError(f"{path} is a NIR graph; {command} expects a compiled artifact (.ndp): compile it first "
                          f"with `neurodeploy compile {path} --target T -o {ndp}`")


def expect_nir(path: str, command: str) -> None:
    """``path`` must not be a compiled artifact (or another zip): ``command`` takes a NIR graph."""
    if _kind(path) != "artifact":
        return
    if not _is_artifact(path):
        raise OptionError(f"{path} is a zip archive (an .npz?), not a NIR graph; {command} expects a .nir file "
                          f"as nir.write writes it")
    raise OptionError(f"{path} is a compiled artifact (.ndp){_origin(path)}; {command} expects a NIR graph (.nir): "
                      f"pass the .nir it was compiled from, or execute the artifact with "
                      f"`neurodeploy run {path} --input IN.npz -o OUT.npz`")


def expect_onnx(path: str, command: str) -> None:
    """``path`` must be neither a NIR graph nor an artifact: ``command`` takes an ONNX model."""
    kind = _kind(path)
    if kind is not None:
        what = "a NIR graph" if kind == "nir" else "a zip archive (an .ndp artifact or an .npz?)"
        raise OptionError(f"{path} is {what}; {command} expects a trained ANN as an ONNX model (.onnx)")


def _is_artifact(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return "manifest.json" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _origin(path: str) -> str:
    """' for loihi2, compiled from model.nir' where the artifact says so, else ''."""
    from neurodeploy.format import artifact

    try:
        manifest = artifact.read(path).manifest
    except artifact.ArtifactError:
        return ""
    source = manifest.get("provenance", {}).get("source")
    origin = f" for {manifest.get('target', '?')}"
    return origin + (f", compiled from {source}" if source and source != "<graph>" else "")
