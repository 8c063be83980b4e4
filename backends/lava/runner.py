"""Run a loihi2 artifact in Lava 0.10.0 and write its traces (runs INSIDE .venv-lava, Python 3.10).

    python runner.py ART.ndp IN.npz OUT.npz [--record v,u] [--conv auto|sparse] [--summary S.json]
                     [--on-chip] [--progress]
    python runner.py --jobs JOBS.json [--progress]

``IN.npz`` holds one integer array per program input, ``(batch, steps, *input_shape)``.
``OUT.npz`` gets the keys of ``neurodeploy.emulator.fixed_point.run``: ``spikes.<pop>``
(batch, steps, *shape) uint8 for spiking populations and ``v.<pop>`` / ``u.<pop>`` int64 as
recorded, with the emulator's step indexing (index t = the state after Lava's time step t + 1).
``S.json`` says which Lava process each connection runs as (``{"connections": {name: {"kind",
"process", "reason"}}}``); one line per conv connection also goes to stderr.
``JOBS.json`` is a list of ``{"artifact", "input", "output", "record"}`` (optional ``"conv"``,
``"summary"``): several artifacts in one interpreter, so Lava is imported once.

Mapping (docs/backends-lava.md):
- each program input -> ``lava.proc.io.source.RingBuffer`` (the batch's samples back to back);
- each population -> ``lava.proc.lif.process.LIF`` (one per distinct (du, dv, vth): Lava's
  fixed-point LIF holds those as scalars), v initialised from ``v_init``;
- each connection -> ``Dense`` / ``Sparse``, ``DelayDense`` / ``DelaySparse`` where a delay is set;
  integer mantissas, ``weight_exp``, the artifact's sign mode; graded input counts use
  ``num_message_bits``;
- a conv connection -> ``lava.proc.conv.process.Conv`` where its fixed-point model computes exactly
  what the emulator does (``conv_process_refusal``), through reshape/transpose virtual ports;
  otherwise its kernel expanded into a ``Sparse`` matrix;
- ``Monitor`` per recorded ``s_out`` / ``u`` / ``v``; ``Loihi2SimCfg(select_tag="fixed_pt")``.
Samples run one after another on the same compiled network; between two samples u, v and
every connection buffer are set back to their initial values.

Only numpy, scipy, lava and the plain modules ``neurodeploy.format.artifact`` / ``neurodeploy.format.program`` /
``neurodeploy.format.convolution`` (numpy + json) are imported; the main environment's packages are never
put on sys.path.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

# Lava's fixed-point LIF (lava/proc/lif/models.py, AbstractPyLifModelFixed) and what a loihi2
# program must have been compiled for.
# (LAVA_FORMAT, VTH_MAX, READOUT_VTH, DELAY_MAX: neurodeploy/targets/loihi2.py, imported below.)
MAX_BLOCKS = 256  # Lava connections one artifact connection may split into (on a chip)
CONV_SUM_MAX = 2**23 - 1  # PyConvModelFixed wraps its summed output to 24 bits (utils.signed_clamp)
CONV_FIELD_MAX = 127  # Conv's kernel_size, stride, padding, dilation and groups Vars are int8
CONV_POLICIES = ("auto", "sparse")  # auto: Lava's Conv process where it is exact, else Sparse


class RunnerError(Exception):
    """An artifact or input the Lava backend cannot run; the message says which and why."""


# ----------------------------------------------------------------------------- artifact reader

def _neurodeploy_dir() -> Path:
    env = os.environ.get("NEURODEPLOY_PKG")
    here = Path(__file__).resolve()
    candidates = ([Path(env)] if env else []) + [here.parents[2] / "neurodeploy", here.parents[2]]
    for cand in candidates:
        if (cand / "format" / "artifact.py").is_file() and (cand / "format" / "program.py").is_file():
            return cand
    raise RunnerError(f"cannot find neurodeploy/format/artifact.py next to {here}; set NEURODEPLOY_PKG")


def _import_target_facts():
    """Lava's number format and limits, from the target description (a leaf: numpy only)."""
    _import_reader()
    from neurodeploy.targets import loihi2

    return dict(loihi2.LAVA_FORMAT, hop_latency=1), loihi2.VTH_MAX, loihi2.READOUT_VTH, loihi2.LAVA_DELAY_MAX


def _import_reader():
    """neurodeploy.format.artifact and neurodeploy.format.program without running the package's __init__."""
    if "neurodeploy" not in sys.modules:
        pkg = types.ModuleType("neurodeploy")
        pkg.__path__ = [str(_neurodeploy_dir())]
        sys.modules["neurodeploy"] = pkg
    from neurodeploy.format import artifact
    from neurodeploy.format import program

    return artifact, program


