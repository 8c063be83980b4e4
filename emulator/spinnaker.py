"""Bit-accurate kernel of sPyNNaker 7.4.1's IF_curr_exp / IF_curr_delta cores.

One tick t, in the order of docs/targets.md ("spinnaker"), vectorized over
samples and neurons; every value is raw bits (s1615 int32, u032 uint32, uint16 ring buffers):
    ring-buffer transfer, per type s:   r = min(rb[t], 0xFFFF); rb[t] = 0
        exp:   I_syn[s] += decay_s1615(r << shift[s], init_syn[s])
        delta: I_syn[s] += r << shift[s]
    V_rec = V                                          ("v" of tick t is recorded BEFORE the update)
    if refract_timer <= 0:
        I     = I_syn[exc] - I_syn[inh] + I_offset     delta: mul(I_syn[s], input_scale) per type
        alpha = mul(I, R) + V_rest
        V     = alpha - mul(exp_TC, alpha - V)         int32 wrap-around everywhere
    else: refract_timer -= 1
    spike = V >= V_thresh;  V = V_reset, refract_timer = T_refract where spike
    exp: I_syn[s] = decay_s1615(I_syn[s], decay_syn[s]);  delta: I_syn[s] = 0
A spike sent at tick t over a synapse of delay d (>= 1 tick) adds its 16-bit word to
rb[t + d][type][target] (uint16, saturating; all words are >= 0, so saturating each add equals
clipping the sum, which is what is done here). Input arrays hold spike counts per tick
(SpikeSourceArray sends at most one per neuron and tick; a count c adds the word c times).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

import scipy.sparse

from neurodeploy.format.convolution import ConvGeometry, synapses
from neurodeploy.emulator.inputs import empty_traces, program_inputs, step_range, widened
from neurodeploy.emulator.overflow import Counters, outside_int32, to_traces
from neurodeploy.errors import OptionError
from neurodeploy.format.program import Program, QConnection, QPopulation
from neurodeploy.targets import spinnaker as chip
from neurodeploy.targets import spinnaker_math as sm

RECORDABLE = ("v", "i")  # i: I_syn[exc] - I_syn[inh] after the transfer (what gsyn records), raw bits
RING_BUFFER_MAX = chip.RING_BUFFER_MAX


def total_delays(conn: QConnection) -> np.ndarray:
    """Ticks from send to ring-buffer slot, per stored synapse: attrs.delay + arrays.delay (>= 1)."""
    delay = conn.arrays.get("delay")
    total = int(conn.attrs.get("delay", 0)) + (delay.astype(np.int64) if delay is not None else 0)
    total = np.broadcast_to(np.asarray(total, dtype=np.int64), conn.arrays["weight"].shape)
    if total.size and total.min() < 1:
        raise OptionError(f"connection '{conn.name}': a delay of {int(total.min())} ticks; sPyNNaker needs >= 1")
    return total


def is_exp(pop: QPopulation) -> bool:
    """True for IF_curr_exp, False for IF_curr_delta; other models are refused."""
    if pop.model not in ("IF_curr_exp", "IF_curr_delta"):
        raise OptionError(f"population '{pop.name}': unknown SpiNNaker model {pop.model!r}")
    return pop.model == "IF_curr_exp"


def synapse_list(conn: QConnection) -> tuple[np.ndarray, ...]:
    """(target, source, word, synapse type, total delay) of every stored synapse; a conv
    connection is expanded from its kernel (O(synapses): the readable kernel's way)."""
    total = total_delays(conn)
    a = conn.arrays
    if conn.kind == "conv":
        rows, cols, taps = synapses(a["weight"], ConvGeometry.of(conn.attrs))
        return (rows, cols, a["weight"].reshape(-1)[taps].astype(np.int64),
                a["synapse_type"].reshape(-1)[taps].astype(np.int64), total.reshape(-1)[taps])
    rows = np.repeat(np.arange(conn.n_out, dtype=np.int64), np.diff(a["indptr"]))
    return rows, a["indices"].astype(np.int64), a["weight"].astype(np.int64), a["synapse_type"].astype(np.int64), total


class _Synapses:
    """One connection's words, grouped by (synapse type, delay) into sparse matrices."""

    def __init__(self, conn: QConnection):
        self.conn = conn
        rows, cols, words, types, total = synapse_list(conn)
        self.groups: list[tuple[int, int, scipy.sparse.csr_matrix]] = []
        for kind in (0, 1):
            for d in np.unique(total[types == kind]):
                keep = (types == kind) & (total == d) & (words != 0)
                m = scipy.sparse.csr_matrix((words[keep], (rows[keep], cols[keep])), shape=(conn.n_out, conn.n_in))
                if m.nnz:
                    self.groups.append((kind, int(d), m))
        self.max_delay = max((d for _, d, _ in self.groups), default=1)


class _Core:
    """State of one population (all its cores: slicing does not change the arithmetic)."""

    def __init__(self, pop: QPopulation, shifts: tuple[int, int], batch: int, depth: int):
        p = {k: np.asarray(v).reshape(-1).astype(np.int64) for k, v in pop.params.items()}
        self.pop = pop
        self.exp = is_exp(pop)
        self.shift = (int(shifts[0]), int(shifts[1]))
        n = pop.size
        self.v = np.broadcast_to(p["v_init"], (batch, n)).copy()
        self.i_exc = np.broadcast_to(p["isyn_exc_init"], (batch, n)).copy()
        self.i_inh = np.broadcast_to(p["isyn_inh_init"], (batch, n)).copy()
        self.refract = np.zeros((batch, n), dtype=np.int64)
        self.v_rest, self.v_reset, self.v_thresh = p["v_rest"], p["v_reset"], p["v_thresh"]
        self.i_offset, self.r, self.exp_tc = p["i_offset"], p["r_membrane"], p["exp_tc"]
        self.t_refract = p["t_refract"]
        self.decay = (p["decay_syn_e"], p["decay_syn_i"])
        self.init = (p["init_syn_e"], p["init_syn_i"])
        self.input_scale = p["input_scale"]
        self.depth = depth
        self.rb = np.zeros((depth, 2, batch, n), dtype=np.int64)  # (slot, type, sample, neuron)
        self.i_rec = np.zeros((batch, n), dtype=np.int64)

    def transfer(self, t: int) -> None:
        """The ring-buffer transfer; sets ``ring_events`` (a slot over 0xFFFF) and ``current_events``."""
        slot = t % self.depth
        self.ring_events = np.zeros(self.v.shape, dtype=bool)
        self.current_events = np.zeros(self.v.shape, dtype=bool)
        for kind in (0, 1):
            self.ring_events |= self.rb[slot, kind] > RING_BUFFER_MAX
            r = np.minimum(self.rb[slot, kind], RING_BUFFER_MAX)
            self.rb[slot, kind] = 0
            if not r.any():
                continue
            inp = self._wrap(r << self.shift[kind], self.current_events)
            if self.exp:
                inp = sm.decay_s1615(inp, self.init[kind])
            if kind == 0:
                self.i_exc = self._wrap(self.i_exc + inp, self.current_events)
            else:
                self.i_inh = self._wrap(self.i_inh + inp, self.current_events)

    @staticmethod
    def _wrap(x: np.ndarray, events: np.ndarray) -> np.ndarray:
        """wrap32(x), marking in ``events`` where it changes x (an overflow counter's event)."""
        events |= outside_int32(x)
        return sm.wrap32(x)

    def _membrane(self, active: np.ndarray) -> np.ndarray:
        """V after the update (before refractoriness and threshold); sets ``current_events`` (adds),
        ``alpha_events`` and ``v_events`` where a neuron not refractory wrapped."""
        cur, alpha_ev, v_ev = (np.zeros(self.v.shape, dtype=bool) for _ in range(3))
        if self.exp:
            exc, inh = self.i_exc, self.i_inh
        else:  # sm.mul: floor(a * b / 2**15), wrapped
            exc = self._wrap((self.i_exc * self.input_scale) >> sm.FRACTION_BITS, cur)
            inh = self._wrap((self.i_inh * self.input_scale) >> sm.FRACTION_BITS, cur)
        current = self._wrap(self._wrap(exc - inh, cur) + self.i_offset, cur)
        alpha = self._wrap(self._wrap((current * self.r) >> sm.FRACTION_BITS, alpha_ev) + self.v_rest, alpha_ev)
        gap = self._wrap(alpha - self.v, v_ev)
        v_new = self._wrap(alpha - self._wrap((self.exp_tc * gap) >> sm.FRACTION_BITS, v_ev), v_ev)
        self.current_events |= cur & active
        self.alpha_events, self.v_events = alpha_ev & active, v_ev & active
        return v_new

    def update(self) -> tuple[np.ndarray, np.ndarray]:
        """The neuron update; returns (spikes, V recorded before the update)."""
        v_rec = self.v
        self.i_rec = sm.wrap32(self.i_exc - self.i_inh)
        active = self.refract <= 0
        v_new = self._membrane(active)
        v = np.where(active, v_new, self.v)
        refract = np.where(active, self.refract, self.refract - 1)
        spikes = v >= self.v_thresh
        self.v = np.where(spikes, self.v_reset, v)
        self.refract = np.where(spikes, self.t_refract, refract)
        if self.exp:
            self.i_exc = sm.decay_s1615(self.i_exc, self.decay[0])
            self.i_inh = sm.decay_s1615(self.i_inh, self.decay[1])
        else:
            self.i_exc = np.zeros_like(self.i_exc)
            self.i_inh = np.zeros_like(self.i_inh)
        return spikes, v_rec


def run(program: Program, inputs: np.ndarray | dict[str, np.ndarray], *, record: Iterable[str] = ("v",),
        progress: bool = False, fast: bool = True, overflow: bool = False) -> dict[str, np.ndarray]:
    """Emulate a spinnaker ``program``; returns ``spikes.<pop>`` (0/1) and raw s1615 ``v.<pop>``/``i.<pop>``;
    with ``overflow`` also the overflow counters (emulator/overflow.py).

    ``v.<pop>`` of tick t is V before tick t's update (sPyNNaker's recording), so it lags the
    float reference's v by ``latency + 1`` ticks; spikes lag by ``latency``. ``fast`` uses the
    compiled event-driven path (emulator/spinnaker_fast.py); both paths give the same integers.
    """
    if program.target != "spinnaker":
        raise OptionError(f"this kernel runs spinnaker programs, not {program.target!r}")
    record = tuple(record)
    for item in record:
        if item not in RECORDABLE:
            raise OptionError(f"cannot record {item!r}; the spinnaker emulator records {', '.join(RECORDABLE)}")
    arrays = program_inputs(program, inputs, target_label="SpiNNaker", allow_negative=False)
    if fast and arrays:
        from neurodeploy.emulator import spinnaker_fast
        from neurodeploy.emulator.fixed_point import run_fast

        return run_fast(program, arrays, record, progress, spinnaker_fast, states=RECORDABLE, overflow=overflow)
    return _run_numpy(program, widened(arrays), record, progress, overflow)


def _run_numpy(program: Program, arrays: dict[str, np.ndarray], record: tuple, progress: bool,
               overflow: bool = False) -> dict[str, np.ndarray]:
    batch, steps = next(iter(arrays.values())).shape[:2] if arrays else (1, 0)
    synapses = [_Synapses(c) for c in program.connections]
    shifts = program.attrs["ring_buffer_shift"]
    depth = {p.name: 1 + max((s.max_delay for s in synapses if s.conn.target == p.name), default=1)
             for p in program.populations}
    cores = {p.name: _Core(p, shifts[p.name], batch, depth[p.name]) for p in program.populations}
    outgoing: dict[str, list[_Synapses]] = {}
    for s in synapses:
        outgoing.setdefault(s.conn.source, []).append(s)
    traces = empty_traces(program, batch, steps, record)
    counters = Counters(batch, len(program.populations), 4)
    for t in step_range(steps, progress, "tick"):
        sent: dict[str, np.ndarray] = {name: arr[:, t] for name, arr in arrays.items()}
        for p_index, p in enumerate(program.populations):
            core = cores[p.name]
            core.transfer(t)
            spikes, v_rec = core.update()
            for kind, events in enumerate((core.ring_events, core.current_events, core.alpha_events,
                                           core.v_events)):  # SPINNAKER_KINDS
                counters.add(p_index, kind, events, t)
            if not p.spiking:
                spikes = np.zeros_like(spikes)
            else:
                traces[f"spikes.{p.name}"][:, t] = spikes.reshape((batch,) + p.shape)
            for item in record:
                value = v_rec if item == "v" else core.i_rec
                traces[f"{item}.{p.name}"][:, t] = value.reshape((batch,) + p.shape)
            sent[p.name] = spikes.astype(np.int64)
        # Spikes of tick t land in ring-buffer slots t + d (d >= 1): delivering after every
        # population's update is the same as delivering during the tick.
        for source, x in sent.items():
            if not x.any():
                continue
            for s in outgoing.get(source, []):
                core = cores[s.conn.target]
                for kind, d, m in s.groups:
                    core.rb[(t + d) % core.depth, kind] += np.asarray((m @ x.T).T)
    if overflow:
        traces.update(to_traces(program, counters.counts, counters.first))
    return traces
