"""The sPyNNaker side of the spinnaker backend: runs in a child process.

``python -m neurodeploy.backends.spinnaker.runner JOBS.json`` with the working directory and
``HOME`` set to a folder of the backend's own (``backend.py`` writes ``.spynnaker.cfg`` there),
so sPyNNaker reads that config and writes its reports there, never the user's.

Each job: build the PyNN network of an artifact (``network.build``), run it, and write
- a report (JSON): placements, routing-table entries per chip, SDRAM per core, the ring-buffer
  shifts and synaptic words sPyNNaker generated, compared with the artifact's, the parameter
  bits its s1615 encoder gives, algorithm timings, and on a real machine provenance;
- on a real machine, the recorded traces (``spikes.<pop>``, ``v.<pop>``) in an ``.npz``;
- optionally the read-back synapses (``readback``: an ``.npz`` per projection).

Where 7.4.1 exposes what it wrote (found by reading its sources):
- shifts: ``PopulationVertex.get_ring_buffer_shifts()`` and, per core, the list each
  ``PopulationMachineVertex`` writes into its synapse-parameter region
  (``_PopulationMachineVertex__ring_buffer_shifts``, with ``__weight_scales``);
- synapses: a connection holder registered with ``Projection.get`` before ``run``. sPyNNaker
  fills it during data generation by decoding the synaptic-matrix rows it generated for the
  cores (``SynapticMatrixApp.append_matrix`` -> ``read_all_synapses``); the weights come back
  as ``word / weight_scale``, so ``word = weight * weight_scale`` exactly;
- parameters: ``spynnaker.pyNN.utilities.utility_calls.convert_to`` (the function its neuron
  structs use) applied to the values the population holds.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np


def _log(message: str) -> None:
    print(f"[neurodeploy spinnaker] {message}", file=sys.stderr, flush=True)


def _load(job: dict):
    from neurodeploy.format import artifact as artifact_format
    from neurodeploy.backends.spinnaker import network
    from neurodeploy.format.program import from_manifest

    art = artifact_format.read(job["artifact"])
    program = from_manifest(art.manifest["program"], art.arrays)
    plan = network.plan(program, art.manifest.get("mapping"), art.manifest.get("semantics"))
    return art, program, plan


def _inputs(job: dict, plan) -> tuple[int, int, dict]:
    from neurodeploy.backends.spinnaker import network

    if not job.get("inputs"):
        return 1, int(job.get("steps") or 10), {}
    with np.load(job["inputs"], allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return network.spike_lists(plan, arrays)


def run_job(job: dict) -> dict:
    """Map (virtual board) or run (machine) one artifact; returns the report.

    On a machine, each sample of a batch gets its own setup/run/end: 7.4.1's
    ``SpikeSourceArray.set(spike_times=...)`` fails for per-neuron lists (the send-buffer times
    are kept as a Python list and indexed with a numpy array), so new spikes cannot be set
    after ``sim.reset()``. A fresh setup also starts every neuron from its initial state.
    """
    t0 = time.perf_counter()
    art, program, plan = _load(job)
    record = list(job.get("record") or [])
    batch, steps, spikes = _inputs(job, plan)
    virtual = bool(job.get("virtual", True))
    if virtual:
        batch = 1
    steps = max(1, steps)
    import pyNN.spiNNaker as sim

    if job.get("fast_rows"):
        from neurodeploy.backends.spinnaker import fast_rows

        fast_rows.install()
    probe = _RowProbe() if job.get("time_rows") else None
    report = {
        "artifact": str(job["artifact"]),
        "content_hash": art.content_hash,
        "virtual_board": virtual,
        "spikes_produced": not virtual,
        "note": ("virtual board: sPyNNaker mapped the network and generated every core's data on the host, but "
                 "no board ran, so no spikes or voltages were produced" if virtual else
                 "ran on a SpiNNaker machine"),
        "steps": steps,
        "batch": batch,
        "timestep_us": plan.timestep_us,
        "timings_s": {"import": time.perf_counter() - t0},
    }
    per_sample = []
    provenance = []
    for b in range(batch):
        sample = {name: per[b] for name, per in spikes.items()}
        traces, prov = _run_once(sim, job, plan, art, program, sample, steps, record, virtual,
                                 report if b == 0 else None)
        if not virtual:
            per_sample.append(traces)
            provenance.append(prov)
    if not virtual:
        report["provenance"] = provenance[0] if batch == 1 else {"per_sample": provenance}
        if job.get("output"):
            out = {key: np.stack([s[key] for s in per_sample]) for key in per_sample[0]}
            np.savez(job["output"], **out)
    report["fast_rows"] = bool(job.get("fast_rows"))
    if probe is not None:
        report["row_builder"] = probe.result()
        probe.remove()
    report["timings_s"]["total"] = time.perf_counter() - t0
    return report


class _RowProbe:
    """Times convert_per_connection_data_to_rows and digests every synaptic matrix generated."""

    def __init__(self):
        import hashlib

        from spynnaker.pyNN.models.neuron import synaptic_matrix_app
        from spynnaker.pyNN.models.neuron.synapse_dynamics.abstract_sdram_synapse_dynamics import (
            AbstractSDRAMSynapseDynamics,
        )

        self.cls, self.module = AbstractSDRAMSynapseDynamics, synaptic_matrix_app
        self.original_rows = AbstractSDRAMSynapseDynamics.convert_per_connection_data_to_rows
        self.original_get = synaptic_matrix_app.get_synapses
        self.seconds, self.calls, self.matrices = 0.0, 0, 0
        self.digest = hashlib.sha256()
        probe = self

        def rows(self_, *args, **kwargs):
            t = time.perf_counter()
            try:
                return probe.original_rows(self_, *args, **kwargs)
            finally:
                probe.seconds += time.perf_counter() - t
                probe.calls += 1

        def get_synapses(*args, **kwargs):
            row_data, delayed = probe.original_get(*args, **kwargs)
            for block in (row_data, delayed):
                arr = np.ascontiguousarray(block)
                probe.digest.update(f"{arr.dtype.str}{arr.shape}".encode())
                probe.digest.update(arr.tobytes())
            probe.matrices += 1
            return row_data, delayed

        AbstractSDRAMSynapseDynamics.convert_per_connection_data_to_rows = rows
        synaptic_matrix_app.get_synapses = get_synapses

    def result(self) -> dict:
        return {"seconds": self.seconds, "calls": self.calls, "matrices": self.matrices,
                "sha256": self.digest.hexdigest()}

    def remove(self) -> None:
        self.cls.convert_per_connection_data_to_rows = self.original_rows
        self.module.get_synapses = self.original_get


def _run_once(sim, job: dict, plan, art, program, spikes: dict, steps: int, record: list, virtual: bool,
              report: dict | None):
    """setup, build, run, collect, end. ``report``: fill in the mapping report (first sample)."""
    from neurodeploy.backends.spinnaker import network

    setup = {"timestep": plan.dt_ms}
    if job.get("time_scale_factor"):
        setup["time_scale_factor"] = float(job["time_scale_factor"])
    t0 = time.perf_counter()
    sim.setup(**setup)
    traces, prov = None, None
    from neurodeploy.backends.spinnaker import local_only

    probe = local_only.Probe() if report is not None and (plan.convs or plan.pool_dense) else None
    try:
        built = network.build(sim, plan, spikes, record)
        holders = parameters = None
        if report is not None:
            holders = {proj.label: built.projections[proj.label].get(["weight", "delay"], format="list",
                                                                     with_address=True)
                       for proj in plan.projections}
            parameters = _parameters(built, plan)  # before run: afterwards sPyNNaker reads them from the machine
        t_build = time.perf_counter()
        _log(f"running {steps} tick(s) of {plan.dt_ms:g} ms ({'virtual board' if virtual else 'machine'})")
        sim.run(steps * plan.dt_ms)
        t_run = time.perf_counter()
        if report is not None:
            report.update(_mapping(plan, art.manifest.get("mapping") or {}))
            report["shifts"] = _shifts(built, plan)
            local = local_only.readback(built, plan, program, probe) if probe is not None else {}
            local.update(local_only.pool_dense_readback(built, plan, program, probe) if probe is not None else {})
            report["synapses"] = _synapses(plan, holders, job.get("readback"), local)
            report["local_only"] = local_only.summary(plan, local)
            report["parameters"] = parameters
            report["timings_s"].update({"build": t_build - t0, "run": t_run - t_build})
            report["algorithm_timings_ms"] = _algorithm_timings()
            report["matches"] = _matches(report)
            if not virtual:
                report["energy_reports"] = _energy_reports()
        if not virtual:
            traces = network.traces(built, plan, steps, record)
            prov = _provenance()
    finally:
        if probe is not None:
            probe.remove()
        try:
            sim.end()
        except Exception as exc:  # noqa: BLE001 - report the first error, not a cleanup error
            _log(f"sim.end() failed: {type(exc).__name__}: {exc}")
    return traces, prov


# ------------------------------------------------------------------ what sPyNNaker mapped

def _mapping(plan, predicted: dict) -> dict:
    from spynnaker.pyNN.data import SpynnakerDataView as view

    from neurodeploy.backends.spinnaker import network

    pops = {p.name for p in plan.populations}
    sources = {s.name for s in plan.sources}
    names = {network.channel_label(x.name, c): x.name for x in [*plan.populations, *plan.sources] if x.grid
             for c in range(x.grid[0])}  # channel populations of gridded ones
    n_steps = view.get_plan_n_timestep()
    cores = []
    for placement in view.iterate_placemements():
        vertex = placement.vertex
        app = vertex.app_vertex
        label = app.label if app is not None else vertex.label
        piece, label = label, names.get(label, label)
        if app is not None and label in pops:
            role = "population"
        elif app is not None and label in sources:
            role = "source"
        elif app is not None and "Delay" in type(app).__name__:
            role = "delay"
            label = getattr(getattr(app, "source_vertex", None), "label", None) or label  # the delayed population
            label = names.get(label, label)
        else:
            role = "system"
        try:
            sdram = int(vertex.sdram_required.get_total_sdram(n_steps))
        except Exception:  # noqa: BLE001 - some system vertices need state we do not have
            sdram = None
        vs = getattr(vertex, "vertex_slice", None)
        cores.append({"x": placement.x, "y": placement.y, "p": placement.p, "role": role, "label": label,
                      "vertex": type(vertex).__name__,
                      "slice": [int(vs.lo_atom), int(vs.lo_atom) + int(vs.n_atoms)] if vs is not None and role != "system" else None,
                      "sdram_bytes": sdram})
        if piece in names:  # a channel population of a gridded one: its slice counts within the channel
            cores[-1]["channel_population"] = piece
    cores.sort(key=lambda c: (c["x"], c["y"], c["p"]))
    app_cores = [c for c in cores if c["role"] != "system"]
    chips = sorted({(c["x"], c["y"]) for c in app_cores})
    routing = []
    try:
        for table in view.get_uncompressed().routing_tables:
            routing.append({"x": table.x, "y": table.y, "entries": int(table.number_of_entries)})
    except Exception as exc:  # noqa: BLE001
        routing = [{"error": f"{type(exc).__name__}: {exc}"}]
    routing.sort(key=lambda r: (r.get("x", 0), r.get("y", 0)))
    per_pop, predicted_cores = _per_population(plan, app_cores, predicted)
    return {
        "placements": cores,
        "cores": {"application": len([c for c in app_cores if c["role"] in ("population", "source")]),
                  "delay_extension": len([c for c in app_cores if c["role"] == "delay"]),
                  "system": len(cores) - len(app_cores), "predicted": predicted_cores},
        "chips": {"used": len(chips), "predicted": predicted.get("chips_used"), "list": [list(c) for c in chips],
                  "with_any_core": len({(c["x"], c["y"]) for c in cores})},
        "routing_entries": {"per_chip": routing,
                            "max": max((r.get("entries", 0) for r in routing), default=0),
                            "note": "uncompressed tables; sPyNNaker compresses them on chip at load time",
                            "predicted_max": next((l["value"] for l in predicted.get("limits", [])
                                                   if l["limit"].startswith("router entries")), None)},
        "populations": per_pop,
        "plan_n_timesteps": n_steps,
    }


def _per_population(plan, app_cores: list, predicted: dict) -> tuple[dict, Any]:
    """Cores and slices per population against the artifact's mapping; a gridded population (one
    Grid2D population per channel, local-only convs) against its plan's 2-D tiles instead, which
    also replace its cores in the predicted total."""
    grids = {x.name: x for x in [*plan.populations, *plan.sources] if x.grid}
    total = predicted.get("cores_used")
    per_pop = {}
    for name in sorted({p.name for p in plan.populations} | {s.name for s in plan.sources}):
        mine = [c for c in app_cores if c["label"] == name and c["role"] in ("population", "source")]
        predicted_slices = [(c["start"], c["stop"]) for c in predicted.get("cores", []) if c["population"] == name]
        got_slices = sorted(tuple(c["slice"]) for c in mine)
        entry = {"cores": len(mine), "predicted_cores": len(predicted_slices),
                 "slices": [list(s) for s in got_slices],
                 "predicted_slices": [list(s) for s in sorted(predicted_slices)],
                 "slices_equal": got_slices == sorted(predicted_slices),
                 "sdram_bytes": [c["sdram_bytes"] for c in sorted(mine, key=lambda c: (c["label"], c["slice"]))],
                 "delay_cores": len([c for c in app_cores if c["role"] == "delay" and c["label"] == name])}
        if name in grids:
            x = grids[name]
            tiles = _grid_cores(x)
            if total is not None:
                total = total - len(predicted_slices) + tiles
            entry.update({"grid": list(x.grid), "tile": list(x.atoms_per_core), "predicted_cores": tiles,
                          "predicted_slices": [], "slices_equal": len(mine) == tiles,
                          "note": "one Grid2D population per channel (local-only convs): predicted from the "
                                  "plan's 2-D tiles, not the artifact's slices"})
        per_pop[name] = entry
    return per_pop, total


def _grid_cores(x) -> int:
    from neurodeploy.backends.spinnaker import network

    return network.grid_cores(x.grid, x.atoms_per_core)


def _shifts(built, plan) -> dict:
    from neurodeploy.backends.spinnaker import network

    out = {}
    for p in plan.populations:
        vertices = [pop._vertex for pop in network.populations_of(built, p.name)]  # one per channel when gridded
        apps = [[int(s) for s in vertex.get_ring_buffer_shifts()] for vertex in vertices]
        app = apps[0] if all(a == apps[0] for a in apps) else apps
        per_core = []
        for mv in (mv for vertex in vertices for mv in vertex.machine_vertices):
            shifts = _private(mv, "__ring_buffer_shifts")
            scales = _private(mv, "__weight_scales")
            per_core.append({"slice": [int(mv.vertex_slice.lo_atom), int(mv.vertex_slice.lo_atom) + int(mv.vertex_slice.n_atoms)],
                             "shifts": None if shifts is None else [int(s) for s in shifts],
                             "weight_scales": None if scales is None else [float(s) for s in scales]})
        written = {tuple(c["shifts"]) for c in per_core if c["shifts"] is not None}
        found = all(c["shifts"] is not None for c in per_core) and bool(per_core)
        out[p.name] = {"artifact": list(p.shifts), "population_vertex": app, "cores": per_core,
                       "max_expected_summed_weight": list(p.max_expected_summed_weight),
                       "summed_weight": list(p.summed_weight),
                       "equal": app == list(p.shifts) and found and written == {tuple(p.shifts)}}
    return out


def _private(obj, suffix: str):
    """A name-mangled attribute (``_<Class>__name``) of ``obj`` or of one of its classes."""
    for cls in type(obj).__mro__:
        value = getattr(obj, f"_{cls.__name__}{suffix}", None)
        if value is not None:
            return value
    return None


def _synapses(plan, holders: dict, readback: str | None, local: dict) -> dict:
    """Per connection and receptor (``<conn>:exc|inh``): the synapses sPyNNaker generated against
    the artifact's, in population-wide indices. FromList pieces between channel populations are
    joined back; local-only convs come from ``local`` (local_only.readback: the kernels it encoded,
    expanded as its core computes them)."""
    from neurodeploy.backends.spinnaker import network

    groups: dict[str, list] = {}
    for proj in plan.projections:
        groups.setdefault(f"{proj.connection}:{'exc' if proj.receptor == 'excitatory' else 'inh'}", []).append(proj)
    out, arrays = {}, {}
    for key, projs in groups.items():
        got = [_holder_rows(holders[p.label], network.weight_scale(p.shift), plan.timestep_us) for p in projs]
        have = [np.concatenate([g[0] + p.pre_offset for g, p in zip(got, projs)]),
                np.concatenate([g[1] + p.post_offset for g, p in zip(got, projs)]),
                np.concatenate([g[2] for g in got]), np.concatenate([g[3] for g in got])]
        want = [np.concatenate([p.pre + p.pre_offset for p in projs]),
                np.concatenate([p.post + p.post_offset for p in projs]),
                np.concatenate([p.word for p in projs]).astype(np.int64), np.concatenate([p.delay_steps for p in projs])]
        entry = {"connection": projs[0].connection, "receptor": projs[0].receptor, "shift": projs[0].shift,
                 "synapses": int(want[0].size), "read_back": int(have[0].size),
                 "words_integral": all(g[4] for g in got), "projections": len(projs)}
        entry.update(compare(have, want))
        out[key] = entry
        arrays.update(_readback_arrays(key, have))
    for key, item in local.items():
        entry = dict(item["entry"])
        entry.update(compare(item["have"], item["want"]))
        out[key] = entry
        arrays.update(_readback_arrays(key, item["have"]))
    if readback:
        np.savez(readback, **arrays)
    return out


def _holder_rows(data, scale: float, timestep_us: int):
    """(pre, post, word, delay steps, words integral) of one projection's connection holder."""
    rows = np.asarray(list(data), dtype=np.float64).reshape(-1, 4) if len(data) else np.zeros((0, 4))
    pre, post = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
    words = rows[:, 2] * scale
    exact = bool(np.all(words == np.rint(words)))
    steps = np.rint(rows[:, 3] * 1000.0 / timestep_us).astype(np.int64)
    return pre, post, np.rint(words).astype(np.int64), steps, exact


