"""Export norse (1.1.x) step-wise modules to NIR under neurodeploy's semantics contract.

The exported graph is meant to be simulated by neurodeploy's float reference, which runs
forward Euler, reset to ``v_reset``, amplitude-1 spikes, input ``x[t]`` entering at step
``t``, recurrent edges carrying the previous step's value.  With those rules the exported
graph reproduces norse's own step functions (``lif_box_feed_forward_step``,
``lif_feed_forward_step``, ``lif_step``, ``li_feed_forward_step``, ...) up to float32
rounding.  The mapping (time constants in seconds: norse stores inverse time constants in
1/s, e.g. ``tau_mem_inv=100`` is ``tau=0.01 s``):

=====================  =====================================================================
norse / torch          NIR
=====================  =====================================================================
LIFBoxCell             LIF(tau=1/tau_mem_inv, r=1, v_leak, v_threshold=v_th, v_reset)
LIFCell                CubaLIF(tau_syn=1/tau_syn_inv, tau_mem=1/tau_mem_inv, r=1,
                       w_in=tau_syn/dt, v_leak, v_threshold=v_th, v_reset)
LIFRecurrentCell       Linear(input_weights) -> CubaLIF <-> Linear(recurrent_weights) (cycle)
LIBoxCell              LI(tau=1/tau_mem_inv, r=1, v_leak)
LICell                 CubaLI(tau_syn, tau_mem, r=1, w_in=tau_syn/dt, v_leak)
LILinearCell           Linear(input_weights) -> CubaLI
IAFCell                IF(r=1/dt, v_threshold=v_th, v_reset)
torch.nn.Linear        Affine (Linear when the layer has no bias)
torch.nn.Conv2d        Conv2d (input_shape set, bias zeros when absent)
torch.nn.AvgPool2d     AvgPool2d; SumPool2d when divisor_override == 1
torch.nn.LPPool2d(1)   SumPool2d
torch.nn.Flatten       Flatten (dims shifted by one: NIR shapes exclude the batch)
=====================  =====================================================================

Containers: ``torch.nn.Sequential`` and ``norse.torch.SequentialState`` (nested allowed).
Every neuron parameter is written as a float32 numpy array with the layer's shape.

Public API: :func:`export_norse`, :func:`write_norse`, :func:`run_norse`,
:func:`load_weights`, :func:`layer_names`, :data:`SUPPORTED_TYPES`.
"""
from __future__ import annotations

import math
import pathlib
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import nir
import numpy as np
import torch
from norse.torch.functional.reset import reset_subtract, reset_value
from norse.torch.module.iaf import IAFCell
from norse.torch.module.leaky_integrator import LICell, LILinearCell
from norse.torch.module.leaky_integrator_box import LIBoxCell
from norse.torch.module.lif import LIFCell, LIFRecurrentCell
from norse.torch.module.lif_box import LIFBoxCell
from norse.torch.module.sequential import SequentialState

from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.format import atomic

__all__ = [
    "export_norse",
    "write_norse",
    "run_norse",
    "load_weights",
    "layer_names",
    "SUPPORTED_TYPES",
    "EXPORTER",
    "InitialStateWarning",
]

EXPORTER = "neurodeploy.export_norse"


class InitialStateWarning(UserWarning):
    """norse starts a neuron away from v = 0, which a NIR graph cannot state.

    norse's LIF/LI cells start with ``v = v_leak`` and ``IAFCell`` with ``v = v_reset``;
    NIR has no initial-state field and neurodeploy's float reference starts every neuron at
    ``v = 0`` (and ``I = 0``), so with non-zero values the first steps differ until the
    membrane has relaxed.
    """

# kind -> (classes, prefix used for auto-generated node names)
_LEAF_KINDS: List[Tuple[str, Tuple[type, ...], str]] = [
    ("lifrec", (LIFRecurrentCell,), "lif"),
    ("lilinear", (LILinearCell,), "li"),
    ("lif", (LIFCell,), "lif"),
    ("lifbox", (LIFBoxCell,), "lif"),
    ("li", (LICell,), "li"),
    ("libox", (LIBoxCell,), "li"),
    ("iaf", (IAFCell,), "if"),
    ("linear", (torch.nn.Linear,), "fc"),
    ("conv2d", (torch.nn.Conv2d,), "conv"),
    ("avgpool2d", (torch.nn.AvgPool2d,), "pool"),
    ("lppool2d", (torch.nn.LPPool2d,), "pool"),
    ("flatten", (torch.nn.Flatten,), "flatten"),
]
_CONTAINERS = (SequentialState, torch.nn.Sequential)

