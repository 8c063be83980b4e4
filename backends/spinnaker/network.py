"""A spinnaker program as a PyNN network: plain data first, then PyNN calls.

``plan(program, mapping)`` turns an artifact's program into a :class:`NetworkPlan` — numbers
only, no sPyNNaker import — and ``build(sim, plan)`` makes the PyNN objects on a ``sim``
module (``pyNN.spiNNaker``). The exported script (``neurodeploy export --format pynn``) does
what ``build`` does from the same numbers stored in an ``.npz``, so the backend and the
export cannot drift apart.

How each number is chosen so that sPyNNaker 7.4.1 writes the artifact's integers
(docs/targets.md, "spinnaker"; the host side of sPyNNaker 7.4.1):

- parameters: ``bits / 2**15`` (exact in float64); the host's s1615 conversion
  (``round(value * 32768)``) gives the same bits back;
- ring-buffer shift: ``max_expected_summed_weight`` per population and synapse type (exc, inh).
  sPyNNaker's rule is ``shift = ceil(log2 W)`` (0 when W <= 0), plus 1 when ``2**shift <= W``.
  W is the largest summed quantized weight into one neuron; if that lands in another
  power-of-two bucket than the compiler's shift (rounding up can cross one), W = 2**(shift-1)
  is passed instead, which gives the compiler's shift exactly;
- weights: ``w16 / 2**(15 - shift)`` (nA, exact), which sPyNNaker multiplies by its weight
  scale ``2**(15 - shift)`` and rounds back to ``w16``. Signs are carried by the projection's
  receptor type (a synaptic word has no sign): one excitatory and one inhibitory
  ``FromListConnector`` per connection;
- delays: ``steps * dt`` ms (``rint(delay / dt)`` on the host gives ``steps`` back);
- input spikes: tick ``t`` is sent at ``(t * dt_us + 0.5) / 1000`` ms. SpikeSourceArray turns a
  time into a tick with ``ceil(floor(ms * 1000) / dt_us)``; the half microsecond keeps float
  error from flooring a whole microsecond away;
- neurons per core: the artifact's mapping (largest slice per population), through
  ``set_max_atoms_per_core``;
- one combined neuron+synapse core per slice (``n_synapse_cores = 0``): the core whose arithmetic
  the spec and the emulator reproduce, and what the compiler's mapping counts. sPyNNaker would
  otherwise split a population into a synapse core and a neuron core whenever dt < 1 ms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from neurodeploy.format import convolution, input_rules
from neurodeploy.targets import spinnaker_local_only
from neurodeploy.errors import InputDataError, NeurodeployError, OptionError
from neurodeploy.format.program import Program

ONE = 1 << 15  # s1615
MAX_ATOMS = 256  # IF_curr_exp / IF_curr_delta: default and largest neurons per core
RECORDABLE = ("v",)
EXC, INH = 0, 1
RECEPTORS = ("excitatory", "inhibitory")
MODELS = ("IF_curr_exp", "IF_curr_delta")

# artifact parameter -> (PyNN name, kind); "param" goes to the cell type, "initial" to initialize()
PARAMS = {
    "IF_curr_exp": {
        "tau_m": "tau_m", "cm": "cm", "v_rest": "v_rest", "v_reset": "v_reset", "v_thresh": "v_thresh",
        "tau_refrac": "tau_refrac", "i_offset": "i_offset", "tau_syn_e": "tau_syn_E", "tau_syn_i": "tau_syn_I",
    },
    "IF_curr_delta": {
        "tau_m": "tau_m", "cm": "cm", "v_rest": "v_rest", "v_reset": "v_reset", "v_thresh": "v_thresh",
        "tau_refrac": "tau_refrac", "i_offset": "i_offset",
    },
}
INITIAL = {"v_init": "v", "isyn_exc_init": "isyn_exc", "isyn_inh_init": "isyn_inh"}


class SpinnakerBackendError(NeurodeployError):
    """sPyNNaker is missing, the program cannot be expressed in PyNN, or the sPyNNaker run failed."""


@dataclass
class SourcePlan:
    name: str
    shape: tuple[int, ...]
    atoms_per_core: int | tuple[int, int]  # a (width, height) tile per core for a channel grid
    grid: tuple[int, int, int] | None = None  # (C, H, W): one Grid2D population per channel (local-only convs)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class PopulationPlan:
    name: str
    model: str  # IF_curr_exp | IF_curr_delta
    shape: tuple[int, ...]
    spiking: bool
    atoms_per_core: int
    cores: int  # slices in the artifact's mapping
    params: dict[str, np.ndarray]  # PyNN parameter -> values per neuron (float64, = bits / 2**15)
    initial: dict[str, np.ndarray]  # v, isyn_exc, isyn_inh
    bits: dict[str, np.ndarray]  # the artifact's s1615 bits of both, keyed by PyNN name
    shifts: tuple[int, int]  # the compiler's ring-buffer shifts (exc, inh)
    max_expected_summed_weight: tuple[float, float]  # what is passed to sPyNNaker
    summed_weight: tuple[float, float]  # largest summed quantized weight into one neuron (nA)
    grid: tuple[int, int, int] | None = None  # (C, H, W): one Grid2D population per channel (local-only convs)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class ProjectionPlan:
    label: str  # "<connection>:exc" | "<connection>:inh"
    connection: str
    source: str
    target: str
    receptor: str  # excitatory | inhibitory
    pre: np.ndarray  # int64 per synapse
    post: np.ndarray
    weight: np.ndarray  # nA, = w16 / 2**(15 - shift)
    delay_steps: np.ndarray  # int64, >= 1
    word: np.ndarray  # uint16, the artifact's synaptic words
    shift: int
    source_channel: int | None = None  # a piece between channel populations of gridded ones (local indices)
    target_channel: int | None = None
    pre_offset: int = 0  # global index = local index + offset
    post_offset: int = 0

    @property
    def synapses(self) -> int:
        return int(self.pre.size)


@dataclass
class ConvPlan:
    """One ConvolutionConnector projection: input channel -> output channel of a local-only conv."""

    label: str  # "<connection>:<in channel>-><out channel>"
    connection: str
    source: str
    target: str
    in_channel: int
    out_channel: int
    kernel: np.ndarray  # (k, k) nA: the NIR kernel rotated 180 degrees, +word/scale exc, -word/scale inh
    words: np.ndarray  # (k, k) int64: the signed int16 words sPyNNaker must encode, same layout
    padding: int
    delay_steps: int
    in_grid: tuple[int, int]  # (H, W)
    out_grid: tuple[int, int]


@dataclass
class PoolDensePlan:
    """One PoolDenseConnector projection: one channel of a gridded source -> the (1-D) target."""

    label: str  # "<connection>:<channel>"
    connection: str
    source: str
    target: str
    channel: int
    pool: int  # k: pool shape and stride (k, k)
    weights: np.ndarray  # (W/k, H/k, n_post) nA * k*k: PoolDense divides by the pool area, then scales
    words: np.ndarray  # same layout, int64: the signed int16 words sPyNNaker must encode
    delay_steps: int
    grid: tuple[int, int]  # (H, W) of the source channel


@dataclass
class NetworkPlan:
    timestep_us: int
    time_step_bits: int
    sources: list[SourcePlan]
    populations: list[PopulationPlan]
    projections: list[ProjectionPlan]
    outputs: dict[str, str] = field(default_factory=dict)
    convs: list[ConvPlan] = field(default_factory=list)  # local-only conv projections
    local_only: dict[str, dict] = field(default_factory=dict)  # per candidate connection: the artifact's decision
    pool_dense: list[PoolDensePlan] = field(default_factory=list)  # local-only pool + dense projections

    @property
    def dt_ms(self) -> float:
        return self.timestep_us / 1000.0

    def population(self, name: str) -> PopulationPlan:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)


# ------------------------------------------------------------------ rules of sPyNNaker 7.4.1

def spynnaker_shift(weight: float) -> int:
    """PopulationVertex.get_ring_buffer_shifts for one synapse type, as 7.4.1 computes it."""
    power = 0 if weight <= 0 else int(math.ceil(max(0, math.log2(weight))))
    return power + 1 if 2**power <= weight else power


def weight_scale(shift: int) -> float:
    """PopulationVertex.__get_weight_scale: 2 ** (16 - (shift + 1))."""
    return float(2.0 ** (15 - shift))


def spike_time_ms(ticks: np.ndarray, timestep_us: int) -> np.ndarray:
    """Spike times (ms) that SpikeSourceArray turns back into exactly ``ticks``."""
    return (np.asarray(ticks, dtype=np.float64) * timestep_us + 0.5) / 1000.0


def spike_ticks(times_ms: np.ndarray, timestep_us: int) -> np.ndarray:
    """SpikeSourceArray's own conversion (spike_source_array_vertex._as_numpy_ticks)."""
    return np.ceil(np.floor(np.asarray(times_ms, dtype=np.float64) * 1000.0) / timestep_us).astype(np.int64)