def _readback_arrays(key: str, have: list) -> dict:
    tag = key.replace(":", ".")
    return {f"{tag}.{name}": np.asarray(a, dtype=np.int64) for name, a in zip(("pre", "post", "word", "delay_steps"), have)}


def compare(have: list, want: list) -> dict:
    """Synapse lists (pre, post, word, delay steps) compared as sets of (pre, post) pairs."""
    pre, post, words, steps = have
    w_pre, w_post, w_words, w_steps = want
    got, exp = np.lexsort((pre, post)), np.lexsort((w_pre, w_post))
    same_pairs = (pre.size == w_pre.size and np.array_equal(pre[got], w_pre[exp])
                  and np.array_equal(post[got], w_post[exp]))
    entry: dict[str, Any] = {"pairs_equal": bool(same_pairs)}
    if not same_pairs:
        entry.update({"weights_equal": False, "delays_equal": False})
        return entry
    dw = words[got] != w_words[exp]
    dd = steps[got] != w_steps[exp]
    entry.update({"weights_equal": not bool(dw.any()), "weight_mismatches": int(dw.sum()),
                  "delays_equal": not bool(dd.any()), "delay_mismatches": int(dd.sum())})
    if dw.any():
        i = int(np.flatnonzero(dw)[0])
        entry["first_weight_mismatch"] = {"pre": int(pre[got][i]), "post": int(post[got][i]),
                                          "spynnaker": int(words[got][i]), "artifact": int(w_words[exp][i])}
    return entry


