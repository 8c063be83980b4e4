"""ANN (ONNX) -> rate-coded spiking NIR graph: data-based threshold balancing.

Method (Diehl et al. 2015, "Fast-classifying, high-accuracy spiking deep networks through
weight and threshold balancing"; Rueckauer et al. 2017, "Conversion of continuous-valued deep
networks to efficient event-driven networks for image classification"):

* Every ReLU becomes a population of IF neurons (``v += I`` per step, spike when ``v > 1``,
  then reset to 0 or by subtraction), whose firing rate (spikes per step) stands for the ReLU
  activation divided by a per-layer scale ``lambda``.
* ``lambda_l = p_l / max_rate``, where ``p_l`` is the P-th percentile (default 99.9) of the
  layer's non-zero ReLU activations, computed by running the ANN in numpy on the calibration
  inputs. The weighted operator after population ``A`` and before population ``B`` is scaled by
  ``lambda_A / lambda_B`` and every bias on that path by ``1 / lambda_B``; so an activation ``a``
  becomes an input of ``a / lambda`` thresholds per step, and the percentile activation an input
  of ``max_rate``. ``max_rate = 1`` is the standard normalization (percentile -> threshold), the
  default with reset by subtraction. With reset to zero the default is 0.5: the charge above
  threshold is lost at every spike, so a neuron driven at ``x`` thresholds per step fires at
  about ``x / (1 + x/2)`` (exactly ``1 / (floor(1/x) + 1)`` for a constant drive), a compression
  that is worst near one threshold per step (measured in docs/onnx.md).
* ``lambda_0`` is the input scale: for ``rate`` encoding the largest calibration input (a value
  x is presented as a Bernoulli spike train with probability ``clip(x / lambda_0, 0, 1)`` per
  step, seeded); for ``current`` encoding 1 (the analog value is fed every step as the input of
  the first Affine/Conv: NIR's Input -> Affine).
* The layers after the last ReLU form a non-spiking readout: a leaky integrator ``LI`` with
  ``tau = dt`` (``r = 1``, ``v_leak = 0``), which under Euler is memoryless, ``v = W r + b`` every
  step. The class is the argmax of ``v`` summed over the steps (rule ``v_sum``), and
  ``output_scale * mean_t v`` approximates the ANN's outputs. (An Output fed by the Affine
  directly would give the same values as a ``Sum`` population, but the loihi2 quantizer reads a
  Sum from ``u``, which holds no bias.) A network whose last operator is a ReLU ends in IF
  neurons and is read by spike count (rule ``spike_count``).

Semantics written into the graph metadata (read by every neurodeploy command):
``neurodeploy.dt = 1e-3`` with ``r = 1/dt`` so that IF's ``v += dt*r*I`` is ``v += I`` per step,
``neurodeploy.integrator = euler`` (IF is the same for both), ``neurodeploy.reset`` (``zero``
by default: every compile target, loihi2, spinnaker and the generic emulator profile, resets to
zero; ``subtract`` is more accurate at few steps and runs in the float reference only), and
``neurodeploy.spike_amplitude = 1``. The conversion itself is recorded under
``neurodeploy.convert.*`` (source file and sha256, percentile, max_rate, steps, encoding, seed,
scales, readout); :func:`info` reads it back, :func:`encode` and :func:`predict` use it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from neurodeploy.format import atomic
from neurodeploy.convert.onnx import ANN, Layer, load_onnx
from neurodeploy.errors import InputDataError, NeurodeployError, OptionError

DT = 1e-3
ENCODINGS = ("rate", "current")
RESETS = ("zero", "subtract")
EXPORTER = "neurodeploy.convert_onnx"
PREFIX = "neurodeploy.convert."
DEFAULT_STEPS = 100
DEFAULT_PERCENTILE = 99.9
DEFAULT_MAX_RATE_ZERO = 0.5  # with reset to zero (docs/onnx.md: measured 0.25 .. 1)


@dataclass
class Conversion:
    graph: Any  # nir.NIRGraph
    ann: ANN
    metadata: dict[str, Any]
    scales: dict[str, float] = field(default_factory=dict)  # IF node -> lambda

    @property
    def info(self) -> dict[str, Any]:
        return info(self.metadata)


@dataclass
class _Graph:
    """The spiking NIR graph under construction."""

    nodes: dict[str, Any]
    edges: list[tuple[str, str]] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)  # what each node came from (metadata "layers")
    scales: dict[str, float] = field(default_factory=dict)  # IF node -> lambda
    counters: dict[str, int] = field(default_factory=dict)  # node name prefix -> nodes so named


def convert(source: str | Path | ANN, calibration: np.ndarray, *, steps: int = DEFAULT_STEPS,
            encoding: str = "rate", percentile: float = DEFAULT_PERCENTILE, reset: str = "zero",
            seed: int = 0, max_rate: float | None = None) -> Conversion:
    """Convert an ONNX file (or an already read :class:`ANN`) with calibration inputs
    ``calibration`` (batch, *input_shape), analog values as the ANN takes them.

    ``max_rate``: the input per step, in thresholds, that the percentile activation maps to (so
    about the spike rate it gets); default 1 with reset by subtraction (the standard
    normalization), 0.5 with reset to zero, where the charge above threshold is lost at every
    spike and a neuron driven near one threshold per step is compressed most."""
    import nir

    if max_rate is None:
        max_rate = 1.0 if reset == "subtract" else DEFAULT_MAX_RATE_ZERO
    _check_options(steps, encoding, percentile, reset)
    if not (isinstance(max_rate, (int, float)) and 0 < max_rate <= 1):
        raise OptionError(f"max_rate: must be in (0, 1], got {max_rate!r}")
    calibration = _check_calibration(calibration)
    ann = source if isinstance(source, ANN) else load_onnx(source, tuple(calibration.shape[1:]))
    x = _shape_calibration(ann, calibration)
    input_scale = _input_scale(ann, x, encoding)
    _, acts = ann.forward(x, record=True)
    populations = [i for i, layer in enumerate(ann.layers) if layer.kind == "relu"]
    lam, warnings = _population_scales(ann, acts, populations, percentile, max_rate)
    graph, last, output_scale = _emit_network(ann, acts, populations, lam, input_scale, percentile)
    readout_node, rule = _emit_readout(graph, last, ann.output_shape)
    metadata = {
        "neurodeploy.dt": DT,
        "neurodeploy.integrator": "euler",
        "neurodeploy.reset": reset,
        "neurodeploy.spike_amplitude": 1.0,
        "neurodeploy.exporter": EXPORTER,
        PREFIX + "source": Path(ann.source).name,
        PREFIX + "source_sha256": ann.sha256,
        PREFIX + "method": "data-based weight/threshold balancing (Diehl 2015, Rueckauer 2017): "
                           "IF neurons, threshold 1, per-layer P-th percentile of ReLU activations",
        PREFIX + "percentile": float(percentile),
        PREFIX + "max_rate": float(max_rate),
        PREFIX + "steps": int(steps),
        PREFIX + "encoding": encoding,
        PREFIX + "seed": int(seed),
        PREFIX + "input_scale": float(input_scale),
        PREFIX + "output_scale": float(output_scale),
        PREFIX + "readout_node": readout_node,
        PREFIX + "readout_rule": rule,
        PREFIX + "calibration_samples": int(x.shape[0]),
        PREFIX + "input_shape": json.dumps(list(ann.input_shape)),
        PREFIX + "layers": json.dumps(graph.layers),
        PREFIX + "input_rule": _input_rule(encoding, input_scale, steps),
        PREFIX + "readout": _readout_text(readout_node, rule, output_scale),
    }
    if warnings:
        metadata[PREFIX + "warnings"] = "; ".join(warnings)
    nir_graph = nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata=metadata, type_check=True)
    return Conversion(nir_graph, ann, metadata, graph.scales)


def _check_calibration(calibration: Any) -> np.ndarray:
    """The calibration data as a finite numeric array (samples, *input_shape)."""
    calibration = np.asarray(calibration)
    if calibration.dtype.kind not in "biuf" or calibration.ndim < 2 or calibration.shape[0] < 1:
        raise InputDataError(f"calibration data must be a numeric array (samples, *input_shape), "
                             f"got {calibration.dtype} {list(calibration.shape)}")
    if not np.all(np.isfinite(calibration)):
        raise InputDataError("calibration data contains NaN or infinite values")
    return calibration


def _input_scale(ann: ANN, x: np.ndarray, encoding: str) -> float:
    """lambda_0, how the input is presented: the largest calibration input for rate encoding, else 1."""
    if encoding != "rate":
        return 1.0
    if x.min() < 0:
        raise OptionError(
            f"{ann.source}: rate encoding presents inputs as spike probabilities and needs inputs >= 0; "
            f"the calibration data reaches {x.min():.4g} (use --encoding current, which the float "
            f"reference runs, or scale/shift the inputs to >= 0)")
    return float(x.max()) if x.max() > 0 else 1.0


def _population_scales(ann: ANN, acts: Sequence[np.ndarray], populations: list[int], percentile: float,
                       max_rate: float) -> tuple[dict[int, float], list[str]]:
    """lambda of every ReLU layer (1 for one never active, with a warning), and the warnings."""
    warnings: list[str] = []
    lam: dict[int, float] = {}
    for i in populations:
        lam[i] = _percentile(acts[i], percentile) / max_rate
        if lam[i] == 0.0:
            warnings.append(f"ReLU '{ann.layers[i].name}' is never active on the calibration data")
            lam[i] = 1.0
    return lam, warnings


def _emit_network(ann: ANN, acts: Sequence[np.ndarray], populations: list[int], lam: dict[int, float],
                  input_scale: float, percentile: float) -> tuple[_Graph, str, float]:
    """The Input node, then per segment its rescaled operators and the IF population ending it.

    Returns the graph, its last node and that node's scale (the output scale).
    """
    import nir

    # Reshapes of the input (a flat vector to (C, H, W), say) become the NIR Input's shape: same
    # values in the same order, so the data can be given in either shape.
    skip = ann.leading_reshapes
    nir_input_shape = ann.layers[skip - 1].out_shape if skip else ann.input_shape
    graph = _Graph(nodes={"input": nir.Input(input_type={"input": np.array(nir_input_shape, dtype=np.int64)})})
    prev, prev_scale = "input", input_scale
    start = skip
    n_layers = len(ann.layers)
    bounds = populations + ([n_layers] if not populations or populations[-1] != n_layers - 1 else [])
    for end in bounds:
        segment = ann.layers[start:end]
        is_population = end < n_layers
        if is_population:
            target_scale = lam[end]
        elif any(layer.kind in ("dense", "conv") for layer in segment):
            target_scale = _percentile(np.abs(acts[end - 1]), percentile) or 1.0
        else:
            target_scale = prev_scale
        seg_in = ann.layers[start - 1].out_shape if start > 0 else ann.input_shape
        prev = _emit_segment(graph.nodes, graph.edges, prev, segment, prev_scale / target_scale, target_scale,
                             graph.counters, graph.layers, seg_in)
        if is_population:
            prev = _emit_population(graph, prev, ann.layers[end], target_scale)
        prev_scale = target_scale
        start = end + 1
    return graph, prev, prev_scale


def _emit_population(graph: _Graph, prev: str, layer: Layer, scale: float) -> str:
    """An IF population (threshold 1, ``v += I`` per step) for the ReLU ``layer``, fed by ``prev``."""
    import nir

    name = _name(graph.counters, "if")
    n = layer.out_shape
    graph.nodes[name] = nir.IF(r=np.full(n, 1.0 / DT), v_threshold=np.ones(n), v_reset=np.zeros(n),
                               metadata={"onnx_node": layer.name})
    graph.edges.append((prev, name))
    graph.layers.append({"node": name, "onnx": layer.name, "kind": "IF", "scale": scale})
    graph.scales[name] = scale
    return name


def _emit_readout(graph: _Graph, last: str, out_shape: tuple[int, ...]) -> tuple[str, str]:
    """Connect the Output; (readout node, readout rule): IF spikes counted, or an LI's v summed."""
    import nir

    if type(graph.nodes[last]).__name__ == "IF":
        readout_node, rule = last, "spike_count"
    else:
        # A memoryless leaky integrator (tau = dt, Euler: v = v_leak + r*I each step): the same
        # values as the Sum population an Output fed by an Affine would get, but read from v on
        # every target (loihi2 reads a Sum from u, which holds no bias).
        readout_node, rule = "readout", "v_sum"
        graph.nodes[readout_node] = nir.LI(tau=np.full(out_shape, DT), r=np.ones(out_shape),
                                           v_leak=np.zeros(out_shape), metadata={"role": "readout"})
        graph.edges.append((last, readout_node))
        last = readout_node
    graph.nodes["output"] = nir.Output(output_type={"output": np.array(out_shape, dtype=np.int64)})
    graph.edges.append((last, "output"))
    return readout_node, rule


