"""Profile a compiled artifact: activity, synaptic operations, footprint, utilisation, energy, latency.

``profile(artifact, inputs)`` runs the bit-accurate emulator on ``inputs`` (batch, steps,
*input_shape) and counts, per population, per core (the mapping's slices), per chip and in
total, for every sample and summed over the batch:

- spikes, and spike rates per neuron per step and in Hz (``dt`` from the artifact's semantics);
- synaptic operations as NeuroBench defines them (``Effective_ACs`` / ``Effective_MACs``): one
  operation per delivered spike (or non-zero input value) per existing synapse, a synapse being a
  non-zero deployed integer weight; fan-out per source neuron is counted exactly from the
  program's connections (conv kernels materialized with their borders; recurrent and delayed
  connections included). A source's values at one step count as ACs when they are all in
  {-1, 0, 1} and as MACs otherwise (NeuroBench's ``binary_inputs`` rule, applied per sample
  and step), each non-zero value then counting one MAC per synapse;
- neuron updates (neurons x steps), activation sparsity (1 - spikes / (neurons x steps), over
  spiking populations) and connection sparsity (zero entries of the full dense matrices);
- the deployed footprint in bits (weights at the target's width, neuron state, routing) and
  each core's use of every limit the mapper checked;
- energy and latency per inference from the target's cost model (``neurodeploy/targets/*.py``
  ``costs``), with the assumptions printed next to the numbers; for SpiNNaker also the
  synaptic events per ms per core against the real-time budget.

Synaptic operations are attributed to the core that holds the synapses (the target's); a
spike's operations are counted at the step it is sent, whatever its delay (the chip processes
the synaptic row when the spike arrives and only defers the effect).

Two stages: the activity of a shard of samples is reduced to what the profile counts
(:class:`Reductions`: per-sample numbers, maxima, flags; :func:`reduce_run`), shards' reductions
merge (:func:`merge`), and the profile is built from the merged reductions and the artifact
(:func:`profile`). A Dask worker runs the first stage (``sharding.shard.profile_shard``).
Everything is in docs/profiling.md.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.emulator.inputs import program_inputs
import scipy.sparse

from neurodeploy.format import artifact as artifact_format
from neurodeploy.format import convolution, core_slices
from neurodeploy.targets import spinnaker as spinnaker_target
from neurodeploy.errors import OptionError
from neurodeploy.format.program import Program, QConnection, from_manifest, plain

SCHEMA = "neurodeploy-profile"
SCHEMA_VERSION = 1



# ------------------------------------------------------------------ loading

def load(artifact: Any) -> tuple[artifact_format.Artifact, Program]:
    """An Artifact, a compiled model (``Compiled``) or an .ndp path -> (Artifact, Program)."""
    if isinstance(artifact, (str, Path)):
        artifact = artifact_format.read(artifact)
    elif hasattr(artifact, "to_artifact"):
        artifact = artifact.to_artifact()
    if not isinstance(artifact, artifact_format.Artifact):
        raise OptionError(f"cannot profile a {type(artifact).__name__}; pass an .ndp path, an Artifact or a compiled model")
    return artifact, from_manifest(artifact.manifest["program"], artifact.arrays)


def conv_matrix(conn: QConnection) -> scipy.sparse.csr_matrix:
    """The conv connection as an explicit (n_out, n_in) matrix of its non-zero kernel taps.

    Entry (i, j) counts the synapses from input j to output i: kernel entries that are non-zero
    and whose input position falls inside the (unpadded) input; borders are therefore exact.
    """
    w = np.asarray(conn.arrays["weight"])
    return convolution.as_csr((w != 0).astype(np.int64), convolution.ConvGeometry.of(conn.attrs))


_MATRIX_CACHE: dict[int, tuple] = {}


def synapse_matrices(conn: QConnection) -> tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]:
    """(effective, stored): synapses per (target, source) pair, as int64 CSR (n_out, n_in).

    Effective synapses have a non-zero deployed weight (NeuroBench's "existing synapse");
    stored ones are every word the target keeps (SpiNNaker keeps zero-weight words and
    processes them; elsewhere stored == effective).
    """
    cached = _MATRIX_CACHE.get(id(conn))
    if cached is not None and cached[0] is conn:
        return cached[1], cached[2]
    eff, stored = _synapse_matrices(conn)
    if len(_MATRIX_CACHE) > 256:
        _MATRIX_CACHE.clear()
    _MATRIX_CACHE[id(conn)] = (conn, eff, stored)
    return eff, stored


def _synapse_matrices(conn: QConnection) -> tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]:
    if conn.kind == "dense":
        w = np.asarray(conn.arrays["weight"])
        eff = scipy.sparse.csr_matrix((w != 0).astype(np.int64))
        return eff, eff
    if conn.kind == "sparse":
        w = np.asarray(conn.arrays["weight"])
        indices, indptr = conn.arrays["indices"], conn.arrays["indptr"]
        shape = (conn.n_out, conn.n_in)
        stored = scipy.sparse.csr_matrix((np.ones(w.size, dtype=np.int64), indices, indptr), shape=shape)
        eff = scipy.sparse.csr_matrix(((w != 0).astype(np.int64), indices, indptr), shape=shape)
        stored.sum_duplicates()
        eff.sum_duplicates()
        eff.eliminate_zeros()
        return eff, stored
    if conn.kind == "conv":
        eff = conv_matrix(conn)
        return eff, eff
    raise OptionError(f"connection '{conn.name}': unknown kind {conn.kind!r}")


# ------------------------------------------------------------------ the profile

class _Core:
    def __init__(self, entry: dict):
        self.index = int(entry["core"])
        self.chip = int(entry["chip"])
        self.population = entry["population"]
        self.start, self.stop = int(entry["start"]), int(entry["stop"])
        self.tile = entry.get("tile")  # a 2-D tile (channels x rows x columns), or None for a strip
        self.rows = core_slices.slice_indices(entry)  # its neurons: a slice (strip) or flat indices (tile)
        self.size = core_slices.slice_size(entry)
        self.label = core_slices.slice_label(entry)
        self.usage = dict(entry.get("usage", {}))


@dataclass
class _Run:
    """One emulated run: every source's values and the recorded traces."""

    activity: dict[str, np.ndarray]  # source (input or population) -> (batch, steps, n) int64 values
    traces: dict[str, np.ndarray]
    batch: int
    steps: int
    input_steps: int  # steps of the given input (steps less the latency padding)


@dataclass
class Reductions:
    """What a profile counts from the emulated activity of some samples, in a form that merges over
    shards of samples (:func:`merge`): a few numbers per sample, concatenated in sample order;
    maxima over samples and steps, of which the merge keeps the largest; flags, of which it keeps
    any. A worker returns these for its shard; the (sample, step, neuron) activity stays there.

    Keys: ``connection.{acs,macs}.<conn>``, ``core.{acs,macs,events,spikes,active}.<core>``,
    ``population.spikes.<pop>``, ``input.{events,value_sum}.<input>``, the emulator's
    ``overflow.*`` / ``overflow_first.*`` counters, ``loihi2.*`` (spike messages, tile hops) and
    ``spinnaker.*`` (packets, router traversals) per sample; ``core.peak_events.<core>`` and
    ``spinnaker.window_peaks`` (per n = 1..256: the most events one step brings to a slice of n
    neurons) as maxima; ``input.graded.<input>`` as flags.
    """

    samples: int
    steps: int
    input_steps: int
    per_sample: dict[str, np.ndarray]
    maxima: dict[str, np.ndarray]
    flags: dict[str, bool]


def merge(parts: list[Reductions]) -> Reductions:
    """The reductions of consecutive shards (in sample order) as one run's."""
    if not parts:
        raise OptionError("no shards to merge: the input has no samples")
    first = parts[0]
    for p in parts[1:]:
        if (p.steps, p.input_steps) != (first.steps, first.input_steps) or p.per_sample.keys() != first.per_sample.keys() \
                or p.maxima.keys() != first.maxima.keys() or p.flags.keys() != first.flags.keys():
            raise OptionError("shards of one profile differ in steps or counts; profile one input file with one artifact")
    return Reductions(
        samples=sum(p.samples for p in parts), steps=first.steps, input_steps=first.input_steps,
        per_sample={k: np.concatenate([p.per_sample[k] for p in parts]) for k in first.per_sample},
        maxima={k: np.maximum.reduce([np.asarray(p.maxima[k]) for p in parts]) for k in first.maxima},
        flags={k: any(p.flags[k] for p in parts) for k in first.flags})


@dataclass
class _ConnectionCounts:
    """The program's connections: the profile's "connections" section and its synapse totals."""

    rows: dict[str, dict]  # the profile's "connections" section
    dense: int = 0  # entries of every full dense matrix
    nnz: int = 0  # (target, source) pairs with a synapse


SHARD_SAMPLES = 128  # samples emulated at once by an in-process profile (the shards' default size too)


def profile(artifact: Any, inputs: Any = None, *, pad: bool = True, time_scale_factor: int | None = None,
            traces: dict[str, np.ndarray] | None = None, reductions: Reductions | None = None,
            shard_size: int | None = None) -> dict:
    """Run the emulator on ``inputs`` and return the profile (a JSON-ready dict; docs/profiling.md).

    ``pad`` appends the steps the target's latency needs (as ``verify`` does) so that every
    population sees the whole input; ``time_scale_factor`` (SpiNNaker) defaults to the smallest
    that keeps every core inside the conservative real-time budget. The emulator runs here,
    ``shard_size`` samples at a time (default :data:`SHARD_SAMPLES`), unless ``traces`` of these
    inputs (padded when ``pad``, states :func:`record_of`) are given, or ``reductions``: the merged
    :class:`Reductions` of shards run elsewhere (a Dask cluster), which need no ``inputs``.
    """
    art, program = load(artifact)
    if reductions is None:
        if inputs is None:
            raise OptionError("profile needs inputs (batch, steps, *input_shape), or the reductions of their shards")
        reductions = reduce_inputs(art, program, inputs, pad=pad, traces=traces, shard_size=shard_size)
    return _assemble(art, program, reductions, pad, time_scale_factor)


def _assemble(art: artifact_format.Artifact, program: Program, red: Reductions, pad: bool,
              time_scale_factor: int | None) -> dict:
    """The profile from the reductions of every sample and what the artifact says."""
    from neurodeploy import targets

    manifest = art.manifest
    target = targets.get(program.target)
    dt = float(manifest.get("semantics", {}).get("dt", 1e-3))
    cores = [_Core(c) for c in manifest["mapping"]["cores"]]
    counts = _connection_rows(program, red)
    pops = _population_rows(program, red, counts.rows, cores, dt)
    core_rows = [_core_row(program, target, c, red, counts) for c in cores]
    chip_rows = _chips(core_rows, target)
    result: dict[str, Any] = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "target": program.target, "description": target.description,
        "artifact": {"content_hash": art.content_hash,
                     "source": manifest.get("provenance", {}).get("source"),
                     "source_sha256": manifest.get("provenance", {}).get("source_sha256")},
        "dt_s": dt, "samples": red.samples, "steps": red.steps, "input_steps": red.input_steps, "padded": bool(pad),
        "inputs": _input_rows(program, red), "populations": pops, "connections": counts.rows,
        "cores": core_rows, "chips": chip_rows,
        "total": _totals(program, red, pops, counts, chip_rows, len(cores), int(manifest["mapping"]["chips_used"]), dt),
        "definitions": DEFINITIONS,
        "measured": None, "comparison": [],
    }
    result.update(_cost_sections(program, target, cores, core_rows, red, dt, time_scale_factor))
    return plain(result)