SUPPORTED_TYPES: Tuple[str, ...] = tuple(
    f"{cls.__module__}.{cls.__qualname__}" for _, classes, _ in _LEAF_KINDS for cls in classes
) + tuple(f"{cls.__module__}.{cls.__qualname__}" for cls in _CONTAINERS)

_SPIKING = {"lifrec", "lif", "lifbox", "iaf"}
_NEURON = _SPIKING | {"li", "libox", "lilinear"}
_RESERVED = {"input", "output"}


def _supported_list() -> str:
    return ", ".join(
        ["norse.torch." + c.__name__ for c in (LIFBoxCell, LIFCell, LIFRecurrentCell, LIBoxCell,
                                                LICell, LILinearCell, IAFCell, SequentialState)]
        + ["torch.nn." + c.__name__ for c in (torch.nn.Linear, torch.nn.Conv2d, torch.nn.AvgPool2d,
                                              torch.nn.LPPool2d, torch.nn.Flatten,
                                              torch.nn.Sequential)]
    )


@dataclass
class _Layer:
    path: str  # module path inside the exported module ("" for the root)
    module: torch.nn.Module
    kind: str
    name: str = ""
    in_shape: Tuple[int, ...] = ()
    out_shape: Tuple[int, ...] = ()

    @property
    def entry(self) -> str:
        """Node that receives the previous layer's output."""
        return f"{self.name}_in" if self.kind in ("lifrec", "lilinear") else self.name


def _kind_of(module: torch.nn.Module) -> Optional[str]:
    # exact-ish matching: the first matching entry wins (recurrent before feed-forward)
    for kind, classes, _ in _LEAF_KINDS:
        if isinstance(module, classes):
            return kind
    return None


def _type_name(module: Any) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _collect(module: torch.nn.Module, path: str = "") -> List[_Layer]:
    """Leaves in execution order; raises UnsupportedError for anything unknown."""
    kind = _kind_of(module)
    if kind is not None:
        return [_Layer(path, module, kind)]
    if isinstance(module, _CONTAINERS):
        if not isinstance(module, SequentialState):
            for child_name, child in module._modules.items():
                if child is not None and (
                    _kind_of(child) in _NEURON or isinstance(child, SequentialState)
                ):
                    where = f"'{path}'" if path else "the root module"
                    raise UnsupportedError(
                        f"torch.nn.Sequential {where} holds the stateful module '{child_name}' "
                        f"({_type_name(child)}); norse cells return (output, state), so wrap "
                        "them in norse.torch.SequentialState instead"
                    )
        out: List[_Layer] = []
        # _modules, not named_children(): the latter hides a module that appears twice
        for child_name, child in module._modules.items():
            if child is None:
                continue
            out.extend(_collect(child, f"{path}.{child_name}" if path else child_name))
        return out
    where = f"module '{path}'" if path else "the root module"
    raise UnsupportedError(
        f"cannot export {where} of type {_type_name(module)}: not supported by "
        f"neurodeploy.export_norse. Supported types: {_supported_list()}"
    )


def _assign_names(layers: List[_Layer]) -> None:
    """Readable, deterministic node names.

    A layer whose module path ends in a non-numeric child name (``torch.nn.Sequential``
    built from an OrderedDict) keeps that name (path components joined with ``_``);
    numbered children (``SequentialState`` always numbers them) are named by type and
    position: ``fc1, lif1, fc2, li1, conv1, pool1, flatten1, if1`` ...
    """
    counts: Dict[str, int] = {}
    used = set(_RESERVED)
    for layer in layers:
        parts = [p for p in layer.path.split(".") if p] if layer.path else []
        if parts and not parts[-1].isdigit():
            base = "_".join(p for p in parts if not p.isdigit())
            base = "".join(c if (c.isalnum() or c in "_-") else "_" for c in base)
        else:
            prefix = next(pfx for kind, _, pfx in _LEAF_KINDS if kind == layer.kind)
            counts[prefix] = counts.get(prefix, 0) + 1
            base = f"{prefix}{counts[prefix]}"
            while base in used:
                counts[prefix] += 1
                base = f"{prefix}{counts[prefix]}"
        name, k = base, 1
        extra = {name + "_in", name + "_rec"} if layer.kind in ("lifrec", "lilinear") else set()
        while name in used or (extra & used):
            k += 1
            name = f"{base}_{k}"
            extra = {name + "_in", name + "_rec"} if layer.kind in ("lifrec", "lilinear") else set()
        layer.name = name
        used.add(name)
        used |= extra