LAVA_FORMAT, VTH_MAX, READOUT_VTH, DELAY_MAX = _import_target_facts()


def load_program(path: str):
    artifact, program = _import_reader()
    art = artifact.read(path)
    if "program" not in art.manifest:
        raise RunnerError(f"{path}: the artifact holds no program")
    return program.from_manifest(art.manifest["program"], art.arrays)


# ----------------------------------------------------------------------------- validation

def check_program(prog, label: str) -> None:
    if prog.target != "loihi2":
        raise RunnerError(f"{label}: target '{prog.target}'; the Lava backend runs loihi2 artifacts only "
                          f"(compile with --target loihi2, or run it with --backend emulator)")
    fmt = prog.attrs.get("format", {})
    for key, want in LAVA_FORMAT.items():
        if key in fmt and int(fmt[key]) != want:
            raise RunnerError(f"{label}: number format {key}={fmt[key]}, Lava's fixed-point LIF has {want}")
    if int(prog.attrs.get("hop_latency", 1)) != 1:
        raise RunnerError(f"{label}: hop_latency {prog.attrs['hop_latency']}; every Lava connection adds one step")
    if not prog.inputs:
        raise RunnerError(f"{label}: the program has no input")
    for pop in prog.populations:
        if pop.model != "cuba_lif":
            raise RunnerError(f"{label}: population '{pop.name}' has neuron model '{pop.model}'; "
                              f"Lava's LIF runs cuba_lif only")
        p = pop.params
        _range(label, pop.name, "du", p["du"], 0, 4095)
        _range(label, pop.name, "dv", p["dv"], 0, 4095)
        _range(label, pop.name, "vth", p["vth"], 0, VTH_MAX)
        _range(label, pop.name, "bias_mant", p["bias_mant"], -(2**15), 2**15 - 1)  # int16 in Lava
        _range(label, pop.name, "bias_exp", p["bias_exp"], 0, 15)
        _range(label, pop.name, "v_init", p["v_init"], -(2**23 - 1), 2**23 - 1)
        if "u_init" in p:
            _range(label, pop.name, "u_init", p["u_init"], -(2**23 - 1), 2**23 - 1)
    names = {p.name for p in prog.populations}
    spiking = {p.name for p in prog.populations if p.spiking}
    for conn in prog.connections:
        where = f"{label}: connection '{conn.name}' ({conn.source} -> {conn.target})"
        if conn.kind not in ("dense", "sparse", "conv"):
            raise RunnerError(f"{where}: kind '{conn.kind}' has no Lava process")
        if conn.target not in names:
            raise RunnerError(f"{where}: unknown target population")
        if conn.source not in prog.inputs and conn.source not in spiking:
            raise RunnerError(f"{where}: source is neither an input nor a spiking population")


def _range(label, pop, name, values, lo, hi) -> None:
    values = np.asarray(values)
    if values.size and (values.min() < lo or values.max() > hi):
        raise RunnerError(f"{label}: population '{pop}' parameter {name} spans {values.min()}..{values.max()}; "
                          f"Lava's fixed-point LIF holds {lo}..{hi}")


def integer_inputs(prog, inputs: dict, label: str) -> dict:
    out = {}
    for name, shape in prog.inputs.items():
        if name not in inputs:
            raise RunnerError(f"{label}: no data for input '{name}' (have: {', '.join(sorted(inputs)) or 'none'})")
        arr = np.asarray(inputs[name])
        size = int(np.prod(shape))
        if arr.ndim < 2 or int(np.prod(arr.shape[2:])) != size:
            raise RunnerError(f"{label}: input '{name}': shape {list(arr.shape)} does not match "
                              f"(batch, steps, {', '.join(map(str, shape))})")
        if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or np.any(arr != np.rint(arr))):
            raise RunnerError(f"{label}: input '{name}': the deployed program takes integer spike counts")
        arr = arr.reshape(arr.shape[:2] + (size,)).astype(np.int64)
        if arr.size and (arr.min() < -(2**31) or arr.max() > 2**31 - 1):
            raise RunnerError(f"{label}: input '{name}': values beyond int32 (RingBuffer payloads are int32)")
        out[name] = arr
    shapes = {a.shape[:2] for a in out.values()}
    if len(shapes) != 1:
        raise RunnerError(f"{label}: inputs disagree on (batch, steps): {sorted(shapes)}")
    return out


# ----------------------------------------------------------------------------- weights

