"""An independent check that a compiled artifact stays inside its target's limits.

Written from the target data modules (``neurodeploy/targets/<name>.py``: number formats and per-core
limits), ``docs/targets.md`` and the artifact's own contents (manifest, program arrays, mapping),
without calling ``compiler/mapping.py`` or the quantizers: every count (synapses, distinct
sources, output axons, memory, delays) is recomputed here from the weights themselves.

``check_artifact(art)`` returns a list of violations (empty: everything holds). What is checked:

structure    every connection names an existing source and target, sizes agree, CSR arrays are
             well formed, per-synapse delay arrays match the synapses.
formats      loihi2: weight mantissas within 8 bits (0..255 for excitatory, -255..0 for inhibitory,
             even and -256..254 for mixed sign), weight exponent within its range, vth within 17
             bits (so vth << 6 fits 24 bits), du/dv in 0..4095, bias mantissa within 13 signed bits
             and its exponent within 0..7, v_init within 24 bits, delays within 0..62.
             emulator: the same with the generic profile's widths (8-bit weights, 24-bit state,
             12-bit decays).
             spinnaker: uint16 synaptic words (synapse lists or conv kernels), synapse types 0/1,
             ring-buffer shifts 0..16 with the worst-case summed words of every neuron inside the
             uint16 ring buffer and ``r << shift`` inside int32, s16.15 parameters inside int32, the
             load-time propagators equal to what the core computes from the parameters
             (spinnaker_math), delays within 1..288 ticks.
mapping      cores numbered in order, chip = core // cores_per_chip, chips used within the chips
             available; every population (and on SpiNNaker every input) is covered by its core
             slices exactly (every neuron on exactly one core); neurons per core within the target's
             limit and the --neurons-per-core cap; per core: fan-in axons, memory (loihi2), fan-out
             axons (loihi2), DTCM and SDRAM (spinnaker), synapses per row (spinnaker) within the
             target's limits; and the usage the mapper recorded is never below the recomputed usage.
             A core slice is a strip (start:stop) or a 2-D tile (``tile``: channels x rows x
             columns; neurodeploy/format/core_slices.py); loihi2 memory counts each conv kernel
             once per core for the output channels it holds (targets/loihi2.py, SHARED_CONV_WEIGHTS).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.format import artifact as artifact_format
from neurodeploy.format import convolution
from neurodeploy.format import core_slices
from neurodeploy.format import program as program_format
from neurodeploy.targets import emulator as emulator_data
from neurodeploy.targets import get as get_target
from neurodeploy.targets import loihi2 as loihi2_data
from neurodeploy.targets import spinnaker as spinnaker_data
from neurodeploy.targets import spinnaker_math as sm

INT32 = (-(2**31), 2**31 - 1)

# SpiNNaker per-core DTCM estimate (bytes). The target module gives DTCM_BYTES (64 KiB) and the
# ring-buffer layout (two synapse types x delay slots x neurons x uint16); the per-neuron state of
# IF_curr_exp/IF_curr_delta (neuron, synapse, input and threshold structs) and a fixed stack/code
# reserve are estimates: sPyNNaker's structs hold about 22 words per neuron.
SPINNAKER_NEURON_BYTES = 88
SPINNAKER_RESERVED_BYTES = 2048
SPINNAKER_SYNAPSE_BYTES = 4  # one 32-bit word per synapse in SDRAM
SPINNAKER_ROW_HEADER_BYTES = 16  # one row header per source neuron


@dataclass
class Synapses:
    """One connection as explicit synapses (target row, source column) with nonzero weight."""

    rows: np.ndarray
    cols: np.ndarray
    delays: np.ndarray  # total delay of each synapse, in steps/ticks
    taps: np.ndarray | None = None  # flat index of each synapse's entry in the weight array


def _none() -> Synapses:
    empty = np.zeros(0, dtype=np.int64)
    return Synapses(empty, empty, empty, empty)


def load(art_or_bytes: Any):
    """(manifest, program) from an Artifact, its bytes, or a path (read back through the file format)."""
    if isinstance(art_or_bytes, (bytes, bytearray)):
        art = artifact_format.from_bytes(bytes(art_or_bytes))
    elif isinstance(art_or_bytes, artifact_format.Artifact):
        art = artifact_format.from_bytes(artifact_format.to_bytes(art_or_bytes))
    else:
        art = artifact_format.read(art_or_bytes)
    program = program_format.from_manifest(art.manifest["program"], art.arrays)
    return art.manifest, program


def check_artifact(art_or_bytes: Any, *, neurons_per_core: int | None = None,
                   chips: int | None = None) -> list[str]:
    manifest, program = load(art_or_bytes)
    errors: list[str] = []
    target = manifest["target"]
    if program.target != target:
        errors.append(f"program target {program.target!r} != artifact target {target!r}")
    sizes = _sizes(program, errors)
    warned = {f["layer"] for f in manifest.get("health", {}).get("findings", []) if f["check"] == "saturation_risk"}
    synapses = {}
    for c in program.connections:
        try:
            synapses[c.name] = _synapses(c, sizes, {p.name for p in program.populations}, errors)
        except Exception as exc:  # noqa: BLE001 - a malformed connection is a finding, not a crash
            errors.append(f"connection '{c.name}': cannot read its synapses: {type(exc).__name__}: {exc}")
    if target == "loihi2":
        _check_fixed_point(program, errors, weight_bits=loihi2_data.WEIGHT_BITS,
                           exp_range=loihi2_data.WEIGHT_EXP_RANGE, vth_max=loihi2_data.VTH_MAX,
                           decay_bits=loihi2_data.DECAY_BITS, bias_bits=loihi2_data.BIAS_MANT_BITS,
                           bias_exp=loihi2_data.BIAS_EXP_RANGE, state_bits=loihi2_data.STATE_BITS,
                           delay_range=(0, loihi2_data.DELAY_MAX), synapses=synapses,
                           activation_shift=loihi2_data.ACTIVATION_SHIFT, warned=warned)
    elif target == "emulator":
        profile = emulator_data.Profile()
        state_max = 2 ** (profile.state_bits - 1) - 1
        _check_fixed_point(program, errors, weight_bits=profile.weight_bits, exp_range=(0, profile.state_bits),
                           vth_max=state_max, decay_bits=profile.decay_bits, bias_bits=profile.state_bits,
                           bias_exp=(0, 0), state_bits=profile.state_bits, delay_range=(0, None),
                           synapses=synapses, activation_shift=0, warned=warned)
    elif target == "spinnaker":
        _check_spinnaker(program, errors, synapses)
    else:
        errors.append(f"unknown target {target!r}")
    _check_mapping(manifest, program, sizes, synapses, errors, neurons_per_core=neurons_per_core, chips=chips)
    return errors


# ---------------------------------------------------------------- structure

def _sizes(program, errors: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name, shape in program.inputs.items():
        sizes[name] = math.prod(shape)
    for pop in program.populations:
        if pop.name in sizes:
            errors.append(f"population '{pop.name}' is named twice")
        sizes[pop.name] = pop.size
        if pop.size < 1:
            errors.append(f"population '{pop.name}' has no neurons")
        for key, value in pop.params.items():
            if np.asarray(value).size != pop.size:
                errors.append(f"population '{pop.name}': parameter {key} has {np.asarray(value).size} values "
                              f"for {pop.size} neurons")
        scale = np.asarray(pop.scale, dtype=np.float64)
        if scale.size != pop.size or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            errors.append(f"population '{pop.name}': voltage scale is not positive and finite per neuron")
    return sizes


def _synapses(c, sizes: dict[str, int], populations: set[str], errors: list[str]) -> Synapses:
    where = f"connection '{c.name}'"
    if c.source not in sizes or c.target not in populations:
        errors.append(f"{where}: source '{c.source}' or target population '{c.target}' does not exist")
    if sizes.get(c.source) != c.n_in or sizes.get(c.target) != c.n_out:
        errors.append(f"{where}: n_in/n_out {c.n_in}/{c.n_out} disagree with the sizes of "
                      f"'{c.source}'/'{c.target}' ({sizes.get(c.source)}/{sizes.get(c.target)})")
    w = np.asarray(c.arrays["weight"])
    if w.dtype.kind not in "iu":
        errors.append(f"{where}: weights are {w.dtype}, not integers")
    uniform = int(c.attrs.get("delay", 0))
    per = c.arrays.get("delay")
    if c.kind == "dense":
        if w.shape != (c.n_out, c.n_in):
            errors.append(f"{where}: dense weight shape {w.shape} != ({c.n_out}, {c.n_in})")
            return _none()
        rows, cols = np.nonzero(w)
        taps = rows * c.n_in + cols
        if per is not None:
            if per.shape != w.shape:
                errors.append(f"{where}: per-synapse delays of shape {per.shape} for weights {w.shape}")
                return Synapses(rows, cols, np.full(rows.size, uniform), taps)
            delays = uniform + per[rows, cols]
        else:
            delays = np.full(rows.size, uniform)
        return Synapses(rows, cols, delays, taps)
    if c.kind == "sparse":
        indptr, indices = np.asarray(c.arrays["indptr"]), np.asarray(c.arrays["indices"])
        ok = (indptr.ndim == 1 and indptr.size == c.n_out + 1 and indptr[0] == 0 and np.all(np.diff(indptr) >= 0)
              and indptr[-1] == indices.size == w.size and (indices.size == 0 or
                                                             (indices.min() >= 0 and indices.max() < c.n_in)))
        if not ok:
            errors.append(f"{where}: malformed CSR (indptr {indptr.size} for {c.n_out} rows, {indices.size} "
                          f"indices, {w.size} weights, n_in {c.n_in})")
            return _none()
        rows = np.repeat(np.arange(c.n_out), np.diff(indptr))
        keep = w != 0
        if per is not None and per.size != w.size:
            errors.append(f"{where}: {per.size} per-synapse delays for {w.size} synapses")
            per = None
        delays = uniform + (per if per is not None else 0) + np.zeros(w.size, dtype=np.int64)
        return Synapses(rows[keep], indices[keep], delays[keep], np.flatnonzero(keep))
    if c.kind == "conv":
        rows, cols, taps = _conv_synapses(c, errors)
        if per is not None:
            errors.append(f"{where}: per-synapse delays on a convolution")
        return Synapses(rows, cols, np.full(rows.size, uniform), taps)
    errors.append(f"{where}: unknown connection kind {c.kind!r}")
    return _none()


def _conv_synapses(c, errors: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (output, input, kernel entry) a 1-D or 2-D convolution connects with a nonzero
    kernel entry inside the input grid, from neurodeploy/format/convolution.py's synapse list (its
    geometry checked here against the connection's sizes and kernel first)."""
    k = np.asarray(c.arrays["weight"])
    where = f"connection '{c.name}'"
    empty = np.zeros(0, dtype=np.int64)
    try:
        geom = convolution.ConvGeometry.of(c.attrs)
    except (KeyError, TypeError, ValueError) as exc:
        errors.append(f"{where}: unreadable conv geometry ({type(exc).__name__}: {exc})")
        return empty, empty, empty
    if k.ndim != len(c.attrs["in_shape"]) + 1 or k.ndim not in (3, 4):
        errors.append(f"{where}: conv kernel of {k.ndim} dimensions for input shape {c.attrs['in_shape']}")
        return empty, empty, empty
    kernel = geom.kernel_2d(k)
    (cin, h, w), (cout, oh, ow) = geom.in_shape, geom.out_shape
    if geom.n_in != c.n_in or geom.n_out != c.n_out or kernel.shape[0] != cout or kernel.shape[1] * geom.groups != cin:
        errors.append(f"{where}: conv geometry {c.attrs['in_shape']} -> {c.attrs['out_shape']} disagrees with "
                      f"n_in/n_out {c.n_in}/{c.n_out} or kernel {k.shape}")
        return empty, empty, empty
    (sy, sx), (py, px), (dy, dx), (kh, kw) = geom.stride, geom.padding, geom.dilation, kernel.shape[2:]
    if (h + 2 * py - dy * (kh - 1) - 1) // sy + 1 != oh or (w + 2 * px - dx * (kw - 1) - 1) // sx + 1 != ow:
        errors.append(f"{where}: conv output {oh}x{ow} does not follow from input {h}x{w}, kernel {kh}x{kw}")
        return empty, empty, empty
    return convolution.synapses(k, geom)


