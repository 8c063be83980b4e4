"""Measured on-chip profiles beside the predicted ones: ``ingest(profile, ...)``.

Takes a profile from :func:`neurodeploy.analysis.profile.profile` and readings from a hardware run, and
returns the profile with ``measured`` (the raw readings, per source) and ``comparison`` rows
``{quantity, scope, predicted, measured, ratio, unit, source}`` where ``ratio`` is
measured / predicted (None when the prediction is 0). The formats read (docs/profiling.md):

SpiNNaker (sPyNNaker 7.4.1, SpiNNFrontEndCommon 7.4.1):
  - the energy report ``energy_report_<n>.rpt`` (``[Reports] write_energy_report = True``):
    "Simulation execution time: <s> seconds", "Simulation execution energy: <J> Joules",
    "... (active chips and cores only): <J> Joules", "... (ignoring frame power): <J> Joules", ...
  - the run's data/provenance database ``data<reset>.sqlite3``: tables ``core`` (x, y, processor,
    core_name), ``core_provenance`` (core_id, description, the_value), ``router_provenance``
    (x, y, description, the_value, expected), ``power_provenance`` (run, description, the_value).
    Core names are PACMAN's machine-vertex labels ``<population>(<lo>:<hi>)``.
Loihi 2 (lava-loihi's ``lava.utils.loihi2_profiler``): a JSON of the documented attributes of
  ``Loihi2Power``, ``Loihi2ExecutionTime``, ``Loihi2Activity``, ``Loihi2Memory`` (and
  ``Profiler.energy_breakdown()/power_breakdown()``), written on the Loihi host by
  :func:`capture_lava_profilers`; see ``tests/data/profiles/README.md``.

Leaf module: standard library + numpy + ``neurodeploy.format.atomic`` only (Python 3.10 compatible), so that
``capture_lava_profilers`` can run in the Lava environment.
"""
from __future__ import annotations

import copy
import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from neurodeploy.format import atomic

LAVA_FORMAT = "neurodeploy-lava-loihi2-profilers"
LAVA_ATTRIBUTES = {
    "Loihi2Power": ("total_power", "vdd_power", "vddm_power", "vddio_power", "static_total_power",
                    "static_vdd_power", "static_vddm_power", "static_vddio_power"),
    "Loihi2ExecutionTime": ("execution_time_per_step", "avg_time_per_step"),
    "Loihi2Activity": ("core_idx", "syn_ops", "dendrite_updates", "axon_out", "spikes_in"),
    "Loihi2Memory": ("core_idx", "total_mpds"),
}


class IngestError(ValueError):
    """A measurement file that cannot be read in the documented format."""


# ------------------------------------------------------------------ SpiNNaker

_REPORT_PATTERNS = {
    "boards": r"Simulation used (\d+) boards",
    "frames": r"in (\d+) frames",
    "chips": r"made up of (\d+) chips",
    "cores": r"Simulation cores used: (\d+) in total",
    "active_cores": r"in total, (\d+) actively",
    "active_chips": r"actively on (\d+) chips",
    "exec_time_s": r"Simulation execution time: ([0-9.eE+-]+) seconds",
    "exec_energy_j": r"Simulation execution energy: ([0-9.eE+-]+) Joules",
    "exec_energy_cores_j": r"Simulation execution energy \(active chips and cores only\): ([0-9.eE+-]+) Joules",
    "exec_energy_boards_j": r"Simulation execution energy \(ignoring frame power\): ([0-9.eE+-]+) Joules",
    "mapping_time_s": r"Mapping time: ([0-9.eE+-]+) seconds",
    "mapping_energy_j": r"Mapping energy: ([0-9.eE+-]+) Joules",
    "loading_time_s": r"Loading time: ([0-9.eE+-]+) seconds",
    "loading_energy_j": r"Loading energy: ([0-9.eE+-]+) Joules",
    "saving_time_s": r"Saving time: ([0-9.eE+-]+) seconds",
    "saving_energy_j": r"Saving energy: ([0-9.eE+-]+) Joules",
    "other_time_s": r"Other time: ([0-9.eE+-]+) seconds",
    "other_energy_j": r"Other energy: ([0-9.eE+-]+) Joules",
    "total_energy_j": r"Total energy: ([0-9.eE+-]+) Joules",
}