def _parameters(built, plan) -> dict:
    from spinn_front_end_common.interface.ds import DataType
    from spynnaker.pyNN.utilities.utility_calls import convert_to

    from neurodeploy.backends.spinnaker import network

    out = {}
    for p in plan.populations:
        pieces = network.populations_of(built, p.name)
        mismatched = []
        names = list(p.params) + list(p.initial)
        for name in names:
            got = [pop.get(name) if name in p.params else pop.initial_values[name] for pop in pieces]
            values = np.concatenate([np.broadcast_to(np.asarray(g, dtype=np.float64).reshape(-1), (pop.size,))
                                     for g, pop in zip(got, pieces)])
            uniq, inverse = np.unique(values, return_inverse=True)
            encoded = np.asarray([int(np.int32(np.uint32(convert_to(float(u), DataType.S1615)))) for u in uniq],
                                 dtype=np.int64)[inverse]
            if not np.array_equal(encoded, p.bits[name]):
                mismatched.append(name)
        out[p.name] = {"checked": names, "mismatched": mismatched, "equal": not mismatched}
    return out


# ------------------------------------------------------------------ machine runs

def _provenance() -> dict:
    """Dropped/late packets and timer overruns from sPyNNaker's provenance database."""
    out: dict[str, Any] = {}
    try:
        from spinn_front_end_common.interface.provenance import ProvenanceReader

        with ProvenanceReader() as reader:
            rows = reader.run_query("SELECT core_name, x, y, p, description, the_value FROM core_provenance_view")
            routers = reader.run_query("SELECT x, y, description, the_value FROM router_provenance")
    except Exception as exc:  # noqa: BLE001 - provenance is best effort
        return {"error": f"{type(exc).__name__}: {exc}"}
    keys = ("over_ran", "overrun", "late", "lost", "dropped", "overflow", "saturat", "discard")
    summary: dict[str, int] = {}
    cores = []
    for name, x, y, p, description, value in rows:
        if any(k in str(description).lower() for k in keys):
            summary[str(description)] = summary.get(str(description), 0) + int(value or 0)
            if value:
                cores.append({"core": name, "x": x, "y": y, "p": p, "item": description, "value": value})
    router: dict[str, int] = {}
    for x, y, description, value in routers:
        if any(k in str(description).lower() for k in keys):
            router[str(description)] = router.get(str(description), 0) + int(value or 0)
    out.update({"core_totals": summary, "cores_with_problems": cores[:200], "router_totals": router})
    return out


