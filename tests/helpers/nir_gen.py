"""Random NIR graphs, valid and invalid, for tests/compiler/test_properties.py and benchmarks/fuzz_long.py.

Both users draw from the same generators through a small ``Source`` interface: hypothesis
(``HypothesisSource``, shrinkable structure) in the tests, a seeded numpy generator
(``NumpySource``) in the long fuzz run. Array contents come from a numpy generator seeded by
one drawn integer, so a case is small to draw and reproducible from its seed.

A graph is a ``Spec``: NIR node types with numpy fields, edges, and the semantics it is meant
for (dt, integrator). ``Spec.to_nir`` builds an in-memory ``nir.NIRGraph`` with nir's own
constructors (valid specs) or without them (invalid specs, whose fields nir would refuse);
``Spec.write_h5`` writes the layout of ``nir.write`` with h5py, so broken graphs reach the file
reader too.

Valid graphs (``valid_spec``) respect what every target can express: reset to zero, spiking
layers only feed other layers (non-spiking readouts last), self-recurrence through a Linear
back-edge, NIR delays that are whole multiples of dt and fit every target, tau >= 2 dt.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

SPIKING_HIDDEN = ("LIF", "CubaLIF", "IF", "Threshold")
READOUTS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I", "Sum")  # Sum: an Output fed by an Affine
DTS = (1e-3, 5e-4, 2e-3)
MAX_DELAY_STEPS = 4


# ---------------------------------------------------------------- sources of randomness

class Source:
    """What a generator may ask for; subclasses map it onto hypothesis or numpy."""

    def integer(self, lo: int, hi: int) -> int:  # inclusive
        raise NotImplementedError

    def real(self, lo: float, hi: float) -> float:
        raise NotImplementedError

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.integer(0, len(options) - 1)]

    def flag(self, p: float = 0.5) -> bool:
        return self.real(0.0, 1.0) < p

    def seed(self) -> int:
        return self.integer(0, 2**32 - 1)


class NumpySource(Source):
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def real(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))


class HypothesisSource(Source):
    def __init__(self, draw: Callable):
        from hypothesis import strategies as st

        self._draw, self._st = draw, st

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(self._st.integers(lo, hi))

    def real(self, lo: float, hi: float) -> float:
        return self._draw(self._st.floats(lo, hi, allow_nan=False, allow_infinity=False))

    def choice(self, options: Sequence[Any]) -> Any:
        return self._draw(self._st.sampled_from(list(options)))

    def flag(self, p: float = 0.5) -> bool:
        return self._draw(self._st.integers(0, 999)) < int(p * 1000)


# ---------------------------------------------------------------- graph description

@dataclass
class Spec:
    nodes: dict[str, dict[str, Any]]  # name -> {"type": NIR type, field: value, ...}
    edges: list[tuple[str, str]]
    dt: float = 1e-3
    integrator: str = "euler"
    family: str = ""
    seed: int = 0
    notes: dict[str, Any] = field(default_factory=dict)  # what the generator chose (for reports)
    writable: bool = True  # False for graphs that cannot be written to HDF5 (absurd sizes)

    def options(self, **extra: Any) -> dict[str, Any]:
        """The semantics contract this graph is generated for (Options / build keywords)."""
        return dict(dt=self.dt, integrator=self.integrator, reset="zero", spike_amplitude=1.0, **extra)

    def describe(self) -> str:
        parts = []
        for name, f in self.nodes.items():
            shape = ""
            for key in ("weight", "tau", "tau_mem", "r", "threshold", "delay", "shape"):
                if key in f and hasattr(f[key], "shape"):
                    shape = list(np.shape(f[key])) if key != "shape" else list(np.asarray(f[key]).tolist())
                    break
            parts.append(f"{name}:{f['type']}{shape}")
        return f"[{self.family} seed={self.seed} dt={self.dt} {self.integrator}] " + " ".join(parts) + \
            " edges=" + ",".join(f"{a}->{b}" for a, b in self.edges)

    # -- in memory
    def to_nir(self, construct: bool = True):
        """A nir.NIRGraph; ``construct=False`` skips nir's constructors (for fields nir would refuse)."""
        import nir

        nodes = {name: (_construct(f) if construct else _bypass(f)) for name, f in self.nodes.items()}
        if construct:
            return nir.NIRGraph(nodes=nodes, edges=list(self.edges), type_check=False)
        graph = object.__new__(nir.NIRGraph)
        graph.__dict__.update(nodes=nodes, edges=list(self.edges), metadata={})
        return graph

    # -- as a file
    def write_h5(self, path: Path) -> Path:
        """The layout nir.write uses (group 'node', 'nodes', 'edges'), written by h5py without checks."""
        import h5py

        with h5py.File(path, "w") as handle:
            handle["version"] = "1.0.8"
            group = handle.create_group("node")
            group["type"] = "NIRGraph"
            nodes = group.create_group("nodes")
            for name, fields in self.nodes.items():
                child = nodes.create_group(name)
                for key, value in fields.items():
                    if key == "input_type":
                        continue
                    _write_value(child, key, value)
            group["edges"] = np.array(self.edges, dtype=h5py.string_dtype()).reshape(len(self.edges), 2)
        return path