# ------------------------------------------------------------------ program -> plan

def plan(program: Program, mapping: Mapping[str, Any] | None = None,
         semantics: Mapping[str, Any] | None = None) -> NetworkPlan:
    """The PyNN network that makes sPyNNaker 7.4.1 write ``program``'s integers."""
    if program.target != "spinnaker":
        raise SpinnakerBackendError(
            f"the spinnaker backend runs spinnaker artifacts; this one is for {program.target!r} "
            f"(compile with --target spinnaker)")
    timestep_us, ts_bits = _timestep(program, semantics)
    slices = _slices(mapping)
    decision = spinnaker_local_only.recorded(program)
    local = [c for c in program.connections if c.kind == "conv" and decision[c.name]["local_only"]]
    pooled = [c for c in program.connections if c.kind != "conv" and decision.get(c.name, {}).get("local_only")]
    grids = _grids(local)
    grids.update({c.source: spinnaker_local_only.channel_grid(_shape_of(program, c.source)) for c in pooled})
    sources = []
    for name, shape in program.inputs.items():
        size = int(np.prod(shape))
        atoms = _atoms(name, size, slices)
        sources.append(SourcePlan(name, tuple(int(s) for s in shape), grid_tile(grids[name], atoms)
                                  if name in grids else atoms, grids.get(name)))
    shifts = {name: (int(s[0]), int(s[1])) for name, s in program.attrs["ring_buffer_shift"].items()}
    projections = []
    for conn in program.connections:
        projections += _projections(conn, shifts.get(conn.target))
    summed = _summed_weights(program, projections)  # local-only convs count as their expanded synapses
    convs = [cv for conn in local for cv in _conv_plans(conn, shifts[conn.target])]
    pool_dense = [pd for conn in pooled for pd in _pool_dense_plans(conn, decision[conn.name]["pool"], grids[conn.source],
                                                                    shifts[conn.target])]
    names = {c.name for c in local + pooled}
    projections = [piece for proj in projections if proj.connection not in names for piece in _split(proj, grids)]
    populations = []
    for pop in program.populations:
        if pop.model not in MODELS:
            raise SpinnakerBackendError(f"population '{pop.name}': model {pop.model!r} is not one of {', '.join(MODELS)}")
        names = PARAMS[pop.model]
        missing = [k for k in list(names) + list(INITIAL) if k not in pop.params]
        if missing:
            raise SpinnakerBackendError(f"population '{pop.name}': the artifact lacks parameters {', '.join(missing)}; "
                                        f"recompile it with this neurodeploy")
        bits = {pynn: np.asarray(pop.params[key], dtype=np.int64).reshape(-1) for key, pynn in names.items()}
        bits.update({pynn: np.asarray(pop.params[key], dtype=np.int64).reshape(-1) for key, pynn in INITIAL.items()})
        for pynn, b in bits.items():
            if b.size and (b.min() < -(2**31) or b.max() > 2**31 - 1):
                raise SpinnakerBackendError(f"population '{pop.name}': {pynn} bits outside s16.15")
        values = {k: b.astype(np.float64) / ONE for k, b in bits.items()}
        shift = shifts.get(pop.name, (0, 0))
        w = summed.get(pop.name, (0.0, 0.0))
        expected = tuple(_expected_weight(w[k], shift[k]) for k in (EXC, INH))
        n_slices = len(slices.get(pop.name, [])) or -(-pop.size // MAX_ATOMS)
        atoms = _atoms(pop.name, pop.size, slices)
        grid = grids.get(pop.name)
        if grid is not None:  # sPyNNaker cuts each channel's grid into tiles, not the artifact's slices
            atoms = grid_tile(grid, atoms)
            n_slices = grid_cores(grid, atoms)
        populations.append(PopulationPlan(
            pop.name, pop.model, tuple(int(s) for s in pop.shape), bool(pop.spiking), atoms, n_slices,
            {k: values[k] for k in names.values()}, {k: values[k] for k in INITIAL.values()},
            bits, shift, expected, (float(w[EXC]), float(w[INH])), grid))
    return NetworkPlan(timestep_us, ts_bits, sources, populations, projections, dict(program.outputs), convs,
                       decision, pool_dense)


def _timestep(program: Program, semantics: Mapping[str, Any] | None) -> tuple[int, int]:
    ts_bits = int(program.attrs.get("time_step_bits", round(float(program.attrs["time_step_ms"]) * ONE)))
    if semantics and semantics.get("dt"):
        us = float(semantics["dt"]) * 1e6
    else:
        us = float(program.attrs["time_step_ms"]) * 1000.0
    timestep_us = int(round(us))
    if semantics and semantics.get("dt") and abs(us - timestep_us) > 1e-6 * max(1.0, us):
        raise SpinnakerBackendError(
            f"dt = {us:g} us is not a whole number of microseconds, which sPyNNaker's time step must be; "
            f"recompile with a dt in whole microseconds")
    if timestep_us < 1:
        raise SpinnakerBackendError(f"dt = {us:g} us is below sPyNNaker's smallest time step (1 us)")
    ms = timestep_us / 1000.0
    if int(np.round(ms * ONE)) != ts_bits:
        raise SpinnakerBackendError(
            f"a {timestep_us} us time step is {int(np.round(ms * ONE))} s1615 bits on the chip, but the artifact was "
            f"compiled for {ts_bits} bits ({ts_bits / ONE:g} ms); recompile it")
    return timestep_us, ts_bits


def _slices(mapping: Mapping[str, Any] | None) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for core in (mapping or {}).get("cores", []):
        out.setdefault(core["population"], []).append((int(core["start"]), int(core["stop"])))
    return out


def _atoms(name: str, size: int, slices: dict[str, list[tuple[int, int]]]) -> int:
    """Neurons per core: the largest slice of the artifact's mapping (sPyNNaker cuts equal slices)."""
    sizes = [stop - start for start, stop in slices.get(name, [])]
    atoms = max(sizes) if sizes else min(size, MAX_ATOMS)
    return int(max(1, min(atoms, MAX_ATOMS)))


def _projections(conn, shifts: tuple[int, int] | None) -> list[ProjectionPlan]:
    """FromList projections (one per receptor) of a synapse list, or of a conv kernel expanded
    synapse by synapse (index arithmetic, O(synapses))."""
    if conn.kind not in ("sparse", "conv") or "synapse_type" not in conn.arrays:
        raise SpinnakerBackendError(f"connection '{conn.name}': kind {conn.kind!r}; spinnaker programs hold sparse "
                                    f"synapse lists or conv kernels of words (recompile with --target spinnaker)")
    if shifts is None:
        raise SpinnakerBackendError(f"connection '{conn.name}': no ring-buffer shift for '{conn.target}'")
    arrays = convolution.sparse_arrays(conn.arrays, conn.attrs) if conn.kind == "conv" else conn.arrays
    indptr = np.asarray(arrays["indptr"], dtype=np.int64)
    pre = np.asarray(arrays["indices"], dtype=np.int64)
    post = np.repeat(np.arange(conn.n_out, dtype=np.int64), np.diff(indptr))
    word = np.asarray(arrays["weight"]).astype(np.uint16)
    types = np.asarray(arrays["synapse_type"]).astype(np.int64)
    delay = int(conn.attrs.get("delay", 0))
    steps = delay + (np.asarray(arrays["delay"], dtype=np.int64) if "delay" in arrays else 0)
    steps = np.broadcast_to(np.asarray(steps, dtype=np.int64), word.shape).copy()
    if steps.size and steps.min() < 1:
        raise SpinnakerBackendError(f"connection '{conn.name}': a delay of {int(steps.min())} ticks; sPyNNaker needs >= 1")
    out = []
    for kind, tag in ((EXC, "exc"), (INH, "inh")):
        sel = types == kind
        if not sel.any():
            continue
        shift = int(shifts[kind])
        # sorted by (pre, post): 7.4.1's FromListConnector estimates the longest synaptic row by
        # grouping the list by source, and its grouping (__numpy_group) splits the list at the
        # boundaries of a *sorted* copy, so it is right only for a list sorted by source. An
        # unsorted list gives a wrong row length: a spurious SynapseRowTooBigException, or rows
        # cut short (convert_per_connection_data_to_rows truncates to that length).
        idx = np.flatnonzero(sel)
        idx = idx[np.lexsort((post[idx], pre[idx]))]
        out.append(ProjectionPlan(
            f"{conn.name}:{tag}", conn.name, conn.source, conn.target, RECEPTORS[kind],
            pre[idx], post[idx], word[idx].astype(np.float64) / weight_scale(shift), steps[idx], word[idx], shift))
    return out


# ------------------------------------------------------------------ local-only convs

def channel_label(name: str, channel: int) -> str:
    """The label of one channel's Grid2D population of a gridded population or input."""
    return f"{name}.c{channel}"


def grid_tile(grid: tuple[int, int, int], atoms: int) -> tuple[int, int]:
    """Neurons per core of a channel grid as sPyNNaker takes them: (width, height), at most ``atoms``
    neurons. 7.4.1 needs each dimension divisible by its tile side (get_multidimensional_slices), so
    the tile is the largest divisor pair, the squarest among equals."""
    _, h, w = grid
    divisors = lambda n: [d for d in range(1, n + 1) if n % d == 0]  # noqa: E731
    best = max(((tw, th) for tw in divisors(w) for th in divisors(h) if tw * th <= atoms),
               key=lambda t: (t[0] * t[1], -abs(t[0] - t[1])))
    return best


def grid_cores(grid: tuple[int, int, int], tile: tuple[int, int]) -> int:
    c, h, w = grid
    return c * -(-w // tile[0]) * -(-h // tile[1])


def _grids(local: list) -> dict[str, tuple[int, int, int]]:
    """(C, H, W) of every population or input a local-only conv touches (the decision made them agree)."""
    grids: dict[str, tuple[int, int, int]] = {}
    for conn in local:
        grids[conn.source] = spinnaker_local_only.channel_grid(conn.attrs["in_shape"])
        grids[conn.target] = spinnaker_local_only.channel_grid(conn.attrs["out_shape"])
    return grids


def rotated_words(conn, shifts: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The kernel as ConvolutionConnector takes it: (C_out, C_in/groups, k, k) signed words (+exc,
    -inh) rotated 180 degrees (7.4.1 computes a true convolution, NIR a cross-correlation), and the
    same in nA (word / 2**(15 - shift of its receptor)), which sPyNNaker scales back to the words."""
    geom = convolution.ConvGeometry.of(conn.attrs)
    words = geom.kernel_2d(np.asarray(conn.arrays["weight"])).astype(np.int64)
    types = geom.kernel_2d(np.asarray(conn.arrays["synapse_type"])).astype(np.int64)
    signed = np.where(types == INH, -words, words)[:, :, ::-1, ::-1]
    scale = np.where(types == INH, weight_scale(shifts[INH]), weight_scale(shifts[EXC]))[:, :, ::-1, ::-1]
    return np.ascontiguousarray(signed), np.ascontiguousarray(signed / scale)


def _conv_plans(conn, shifts: tuple[int, int]) -> list[ConvPlan]:
    """One ConvolutionConnector per (input channel, output channel) with a non-zero kernel."""
    geom = convolution.ConvGeometry.of(conn.attrs)
    signed, kernel = rotated_words(conn, shifts)
    out = []
    for co in range(signed.shape[0]):
        for local in range(signed.shape[1]):
            if not signed[co, local].any():
                continue  # adds nothing: no projection
            ci = int(geom.input_channel(co, local))
            out.append(ConvPlan(f"{conn.name}:{ci}->{co}", conn.name, conn.source, conn.target, ci, co,
                                kernel[co, local], signed[co, local], int(geom.padding[0]), int(conn.attrs["delay"]),
                                tuple(geom.in_shape[1:]), tuple(geom.out_shape[1:])))
    return out


def _shape_of(program: Program, name: str) -> tuple[int, ...]:
    if name in program.inputs:
        return tuple(int(s) for s in program.inputs[name])
    return tuple(int(s) for s in next(p.shape for p in program.populations if p.name == name))


def _pool_dense_plans(conn, pool: int, grid: tuple[int, int, int], shifts: tuple[int, int]) -> list[PoolDensePlan]:
    """One PoolDenseConnector per source channel with a non-zero word: weights in 7.4.1's layout
    (pooled x, pooled y, post; its ``reshape(pre_in_post_shape + post_shape)`` with atoms_shape
    (width, height)), ``+word/scale_exc`` or ``-word/scale_inh`` times the pool area."""
    if pool < 1:
        raise SpinnakerBackendError(f"connection '{conn.name}': recorded local-only without a pool; recompile it")
    signed = spinnaker_local_only.pooled_dense(spinnaker_local_only.signed_matrix(conn), grid, pool)  # (C, Hp, Wp, n)
    scale = np.where(signed < 0, weight_scale(shifts[INH]), weight_scale(shifts[EXC]))
    out = []
    for ch in range(grid[0]):
        if not signed[ch].any():
            continue  # adds nothing: no projection
        words = np.ascontiguousarray(np.swapaxes(signed[ch], 0, 1))  # (Wp, Hp, n)
        weights = np.ascontiguousarray(np.swapaxes(signed[ch] / scale[ch], 0, 1)) * float(pool * pool)
        out.append(PoolDensePlan(f"{conn.name}:{ch}", conn.name, conn.source, conn.target, ch, pool, weights, words,
                                 int(conn.attrs["delay"]), (grid[1], grid[2])))
    return out


def _split(proj: ProjectionPlan, grids: dict[str, tuple[int, int, int]]) -> list[ProjectionPlan]:
    """A FromList projection from or to gridded populations, cut into one piece per channel pair."""
    src, tgt = grids.get(proj.source), grids.get(proj.target)
    if src is None and tgt is None:
        return [proj]
    n_src = src[1] * src[2] if src else 0
    n_tgt = tgt[1] * tgt[2] if tgt else 0
    a = proj.pre // n_src if src else np.zeros_like(proj.pre)
    b = proj.post // n_tgt if tgt else np.zeros_like(proj.post)
    out = []
    for ca, cb in sorted(set(zip(a.tolist(), b.tolist()))):
        sel = (a == ca) & (b == cb)
        pre_off, post_off = ca * n_src, cb * n_tgt
        out.append(ProjectionPlan(
            f"{proj.label}[{ca if src else '*'}->{cb if tgt else '*'}]", proj.connection, proj.source, proj.target,
            proj.receptor, proj.pre[sel] - pre_off, proj.post[sel] - post_off, proj.weight[sel], proj.delay_steps[sel],
            proj.word[sel], proj.shift, ca if src else None, cb if tgt else None, pre_off, post_off))
    return out


def _summed_weights(program: Program, projections: list[ProjectionPlan]) -> dict[str, tuple[float, float]]:
    sizes = {p.name: p.size for p in program.populations}
    sums: dict[str, np.ndarray] = {name: np.zeros((2, n)) for name, n in sizes.items()}
    for proj in projections:
        kind = RECEPTORS.index(proj.receptor)
        np.add.at(sums[proj.target][kind], proj.post, proj.weight)
    return {name: (float(s[EXC].max(initial=0.0)), float(s[INH].max(initial=0.0))) for name, s in sums.items()}


def _expected_weight(summed: float, shift: int) -> float:
    """A max_expected_summed_weight for which sPyNNaker's rule gives ``shift``."""
    if spynnaker_shift(summed) == shift:
        return float(summed)
    return 0.0 if shift <= 0 else float(2.0 ** (shift - 1))


# ------------------------------------------------------------------ inputs

def spike_lists(plan_: NetworkPlan, inputs: Any) -> tuple[int, int, dict[str, list[list[list[int]]]]]:
    """Input arrays -> per source, per sample, per neuron: the ticks with a spike.

    Returns (batch, steps, {source: [sample][neuron] -> ticks}). SpikeSourceArray sends at most
    one spike per neuron and tick, so a count above 1 is an error (it is not turned into
    duplicates: sPyNNaker would not deliver them as the emulator does).
    """
    if not isinstance(inputs, Mapping):
        if len(plan_.sources) != 1:
            raise InputDataError(f"the program has inputs {', '.join(s.name for s in plan_.sources)}; "
                                 f"pass one array per input")
        inputs = {plan_.sources[0].name: inputs}
    batch = steps = None
    out: dict[str, list[list[list[int]]]] = {}
    for src in plan_.sources:
        if src.name not in inputs:
            raise InputDataError(f"no data for input '{src.name}'")
        arr = np.asarray(inputs[src.name])
        if arr.ndim < 2 or int(np.prod(arr.shape[2:])) != src.size:
            raise InputDataError(f"input '{src.name}': shape {list(arr.shape)} does not match "
                                 f"(batch, steps, {', '.join(map(str, src.shape))})")
        if arr.dtype.kind not in "biuf":
            raise InputDataError(f"input '{src.name}': expected spike counts, got dtype {arr.dtype}")
        input_rules.check_values(arr, f"input '{src.name}' (SpiNNaker)")
        flat = arr.reshape(arr.shape[:2] + (src.size,)).astype(np.int64)
        if np.any(flat > 1):
            b, t, i = (int(x[0]) for x in np.nonzero(flat > 1))
            raise InputDataError(
                f"input '{src.name}': {int(flat[b, t, i])} spikes for neuron {i} at step {t} (sample {b}); a SpiNNaker "
                f"SpikeSourceArray sends at most one spike per neuron and tick: encode counts as several input "
                f"neurons or steps, or run the emulator (which adds a count c as c spikes)")
        if batch is None:
            batch, steps = flat.shape[:2]
        elif flat.shape[:2] != (batch, steps):
            raise InputDataError(f"input '{src.name}': (batch, steps) {list(flat.shape[:2])} differs from the other "
                                 f"inputs' {[batch, steps]}")
        per_sample = []
        for b in range(flat.shape[0]):
            t_idx, n_idx = np.nonzero(flat[b])
            order = np.lexsort((t_idx, n_idx))
            ticks = [[] for _ in range(src.size)]
            for n, t in zip(n_idx[order].tolist(), t_idx[order].tolist()):
                ticks[n].append(t)
            per_sample.append(ticks)
        out[src.name] = per_sample
    if batch is None:
        batch, steps = 1, 0
    return int(batch), int(steps), out


# ------------------------------------------------------------------ plan -> PyNN

@dataclass
class Built:
    sources: dict[str, Any]
    populations: dict[str, Any]
    projections: dict[str, Any]


def uniform(values: np.ndarray):
    """A scalar where every neuron has the same value (shorter PyNN calls), else a list."""
    values = np.asarray(values, dtype=np.float64)
    if values.size and np.all(values == values.flat[0]):
        return float(values.flat[0])
    return values.tolist()


def build(sim, plan_: NetworkPlan, spikes: Mapping[str, Sequence[Sequence[int]]] | None = None,
          record: Sequence[str] = ()) -> Built:
    """Make the PyNN objects for ``plan_`` on ``sim`` (after ``sim.setup``).

    ``spikes``: per source, per neuron, the ticks of one sample (None: no spikes).
    ``record``: extra state to record on every population ("v"); spikes are recorded on every
    spiking population. A gridded population or input (local-only convs) is a list of per-channel
    Grid2D populations, each holding its channel's neurons in the same raster order (y * W + x).
    """
    sources, pops, projs = {}, {}, {}
    for src in plan_.sources:
        ticks = (spikes or {}).get(src.name)
        pieces = []
        for label, lo, hi, structure in _pieces(sim, src.name, src.size, src.grid):
            times = source_times(None if ticks is None else ticks[lo:hi], plan_.timestep_us)
            s = sim.Population(hi - lo, sim.SpikeSourceArray(spike_times=times), label=label, **structure)
            s.set_max_atoms_per_core(src.atoms_per_core)
            pieces.append(s)
        sources[src.name] = pieces if src.grid else pieces[0]
    for p in plan_.populations:
        pieces = []
        for label, lo, hi, structure in _pieces(sim, p.name, p.size, p.grid):
            cell = getattr(sim, p.model)(**{k: uniform(v[lo:hi]) for k, v in p.params.items()})
            pop = sim.Population(hi - lo, cell, label=label, additional_parameters={
                "max_expected_summed_weight": list(p.max_expected_summed_weight), "n_synapse_cores": 0}, **structure)
            pop.initialize(**{k: uniform(v[lo:hi]) for k, v in p.initial.items()})
            pop.set_max_atoms_per_core(p.atoms_per_core)
            variables = (["spikes"] if p.spiking else []) + [r for r in record if r in RECORDABLE]
            if variables:
                pop.record(variables)
            pieces.append(pop)
        pops[p.name] = pieces if p.grid else pieces[0]
    cells = {**sources, **pops}
    pick = lambda name, channel: cells[name] if channel is None else cells[name][channel]  # noqa: E731
    for proj in plan_.projections:
        conn_list = np.column_stack([proj.pre.astype(np.float64), proj.post.astype(np.float64), proj.weight,
                                     proj.delay_steps.astype(np.float64) * plan_.dt_ms])
        projs[proj.label] = sim.Projection(
            pick(proj.source, proj.source_channel), pick(proj.target, proj.target_channel),
            sim.FromListConnector(conn_list), synapse_type=sim.StaticSynapse(), receptor_type=proj.receptor,
            label=proj.label)
    for cv in plan_.convs:
        projs[cv.label] = sim.Projection(
            cells[cv.source][cv.in_channel], cells[cv.target][cv.out_channel],
            sim.ConvolutionConnector(cv.kernel, padding=cv.padding),
            synapse_type=sim.Convolution(delay=cv.delay_steps * plan_.dt_ms), receptor_type="excitatory",
            label=cv.label)
    for pd in plan_.pool_dense:
        projs[pd.label] = sim.Projection(
            cells[pd.source][pd.channel], cells[pd.target],
            sim.PoolDenseConnector(pd.weights.reshape(-1), pool_shape=(pd.pool, pd.pool), pool_stride=(pd.pool, pd.pool)),
            synapse_type=sim.PoolDense(delay=pd.delay_steps * plan_.dt_ms), receptor_type="excitatory", label=pd.label)
    return Built(sources, pops, projs)


def _pieces(sim, name: str, size: int, grid: tuple[int, int, int] | None):
    """(label, first neuron, end, Population keywords) of a population: itself, or one Grid2D per channel."""
    if grid is None:
        return [(name, 0, size, {})]
    c, h, w = grid
    return [(channel_label(name, i), i * h * w, (i + 1) * h * w, {"structure": sim.Grid2D(w / h)}) for i in range(c)]


def populations_of(built: Built, name: str) -> list:
    """The PyNN population(s) of a planned population or input, in channel order."""
    cell = built.populations.get(name, built.sources.get(name))
    return list(cell) if isinstance(cell, list) else [cell]


def source_times(ticks: Sequence[Sequence[int]] | None, timestep_us: int) -> list:
    """SpikeSourceArray's ``spike_times``: one list of ms per neuron, or ``[]`` when no neuron
    spikes (7.4.1's spike-density check fails on a list of empty lists)."""
    if not ticks or not any(len(t) for t in ticks):
        return []
    return [spike_time_ms(t, timestep_us).tolist() for t in ticks]


def traces(built: Built, plan_: NetworkPlan, steps: int, record: Sequence[str]) -> dict[str, np.ndarray]:
    """One sample's recordings, keyed and aligned like the emulator: ``spikes.<pop>`` (steps, *shape)
    uint8 (tick = time / dt), ``v.<pop>`` int64 s1615 bits of V recorded at each tick."""
    out: dict[str, np.ndarray] = {}
    for p in plan_.populations:
        variables = (["spikes"] if p.spiking else []) + [r for r in record if r in RECORDABLE]
        if not variables:
            continue
        pieces = populations_of(built, p.name)
        segments = [pop.get_data(variables).segments[-1] for pop in pieces]
        n = p.size // len(pieces)  # channel populations are equal slices, in order
        if p.spiking:
            s = np.zeros((steps, p.size), dtype=np.uint8)
            for k, segment in enumerate(segments):
                for train in segment.spiketrains:
                    i = int(train.annotations.get("source_index", train.annotations.get("source_id", 0)))
                    t = np.rint(np.asarray(train.rescale("ms").magnitude) * 1000.0 / plan_.timestep_us).astype(np.int64)
                    t = t[(t >= 0) & (t < steps)]
                    s[t, k * n + i] = 1
            out[f"spikes.{p.name}"] = s.reshape((steps,) + p.shape)
        for item in record:
            if item not in RECORDABLE:
                continue
            v = np.zeros((steps, p.size), dtype=np.int64)
            for k, segment in enumerate(segments):
                for signal in segment.analogsignals:
                    if signal.name != item:
                        continue
                    values = np.asarray(signal.rescale("mV").magnitude, dtype=np.float64)
                    index = np.asarray(signal.array_annotations.get("channel_index", np.arange(values.shape[1])))
                    m = min(steps, values.shape[0])
                    v[:m, k * n + index] = np.rint(values[:m] * ONE).astype(np.int64)
            out[f"{item}.{p.name}"] = v.reshape((steps,) + p.shape)
    return out


def check_record(record: Sequence[str]) -> list[str]:
    items = [r for r in record if r]
    for item in items:
        if item not in RECORDABLE:
            raise OptionError(f"cannot record {item!r} on SpiNNaker through this backend; choose from "
                              f"{', '.join(RECORDABLE)} (spikes are always recorded)")
    return items