def read_spinnaker_energy_report(path: str | os.PathLike) -> Dict[str, float]:
    """Parse sPyNNaker 7.4.1's energy report (EnergyReport._write_summary_report)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IngestError(f"{path}: cannot read the energy report ({exc})") from None
    if "Energy Report" not in text:
        raise IngestError(f"{path}: not an sPyNNaker energy report (no 'Energy Report' header)")
    out: Dict[str, float] = {}
    for key, pattern in _REPORT_PATTERNS.items():
        m = re.search(pattern, text)
        if m:
            out[key] = float(m.group(1))
    for needed in ("exec_time_s", "exec_energy_j"):
        if needed not in out:
            raise IngestError(f"{path}: the energy report has no '{needed}' line")
    return out


_LABEL = re.compile(r"^(?P<pop>.+?)\s*[\(:\[]\s*(?P<lo>\d+)\s*:\s*(?P<hi>\d+)\s*[\)\]]?$")


def read_spinnaker_provenance(path: str | os.PathLike) -> Dict[str, Any]:
    """Read per-core, per-router and power provenance from a SpiNNFrontEndCommon 7.4.1 database."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such provenance database")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise IngestError(f"{path}: cannot open ({exc})") from None
    try:
        cores: Dict[tuple, Dict[str, Any]] = {}
        rows = db.execute("SELECT c.x, c.y, c.processor, c.core_name, p.description, p.the_value "
                          "FROM core_provenance AS p JOIN core AS c ON p.core_id = c.core_id").fetchall()
        for x, y, p, name, desc, value in rows:
            entry = cores.setdefault((x, y, p), {"x": x, "y": y, "p": p, "core_name": name, "values": {}})
            entry["values"][desc] = entry["values"].get(desc, 0) + value
        routers: Dict[tuple, Dict[str, Any]] = {}
        for x, y, desc, value in db.execute("SELECT x, y, description, the_value FROM router_provenance"):
            routers.setdefault((x, y), {"x": x, "y": y, "values": {}})["values"][desc] = value
        power = {}
        try:
            for desc, value in db.execute("SELECT description, the_value FROM power_provenance"):
                power[desc] = value
        except sqlite3.OperationalError:
            pass
    except sqlite3.Error as exc:
        raise IngestError(f"{path}: not a SpiNNFrontEndCommon provenance database ({exc})") from None
    finally:
        db.close()
    out_cores = []
    for entry in sorted(cores.values(), key=lambda e: (e["x"], e["y"], e["p"])):
        m = _LABEL.match(entry["core_name"] or "")
        if m:
            entry.update(population=m.group("pop"), lo_atom=int(m.group("lo")), hi_atom=int(m.group("hi")))
        out_cores.append(entry)
    return {"cores": out_cores, "routers": list(routers.values()), "power": power}


def _ingest_spinnaker(profile: dict, report: Optional[dict], prov: Optional[dict], samples: int,
                      source_report: str, source_prov: str) -> List[dict]:
    rows: List[dict] = []
    cost = profile.get("cost", {})
    if report is not None:
        rows.append(_row("energy per inference (active chips and cores)", "total",
                         cost["energy_j"]["per_inference"],
                         report.get("exec_energy_cores_j", report["exec_energy_j"]) / samples, "J", source_report))
        if "exec_energy_boards_j" in report:
            rows.append(_row("energy per inference (whole board)", "total",
                             cost["energy_whole_board_j"]["per_inference"],
                             report["exec_energy_boards_j"] / samples, "J", source_report))
        rows.append(_row("execution time per inference", "total", cost["latency_s"]["per_inference"],
                         report["exec_time_s"] / samples, "s", source_report))
        if "active_cores" in report:
            rows.append(_row("active cores", "total", cost["cores_active"], report["active_cores"], "cores",
                             source_report))
    if prov is not None:
        # sPyNNaker's provenance names 1-D atom ranges: strips match them; 2-D tiles (not a SpiNNaker
        # mapping) have no counterpart there
        by_slice = {(c["population"], c["start"], c["stop"]): c for c in profile["cores"] if c.get("tile") is None}
        for entry in prov["cores"]:
            values = entry["values"]
            if "population" not in entry or "Total_pre_synaptic_events" not in values:
                continue
            core = by_slice.get((entry["population"], entry["lo_atom"], entry["hi_atom"] + 1))
            if core is None or core.get("input"):
                continue
            scope = f"core {core['core']} ({entry['core_name']} at {entry['x']},{entry['y']},{entry['p']})"
            rows.append(_row("synaptic events per inference", scope, core["synaptic_events"]["mean_per_sample"],
                             values["Total_pre_synaptic_events"] / samples, "events", source_prov))
            overruns = values.get("Times_the_timer_tic_over_ran")
            if overruns is not None:
                rt = profile.get("realtime", {})
                fits = next((c["fits_conservative"] for c in rt.get("cores", []) if c["core"] == core["core"]), None)
                rows.append(_row("timer tick overruns", scope, 0.0 if fits else None, float(overruns), "ticks",
                                 source_prov))
        packets = sum(r["values"].get("RunLocal_Multicast_Packets", 0) + r["values"].get("RunExternal_Multicast_Packets", 0)
                      for r in prov["routers"])
        if prov["routers"]:
            predicted = float(np.mean(cost["counts_per_sample"]["router_traversals"]))
            rows.append(_row("multicast packets per inference (router traversals)", "total", predicted,
                             packets / samples, "packets", source_prov))
        power = prov["power"]
        if "Exec energy (Joules)" in power and report is None:
            rows.append(_row("energy per inference (whole machine)", "total", cost["energy_whole_board_j"]["per_inference"],
                             power["Exec energy (Joules)"] / samples, "J", source_prov))
    return rows