def _is_stateful_call(module: torch.nn.Module) -> bool:
    return isinstance(module, SequentialState) or (
        _kind_of(module) in _NEURON
    )


def _step(module: torch.nn.Module, x: torch.Tensor, state: Any) -> Tuple[torch.Tensor, Any]:
    """One time step of the (root) module; returns (output, state)."""
    if _is_stateful_call(module):
        out, state = module(x, state)
        return out, state
    return module(x), None


def _prepare(module: torch.nn.Module) -> List[_Layer]:
    if not isinstance(module, torch.nn.Module):
        raise UnsupportedError(
            f"export_norse expects a torch.nn.Module, got {_type_name(module)}"
        )
    layers = _collect(module)
    if not layers:
        raise UnsupportedError("the module has no layers to export")
    seen: Dict[int, str] = {}
    for layer in layers:
        if id(layer.module) in seen:
            raise UnsupportedError(
                f"module '{layer.path}' is the same object as '{seen[id(layer.module)]}'; "
                "a module used twice cannot be exported (weights would be shared)"
            )
        seen[id(layer.module)] = layer.path
    _assign_names(layers)
    return layers


def layer_names(module: torch.nn.Module) -> Dict[str, str]:
    """Map module path -> NIR node name (the neuron node for recurrent cells)."""
    return {layer.path: layer.name for layer in _prepare(module)}


