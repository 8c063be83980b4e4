"""The neurodeploy model zoo: small trained NIR graphs shipped with the package.

Light on purpose: importing this module imports only the standard library and numpy.
The norse definitions (:mod:`.definitions`), data (:mod:`.data`) and training recipes
(:mod:`.train`) are imported on demand.

Each model's classification is read from the float reference's recorded traces:
``readout(name) == (node, rule)`` names the neuron node whose trace decides and the rule;
:func:`predict` applies it to a ``simulate`` result (``{"v.<node>": (batch, T, n), ...}``).
Rules: ``v_sum`` (argmax of the time-summed membrane), ``v_max`` (argmax of the maximum over
time), ``v_last`` (argmax at the last step), ``spike_count`` (argmax of the summed spikes,
trace ``spikes.<node>``).
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

ZOO_DIR = pathlib.Path(__file__).resolve().parent / "zoo"

RULES = ("v_sum", "v_max", "v_last", "spike_count")


@dataclass(frozen=True)
class ZooModel:
    name: str
    description: str
    dt: float
    steps: int  # time steps of one test input
    input_shape: Tuple[int, ...]
    readout_node: Optional[str]  # None: no classification (lif_paper)
    rule: Optional[str]
    classes: int

    @property
    def path(self) -> pathlib.Path:
        return ZOO_DIR / f"{self.name}.nir"

    @property
    def readout(self) -> Optional[Tuple[str, str]]:
        if self.readout_node is None:
            return None
        return (self.readout_node, self.rule)

    @property
    def trace_key(self) -> Optional[str]:
        if self.readout_node is None:
            return None
        kind = "spikes" if self.rule == "spike_count" else "v"
        return f"{kind}.{self.readout_node}"


MODELS: Dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel(
            name="digits_mlp",
            description="sklearn digits, rate-coded 20 steps: Linear(64,128) -> LIF (LIFBoxCell) "
            "-> Linear(128,10) -> LI (LIBoxCell) readout",
            dt=1e-3, steps=20, input_shape=(64,), readout_node="li1", rule="v_sum", classes=10,
        ),
        ZooModel(
            name="digits_conv",
            description="sklearn digits, rate-coded 20 steps: Conv2d(1,8,3,p=1) -> LIF -> "
            "SumPool2d(2) -> Flatten -> Linear(128,10) -> LI readout",
            dt=1e-3, steps=20, input_shape=(1, 8, 8), readout_node="li1", rule="v_sum",
            classes=10,
        ),
        ZooModel(
            name="temporal_rnn",
            description="which of 4 channels burst first (all burst once, 40 steps, noise): "
            "recurrent CubaLIF (LIFRecurrentCell, 64) -> Linear(64,4) -> CubaLI (LICell) readout",
            dt=1e-3, steps=40, input_shape=(4,), readout_node="li1", rule="v_last", classes=4,
        ),
        ZooModel(
            name="events_motion",
            description="event camera 2x64x64 (ON/OFF), 24 steps: which way a shape moves (right, "
            "left, down, up, expand, contract): Conv2d(2,8,5,s=2,p=2) -> LIF -> SumPool2d(2) -> "
            "Conv2d(8,8,3,s=2,p=1) -> LIF -> SumPool2d(2) -> Flatten -> Linear(128,6) -> LI readout",
            dt=1e-3, steps=24, input_shape=(2, 64, 64), readout_node="li1", rule="v_sum",
            classes=6,
        ),
        ZooModel(
            name="lif_paper",
            description="NIR paper single-neuron test: Affine(1x1, w=1) -> LIF(tau=2.5 ms, "
            "v_th=0.1), dt=1e-4, 1000 steps; no classification",
            dt=1e-4, steps=1000, input_shape=(1,), readout_node=None, rule=None, classes=0,
        ),
    )
}


def names() -> List[str]:
    """Names of the shipped models."""
    return list(MODELS)


def get(name: str) -> ZooModel:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(MODELS)}") from None


def path(name: str) -> pathlib.Path:
    """Path of the shipped ``.nir`` file."""
    return get(name).path


def paths() -> Dict[str, pathlib.Path]:
    return {n: m.path for n, m in MODELS.items()}


def readout(name: str) -> Optional[Tuple[str, str]]:
    """``(node, rule)`` deciding the class, or None for models without classification."""
    return get(name).readout


def decode(rule: str, trace: np.ndarray) -> np.ndarray:
    """Class per sample from a ``(batch, T, n)`` trace under ``rule`` (int64, (batch,))."""
    trace = np.asarray(trace)
    if trace.ndim != 3:
        raise ValueError(f"expected a (batch, T, n) trace, got shape {trace.shape}")
    if rule == "v_sum" or rule == "spike_count":
        score = trace.astype(np.float64).sum(axis=1)
    elif rule == "v_max":
        score = trace.max(axis=1)
    elif rule == "v_last":
        score = trace[:, -1]
    else:
        raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(RULES)}")
    return np.argmax(score, axis=1).astype(np.int64)


def predict(name: str, traces: Mapping[str, np.ndarray]) -> np.ndarray:
    """Predicted classes from a ``simulate``/``run_norse`` result of model ``name``."""
    m = get(name)
    if m.readout_node is None:
        raise ValueError(f"model {name!r} has no classification readout")
    return decode(m.rule, traces[m.trace_key])


def accuracy(name: str, traces: Mapping[str, np.ndarray], labels: np.ndarray) -> float:
    return float(np.mean(predict(name, traces) == np.asarray(labels)))


__all__ = ["ZOO_DIR", "RULES", "ZooModel", "MODELS", "names", "get", "path", "paths",
           "readout", "decode", "predict", "accuracy"]
