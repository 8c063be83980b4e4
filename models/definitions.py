"""norse module definitions of the zoo models.

Each model is a ``norse.torch.SequentialState`` stepped once per time step with input of
shape ``(batch, *input_shape)``.  Neuron parameters are fixed (not trained), so
:func:`build` followed by :func:`load` (weights from the shipped ``.nir`` file) gives back
exactly the trained network.
"""
from __future__ import annotations

import pathlib
from typing import Tuple, Union

import nir
import numpy as np
import torch

import norse.torch as snn
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.leaky_integrator_box import LIBoxParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_box import LIFBoxParameters

DT = 1e-3  # every trained zoo model integrates with norse's default dt

INPUT_SHAPES = {
    "digits_mlp": (64,),
    "digits_conv": (1, 8, 8),
    "temporal_rnn": (4,),
    "events_motion": (2, 64, 64),
}

DIGITS_HIDDEN = 128
CONV_CHANNELS = 8
RNN_HIDDEN = 64
# conv1, conv2 output channels. conv2 has stride 2: the LI readout then sums 512 LIF sources,
# few enough for loihi2's uncalibrated (worst-case) readout range at 8-bit weights
EVENTS_CHANNELS = (8, 8)
EVENTS_CLASSES = 6
EVENTS_INIT_GAIN = 10.0  # conv weights start at torch's init times this: sparse events reach v_th


def build(name: str) -> torch.nn.Module:
    """A fresh (randomly initialised, torch's global RNG) module of the named model."""
    if name == "digits_mlp":
        return snn.SequentialState(
            torch.nn.Linear(64, DIGITS_HIDDEN),
            snn.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.as_tensor(100.0),
                                            v_th=torch.as_tensor(1.0)), dt=DT),
            torch.nn.Linear(DIGITS_HIDDEN, 10),
            snn.LIBoxCell(LIBoxParameters(tau_mem_inv=torch.as_tensor(100.0)), dt=DT),
        )
    if name == "digits_conv":
        return snn.SequentialState(
            torch.nn.Conv2d(1, CONV_CHANNELS, 3, padding=1),
            snn.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.as_tensor(100.0),
                                            v_th=torch.as_tensor(1.0)), dt=DT),
            torch.nn.AvgPool2d(2, divisor_override=1),  # sum pooling -> nir.SumPool2d
            torch.nn.Flatten(),
            torch.nn.Linear(CONV_CHANNELS * 4 * 4, 10),
            snn.LIBoxCell(LIBoxParameters(tau_mem_inv=torch.as_tensor(100.0)), dt=DT),
        )
    if name == "events_motion":
        return _events_motion()
    if name == "temporal_rnn":
        return snn.SequentialState(
            snn.LIFRecurrentCell(
                4,
                RNN_HIDDEN,
                p=LIFParameters(tau_syn_inv=torch.as_tensor(200.0),
                                tau_mem_inv=torch.as_tensor(100.0),
                                v_th=torch.as_tensor(1.0)),
                autapses=False,
                dt=DT,
            ),
            torch.nn.Linear(RNN_HIDDEN, 4),
            snn.LICell(LIParameters(tau_syn_inv=torch.as_tensor(200.0),
                                    tau_mem_inv=torch.as_tensor(100.0)), dt=DT),
        )
    raise KeyError(f"no norse definition for model {name!r}")


def _lif_box() -> snn.LIFBoxCell:
    """LIF (LIFBoxCell) with norse's default tau_mem = 10 ms and v_th = 1."""
    return snn.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.as_tensor(100.0),
                                           v_th=torch.as_tensor(1.0)), dt=DT)


def _events_motion() -> snn.SequentialState:
    """2x64x64 events: conv 5x5/2 -> LIF (8x32x32) -> sum pool 2 -> conv 3x3/2 -> LIF (8x8x8)
    -> sum pool 2 -> dense -> LI readout (the node kinds of digits_conv)."""
    c1, c2 = EVENTS_CHANNELS
    side = INPUT_SHAPES["events_motion"][1] // 16  # two stride-2 convs, two 2x2 poolings
    conv1 = torch.nn.Conv2d(2, c1, 5, stride=2, padding=2)
    conv2 = torch.nn.Conv2d(c1, c2, 3, stride=2, padding=1)
    with torch.no_grad():  # torch's default init leaves both LIF layers silent on ~1 % events
        conv1.weight.mul_(EVENTS_INIT_GAIN)
        conv2.weight.mul_(EVENTS_INIT_GAIN)
    return snn.SequentialState(
        conv1,
        _lif_box(),
        torch.nn.AvgPool2d(2, divisor_override=1),  # sum pooling -> nir.SumPool2d
        conv2,
        _lif_box(),
        torch.nn.AvgPool2d(2, divisor_override=1),
        torch.nn.Flatten(),
        torch.nn.Linear(c2 * side * side, EVENTS_CLASSES),
        snn.LIBoxCell(LIBoxParameters(tau_mem_inv=torch.as_tensor(100.0)), dt=DT),
    )


def sample(name: str, batch: int = 1) -> torch.Tensor:
    """A zero input of one time step, for shape inference."""
    return torch.zeros((batch, *INPUT_SHAPES[name]))


def load(name: str, source: Union[str, pathlib.Path, nir.NIRGraph, None] = None) -> torch.nn.Module:
    """The trained norse module, its weights read back from the zoo's ``.nir`` file.

    Raises ``NeurodeployError`` if the file does not match the definition (node names,
    types, edges, or any neuron parameter).
    """
    from neurodeploy.convert.norse import load_weights

    if source is None:
        source = pathlib.Path(__file__).parent / "zoo" / f"{name}.nir"
    module = build(name)
    load_weights(module, source, sample(name), dt=DT)
    return module.eval()


def lif_paper_graph() -> nir.NIRGraph:
    """The NIR paper's single-LIF test (Affine w=1 -> LIF tau=2.5 ms, v_th=0.1), dt=1e-4.

    Built directly with nir (same parameters as the paper's ``lif_norse.nir``), with
    neurodeploy's semantics metadata added.
    """
    f32 = lambda v: np.array(v, dtype=np.float32)  # noqa: E731
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1], dtype=np.int64)}),
        "fc1": nir.Affine(weight=f32([[1.0]]), bias=f32([0.0])),
        "lif1": nir.LIF(tau=f32([2.5e-3]), r=f32([1.0]), v_leak=f32([0.0]),
                        v_threshold=f32([0.1]), v_reset=f32([0.0])),
        "output": nir.Output(output_type={"output": np.array([1], dtype=np.int64)}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "output")]
    metadata = {
        "neurodeploy.dt": 1e-4,
        "neurodeploy.integrator": "euler",
        "neurodeploy.reset": "zero",
        "neurodeploy.spike_amplitude": 1.0,
        "neurodeploy.exporter": "nir (built directly; parameters of the NIR paper's lif_norse.nir)",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)


def lif_paper_norse() -> Tuple[torch.nn.Module, float]:
    """The same network in norse (Linear(1,1,w=1,b=0) -> LIFBoxCell), and its dt."""
    dt = 1e-4
    fc = torch.nn.Linear(1, 1)
    with torch.no_grad():
        fc.weight.fill_(1.0)
        fc.bias.fill_(0.0)
    cell = snn.LIFBoxCell(
        LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / 2.5e-3), v_leak=torch.as_tensor(0.0),
                         v_th=torch.as_tensor(0.1), v_reset=torch.as_tensor(0.0)),
        dt=dt,
    )
    return snn.SequentialState(fc, cell), dt