def reduce_inputs(art: artifact_format.Artifact, program: Program, inputs: Any, *, pad: bool = True,
                  traces: dict[str, np.ndarray] | None = None, shard_size: int | None = None) -> Reductions:
    """The :class:`Reductions` of ``inputs``: emulated ``shard_size`` samples at a time (so that only
    one shard's activity is held) and merged, or counted from the given ``traces`` of all of them."""
    cores = [_Core(c) for c in art.manifest["mapping"]["cores"]]
    if traces is not None:
        return reduce_run(program, cores, _emulate(program, inputs, pad, traces))
    size = shard_size or SHARD_SAMPLES
    if size < 1:
        raise OptionError(f"shard size must be >= 1 sample, got {size}")
    first = next(iter(inputs.values())) if isinstance(inputs, dict) and inputs else inputs
    if np.ndim(first) < 2:
        program_inputs(program, inputs)  # names what is wrong
    samples = int(np.shape(first)[0])

    def cut(start: int) -> Any:  # the shard's rows, converted (to int64) one shard at a time
        if isinstance(inputs, dict):
            return {k: np.asarray(v)[start:start + size] for k, v in inputs.items()}
        return np.asarray(inputs)[start:start + size]

    return merge([reduce_run(program, cores, _emulate(program, cut(start), pad))
                  for start in range(0, max(samples, 1), size)])


def _records_state(program: Program) -> bool:
    """Whether the run records u and v: every target but SpiNNaker counts active neuron updates."""
    return program.target != "spinnaker"


def record_of(program: Program) -> tuple[str, ...]:
    """The states a profile's emulation records."""
    return ("u", "v") if _records_state(program) else ()


def _emulate(program: Program, inputs: Any, pad: bool, traces: dict[str, np.ndarray] | None = None) -> _Run:
    """Run the bit-accurate emulator on ``inputs`` (padded for the latency when ``pad``), unless
    ``traces`` of that run are given."""
    from neurodeploy.emulator import run_program
    from neurodeploy.analysis.verify import pad_for_latency

    arrays = program_inputs(program, inputs)
    if pad:
        arrays = pad_for_latency(program, arrays)
    if traces is None:
        traces = run_program(program, arrays, record=record_of(program), overflow=True)
    first = next(iter(arrays.values()))
    batch, steps = int(first.shape[0]), int(first.shape[1])
    input_steps = steps - (_pad_steps(program) if pad else 0)
    activity = _activity(program, arrays, traces, batch, steps)
    return _Run(activity=activity, traces=traces, batch=batch, steps=steps, input_steps=input_steps)


