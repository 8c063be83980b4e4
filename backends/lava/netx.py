"""``neurodeploy export --format netx``: a loihi2 artifact as lava-dl's netx HDF5 network.

lava-dl loads such a file with ``lava.lib.dl.netx.hdf5.Network(net_config=PATH)`` and builds one
Lava block per layer (a ``Dense``/``Conv`` synapse process feeding a ``LIF``). What the file holds,
and why, comes from lava-dl 0.6.0's own reader and writer (``lava/lib/dl/netx/hdf5.py``,
``netx/utils.py``, ``netx/blocks/process.py``; slayer's ``block/base.py`` ``export_hdf5``):

- a group ``layer`` with subgroups ``"0"``, ``"1"``, ... read in order; each has ``type``
  (``b"input"``, ``b"dense"``, ``b"conv"``, ``b"flatten"``; a length-1 ``S10`` array as slayer
  writes it) and ``shape`` (slayer's order: ``(C, H, W)`` or ``(N,)``; netx reverses it to Lava's
  ``(W, H, C)``);
- ``neuron``: ``type`` ``b"CUBA"``, ``iDecay``, ``vDecay``, ``vThMant``, ``refDelay``, ``gradedSpike``.
  netx builds ``LIF(du=iDecay - 1, dv=vDecay, vth=vThMant, bias_mant=bias, bias_exp=6)``, so
  ``iDecay = du + 1``, ``vDecay = dv``, ``vThMant = vth`` and ``bias = (bias_mant << bias_exp) >> 6``;
- ``weight``: the *effective* integer weights ``mantissa * 2**weight_exp``. netx stores no exponent:
  ``optimize_weight_bits`` derives ``weight_exp``, ``num_weight_bits`` and the sign mode from the
  values, and it only reaches exponents <= 0, so the effective weights must fit 8 bits
  (``WEIGHT_RANGES``). Conv weights go to Lava's ``Conv`` as they are (no exponent either);
- dense: ``weight`` ``(out, in)``, ``inFeatures``, ``outFeatures``; conv: ``weight``
  ``(out, in/groups, kH, kW)`` (netx flips and transposes it into Lava's ``(out, W, H, in)``, which
  Lava's ``conv`` applies as the same cross-correlation), ``inChannels``, ``outChannels``,
  ``kernelSize``, ``stride``, ``padding``, ``dilation`` (each ``(H, W)``) and ``groups``;
- a ``flatten`` layer before a dense layer that follows a conv layer (netx then connects
  ``out.transpose([2, 1, 0]).flatten()``: (C, H, W) in C order, as neurodeploy flattens);
- an ``input`` layer without ``neuron``: netx only takes its shape, and the first dense/conv block's
  ``inp`` receives the spikes (no extra neuron layer, so the timing is the Lava backend's).

What netx cannot express is refused with a :class:`NetxExportError` naming the connection or
population (docs/backends-lava.md, "netx export"). `neurodeploy.compiler.compile.compile_for_netx` compiles a model in
the part of the loihi2 format that netx can hold (weight exponent 0, bias exponent 6).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.format import atomic
from neurodeploy.errors import UnsupportedError
from neurodeploy.targets.loihi2 import LAVA_FORMAT, NETX_BIAS_EXP, READOUT_VTH, VTH_MAX, WEIGHT_RANGES

# WEIGHT_RANGES: the effective weights that lava-dl's optimize_weight_bits and Lava's weight
# truncation keep exactly, by sign class (see netx_dense_weights).
_MODE_TEXT = {"exc": "a non-negative", "inh": "a non-positive", "mixed": "a mixed-sign"}
# The part of the loihi2 number format a netx file can hold: neurodeploy/targets/loihi2.py
# (NETX_FORMAT_OVERRIDES; `compile --netx-format`). netx's LIF starts every layer at u = v = 0: no
# start state can shape a CubaLIF bias's rise or cancel the drive of the ticks before a layer's
# first input (compiler/quantize/prestart.py); the health report warns `no_start_state` there.
_RECOMPILE = ("recompile the model with `neurodeploy compile --target loihi2 --netx-format` (Python: "
              "neurodeploy.compiler.compile.compile_for_netx): weight exponent 0 and bias exponent 6, the part "
              "of the format netx holds")


class NetxExportError(UnsupportedError):
    """An artifact that lava-dl's netx format cannot describe; the message says which part and why."""


