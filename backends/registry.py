"""Every backend behind one interface, looked up by name.

A backend runs an artifact on inputs and returns traces (``spikes.<pop>``, ``v.<pop>``, ...), or
None when it checked and mapped the network without running it (a virtual SpiNNaker board), and
says whether it can run here (``doctor``). The command line and the Python API go through
``get(name)``; adding a backend means adding one entry to BACKENDS. Backend modules are imported
when a backend is used, so this module stays light.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, Mapping, Sequence

from neurodeploy.errors import OptionError


@dataclass(frozen=True)
class Backend:
    name: str
    targets: tuple[str, ...]  # artifact targets it runs
    description: str
    module: str  # the module with ``run_backend(artifact, inputs, *, record, progress, options)`` and ``doctor()``

    def run(self, artifact: Any, inputs: Any, *, record: Sequence[str] = ("v",), progress: bool = False,
            options: Mapping[str, Any] | None = None) -> dict | None:
        return import_module(self.module).run_backend(artifact, inputs, record=record, progress=progress,
                                                      options=dict(options or {}))

    def doctor(self) -> dict[str, Any]:
        """``{"available": bool, "detail": str, ...}``."""
        return import_module(self.module).doctor()


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("emulator", ("loihi2", "spinnaker", "emulator"), "the bit-accurate emulator (built in)",
            "neurodeploy.backends.emulator"),
    Backend("lava", ("loihi2",), "Lava 0.10.0 (Loihi2SimCfg fixed_pt, or a Loihi 2 system)",
            "neurodeploy.backends.lava.backend"),
    Backend("spinnaker", ("spinnaker",), "sPyNNaker 7.4.1 (a SpiNNaker machine, or a virtual board that maps only)",
            "neurodeploy.backends.spinnaker.backend"),
)}


def get(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise OptionError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None


def check_target(backend: Backend, target: str) -> None:
    if target not in backend.targets:
        raise OptionError(f"backend {backend.name} runs {', '.join(backend.targets)} artifacts, not {target}; "
                          f"run it with --backend emulator, or compile for {backend.targets[0]}")


def doctor() -> dict[str, dict[str, Any]]:
    """Every backend's availability, in BACKENDS order."""
    return {name: backend.doctor() for name, backend in BACKENDS.items()}