# ---------------------------------------------------------------- number formats

def _range(errors: list[str], where: str, values, lo, hi) -> None:
    values = np.asarray(values)
    if values.size == 0:
        return
    vmin, vmax = int(values.min()), int(values.max())
    if (lo is not None and vmin < lo) or (hi is not None and vmax > hi):
        errors.append(f"{where}: values {vmin}..{vmax} outside {lo}..{hi}")


def _check_fixed_point(program, errors: list[str], *, weight_bits: int, exp_range, vth_max: int, decay_bits: int,
                       bias_bits: int, bias_exp, state_bits: int, delay_range, synapses, activation_shift: int,
                       warned: set[str]) -> None:
    mant = 2**weight_bits - 1
    for c in program.connections:
        where = f"connection '{c.name}'"
        w = np.asarray(c.arrays["weight"]).astype(np.int64)
        mode = c.attrs.get("sign_mode")
        exp = c.attrs.get("weight_exp")
        if exp is None or not (exp_range[0] <= int(exp) <= exp_range[1]):
            errors.append(f"{where}: weight exponent {exp} outside {exp_range}")
        if mode == "exc":
            _range(errors, f"{where} excitatory mantissas", w, 0, mant)
        elif mode == "inh":
            _range(errors, f"{where} inhibitory mantissas", w, -mant, 0)
        elif mode == "mixed":
            _range(errors, f"{where} mixed-sign mantissas", w, -(2**weight_bits), 2**weight_bits - 2)
            if np.any(w % 2):
                errors.append(f"{where}: mixed-sign mantissas must be even (the lowest bit holds no value), "
                              f"found {int(np.count_nonzero(w % 2))} odd")
        else:
            errors.append(f"{where}: unknown sign mode {mode!r}")
        d = synapses.get(c.name)
        if d is not None:
            _range(errors, f"{where} synaptic delays", d.delays, delay_range[0], delay_range[1])
        # Dynamic range: the summed input (every source firing) is an int32 in the kernels (Lava's
        # Dense output, then << activation shift); beyond it Lava wraps around (the generic profile
        # saturates). Allowed only where the health report warns that this range can be exceeded.
        if d is not None and w.size and c.target not in warned:
            worst = int(_worst_row_sum(c, w, d).max()) * 2 ** (max(int(exp or 0), 0) + activation_shift)
            if worst > INT32[1]:
                errors.append(f"{where}: worst-case summed input {worst} exceeds int32 and the health report "
                              f"gives '{c.target}' no saturation_risk warning")
    state_max = 2 ** (state_bits - 1) - 1
    bias_max = 2 ** (bias_bits - 1)
    for pop in program.populations:
        p, where = pop.params, f"population '{pop.name}'"
        missing = [key for key in ("du", "dv", "vth", "bias_mant", "bias_exp", "v_init") if key not in p]
        if missing:
            errors.append(f"{where}: parameters {missing} are missing")
            continue
        _range(errors, f"{where} du", p["du"], 0, 2**decay_bits - 1)
        _range(errors, f"{where} dv", p["dv"], 0, 2**decay_bits - 1)
        _range(errors, f"{where} vth", p["vth"], 0, vth_max)
        _range(errors, f"{where} bias mantissa", p["bias_mant"], -bias_max, bias_max - 1)
        _range(errors, f"{where} bias exponent", p["bias_exp"], bias_exp[0], bias_exp[1])
        _range(errors, f"{where} v_init", p["v_init"], -state_max, state_max)
        bias = np.asarray(p["bias_mant"]).astype(np.int64) << np.asarray(p["bias_exp"]).astype(np.int64)
        _range(errors, f"{where} bias", bias, -state_max, state_max)


