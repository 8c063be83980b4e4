"""The SpiNNaker backend: spinnaker artifacts as PyNN networks on sPyNNaker 7.4.1.

Light on import (numpy and the standard library): sPyNNaker itself runs in a child process with
a HOME and ``.spynnaker.cfg`` of the backend's own (``backend.py``), so the user's config is
never read or written. ``network.py`` holds the translation (artifact program -> PyNN calls),
shared with ``neurodeploy export --format pynn``.
"""
from __future__ import annotations

from neurodeploy.backends.spinnaker.backend import (
    MACHINE_ENV, SPALLOC_ENV, Machine, SpinnakerMachineError, doctor, machine, map_many, map_virtual, run, run_backend,
    summary, write_config,
)
from neurodeploy.backends.spinnaker.network import SpinnakerBackendError, plan

__all__ = ["MACHINE_ENV", "SPALLOC_ENV", "Machine", "SpinnakerBackendError", "SpinnakerMachineError", "doctor",
           "machine", "map_many", "map_virtual", "plan", "run", "run_backend", "summary", "write_config"]