# ------------------------------------------------------------------ Loihi 2 (Lava)

def capture_lava_profilers(path: str | os.PathLike, *, num_steps: int, power=None, runtime=None, activity=None,
                           memory=None, profiler=None, num_chips: int = 1, extra: Optional[dict] = None) -> Path:
    """On the Loihi host, after ``net.run(...)`` with ``Loihi2HwCfg(callback_fxs=[...])``: write the
    documented attributes of lava-loihi's profilers (``loihi2_profiler.Loihi2Power`` etc., or a
    ``lava.utils.profiler.Profiler`` with ``energy_breakdown()``/``power_breakdown()``) to JSON."""
    out: Dict[str, Any] = {"format": LAVA_FORMAT, "version": 1, "num_steps": int(num_steps), "num_chips": int(num_chips)}
    for cls, obj in (("Loihi2Power", power), ("Loihi2ExecutionTime", runtime), ("Loihi2Activity", activity),
                     ("Loihi2Memory", memory)):
        if obj is None:
            continue
        out[cls] = {name: _jsonable(getattr(obj, name)) for name in LAVA_ATTRIBUTES[cls] if hasattr(obj, name)}
    if profiler is not None:
        out["Profiler"] = {}
        if hasattr(profiler, "energy_breakdown"):
            out["Profiler"]["energy_breakdown_uJ"] = _jsonable(list(profiler.energy_breakdown()))
        if hasattr(profiler, "power_breakdown"):
            out["Profiler"]["power_breakdown_W"] = _jsonable(list(profiler.power_breakdown()))
    if extra:
        out["extra"] = extra
    return atomic.write_text(path, json.dumps(out, indent=1, sort_keys=True))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def read_lava_profile(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IngestError(f"{path}: cannot read the Lava profiler JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != LAVA_FORMAT:
        raise IngestError(f"{path}: not a {LAVA_FORMAT} file (write it with capture_lava_profilers)")
    if "num_steps" not in data:
        raise IngestError(f"{path}: no 'num_steps' (the steps the profiled run covered)")
    return data


def _ingest_lava(profile: dict, data: dict, source: str) -> List[dict]:
    rows: List[dict] = []
    cost = profile.get("cost", {})
    steps = int(profile["steps"])  # steps of one inference
    inferences = data["num_steps"] / steps
    time_per_step_us = None
    rt = data.get("Loihi2ExecutionTime")
    if rt:
        if "avg_time_per_step" in rt:
            time_per_step_us = float(rt["avg_time_per_step"])
        elif "execution_time_per_step" in rt:
            time_per_step_us = float(np.mean(rt["execution_time_per_step"]))
    if time_per_step_us is not None:
        rows.append(_row("time per step", "total", cost["latency_s"]["per_inference"] / steps,
                         time_per_step_us * 1e-6, "s", source + " (Loihi2ExecutionTime)"))
    pw = data.get("Loihi2Power")
    if pw and time_per_step_us is not None and "total_power" in pw:
        chips = int(data.get("num_chips", 1))
        static = float(pw.get("static_total_power", 0.0)) / chips
        total = float(np.mean(pw["total_power"])) - (chips - 1) * static  # lava-dl benchmark's compensation
        t = time_per_step_us * 1e-6 * steps
        rows.append(_row("dynamic energy per inference", "total", cost["energy_j"]["per_inference"],
                         (total - static) * t, "J", source + " (Loihi2Power)"))
        rows.append(_row("total energy per inference (static included; not predicted)", "total", None,
                         total * t, "J", source + " (Loihi2Power)"))
    prof = data.get("Profiler", {})
    if "energy_breakdown_uJ" in prof:
        total_uj, dynamic_uj = prof["energy_breakdown_uJ"][:2]
        rows.append(_row("dynamic energy per inference", "total", cost["energy_j"]["per_inference"],
                         dynamic_uj * 1e-6 / inferences, "J", source + " (Profiler.energy_breakdown)"))
    act = data.get("Loihi2Activity")
    if act:
        counts = cost.get("counts_per_sample", {})
        pairs = (("syn_ops", "synaptic ops per inference", np.mean(counts.get("synaptic_ops", [0]))),
                 ("dendrite_updates", "neuron updates per inference", profile["total"]["neuron_updates"]["mean_per_sample"]),
                 ("axon_out", "spike messages sent by cores per inference",
                  np.mean(counts.get("spike_messages_from_cores", [0]))),
                 ("spikes_in", "spike messages received by cores per inference", np.mean(counts.get("spike_messages", [0]))))
        for key, label, predicted in pairs:
            if key in act:
                rows.append(_row(label, "total", float(predicted), float(np.sum(act[key])) / inferences, "count",
                                 source + " (Loihi2Activity)"))
        ours = [c for c in profile["cores"] if not c.get("input")]
        received = cost.get("spike_messages_in_per_core", {})
        if "syn_ops" in act and len(act["syn_ops"]) == len(ours):  # matched by order of core index
            for i, c in enumerate(ours):
                scope = f"core {c['core']} ({c['population']})"
                note = source + " (Loihi2Activity, cores matched by order)"
                predicted = c["effective_acs"]["mean_per_sample"] + c["effective_macs"]["mean_per_sample"]
                rows.append(_row("synaptic ops per inference", scope, predicted, float(act["syn_ops"][i]) / inferences,
                                 "count", note))
                if "dendrite_updates" in act:
                    rows.append(_row("neuron updates per inference", scope, c["neuron_updates"]["mean_per_sample"],
                                     float(act["dendrite_updates"][i]) / inferences, "count", note))
                if "spikes_in" in act and str(c["core"]) in received:
                    rows.append(_row("spike messages received per inference", scope,
                                     received[str(c["core"])]["mean_per_sample"], float(act["spikes_in"][i]) / inferences,
                                     "count", note))
    return rows


# ------------------------------------------------------------------ entry point

def _row(quantity: str, scope: str, predicted, measured, unit: str, source: str) -> dict:
    ratio = None
    if predicted not in (None, 0) and measured is not None:
        ratio = float(measured) / float(predicted)
    return {"quantity": quantity, "scope": scope, "predicted": None if predicted is None else float(predicted),
            "measured": None if measured is None else float(measured), "ratio": ratio, "unit": unit, "source": source}


def ingest(profile: dict, *, spinnaker_report: str | os.PathLike | None = None,
           spinnaker_provenance: str | os.PathLike | None = None, lava: str | os.PathLike | None = None,
           samples: Optional[int] = None) -> dict:
    """The profile with ``measured`` readings and ``comparison`` rows added (a new dict).

    ``samples``: how many inferences the measured run covered (default: the profile's samples).
    """
    out = copy.deepcopy(profile)
    samples = int(samples or profile["samples"])
    measured: Dict[str, Any] = dict(out.get("measured") or {})
    rows: List[dict] = list(out.get("comparison") or [])
    if spinnaker_report is not None or spinnaker_provenance is not None:
        if profile["target"] != "spinnaker":
            raise IngestError(f"SpiNNaker measurements given for a {profile['target']} profile")
        report = read_spinnaker_energy_report(spinnaker_report) if spinnaker_report is not None else None
        prov = read_spinnaker_provenance(spinnaker_provenance) if spinnaker_provenance is not None else None
        measured["spinnaker"] = {"energy_report": report, "provenance": prov, "samples": samples,
                                 "files": [str(p) for p in (spinnaker_report, spinnaker_provenance) if p is not None]}
        rows += _ingest_spinnaker(out, report, prov, samples, Path(spinnaker_report).name if spinnaker_report else "",
                                  Path(spinnaker_provenance).name if spinnaker_provenance else "")
    if lava is not None:
        if profile["target"] != "loihi2":
            raise IngestError(f"Lava (Loihi 2) measurements given for a {profile['target']} profile")
        data = read_lava_profile(lava)
        measured["lava"] = {"readings": data, "file": str(lava)}
        rows += _ingest_lava(out, data, Path(lava).name)
    out["measured"] = measured or None
    out["comparison"] = rows
    return out