def _worst_row_sum(c, w: np.ndarray, d: Synapses) -> np.ndarray:
    """Per target neuron: sum of |mantissa| over its synapses (every source active)."""
    if c.kind == "dense":
        return np.abs(w).sum(axis=1)
    if c.kind == "sparse":
        out = np.zeros(c.n_out, dtype=np.int64)
        rows = np.repeat(np.arange(c.n_out), np.diff(np.asarray(c.arrays["indptr"])))
        np.add.at(out, rows, np.abs(w))
        return out
    return np.array([int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max())])


def _check_spinnaker(program, errors: list[str], synapses) -> None:
    shifts = program.attrs.get("ring_buffer_shift", {})
    sums = {p.name: np.zeros((2, p.size), dtype=np.int64) for p in program.populations}
    for c in program.connections:
        where = f"connection '{c.name}'"
        w = np.asarray(c.arrays["weight"]).astype(np.int64)
        types = np.asarray(c.arrays.get("synapse_type", np.zeros(0))).astype(np.int64)
        _range(errors, f"{where} synaptic words (uint16)", w, 0, spinnaker_data.RING_BUFFER_MAX)
        if types.shape != w.shape or (types.size and not set(np.unique(types).tolist()) <= {0, 1}):
            errors.append(f"{where}: synapse types must be 0/1, one per synapse")
            continue
        d = synapses.get(c.name)
        if d is not None:
            _range(errors, f"{where} delays (ticks)", d.delays, 1,
                   spinnaker_data.DELAY_SLOTS_256 * spinnaker_data.DELAY_EXTENSION_FACTOR)
        conn_shift = c.attrs.get("ring_buffer_shift")
        if conn_shift is not None and list(conn_shift) != list(shifts.get(c.target, conn_shift)):
            errors.append(f"{where}: ring-buffer shifts {conn_shift} differ from the population's "
                          f"{shifts.get(c.target)}")
        if c.kind in ("sparse", "conv") and c.target in sums and d is not None:
            words, kinds = w.reshape(-1)[d.taps], types.reshape(-1)[d.taps]
            for s in (0, 1):
                np.add.at(sums[c.target][s], d.rows[kinds == s], words[kinds == s])
        elif c.kind not in ("sparse", "conv"):
            errors.append(f"{where}: SpiNNaker connections are synapse lists (sparse) or conv kernels, got {c.kind}")
    for pop in program.populations:
        where = f"population '{pop.name}'"
        shift = shifts.get(pop.name)
        if shift is None or len(shift) != 2:
            errors.append(f"{where}: no ring-buffer shifts recorded")
            continue
        for s in (0, 1):
            if not 0 <= int(shift[s]) <= 16:
                errors.append(f"{where}: ring-buffer shift {shift[s]} outside 0..16")
            peak = int(sums[pop.name][s].max()) if pop.size else 0
            if peak > spinnaker_data.RING_BUFFER_MAX:
                errors.append(f"{where}: worst-case summed {('exc', 'inh')[s]} words {peak} exceed the uint16 "
                              f"ring buffer ({spinnaker_data.RING_BUFFER_MAX}): inputs would saturate")
            if (min(peak, spinnaker_data.RING_BUFFER_MAX) << int(shift[s])) > INT32[1]:
                errors.append(f"{where}: worst-case ring-buffer input {peak} << {shift[s]} overflows int32")
        p = {k: np.asarray(v).astype(np.int64).reshape(-1) for k, v in pop.params.items()}
        for key, value in p.items():
            _range(errors, f"{where} {key}", value, INT32[0] if not key.startswith(("decay", "init")) else 0,
                   INT32[1] if not key.startswith(("decay", "init")) else 2**32 - 1)
        for key in ("tau_m", "cm"):
            _range(errors, f"{where} {key}", p[key], 1, None)
        _range(errors, f"{where} exp_tc", p["exp_tc"], 0, sm.ONE)
        _range(errors, f"{where} tau_refrac", p["tau_refrac"], 0, 0)
        ts = int(program.attrs.get("time_step_bits", 0))
        if ts < 1:
            errors.append("program: no time step")
            continue
        tau_syn = np.where(p["tau_syn_e"] > 0, p["tau_syn_e"], sm.ONE)
        got = sm.propagators(ts, p["tau_m"], p["cm"], tau_syn, tau_syn, p["tau_refrac"])
        for key, value in (("r_membrane", got.r_membrane), ("exp_tc", got.exp_tc), ("t_refract", got.t_refract)):
            if not np.array_equal(np.asarray(value).reshape(-1), p[key]):
                errors.append(f"{where}: recorded {key} differs from what the core computes at load time")
        if pop.model == "IF_curr_exp":
            if not (np.array_equal(got.decay_syn_e.reshape(-1), p["decay_syn_e"])
                    and np.array_equal(got.init_syn_e.reshape(-1), p["init_syn_e"])):
                errors.append(f"{where}: recorded synaptic decay/init differ from the core's own")
        if pop.spiking:
            bad = p["v_thresh"] <= p["v_reset"]
            if np.any(bad):
                errors.append(f"{where}: V_thresh <= V_reset for {int(bad.sum())} neurons (spikes every tick)")