@dataclass
class Layer:
    type: str
    shape: tuple[int, ...]
    datasets: dict[str, Any] = field(default_factory=dict)
    neuron: dict[str, Any] | None = None
    attrs: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- public API

def export_netx(artifact_or_path: Any, out_path: str | os.PathLike, *, label: str | None = None) -> Path:
    """Write ``out_path`` (HDF5, lava-dl's netx layout) for a loihi2 artifact; returns the path.

    ``artifact_or_path``: an .ndp path, an :class:`~neurodeploy.format.artifact.Artifact` or a
    :class:`~neurodeploy.format.program.Program`; ``label`` names it in errors (default: the path, else
    "artifact"). The file is written atomically (temporary file, rename); nothing is written when
    the network cannot be expressed.
    """
    program, default_label, provenance = _load(artifact_or_path)
    label = label or default_label
    layers = plan(program, label)
    out_path = Path(out_path)
    atomic.check_writable(out_path)
    with atomic.replacing(out_path) as tmp:
        _write(tmp, layers, provenance)
    return out_path


def _load(source: Any):
    from neurodeploy.format import artifact as artifact_format
    from neurodeploy.format.program import Program, from_manifest

    if isinstance(source, Program):
        return source, "program", {}
    if isinstance(source, (str, os.PathLike)):
        art = artifact_format.read(source)
        label = str(source)
    else:
        art = source
        label = "artifact"
    target = str(art.manifest.get("target", ""))
    if target != "loihi2":
        raise NetxExportError(f"{label}: target '{target}'; netx describes Loihi networks of CUBA neurons: "
                              f"compile the model with --target loihi2")
    if "program" not in art.manifest:
        raise NetxExportError(f"{label}: the artifact holds no program")
    program = from_manifest(art.manifest["program"], art.arrays)
    prov = art.manifest.get("provenance", {})
    provenance = {"neurodeploy.content_hash": art.content_hash,
                  "neurodeploy.source": str(prov.get("source", "")) if isinstance(prov, dict) else ""}
    return program, label, provenance