def full_matrix(conn):
    """``(matrix, delays)``: the connection as a scipy CSR matrix (n_out, n_in) of integer mantissas, and
    its total delay per synapse (``delay`` attr + per-synapse ``delay`` array) as an int when uniform,
    else a CSR matrix of the same pattern holding ``delay + 1`` (so that no entry is implicit)."""
    import scipy.sparse as sp

    w = np.asarray(conn.arrays["weight"]).astype(np.int64)
    base = int(conn.attrs.get("delay", 0))
    per = conn.arrays.get("delay")
    if conn.kind == "conv":
        if per is not None:
            raise RunnerError(f"connection '{conn.name}': per-synapse delays on a conv connection")
        return conv_matrix(conn), base
    if conn.kind == "dense":
        rows, cols = np.nonzero(np.ones(w.shape, dtype=bool))
        m = sp.csr_matrix((w.reshape(-1), (rows, cols)), shape=w.shape)  # every entry explicit
        per_flat = np.asarray(per).astype(np.int64).reshape(-1) if per is not None else None
    else:
        indptr = np.asarray(conn.arrays["indptr"]).astype(np.int64)
        indices = np.asarray(conn.arrays["indices"]).astype(np.int64)
        m = sp.csr_matrix((w, indices, indptr), shape=(conn.n_out, conn.n_in))
        per_flat = np.asarray(per).astype(np.int64).reshape(-1) if per is not None else None
    if per_flat is None or not per_flat.size or np.all(per_flat == per_flat[0]):
        return m, base + (int(per_flat[0]) if per_flat is not None and per_flat.size else 0)
    d = m.copy().astype(np.int64)
    d.data = per_flat + base + 1
    return m, d


def conv_geometry(conn):
    """The connection's ``ConvGeometry`` (neurodeploy/format/convolution.py), checked against its sizes."""
    from neurodeploy.format import convolution

    w = np.asarray(conn.arrays["weight"])
    try:
        geom = convolution.ConvGeometry.of(conn.attrs)
    except ValueError as exc:
        raise RunnerError(f"connection '{conn.name}': {exc}") from None
    kernel = geom.kernel_2d(w).shape[2:]
    expected = tuple(convolution.out_size(geom.in_shape[d + 1], kernel[d], geom.stride[d], geom.padding[d],
                                          geom.dilation[d]) for d in range(2))
    if expected != tuple(geom.out_shape[1:]) or geom.n_out != conn.n_out or geom.n_in != conn.n_in:
        raise RunnerError(f"connection '{conn.name}': conv geometry {list(conn.attrs['in_shape'])} -> "
                          f"{list(conn.attrs['out_shape'])} does not match n_in {conn.n_in}, n_out {conn.n_out}")
    return geom


def conv_matrix(conn):
    """A conv kernel (O, C/groups, *k) over (C, *spatial) as a CSR matrix (C-order flattening), the same
    cross-correlation as the emulator; built synapse by synapse (neurodeploy/format/convolution.py)."""
    from neurodeploy.format import convolution

    geom = conv_geometry(conn)
    return convolution.as_csr(np.asarray(conn.arrays["weight"]).astype(np.int64), geom)


def sign_mode_of(conn, values: np.ndarray) -> str:
    mode = conn.attrs.get("sign_mode")
    if mode in ("exc", "inh", "mixed"):
        return mode
    if values.size == 0 or values.min() >= 0:
        return "exc"
    return "inh" if values.max() <= 0 else "mixed"


def check_weights(conn, values: np.ndarray, mode: str, label: str) -> None:
    """Lava clips and truncates the mantissas (lava/utils/weightutils.py) by sign mode; the artifact must
    hold values that pass through unchanged, or Lava would run other weights than the emulator."""
    if values.size == 0:
        return
    w = values.astype(np.int64)
    if mode == "inh":
        w = -w
    lo, hi = (-256, 255) if mode == "mixed" else (0, 255)
    t = 1 if mode == "mixed" else 0
    bad = (w < lo) | (w > hi) | ((w >> t) << t != w)
    if np.any(bad):
        sample = np.unique(values[bad])[:5].tolist()
        rule = {"exc": "0..255", "inh": "-255..0", "mixed": "even values in -256..254"}[mode]
        raise RunnerError(f"{label}: connection '{conn.name}': weight mantissas {sample} are not representable "
                          f"with sign mode '{mode}' ({rule}); Lava would clip or truncate them")


# ----------------------------------------------------------------------------- conv process

