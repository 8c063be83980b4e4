"""Public, high-level functions: load a NIR model and simulate it with the float reference."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from neurodeploy import recording
from neurodeploy.compiler.build import build
from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.format import input_rules

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
    valid = recording.names("simulate", "")
    asked = recording.parse(record, valid, "simulate (the float reference)")
    traces = run(net, inputs, record=recording.states(asked, valid), dtype=dtype, progress=progress)
    return recording.rename(traces, asked, valid)


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

    if calibrate is not None:  # the same rules as every input (neurodeploy/format/input_rules.py)
        for name, arr in (calibrate.items() if isinstance(calibrate, dict) else [("input", calibrate)]):
            input_rules.check_values(np.asarray(arr), f"calibrate ({name})")
    compiled = compile_model(source, Options(target=target, **options), calibrate)
    return compiled.to_artifact()


def run(artifact: Any, inputs: np.ndarray | dict[str, np.ndarray], *, backend: str = "emulator",
        record: Iterable[str] = ("v",), progress: bool = False, **options: Any) -> dict[str, np.ndarray] | None:
    """Run a compiled artifact (an .ndp path or an Artifact) on a backend by name (``emulator``,
    ``lava``, ``spinnaker``; backends/registry.py). Traces on the target's own time grid; None
    when the backend only mapped the network (a virtual SpiNNaker board)."""
    from neurodeploy.backends import registry
    from neurodeploy.format import artifact as artifact_format

    art = artifact if isinstance(artifact, artifact_format.Artifact) else artifact_format.read(artifact)
    valid = recording.names(backend, art.target)  # i: the synaptic current on every target (u on Loihi 2)
    asked = recording.parse(record, valid, f"run (backend {backend}) on a {art.target} artifact")
    traces = registry.get(backend).run(artifact, inputs, record=tuple(recording.states(asked, valid)),
                                       progress=progress, options=options)
    return None if traces is None else recording.rename(traces, asked, valid)
