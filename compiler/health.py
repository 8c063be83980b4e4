"""The quantization health report: what was lost, never silently.

Each finding names the layer, the check, the measured value and what to do. ``severe``
findings fail compilation unless the user passes ``--allow-degraded``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

SEVERITIES = ("info", "warning", "severe")


@dataclass
class Finding:
    severity: str
    layer: str
    check: str
    value: float
    message: str


@dataclass
class HealthReport:
    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # per layer, e.g. weight error

    def add(self, severity: str, layer: str, check: str, value: float, message: str) -> None:
        assert severity in SEVERITIES
        self.findings.append(Finding(severity, layer, check, significant(value), message))

    def metric(self, layer: str, name: str, value: float) -> None:
        self.metrics.setdefault(layer, {})[name] = significant(value)

    @property
    def severe(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "severe"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def as_dict(self) -> dict:
        return {"findings": [asdict(f) for f in self.findings], "metrics": self.metrics}

    def weight_loss(self, layer: str, values, effective, clipped: float, where: str, hint: str,
                    warn_at: float, severe_at: float) -> None:
        """Report what quantizing a connection's weights lost: zeroed, clipped, relative error.

        ``values`` are the non-zero float weights (in target units), ``effective`` what the
        target will hold for them; ``where`` says in what format (e.g. "at 8 bits").
        """
        import numpy as np

        if len(values) == 0:
            self.add("warning", layer, "no_weights", 0, "all weights are zero")
            return
        zeroed = float(np.mean(effective == 0))
        err = float(np.linalg.norm(effective - values) / max(np.linalg.norm(values), 1e-300))
        self.metric(layer, "weights_zeroed", zeroed)
        self.metric(layer, "weight_error", err)
        if zeroed >= severe_at:
            self.add("severe", layer, "weights_zeroed", zeroed,
                     f"{100 * zeroed:.0f}% of the weights round to zero {where}; the layer loses its input ({hint})")
        elif zeroed >= warn_at:
            self.add("warning", layer, "weights_zeroed", zeroed,
                     f"{100 * zeroed:.1f}% of the weights round to zero {where}")
        if clipped > 0:
            self.add("severe", layer, "weights_saturated", clipped,
                     f"{100 * clipped:.1f}% of the weights exceed the largest value {where} and were clipped")

    def lines(self) -> list[str]:
        return [f"{f.severity}: {f.layer}: {f.message}" for f in self.findings if f.severity != "info"]


def significant(value: float, digits: int = 6) -> float:
    """Round to a few significant digits, so reports do not depend on BLAS summation order."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))
