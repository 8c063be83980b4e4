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

    def lines(self) -> list[str]:
        return [f"{f.severity}: {f.layer}: {f.message}" for f in self.findings if f.severity != "info"]


def significant(value: float, digits: int = 6) -> float:
    """Round to a few significant digits, so reports do not depend on BLAS summation order."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))
