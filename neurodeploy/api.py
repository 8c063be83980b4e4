"""Public, high-level functions: load a NIR model and simulate it with the float reference."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from neurodeploy.compiler.build import build
from neurodeploy.compiler.ir import NetworkIR

__all__ = ["build", "compile", "run", "simulate"]


def simulate(
    source: Any,
    inputs: np.ndarray | dict[str, np.ndarray],
    *,
    dt: float | None = None,
    integrator: str | None = None,
    reset: str | None = None,
    spike_amplitude: float | str | None = None,
    record: Iterable[str] = ("v",),
    dtype: str = "float32",
    progress: bool = False,
    warn: bool = True,
) -> dict[str, np.ndarray]:
    """Float reference run. Returns ``spikes.<node>`` and ``v.<node>`` arrays (batch, steps, *shape)."""
    from neurodeploy.emulator.reference import simulate as run

    net = source if isinstance(source, NetworkIR) else build(
        source, dt=dt, integrator=integrator, reset=reset, spike_amplitude=spike_amplitude, warn=warn
    )
    return run(net, inputs, record=record, dtype=dtype, progress=progress)


def compile(  # noqa: A001 - the public name the CLI mirrors
    source: Any,
    target: str,
    *,
    calibrate: np.ndarray | dict[str, np.ndarray] | None = None,
    **options: Any,
):
    """Compile a .nir path or nir.NIRGraph for ``target``; returns the Artifact (not written).

    Options are those of `neurodeploy compile`: dt, integrator, reset, spike_amplitude,
    per_neuron, allow_degraded, neurons_per_core, chips, weight_bits, state_bits, decay_bits.
    Write it with ``neurodeploy.format.artifact.write(artifact, path)``.
    """
    from neurodeploy.compiler.compile import Options, compile_model

    compiled = compile_model(source, Options(target=target, **options), calibrate)
    return compiled.to_artifact()


def run(artifact: Any, inputs: np.ndarray | dict[str, np.ndarray], *, backend: str = "emulator",
        record: Iterable[str] = ("v",), progress: bool = False, **options: Any) -> dict[str, np.ndarray] | None:
    """Run a compiled artifact (an .ndp path or an Artifact) on a backend by name (``emulator``,
    ``lava``, ``spinnaker``; backends/registry.py). Traces on the target's own time grid; None
    when the backend only mapped the network (a virtual SpiNNaker board)."""
    from neurodeploy.backends import registry

    return registry.get(backend).run(artifact, inputs, record=tuple(record), progress=progress, options=options)