def _write_value(group, key: str, value: Any) -> None:
    if isinstance(value, dict):
        sub = group.create_group(key)
        for k, v in value.items():
            _write_value(sub, k, v)
    elif value is None:
        return
    elif isinstance(value, bytes):  # opaque bytes (a vlen string cannot hold NUL)
        group[key] = np.void(value)
    elif isinstance(value, np.ndarray) and value.dtype.kind == "U":
        import h5py

        group[key] = value.astype(object).astype(h5py.string_dtype())
    else:
        group[key] = value


def _construct(f: dict[str, Any]):
    import nir

    kind = f["type"]
    args = {k: v for k, v in f.items() if k != "type"}
    if kind == "Input":
        return nir.Input(input_type={"input": np.asarray(args["shape"])})
    if kind == "Output":
        return nir.Output(output_type={"output": np.asarray(args["shape"])})
    if kind == "Flatten":
        return nir.Flatten(input_type={"input": np.asarray(args["input_type"])},
                           start_dim=args["start_dim"], end_dim=args["end_dim"])
    return getattr(nir, kind)(**args)


def _bypass(f: dict[str, Any]):
    """A nir node object carrying exactly these fields, without running nir's __post_init__."""
    import nir

    kind = f["type"]
    cls = getattr(nir, kind, None)
    if cls is None or not isinstance(cls, type):  # an unknown type name: a look-alike class
        cls = type(str(kind), (), {})
    node = object.__new__(cls)
    fields = {k: v for k, v in f.items() if k != "type"}
    if kind == "Input":
        fields = {"input_type": {"input": fields.get("shape")}}
    elif kind == "Output":
        fields = {"output_type": {"output": fields.get("shape")}}
    elif kind == "Flatten":
        fields["input_type"] = {"input": fields.get("input_type")}
    node.__dict__.update(fields)
    node.__dict__["metadata"] = {}
    return node


# ---------------------------------------------------------------- parameters

def _per_neuron(rng: np.random.Generator, n: int, lo: float, hi: float, homogeneous: bool) -> np.ndarray:
    if homogeneous:
        return np.full(n, rng.uniform(lo, hi))
    return rng.uniform(lo, hi, n)


