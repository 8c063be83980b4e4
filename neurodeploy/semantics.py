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
        for name, allowed in (("integrator", INTEGRATORS), ("reset", RESETS)):
            if getattr(self, name) not in allowed:
                raise OptionError(f"{name}: must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name, check in (("dt", _check_dt), ("spike_amplitude", _check_amplitude)):
            value = getattr(self, name)
            try:
                ok = isinstance(value, (int, float)) and check(value) == value
            except ValueError as exc:
                raise OptionError(f"{name}: {exc}") from None
            if not ok:
                raise OptionError(f"{name}: must be a float, got {value!r}")


# Each check returns the value to use or raises ValueError saying what is wrong and what is accepted.

def _scalar(value: Any) -> Any:
    """A one-element array (as metadata read from HDF5 often is) or bytes, as a plain value."""
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf8", errors="replace")
    return value


def _check_dt(value: Any) -> float:
    value = _scalar(value)
    try:
        dt = float(value)
    except (TypeError, ValueError):
        dt = math.nan
    if isinstance(value, bool) or not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"must be a positive, finite number of seconds (e.g. 1e-3), got {value!r}")
    return dt


def _check_choice(value: Any, allowed: tuple[str, ...]) -> str:
    value = _scalar(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
    return text


def _check_amplitude(value: Any, dt: float | None = None) -> float:
    value = _scalar(value)
    if isinstance(value, str) and value.strip().lower() == "dirac" and dt is not None:
        return 1.0 / dt
    try:
        amplitude = float(value)
    except (TypeError, ValueError):
        amplitude = math.nan
    if isinstance(value, bool) or not (math.isfinite(amplitude) and amplitude > 0):
        raise ValueError(
            f"must be a positive, finite number or 'dirac' (= 1/dt), got {value!r}"
        )
    return amplitude


def _metadata_value(metadata: Mapping[str, Any], name: str) -> tuple[str, Any] | None:
    for key in (METADATA_KEYS[name], name):
        if key in metadata and metadata[key] is not None:
            return key, metadata[key]
    return None


def _checked(name: str, value: Any, dt: float | None) -> Any:
    if name == "dt":
        return _check_dt(value)
    if name == "integrator":
        return _check_choice(value, INTEGRATORS)
    if name == "reset":
        return _check_choice(value, RESETS)
    return _check_amplitude(value, dt)


def resolve(
    metadata: Mapping[str, Any] | None = None,
    *,
    dt: float | None = None,
    integrator: str | None = None,
    reset: str | None = None,
    spike_amplitude: float | str | None = None,
    warn: bool = True,
    source: str | None = None,
) -> tuple[Semantics, dict[str, str]]:
    """Resolve the contract; returns it and where each value came from.

    ``source`` (the model's file name) prefixes error messages, which also name the option or
    metadata key that held the bad value.
    """
    metadata = metadata or {}
    given = {"dt": dt, "integrator": integrator, "reset": reset, "spike_amplitude": spike_amplitude}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, value in given.items():  # dt first: 'dirac' amplitudes need it
        if value is not None:
            origin, sources[name] = f"option '{name}'", "option"
        elif (found := _metadata_value(metadata, name)) is not None:
            (key, value), sources[name] = found, "metadata"
            origin = f"metadata '{key}'"
        else:
            origin, value, sources[name] = "default", DEFAULTS[name], "default"
        try:
            values[name] = _checked(name, value, values.get("dt"))
        except ValueError as exc:
            where = f"{source}: " if source else ""
            raise OptionError(f"{where}{origin}: {exc}") from None
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