def _input_rule(encoding: str, input_scale: float, steps: int) -> str:
    """How inputs are presented, in words (metadata "input_rule")."""
    if encoding == "rate":
        return (f"rate: spike with probability clip(x / {input_scale:.6g}, 0, 1) per step "
                f"(numpy default_rng(seed), {steps} steps)")
    return f"current: the analog input x every step for {steps} steps"


def _readout_text(readout_node: str, rule: str, output_scale: float) -> str:
    """How the class and the ANN outputs are read, in words (metadata "readout")."""
    return (f"class = argmax over '{readout_node}' of " + (
        "spike counts" if rule == "spike_count" else
        "v summed over the steps (non-spiking LI with tau = dt: v = W r + b each step)")
        + f"; ANN output ~ {output_scale:.6g} x mean over steps")


def _check_options(steps: int, encoding: str, percentile: float, reset: str) -> None:
    if encoding not in ENCODINGS:
        raise OptionError(f"encoding: must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    if reset not in RESETS:
        raise OptionError(f"reset: must be one of {', '.join(RESETS)}, got {reset!r}")
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise OptionError(f"steps: must be a whole number >= 1, got {steps!r}")
    if not (isinstance(percentile, (int, float)) and 0 < percentile <= 100):
        raise OptionError(f"percentile: must be in (0, 100], got {percentile!r}")


def _shape_calibration(ann: ANN, x: np.ndarray) -> np.ndarray:
    want = ann.input_shape
    if x.shape[1:] == want:
        return x.astype(np.float64)
    if math.prod(x.shape[1:]) == math.prod(want):
        return x.reshape((x.shape[0],) + want).astype(np.float64)
    raise InputDataError(f"calibration data has shape {list(x.shape)}; the model '{Path(ann.source).name}' takes "
                         f"(samples, {', '.join(map(str, want))})")


def _percentile(values: np.ndarray, p: float) -> float:
    positive = values[values > 0]
    return float(np.percentile(positive, p)) if positive.size else 0.0


def _name(counters: dict[str, int], prefix: str) -> str:
    counters[prefix] = counters.get(prefix, 0) + 1
    return f"{prefix}{counters[prefix]}"


def _emit_segment(nodes: dict, edges: list, prev: str, segment: list[Layer], weight_factor: float,
                  target_scale: float, counters: dict[str, int], meta: list[dict],
                  in_shape: tuple[int, ...]) -> str:
    """NIR operator nodes for the linear layers between two populations, rescaled.

    The first weighted layer's weights are multiplied by ``lambda_A / lambda_B`` and every bias
    is divided by ``lambda_B``; a path without a weighted layer gets a Scale node if needed.
    """
    import nir

    scaled = False
    for layer in segment:
        p = layer.params
        name = None
        if layer.kind in ("dense", "conv"):
            factor = weight_factor if not scaled else 1.0
            scaled = True
            w = (p["weight"] * factor).astype(np.float32)
            b = (p["bias"] / target_scale).astype(np.float32)
            if layer.kind == "dense":
                name = _name(counters, "fc")
                nodes[name] = nir.Affine(weight=w, bias=b, metadata={"onnx_node": layer.name})
            else:
                name = _name(counters, "conv")
                dims = w.ndim - 2
                cls = nir.Conv2d if dims == 2 else nir.Conv1d
                spatial = tuple(int(v) for v in layer.in_shape[1:])
                pair = (lambda a: tuple(int(v) for v in a)) if dims == 2 else (lambda a: int(a[0]))
                nodes[name] = cls(input_shape=spatial if dims == 2 else spatial[0], weight=w,
                                  stride=pair(p["stride"]), padding=pair(p["padding"]),
                                  dilation=pair(p["dilation"]), groups=int(p["groups"]), bias=b,
                                  metadata={"onnx_node": layer.name})
            meta.append({"node": name, "onnx": layer.name, "kind": type(nodes[name]).__name__,
                         "weight_factor": factor, "bias_divisor": target_scale})
        elif layer.kind == "avgpool":
            name = _name(counters, "pool")
            nodes[name] = nir.AvgPool2d(kernel_size=np.asarray(p["kernel"], dtype=np.int64),
                                        stride=np.asarray(p["stride"], dtype=np.int64),
                                        padding=np.asarray(p["padding"], dtype=np.int64),
                                        metadata={"onnx_node": layer.name})
        elif layer.kind == "flatten":
            name = _name(counters, "flatten")
            nodes[name] = nir.Flatten(input_type={"input": np.array(layer.in_shape, dtype=np.int64)},
                                      start_dim=0, end_dim=-1, metadata={"onnx_node": layer.name})
        if name is not None:
            edges.append((prev, name))
            prev = name
    if not scaled and not math.isclose(weight_factor, 1.0, rel_tol=1e-12):
        name = _name(counters, "scale")
        shape = segment[-1].out_shape if segment else in_shape
        nodes[name] = nir.Scale(scale=np.full(shape, weight_factor))
        edges.append((prev, name))
        meta.append({"node": name, "kind": "Scale", "weight_factor": weight_factor})
        prev = name
    return prev


# ----------------------------------------------------------------------------- files

def write(conversion: Conversion | Any, path: str | Path) -> Path:
    """Write the graph with ``nir.write``, atomically (``neurodeploy.format.atomic``)."""
    import nir

    graph = conversion.graph if isinstance(conversion, Conversion) else conversion
    path = atomic.check_writable(path)
    with atomic.replacing(path) as tmp:
        nir.write(tmp, graph)
    return path


def read_calibration(path: str | Path, input_name: str | None = None) -> np.ndarray:
    """The calibration array of an .npz: ``input``, else the ONNX input's name, else its only array."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: no such calibration file (expected an .npz with array 'input' "
                             f"(samples, *input_shape))")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputDataError(f"{path}: not a readable .npz file ({type(exc).__name__}); save the calibration "
                             f"inputs with numpy.savez(path, input=array)") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise InputDataError(f"{path}: is a single .npy array, not an .npz; save with numpy.savez(path, input=array)")
    with data:
        files = list(data.files)
        key = "input" if "input" in files else (input_name if input_name in files else
                                                 (files[0] if len(files) == 1 else None))
        if key is None:
            raise InputDataError(f"{path}: expected array 'input' (samples, *input_shape), found {sorted(files)}")
        try:
            arr = data[key]
        except ValueError as exc:
            raise InputDataError(f"{path}: array '{key}' is not numeric ({_one_line(exc)})") from None
        except Exception as exc:  # noqa: BLE001 - zipfile/zlib errors on a damaged archive
            raise InputDataError(f"{path}: array '{key}' is unreadable ({type(exc).__name__})") from None
    if arr.dtype.kind not in "biuf" or arr.ndim < 2:
        raise InputDataError(f"{path}: array '{key}' must be numeric (samples, *input_shape), "
                             f"got {arr.dtype} {list(arr.shape)}")
    return arr


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


# ----------------------------------------------------------------------------- using a converted graph

def info(source: Any) -> dict[str, Any]:
    """The conversion record of a converted graph: a metadata mapping, a Conversion, a nir.NIRGraph
    or a .nir path. Keys without the ``neurodeploy.convert.`` prefix; JSON fields decoded."""
    if isinstance(source, Conversion):
        metadata: Mapping[str, Any] = source.metadata
    elif isinstance(source, Mapping):
        if "encoding" in source and not any(str(k).startswith(PREFIX) for k in source):
            return dict(source)  # already an info() record
        metadata = source
    elif isinstance(source, (str, Path)):
        from neurodeploy.compiler.frontend.reader import read_file

        metadata = read_file(source).metadata
    else:
        metadata = dict(getattr(source, "metadata", None) or {})
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if not str(key).startswith(PREFIX):
            continue
        if hasattr(value, "item") and getattr(value, "size", 1) == 1:
            value = value.item()
        if isinstance(value, bytes):
            value = value.decode("utf8")
        name = str(key)[len(PREFIX):]
        if name in ("layers", "input_shape") and isinstance(value, str):
            value = json.loads(value)
        out[name] = value
    if "encoding" not in out:
        raise NeurodeployError("the graph carries no conversion record (neurodeploy.convert.* metadata); "
                               "was it written by `neurodeploy convert`?")
    return out


def encode(x: np.ndarray, source: Any, steps: int | None = None, seed: int | None = None,
           encoding: str | None = None) -> np.ndarray:
    """Present analog inputs ``x`` (batch, *input_shape) to a converted graph: (batch, steps, *shape).

    ``rate``: float32 0/1 spikes, probability ``clip(x / input_scale, 0, 1)`` per step, drawn from
    ``numpy.random.default_rng(seed)`` (same seed, same spikes); ``current``: ``x`` repeated.
    Steps, seed and encoding default to the conversion's."""
    meta = info(source)
    steps = int(meta["steps"] if steps is None else steps)
    seed = int(meta["seed"] if seed is None else seed)
    encoding = encoding or meta["encoding"]
    x = np.asarray(x, dtype=np.float32)
    if encoding == "current":
        scale = 1.0 if meta["encoding"] == "current" else float(meta["input_scale"])
        return np.repeat((x / np.float32(scale))[:, None], steps, axis=1)
    if encoding != "rate":
        raise OptionError(f"encoding: must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    if meta["encoding"] != "rate":
        raise OptionError("this graph was converted for current encoding (input scale 1); a rate code "
                          "cannot present analog values > 1 or < 0: reconvert with --encoding rate")
    prob = np.clip(x / np.float32(meta["input_scale"]), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    u = rng.random((x.shape[0], steps) + x.shape[1:], dtype=np.float32)
    return (u < prob[:, None]).astype(np.float32)


def scores(traces: Mapping[str, np.ndarray], source: Any) -> np.ndarray:
    """ANN-output estimates (batch, *output) from simulate/emulate traces: output_scale x the
    readout's mean over steps (spike rate, or v of the LI readout)."""
    meta = info(source)
    node, rule = meta["readout_node"], meta["readout_rule"]
    key = f"spikes.{node}" if rule == "spike_count" else f"v.{node}"
    if key not in traces:
        raise InputDataError(f"the traces hold no '{key}' (the readout); record v when simulating")
    trace = np.asarray(traces[key], dtype=np.float64)
    return float(meta["output_scale"]) * trace.mean(axis=1)


def predict(traces: Mapping[str, np.ndarray], source: Any) -> np.ndarray:
    """Class per sample (argmax of :func:`scores`)."""
    s = scores(traces, source)
    return np.argmax(s.reshape(s.shape[0], -1), axis=1)