def conv_process_refusal(conn, geom, peak: int, single: bool, policy: str, on_chip: bool) -> str | None:
    """Why Lava's ``Conv`` (``PyConvModelFixed``) would not compute exactly what the emulator computes
    for this conv connection, or None when it does. ``peak``: the largest |value| its source sends in
    one step (1 for spikes); ``single``: source and target are one process each."""
    if policy != "auto":
        return f"conv={policy} asked for"
    if on_chip:
        return "on a chip (lava-loihi's Conv is not checked against the emulator)"
    if not single:
        return "its source or target is split into several LIF processes"
    exp, delay = int(conn.attrs.get("weight_exp", 0)), int(conn.attrs.get("delay", 0))
    if exp != 0:
        return f"weight_exp {exp} (Lava's fixed-point Conv model does not apply weight_exp)"
    if delay != 0:
        return f"delay {delay} (Conv has no delay line)"
    fields = {"kernel": max(geom.kernel_2d(np.asarray(conn.arrays["weight"])).shape[2:]),
              "stride": max(geom.stride), "padding": max(geom.padding), "dilation": max(geom.dilation),
              "groups": geom.groups}
    too_big = {k: v for k, v in fields.items() if v > CONV_FIELD_MAX}
    if too_big:
        return f"{', '.join(f'{k} {v}' for k, v in too_big.items())} beyond Conv's int8 fields (<= {CONV_FIELD_MAX})"
    kernel = np.asarray(conn.arrays["weight"]).astype(np.int64)
    try:
        check_weights(conn, kernel.reshape(-1), sign_mode_of(conn, kernel.reshape(-1)), "")
    except RunnerError:
        return "kernel mantissas outside 8-bit weights of its sign mode"
    worst = conv_worst_sum(kernel, geom) * peak
    if worst > CONV_SUM_MAX:
        return f"worst per-step sum {worst} > 2^23 - 1 (Conv wraps its sum to 24 bits; the emulator does not)"
    return None


def conv_worst_sum(kernel: np.ndarray, geom) -> int:
    """The largest |sum| one output neuron can get in one step from inputs of magnitude <= 1: the sum of
    |w| over its receptive field (taps on padding excluded), exact by index arithmetic."""
    from neurodeploy.format import convolution

    sums = convolution.row_sums(np.abs(kernel), geom)
    return int(sums.max()) if sums.size else 0


def lava_conv_kernel(kernel: np.ndarray, geom) -> np.ndarray:
    """(O, C/groups, kh, kw) cross-correlation kernel -> Lava's (O, kw, kh, C/groups) true-convolution
    kernel: flipped in both spatial axes and transposed, as lava-dl's netx ``create_conv`` does."""
    w = geom.kernel_2d(np.asarray(kernel).astype(np.int64))
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)).astype(np.int32)


def conv_process(conn, geom, message_bits: int):
    """Lava's ``Conv`` for this connection: input (W, H, C), per-axis fields in (x, y) = (w, h) order."""
    from lava.proc.conv.process import Conv

    c, h, w = geom.in_shape
    xy = {k: (int(v[1]), int(v[0])) for k, v in
          (("stride", geom.stride), ("padding", geom.padding), ("dilation", geom.dilation))}
    return Conv(weight=lava_conv_kernel(conn.arrays["weight"], geom), input_shape=(w, h, c), groups=geom.groups,
                num_weight_bits=8, num_message_bits=message_bits, name=f"{conn.name}[conv]", **xy)


# ----------------------------------------------------------------------------- network

def _scalar_or_array(values: np.ndarray):
    return int(values[0]) if np.all(values == values[0]) else values.astype(np.int64)


def matrix_process(dense: bool, block, delays, max_delay: int, kw: dict):
    """Dense / Sparse for one block of a connection, DelayDense / DelaySparse where it has a delay
    (``delays``: an int when uniform, else a CSR matrix of ``delay + 1`` on the block's pattern)."""
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.sparse.process import DelaySparse, Sparse

    weights = block.toarray().astype(np.int32) if dense else block.astype(np.int32)
    if isinstance(delays, int) and delays == 0:
        return Dense(weights=weights, **kw) if dense else Sparse(weights=weights, **kw)
    if isinstance(delays, int):
        d = block.copy().astype(np.int64)
        d.data = np.full(d.data.shape, delays + 1, dtype=np.int64)
    else:
        d = delays
    d.data = d.data - 1  # explicit zeros are delay 0 for Lava too
    if dense:
        return DelayDense(weights=weights, delays=d.toarray().astype(int), max_delay=max_delay, **kw)
    return DelaySparse(weights=weights, delays=d.astype(int), max_delay=max_delay, **kw)