def _infer_shapes(module: torch.nn.Module, layers: List[_Layer], sample: torch.Tensor) -> Any:
    records: Dict[int, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {}

    def make_hook(layer: _Layer) -> Callable:
        def hook(mod, inputs, output):
            x = inputs[0]
            y = output[0] if isinstance(output, tuple) else output
            records[id(layer)] = (tuple(x.shape[1:]), tuple(y.shape[1:]))

        return hook

    handles = [layer.module.register_forward_hook(make_hook(layer)) for layer in layers]
    try:
        with torch.no_grad():
            out, _ = _step(module, sample, None)
    except NeurodeployError:
        raise
    except Exception as exc:  # a shape mismatch etc. in the user's module
        raise NeurodeployError(
            f"running the module on the sample (shape {tuple(sample.shape)}) to infer layer "
            f"shapes failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        for h in handles:
            h.remove()
    for layer in layers:
        if id(layer) not in records:
            raise NeurodeployError(
                f"module '{layer.path}' ({_type_name(layer.module)}) was not called when running "
                "the sample; only modules that run in sequence can be exported"
            )
        layer.in_shape, layer.out_shape = records[id(layer)]
    return out


def _as_sample(sample: Any) -> torch.Tensor:
    if isinstance(sample, np.ndarray):
        sample = torch.from_numpy(sample)
    if not isinstance(sample, torch.Tensor):
        raise NeurodeployError(
            f"sample must be a torch tensor with a batch dimension, got {type(sample).__name__}"
        )
    if sample.ndim < 2:
        raise NeurodeployError(
            f"sample must have a batch dimension (shape (batch, *input_shape)), got shape "
            f"{tuple(sample.shape)}"
        )
    return sample.detach().to(torch.float32)


# ---------------------------------------------------------------------------------------
# parameter conversion


def _np(value: Any) -> np.ndarray:
    return torch.as_tensor(value).detach().cpu().to(torch.float32).numpy()


def _per_neuron(value: Any, shape: Tuple[int, ...], layer: _Layer, field: str) -> np.ndarray:
    a = _np(value)
    while a.ndim > len(shape) and a.shape[0] == 1:
        a = a[0]
    try:
        out = np.broadcast_to(a, shape)
    except ValueError:
        raise NeurodeployError(
            f"module '{layer.path}' ({_type_name(layer.module)}): parameter {field} of shape "
            f"{a.shape} does not broadcast to the layer shape {shape}"
        ) from None
    out = np.array(out, dtype=np.float32, copy=True)
    if not np.all(np.isfinite(out)):
        raise NeurodeployError(f"module '{layer.path}': parameter {field} is not finite")
    return out


def _tau(inv: Any, shape: Tuple[int, ...], layer: _Layer, field: str) -> np.ndarray:
    inv_arr = _per_neuron(inv, shape, layer, field)
    if np.any(inv_arr <= 0):
        raise UnsupportedError(
            f"module '{layer.path}' ({_type_name(layer.module)}): {field} must be > 0 "
            f"(got min {float(inv_arr.min())})"
        )
    return (1.0 / inv_arr.astype(np.float64)).astype(np.float32)


def _check_dt(layer: _Layer, dt: float) -> None:
    mdt = getattr(layer.module, "dt", None)
    if layer.kind == "iaf" or mdt is None:
        return  # norse's IAF ignores dt (v += x)
    if not math.isclose(float(mdt), float(dt), rel_tol=1e-9, abs_tol=0.0):
        raise NeurodeployError(
            f"module '{layer.path}' ({_type_name(layer.module)}) integrates with dt={mdt} but "
            f"export_norse was called with dt={dt}; pass dt={mdt}"
        )


def _reset_mode(layer: _Layer) -> Optional[str]:
    if layer.kind in ("lifbox",):
        method = getattr(layer.module.p, "reset_method", reset_value)
        if method is reset_value:
            return "zero"
        if method is reset_subtract:
            return "subtract"
        raise UnsupportedError(
            f"module '{layer.path}' (LIFBoxCell) uses reset method {method!r}; "
            "supported: reset_value, reset_subtract"
        )
    if layer.kind in _SPIKING:
        return "zero"
    return None


def _weight_nodes(layer: _Layer) -> Dict[str, nir.NIRNode]:
    """The NIR node of a weight, pooling or flatten layer, under the layer's name."""
    builders: Dict[str, Callable[[_Layer], nir.NIRNode]] = {
        "linear": _linear_node,
        "conv2d": _conv2d_node,
        "avgpool2d": _pool_node,
        "lppool2d": _pool_node,
        "flatten": _flatten_node,
    }
    if layer.kind not in builders:
        raise AssertionError(layer.kind)  # pragma: no cover
    return {layer.name: builders[layer.kind](layer)}


def _linear_node(layer: _Layer) -> nir.NIRNode:
    m = layer.module
    w = _np(m.weight).copy()
    if m.bias is None:
        return nir.Linear(weight=w)
    return nir.Affine(weight=w, bias=_np(m.bias).copy())


def _conv2d_node(layer: _Layer) -> nir.NIRNode:
    m = layer.module
    if m.padding_mode != "zeros":
        raise UnsupportedError(
            f"module '{layer.path}' (Conv2d): padding_mode={m.padding_mode!r} is not supported "
            "(only 'zeros')"
        )
    if len(layer.in_shape) != 3:
        raise NeurodeployError(
            f"module '{layer.path}' (Conv2d): expected an input of shape (C, H, W) per sample, "
            f"got {layer.in_shape}"
        )
    w = _np(m.weight).copy()
    padding = _conv2d_padding(layer)
    bias = _np(m.bias).copy() if m.bias is not None else np.zeros(w.shape[0], np.float32)
    return nir.Conv2d(
        input_shape=tuple(int(s) for s in layer.in_shape[1:]),
        weight=w,
        stride=tuple(int(s) for s in m.stride),
        padding=tuple(int(s) for s in padding),
        dilation=tuple(int(s) for s in m.dilation),
        groups=int(m.groups),
        bias=bias,
    )


def _conv2d_padding(layer: _Layer) -> Sequence[int]:
    """A Conv2d's padding per spatial axis; 'valid' is none, 'same' (stride 1) must be symmetric."""
    m = layer.module
    padding = m.padding
    if not isinstance(padding, str):
        return padding
    if padding == "valid":
        return (0, 0)
    pads = []
    for k, d in zip(m.kernel_size, m.dilation):
        total = d * (k - 1)
        if total % 2:
            raise UnsupportedError(
                f"module '{layer.path}' (Conv2d): padding='same' needs asymmetric "
                "padding for this kernel; use an explicit integer padding"
            )
        pads.append(total // 2)
    return tuple(pads)


def _pair(v: Any) -> np.ndarray:
    """A pooling size given as one int or a pair, as an int64 pair."""
    return np.array(v if isinstance(v, (tuple, list)) else (v, v), dtype=np.int64)


def _pool_node(layer: _Layer) -> nir.NIRNode:
    """AvgPool2d as NIR AvgPool2d (or SumPool2d with divisor_override=1); LPPool2d (p=1) as SumPool2d."""
    m = layer.module
    if getattr(m, "ceil_mode", False):
        raise UnsupportedError(f"module '{layer.path}': ceil_mode=True pooling is not supported")
    kernel = _pair(m.kernel_size)
    stride = _pair(m.stride if m.stride is not None else m.kernel_size)
    if layer.kind == "lppool2d":
        if float(m.norm_type) != 1.0:
            raise UnsupportedError(
                f"module '{layer.path}' (LPPool2d): only norm_type=1 (sum pooling) is supported"
            )
        return nir.SumPool2d(kernel_size=kernel, stride=stride, padding=np.zeros(2, np.int64))
    padding = _pair(m.padding)
    if np.any(padding != 0) and not m.count_include_pad:
        raise UnsupportedError(
            f"module '{layer.path}' (AvgPool2d): padding with count_include_pad=False "
            "is not supported"
        )
    if m.divisor_override is None:
        return nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=padding)
    if m.divisor_override == 1:
        return nir.SumPool2d(kernel_size=kernel, stride=stride, padding=padding)
    raise UnsupportedError(
        f"module '{layer.path}' (AvgPool2d): divisor_override={m.divisor_override} is not "
        "supported (None -> AvgPool2d, 1 -> SumPool2d)"
    )


def _flatten_node(layer: _Layer) -> nir.NIRNode:
    """Flatten with the batch dimension dropped from start_dim / end_dim (NIR shapes are per sample)."""
    m = layer.module
    nd = len(layer.in_shape) + 1  # with batch
    start = m.start_dim if m.start_dim >= 0 else nd + m.start_dim
    end = m.end_dim if m.end_dim >= 0 else nd + m.end_dim
    if start < 1:
        raise UnsupportedError(
            f"module '{layer.path}' (Flatten): flattening the batch dimension "
            f"(start_dim={m.start_dim}) cannot be expressed in NIR"
        )
    return nir.Flatten(
        input_type={"input": np.array(layer.in_shape, dtype=np.int64)},
        start_dim=int(start - 1),
        end_dim=int(end - 1),
    )


def _neuron_nodes(layer: _Layer, dt: float) -> Dict[str, nir.NIRNode]:
    m, p, shape = layer.module, layer.module.p, layer.out_shape
    ones = np.ones(shape, dtype=np.float32)
    f32 = lambda x: np.asarray(x, dtype=np.float32)  # noqa: E731
    if layer.kind == "lifbox":
        return {layer.name: nir.LIF(
            tau=_tau(p.tau_mem_inv, shape, layer, "tau_mem_inv"),
            r=ones,
            v_leak=_per_neuron(p.v_leak, shape, layer, "v_leak"),
            v_threshold=_per_neuron(p.v_th, shape, layer, "v_th"),
            v_reset=_per_neuron(p.v_reset, shape, layer, "v_reset"),
        )}
    if layer.kind == "libox":
        return {layer.name: nir.LI(
            tau=_tau(p.tau_mem_inv, shape, layer, "tau_mem_inv"),
            r=ones,
            v_leak=_per_neuron(p.v_leak, shape, layer, "v_leak"),
        )}
    if layer.kind == "iaf":
        return {layer.name: nir.IF(
            r=f32(np.full(shape, 1.0 / dt)),
            v_threshold=_per_neuron(p.v_th, shape, layer, "v_th"),
            v_reset=_per_neuron(p.v_reset, shape, layer, "v_reset"),
        )}
    # current-based models
    tau_syn = _tau(p.tau_syn_inv, shape, layer, "tau_syn_inv")
    tau_mem = _tau(p.tau_mem_inv, shape, layer, "tau_mem_inv")
    # w_in = tau_syn/dt: the current then jumps by exactly the input (norse: i = i + x)
    w_in = (tau_syn.astype(np.float64) / dt).astype(np.float32)
    v_leak = _per_neuron(p.v_leak, shape, layer, "v_leak")
    nodes: Dict[str, nir.NIRNode] = {}
    if layer.kind in ("lifrec", "lilinear"):
        nodes[f"{layer.name}_in"] = nir.Linear(weight=_np(m.input_weights).copy())
    if layer.kind in ("li", "lilinear"):
        nodes[layer.name] = nir.CubaLI(
            tau_syn=tau_syn, tau_mem=tau_mem, r=ones, v_leak=v_leak, w_in=w_in
        )
    else:
        nodes[layer.name] = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=ones,
            v_leak=v_leak,
            v_threshold=_per_neuron(p.v_th, shape, layer, "v_th"),
            v_reset=_per_neuron(p.v_reset, shape, layer, "v_reset"),
            w_in=w_in,
        )
    if layer.kind == "lifrec":
        # norse's lif_step uses recurrent_weights as stored; `autapses=False` only zeroes the
        # diagonal at construction (and masks its gradient), so the stored matrix is the
        # effective one.
        nodes[f"{layer.name}_rec"] = nir.Linear(weight=_np(m.recurrent_weights).copy())
    return nodes


def _warn_initial_state(layers: List[_Layer]) -> None:
    offenders = []
    for layer in layers:
        if layer.kind not in _NEURON:
            continue
        field = "v_reset" if layer.kind == "iaf" else "v_leak"
        if np.any(_np(getattr(layer.module.p, field)) != 0):
            offenders.append(f"'{layer.path}' ({layer.name}, {field})")
    if offenders:
        warnings.warn(
            "norse starts these neurons at v = " + ", ".join(offenders) + " != 0; NIR cannot "
            "store an initial state and neurodeploy's reference starts at v = 0, so the first "
            "steps will differ from norse (run_norse(..., initial_v='zero') matches the reference)",
            InitialStateWarning,
            stacklevel=3,
        )


def export_norse(
    module: torch.nn.Module, sample: Union[torch.Tensor, np.ndarray], *, dt: float = 1e-3
) -> nir.NIRGraph:
    """Export a norse step-wise network to a ``nir.NIRGraph``.

    Arguments:
        module: a supported layer/cell, or a ``torch.nn.Sequential`` /
            ``norse.torch.SequentialState`` of them (evaluated one time step per call).
        sample: one time step of input, shape ``(batch, *input_shape)``; used only to infer
            layer shapes (the module is run once on it, no gradients).
        dt: the time step in seconds the norse cells integrate with (must equal their ``dt``).

    Returns: the graph, with nodes ``input``, one node per layer (named by
    :func:`layer_names`; recurrent cells add ``<name>_in`` and ``<name>_rec`` Linear nodes),
    ``output``, and metadata recording dt, integrator, reset mode, spike amplitude.
    Raises ``UnsupportedError`` (a ``NeurodeployError``) for unsupported modules.
    """
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise NeurodeployError(f"dt must be a positive number of seconds, got {dt!r}")
    layers = _prepare(module)
    sample = _as_sample(sample)
    was_training = module.training
    module.eval()
    try:
        _infer_shapes(module, layers, sample)
    finally:
        module.train(was_training)

    resets = set()
    nodes: Dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type={"input": np.array(sample.shape[1:], dtype=np.int64)})
    }
    edges: List[Tuple[str, str]] = []
    prev = "input"
    for layer in layers:
        if layer.kind in _NEURON:
            _check_dt(layer, dt)
            mode = _reset_mode(layer)
            if mode:
                resets.add(mode)
            nodes.update(_neuron_nodes(layer, dt))
            edges.append((prev, layer.entry))
            if layer.kind in ("lifrec", "lilinear"):
                edges.append((layer.entry, layer.name))
            if layer.kind == "lifrec":
                edges.append((layer.name, f"{layer.name}_rec"))
                edges.append((f"{layer.name}_rec", layer.name))
        else:
            nodes.update(_weight_nodes(layer))
            edges.append((prev, layer.name))
        prev = layer.name
    nodes["output"] = nir.Output(
        output_type={"output": np.array(layers[-1].out_shape, dtype=np.int64)}
    )
    edges.append((prev, "output"))
    _warn_initial_state(layers)
    if len(resets) > 1:
        raise UnsupportedError(
            "the module mixes reset-to-value and reset-by-subtraction neurons; NIR graphs "
            "exported by neurodeploy carry a single reset mode"
        )
    metadata = {
        "neurodeploy.dt": dt,
        "neurodeploy.integrator": "euler",
        "neurodeploy.reset": resets.pop() if resets else "zero",
        "neurodeploy.spike_amplitude": 1.0,
        "neurodeploy.exporter": EXPORTER,
    }
    try:
        graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)
    except (ValueError, AssertionError) as exc:
        raise NeurodeployError(f"the exported graph failed NIR's type check: {exc}") from exc
    return graph


