"""One exception family for everything a user can get wrong.

Every error names what is wrong (file, node, field) and, where possible, what would be
accepted. The CLI prints the message on one line and exits non-zero; no traceback.
"""
from __future__ import annotations


class NeurodeployError(Exception):
    """Base class of every error neurodeploy raises on purpose.

    The message is kept on one line (runs of whitespace, newlines included, become one space), so
    that a node name read from a damaged file cannot break the CLI's one-line error.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(" ".join(str(message).split()), *args)


class NIRFileError(NeurodeployError):
    """A file could not be read as NIR (not HDF5, truncated, missing groups)."""


class GraphValidationError(NeurodeployError):
    """A NIR graph is structurally or numerically invalid."""


class UnsupportedError(NeurodeployError):
    """Valid input that neurodeploy (or the chosen target) cannot express."""


class OptionError(NeurodeployError):
    """A bad option value (dt, integrator, reset, record, ...)."""


class InputDataError(NeurodeployError):
    """An input .npz that does not match the model."""


def where(file: str | None = None, node: str | None = None, field: str | None = None) -> str:
    """Format the location prefix used by every validation message."""
    parts = []
    if file:
        parts.append(f"{file}")
    if node is not None:
        parts.append(f"node '{node}'")
    if field is not None:
        parts.append(f"field '{field}'")
    return ": ".join(parts) if parts else "graph"