def _activity(program: Program, arrays: dict, traces: dict, batch: int, steps: int) -> dict[str, np.ndarray]:
    """Activity of every source: (batch, steps, n) integer values (zeros for a population not recorded)."""
    activity: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        activity[name] = np.asarray(arr).reshape(batch, steps, -1).astype(np.int64)
    for pop in program.populations:
        key = f"spikes.{pop.name}"
        if key in traces:
            activity[pop.name] = traces[key].reshape(batch, steps, -1).astype(np.int64)
        else:
            activity[pop.name] = np.zeros((batch, steps, pop.size), dtype=np.int64)
    return activity


def _cores_of(cores: list[_Core]) -> dict[str, list[_Core]]:
    """The cores of every population, in mapping order."""
    out: dict[str, list[_Core]] = {}
    for c in cores:
        out.setdefault(c.population, []).append(c)
    return out


def _split_ops(ops: np.ndarray, binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ACs, MACs) per sample from (batch, steps) operations: binary steps' are ACs, graded steps' MACs."""
    return np.where(binary, ops, 0).sum(axis=1), np.where(binary, 0, ops).sum(axis=1)


def reduce_run(program: Program, cores: list[_Core], run: _Run) -> Reductions:
    """Everything the profile counts from one emulated run, as mergeable :class:`Reductions`."""
    from neurodeploy import targets

    red = Reductions(run.batch, run.steps, run.input_steps, {}, {}, {})
    dest_cores = _reduce_connections(program, run, cores, red)
    _reduce_sources(program, run, cores, red)
    if program.target == "loihi2":
        red.per_sample.update(_loihi2_messages(targets.get("loihi2").costs, cores, run.activity, dest_cores, run.batch))
    elif program.target == "spinnaker":
        packets, traversals = _spinnaker_packets(cores, run.activity, dest_cores, run.batch)
        red.per_sample["spinnaker.packets"], red.per_sample["spinnaker.traversals"] = packets, traversals
        red.maxima["spinnaker.window_peaks"] = _window_peaks(program, run.activity)
    return red


def _reduce_connections(program: Program, run: _Run, cores: list[_Core], red: Reductions
                        ) -> dict[str, dict[int, np.ndarray]]:
    """Operations per connection and per core (and each core's busiest step); returns, per source,
    which of its neurons reach each core."""
    batch, steps = run.batch, run.steps
    cores_of = _cores_of(cores)
    ps = red.per_sample
    events = {c.index: np.zeros((batch, steps), np.int64) for c in cores}
    for c in cores:
        ps[f"core.acs.{c.index}"] = np.zeros(batch, np.int64)
        ps[f"core.macs.{c.index}"] = np.zeros(batch, np.int64)
    dest_cores: dict[str, dict[int, np.ndarray]] = {}
    for conn in program.connections:
        eff, stored = synapse_matrices(conn)
        x = run.activity[conn.source]
        nz = (x != 0).astype(np.int64)
        binary = np.all(np.isin(x, (-1, 0, 1)), axis=2)  # (batch, steps): NeuroBench's spiking test
        fan_out = np.asarray(eff.sum(axis=0)).ravel()  # synapses per source neuron
        acs, macs = _split_ops(nz @ fan_out, binary)
        ps[f"connection.acs.{conn.name}"], ps[f"connection.macs.{conn.name}"] = acs, macs
        for core in cores_of.get(conn.target, []):
            _count_on_core(program, conn, core, (eff, stored), (x, nz, binary), red, events[core.index], dest_cores)
    for c in cores:
        ev = events[c.index]
        ps[f"core.events.{c.index}"] = ev.sum(axis=1)
        red.maxima[f"core.peak_events.{c.index}"] = np.asarray(ev.max() if ev.size else 0, dtype=np.int64)
    return dest_cores


def _count_on_core(program: Program, conn: QConnection, core: _Core, matrices: tuple, values: tuple,
                   red: Reductions, events: np.ndarray, dest_cores: dict[str, dict[int, np.ndarray]]) -> None:
    """Add the operations of ``conn``'s synapses on ``core`` (``events``: its (batch, steps) events)
    and which source neurons reach it.

    ``matrices`` are the (effective, stored) synapses; ``values`` the source's values, their
    non-zero mask (int64) and the (batch, steps) steps whose values are all in {-1, 0, 1}.
    """
    (eff, stored), (x, nz, binary) = matrices, values
    rows = core.rows
    fan_core = np.asarray(eff[rows].sum(axis=0)).ravel()
    ops_core = nz @ fan_core
    acs, macs = _split_ops(ops_core, binary)
    red.per_sample[f"core.acs.{core.index}"] += acs
    red.per_sample[f"core.macs.{core.index}"] += macs
    if program.target == "spinnaker":  # words processed: a count c sends c spikes
        words = np.asarray(stored[rows].sum(axis=0)).ravel()
        events += np.clip(x, 0, None) @ words
    else:  # a graded spike is one message; one synaptic op per synapse
        events += ops_core
    dests = dest_cores.setdefault(conn.source, {})
    reach = fan_core > 0
    prev = dests.get(core.index)
    dests[core.index] = reach if prev is None else (prev | reach)


def _reduce_sources(program: Program, run: _Run, cores: list[_Core], red: Reductions) -> None:
    """Per sample: each input's events and value sum, each population's and core's spikes, each
    core's active updates and the overflow counters; whether an input held graded values."""
    ps = red.per_sample
    for name in program.inputs:
        x = run.activity[name]
        ps[f"input.events.{name}"] = (x != 0).sum(axis=(1, 2)).astype(np.int64)
        ps[f"input.value_sum.{name}"] = x.sum(axis=(1, 2)).astype(np.int64)
        red.flags[f"input.graded.{name}"] = bool(not np.all(np.isin(x, (-1, 0, 1))))
    for pop in program.populations:
        if pop.spiking:
            ps[f"population.spikes.{pop.name}"] = run.activity[pop.name].sum(axis=(1, 2)).astype(np.int64)
    active = _active_updates(program, run)
    for c in cores:
        x = run.activity[c.population][:, :, c.rows]
        if c.population in program.inputs:
            ps[f"core.spikes.{c.index}"] = np.clip(x, 0, None).sum(axis=(1, 2)).astype(np.int64)
        elif program.population(c.population).spiking:
            ps[f"core.spikes.{c.index}"] = x.sum(axis=(1, 2)).astype(np.int64)
        if c.population in active:
            ps[f"core.active.{c.index}"] = active[c.population][:, :, c.rows].sum(axis=(1, 2)).astype(np.int64)
    for key, value in run.traces.items():
        if key.startswith(("overflow.", "overflow_first.")):
            ps[key] = np.asarray(value)


def _connection_rows(program: Program, red: Reductions) -> _ConnectionCounts:
    """The profile's "connections" section: synapses from the program, operations from ``red``."""
    counts = _ConnectionCounts(rows={})
    for conn in program.connections:
        eff, stored = synapse_matrices(conn)
        fan_out = np.asarray(eff.sum(axis=0)).ravel()  # synapses per source neuron
        pairs = int((eff > 0).sum())
        counts.dense += conn.n_in * conn.n_out
        counts.nnz += pairs
        counts.rows[conn.name] = _connection_row(
            conn, fan_out, stored, pairs, red.per_sample[f"connection.acs.{conn.name}"],
            red.per_sample[f"connection.macs.{conn.name}"], red.samples, red.steps)
    return counts


def _connection_row(conn: QConnection, fan_out: np.ndarray, stored: scipy.sparse.csr_matrix, pairs: int,
                    acs: np.ndarray, macs: np.ndarray, batch: int, steps: int) -> dict:
    """One entry of the profile's "connections" section."""
    return {
        "source": conn.source, "target": conn.target, "kind": conn.kind, "recurrent": conn.recurrent,
        "n_in": conn.n_in, "n_out": conn.n_out, "synapses": int(fan_out.sum()),
        "stored_synapses": int(stored.sum()), "dense_size": conn.n_in * conn.n_out,
        "connection_sparsity": 1.0 - pairs / max(conn.n_in * conn.n_out, 1),
        "fan_out": {"min": int(fan_out.min()) if fan_out.size else 0, "max": int(fan_out.max()) if fan_out.size else 0,
                    "mean": float(fan_out.mean()) if fan_out.size else 0.0},
        "effective_acs": _counts(acs), "effective_macs": _counts(macs),
        "dense_synops": _counts(np.full(batch, steps * conn.n_in * conn.n_out, dtype=np.int64)),
        "delay": int(conn.attrs.get("delay", 0)),
        "per_synapse_delays": "delay" in conn.arrays,
    }


def _per_sample_sum(rows: Iterable[dict], key: str, batch: int) -> np.ndarray:
    """The sum over ``rows`` of their ``key`` counts, per sample."""
    return sum((r[key]["per_sample"] for r in rows), start=np.zeros(batch, np.int64))


def _population_rows(program: Program, red: Reductions, conn_rows: dict, cores: list[_Core], dt: float) -> dict:
    """The profile's "populations" section: spikes, rates, updates and incoming operations."""
    batch, steps = red.samples, red.steps
    cores_of = _cores_of(cores)
    overflowed = _overflow_summary(program, red)
    pops = {}
    for pop in program.populations:
        spikes = red.per_sample[f"population.spikes.{pop.name}"] if pop.spiking else np.zeros(batch, np.int64)
        incoming = [c for c in conn_rows.values() if c["target"] == pop.name]
        entry = {
            "model": pop.model, "kind": pop.kind, "shape": list(pop.shape), "neurons": pop.size,
            "spiking": pop.spiking, "latency": pop.latency,
            "cores": [c.index for c in cores_of.get(pop.name, [])],
            "spikes": _counts(spikes),
            "neuron_updates": _counts(np.full(batch, pop.size * steps, dtype=np.int64)),
            "effective_acs": _counts(np.asarray(_per_sample_sum(incoming, "effective_acs", batch))),
            "effective_macs": _counts(np.asarray(_per_sample_sum(incoming, "effective_macs", batch))),
        }
        entry.update(_rates(spikes, pop.size, steps, dt, pop.spiking))
        entry["overflow"] = None if overflowed is None else overflowed.get(pop.name, {})
        pops[pop.name] = entry
    return pops


def _overflow_summary(program: Program, red: Reductions) -> dict | None:
    """Per population, the overflow counters of the run (emulator/overflow.py); None where the
    traces came without them (a run elsewhere)."""
    from neurodeploy.emulator import overflow

    counters = {k: v for k, v in red.per_sample.items() if k.startswith(("overflow.", "overflow_first."))}
    if not counters:
        return None
    return overflow.summarize(program, counters)


def _input_rows(program: Program, red: Reductions) -> dict:
    """The profile's "inputs" section: events and value sums per input."""
    return {name: {"neurons": int(np.prod(shape)), "events": _counts(red.per_sample[f"input.events.{name}"]),
                   "value_sum": _counts(red.per_sample[f"input.value_sum.{name}"]),
                   "graded": red.flags[f"input.graded.{name}"]}
            for name, shape in program.inputs.items()}


def _active_updates(program: Program, run: _Run) -> dict[str, np.ndarray]:
    """Loihi: active neuron updates (state non-zero after the step, or a spike), per population."""
    active = {}
    if _records_state(program):
        for pop in program.populations:
            u = run.traces[f"u.{pop.name}"].reshape(run.batch, run.steps, -1)
            v = run.traces[f"v.{pop.name}"].reshape(run.batch, run.steps, -1)
            active[pop.name] = ((u != 0) | (v != 0) | (run.activity[pop.name] != 0))
    return active


def _core_row(program: Program, target: Any, c: _Core, red: Reductions, counts: _ConnectionCounts) -> dict:
    """One entry of the profile's "cores" section."""
    row: dict[str, Any] = {"core": c.index, "chip": c.chip, "population": c.population,
                           "start": c.start, "stop": c.stop, "tile": c.tile, "label": c.label, "neurons": c.size}
    is_input = c.population in program.inputs
    ps = red.per_sample
    spikes = ps.get(f"core.spikes.{c.index}")
    row["input"] = is_input
    row["spikes"] = _counts(spikes if spikes is not None else np.zeros(red.samples, np.int64))
    if not is_input:
        row["neuron_updates"] = _counts(np.full(red.samples, c.size * red.steps, dtype=np.int64))
        if f"core.active.{c.index}" in ps:
            row["active_neuron_updates"] = _counts(ps[f"core.active.{c.index}"])
        row["effective_acs"] = _counts(ps[f"core.acs.{c.index}"])
        row["effective_macs"] = _counts(ps[f"core.macs.{c.index}"])
        row["synaptic_events"] = _counts(ps[f"core.events.{c.index}"])
        row["peak_events_per_step"] = int(red.maxima[f"core.peak_events.{c.index}"])
    row["footprint_bits"] = _footprint(program, c, counts.rows, is_input)
    row["utilisation"] = _utilisation(c, target)
    return row


def _totals(program: Program, red: Reductions, pops: dict, counts: _ConnectionCounts, chip_rows: list[dict],
            n_cores: int, chips_used: int, dt: float) -> dict:
    """The profile's "total" section, over every population, connection and chip."""
    batch, steps = red.samples, red.steps
    conns = counts.rows.values()
    spiking = [p for p in program.populations if p.spiking]
    spikes_all = _per_sample_sum((pops[p.name] for p in spiking), "spikes", batch)
    neurons_spiking = sum(p.size for p in spiking)
    acs_all = _per_sample_sum(conns, "effective_acs", batch)
    macs_all = _per_sample_sum(conns, "effective_macs", batch)
    dense_all = _per_sample_sum(conns, "dense_synops", batch)
    updates_all = np.full(batch, sum(p.size for p in program.populations) * steps, dtype=np.int64)
    totals = {
        "neurons": sum(p.size for p in program.populations),
        "spikes": _counts(np.asarray(spikes_all)),
        "effective_acs": _counts(np.asarray(acs_all)),
        "effective_macs": _counts(np.asarray(macs_all)),
        "synaptic_operations": _counts(np.asarray(acs_all) + np.asarray(macs_all)),
        "dense_synops": _counts(np.asarray(dense_all)),
        "neuron_updates": _counts(updates_all),
        "activation_sparsity": (1.0 - float(np.sum(spikes_all)) / (neurons_spiking * steps * batch)
                                if neurons_spiking else None),
        "connection_sparsity": 1.0 - counts.nnz / counts.dense if counts.dense else None,
        "synapses": sum(c["synapses"] for c in conns),
        "footprint_bits": _sum_dicts([r["footprint_bits"] for r in chip_rows]),
        "cores": n_cores, "chips": chips_used,
    }
    totals.update(_rates(np.asarray(spikes_all), neurons_spiking, steps, dt, bool(neurons_spiking)))
    return totals


def _cost_sections(program: Program, target: Any, cores: list[_Core], core_rows: list[dict], red: Reductions,
                   dt: float, time_scale_factor: int | None) -> dict:
    """The target's energy/latency estimate ("cost"), after SpiNNaker's real-time check ("realtime")."""
    if program.target == "loihi2":
        return {"cost": _loihi2_cost(target, cores, core_rows, red)}
    if program.target == "spinnaker":
        rt = _spinnaker_realtime(target, cores, red, dt, program)
        tsf = time_scale_factor or rt["min_time_scale_factor"]["conservative"]
        return {"realtime": rt, "cost": _spinnaker_cost(target, cores, red, dt, tsf)}
    return {"cost": {"target": program.target, "model": None,
                     "label": f"no cost model for target '{program.target}' (a generic integer profile)",
                     "assumptions": [], "constants": {}}}


DEFINITIONS = {
    "spikes": "spikes emitted by spiking populations (inputs are listed separately as events)",
    "rate_per_neuron_step": "spikes / (neurons x steps)",
    "rate_hz": "rate_per_neuron_step / dt",
    "effective_acs": "NeuroBench Effective_ACs: per source value at a step whose values are all in {-1,0,1}, "
                     "one accumulate per non-zero value per synapse with a non-zero deployed weight",
    "effective_macs": "NeuroBench Effective_MACs: as effective_acs for steps with graded values (any |x| > 1): "
                      "one MAC per non-zero value per synapse",
    "dense_synops": "NeuroBench Dense: steps x n_in x n_out per connection (every weight, every step)",
    "neuron_updates": "neurons x steps (every neuron is updated every step)",
    "activation_sparsity": "NeuroBench ActivationSparsity: 1 - spikes / (neurons x steps x samples), spiking populations",
    "connection_sparsity": "NeuroBench ConnectionSparsity over the full dense (n_out x n_in) matrices of the deployed "
                           "integer weights (conv materialized): zero entries / all entries",
    "synaptic_events": "target view: loihi2 one synaptic op per synapse per non-zero value; spinnaker one word "
                       "processed per stored synapse (zero-weight words included) per spike, a count c being c spikes "
                       "(sPyNNaker's Total_pre_synaptic_events)",
    "footprint_bits": "weights at the target's width, neuron state and routing, per the mapper's memory model",
    "utilisation": "use / limit per core, for every limit the mapper checked (and neurons per core)",
    "overflow": "per population, the emulator's overflow counters that counted: kind -> events (neuron x step) "
                "over all samples, samples with any, first step over all samples (padded grid); {} none; null "
                "not counted (emulator/overflow.py)",
}


def _pad_steps(program: Program) -> int:
    extra = max((p.latency for p in program.populations), default=0)
    if program.attrs.get("v_recorded") == "before_update":
        extra += 1
    return extra


def _counts(per_sample: np.ndarray) -> dict:
    per_sample = np.asarray(per_sample, dtype=np.int64)
    return {"total": int(per_sample.sum()), "per_sample": per_sample,
            "mean_per_sample": float(per_sample.mean()) if per_sample.size else 0.0}


def _rates(spikes: np.ndarray, neurons: int, steps: int, dt: float, spiking: bool) -> dict:
    if not spiking or neurons == 0 or steps == 0:
        return {"rate_per_neuron_step": None, "rate_hz": None, "activation_sparsity": None}
    r = float(np.sum(spikes)) / (neurons * steps * max(len(spikes), 1))
    return {"rate_per_neuron_step": r, "rate_hz": r / dt, "activation_sparsity": 1.0 - r}


def _sum_dicts(rows: list[dict]) -> dict:
    out: dict[str, int] = {}
    for r in rows:
        for k, v in r.items():
            out[k] = out.get(k, 0) + int(v)
    return out


# ------------------------------------------------------------------ footprint and utilisation

def _incoming(program: Program, conn_rows: dict, core: _Core) -> tuple[int, int, int]:
    """(effective synapses, stored synapses, distinct source neurons) of a core's slice."""
    eff_total = stored_total = sources = 0
    for conn in program.connections:
        if conn.target != core.population:
            continue
        eff, stored = synapse_matrices(conn)
        rows = core.rows
        eff_total += int(eff[rows].sum())
        stored_total += int(stored[rows].sum())
        sources += int(np.count_nonzero(np.asarray(stored[rows].sum(axis=0)).ravel()))
    return eff_total, stored_total, sources


def _footprint(program: Program, core: _Core, conn_rows: dict, is_input: bool) -> dict:
    if is_input:
        return {"weights": 0, "synapse_metadata": 0, "state": 0, "routing": 0}
    n = core.size
    eff, stored, sources = _incoming(program, conn_rows, core)
    if program.target == "spinnaker":
        from neurodeploy.targets import spinnaker as sp

        ring = sp.ring_buffer_bytes(n, int(core.usage.get("delay_steps", 1)))
        return {"weights": stored * sp.WEIGHT_BITS, "synapse_metadata": stored * (8 * sp.WORD_BYTES - sp.WEIGHT_BITS),
                "state": (n * sp.NEURON_BYTES + ring + sp.STACK_BYTES) * 8,
                "routing": sources * sp.ROW_HEADER_BYTES * 8}
    if program.target == "loihi2":
        from neurodeploy.targets import loihi2 as lo

        kept = int(core.usage.get("stored_weights", eff))  # conv kernels once per core: the mapper's estimate
        return {"weights": min(eff, kept) * lo.WEIGHT_BITS, "synapse_metadata": 0,
                "state": int(n * lo.NEURON_STATE_BYTES * 8), "routing": int(sources * lo.AXON_BYTES * 8)}
    fmt = program.attrs.get("format", {})
    wbits = int(fmt.get("weight_bits", 8))
    sbits = int(fmt.get("state_bits", 24))
    return {"weights": eff * wbits, "synapse_metadata": 0, "state": n * 2 * sbits, "routing": 0}


def _utilisation(core: _Core, target) -> dict:
    out = {"neurons": core.size / target.neurons_per_core}
    for key, lim in target.core_limits.items():
        if key in core.usage and lim.size:
            out[key] = float(core.usage[key]) / float(lim.size)
    return out


def _chips(core_rows: list[dict], target) -> list[dict]:
    chips: dict[int, dict] = {}
    for r in core_rows:
        c = chips.setdefault(r["chip"], {"chip": r["chip"], "cores": 0, "neurons": 0, "spikes": 0,
                                         "synaptic_operations": 0, "footprint_bits": {}})
        c["cores"] += 1
        c["neurons"] += r["neurons"] if not r["input"] else 0
        c["spikes"] += r["spikes"]["total"] if not r["input"] else 0
        if not r["input"]:
            c["synaptic_operations"] += r["effective_acs"]["total"] + r["effective_macs"]["total"]
        c["footprint_bits"] = _sum_dicts([c["footprint_bits"], r["footprint_bits"]])
    out = []
    for chip in sorted(chips):
        c = chips[chip]
        c["core_utilisation"] = c["cores"] / target.cores_per_chip
        if target.name == "spinnaker":
            from neurodeploy.targets import spinnaker as sp

            entries = 2 * c["cores"]  # the mapper's estimate: one entry per slice sending to or through the chip, x2
            c["footprint_bits"]["router"] = entries * spinnaker_target.ROUTER_ENTRY_BITS
            c["router_entries_estimate"] = entries
            c["router_utilisation"] = entries / sp.ROUTER_ENTRIES
        out.append(c)
    return out


# ------------------------------------------------------------------ cost models

def _source_core(cores: list[_Core], name: str) -> np.ndarray | None:
    """Core index of every neuron of population ``name`` (None for an off-chip input)."""
    owned = [c for c in cores if c.population == name]
    if not owned:
        return None
    size = max(c.stop for c in owned)  # a tile's stop bounds its span; the last neuron's slice reaches the end
    out = np.full(size, -1, dtype=np.int64)
    for c in owned:
        out[c.rows] = c.index
    return out


def _tile_xy(k: dict, core: Any) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the tile of ``core`` (cores numbered tile by tile, tiles row-major in the mesh)."""
    tile = np.asarray(core) // int(k["cores_per_tile"])
    width = int(k["mesh_width_tiles"])
    return tile % width, tile // width


def _loihi2_messages(k: dict, cores: list[_Core], activity: dict[str, np.ndarray],
                     dest_cores: dict[str, dict[int, np.ndarray]], batch: int) -> dict[str, np.ndarray]:
    """Per sample: spike messages (one per value sent and destination core), those sent from
    cores, the tile hops they travel, and the messages each core receives."""
    messages = np.zeros(batch)
    from_cores = np.zeros(batch)
    hop_sum = np.zeros(batch)
    received = {c.index: np.zeros(batch) for c in cores}
    for source, dests in dest_cores.items():
        x = (activity[source] != 0).sum(axis=1)  # (batch, n): values sent per source neuron
        src_core = _source_core(cores, source)
        for core, reach in dests.items():
            sent = x[:, reach].sum(axis=1)
            messages += sent
            received[core] += sent
            if src_core is None:  # input from the host/IO: enters at the destination tile
                continue
            from_cores += sent
            sx, sy = _tile_xy(k, src_core[:reach.size][reach])
            dx, dy = _tile_xy(k, core)
            hops = np.abs(sx - dx) + np.abs(sy - dy)
            hop_sum += x[:, reach] @ hops
    out = {"loihi2.messages": messages, "loihi2.from_cores": from_cores, "loihi2.tile_hops": hop_sum}
    out.update({f"loihi2.received.{core}": v for core, v in received.items()})
    return out


def _loihi2_cost(target: Any, cores: list[_Core], core_rows: list[dict], red: Reductions) -> dict:
    k = target.costs
    per_tile = int(k["cores_per_tile"])
    width = int(k["mesh_width_tiles"])
    batch, steps = red.samples, red.steps
    synops = np.zeros(batch)
    active = np.zeros(batch)
    idle = np.zeros(batch)
    for r in core_rows:
        if r["input"]:
            continue
        synops += np.asarray(r["effective_acs"]["per_sample"]) + np.asarray(r["effective_macs"]["per_sample"])
        act = np.asarray(r["active_neuron_updates"]["per_sample"])
        active += act
        idle += np.asarray(r["neuron_updates"]["per_sample"]) - act
    ps = red.per_sample
    messages, from_cores, hop_sum = ps["loihi2.messages"], ps["loihi2.from_cores"], ps["loihi2.tile_hops"]
    received = {r["core"]: ps[f"loihi2.received.{r['core']}"] for r in core_rows}
    e_syn = synops * k["synaptic_op_pj"] * 1e-12
    e_neuron = (active * k["neuron_update_active_pj"] + idle * k["neuron_update_idle_pj"]) * 1e-12
    e_spike = (messages * k["spike_in_tile_pj"] + hop_sum * k["tile_hop_pj"]) * 1e-12
    energy = e_syn + e_neuron + e_spike
    tiles = len({c.index // per_tile for c in cores})
    (b_lo, b_hi), (t_lo, t_hi) = k["barrier_sync_ns"], k["barrier_sync_tiles"]
    t = min(max(tiles, t_lo), t_hi)
    barrier_ns = b_lo + (b_hi - b_lo) * (t - t_lo) / (t_hi - t_lo)
    latency = steps * barrier_ns * 1e-9
    assumptions = [
        "UNCALIBRATED for Loihi 2: per-operation energies are Loihi 1's (Davies et al. 2018, Table 2, "
        "pre-silicon simulation at 0.75 V); Loihi 2 publishes none",
        "dynamic energy only: static/leakage power is not included",
        "synaptic ops: one per synapse with a non-zero weight per non-zero presynaptic value (graded values cost "
        "the same as binary spikes)",
        "neuron update is 'active' when the neuron's u or v is non-zero after the step or it spiked; 'inactive' otherwise",
        f"spike energy: one message per (spike, destination core) = {k['spike_in_tile_pj']} pJ + "
        f"{k['tile_hop_pj']} pJ x tile hops; {per_tile} cores per tile, tiles row-major in a mesh {width} tiles "
        "wide (assumption); inputs enter at the destination tile (host/IO energy not modelled)",
        f"latency: LOWER BOUND = steps x barrier sync only ({barrier_ns:.0f} ns for {tiles} tile(s), interpolated "
        f"linearly in tiles between {b_lo} ns at {t_lo} and {b_hi} ns at {t_hi}); per-operation times not modelled",
    ]
    return {
        "target": "loihi2", "model": "Loihi 1 per-operation energies (Davies et al. 2018)",
        "calibrated": False, "label": "UNCALIBRATED estimate for Loihi 2 (Loihi 1 per-op figures)",
        "constants": {key: k[key] for key in ("synaptic_op_pj", "neuron_update_active_pj", "neuron_update_idle_pj",
                                             "spike_in_tile_pj", "tile_hop_pj", "barrier_sync_ns", "cores_per_tile",
                                             "mesh_width_tiles")},
        "sources": dict(k.get("sources", {})),
        "assumptions": assumptions,
        "counts_per_sample": {"synaptic_ops": synops.astype(np.int64), "active_neuron_updates": active.astype(np.int64),
                              "inactive_neuron_updates": idle.astype(np.int64), "spike_messages": messages.astype(np.int64),
                              "spike_messages_from_cores": from_cores.astype(np.int64),
                              "tile_hops": hop_sum.astype(np.int64)},
        "spike_messages_in_per_core": {str(k): _counts(v) for k, v in received.items()},
        "energy_j": _summary(energy), "components_j": {"synaptic_ops": _summary(e_syn),
                                                       "neuron_updates": _summary(e_neuron),
                                                       "spikes": _summary(e_spike)},
        "latency_s": _summary(np.full(batch, latency)), "latency_kind": "lower bound (barrier sync only)",
        "barrier_sync_ns_per_step": barrier_ns, "tiles": tiles, "steps": steps,
    }


def _summary(per_sample: np.ndarray) -> dict:
    per_sample = np.asarray(per_sample, dtype=np.float64)
    return {"per_inference": float(per_sample.mean()) if per_sample.size else 0.0,
            "per_sample": per_sample, "total": float(per_sample.sum())}


def _spinnaker_packets(cores, activity, dest_cores, batch) -> tuple[np.ndarray, np.ndarray]:
    """(multicast packets sent, router traversals) per sample: one packet per spike of a neuron with
    synapses; one traversal at the source chip plus one per other chip holding a destination core."""
    chip_of = {c.index: c.chip for c in cores}
    packets = np.zeros(batch)
    traversals = np.zeros(batch)
    for source, dests in dest_cores.items():
        x = np.clip(activity[source], 0, None).sum(axis=1)  # (batch, n): spikes (counts) per neuron
        n = x.shape[1]
        any_dest = np.zeros(n, dtype=bool)
        for reach in dests.values():
            any_dest |= reach
        src_core = _source_core(cores, source)
        src_chip = np.zeros(n, dtype=np.int64) if src_core is None else np.array(
            [chip_of.get(int(c), 0) for c in src_core[:n]])
        extra = np.zeros(n)
        for chip in sorted({chip_of[c] for c in dests}):
            reach_chip = np.zeros(n, dtype=bool)
            for core, reach in dests.items():
                if chip_of[core] == chip:
                    reach_chip |= reach
            extra += reach_chip & (src_chip != chip)
        sent = x[:, any_dest].sum(axis=1)
        packets += sent
        traversals += sent + x @ extra
    return packets, traversals


def _spinnaker_cost(target: Any, cores: list[_Core], red: Reductions, dt: float, tsf: int) -> dict:
    k = target.costs
    batch, steps = red.samples, red.steps
    wall = steps * dt * tsf
    chips_active = len({c.chip for c in cores})
    n_cores = len(cores)
    packets, traversals = red.per_sample["spinnaker.packets"], red.per_sample["spinnaker.traversals"]
    e_packets = traversals * k["packet_nj"] * 1e-9
    e_chips = np.full(batch, chips_active * k["idle_chip_w"] * wall)
    e_cores = np.full(batch, n_cores * k["active_core_w"] * wall)
    e_board = np.full(batch, k["spinn5_idle_w"] * wall)
    e_box = np.full(batch, k["spinn5_box_w"] * wall)
    energy_cores = e_chips + e_cores + e_packets
    energy_board = e_board + e_cores + e_packets
    assumptions = [
        "sPyNNaker 7.4.1's energy model (SpiNNFrontEndCommon compute_energy_used + SpiNNMachine version constants); "
        "the constants are measured board figures, the model itself is an estimate",
        f"wall time per inference = steps x dt x time_scale_factor = {steps} x {dt * 1e3:g} ms x {tsf} = {wall * 1e3:g} ms",
        "every placed core (inputs' spike sources included) counted active for the whole run "
        "(sPyNNaker's assumption without energy-monitor cores)",
        f"one multicast packet ({k['packet_bits']} bits x {k['router_bit_pj']} pJ = {k['packet_nj']} nJ) per spike of a "
        "neuron with synapses (a count c is c spikes), counted at the source chip's router and once at every other chip "
        "holding a destination core (a lower bound: intermediate routers are not counted)",
        f"'active chips and cores' = chips x {k['idle_chip_w']} W + cores x {k['active_core_w']} W + packets "
        "(sPyNNaker's exec_energy_cores_j); 'whole board' replaces the chips by a SpiNN-5 board's idle "
        f"{k['spinn5_idle_w']} W (exec_energy_boards_j); a boxed board adds {k['spinn5_box_w']} W",
        "loading, mapping and data extraction energy are not included",
    ]
    return {
        "target": "spinnaker", "model": "sPyNNaker 7.4.1 energy model", "calibrated": bool(k.get("calibrated")),
        "label": "estimate from sPyNNaker's energy model (measured SpiNN-5 constants)",
        "constants": {key: k[key] for key in ("idle_chip_w", "active_core_w", "router_bit_pj", "packet_nj",
                                             "packet_payload_nj", "spinn5_idle_w", "spinn5_box_w")},
        "sources": dict(k.get("sources", {})),
        "assumptions": assumptions,
        "time_scale_factor": int(tsf), "wall_time_s": wall, "chips_active": chips_active, "cores_active": n_cores,
        "counts_per_sample": {"multicast_packets": packets.astype(np.int64),
                              "router_traversals": traversals.astype(np.int64)},
        "energy_j": _summary(energy_cores),
        "energy_whole_board_j": _summary(energy_board),
        "energy_boxed_board_j": _summary(energy_board + e_box),
        "components_j": {"chips_idle": _summary(e_chips), "cores_active": _summary(e_cores),
                         "packets": _summary(e_packets)},
        "latency_s": _summary(np.full(batch, wall)), "latency_kind": "wall time (real time x time_scale_factor)",
        "steps": steps,
    }


def _spinnaker_realtime(target: Any, cores: list[_Core], red: Reductions, dt: float, program: Program) -> dict:
    lo, hi = target.costs["events_per_ms_per_core"]
    dt_ms = dt * 1e3
    rows = []
    peak_all = 0
    cells = red.samples * red.steps  # (sample, step) pairs
    for c in cores:
        if c.population in program.inputs:
            continue
        peak = int(red.maxima[f"core.peak_events.{c.index}"])
        peak_all = max(peak_all, peak)
        total = int(red.per_sample[f"core.events.{c.index}"].sum())
        rows.append({"core": c.index, "population": c.population, "neurons": c.size,
                     "peak_events_per_step": peak, "peak_events_per_ms": peak / dt_ms,
                     "mean_events_per_ms": float(total) / cells / dt_ms if cells else 0.0,
                     "fits_conservative": peak / dt_ms <= lo, "fits_optimistic": peak / dt_ms <= hi})
    need = {"conservative": max(1, math.ceil(peak_all / (dt_ms * lo))) if peak_all else 1,
            "optimistic": max(1, math.ceil(peak_all / (dt_ms * hi))) if peak_all else 1}
    return {
        "budget_events_per_ms": [lo, hi], "dt_ms": dt_ms,
        "source": target.costs.get("sources", {}).get("events_per_ms_per_core", "Rhodes et al. 2018"),
        "peak_events_per_ms": peak_all / dt_ms, "cores": rows,
        "fits_real_time": {"conservative": need["conservative"] == 1, "optimistic": need["optimistic"] == 1},
        "min_time_scale_factor": need,
        "max_neurons_per_core_real_time": _max_neurons_per_core(red.maxima["spinnaker.window_peaks"], dt_ms, (lo, hi)),
        "note": "peak = the busiest step of any sample; events are stored synaptic words processed "
                "(sPyNNaker's Total_pre_synaptic_events); neuron-update time is not counted",
    }


def _window_peaks(program: Program, activity: dict[str, np.ndarray]) -> np.ndarray:
    """Per n = 1..MAX_NEURONS_PER_CORE (index n - 1): the most stored synaptic words one step brings
    to a slice of n consecutive neurons of a population (slices starting at multiples of n), over
    every sample and step of ``activity``. Maxima, so shards merge by taking the largest."""
    from neurodeploy.targets import spinnaker as sp

    per_neuron: dict[str, np.ndarray] = {}  # (batch, steps, n) events per target neuron
    for conn in program.connections:
        _, stored = synapse_matrices(conn)
        x = np.clip(activity[conn.source], 0, None)
        b, t, n = x.shape
        ev = np.asarray((stored @ x.reshape(b * t, n).T).T).reshape(b, t, -1)
        per_neuron[conn.target] = per_neuron.get(conn.target, 0) + ev
    peaks = np.zeros(sp.MAX_NEURONS_PER_CORE, dtype=np.int64)
    for ev in per_neuron.values():
        cs = np.concatenate([np.zeros(ev.shape[:2] + (1,), dtype=np.int64), np.cumsum(ev, axis=2)], axis=2)
        size = cs.shape[2] - 1
        worst = []
        for n in range(1, min(size, sp.MAX_NEURONS_PER_CORE) + 1):
            starts = np.arange(0, size, n)
            stops = np.minimum(starts + n, size)
            worst.append(int((cs[:, :, stops] - cs[:, :, starts]).max()))
        if not worst:  # an empty population
            continue
        worst += worst[-1:] * (sp.MAX_NEURONS_PER_CORE - len(worst))  # n >= size: the whole population
        peaks = np.maximum(peaks, np.asarray(worst, dtype=np.int64))
    return peaks


def _max_neurons_per_core(peaks: np.ndarray, dt_ms: float, budget: tuple) -> dict:
    """Largest neurons-per-core (<= 256) whose busiest slice stays inside the budget at time_scale_factor 1
    (``peaks``: :func:`_window_peaks` over every sample)."""
    out = {}
    for label, limit in zip(("conservative", "optimistic"), budget):
        best = None  # None: even one neuron per core is over budget (raise time_scale_factor)
        for n in range(len(peaks), 0, -1):
            if float(peaks[n - 1]) / dt_ms <= limit:
                best = n
                break
        out[label] = best
    return out


# ------------------------------------------------------------------ text output

def format_profile(p: dict) -> list[str]:
    """Human-readable summary with the cost assumptions printed next to the numbers."""
    t = p["total"]
    grid = (f"{p['input_steps']} input + {p['steps'] - p['input_steps']} latency steps, as `run --align float` runs "
            f"them" if p["padded"] else "the input steps only, as `run --align target` runs them")
    lines = [f"profile of {p['artifact']['source']} on {p['target']} ({p['samples']} sample(s) x {p['steps']} steps "
             f"on the target's grid: {grid}; dt {p['dt_s'] * 1e3:g} ms)"]
    lines.append(f"  total per sample: {t['spikes']['mean_per_sample']:.1f} spikes, "
                 f"{t['effective_acs']['mean_per_sample']:.0f} Effective_ACs, "
                 f"{t['effective_macs']['mean_per_sample']:.0f} Effective_MACs, "
                 f"{t['neuron_updates']['mean_per_sample']:.0f} neuron updates")
    if t["rate_hz"] is not None:
        lines.append(f"  spike rate {t['rate_per_neuron_step']:.4f} per neuron per step ({t['rate_hz']:.1f} Hz); "
                     f"activation sparsity {t['activation_sparsity']:.4f}; connection sparsity {t['connection_sparsity']:.4f}")
    fb = t["footprint_bits"]
    lines.append(f"  footprint {sum(fb.values()) / 8 / 1024:.1f} KiB (" + ", ".join(
        f"{k} {v / 8 / 1024:.1f} KiB" for k, v in fb.items()) + f") on {t['cores']} core(s), {t['chips']} chip(s)")
    for name, e in p["populations"].items():
        rate = f", {e['rate_hz']:.1f} Hz" if e["rate_hz"] is not None else ""
        lines.append(f"  population {name}: {e['neurons']} neurons on core(s) {e['cores']}, "
                     f"{e['spikes']['mean_per_sample']:.1f} spikes/sample{rate}, "
                     f"{e['effective_acs']['mean_per_sample'] + e['effective_macs']['mean_per_sample']:.0f} synops in/sample")
    for r in p["cores"]:
        util = ", ".join(f"{k} {100 * v:.1f}%" for k, v in r["utilisation"].items())
        lines.append(f"  core {r['core']} (chip {r['chip']}, {core_slices.slice_label(r)}): {util}")
    c = p["cost"]
    if c.get("model"):
        lines.append(f"  cost model: {c['model']} -- {c['label']}")
        lines.append(f"    energy per inference {c['energy_j']['per_inference'] * 1e6:.4g} uJ (" + ", ".join(
            f"{k} {v['per_inference'] * 1e6:.4g} uJ" for k, v in c["components_j"].items()) + ")")
        if "energy_whole_board_j" in c:
            lines.append(f"    whole SpiNN-5 board {c['energy_whole_board_j']['per_inference'] * 1e3:.4g} mJ, "
                         f"boxed {c['energy_boxed_board_j']['per_inference'] * 1e3:.4g} mJ")
        lines.append(f"    latency per inference {c['latency_s']['per_inference'] * 1e6:.4g} us ({c['latency_kind']})")
        lines += [f"    assumption: {a}" for a in c["assumptions"]]
    else:
        lines.append(f"  cost model: {c['label']}")
    rt = p.get("realtime")
    if rt:
        lines.append(f"  real time: peak {rt['peak_events_per_ms']:.0f} synaptic events/ms/core against "
                     f"{rt['budget_events_per_ms'][0]}-{rt['budget_events_per_ms'][1]}; smallest time_scale_factor "
                     f"{rt['min_time_scale_factor']['conservative']} (conservative) / "
                     f"{rt['min_time_scale_factor']['optimistic']} (optimistic); neurons per core at factor 1: "
                     f"{rt['max_neurons_per_core_real_time']['conservative']} / "
                     f"{rt['max_neurons_per_core_real_time']['optimistic']}")
    for row in p.get("comparison", []):
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.3g}"
        measured = "n/a" if row["measured"] is None else f"{row['measured']:.4g}"
        predicted = "n/a" if row["predicted"] is None else f"{row['predicted']:.4g}"
        lines.append(f"  measured {row['quantity']} ({row['scope']}): {measured} vs predicted {predicted} "
                     f"{row['unit']}, ratio {ratio} [{row['source']}]")
    return lines