# ---------------------------------------------------------------- mapping

def _check_mapping(manifest, program, sizes, synapses, errors: list[str], *, neurons_per_core, chips) -> None:
    m = manifest["mapping"]
    target = get_target(manifest["target"])
    cores = m["cores"]
    if not m.get("fits", False):
        errors.append("mapping says it does not fit")
    for row in m.get("limits", []):
        if row["margin"] < 0:
            errors.append(f"mapping limit table: {row['limit']} {row['value']} > {row['size']}")
    cap = min(neurons_per_core or target.neurons_per_core, target.neurons_per_core)
    per_chip = target.cores_per_chip
    for i, core in enumerate(cores):
        if core["core"] != i:
            errors.append(f"core {i} is numbered {core['core']}")
        if core["chip"] != core["core"] // per_chip:
            errors.append(f"core {core['core']} on chip {core['chip']}, expected {core['core'] // per_chip}")
        n = core_slices.slice_size(core)
        if n < 1 or n > cap:
            errors.append(f"core {core['core']} ('{core['population']}') holds {n} neurons; limit {cap}")
    used = (len(cores) + per_chip - 1) // per_chip
    if m["chips_used"] != used:
        errors.append(f"chips_used {m['chips_used']} for {len(cores)} cores at {per_chip} per chip")
    available = chips or (target.chips_per_board if target.name != "loihi2" else 1)
    if used > available:
        errors.append(f"{used} chips used, {available} available")
    if target.name == "spinnaker":
        boards = max(1, available // target.chips_per_board)
        if len(cores) > spinnaker_data.USABLE_CORES_SPINN5 * boards:
            errors.append(f"{len(cores)} cores, more than the {spinnaker_data.USABLE_CORES_SPINN5} usable per board")
    # coverage: every neuron (and SpiNNaker input) on exactly one core
    mapped = [p.name for p in program.populations]
    if target.name == "spinnaker":
        mapped = list(program.inputs) + mapped
    for name in set(c["population"] for c in cores) - set(mapped):
        errors.append(f"cores hold '{name}', which is not a mapped population")
    slices: dict[str, list[dict]] = {}
    for core in cores:
        slices.setdefault(core["population"], []).append(core)
    for name in mapped:
        count = np.zeros(sizes.get(name, 0), dtype=np.int64)
        for core in slices.get(name, []):
            start, stop = core["start"], core["stop"]
            tile = core.get("tile")  # a 2-D tile: channels x rows x columns of a (C, H, W) population
            if start < 0 or stop > count.size or start >= stop or (
                    tile is not None and (int(np.prod(tile["shape"])) != count.size or any(
                        not 0 <= a < b <= n for (a, b), n in zip((tile["channels"], tile["rows"], tile["cols"]),
                                                                 tile["shape"])))):
                errors.append(f"'{name}': slice {start}:{stop} (tile {tile}) outside 0:{count.size}")
                continue
            count[core_slices.slice_indices(core)] += 1
        if count.size and (count.min() != 1 or count.max() != 1):
            errors.append(f"'{name}': {int(np.sum(count == 0))} neurons on no core, "
                          f"{int(np.sum(count > 1))} on several")
    if target.name == "emulator":
        return
    # per-core resources, recomputed from the synapses
    core_of = {name: np.full(sizes.get(name, 0), -1, dtype=np.int64) for name in sizes}
    for core in cores:
        if core["population"] in core_of:
            core_of[core["population"]][core_slices.slice_indices(core)] = core["core"]
    fan_out: dict[int, int] = {}
    if target.name == "loihi2":  # output axons: one per (source neuron, destination core) pair
        for c in program.connections:
            d = synapses.get(c.name)
            if d is None or c.source not in core_of or c.target not in core_of:
                continue
            pairs = np.unique(np.stack([d.cols, core_of[c.target][d.rows]]), axis=1) if d.cols.size else \
                np.zeros((2, 0), dtype=np.int64)
            for core_id, count in zip(*np.unique(core_of[c.source][pairs[0]], return_counts=True)):
                if core_id >= 0:
                    fan_out[int(core_id)] = fan_out.get(int(core_id), 0) + int(count)
    for core in cores:
        name = core["population"]
        if name in program.inputs:
            continue
        start, stop = core["start"], core["stop"]
        n = core_slices.slice_size(core)
        syn, sources, max_delay, row_max, stored = 0, 0, 0, 0, 0
        for c in program.connections:
            if c.target != name or c.name not in synapses:
                continue
            d = synapses[c.name]
            inside = core_of[name][d.rows] == core["core"]
            syn += int(inside.sum())
            if c.kind == "conv" and getattr(loihi2_data, "SHARED_CONV_WEIGHTS", False):
                # loihi2 estimate: a core keeps each conv kernel once, for the output channels it holds
                held = np.unique(np.arange(sizes[name])[core_slices.slice_indices(core)]
                                 // int(np.prod(c.attrs["out_shape"][1:])))
                stored += int(np.count_nonzero(np.asarray(c.arrays["weight"])[held]))
            else:
                stored += int(inside.sum())
            cols = d.cols[inside]
            distinct, per_source = np.unique(cols, return_counts=True)
            sources += int(distinct.size)
            row_max = max(row_max, int(per_source.max()) if per_source.size else 0)
            if inside.any():
                max_delay = max(max_delay, int(d.delays[inside].max()))
        usage = core.get("usage", {})
        where = f"core {core['core']} ('{name}' {start}:{stop})"
        if target.name == "loihi2":
            memory = (min(syn, stored) * loihi2_data.SYNAPSE_BYTES + n * loihi2_data.NEURON_STATE_BYTES
                      + sources * loihi2_data.AXON_BYTES)
            actual = {"memory_bytes": memory, "fan_in_axons": sources, "fan_out_axons": fan_out.get(core["core"], 0)}
        else:
            slots = min(spinnaker_data.DELAY_SLOTS_256, 2 ** math.ceil(math.log2(max(max_delay, 1) + 1)))
            ring = 2 * slots * n * (spinnaker_data.WEIGHT_BITS // 8)
            actual = {"dtcm_bytes": n * SPINNAKER_NEURON_BYTES + ring + SPINNAKER_RESERVED_BYTES,
                      "sdram_bytes": syn * SPINNAKER_SYNAPSE_BYTES + sources * SPINNAKER_ROW_HEADER_BYTES,
                      "delay_steps": max_delay}
            if row_max > spinnaker_data.SYNAPTIC_ROW_MAX:
                errors.append(f"{where}: {row_max} synapses in one row (limit {spinnaker_data.SYNAPTIC_ROW_MAX})")
        for key, value in actual.items():
            limit = target.core_limits.get(key)
            if limit is not None and value > limit.size:
                errors.append(f"{where}: {key} = {value:.0f} exceeds {limit.name} ({limit.size:.0f})")
            if key in usage and usage[key] + 1e-9 < value:
                errors.append(f"{where}: the mapper recorded {key} = {usage[key]:.0f}, below the actual {value:.0f}")
        if "synapses" in usage and usage["synapses"] < syn:
            errors.append(f"{where}: the mapper recorded {usage['synapses']} synapses, actual {syn}")


def describe(errors: list[str], limit: int = 8) -> str:
    shown = errors[:limit]
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(shown) + more


__all__ = ["check_artifact", "describe", "load"]