class Network:
    """The Lava processes of one program, built once and run sample by sample."""

    def __init__(self, prog, inputs: dict, record: tuple, label: str, on_chip: bool = False, conv: str = "auto"):
        if conv not in CONV_POLICIES:
            raise RunnerError(f"conv={conv!r}: choose from {', '.join(CONV_POLICIES)}")
        self.prog, self.label, self.record = prog, label, record
        self.on_chip, self.conv_policy = on_chip, conv
        self.paths = {}  # connection name -> {"kind", "process", "reason"}: what each one runs as
        self.batch, self.steps = next(iter(inputs.values())).shape[:2]
        self._build_sources(inputs)
        self._build_populations()
        self.conns = []
        self.edges = []
        for conn in prog.connections:
            self._connect(conn)
        self._link_components()
        self._build_monitors()

    def _build_sources(self, inputs: dict) -> None:
        """Inputs: all samples back to back; the ring buffer sends column (t - 1) at Lava step t."""
        from lava.proc.io.source import RingBuffer

        total = self.batch * self.steps
        self.sources = {}
        self.graded = {}
        self.peaks = {}  # input name -> largest |count| in one step (a spiking population sends 0/1)
        for name, arr in inputs.items():
            data = arr.transpose(2, 0, 1).reshape(arr.shape[2], total).astype(np.int32)
            self.sources[name] = RingBuffer(data=data)
            binary = bool(np.all((arr == 0) | (arr == 1)))
            peak = int(np.abs(arr).max()) if arr.size else 0
            self.peaks[name] = peak
            self.graded[name] = 0 if binary else min(31, peak.bit_length() + (1 if arr.min() < 0 else 0))

    def _build_populations(self) -> None:
        """One LIF per population. Lava's fixed-point LIF declares du, dv and vth as scalars; per-neuron
        values are passed as arrays, which its model code applies elementwise (lava/proc/lif/models.py).
        On a chip they are split into one LIF per distinct (du, dv, vth) instead."""
        from lava.proc.lif.process import LIF

        self.groups = {}  # pop name -> list of (indices, LIF, v_init, u_init)
        self.lifs = []
        for pop in self.prog.populations:
            p = {k: np.asarray(v).reshape(-1).astype(np.int64) for k, v in pop.params.items()}
            vth = p["vth"].copy()
            if not pop.spiking:
                vth[:] = VTH_MAX if self.on_chip else READOUT_VTH
            keys = np.stack([p["du"], p["dv"], vth], axis=1)
            if self.on_chip:
                uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
                parts = [np.flatnonzero(np.asarray(inverse).reshape(-1) == g) for g in range(len(uniq))]
            else:
                parts = [np.arange(pop.size)]
            groups = []
            u_init = p.get("u_init", np.zeros(pop.size, dtype=np.int64))
            for g, idx in enumerate(parts):
                du, dv, th = (_scalar_or_array(keys[idx, i]) for i in range(3))
                lif = LIF(shape=(idx.size,), du=du, dv=dv, vth=th,
                          bias_mant=p["bias_mant"][idx].astype(np.int32), bias_exp=p["bias_exp"][idx].astype(np.int32),
                          u=u_init[idx].astype(np.int32), v=p["v_init"][idx].astype(np.int32),
                          name=f"{pop.name}[{g}]")
                groups.append((idx, lif, p["v_init"][idx], u_init[idx]))
                self.lifs.append(lif)
            self.groups[pop.name] = groups

    def _build_monitors(self) -> None:
        from lava.proc.monitor.process import Monitor

        self.monitors = []  # (population, group index, 's_out' | 'u' | 'v', Monitor)
        for pop in self.prog.populations:
            for g, (_, lif, _, _) in enumerate(self.groups[pop.name]):
                items = (["s_out"] if pop.spiking else []) + list(self.record)
                for item in items:
                    mon = Monitor()
                    mon.probe(lif.s_out if item == "s_out" else getattr(lif, item), self.batch * self.steps)
                    self.monitors.append((pop, g, item, mon))

    def _connect(self, conn) -> None:
        """A conv connection as Lava's Conv where that is exact, everything else as Dense / Sparse."""
        if conn.kind == "conv":
            geom = conv_geometry(conn)
            if conn.arrays.get("delay") is not None:
                raise RunnerError(f"{self.label}: connection '{conn.name}': per-synapse delays on a conv connection")
            single = len(self._sources(conn)) == 1 and len(self.groups[conn.target]) == 1
            peak = self.peaks.get(conn.source, 1)
            reason = conv_process_refusal(conn, geom, peak, single, self.conv_policy, self.on_chip)
            if reason is None:
                self._connect_conv(conn, geom)
                return
            self.paths[conn.name] = {"kind": "conv", "process": "Sparse", "reason": reason}
        self._connect_matrix(conn)

    def _sources(self, conn) -> list:
        """(indices, process) of the Lava processes that send the connection's source."""
        if conn.source in self.sources:
            return [(np.arange(conn.n_in), self.sources[conn.source])]
        return [(idx, lif) for idx, lif, _, _ in self.groups[conn.source]]

    def _connect_conv(self, conn, geom) -> None:
        """Flat (C*H*W,) ports seen as Lava's (W, H, C) through virtual reshape/transpose ports."""
        (_, src), = self._sources(conn)
        (_, tgt, _, _), = self.groups[conn.target]
        proc = conv_process(conn, geom, self.graded.get(conn.source, 0))
        src.s_out.reshape(tuple(geom.in_shape)).transpose((2, 1, 0)).connect(proc.s_in)
        proc.a_out.transpose((2, 1, 0)).reshape((geom.n_out,)).connect(tgt.a_in)
        self.conns.append(proc)
        self.edges.append((src, tgt))
        self.paths[conn.name] = {"kind": "conv", "process": "Conv", "reason": ""}

    def _connect_matrix(self, conn) -> None:
        from lava.utils.weightutils import SignMode

        label = self.label
        matrix, delays = full_matrix(conn)
        values = matrix.data
        mode = sign_mode_of(conn, values)
        check_weights(conn, values, mode, label)
        uniform = isinstance(delays, int)
        lo = delays if uniform else int(delays.data.min()) - 1
        hi = delays if uniform else int(delays.data.max()) - 1
        if lo < 0:
            raise RunnerError(f"{label}: connection '{conn.name}': negative delay")
        if hi > DELAY_MAX:
            raise RunnerError(f"{label}: connection '{conn.name}': delay {hi} steps; Lava's DelayDense/"
                              f"DelaySparse hold 0..{DELAY_MAX}")
        lava_mode = {"exc": SignMode.EXCITATORY, "inh": SignMode.INHIBITORY, "mixed": SignMode.MIXED}[mode]
        weight_exp = int(conn.attrs.get("weight_exp", 0))
        sources, targets = self._sources(conn), self.groups[conn.target]
        if len(sources) > 1 and weight_exp < 0:
            raise RunnerError(f"{label}: connection '{conn.name}': its source '{conn.source}' is split into "
                              f"{len(sources)} LIF processes (per-neuron du/dv/vth) and weight_exp {weight_exp} < 0 "
                              f"would round each part's sum on its own")
        if len(sources) * len(targets) > MAX_BLOCKS:
            raise RunnerError(f"{label}: connection '{conn.name}' splits into {len(sources) * len(targets)} Lava "
                              f"connections (per-neuron du/dv/vth); at most {MAX_BLOCKS}")
        kinds = set()
        for s_idx, src in sources:
            for t_idx, tgt, _, _ in targets:
                block = matrix[t_idx][:, s_idx]
                if block.nnz == 0 and len(sources) * len(targets) > 1:
                    continue
                kw = dict(weight_exp=weight_exp, sign_mode=lava_mode, num_message_bits=self.graded.get(conn.source, 0),
                          name=f"{conn.name}[{len(self.conns)}]")
                block_delays = delays if uniform else delays[t_idx][:, s_idx]
                proc = matrix_process(conn.kind == "dense", block, block_delays, hi, kw)
                src.s_out.connect(proc.s_in)
                proc.a_out.connect(tgt.a_in)
                self.conns.append(proc)
                self.edges.append((src, tgt))
                kinds.add(type(proc).__name__)
        entry = self.paths.setdefault(conn.name, {"kind": conn.kind, "reason": ""})
        entry["process"] = "+".join(sorted(kinds)) or "none"

    def _link_components(self) -> None:
        """Lava runs the processes connected to the one it is asked to run: tie every other
        component to the first input with an all-zero Dense (it adds nothing)."""
        from lava.proc.dense.process import Dense

        parent = {}

        def find(x):
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for src, tgt in self.edges:
            parent[find(id(src))] = find(id(tgt))
        rb = next(iter(self.sources.values()))

        def link(src, tgt, label):
            zero = Dense(weights=np.zeros((tgt.a_in.shape[0], src.s_out.shape[0]), dtype=np.int32),
                         name=f"link[{label}]")
            src.s_out.connect(zero.s_in)
            zero.a_out.connect(tgt.a_in)
            self.conns.append(zero)
            parent[find(id(src))] = find(id(tgt))

        for lif in self.lifs:  # components holding a population: from the first input
            if find(id(lif)) != find(id(rb)):
                link(rb, lif, lif.name)
        hub = next((lif for lif in self.lifs if find(id(lif)) == find(id(rb))), None)
        for name, other in list(self.sources.items())[1:]:  # inputs that feed nothing
            if hub is not None and find(id(other)) != find(id(rb)):
                link(other, hub, name)

    def reset(self) -> None:
        """u = u_init, v = v_init, every connection buffer empty: the state before a new sample."""
        for groups in self.groups.values():
            for idx, lif, v_init, u_init in groups:
                lif.u.set(u_init.astype(np.int32))
                lif.v.set(v_init.astype(np.int32))
        for proc in self.conns:
            buffer = proc.a_buf if hasattr(proc, "a_buf") else proc.a_buff  # Conv names it a_buf
            buffer.set(np.zeros(buffer.shape, dtype=np.int32))

    def run(self, run_cfg, progress: bool = False, profiler_hook=None) -> dict:
        from lava.magma.core.run_conditions import RunSteps

        root = next(iter(self.sources.values()))
        samples = range(self.batch)
        bar = None
        if progress:
            try:
                from tqdm import tqdm

                bar = tqdm(total=self.batch, desc=f"lava {self.label}", unit="sample", file=sys.stderr)
            except ImportError:
                bar = None
        try:
            for b in samples:
                if b:
                    self.reset()
                try:
                    root.run(condition=RunSteps(num_steps=self.steps), run_cfg=run_cfg)
                except RuntimeError as exc:
                    reason = _actor_errors(root) or exc
                    raise RunnerError(f"{self.label}: Lava failed in sample {b}: {reason}") from None
                if bar is not None:
                    bar.update(1)
                elif progress:
                    print(f"lava {self.label}: sample {b + 1}/{self.batch}", file=sys.stderr, flush=True)
            traces = self.collect()
        finally:
            if bar is not None:
                bar.close()
            root.stop()
        return traces

    def collect(self) -> dict:
        traces = {}
        for pop in self.prog.populations:
            if pop.spiking:
                traces[f"spikes.{pop.name}"] = np.zeros((self.batch, self.steps, pop.size), dtype=np.uint8)
            for item in self.record:
                traces[f"{item}.{pop.name}"] = np.zeros((self.batch, self.steps, pop.size), dtype=np.int64)
        for pop, g, item, mon in self.monitors:
            idx, lif, _, _ = self.groups[pop.name][g]
            data = mon.get_data()[lif.name][item]  # (batch * steps, n) floats holding integers
            data = np.rint(np.asarray(data, dtype=np.float64)).astype(np.int64)
            data = data.reshape(self.batch, self.steps, idx.size)
            key = f"spikes.{pop.name}" if item == "s_out" else f"{item}.{pop.name}"
            traces[key][:, :, idx] = data
        for pop in self.prog.populations:
            for key in [k for k in traces if k.endswith(f".{pop.name}")]:
                traces[key] = traces[key].reshape((self.batch, self.steps) + tuple(pop.shape))
        return traces


