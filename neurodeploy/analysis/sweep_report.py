"""The sweep's HTML page: accuracy against energy per inference (per target) and against cores, and the table.

Self-contained like the deployment report (:mod:`neurodeploy.analysis.report`): matplotlib PNGs embedded as
base64. Without labels the y axis is the agreement of the deployed decisions with the float model's.
"""
from __future__ import annotations

from typing import Any

from neurodeploy.analysis.report import _CSS, _esc, _figure, _png, _table

MARKERS = {"loihi2": "o", "spinnaker": "s", "emulator": "^"}


def _y(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """(row key, axis label) of the y axis: accuracy when known, else agreement with the float decisions."""
    if any(r["accuracy"] is not None for r in rows):
        return "accuracy", "accuracy"
    return "decision_agreement", "decisions agreeing with the float model"


def _label(row: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in row["options"].items())


def _scatter(rows: list[dict[str, Any]], x: str, xlabel: str, log: bool, title: str) -> str | None:
    key, ylabel = _y(rows)
    points = [r for r in rows if r.get(x) is not None and r.get(key) is not None]
    if not points:
        return None
    fig = _figure(6.0, 3.8, title)
    ax = fig.add_subplot(1, 1, 1)
    for target in sorted({r["target"] for r in points}):
        mine = [r for r in points if r["target"] == target]
        ax.scatter([r[x] for r in mine], [100 * r[key] for r in mine], marker=MARKERS.get(target, "o"),
                   label=target, s=40)
        labels: dict[tuple[float, float], list[str]] = {}
        for r in mine:  # variants on the same point share one label
            labels.setdefault((r[x], 100 * r[key]), []).append(_label(r))
        for point, names in labels.items():
            ax.annotate("; ".join(n for n in names if n), point, fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front([(r[x], 100 * r[key]) for r in points])
    if len(front) > 1:
        ax.step(*zip(*front), where="post", color="0.5", linewidth=1, label="Pareto front", zorder=0)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, accuracy) points no other point beats on both: cheapest first, accuracy rising."""
    front: list[tuple[float, float]] = []
    for cost, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((cost, acc))
    return front


def _rows_table(rows: list[dict[str, Any]]) -> str:
    headers = ["target", "options", "accuracy", "float accuracy", "spike agreement", "cores", "chips",
               "energy per inference (J)", "latency (s)", "overflows", "health", "error"]
    body = []
    for r in rows:
        health = None if r["health"] is None else f"{r['health']['severe']} severe; " + \
            "; ".join(_overflow_lines(r)[:3] + r["health"]["warnings"][:3])
        body.append([r["target"], _label(r) or "-", r["accuracy"], r["float_accuracy"], r["spike_agreement"],
                     r["cores"], r["chips"], r["energy_j"], r["latency_s"], r.get("overflow_total"), health,
                     r["error"]])
    return _table(headers, body)


def _overflow_lines(row: dict[str, Any]) -> list[str]:
    """The health column's run-time findings: one line per population that overflowed."""
    return [f"run-time overflow: {line}" for line in (row["health"] or {}).get("overflow") or []]


def sweep_html(table: dict[str, Any]) -> str:
    """The page of one sweep (``table`` as written to the JSON)."""
    rows = table["rows"]
    energy = _scatter(rows, "energy_j", "energy per inference (J, each target's cost model)", True,
                      "accuracy against energy")
    cores = _scatter(rows, "cores", "cores", False, "accuracy against cores")
    figures = "".join(f"<div>{f}</div>" for f in (energy, cores) if f)
    notes = sorted({r.get("energy_model") for r in rows if r.get("energy_model")})
    title = f"sweep of {table['model']}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
            f"<p>inputs: {_esc(table['input'])}; energy models: {_esc('; '.join(notes) or 'none')}</p>"
            f"{figures}{_rows_table(rows)}</body></html>\n")