def write_norse(
    module: torch.nn.Module,
    sample: Union[torch.Tensor, np.ndarray],
    path: Union[str, pathlib.Path],
    dt: float = 1e-3,
) -> nir.NIRGraph:
    """Export with :func:`export_norse` and write the graph to ``path`` (``nir.write``, atomically).

    The file is byte-identical for identical modules (h5py writes no timestamps by default).
    Returns the graph.
    """
    graph = export_norse(module, sample, dt=dt)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(path) as tmp:
        nir.write(tmp, graph)
    return graph


# ---------------------------------------------------------------------------------------
# running norse itself, recording traces under the same names as the float reference


def run_norse(
    module: torch.nn.Module,
    inputs: Union[np.ndarray, torch.Tensor],
    *,
    record: Sequence[str] = ("v", "spikes"),
    initial_v: str = "norse",
) -> Dict[str, np.ndarray]:
    """Run the norse module step by step and record traces keyed like neurodeploy's
    float reference.

    ``inputs`` has shape ``(batch, T, *input_shape)``; the module is called once per step
    with ``inputs[:, t]`` and its own default initial state.  Returns ``"output"``
    ``(batch, T, *out_shape)`` and, per neuron layer, ``"v.<node>"`` (membrane after reset)
    and, for spiking layers, ``"spikes.<node>"`` — both ``(batch, T, *shape)`` float32.

    ``initial_v="norse"`` keeps norse's own initial state (``v = v_leak``; IAF:
    ``v = v_reset``); ``"zero"`` starts every membrane at 0 like neurodeploy's reference
    (see :class:`InitialStateWarning`).  Synaptic currents start at 0 either way.
    """
    if initial_v not in ("norse", "zero"):
        raise NeurodeployError(f"initial_v must be 'norse' or 'zero', got {initial_v!r}")
    layers = _prepare(module)
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
    x = x.detach().to(torch.float32)
    if x.ndim < 3:
        raise NeurodeployError(
            f"inputs must have shape (batch, T, *input_shape), got {tuple(x.shape)}"
        )
    batch, steps = x.shape[0], x.shape[1]
    traces: Dict[str, List[np.ndarray]] = {}

    def make_hook(layer: _Layer) -> Callable:
        def hook(mod, inp, output):
            y, state = output
            shape = (batch, *y.shape[1:])
            if "v" in record:
                v = torch.broadcast_to(state.v.detach(), shape)
                traces.setdefault(f"v.{layer.name}", []).append(v.numpy().copy())
            if "spikes" in record and layer.kind in _SPIKING:
                traces.setdefault(f"spikes.{layer.name}", []).append(y.detach().numpy().copy())

        return hook

    handles = [
        layer.module.register_forward_hook(make_hook(layer))
        for layer in layers
        if layer.kind in _NEURON
    ]
    if initial_v == "zero":
        handles += [
            layer.module.register_forward_pre_hook(_zero_state_hook)
            for layer in layers
            if layer.kind in _NEURON
        ]
    outputs = []
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            state = None
            for t in range(steps):
                out, state = _step(module, x[:, t], state)
                if isinstance(out, (list, tuple)):  # SequentialState(return_hidden=True)
                    out = out[-1]
                outputs.append(out.detach().numpy().copy())
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    result = {k: np.stack(v, axis=1).astype(np.float32) for k, v in traces.items()}
    result["output"] = np.stack(outputs, axis=1).astype(np.float32)
    return result


