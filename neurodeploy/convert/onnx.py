"""Read a trained ANN from an ONNX file into a chain of numpy layers (no onnxruntime, no pickle).

The ONNX graph is read with the ``onnx`` package (``onnx.load``, ``onnx.numpy_helper``) and
interpreted node by node into an :class:`ANN`: a chain of layers on per-sample shapes (the
ONNX batch axis is dropped), with BatchNormalization folded into the Gemm/MatMul/Conv before
it and a constant Add folded into their bias. :meth:`ANN.forward` runs the network in numpy;
the ANN-to-SNN conversion (``neurodeploy/convert/ann_to_snn.py``) uses it for calibration.

Supported operators (:data:`SUPPORTED_OPS`): Gemm, MatMul (+ Add of a constant), Conv (1-D and
2-D, symmetric padding), Relu, BatchNormalization (after Gemm/MatMul/Conv), AveragePool (2-D),
GlobalAveragePool, Flatten and Reshape (per sample: to a vector anywhere, to any shape at the
input), Identity, Dropout (inference: identity), Constant. The graph must be a
chain: one input, one output, no branches. Anything else raises an ``UnsupportedError`` that
names the operator type and the node and lists the supported operators; a file that is not a
readable ONNX model raises :class:`ONNXFileError` naming the file.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError, UnsupportedError

SUPPORTED_OPS = (
    "Gemm", "MatMul", "Add", "Conv", "Relu", "BatchNormalization", "AveragePool", "GlobalAveragePool",
    "Flatten", "Reshape", "Identity", "Dropout", "Constant",
)
WEIGHTED = ("dense", "conv")


class ONNXFileError(NeurodeployError):
    """A file could not be read as an ONNX model (missing, not protobuf, no graph, invalid)."""


@dataclass
class Layer:
    """One stage of the chain, on per-sample shapes (no batch axis).

    kind: ``dense`` (weight (out, in), bias), ``conv`` (weight, bias, stride, padding, dilation,
    groups), ``relu``, ``avgpool`` (kernel, stride, padding), ``flatten`` (to a vector) or
    ``reshape`` (to an N-D shape; only at the input).
    """

    kind: str
    name: str  # the ONNX node name(s) it came from (folded nodes joined by '+')
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ANN:
    layers: list[Layer]
    input_name: str
    input_shape: tuple[int, ...]  # per sample
    source: str  # file name (or '<model>')
    sha256: str  # of the file's bytes
    opset: int
    notes: list[str] = field(default_factory=list)

    @property
    def leading_reshapes(self) -> int:
        """How many layers at the start only reshape the input (the NIR Input takes their shape)."""
        n = 0
        while n < len(self.layers) and self.layers[n].kind in ("flatten", "reshape"):
            n += 1
        return n

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape if self.layers else self.input_shape

    def forward(self, x: np.ndarray, *, record: bool = False, dtype=np.float64):
        """Run the ANN on ``x`` (batch, *input_shape). With ``record``, also return every layer's
        output (a list aligned with ``layers``)."""
        x = np.asarray(x, dtype=dtype)
        if x.shape[1:] != self.input_shape:
            if x.ndim < 2 or math.prod(x.shape[1:]) != math.prod(self.input_shape):
                raise NeurodeployError(
                    f"{self.source}: input has shape {list(x.shape)}, expected (batch, "
                    f"{', '.join(map(str, self.input_shape))})")
            x = x.reshape((x.shape[0],) + self.input_shape)
        outs = []
        for layer in self.layers:
            x = apply_layer(layer, x)
            if record:
                outs.append(x)
        return (x, outs) if record else x


def apply_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    """One layer on a batch (batch, *layer.in_shape)."""
    from neurodeploy.emulator.ops import conv, sum_pool

    batch = x.shape[0]
    p = layer.params
    x = x.reshape((batch,) + layer.in_shape)
    if layer.kind == "dense":
        y = x @ p["weight"].T.astype(x.dtype) + p["bias"].astype(x.dtype)
    elif layer.kind == "conv":
        y = conv(x, p["weight"].astype(x.dtype), p["stride"], p["padding"], p["dilation"], p["groups"])
        y = y + p["bias"].astype(x.dtype).reshape((-1,) + (1,) * (y.ndim - 2))
    elif layer.kind == "relu":
        y = np.maximum(x, 0)
    elif layer.kind == "avgpool":
        y = sum_pool(x, p["kernel"], p["stride"], p["padding"]) / x.dtype.type(np.prod(p["kernel"]))
    elif layer.kind in ("flatten", "reshape"):
        y = x
    else:  # pragma: no cover - the reader creates only the kinds above
        raise ValueError(layer.kind)
    return np.asarray(y, dtype=x.dtype).reshape((batch,) + layer.out_shape)


def supported_list() -> str:
    return ", ".join(SUPPORTED_OPS)


# ----------------------------------------------------------------------------- reading

def load_onnx(path: str | Path, input_shape: tuple[int, ...] | None = None) -> ANN:
    """Read ``path`` into an :class:`ANN`. ``input_shape`` (per sample) is used where the
    file leaves the input's dimensions symbolic."""
    path = Path(path)
    if not path.exists():
        raise ONNXFileError(f"{path}: no such file")
    if path.is_dir():
        raise ONNXFileError(f"{path}: is a directory, expected an .onnx file")
    data = path.read_bytes()
    if not data:
        raise ONNXFileError(f"{path}: the file is empty; expected an ONNX model (torch.onnx.export writes one)")
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency of the convert command
        raise NeurodeployError("reading ONNX needs the 'onnx' package: pip install onnx") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise ONNXFileError(f"{path}: not an ONNX model (protobuf parse failed: {_brief(exc)})") from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise ONNXFileError(f"{path}: not an ONNX model (it holds no graph with nodes); "
                            f"write one with torch.onnx.export or onnx.save")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        try:
            from onnx.external_data_helper import load_external_data_for_model

            load_external_data_for_model(model, str(path.parent))
        except Exception as exc:  # noqa: BLE001
            raise ONNXFileError(f"{path}: the model keeps weights in external data that cannot be read: "
                                f"{_brief(exc)}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError and C++ errors
        raise ONNXFileError(f"{path}: not a valid ONNX model: {_brief(exc)}") from None
    ann = from_model(model, source=str(path), input_shape=input_shape)
    ann.sha256 = hashlib.sha256(data).hexdigest()
    return ann


def from_model(model: Any, source: str = "<model>", input_shape: tuple[int, ...] | None = None) -> ANN:
    """Interpret an in-memory ``onnx.ModelProto``."""
    return _Reader(model, source, input_shape).read()


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:240]}" if text else type(exc).__name__