def plan(program: Any, label: str = "program") -> list[Layer]:
    """The netx layers of ``program``, or a NetxExportError naming what netx cannot express."""
    if program.target != "loihi2":
        raise NetxExportError(f"{label}: target '{program.target}'; netx describes Loihi networks of CUBA "
                              f"neurons: compile the model with --target loihi2")
    fmt = program.attrs.get("format", {})
    for key, want in LAVA_FORMAT.items():
        if key in fmt and int(fmt[key]) != want:
            raise NetxExportError(f"{label}: number format {key}={fmt[key]}; netx's LIF (Lava's CUBA LIF) has {want}")
    if int(program.attrs.get("hop_latency", 1)) != 1:
        raise NetxExportError(f"{label}: hop_latency {program.attrs['hop_latency']}; every netx layer adds one step")
    bias_max = 2 ** (int(fmt.get("bias_mant_bits", 13)) - 1) - 1
    if len(program.inputs) != 1:
        raise NetxExportError(f"{label}: {len(program.inputs)} inputs ({', '.join(program.inputs) or 'none'}); "
                              f"a netx network has exactly one input layer")
    pops = {p.name: p for p in program.populations}
    for pop in program.populations:
        if pop.model != "cuba_lif":
            raise NetxExportError(f"{label}: population '{pop.name}' has neuron model '{pop.model}'; "
                                  f"this exporter writes netx CUBA neurons (Lava's LIF) only")
    for conn in program.connections:
        if conn.recurrent or conn.source == conn.target:
            raise NetxExportError(
                f"{label}: connection '{conn.name}' ({conn.source} -> {conn.target}) is recurrent; netx layers "
                f"are written here as a feed-forward chain input -> dense/conv -> ... without recurrence")
        if conn.target not in pops:
            raise NetxExportError(f"{label}: connection '{conn.name}' targets unknown population '{conn.target}'")
        if conn.source not in pops and conn.source not in program.inputs:
            raise NetxExportError(f"{label}: connection '{conn.name}' comes from unknown node '{conn.source}'")
    chain = _chain(program, label)
    input_name = next(iter(program.inputs))
    input_shape = tuple(int(s) for s in program.inputs[input_name])
    layers = [Layer("input", input_shape, attrs={"neurodeploy.input": input_name})]
    previous = "input"
    for conn in chain:
        pop = pops[conn.target]
        source_shape = input_shape if conn.source == input_name else tuple(pops[conn.source].shape)
        where = f"{label}: connection '{conn.name}' ({conn.source} -> {conn.target})"
        _check_delay(conn, where)
        attrs = {"neurodeploy.connection": conn.name, "neurodeploy.population": pop.name}
        if conn.kind in ("dense", "sparse"):
            weight = _effective(conn, _matrix(conn, where), where)
            _check_weight_range(weight, where, dense=True)
            neuron, bias = _neuron(pop, label, bias_max)
            if previous == "conv":
                n = int(np.prod(source_shape))
                layers.append(Layer("flatten", (n, 1, 1)))
            datasets = {"inFeatures": int(conn.n_in), "outFeatures": int(conn.n_out), "weight": weight}
            if bias is not None:
                datasets["bias"] = bias.reshape(-1)
            layers.append(Layer("dense", (int(conn.n_out),), datasets, neuron, attrs))
            previous = "dense"
        elif conn.kind == "conv":
            if previous == "dense":
                raise NetxExportError(f"{where}: a conv after a dense layer; netx connects a conv layer only to "
                                      f"the input or to another conv layer (3-D W, H, C outputs)")
            in_shape = tuple(int(v) for v in conn.attrs.get("in_shape", ()))
            if conn.source == input_name and len(in_shape) == 3 and int(np.prod(in_shape)) == int(np.prod(input_shape)):
                source_shape = in_shape  # a flat input declared for a conv: the input layer takes its (C, H, W)
                layers[0].shape = in_shape
            datasets = _conv(conn, source_shape, tuple(pop.shape), where)
            weight = _effective(conn, np.asarray(conn.arrays["weight"]).astype(np.int64), where)
            _check_weight_range(weight, where, dense=False)
            neuron, bias = _neuron(pop, label, bias_max)
            datasets["weight"] = weight
            if bias is not None:
                datasets["bias"] = _conv_bias(bias.reshape(pop.shape))
            layers.append(Layer("conv", tuple(int(s) for s in pop.shape), datasets, neuron, attrs))
            previous = "conv"
        else:
            raise NetxExportError(f"{where}: kind '{conn.kind}'; netx layers are dense or conv")
    return layers


