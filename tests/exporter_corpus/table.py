"""The corpus tables of docs/exporters.md, rendered from a built corpus and neurodeploy's checks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .check import result_of
from .spec import KIND_TITLES, KINDS, SUBTRACT_UNSUPPORTED


def results(manifest: dict[str, Any], out: Path) -> dict[str, dict[str, Any]]:
    return {e["case"]: result_of(e, Path(out)) for e in manifest["cases"] if e["status"] == "exported"}


def _short(entry: dict[str, Any], res: dict[str, Any] | None) -> str:
    status = entry["status"]
    if status == "not_expressible":
        return "n/a"
    if status == "not_installed":
        return "not installed"
    if status == "failed_upstream":
        return f"fails ({entry['stage']})"
    if res is None or res["load"] != "ok":
        return "rejected"
    if res["compare"]["ok"]:
        if "nominal" in entry:
            return f"match with {_used(entry)} only (not {_changed(entry)})"
        return "match"
    patched = res.get("patched")
    return "mismatch, patch fixes it" if patched and patched["ok"] else "mismatch"


def _dv(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.0e}"


def _result(entry: dict[str, Any], res: dict[str, Any] | None) -> str:
    status = entry["status"]
    if status == "not_expressible":
        return f"not expressible: {entry['reason']}"
    if status == "not_installed":
        return f"not installed ({entry['error']})"
    if status == "failed_upstream":
        return f"**fails upstream** at `{entry['stage']}`: `{entry['error']}`"
    if res["load"] != "ok":
        return f"**neurodeploy rejects the file**: {res['load'].split(': ', 1)[0]} ({entry['load_error']})"
    c = res["compare"]
    if c["ok"]:
        text = f"matches: spikes equal, max abs dv {_dv(c['max_abs_dv'])}"
    elif c["spikes_equal"]:
        text = f"**documented mismatch**: spikes equal, v differs (max abs dv {_dv(c['max_abs_dv'])})"
    else:
        text = (f"**documented mismatch**: {c['spike_differences']} spikes differ "
                f"(max rate difference {c['max_rate_difference']:.2f}/step), max abs dv {_dv(c['max_abs_dv'])}")
    if "patched" in res:
        p = res["patched"]
        fields = ", ".join(f"{node}.{f}" for node, fs in entry["patch"]["fields"].items() for f in fs)
        how = f"patching {fields}" + (f" ({entry['patch']['semantics']['integrator']})"
                                      if "semantics" in entry["patch"] else "")
        text += (f"; {how}: spikes equal, max abs dv {_dv(p['max_abs_dv'])}" if p["ok"]
                 else f"; {how}: still {p['spike_differences']} spikes differ")
    if "nominal" in res:
        n = res["nominal"]
        text += (f"; with {_changed(entry)}: {n['spike_differences']} spikes differ" if not n["ok"]
                 else f"; with {_changed(entry)}: also matches")
    return text


def _differing(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The semantics of ``a`` that differ from ``b``, in words."""
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in a.items() if b.get(k) != v)


def _changed(entry: dict[str, Any]) -> str:
    """The nominal semantics, as far as they differ from those the case is checked under."""
    return _differing(entry["nominal"]["semantics"], entry["semantics"])


def _used(entry: dict[str, Any]) -> str:
    return _differing(entry["semantics"], entry["nominal"]["semantics"])


def _compile(entry: dict[str, Any], res: dict[str, Any] | None) -> str:
    if res is None or "compile" not in res:
        return ""
    cells = []
    for target, outcome in res["compile"].items():
        if outcome == "ok":
            cells.append(f"ok, {100 * res['deployed'][target]:.1f}%")
        elif SUBTRACT_UNSUPPORTED in outcome:
            cells.append("no (subtract reset)")
        else:
            cells.append(f"no ({outcome.split(':', 1)[0]})")
    return " / ".join(cells)


def _semantics(entry: dict[str, Any]) -> str:
    s = entry.get("semantics")
    if not s:
        return ""
    return f"dt {s['dt']:g}, {s['integrator']}, {s['reset']}"


def _tolerance(entry: dict[str, Any]) -> str:
    t = entry.get("tolerance")
    if not t:
        return ""
    text = "spikes equal" if t["spikes"] == "equal" else f"rate within {t['rate_atol']:g}/step"
    if "v" in t:
        text += f", v rtol {t['v']['rtol']:g} atol {t['v']['atol']:g}"
    return f"{text} ({t['dtype']})"


def render(manifest: dict[str, Any], out: Path, res: dict[str, dict[str, Any]] | None = None) -> str:
    res = results(manifest, out) if res is None else res
    entries = manifest["cases"]
    exporters = list(dict.fromkeys(e["exporter"] for e in entries))
    lines = ["| exporter | " + " | ".join(KIND_TITLES[k] for k in KINDS) + " |",
             "|---" * (len(KINDS) + 1) + "|"]
    for name in exporters:
        mine = [e for e in entries if e["exporter"] == name]
        version = mine[0]["version"] or "not installed"
        cells = []
        for kind in KINDS:
            covering = [e for e in mine if kind in e["kinds"]]
            if not covering:
                cells.append("")
            elif len(covering) == 1:
                cells.append(_short(covering[0], res.get(covering[0]["case"])))
            else:
                cells.append("; ".join(f"{e['case'].split('__', 1)[1]}: {_short(e, res.get(e['case']))}"
                                       for e in covering))
        lines.append(f"| {name} {version} | " + " | ".join(cells) + " |")
    lines += ["", "| case | model | semantics | tolerance | result | loihi2 / spinnaker / emulator: compiles, "
                  "spike agreement emulated vs float |",
              "|---|---|---|---|---|---|"]
    for e in entries:
        if e["status"] == "not_expressible":
            continue
        r = res.get(e["case"])
        name = f"`{e['case']}`"
        lines.append(f"| {name} | {e['model']} | {_semantics(e)} | {_tolerance(e)} | {_result(e, r)} | "
                     f"{_compile(e, r)} |")
    return "\n".join(lines) + "\n"