def neuron_fields(kind: str, n: int, dt: float, rng: np.random.Generator, homogeneous: bool,
                  shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Fields of one neuron node; tau >= 2 dt (forward Euler stays stable), v_reset < v_threshold."""
    p = lambda lo, hi: _per_neuron(rng, n, lo, hi, homogeneous)  # noqa: E731
    tau = lambda: dt * p(2.0, 40.0)  # noqa: E731
    threshold = p(0.2, 2.0) if rng.random() < 0.9 else 10 ** p(-2.0, 2.0)
    reset = np.zeros(n) if rng.random() < 0.6 else -threshold * p(0.0, 0.5)
    leak = np.zeros(n) if rng.random() < 0.6 else p(-0.2, 0.2)
    if rng.random() < 0.05:  # a leak above the threshold: the neuron fires on its own
        leak = threshold * p(1.1, 2.0)
    r = np.ones(n) if rng.random() < 0.5 else p(0.5, 2.0)
    w_in = np.ones(n) if rng.random() < 0.5 else p(0.5, 2.0)
    if kind == "LIF":
        f = dict(tau=tau(), r=r, v_leak=leak, v_threshold=threshold, v_reset=reset)
    elif kind == "CubaLIF":
        f = dict(tau_syn=tau(), tau_mem=tau(), r=r, v_leak=leak, v_threshold=threshold, v_reset=reset, w_in=w_in)
    elif kind == "IF":
        f = dict(r=r, v_threshold=threshold, v_reset=reset)
    elif kind == "LI":
        f = dict(tau=tau(), r=r, v_leak=leak)
    elif kind == "CubaLI":
        f = dict(tau_syn=tau(), tau_mem=tau(), r=r, v_leak=leak, w_in=w_in)
    elif kind == "I":
        f = dict(r=r)
    elif kind == "Threshold":
        f = dict(threshold=threshold)
    else:
        raise ValueError(kind)
    if shape is not None:
        f = {k: v.reshape(shape) for k, v in f.items()}
    return {"type": kind, **f}


def weights(rng: np.random.Generator, n_out: int, n_in: int, style: str, scale: float,
            density: float) -> np.ndarray:
    w = rng.normal(0.0, scale, (n_out, n_in))
    if style == "exc":
        w = np.abs(w)
    elif style == "inh":
        w = -np.abs(w)
    if density < 1.0:
        w = w * (rng.random((n_out, n_in)) < density)
    return w


# ---------------------------------------------------------------- valid graphs

def valid_spec(src: Source, *, homogeneous: bool | None = None, wide: bool = False,
               family: str | None = None, max_neurons: int = 16) -> Spec:
    """A random valid graph. ``wide``: one layer with a fan-in of thousands (forces core splits)."""
    seed = src.seed()
    rng = np.random.default_rng(seed)
    family = family or src.choice(("mlp", "mlp", "mlp", "conv"))
    homogeneous = src.flag(0.3) if homogeneous is None else homogeneous
    dt = src.choice(DTS)
    integrator = "euler" if src.flag(0.8) else "exact"
    style = src.choice(("mixed", "mixed", "exc", "inh"))
    scale = src.real(0.05, 3.0) if src.flag(0.85) else 10 ** src.real(-3.0, 2.0)
    density = src.choice((1.0, 1.0, 0.5, 0.15))
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str]] = []
    notes: dict[str, Any] = {"homogeneous": homogeneous, "style": style, "scale": scale, "density": density}

    def add(name: str, fields: dict[str, Any], *sources: str) -> str:
        nodes[name] = fields
        edges.extend((s, name) for s in sources)
        return name

    def bias(n: int) -> np.ndarray:
        return np.zeros(n) if rng.random() < 0.5 else rng.uniform(-0.5, 0.5, n) * scale

    def delay_node(name: str, n: int, shape: tuple[int, ...] | None = None) -> dict[str, Any]:
        if src.flag(0.5):
            d = np.full(n, src.integer(1, MAX_DELAY_STEPS) * dt)
        else:
            d = rng.integers(0, MAX_DELAY_STEPS + 1, n) * dt
        return {"type": "Delay", "delay": d if shape is None else d.reshape(shape)}

    if family == "conv":
        channels = src.integer(1, 2)
        height, width = src.integer(3, 7), src.integer(3, 7)
        inp = add("input", {"type": "Input", "shape": np.array([channels, height, width])})
        out_channels = src.integer(1, 3) * (channels if src.flag(0.3) else 1)
        groups = channels if (channels > 1 and out_channels % channels == 0 and src.flag(0.5)) else 1
        k = src.integer(1, min(3, height, width))
        stride, padding = src.integer(1, 2), src.integer(0, 1)
        kernel = weights(rng, out_channels, (channels // groups) * k * k, style, scale, density)
        kernel = kernel.reshape(out_channels, channels // groups, k, k)
        oh, ow = (height + 2 * padding - k) // stride + 1, (width + 2 * padding - k) // stride + 1
        add("conv", {"type": "Conv2d", "input_shape": (height, width), "weight": kernel,
                     "stride": (stride, stride), "padding": (padding, padding), "dilation": (1, 1),
                     "groups": groups, "bias": bias(out_channels)}, inp)
        kind = src.choice(("LIF", "CubaLIF", "IF"))
        shape = (out_channels, oh, ow)
        syn = "conv"
        if oh >= 2 and ow >= 2 and src.flag(0.2):  # pooling inside the projection (conv -> pool -> neurons)
            syn = add("prepool", {"type": "AvgPool2d", "kernel_size": np.array([2, 2]), "stride": np.array([2, 2]),
                                  "padding": np.array([0, 0])}, "conv")
            shape = (out_channels, oh // 2, ow // 2)
            oh, ow = shape[1:]
        prev = add("hidden0", neuron_fields(kind, math.prod(shape), dt, rng, homogeneous, shape), syn)
        notes["conv"] = dict(channels=channels, hw=(height, width), out=out_channels, k=k, stride=stride,
                             padding=padding, groups=groups)
        if oh >= 2 and ow >= 2 and src.flag(0.6):
            pool = src.choice(("SumPool2d", "AvgPool2d"))
            prev = add("pool", {"type": pool, "kernel_size": np.array([2, 2]), "stride": np.array([2, 2]),
                                "padding": np.array([0, 0])}, prev)
            shape = (out_channels, oh // 2, ow // 2)
        prev = add("flat", {"type": "Flatten", "input_type": np.array(shape), "start_dim": 0, "end_dim": -1}, prev)
        n_prev = math.prod(shape)
        readout = src.choice(READOUTS)
        n_out = src.integer(1, 6)
        _readout(add, src, rng, readout, n_out, n_prev, prev, dt, homogeneous, style, scale, density, bias,
                 nodes, edges)
        return Spec(nodes, edges, dt, integrator, "conv", seed, notes)

    n_in = src.integer(1, max_neurons) if not wide else src.integer(1000, 4000)
    inp = add("input", {"type": "Input", "shape": np.array([n_in])})
    layers = src.integer(0, 2)
    prev, n_prev = inp, n_in
    hidden: list[tuple[str, int]] = []
    for i in range(layers):
        big = (not wide) and src.flag(0.08)
        n = src.integer(1, max_neurons) if not big else src.integer(257, 400)  # > 256: several SpiNNaker cores
        if wide and i == 0:
            n = src.integer(40, 120)
        kind = src.choice(SPIKING_HIDDEN)
        if src.flag(0.25):  # a Delay before the synapses
            prev = add(f"delay{i}", delay_node(f"delay{i}", n_prev), prev)
        w = weights(rng, n, n_prev, style, scale, density)
        if src.flag(0.5):
            syn = add(f"fc{i}", {"type": "Affine", "weight": w, "bias": bias(n)}, prev)
        else:
            syn = add(f"fc{i}", {"type": "Linear", "weight": w}, prev)
        if src.flag(0.15):  # a Scale after the synapses
            syn = add(f"scale{i}", {"type": "Scale", "scale": rng.uniform(0.5, 1.5, n)}, syn)
        if src.flag(0.1):  # a Delay after the synapses (per target neuron)
            syn = add(f"postdelay{i}", delay_node(f"postdelay{i}", n), syn)
        name = add(f"hidden{i}", neuron_fields(kind, n, dt, rng, homogeneous), syn)
        if i == 0 and src.flag(0.1):  # a second Input into the first layer
            n2 = src.integer(1, max_neurons)
            add("input2", {"type": "Input", "shape": np.array([n2])})
            add("fc_in2", {"type": "Linear", "weight": weights(rng, n, n2, style, scale, density)}, "input2")
            edges.append(("fc_in2", name))
            notes["two_inputs"] = True
        if kind != "Threshold" and src.flag(0.3):  # recurrence: a Linear back-edge onto itself
            rec_src = name
            if src.flag(0.3):
                rec_src = add(f"recdelay{i}", delay_node(f"recdelay{i}", n), name)
            add(f"rec{i}", {"type": "Linear", "weight": weights(rng, n, n, "mixed", scale * 0.5, density)},
                rec_src)
            edges.append((f"rec{i}", name))
            notes.setdefault("recurrent", []).append(name)
        hidden.append((name, n))
        prev, n_prev = name, n
    readout = src.choice(READOUTS)
    n_out = src.integer(1, max_neurons)
    last = _readout(add, src, rng, readout, n_out, n_prev, prev, dt, homogeneous, style, scale, density, bias,
                    nodes, edges)
    # A skip connection from the input into the last layer (a longer and a shorter path: delays on Loihi).
    if hidden and readout != "Sum" and src.flag(0.2):
        w = weights(rng, n_out, n_in, style, scale, density)
        add("skip", {"type": "Linear", "weight": w}, inp)
        edges.append(("skip", last))
        notes["skip"] = True
    if hidden and src.flag(0.1):  # a second readout from the last hidden layer
        n2 = src.integer(1, max_neurons)
        add("fc_out2", {"type": "Linear", "weight": weights(rng, n2, n_prev, style, scale, density)}, prev)
        kind2 = src.choice(("LI", "LIF", "CubaLI"))
        add("readout2", neuron_fields(kind2, n2, dt, rng, homogeneous), "fc_out2")
        add("output2", {"type": "Output", "shape": np.array([n2])}, "readout2")
        notes["two_outputs"] = True
    notes["readout"] = readout
    return Spec(nodes, edges, dt, integrator, "mlp" if not wide else "wide", seed, notes)


def _readout(add, src, rng, readout, n_out, n_prev, prev, dt, homogeneous, style, scale, density, bias,
             nodes, edges) -> str:
    w = weights(rng, n_out, n_prev, style, scale, density)
    if readout == "Sum":
        fc = add("fc_out", {"type": "Affine", "weight": w, "bias": bias(n_out)}, prev)
        add("output", {"type": "Output", "shape": np.array([n_out])}, fc)
        return "output"
    fc = add("fc_out", {"type": "Affine", "weight": w, "bias": bias(n_out)} if src.flag(0.5)
             else {"type": "Linear", "weight": w}, prev)
    name = add("readout", neuron_fields(readout, n_out, dt, rng, homogeneous), fc)
    add("output", {"type": "Output", "shape": np.array([n_out])}, name)
    return name


def spike_inputs(spec: Spec, rng: np.random.Generator, batch: int = 2, steps: int = 30,
                 rate: float | None = None):
    """Binary spike inputs (batch, steps, *shape): one array, or a dict for several Input nodes."""
    rate = rng.uniform(0.05, 0.5) if rate is None else rate
    arrays = {}
    for name, f in spec.nodes.items():
        if f["type"] == "Input":
            shape = tuple(int(v) for v in np.asarray(f["shape"]).reshape(-1))
            arrays[name] = (rng.random((batch, steps) + shape) < rate).astype(np.float32)
    return arrays["input"] if len(arrays) == 1 else arrays


# ---------------------------------------------------------------- invalid graphs

@dataclass
class Invalid:
    spec: Spec
    kind: str  # which generator broke it
    detail: str
    in_memory_only: bool = False  # cannot be written to a file (absurd sizes)
    options: dict[str, Any] = field(default_factory=dict)  # options that make it invalid (else spec.options())
    construct: bool = False  # build the nir graph with nir's constructors
    targets: tuple[str, ...] = ("loihi2", "spinnaker", "emulator")  # where it must fail


INVALID_KINDS = ("nan", "dtype", "absurd_size", "stateless_cycle", "shape", "structure", "range", "target")


def invalid_case(src: Source, kind: str | None = None) -> Invalid:
    kind = kind or src.choice(INVALID_KINDS)
    base = valid_spec(src, max_neurons=8)
    rng = np.random.default_rng(base.seed + 1)
    return globals()[f"_break_{kind}"](src, rng, base)


def _numeric_fields(spec: Spec) -> list[tuple[str, str]]:
    out = []
    for name, f in spec.nodes.items():
        for key, value in f.items():
            if key in ("type", "shape", "input_type", "start_dim", "end_dim", "groups", "stride", "padding",
                       "dilation", "kernel_size", "input_shape"):
                continue
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
                out.append((name, key))
    return out


def _break_nan(src: Source, rng: np.random.Generator, spec: Spec) -> Invalid:
    name, key = src.choice(_numeric_fields(spec))
    value = np.array(spec.nodes[name][key], dtype=np.float64, copy=True)
    bad = src.choice((np.nan, np.inf, -np.inf))
    count = src.integer(1, value.size)
    value.flat[rng.choice(value.size, count, replace=False)] = bad
    spec.nodes[name][key] = value
    return Invalid(spec, "nan", f"{name}.{key} holds {count} x {bad}")


def _break_dtype(src: Source, rng: np.random.Generator, spec: Spec) -> Invalid:
    name, key = src.choice(_numeric_fields(spec))
    value = spec.nodes[name][key]
    which = src.choice(("string", "bytes", "complex", "object", "strings_array", "datetime", "dict", "none_req"))
    in_memory_only = which in ("complex", "object", "datetime")  # h5py stores some of these differently
    if which == "string":
        new: Any = "heavy"
    elif which == "bytes":
        new = b"\x00\xff"
    elif which == "complex":
        new = value.astype(np.complex128) + 1j
    elif which == "object":
        new = np.array([{"a": 1}] * value.size, dtype=object).reshape(value.shape)
    elif which == "strings_array":
        new = np.array(["x"] * value.size).reshape(value.shape)
    elif which == "datetime":
        new = np.zeros(value.shape, dtype="datetime64[s]")
    elif which == "dict":
        new = {"nested": np.ones(3)}
    else:  # a required field that is missing
        new = None
        required = {"weight", "tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "threshold", "delay",
                    "bias"}
        if key not in required or (key == "bias" and spec.nodes[name]["type"] == "Conv2d"):
            new = "heavy"
    if new is None:
        spec.nodes[name].pop(key)
    else:
        spec.nodes[name][key] = new
    return Invalid(spec, "dtype", f"{name}.{key} -> {which}", in_memory_only=in_memory_only)


def _break_absurd_size(src: Source, rng: np.random.Generator, spec: Spec) -> Invalid:
    """Declared sizes far beyond memory, as zero-stride views: a check must refuse them before allocating."""
    big_out = 10 ** src.integer(5, 7)
    big_in = 10 ** src.integer(5, 7)
    where = src.choice(("linear", "input", "neuron", "affine_bias", "conv_input"))
    nodes: dict[str, dict[str, Any]]
    if where == "linear":
        nodes = {
            "input": {"type": "Input", "shape": np.array([big_in])},
            "fc": {"type": "Linear", "weight": np.broadcast_to(np.float64(0.5), (big_out, big_in))},
            "lif": {"type": "LIF", **{k: np.broadcast_to(np.float64(v), (big_out,)) for k, v in
                                      dict(tau=0.01, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()}},
            "output": {"type": "Output", "shape": np.array([big_out])},
        }
        edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    elif where == "input":
        nodes = {
            "input": {"type": "Input", "shape": np.array([big_in, big_out])},
            "flat": {"type": "Flatten", "input_type": np.array([big_in, big_out]), "start_dim": 0, "end_dim": -1},
            "output": {"type": "Output", "shape": np.array([big_in * big_out])},
        }
        edges = [("input", "flat"), ("flat", "output")]
    elif where == "neuron":
        n = big_in * big_out
        nodes = {
            "input": {"type": "Input", "shape": np.array([3])},
            "fc": {"type": "Linear", "weight": np.ones((3, 3))},
            "lif": {"type": "LIF", **{k: np.broadcast_to(np.float64(v), (n,)) for k, v in
                                      dict(tau=0.01, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()}},
            "output": {"type": "Output", "shape": np.array([3])},
        }
        edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    elif where == "affine_bias":
        nodes = {
            "input": {"type": "Input", "shape": np.array([big_in])},
            "fc": {"type": "Affine", "weight": np.broadcast_to(np.float64(0.1), (big_out, big_in)),
                   "bias": np.broadcast_to(np.float64(0.0), (big_out,))},
            "output": {"type": "Output", "shape": np.array([big_out])},
        }
        edges = [("input", "fc"), ("fc", "output")]
    else:
        side = int(math.isqrt(big_in * big_out)) + 1
        nodes = {
            "input": {"type": "Input", "shape": np.array([1, side, side])},
            "conv": {"type": "Conv2d", "input_shape": (side, side), "weight": np.ones((1, 1, 3, 3)),
                     "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1, "bias": np.zeros(1)},
            "output": {"type": "Output", "shape": np.array([1, side - 2, side - 2])},
        }
        edges = [("input", "conv"), ("conv", "output")]
    spec.nodes, spec.edges = nodes, edges
    spec.writable = False
    return Invalid(spec, "absurd_size", f"{where}: {big_out} x {big_in}", in_memory_only=True)


def _break_stateless_cycle(src: Source, rng: np.random.Generator, spec: Spec) -> Invalid:
    """A loop of operator nodes (Linear, Scale, Delay) with no neuron in it, hung on the first layer."""
    first_syn = next(b for a, b in spec.edges if a == "input")
    n = _out_size(spec, first_syn)
    length = src.integer(1, 3)
    names = [f"loop{i}" for i in range(length)]
    for i, name in enumerate(names):
        kind = src.choice(("Linear", "Scale", "Delay", "Affine"))
        if kind == "Linear":
            spec.nodes[name] = {"type": "Linear", "weight": rng.normal(0, 0.5, (n, n))}
        elif kind == "Affine":
            spec.nodes[name] = {"type": "Affine", "weight": rng.normal(0, 0.5, (n, n)), "bias": np.zeros(n)}
        elif kind == "Scale":
            spec.nodes[name] = {"type": "Scale", "scale": rng.uniform(0.5, 1.5, n)}
        else:
            spec.nodes[name] = {"type": "Delay", "delay": np.full(n, spec.dt)}
    ring = names + [first_syn]
    for a, b in zip(ring, ring[1:]):
        spec.edges.append((a, b))
    spec.edges.append((first_syn, names[0]))
    return Invalid(spec, "stateless_cycle", f"{first_syn} -> {' -> '.join(names)} -> {first_syn}")


def _out_size(spec: Spec, name: str) -> int:
    f = spec.nodes[name]
    if f["type"] in ("Linear", "Affine"):
        return int(np.shape(f["weight"])[0])
    if f["type"] == "Conv2d":
        return 0
    for a, b in spec.edges:
        if b == name:
            return _out_size(spec, a) if a != "input" else int(np.prod(spec.nodes["input"]["shape"]))
    return 1


def _break_shape(src: Source, rng: np.random.Generator, spec: Spec) -> Invalid:
    dense = [n for n, f in spec.nodes.items() if f["type"] in ("Linear", "Affine")]
    neurons = [n for n, f in spec.nodes.items() if f["type"] in ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I")]
    which = src.choice(("weight_in", "neuron_param", "bias", "weight_ndim", "empty_weight", "delay_size"))
    if which in ("weight_in", "weight_ndim", "empty_weight", "bias") and dense:
        name = src.choice(dense)
        w = spec.nodes[name]["weight"]
        if which == "weight_in":
            spec.nodes[name]["weight"] = rng.normal(0, 1, (w.shape[0], w.shape[1] + src.integer(1, 5)))
        elif which == "weight_ndim":
            spec.nodes[name]["weight"] = w.reshape(-1) if src.flag() else w[None]
        elif which == "empty_weight":
            spec.nodes[name]["weight"] = np.zeros((w.shape[0], 0))
        else:
            if spec.nodes[name]["type"] != "Affine":
                spec.nodes[name]["type"] = "Affine"
            spec.nodes[name]["bias"] = np.zeros(w.shape[0] + src.integer(1, 3))
        return Invalid(spec, "shape", f"{name}: {which}")
    if which == "delay_size":
        name = next(b for a, b in spec.edges if a == "input")
        n = int(np.prod(spec.nodes["input"]["shape"]))
        spec.nodes["baddelay"] = {"type": "Delay", "delay": np.full(n + src.integer(1, 4), spec.dt)}
        spec.edges = [e for e in spec.edges if e != ("input", name)] + [("input", "baddelay"), ("baddelay", name)]
        return Invalid(spec, "shape", f"delay with the wrong size before {name}")
    name = src.choice(neurons) if neurons else None
    if name is None:
        spec.nodes["input"]["shape"] = np.asarray(spec.nodes["input"]["shape"]) + 1
        return Invalid(spec, "shape", "input shape off by one")
    key = src.choice([k for k in spec.nodes[name] if k != "type"])
    value = np.asarray(spec.nodes[name][key])
    spec.nodes[name][key] = np.resize(value.reshape(-1), value.size + src.integer(1, 4))
    return Invalid(spec, "shape", f"{name}.{key} has extra neurons")


def _break_structure(src: Source, rng: np.random.Generator, spec: Spec) -> Invalid:
    which = src.choice(("dangling", "into_input", "out_of_output", "no_output", "no_input", "isolated",
                        "unknown_type", "orphan_cycle"))
    if which == "dangling":
        spec.edges.append((src.choice(list(spec.nodes)), "ghost"))
    elif which == "into_input":
        spec.edges.append((src.choice([n for n in spec.nodes if n != "input"]), "input"))
    elif which == "out_of_output":
        spec.edges.append(("output", src.choice([n for n in spec.nodes if n not in ("output", "input")])))
    elif which in ("no_output", "no_input"):  # every node of that type goes (there may be two)
        kind = "Output" if which == "no_output" else "Input"
        gone = {n for n, f in spec.nodes.items() if f["type"] == kind}
        spec.nodes = {n: f for n, f in spec.nodes.items() if n not in gone}
        spec.edges = [e for e in spec.edges if not gone & set(e)]
    elif which == "isolated":
        spec.nodes["lonely"] = {"type": "LIF", "tau": np.full(2, 0.01), "r": np.ones(2), "v_leak": np.zeros(2),
                                "v_threshold": np.ones(2), "v_reset": np.zeros(2)}
    elif which == "unknown_type":
        name = src.choice([n for n in spec.nodes if n not in ("input", "output")])
        spec.nodes[name]["type"] = src.choice(("Bogus", "Conv3d", "LSTM"))
    else:  # two neurons that feed only each other: not reachable from an Input
        spec.nodes["orphan_a"] = {"type": "Linear", "weight": np.ones((2, 2))}
        spec.nodes["orphan_b"] = {"type": "Scale", "scale": np.ones(2)}
        spec.edges += [("orphan_a", "orphan_b"), ("orphan_b", "orphan_a")]
    return Invalid(spec, "structure", which)


def _break_range(src: Source, rng: np.random.Generator, spec: Spec) -> Invalid:
    """Values outside their domain: tau <= 0, negative delays, non-integer shapes, bad options."""
    which = src.choice(("tau", "delay", "shape", "dt", "integrator", "amplitude", "pool"))
    options: dict[str, Any] = {}
    taus = [(n, k) for n, f in spec.nodes.items() for k in ("tau", "tau_syn", "tau_mem") if k in f]
    if which == "tau" and taus:
        name, key = src.choice(taus)
        value = np.array(spec.nodes[name][key], dtype=np.float64, copy=True)
        value.flat[src.integer(0, value.size - 1)] = -src.real(0.0, 1.0) * spec.dt
        spec.nodes[name][key] = value
        detail = f"{name}.{key} <= 0"
    elif which == "delay" or (which == "tau" and not taus):
        name = next(b for a, b in spec.edges if a == "input")
        n = int(np.prod(spec.nodes["input"]["shape"]))
        spec.nodes["negdelay"] = {"type": "Delay", "delay": -np.full(n, spec.dt) * src.integer(1, 3)}
        spec.edges = [e for e in spec.edges if e != ("input", name)] + [("input", "negdelay"), ("negdelay", name)]
        detail = "negative delay"
    elif which == "shape":
        shape = np.asarray(spec.nodes["input"]["shape"], dtype=np.float64)
        shape[0] = src.choice((0.0, -1.0, shape[0] + 0.5))
        spec.nodes["input"]["shape"] = shape
        detail = f"input shape {shape.tolist()}"
    elif which == "pool":
        spec.nodes["input"]["shape"] = np.array([1, 2, 2])
        spec.nodes["pool"] = {"type": "SumPool2d", "kernel_size": np.array([3, 3]), "stride": np.array([0, 1]),
                              "padding": np.array([0, 0])}
        spec.nodes["output"] = {"type": "Output", "shape": np.array([1, 1, 1])}
        keep = {"input", "pool", "output"}
        spec.nodes = {k: v for k, v in spec.nodes.items() if k in keep}
        spec.edges = [("input", "pool"), ("pool", "output")]
        detail = "pool stride 0"
    else:
        bad = {"dt": src.choice((0.0, -1e-3, float("nan"), float("inf"))),
               "integrator": src.choice(("rk4", "", "EULER2")),
               "amplitude": src.choice((0.0, -1.0, float("nan")))}[which]
        key = {"dt": "dt", "integrator": "integrator", "amplitude": "spike_amplitude"}[which]
        options = {**spec.options(), key: bad}
        detail = f"option {key}={bad!r}"
    return Invalid(spec, "range", detail, options=options)


def _break_target(src: Source, rng: np.random.Generator, spec: Spec) -> Invalid:
    """Valid NIR that a chip cannot express: it must fail with a NeurodeployError naming why."""
    which = src.choice(("subtract", "nonspiking_feeds", "long_delay"))
    targets: tuple[str, ...] = ("loihi2", "spinnaker")
    options: dict[str, Any] = {}
    if which == "subtract":
        # needs a stateful spiking layer
        spec.nodes["input"]["shape"] = np.array([4])
        spec.nodes = {"input": spec.nodes["input"],
                      "fc": {"type": "Linear", "weight": rng.normal(0, 1, (3, 4))},
                      "lif": neuron_fields(src.choice(("LIF", "CubaLIF", "IF")), 3, spec.dt, rng, False),
                      "output": {"type": "Output", "shape": np.array([3])}}
        spec.edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
        options = {**spec.options(), "reset": "subtract"}
    elif which == "nonspiking_feeds":
        n = int(np.prod(spec.nodes["input"]["shape"]))
        spec.nodes = {"input": {"type": "Input", "shape": np.array([n])},
                      "fc": {"type": "Linear", "weight": rng.normal(0, 1, (3, n))},
                      "li": neuron_fields(src.choice(("LI", "CubaLI", "I")), 3, spec.dt, rng, False),
                      "fc2": {"type": "Linear", "weight": rng.normal(0, 1, (2, 3))},
                      "lif": neuron_fields("LIF", 2, spec.dt, rng, False),
                      "output": {"type": "Output", "shape": np.array([2])}}
        spec.edges = [("input", "fc"), ("fc", "li"), ("li", "fc2"), ("fc2", "lif"), ("lif", "output")]
    else:
        limit = src.choice((("loihi2", 62), ("spinnaker", 288)))
        steps = limit[1] + src.integer(1, 200)
        n = int(np.prod(spec.nodes["input"]["shape"]))
        spec.nodes = {"input": {"type": "Input", "shape": np.array([n])},
                      "delay": {"type": "Delay", "delay": np.full(n, steps * spec.dt)},
                      "fc": {"type": "Linear", "weight": rng.normal(0, 1, (3, n))},
                      "lif": neuron_fields("LIF", 3, spec.dt, rng, False),
                      "output": {"type": "Output", "shape": np.array([3])}}
        spec.edges = [("input", "delay"), ("delay", "fc"), ("fc", "lif"), ("lif", "output")]
        targets = (limit[0],) if limit[0] == "spinnaker" else ("loihi2",)
        which = f"delay of {steps} steps on {limit[0]}"
    return Invalid(spec, "target", which, options=options, construct=True, targets=targets)