def _chain(program: Any, label: str) -> list:
    """The connections from the input to the last population, one after another; anything else
    (a branch, a join, a population off the chain) is refused."""
    outgoing: dict[str, list] = {}
    incoming: dict[str, list] = {}
    for conn in program.connections:
        outgoing.setdefault(conn.source, []).append(conn)
        incoming.setdefault(conn.target, []).append(conn)
    for name, conns in incoming.items():
        if len(conns) > 1:
            names = ", ".join(f"'{c.name}' (from {c.source})" for c in conns)
            raise NetxExportError(f"{label}: population '{name}' receives {len(conns)} connections ({names}); "
                                  f"a netx layer has one input: the layer before it")
    node = next(iter(program.inputs))
    chain, seen = [], set()
    while node in outgoing:
        conns = outgoing[node]
        if len(conns) > 1:
            names = ", ".join(f"'{c.name}' (to {c.target})" for c in conns)
            raise NetxExportError(f"{label}: '{node}' feeds {len(conns)} connections ({names}); netx layers form "
                                  f"a chain, each feeding only the next")
        conn = conns[0]
        if conn.target in seen:
            raise NetxExportError(f"{label}: connection '{conn.name}' closes a loop back to '{conn.target}'; "
                                  f"netx layers form a feed-forward chain")
        seen.add(conn.target)
        chain.append(conn)
        node = conn.target
    if not chain:
        raise NetxExportError(f"{label}: the input feeds no connection; a netx network needs at least one layer")
    for pop in program.populations:
        if pop.name not in seen:
            raise NetxExportError(f"{label}: population '{pop.name}' is not on the chain from the input "
                                  f"({' -> '.join([next(iter(program.inputs))] + [c.target for c in chain])}); "
                                  f"netx describes one feed-forward chain")
    for conn in chain[1:]:
        source = program.population(conn.source)
        if not source.spiking:
            raise NetxExportError(f"{label}: connection '{conn.name}': its source '{source.name}' does not spike; "
                                  f"netx layers pass spikes")
    return chain


def _check_delay(conn: Any, where: str) -> None:
    base = int(conn.attrs.get("delay", 0) or 0)
    per = conn.arrays.get("delay")
    extra = int(np.max(np.abs(per))) if per is not None and np.size(per) else 0
    if base != 0 or extra != 0:
        kind = "per-synapse delays" if extra else f"a delay of {base} step(s)"
        raise NetxExportError(f"{where}: has {kind}; this exporter writes netx layers without synaptic delays "
                              f"(each layer adds exactly one step, as Lava's Dense and Conv do)")


def _matrix(conn: Any, where: str) -> np.ndarray:
    w = np.asarray(conn.arrays["weight"]).astype(np.int64)
    if conn.kind == "dense":
        if w.shape != (conn.n_out, conn.n_in):
            raise NetxExportError(f"{where}: weight shape {list(w.shape)} is not (n_out, n_in) = "
                                  f"({conn.n_out}, {conn.n_in})")
        return w
    indptr = np.asarray(conn.arrays["indptr"]).astype(np.int64)
    indices = np.asarray(conn.arrays["indices"]).astype(np.int64)
    if conn.n_out * conn.n_in > 50_000_000:
        raise NetxExportError(f"{where}: a sparse {conn.n_out} x {conn.n_in} connection; netx writes dense "
                              f"matrices and this one would hold {conn.n_out * conn.n_in} entries")
    full = np.zeros((conn.n_out, conn.n_in), dtype=np.int64)
    rows = np.repeat(np.arange(conn.n_out), np.diff(indptr))
    np.add.at(full, (rows, indices), w)
    return full


def _effective(conn: Any, mant: np.ndarray, where: str) -> np.ndarray:
    """``mant * 2**weight_exp`` as integers (netx stores weights without an exponent)."""
    exp = int(conn.attrs.get("weight_exp", 0))
    if exp >= 0:
        return mant << exp
    step = 1 << -exp
    if np.any(mant % step):
        raise NetxExportError(f"{where}: weight exponent {exp} with mantissas that are not multiples of {step}; "
                              f"netx stores integer weights without an exponent")
    return mant >> -exp