def _actor_errors(root) -> str:
    """The exceptions Lava's process models raised (Lava itself only logs them at INFO level)."""
    try:
        actors = root._runtime._messaging_infrastructure.actors
        errors = [a.exception for a in actors if a.exception]
    except Exception:  # noqa: BLE001 - private API; fall back to Lava's own message
        return ""
    lines = sorted({f"{type(e).__name__}: {e}" for e, _ in errors})
    return "; ".join(lines)


# ----------------------------------------------------------------------------- configurations

def simulation_config():
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt")


def hardware_config():
    """Loihi2HwCfg for a real chip; needs Intel's lava-loihi extension and a Loihi 2 host."""
    try:
        from lava.magma.core.run_configs import Loihi2HwCfg
        from lava.utils import loihi, slurm
    except ImportError as exc:  # pragma: no cover - lava-nc always has these
        raise RunnerError(f"--on-chip: this Lava has no Loihi2HwCfg ({exc})") from None
    if not loihi.is_installed():
        raise RunnerError("--on-chip needs Intel's lava-loihi extension (module lava.utils.loihi2_profiler, "
                          "available to Intel INRC members) installed in .venv-lava, and a Loihi 2 system "
                          "(INRC SLURM partition, or LOIHI_HOST=<address> of an Oheo Gulch / Kapoho Point host); "
                          "it is not installed here: run without --on-chip for Lava's bit-accurate CPU model")
    host = os.environ.get("LOIHI_HOST")
    if host:
        loihi.use_ethernet_host(host)
    elif slurm.is_available():
        loihi.use_slurm_host(partition=os.environ.get("LOIHI_PARTITION"))
    else:
        raise RunnerError("--on-chip: lava-loihi is installed but no Loihi 2 host is reachable: "
                          "SLURM is not available and LOIHI_HOST is not set")
    return Loihi2HwCfg()


