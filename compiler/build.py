"""NIR in, NetworkIR out: the frontend (read, normalize, validate) followed by lowering."""
from __future__ import annotations

from typing import Any

from neurodeploy.compiler.frontend import LoadedModel, load
from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.compiler.lowering import lower


def build(source: Any, *, dt=None, integrator=None, reset=None, spike_amplitude=None,
          warn: bool = True) -> NetworkIR:
    """Load a .nir path or nir.NIRGraph and lower it to NetworkIR under the semantics contract."""
    model: LoadedModel = load(source, dt=dt, integrator=integrator, reset=reset,
                              spike_amplitude=spike_amplitude, warn=warn)
    return lower(model)