def _energy_reports() -> dict:
    try:
        from spynnaker.pyNN.data import SpynnakerDataView as view

        run_dir = Path(view.get_run_dir_path())
    except Exception:  # noqa: BLE001
        return {}
    return {p.name: p.read_text(errors="replace")[:20000] for p in sorted(run_dir.glob("energy_report*.rpt"))}


def _algorithm_timings() -> dict:
    try:
        from spinn_front_end_common.interface.provenance import GlobalProvenance

        with GlobalProvenance() as db:
            rows = db.run_query("SELECT algorithm, time_taken FROM timer_view")
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, float] = {}
    for algorithm, taken in rows:
        out[str(algorithm)] = out.get(str(algorithm), 0.0) + float(taken)
    return out


def _matches(report: dict) -> dict:
    pops = report["populations"]
    return {
        "shifts": all(s["equal"] for s in report["shifts"].values()),
        "weights": all(s.get("weights_equal", False) for s in report["synapses"].values()),
        "delays": all(s.get("delays_equal", False) for s in report["synapses"].values()),
        "parameters": all(p["equal"] for p in report["parameters"].values()),
        "cores_per_population": all(p["cores"] == p["predicted_cores"] for p in pops.values()),
        "slices": all(p["slices_equal"] for p in pops.values()),
        "application_cores": report["cores"]["application"] == report["cores"]["predicted"],
        "local_only_kernels": all(c["kernels_equal_plan"] for c in report.get("local_only", {}).values()),
    }


# ------------------------------------------------------------------ entry point

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    jobs = json.loads(Path(argv[0]).read_text())
    for job in jobs:
        error_file = job.get("error_file")
        try:
            report = run_job(job)
        except BaseException as exc:  # noqa: BLE001 - the parent turns this into a NeurodeployError
            _log(traceback.format_exc())
            if error_file:
                Path(error_file).write_text(json.dumps(_describe(exc)))
            return 1
        Path(job["report"]).write_text(json.dumps(report, indent=1, sort_keys=True, default=_json))
    return 0


def _describe(exc: BaseException) -> dict:
    """The error for the parent: class name, module and a one-line message."""
    root = exc
    # sPyNNaker wraps machine errors; the innermost cause names the real problem
    while root.__cause__ is not None and not str(root).strip():
        root = root.__cause__
    return {"type": type(root).__name__, "module": type(root).__module__,
            "message": " ".join(str(root).split())[:800] or repr(root)}


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