def netx_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int] | None:
    """What lava-dl 0.6.0 + Lava 0.10.0 make of a netx dense ``weight`` matrix: ``(lava_weights,
    weight_exp)`` as Lava's fixed-point Dense applies them (after its clip and truncation), or None
    where netx's own code would fail (all-zero matrix, negative shift).

    Re-derived from ``netx/utils.py`` (``optimize_weight_bits``: sign class from the values,
    ``scale_bits`` from 255/max, -256/min or min(127/max, -128/min) + 1, ``weight_exp =
    -scale_bits``, ``num_weight_bits = 8 - scale_bits - n`` with ``2**n`` the largest power <= 2**8
    dividing every weight, less one for signed matrices) and ``lava/utils/weightutils.py``
    (``determine_sign_mode``, ``clip_weights``, ``truncate_weights``, which Lava's Dense model applies
    before its first step).
    """
    w = np.asarray(weight).astype(np.int64)
    if w.size == 0:
        return None
    hi, lo = int(w.max()), int(w.min())
    if hi > 254 and lo < 0:
        w = np.clip(w, -256, 254)  # optimize_weight_bits clips (with a printed warning)
        hi = int(w.max())
    if lo < -256 and hi > 0:
        w = np.clip(w, -256, 254)
        lo = int(w.min())
    with np.errstate(divide="ignore"):
        if hi < 0:
            signed, scale = 0, -256 / np.float64(lo)
        elif lo >= 0:
            if hi == 0:
                return None  # 255 / 0: netx fails on an all-zero matrix
            signed, scale = 0, 255 / np.float64(hi)
        else:
            signed = 1
            scale = min(127 / np.float64(hi) if hi else np.inf, -128 / np.float64(lo))
    scale_bits = int(np.floor(np.log2(scale))) + signed
    if scale_bits < 0:
        return None  # np.left_shift by a negative count: every weight becomes 0
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    num_weight_bits = 8 - scale_bits - (n - signed)
    shifted = w << scale_bits
    if shifted.min() >= 0:
        mode = "exc"
    elif shifted.max() <= 0:
        mode = "inh"
    else:
        mode = "mixed"
    lava = -shifted if mode == "inh" else shifted
    lava = np.clip(lava, -256 if mode == "mixed" else 0, 255)
    truncate = 8 - num_weight_bits + (1 if mode == "mixed" else 0)
    if truncate < 0:
        return None
    lava = (lava >> truncate) << truncate
    if mode == "inh":
        lava = -lava
    return lava, -scale_bits


def _check_weight_range(weight: np.ndarray, where: str, dense: bool) -> None:
    if weight.size == 0:
        return
    lo_w, hi_w = int(weight.min()), int(weight.max())
    mode = "exc" if lo_w >= 0 else ("inh" if hi_w <= 0 else "mixed")
    lo, hi = WEIGHT_RANGES[mode]
    if lo_w < lo or hi_w > hi:
        raise NetxExportError(
            f"{where}: effective weights (mantissa << weight_exp) span {lo_w}..{hi_w}; netx stores no weight "
            f"exponent and keeps only {lo}..{hi} for {_MODE_TEXT[mode]} matrix "
            f"(lava-dl's optimize_weight_bits reaches exponents <= 0 only); {_RECOMPILE}")
    if not dense:
        return
    if not np.any(weight):
        raise NetxExportError(f"{where}: all weights are zero; lava-dl's netx cannot load an all-zero dense "
                              f"weight matrix (optimize_weight_bits divides by the largest weight)")
    loaded = netx_dense_weights(weight)
    if loaded is None:
        detail = "its weight scaling fails on them"
    else:
        got = loaded[0].astype(np.float64) * 2.0 ** loaded[1]
        differ = got != weight
        if not np.any(differ):
            return
        idx = tuple(int(i[0]) for i in np.nonzero(differ))
        detail = f"weight {list(idx)} = {int(weight[idx])} becomes {got[idx]:g}"
    raise NetxExportError(
        f"{where}: lava-dl 0.6.0 and Lava 0.10.0 would load these weights ({lo_w}..{hi_w}) inexactly ({detail}): "
        f"for a matrix with no positive weight, netx's optimize_weight_bits and Lava's Dense disagree (max 0 is "
        f"'mixed' to netx and 'inhibitory' to Lava; an all-negative matrix whose minimum is minus a power of two "
        f"is scaled to -256, which Lava clips to -255)")


