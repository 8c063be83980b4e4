"""The semantics contract: what NIR leaves unsaid, made explicit.

NIR stores no time step, no integrator, no reset mode and no spike amplitude. Each value is
taken from the caller's options, else from graph metadata (keys ``neurodeploy.dt`` ...), else
from the documented default below, with a warning naming what was defaulted.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from neurodeploy.errors import OptionError

INTEGRATORS = ("euler", "exact")
RESETS = ("zero", "subtract")

DEFAULTS: dict[str, Any] = {
    "dt": 1e-3,  # norse's default time step
    "integrator": "euler",  # what norse, snnTorch and the NIR paper's traces use
    "reset": "zero",  # v <- v_reset, as NIR's equations state
    "spike_amplitude": 1.0,  # a spike is a value of 1 held for one step
}

METADATA_KEYS = {name: f"neurodeploy.{name}" for name in DEFAULTS}


class SemanticsWarning(UserWarning):
    """A semantics value was not given and a default was used."""


@dataclass(frozen=True)
class Semantics:
    """Resolved time step (s), integrator, reset mode and spike amplitude."""

    dt: float
    integrator: str
    reset: str
    spike_amplitude: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __post_init__(self) -> None:
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise OptionError(f"dt must be a positive, finite number of seconds (e.g. 1e-3), got {self.dt!r}")
        if self.integrator not in INTEGRATORS:
            raise OptionError(f"integrator must be one of {', '.join(INTEGRATORS)}, got {self.integrator!r}")
        if self.reset not in RESETS:
            raise OptionError(f"reset must be one of {', '.join(RESETS)}, got {self.reset!r}")
        if not (math.isfinite(self.spike_amplitude) and self.spike_amplitude > 0):
            raise OptionError(
                f"spike amplitude must be a positive, finite number, got {self.spike_amplitude!r}"
            )


def _parse_amplitude(value: Any, dt: float) -> float:
    if isinstance(value, str) and value.strip().lower() == "dirac":
        return 1.0 / dt
    try:
        return float(value)
    except (TypeError, ValueError):
        raise OptionError(
            f"spike amplitude must be a number or 'dirac' (= 1/dt), got {value!r}"
        ) from None


def _metadata_value(metadata: Mapping[str, Any], name: str) -> Any:
    for key in (METADATA_KEYS[name], name):
        if key in metadata:
            value = metadata[key]
            if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
                value = value.item()
            if isinstance(value, bytes):
                value = value.decode()
            return value
    return None


def resolve(
    metadata: Mapping[str, Any] | None = None,
    *,
    dt: float | None = None,
    integrator: str | None = None,
    reset: str | None = None,
    spike_amplitude: float | str | None = None,
    warn: bool = True,
) -> tuple[Semantics, dict[str, str]]:
    """Resolve the contract; returns it and where each value came from."""
    metadata = metadata or {}
    given = {"dt": dt, "integrator": integrator, "reset": reset, "spike_amplitude": spike_amplitude}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, value in given.items():
        if value is not None:
            values[name], sources[name] = value, "option"
            continue
        found = _metadata_value(metadata, name)
        if found is not None:
            values[name], sources[name] = found, "metadata"
        else:
            values[name], sources[name] = DEFAULTS[name], "default"
    try:
        values["dt"] = float(values["dt"])
    except (TypeError, ValueError):
        raise OptionError(f"dt must be a number of seconds (e.g. 1e-3), got {values['dt']!r}") from None
    values["integrator"] = str(values["integrator"]).lower()
    values["reset"] = str(values["reset"]).lower()
    values["spike_amplitude"] = _parse_amplitude(values["spike_amplitude"], values["dt"])
    semantics = Semantics(**values)
    defaulted = [n for n, s in sources.items() if s == "default"]
    if warn and defaulted:
        shown = ", ".join(f"{n}={DEFAULTS[n]}" for n in defaulted)
        warnings.warn(
            f"the graph does not state {', '.join(defaulted)}; using the defaults {shown} "
            f"(pass --dt/--integrator/--reset/--spike-amplitude to choose)",
            SemanticsWarning,
            stacklevel=2,
        )
    return semantics, sources