def attach_profiler(run_cfg, steps: int):
    """The lava-loihi profiler for a hardware run, when there is one (None otherwise)."""
    try:
        from lava.utils.profiler import Profiler

        prof = Profiler.init(run_cfg)
        prof.execution_time_probe(num_steps=steps, buffer_size=min(steps, 1024))
        prof.energy_probe(num_steps=steps)
        prof.activity_probe()
        return prof
    except Exception as exc:  # noqa: BLE001 - profilers are optional
        print(f"lava: no on-chip profiler ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def profile_results(prof) -> dict:
    out = {}
    for name in ("energy_breakdown", "power_breakdown", "execution_time_breakdown"):
        fn = getattr(prof, name, None)
        if fn is None:
            continue
        try:
            out[name] = [float(x) if np.isscalar(x) else np.asarray(x).tolist() for x in fn()]
        except Exception as exc:  # noqa: BLE001
            out[name] = f"unavailable: {exc}"
    return out


# ----------------------------------------------------------------------------- entry points

def run_one(artifact: str, inputs_path: str, output: str, record, on_chip: bool = False,
            progress: bool = False, profile_out: str | None = None, conv: str = "auto",
            summary: str | None = None) -> None:
    label = Path(artifact).name
    prog = load_program(artifact)
    check_program(prog, label)
    with np.load(inputs_path, allow_pickle=False) as data:
        raw = {k: data[k] for k in data.files}
    inputs = integer_inputs(prog, raw, label)
    record = tuple(record)
    for item in record:
        if item not in ("v", "u"):
            raise RunnerError(f"cannot record '{item}': choose from v, u")
    cfg = hardware_config() if on_chip else simulation_config()
    net = Network(prog, inputs, record, label, on_chip=on_chip, conv=conv)
    for line in path_lines(net.paths):
        print(f"lava {label}: {line}", file=sys.stderr, flush=True)
    prof = attach_profiler(cfg, net.batch * net.steps) if on_chip else None
    traces = net.run(cfg, progress=progress)
    _write_npz(output, traces)
    if summary:
        Path(summary).write_text(json.dumps({"connections": net.paths}, indent=1))
    if prof is not None and profile_out:
        Path(profile_out).write_text(json.dumps(profile_results(prof), indent=1))


def path_lines(paths: dict) -> list[str]:
    """One line per conv connection: the Lava process it runs as, and why not Conv where it is not."""
    lines = []
    for name, entry in paths.items():
        if entry["kind"] != "conv":
            continue
        why = f" ({entry['reason']})" if entry["reason"] else ""
        lines.append(f"conv connection '{name}' -> {entry['process']}{why}")
    return lines


def _write_npz(path: str, arrays: dict) -> None:
    _import_reader()  # neurodeploy's leaf modules, without its __init__
    from neurodeploy.format import atomic

    with atomic.open_atomic(path, "wb") as handle:
        np.savez(handle, **arrays)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("artifact", nargs="?")
    ap.add_argument("inputs", nargs="?")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--record", default="", help="comma-separated: v, u")
    ap.add_argument("--jobs", help="JSON list of {artifact, input, output, record}")
    ap.add_argument("--on-chip", action="store_true", help="Loihi2HwCfg on a Loihi 2 system (lava-loihi)")
    ap.add_argument("--profile-out", help="with --on-chip: write the profiler's results here (JSON)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--conv", default="auto", choices=CONV_POLICIES,
                    help="auto: conv connections as Lava's Conv process where it is exact, else Sparse; "
                         "sparse: always Sparse")
    ap.add_argument("--summary", help="write which Lava process each connection runs as here (JSON)")
    ap.add_argument("--error-file", help="write the error message here on failure")
    args = ap.parse_args(argv)
    started = time.time()
    try:
        if args.jobs:
            jobs = json.loads(Path(args.jobs).read_text())
            for i, job in enumerate(jobs):
                try:
                    run_one(job["artifact"], job["input"], job["output"], job.get("record", ()),
                            on_chip=args.on_chip, progress=args.progress, conv=job.get("conv", args.conv),
                            summary=job.get("summary"))
                except RunnerError:
                    raise
                except Exception as exc:
                    raise RunnerError(f"job {i} ({Path(job['artifact']).name}): {type(exc).__name__}: {exc}") from exc
                if args.progress:
                    print(f"lava: job {i + 1}/{len(jobs)} done ({time.time() - started:.1f} s)", file=sys.stderr,
                          flush=True)
        else:
            if not (args.artifact and args.inputs and args.output):
                ap.error("give ART.ndp IN.npz OUT.npz, or --jobs JOBS.json")
            record = [r.strip() for r in args.record.split(",") if r.strip()]
            run_one(args.artifact, args.inputs, args.output, record, on_chip=args.on_chip,
                    progress=args.progress, profile_out=args.profile_out, conv=args.conv, summary=args.summary)
    except Exception as exc:  # noqa: BLE001 - one line for the caller, traceback only when asked
        name = type(exc).__name__
        message = str(exc) if name in ("RunnerError", "ArtifactError") else f"{name}: {exc}"
        message = " ".join(message.split())
        if os.environ.get("NEURODEPLOY_LAVA_TRACEBACK"):
            import traceback

            traceback.print_exc()
        if args.error_file:
            Path(args.error_file).write_text(message)
        print(message, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