def _zero_state_hook(mod: torch.nn.Module, args: Tuple[Any, ...]) -> Optional[Tuple[Any, ...]]:
    """Forward pre-hook: replace a missing (initial) state by norse's with v = 0."""
    x = args[0]
    if len(args) > 1 and args[1] is not None:
        return None
    if isinstance(mod, LILinearCell):
        from norse.torch.functional.leaky_integrator import LIState

        state = LIState(v=torch.zeros((x.shape[0], mod.hidden_size)),
                        i=torch.zeros((x.shape[0], mod.hidden_size), dtype=x.dtype))
    else:
        state = mod.state_fallback(x)
        state = state._replace(v=torch.zeros_like(torch.as_tensor(state.v), dtype=torch.float32))
    return (x, state)


# ---------------------------------------------------------------------------------------
# loading weights back from a NIR file


def _load_into(param: torch.Tensor, value: np.ndarray, where: str) -> None:
    value = np.asarray(value, dtype=np.float32)
    if tuple(param.shape) != value.shape:
        raise NeurodeployError(
            f"{where}: shape {value.shape} in the NIR graph, {tuple(param.shape)} in the module"
        )
    with torch.no_grad():
        param.copy_(torch.from_numpy(value.copy()))


def load_weights(
    module: torch.nn.Module,
    source: Union[str, pathlib.Path, nir.NIRGraph],
    sample: Union[torch.Tensor, np.ndarray],
    *,
    dt: Optional[float] = None,
    check_neurons: bool = True,
) -> torch.nn.Module:
    """Copy the weights of a graph written by :func:`export_norse` into ``module``.

    ``module`` must have the architecture that produced the graph (same layer types and
    order, hence the same node names).  Weights and biases (Linear/Affine, Conv2d, the input
    and recurrent matrices of recurrent cells) are copied in place; with ``check_neurons``
    every neuron parameter of the module is exported again and must equal the graph's
    exactly.  Returns ``module``.
    """
    graph = source if isinstance(source, nir.NIRGraph) else nir.read(str(source))
    if dt is None:
        dt = float(np.asarray(graph.metadata.get("neurodeploy.dt", 1e-3)))
    expected = export_norse(module, sample, dt=dt)
    missing = [k for k in expected.nodes if k not in graph.nodes]
    extra = [k for k in graph.nodes if k not in expected.nodes]
    if missing or extra:
        raise NeurodeployError(
            f"the graph does not match the module: nodes missing from the graph {missing}, "
            f"nodes not produced by the module {extra}"
        )
    for name, node in expected.nodes.items():
        if type(graph.nodes[name]) is not type(node):
            raise NeurodeployError(
                f"node '{name}': {type(graph.nodes[name]).__name__} in the graph, "
                f"{type(node).__name__} from the module"
            )
    if sorted(map(tuple, expected.edges)) != sorted(tuple(e) for e in graph.edges):
        raise NeurodeployError("the graph's edges differ from the module's structure")

    for layer in _prepare(module):
        m = layer.module
        if layer.kind in ("linear", "conv2d"):
            node = graph.nodes[layer.name]
            _load_into(m.weight, node.weight, f"node '{layer.name}' weight")
            if getattr(node, "bias", None) is not None and m.bias is not None:
                _load_into(m.bias, node.bias, f"node '{layer.name}' bias")
        elif layer.kind in ("lifrec", "lilinear"):
            _load_into(m.input_weights, graph.nodes[f"{layer.name}_in"].weight,
                       f"node '{layer.name}_in' weight")
            if layer.kind == "lifrec":
                _load_into(m.recurrent_weights, graph.nodes[f"{layer.name}_rec"].weight,
                           f"node '{layer.name}_rec' weight")
    if check_neurons:
        again = export_norse(module, sample, dt=dt)
        for name, node in again.nodes.items():
            theirs = graph.nodes[name]
            for field, value in vars(node).items():
                if field in ("input_type", "output_type", "metadata") or not isinstance(
                    value, np.ndarray
                ):
                    continue
                other = np.asarray(getattr(theirs, field))
                if other.shape != value.shape or not np.array_equal(other, value):
                    raise NeurodeployError(
                        f"node '{name}' field '{field}' differs between the graph and the module "
                        "after loading"
                    )
    return module