class _Reader:
    def __init__(self, model: Any, source: str, input_shape: tuple[int, ...] | None):
        self.model = model
        self.graph = model.graph
        self.source = source
        self.given_shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
        self.opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.consts: dict[str, np.ndarray] = {}
        self.layers: list[Layer] = []
        self.notes: list[str] = []

    # --------------------------------------------------------------- helpers
    def fail(self, node: Any, message: str) -> UnsupportedError:
        return UnsupportedError(f"{self.source}: node '{node.name or '<unnamed>'}' ({node.op_type}): {message}")

    def malformed(self, node: Any, message: str) -> ONNXFileError:
        return ONNXFileError(f"{self.source}: node '{node.name or '<unnamed>'}' ({node.op_type}): {message}")

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node: Any, index: int, what: str, required: bool = True) -> np.ndarray | None:
        if index >= len(node.input) or not node.input[index]:
            if required:
                raise self.malformed(node, f"input {index} ({what}) is missing")
            return None
        name = node.input[index]
        if name not in self.consts:
            raise self.fail(node, f"the {what} ('{name}') must be a constant (an initializer or Constant node); "
                                  f"computed {what}s are not supported")
        return self.consts[name]

    # --------------------------------------------------------------- main
    def read(self) -> ANN:
        from onnx import numpy_helper

        g = self.graph
        for init in g.initializer:
            try:
                self.consts[init.name] = numpy_helper.to_array(init)
            except Exception as exc:  # noqa: BLE001
                raise ONNXFileError(f"{self.source}: initializer '{init.name}' is unreadable: {_brief(exc)}") from None
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise UnsupportedError(f"{self.source}: the model has {len(inputs)} inputs "
                                   f"({', '.join(i.name for i in inputs) or 'none'}); exactly one is supported")
        if len(g.output) != 1:
            raise UnsupportedError(f"{self.source}: the model has {len(g.output)} outputs "
                                   f"({', '.join(o.name for o in g.output)}); exactly one is supported")
        inp = inputs[0]
        shape = self._input_shape(inp)
        self._check_op_types()
        consumers: dict[str, int] = {}
        for node in g.node:
            for name in node.input:
                if name:
                    consumers[name] = consumers.get(name, 0) + 1
        # The dynamic tensor flowing along the chain and its per-sample shape.
        current, cur_shape = inp.name, shape
        last_weighted = -1  # index in self.layers of a weighted layer whose output is `current`
        for node in g.node:
            dyn = [i for i in node.input if i and i not in self.consts]
            if not dyn:
                self._constant_node(node)
                continue
            if len(dyn) > 1:
                raise self.fail(node, f"combines {len(dyn)} computed tensors ({', '.join(dyn)}); only chains "
                                      f"(one computed input per node, e.g. no residual Add) are supported")
            if dyn[0] != current:
                raise self.fail(node, f"reads '{dyn[0]}', which is not the output of the previous layer; "
                                      f"only chains (no branches) are supported")
            if consumers.get(current, 0) > 1:
                raise self.fail(node, f"tensor '{current}' feeds {consumers[current]} nodes; only chains "
                                      f"(no branches) are supported")
            out = [o for o in node.output if o]
            if node.op_type == "Dropout" and len(out) > 1 and consumers.get(out[1], 0):
                raise self.fail(node, "its mask output is used; only inference-mode Dropout is supported")
            cur_shape, last_weighted = self._node(node, dyn[0], cur_shape, last_weighted)
            current = out[0]
        if current != g.output[0].name:
            raise UnsupportedError(f"{self.source}: the graph output '{g.output[0].name}' is not the end of the "
                                   f"chain of layers (which ends at '{current}')")
        for i, layer in enumerate(self.layers):
            at_input = all(l.kind in ("flatten", "reshape") for l in self.layers[:i])
            if layer.kind == "reshape" and not at_input:
                raise UnsupportedError(
                    f"{self.source}: node '{layer.name}' (Reshape): reshaping to {list(layer.out_shape)} after "
                    f"other layers is not supported (NIR has no reshape operator); a reshape of the input, "
                    f"or a flatten to a vector, is")
        return ANN(self.layers, inp.name, shape, self.source, "", self.opset, self.notes)

    def _input_shape(self, inp: Any) -> tuple[int, ...]:
        dims = []
        t = inp.type.tensor_type
        if t.HasField("shape"):
            for d in t.shape.dim:
                dims.append(int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None)
        per_sample = dims[1:] if dims else None
        if per_sample is not None and all(d is not None for d in per_sample) and per_sample:
            shape = tuple(per_sample)  # type: ignore[arg-type]
            if self.given_shape is not None and math.prod(self.given_shape) != math.prod(shape):
                raise NeurodeployError(f"{self.source}: input '{inp.name}' has per-sample shape {list(shape)}, "
                                       f"the calibration data {list(self.given_shape)}")
            return shape
        if self.given_shape is not None:
            return self.given_shape
        raise UnsupportedError(f"{self.source}: input '{inp.name}' has no static per-sample shape "
                               f"(dims {dims}); export with a fixed input shape")

    def _check_op_types(self) -> None:
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
                hint = ""
                if node.op_type in ("Softmax", "LogSoftmax"):
                    hint = " (export the logits without the final softmax: the class, the argmax, is the same)"
                elif node.op_type == "MaxPool":
                    hint = " (use average pooling: a max of spike rates has no rate-coded IF equivalent)"
                elif node.op_type in ("Sigmoid", "Tanh", "LeakyRelu", "Elu", "Gelu", "Selu", "PRelu", "Clip"):
                    hint = " (rate-coded IF neurons convert ReLU activations only)"
                domain = f" in domain '{node.domain}'" if node.domain not in ("", "ai.onnx") else ""
                raise UnsupportedError(
                    f"{self.source}: node '{node.name or '<unnamed>'}': unsupported ONNX operator "
                    f"{node.op_type}{domain}{hint}; supported: {supported_list()}")

    def _constant_node(self, node: Any) -> None:
        from onnx import numpy_helper

        if node.op_type == "Constant":
            a = self.attrs(node)
            if "value" in a:
                value = numpy_helper.to_array(a["value"])
            elif "value_float" in a:
                value = np.array(a["value_float"], dtype=np.float32)
            elif "value_floats" in a:
                value = np.array(a["value_floats"], dtype=np.float32)
            elif "value_int" in a:
                value = np.array(a["value_int"], dtype=np.int64)
            elif "value_ints" in a:
                value = np.array(a["value_ints"], dtype=np.int64)
            else:
                raise self.fail(node, f"constant attribute {list(a)} is not supported")
            self.consts[node.output[0]] = value
        elif node.op_type in ("Identity", "Dropout"):
            self.consts[node.output[0]] = self.consts[node.input[0]]
        else:
            raise self.fail(node, "operates on constants only; fold constants before export "
                                  "(torch.onnx.export(..., do_constant_folding=True))")

    # --------------------------------------------------------------- operators
    def _node(self, node: Any, x: str, shape: tuple[int, ...], last_weighted: int) -> tuple[tuple[int, ...], int]:
        op = node.op_type
        name = node.name or f"<{op}>"
        if op in ("Identity", "Dropout"):
            return shape, last_weighted
        if op == "Relu":
            self.layers.append(Layer("relu", name, shape, shape))
            return shape, -1
        if op == "Gemm":
            return self._gemm(node, shape), len(self.layers) - 1
        if op == "MatMul":
            if node.input[0] != x:
                raise self.fail(node, "the computed tensor must be the left operand (x @ W)")
            if len(shape) != 1:
                raise self.fail(node, f"MatMul on per-sample shape {list(shape)} is not supported; flatten first")
            w = self.const(node, 1, "weight")
            if w.ndim != 2 or w.shape[0] != shape[0]:
                raise self.malformed(node, f"weight of shape {list(w.shape)} does not take {shape[0]} inputs")
            self.layers.append(Layer("dense", name, shape, (int(w.shape[1]),),
                                     {"weight": np.asarray(w.T, np.float64), "bias": np.zeros(w.shape[1])}))
            return (int(w.shape[1]),), len(self.layers) - 1
        if op == "Add":
            return self._add(node, x, shape, last_weighted), last_weighted
        if op == "BatchNormalization":
            self._batchnorm(node, shape, last_weighted)
            return shape, last_weighted
        if op == "Conv":
            return self._conv(node, shape), len(self.layers) - 1
        if op in ("AveragePool", "GlobalAveragePool"):
            return self._avgpool(node, shape), -1
        if op == "Flatten":
            axis = int(self.attrs(node).get("axis", 1))
            rank = len(shape) + 1
            if axis < 0:
                axis += rank
            if axis != 1:
                raise self.fail(node, f"Flatten with axis={axis} mixes the batch axis into the features; "
                                      f"only axis=1 (keep the batch, flatten each sample) is supported")
            return self._flatten(name, shape), -1
        if op == "Reshape":
            return self._reshape(node, name, shape), -1
        raise self.fail(node, f"unsupported; supported: {supported_list()}")  # pragma: no cover

    def _gemm(self, node: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
        a = self.attrs(node)
        if node.input[0] in self.consts:
            raise self.fail(node, "the computed tensor must be input A (Y = A B + C)")
        if int(a.get("transA", 0)):
            raise self.fail(node, "transA=1 transposes the batch axis; only transA=0 is supported")
        if len(shape) != 1:
            raise self.fail(node, f"input A has per-sample shape {list(shape)}; Gemm needs vectors (flatten first)")
        b = np.asarray(self.const(node, 1, "weight (B)"), dtype=np.float64)
        if b.ndim != 2:
            raise self.malformed(node, f"B must be 2-D, got shape {list(b.shape)}")
        w = b if int(a.get("transB", 0)) else b.T  # (out, in)
        if w.shape[1] != shape[0]:
            raise self.malformed(node, f"weight takes {w.shape[1]} inputs, the input has {shape[0]}")
        w = float(a.get("alpha", 1.0)) * w
        bias = np.zeros(w.shape[0])
        c = self.const(node, 2, "bias (C)", required=False)
        if c is not None:
            bias = self._per_feature(node, np.asarray(c, np.float64), (w.shape[0],)) * float(a.get("beta", 1.0))
        self.layers.append(Layer("dense", node.name or "<Gemm>", shape, (int(w.shape[0]),),
                                 {"weight": w, "bias": bias}))
        return (int(w.shape[0]),)

    def _per_feature(self, node: Any, c: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
        """A constant broadcast against (batch, *out_shape), as per-sample values of out_shape."""
        full = (1,) + out_shape
        if c.ndim > len(full):
            raise self.fail(node, f"constant of shape {list(c.shape)} does not broadcast to (batch, {list(out_shape)})")
        padded = c.reshape((1,) * (len(full) - c.ndim) + c.shape)
        if padded.shape[0] != 1:
            raise self.fail(node, f"constant of shape {list(c.shape)} differs per batch element; not supported")
        try:
            return np.broadcast_to(padded[0], out_shape).astype(np.float64).copy()
        except ValueError:
            raise self.malformed(node, f"constant of shape {list(c.shape)} does not broadcast to "
                                       f"(batch, {', '.join(map(str, out_shape))})") from None

    def _add(self, node: Any, x: str, shape: tuple[int, ...], last_weighted: int) -> tuple[int, ...]:
        other = node.input[1] if node.input[0] == x else node.input[0]
        if last_weighted < 0 or last_weighted != len(self.layers) - 1:
            raise self.fail(node, "adding a constant is supported only directly after Gemm, MatMul or Conv "
                                  "(as their bias)")
        c = self._per_feature(node, np.asarray(self.consts[other], np.float64), shape)
        layer = self.layers[last_weighted]
        if layer.kind == "conv":
            per_channel = c.reshape(c.shape[0], -1)
            if not np.all(per_channel == per_channel[:, :1]):
                raise self.fail(node, "the constant varies across positions; a Conv bias is one value per channel")
            c = per_channel[:, 0]
        layer.params["bias"] = layer.params["bias"] + c
        layer.name += f"+{node.name or '<Add>'}"
        return shape

    def _batchnorm(self, node: Any, shape: tuple[int, ...], last_weighted: int) -> None:
        a = self.attrs(node)
        if int(a.get("training_mode", 0)):
            raise self.fail(node, "training_mode=1; export the model in eval mode")
        if last_weighted < 0 or last_weighted != len(self.layers) - 1:
            prev = self.layers[-1].kind if self.layers else "the input"
            raise self.fail(node, f"BatchNormalization is folded into the Gemm, MatMul or Conv directly before "
                                  f"it; here it follows {prev}")
        gamma, beta, mean, var = (np.asarray(self.const(node, i, w), np.float64).reshape(-1)
                                  for i, w in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
        channels = shape[0]
        for arr, what in ((gamma, "scale"), (beta, "bias"), (mean, "mean"), (var, "var")):
            if arr.size != channels:
                raise self.malformed(node, f"{what} has {arr.size} values for {channels} channels")
        eps = float(a.get("epsilon", 1e-5))
        s = gamma / np.sqrt(var + eps)
        layer = self.layers[last_weighted]
        w = layer.params["weight"]
        layer.params["weight"] = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        layer.params["bias"] = (layer.params["bias"] - mean) * s + beta
        layer.name += f"+{node.name or '<BatchNormalization>'}"

    def _conv(self, node: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
        a = self.attrs(node)
        w = np.asarray(self.const(node, 1, "weight"), np.float64)
        dims = w.ndim - 2
        if dims not in (1, 2):
            raise self.fail(node, f"{dims}-D convolution; only 1-D and 2-D are supported")
        if len(shape) != dims + 1:
            raise self.fail(node, f"input of per-sample shape {list(shape)} is not (channels, *{dims} spatial dims)")
        groups = int(a.get("group", 1))
        if w.shape[1] * groups != shape[0]:
            raise self.malformed(node, f"weight {list(w.shape)} with group={groups} does not take {shape[0]} channels")
        k = np.array(w.shape[2:])
        if "kernel_shape" in a and list(a["kernel_shape"]) != k.tolist():
            raise self.malformed(node, f"kernel_shape {list(a['kernel_shape'])} disagrees with the weight {list(w.shape)}")
        stride = np.array(a.get("strides", [1] * dims), dtype=np.int64)
        dilation = np.array(a.get("dilations", [1] * dims), dtype=np.int64)
        spatial = np.array(shape[1:])
        pad = self._padding(node, a, spatial, (k - 1) * dilation + 1, stride, dims)
        out = (spatial + 2 * pad - dilation * (k - 1) - 1) // stride + 1
        bias = self.const(node, 2, "bias", required=False)
        bias = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, np.float64).reshape(-1)
        out_shape = (int(w.shape[0]),) + tuple(int(v) for v in out)
        self.layers.append(Layer("conv", node.name or "<Conv>", shape, out_shape,
                                 {"weight": w, "bias": bias, "stride": stride, "padding": pad,
                                  "dilation": dilation, "groups": groups}))
        return out_shape

    def _padding(self, node: Any, a: dict, spatial: np.ndarray, span: np.ndarray, stride: np.ndarray,
                 dims: int) -> np.ndarray:
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            total = np.maximum((-(-spatial // stride) - 1) * stride + span - spatial, 0)
            if np.any(total % 2):
                raise self.fail(node, f"auto_pad={auto} pads asymmetrically here ({total.tolist()} in total); "
                                      f"NIR padding is symmetric")
            return total // 2
        if auto == "VALID":
            return np.zeros(dims, dtype=np.int64)
        pads = np.array(a.get("pads", [0] * 2 * dims), dtype=np.int64)
        if np.any(pads[:dims] != pads[dims:]):
            raise self.fail(node, f"asymmetric pads {pads.tolist()} (begin != end); NIR padding is symmetric")
        return pads[:dims]

    def _avgpool(self, node: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise self.fail(node, f"input of per-sample shape {list(shape)}; only 2-D pooling of (C, H, W) "
                                  f"is supported")
        spatial = np.array(shape[1:])
        if node.op_type == "GlobalAveragePool":
            kernel, stride, pad = spatial.copy(), spatial.copy(), np.zeros(2, dtype=np.int64)
        else:
            a = self.attrs(node)
            kernel = np.array(a["kernel_shape"], dtype=np.int64)
            if kernel.size != 2:
                raise self.fail(node, f"kernel_shape {kernel.tolist()}; only 2-D pooling is supported")
            stride = np.array(a.get("strides", [1, 1]), dtype=np.int64)
            if np.any(np.array(a.get("dilations", [1, 1])) != 1):
                raise self.fail(node, "dilated pooling is not supported")
            pad = self._padding(node, a, spatial, kernel, stride, 2)
            if np.any(pad) and not int(a.get("count_include_pad", 0)):
                raise self.fail(node, "padding with count_include_pad=0 divides border windows by fewer "
                                      "elements; NIR AvgPool2d divides by the kernel size everywhere "
                                      "(use count_include_pad=1 or no padding)")
            floor = (spatial + 2 * pad - kernel) // stride + 1
            if int(a.get("ceil_mode", 0)):
                ceil = -(-(spatial + 2 * pad - kernel) // stride) + 1
                if np.any(ceil != floor):
                    raise self.fail(node, "ceil_mode=1 adds partial windows here; only floor mode is supported")
        out = (spatial + 2 * pad - kernel) // stride + 1
        if np.any(out < 1):
            raise self.malformed(node, f"kernel {kernel.tolist()} is larger than the input {spatial.tolist()}")
        out_shape = (shape[0], int(out[0]), int(out[1]))
        self.layers.append(Layer("avgpool", node.name or f"<{node.op_type}>", shape, out_shape,
                                 {"kernel": kernel, "stride": stride, "padding": pad}))
        return out_shape

    def _flatten(self, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        out = (math.prod(shape),)
        if len(shape) > 1:
            self.layers.append(Layer("flatten", name, shape, out))
        return out

    def _reshape(self, node: Any, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        target = np.asarray(self.const(node, 1, "shape"), dtype=np.int64).reshape(-1).tolist()
        allowzero = int(self.attrs(node).get("allowzero", 0))
        full_in = [None] + list(shape)  # None: the batch size, unknown here
        size = math.prod(shape)
        dims: list[int | None] = []
        for i, d in enumerate(target):
            if d == 0 and not allowzero:
                dims.append(full_in[i] if i < len(full_in) else -2)
            else:
                dims.append(d)
        if not dims or -2 in dims:
            raise self.malformed(node, f"shape {target} does not fit the input (batch, {', '.join(map(str, shape))})")
        # The first dimension is the batch (-1, 0 = copy, or the export-time batch size).
        per_sample = dims[1:]
        if any(d is None for d in per_sample):
            raise self.fail(node, f"shape {target} moves the batch axis; only per-sample reshapes are supported")
        if per_sample.count(-1) > 1:
            raise self.malformed(node, f"shape {target} has more than one -1")
        if -1 in per_sample:
            known = math.prod(d for d in per_sample if d != -1)
            if known <= 0 or size % known:
                raise self.fail(node, f"shape {target} changes the batch axis; only per-sample reshapes are supported")
            per_sample = [size // known if d == -1 else d for d in per_sample]
        if math.prod(per_sample) != size or any(d < 1 for d in per_sample):
            raise self.fail(node, f"shape {target} changes the batch axis (per-sample {list(shape)} has {size} "
                                  f"values); only per-sample reshapes are supported")
        out = tuple(int(d) for d in per_sample)
        if len(out) == 1:
            return self._flatten(name, shape)
        if out != shape:
            self.layers.append(Layer("reshape", name, shape, out))
        return out
