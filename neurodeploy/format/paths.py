"""Paths as reports and JSON show them: relative to the file being written, never absolute.

A report names a file by its path relative to the report's folder (``../models/m.nir``) and, where
it matters, its SHA-256. A file that shares no folder with the report but the filesystem root is
named by its file name alone (its hash identifies it). Absolute paths inside text (a note, an
error) are rewritten the same way; those under the Python environment or a temporary run folder
get a label instead (``<python>/lib/...``).
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

PathLike = str | os.PathLike

# an absolute POSIX path token: "/" after the start, a space, a quote, "(", "=" or ":"
_ABSOLUTE = re.compile(r"(?:(?<=^)|(?<=[\s\"'(=:,\[]))/[^\s\"'(),;\]]+")


def sha256(path: PathLike) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def relative(path: PathLike, start: PathLike) -> str:
    """``path`` relative to the folder ``start``; its file name when they share only the root."""
    target, base = os.path.abspath(path), os.path.abspath(start)
    try:
        common = os.path.commonpath([target, base])
    except ValueError:  # different drives
        return os.path.basename(target)
    if common == os.path.dirname(common):  # only the filesystem root in common
        return os.path.basename(target)
    return Path(os.path.relpath(target, base)).as_posix()


def file_ref(path: PathLike, start: PathLike) -> dict[str, str]:
    """``{"path": relative path, "sha256": hash}`` of an existing file."""
    return {"path": relative(path, start), "sha256": sha256(path)}


def _labels(extra: Iterable[tuple[PathLike, str]] = ()) -> list[tuple[str, str]]:
    """(absolute folder, label) pairs, the longest folder first."""
    pairs = [(os.path.abspath(folder), label) for folder, label in extra]
    pairs += [(os.path.abspath(sys.prefix), "<python>"), (os.path.abspath(sys.base_prefix), "<python>")]
    return sorted(set(pairs), key=lambda pair: -len(pair[0]))


def _shown_token(token: str, start: str, labels: list[tuple[str, str]]) -> str:
    if not os.path.isabs(token) or len(token) < 2:
        return token
    for folder, label in labels:
        if token == folder or token.startswith(folder + os.sep):
            return label + token[len(folder):]
    return relative(token, start)


def portable_text(text: str, start: PathLike, labels: Iterable[tuple[PathLike, str]] = ()) -> str:
    """``text`` with every absolute path in it shown relative to ``start`` (or under its label)."""
    pairs, base = _labels(labels), os.path.abspath(start)
    return _ABSOLUTE.sub(lambda m: _shown_token(m.group(0), base, pairs), text)


def portable(value: Any, start: PathLike, labels: Iterable[tuple[PathLike, str]] = ()) -> Any:
    """A JSON-ready value with every absolute path in its strings made portable (see module doc)."""
    pairs = list(labels)
    if isinstance(value, str):
        return portable_text(value, start, pairs)
    if isinstance(value, dict):
        return {key: portable(item, start, pairs) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item, start, pairs) for item in value]
    return value
