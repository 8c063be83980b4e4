"""neurodeploy: one NIR graph in; Loihi 2, SpiNNaker and a bit-accurate emulator out.

This module stays light (no torch, nir or lava imports), so that a runner in another
environment can import the artifact reader alone.
"""
from __future__ import annotations

from typing import Any

from neurodeploy.errors import NeurodeployError

__version__ = "0.1.0"
__all__ = ["NeurodeployError", "compile", "export_norse", "simulate", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "export_norse":
        from neurodeploy.convert.norse import export_norse

        return export_norse
    if name in ("simulate", "compile"):
        from neurodeploy import api

        return getattr(api, name)
    raise AttributeError(name)