def _conv(conn: Any, source_shape: tuple, target_shape: tuple, where: str) -> dict[str, Any]:
    a = conn.attrs
    w = np.asarray(conn.arrays["weight"])
    in_shape = tuple(int(s) for s in a.get("in_shape", source_shape))
    out_shape = tuple(int(s) for s in a.get("out_shape", target_shape))
    if w.ndim != 4 or len(in_shape) != 3 or len(out_shape) != 3:
        raise NetxExportError(f"{where}: a conv of {w.ndim - 2} spatial dimension(s) over input {list(in_shape)}; "
                              f"netx conv layers are 2-D over (C, H, W)")
    if tuple(source_shape) != in_shape:
        raise NetxExportError(f"{where}: conv input {list(in_shape)} is not the shape of its source "
                              f"{list(source_shape)}; netx hands a conv layer the (C, H, W) output of the layer "
                              f"before it")
    if tuple(target_shape) != out_shape:
        raise NetxExportError(f"{where}: conv output {list(out_shape)} is not the shape of its population "
                              f"{list(target_shape)}; netx gives a conv layer's neurons the conv's (C, H, W) shape")
    groups = int(a.get("groups", 1))
    pair = {}
    for key in ("stride", "padding", "dilation"):
        value = np.asarray(a.get(key, [1, 1] if key != "padding" else [0, 0])).astype(np.int64).reshape(-1)
        if value.size == 1:
            value = np.repeat(value, 2)
        if value.size != 2:
            raise NetxExportError(f"{where}: conv {key} {value.tolist()}; netx takes one value per spatial axis")
        pair[key] = value
    kernel = np.asarray(w.shape[2:], dtype=np.int64)
    expected = [(in_shape[i + 1] + 2 * pair["padding"][i] - pair["dilation"][i] * (kernel[i] - 1) - 1)
                // pair["stride"][i] + 1 for i in range(2)]
    if [w.shape[0]] + expected != list(out_shape) or w.shape[1] * groups != in_shape[0]:
        raise NetxExportError(f"{where}: conv geometry {list(in_shape)} -> {list(out_shape)} does not follow from "
                              f"kernel {list(w.shape)}, stride {pair['stride'].tolist()}, padding "
                              f"{pair['padding'].tolist()}, dilation {pair['dilation'].tolist()}, groups {groups}")
    return {"inChannels": int(in_shape[0]), "outChannels": int(out_shape[0]), "kernelSize": kernel,
            "stride": pair["stride"], "padding": pair["padding"], "dilation": pair["dilation"], "groups": groups}


def _conv_bias(bias: np.ndarray) -> np.ndarray:
    """Per channel ``(C,)`` when uniform over each channel, else per neuron in Lava's ``(W, H, C)``
    (netx accepts both: ``AbstractBlock._neuron``)."""
    per_channel = bias.reshape(bias.shape[0], -1)
    if np.all(per_channel == per_channel[:, :1]):
        return per_channel[:, 0].copy()
    return np.ascontiguousarray(bias.transpose(2, 1, 0))


def _uniform(pop: Any, key: str, label: str) -> int:
    values = np.asarray(pop.params[key]).reshape(-1)
    if values.size and np.any(values != values[0]):
        field_name = {"du": "iDecay", "dv": "vDecay", "vth": "vThMant"}[key]
        raise NetxExportError(
            f"{label}: population '{pop.name}' has per-neuron {key} ({values.min()}..{values.max()}); netx holds "
            f"{field_name} as one value per layer (compile without --per-neuron, with uniform time constants)")
    return int(values[0]) if values.size else 0


def _start_hint(pop: Any) -> str:
    """Why an artifact has a start state, and what to do: a reset potential other than 0 shifts v
    (``v_zero``; older artifacts: ``v_init``), otherwise it is the loihi2 start state."""
    zero = np.asarray(pop.params.get("v_zero", pop.params.get("v_init", np.zeros(1))))
    if np.any(zero != 0):
        return "its v_reset is not 0, and netx resets to 0 (compile a model whose v_reset is 0)"
    return _RECOMPILE


def _neuron(pop: Any, label: str, bias_max: int) -> tuple[dict[str, Any], np.ndarray | None]:
    du = _uniform(pop, "du", label)
    dv = _uniform(pop, "dv", label)
    vth = _uniform(pop, "vth", label)
    for key, value, lo, hi in (("du", du, 0, 4095), ("dv", dv, 0, 4095), ("vth", vth, 0, VTH_MAX)):
        if not lo <= value <= hi:
            raise NetxExportError(f"{label}: population '{pop.name}' parameter {key} = {value}; "
                                  f"Lava's LIF holds {lo}..{hi}")
    for state in ("v", "u"):
        start = np.asarray(pop.params.get(f"{state}_init", np.zeros(1))).reshape(-1)
        if np.any(start != 0):
            raise NetxExportError(f"{label}: population '{pop.name}' starts at {state} = {int(start[start != 0][0])} "
                                  f"({state}_init); netx's LIF starts every neuron at u = v = 0; {_start_hint(pop)}")
    bias = (np.asarray(pop.params["bias_mant"]).astype(np.int64)
            << np.asarray(pop.params["bias_exp"]).astype(np.int64)).reshape(pop.shape)
    step = 1 << NETX_BIAS_EXP
    if np.any(bias % step):
        bad = int(bias[bias % step != 0].reshape(-1)[0])
        raise NetxExportError(
            f"{label}: population '{pop.name}': bias (bias_mant << bias_exp) = {bad} is not a multiple of {step}; "
            f"netx builds every LIF with bias_exp = {NETX_BIAS_EXP}; {_RECOMPILE}")
    bias = bias >> NETX_BIAS_EXP
    if bias.size and int(np.abs(bias).max()) > bias_max:
        raise NetxExportError(f"{label}: population '{pop.name}': bias mantissa {int(np.abs(bias).max())} at "
                              f"bias_exp {NETX_BIAS_EXP} exceeds the {bias_max} a Loihi bias mantissa holds")
    neuron = {"type": "CUBA", "iDecay": du + 1, "vDecay": dv,
              "vThMant": vth if pop.spiking else READOUT_VTH, "refDelay": 1, "gradedSpike": False}
    return neuron, (bias if np.any(bias) else None)


# ----------------------------------------------------------------------------- writing

def _type(name: str) -> np.ndarray:
    return np.array([name.encode("ascii")], dtype="S10")  # as slayer writes it: shape (1,), S10


def _write(path: str, layers: list[Layer], provenance: dict[str, str]) -> None:
    import h5py

    def put(group, key: str, value: Any) -> None:
        arr = np.asarray(value)
        if arr.dtype.kind in "iu":  # weights and biases as int16 where they fit, other integers int64
            small = key in ("weight", "bias") and (not arr.size or np.abs(arr).max() < 2**15)
            arr = arr.astype(np.int16 if small else np.int64)
        group.create_dataset(key, data=arr, track_times=False)

    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["neurodeploy.format"] = "lava-dl netx (lava.lib.dl.netx.hdf5.Network)"
        for key, value in provenance.items():
            f.attrs[key] = value
        root = f.create_group("layer", track_order=True)
        for i, layer in enumerate(layers):
            g = root.create_group(str(i), track_order=True)
            for key, value in layer.attrs.items():
                g.attrs[key] = value
            g.create_dataset("type", data=_type(layer.type), track_times=False)
            put(g, "shape", np.asarray(layer.shape, dtype=np.int64))
            for key, value in layer.datasets.items():
                put(g, key, value)
            if layer.neuron is not None:
                n = g.create_group("neuron", track_order=True)
                for key, value in layer.neuron.items():
                    if key == "type":
                        n.create_dataset("type", data=_type(value), track_times=False)
                    elif isinstance(value, bool):
                        n.create_dataset(key, data=np.bool_(value), track_times=False)
                    else:
                        put(n, key, np.int64(value))
