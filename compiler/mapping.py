"""Split populations into core slices, place them on cores and chips, and check every limit.

Each target's per-core cost model is a function from a slice (its neurons, their fan-in
synapses, distinct source neurons, output axons) to resource use; the mapper shrinks slices
until every core limit holds, then fills chips in order. An impossible mapping raises an
error naming the population, the limit, the value and the limit's size.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse

from neurodeploy.program import Program, QConnection
from neurodeploy.compiler.targets import Target
from neurodeploy.compiler.targets import loihi2 as loihi2_data
from neurodeploy.compiler.targets import spinnaker as spinnaker_data
from neurodeploy.errors import NeurodeployError


class MappingError(NeurodeployError):
    """The program cannot be placed on the target within its limits."""


@dataclass
class CoreSlice:
    core: int
    chip: int
    population: str
    start: int  # first neuron (flat index) of the slice
    stop: int
    usage: dict[str, float]  # resource -> amount used


@dataclass
class Mapping:
    target: str
    cores: list[CoreSlice]
    chips_used: int
    chips_available: int
    cores_per_chip: int
    limits: list[dict]  # every limit with value, size, margin (for `check --json`)
    fits: bool

    def as_dict(self) -> dict:
        return {
            "target": self.target, "chips_used": self.chips_used, "chips_available": self.chips_available,
            "cores_used": len(self.cores), "cores_per_chip": self.cores_per_chip, "fits": self.fits,
            "cores": [asdict(c) for c in self.cores], "limits": self.limits,
        }


@dataclass
class _Fan:
    """Per target neuron: incoming synapses; per connection: its matrix (for distinct sources)."""

    synapses: np.ndarray
    matrices: list[tuple[QConnection, scipy.sparse.csr_matrix | None]] = field(default_factory=list)
    max_delay: int = 0


def _fan_in(program: Program, name: str, size: int) -> _Fan:
    fan = _Fan(np.zeros(size, dtype=np.int64))
    for c in program.connections:
        if c.target != name:
            continue
        if c.kind == "dense":
            fan.synapses += np.count_nonzero(c.arrays["weight"], axis=1)
            fan.matrices.append((c, None))
        elif c.kind == "sparse":
            indptr = c.arrays["indptr"]
            counts = np.diff(indptr)
            nz = c.arrays["weight"] != 0
            if not nz.all():  # count only the non-zero weights of each row (rows may be empty)
                rows = np.repeat(np.arange(counts.size), counts)
                counts = np.bincount(rows[nz], minlength=counts.size)
            fan.synapses += counts
            matrix = scipy.sparse.csr_matrix((np.ones(len(c.arrays["indices"]), dtype=np.int8),
                                              c.arrays["indices"], indptr), shape=(c.n_out, c.n_in))
            fan.matrices.append((c, matrix))
        else:  # conv: fan-in per output neuron is the kernel volume per group
            kernel = c.arrays["weight"]
            fan.synapses += int(np.prod(kernel.shape[1:]))
            fan.matrices.append((c, None))
        delays = c.arrays.get("delay")
        fan.max_delay = max(fan.max_delay, int(c.attrs.get("delay", 0)), int(delays.max()) if delays is not None and delays.size else 0)
    return fan


def _distinct_sources(fan: _Fan, start: int, stop: int) -> int:
    total = 0
    for c, matrix in fan.matrices:
        if matrix is None:
            total += c.n_in  # dense and conv: every source may reach the slice (upper bound for conv)
        else:
            total += int(np.unique(matrix.indices[matrix.indptr[start]:matrix.indptr[stop]]).size)
    return total


# ------------------------------------------------------------------ per-target core models

def _loihi2_usage(neurons: int, synapses: int, sources: int, max_delay: int) -> dict[str, float]:
    memory = (synapses * loihi2_data.SYNAPSE_BYTES + neurons * loihi2_data.NEURON_STATE_BYTES
              + sources * loihi2_data.AXON_BYTES)
    return {"neurons": neurons, "memory_bytes": memory, "fan_in_axons": sources, "synapses": synapses}


def _spinnaker_usage(neurons: int, synapses: int, sources: int, max_delay: int) -> dict[str, float]:
    slots = min(spinnaker_data.DELAY_SLOTS_256, 2 ** math.ceil(math.log2(max(max_delay, 1) + 1)))
    ring_buffers = 2 * slots * max(neurons, 1) * 2  # exc + inh, uint16
    dtcm = neurons * 88 + ring_buffers + 2048  # IF_curr_exp state + parameters, ring buffers, stack
    sdram = synapses * 4 + sources * 16  # one 32-bit word per synapse, a row header per source
    return {"neurons": neurons, "dtcm_bytes": dtcm, "sdram_bytes": sdram, "synapses": synapses,
            "delay_steps": max_delay, "fan_in_axons": sources}


USAGE = {"loihi2": _loihi2_usage, "spinnaker": _spinnaker_usage, "emulator": None}


# ------------------------------------------------------------------ mapping

def map_program(program: Program, target: Target, *, neurons_per_core: int | None = None,
                chips: int | None = None) -> Mapping:
    """Place every population; where a core sends more output axons than the target allows,
    cap that population's slice size and place again (output axons depend on where the
    targets landed, so they are checked after a placement)."""
    caps: dict[str, int] = {}
    for _ in range(8):
        mapping = _place(program, target, neurons_per_core, chips, caps)
        over = _fan_out_overflow(program, target, mapping)
        if not over:
            return mapping
        for name, (largest, slice_size) in over.items():
            caps[name] = max(1, int(slice_size * target.core_limits["fan_out_axons"].size // largest))
    name, (largest, _) = next(iter(over.items()))
    raise MappingError(
        f"population '{name}': its cores still send {largest} output axons after 8 placements, more than "
        f"{target.name}'s limit of {target.core_limits['fan_out_axons'].size:.0f} per core; reduce its fan-out"
    )


def _place(program: Program, target: Target, neurons_per_core: int | None, chips: int | None,
           caps: dict[str, int]) -> Mapping:
    usage_of = USAGE[target.name]
    per_core = min(neurons_per_core or target.neurons_per_core, target.neurons_per_core)
    if per_core < 1:
        raise MappingError(f"neurons per core must be >= 1, got {neurons_per_core}")
    chips_available = chips or (target.chips_per_board if target.name != "loihi2" else 1)
    cores: list[CoreSlice] = []
    for name, shape in program.inputs.items():  # inputs occupy source cores on SpiNNaker only
        if target.name == "spinnaker":
            size = int(np.prod(shape))
            for start in range(0, size, per_core):
                stop = min(size, start + per_core)
                cores.append(CoreSlice(len(cores), 0, name, start, stop, {"neurons": stop - start}))
    for pop in program.populations:
        fan = _fan_in(program, pop.name, pop.size)
        _check_whole_population(pop.name, fan, target)
        start = 0
        size_hint = min(per_core, caps.get(pop.name, per_core))  # slices of one population are alike
        while start < pop.size:
            n = min(size_hint, pop.size - start)
            while True:
                usage = {"neurons": n}
                if usage_of is not None:
                    usage = usage_of(n, int(fan.synapses[start:start + n].sum()),
                                     _distinct_sources(fan, start, start + n), fan.max_delay)
                over = _over_limits(usage, target)
                if not over:
                    break
                if n == 1:
                    key, value, size = over[0]
                    raise MappingError(
                        f"population '{pop.name}': a single neuron needs {key} = {value:.0f}, more than "
                        f"{target.name}'s limit of {size:.0f} per core ({target.core_limits[key].name}); "
                        f"reduce its fan-in or split the layer"
                    )
                n = max(1, n // 2)
            cores.append(CoreSlice(len(cores), 0, pop.name, start, start + n, usage))
            start += n
            size_hint = n
    for core in cores:
        core.chip = core.core // target.cores_per_chip
    chips_used = (len(cores) + target.cores_per_chip - 1) // target.cores_per_chip
    limits = _limit_table(cores, target, chips_used, chips_available)
    fits = all(l["margin"] >= 0 for l in limits)
    return Mapping(target.name, cores, chips_used, chips_available, target.cores_per_chip, limits, fits)


def _fan_out_overflow(program: Program, target: Target, mapping: Mapping) -> dict[str, tuple[int, int]]:
    """Output axons per core (one per source neuron and destination core it reaches); returns the
    populations whose cores exceed the limit: {name: (largest count, that core's slice size)}."""
    limit = target.core_limits.get("fan_out_axons")
    if limit is None:
        return {}
    slices: dict[str, list[CoreSlice]] = {}
    for core in mapping.cores:
        slices.setdefault(core.population, []).append(core)
    sizes = {p.name: p.size for p in program.populations}
    per_neuron = {name: np.zeros(size, dtype=np.int64) for name, size in sizes.items()}
    for c in program.connections:
        if c.source not in per_neuron:
            continue
        core_of_row = np.empty(c.n_out, dtype=np.int64)
        for core in slices[c.target]:
            core_of_row[core.start:core.stop] = core.core
        if c.kind == "sparse":
            rows = np.repeat(np.arange(c.n_out), np.diff(c.arrays["indptr"]))
            keys = np.unique(c.arrays["indices"] * (len(mapping.cores) + 1) + core_of_row[rows])
            per_neuron[c.source] += np.bincount(keys // (len(mapping.cores) + 1), minlength=c.n_in)
        else:  # dense and conv: every target core may hear every source neuron (an upper bound)
            per_neuron[c.source] += len(slices[c.target])
    over: dict[str, tuple[int, int]] = {}
    for name, cores in slices.items():
        if name not in per_neuron:
            continue
        for core in cores:
            axons = int(per_neuron[name][core.start:core.stop].sum())
            core.usage["fan_out_axons"] = axons
            if axons > limit.size and axons > over.get(name, (0, 0))[0]:
                over[name] = (axons, core.stop - core.start)
    if over:  # a single neuron over the limit cannot be helped by smaller slices
        for name, (axons, size) in over.items():
            if size == 1:
                raise MappingError(
                    f"population '{name}': a single neuron needs fan_out_axons = {axons}, more than "
                    f"{target.name}'s limit of {limit.size:.0f} per core ({limit.name}); reduce its fan-out"
                )
    else:
        mapping.limits[:] = _limit_table(mapping.cores, target, mapping.chips_used, mapping.chips_available)
        mapping.fits = all(l["margin"] >= 0 for l in mapping.limits)
    return over


def _check_whole_population(name: str, fan: _Fan, target: Target) -> None:
    limit = target.core_limits.get("delay_steps")
    if limit is not None and fan.max_delay > limit.size:
        raise MappingError(
            f"population '{name}': needs a synaptic delay of {fan.max_delay} steps, more than {target.name}'s "
            f"limit of {limit.size:.0f} ({limit.name}); shorten delays or raise dt"
        )


def _over_limits(usage: dict[str, float], target: Target) -> list[tuple[str, float, float]]:
    return [(k, usage[k], lim.size) for k, lim in target.core_limits.items()
            if k in usage and usage[k] > lim.size]


def _limit_table(cores: list[CoreSlice], target: Target, chips_used: int, chips_available: int) -> list[dict]:
    rows = [{"limit": "chips", "value": chips_used, "size": chips_available,
             "margin": chips_available - chips_used, "unit": "chips",
             "source": f"{target.description}: {target.cores_per_chip} cores per chip"}]
    if target.name == "spinnaker":
        usable = spinnaker_data.USABLE_CORES_SPINN5 * max(1, chips_available // target.chips_per_board)
        rows.append({"limit": "application cores", "value": len(cores), "size": usable,
                     "margin": usable - len(cores), "unit": "cores",
                     "source": "SpiNN-5: about 759 of 856 cores usable by a model"})
        router = _router_entries(cores, target)
        rows.append({"limit": "router entries per chip (estimate)", "value": router,
                     "size": spinnaker_data.ROUTER_ENTRIES, "margin": spinnaker_data.ROUTER_ENTRIES - router,
                     "unit": "entries", "source": "SpiNNaker router: 1024 entries per chip"})
    for key, lim in target.core_limits.items():
        values = [c.usage[key] for c in cores if key in c.usage]
        if not values:
            continue
        peak = max(values)
        rows.append({"limit": lim.name, "value": peak, "size": lim.size, "margin": lim.size - peak,
                     "unit": lim.unit, "source": lim.source})
    peak_neurons = max((c.usage.get("neurons", 0) for c in cores), default=0)
    rows.append({"limit": "neurons per core", "value": peak_neurons, "size": target.neurons_per_core,
                 "margin": target.neurons_per_core - peak_neurons, "unit": "neurons",
                 "source": target.description})
    return rows


def _router_entries(cores: list[CoreSlice], target: Target) -> int:
    """Worst chip: one entry per core slice that sends to or through it (an upper-bound estimate)."""
    per_chip: dict[int, int] = {}
    for c in cores:
        per_chip[c.chip] = per_chip.get(c.chip, 0) + 1
    return max(per_chip.values(), default=0) * 2
