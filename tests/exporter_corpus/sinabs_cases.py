"""sinabs 2.0.3's ``sinabs.to_nir``. One step is one time unit (dt = 1); sinabs resets by
subtraction. NOTE: never import ``sinabs.backend.dynapcnn``: the PyPI 'samna' stub it needs tries
to pip-install the real samna from another index on import.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .spec import Case, Exporter, Inputs, Tolerance

SINABS = Exporter("sinabs", "sinabs", "sinabs.to_nir(module, sample)", ("sinabs", "sinabs.layers"), "1 (one step)")
STEP_SUBTRACT = dict(dt=1.0, integrator="euler", reset="subtract", spike_amplitude=1.0)
STEP_EXACT = dict(dt=1.0, integrator="exact", reset="subtract", spike_amplitude=1.0)
F64 = Tolerance(v_rtol=1e-12, v_atol=1e-12, dtype="float64")


def _single_spike():
    from sinabs.activation import SingleSpike

    return SingleSpike


def dense_iaf(single_spike=True):
    import sinabs.layers as sl
    import torch

    torch.manual_seed(3)
    kw = dict(batch_size=1)
    if single_spike:
        kw["spike_fn"] = _single_spike()
    net = torch.nn.Sequential(torch.nn.Linear(3, 6, bias=False), sl.IAFSqueeze(**kw),
                              torch.nn.Linear(6, 2, bias=False), sl.IAFSqueeze(**kw))
    with torch.no_grad():
        net[0].weight.uniform_(-0.2, 0.8)
        net[2].weight.uniform_(-0.2, 0.8)
    return net, torch.zeros(4, 3)  # (batch*time, features) for the Squeeze layers


def plain_iaf():
    import sinabs.layers as sl
    import torch

    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), sl.IAF()), torch.zeros(2, 3)


def lif(per_neuron):
    import sinabs.layers as sl
    import torch

    torch.manual_seed(5)
    tau = torch.linspace(5.0, 12.0, 5) if per_neuron else 8.0
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), sl.LIFSqueeze(tau_mem=tau, batch_size=1, spike_fn=_single_spike()))
    return net, torch.zeros(4, 3)


def exp_leak():
    import sinabs.layers as sl
    import torch

    torch.manual_seed(6)
    readout = sl.ExpLeakSqueeze(tau_mem=torch.tensor([4.0, 8.0]), batch_size=1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6, bias=False), sl.IAFSqueeze(batch_size=1, spike_fn=_single_spike()),
                              torch.nn.Linear(6, 2, bias=False), readout)
    with torch.no_grad():
        net[0].weight.uniform_(-0.2, 0.8)
    return net, torch.zeros(4, 3)


def conv():
    import sinabs.layers as sl
    import torch

    torch.manual_seed(4)
    ss = _single_spike()
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=1, spike_fn=ss),
        sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3, bias=False),
        sl.IAFSqueeze(batch_size=1, spike_fn=ss))
    return net, torch.zeros(4, 2, 8, 8)


def recurrent():
    import sinabs.layers as sl
    import torch

    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), sl.IAFRecurrent(rec_connect=torch.nn.Linear(4, 4, bias=False))), \
        torch.zeros(1, 5, 3)


def export(net, sample):
    import sinabs

    return sinabs.to_nir(net, sample)


def runner(nodes: dict[str, str]):
    """Run a float64 copy sample by sample ((T, ...) per sample; the Squeeze layers use
    batch_size=1); record the spikes and v_mem of the given layers (index -> node name)."""

    def run(net: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        import sinabs
        import torch

        net = copy.deepcopy(net).double()
        layers = {int(i): node for i, node in nodes.items()}
        out: dict[str, list] = {}
        for b in range(x.shape[0]):
            sinabs.reset_states(net)
            for i in layers:
                net[i].record_states = True
            with torch.no_grad():
                h = torch.as_tensor(x[b], dtype=torch.float64)
                for i, m in enumerate(net):
                    h = m(h).to(torch.float64)  # sinabs' spikes are float32 whatever the layer dtype
                    if i in layers:
                        node = layers[i]
                        if getattr(m, "spike_fn", None) is not None:
                            out.setdefault(f"spikes.{node}", []).append(h.numpy().copy())
                        out.setdefault(f"v.{node}", []).append(m.recordings["v_mem"].reshape(h.shape).numpy().copy())
        return {k: np.stack(v, 0) for k, v in out.items()}

    return run


def _exp_leak_patch(net) -> dict[str, Any]:
    """ExpLeak's default (norm_input=False) adds the input in full: v = a*v + I. Exact integration
    of LI(r) gives v = a*v + (1-a)*r*I, so r = 1/(1-a), a = exp(-1/tau)."""
    tau = net[3].tau_mem.detach().numpy().astype(np.float64)
    return {"fields": {"3": {"r": [float(v) for v in 1.0 / (1.0 - np.exp(-1.0 / tau))]}}}


def cases() -> list[Case]:
    return [
        Case(SINABS, "dense_iaf", ("dense", "if"),
             "Linear(3,6) -> IAFSqueeze -> Linear(6,2) -> IAFSqueeze, SingleSpike",
             make=dense_iaf, export=export, run=runner({"1": "1", "3": "3"}),
             inputs=Inputs((3,), steps=60, p=0.5, seed=41),
             semantics=STEP_SUBTRACT, tolerance=F64),
        Case(SINABS, "dense_iaf_multispike", ("dense", "if"),
             "Linear(3,6) -> IAFSqueeze -> Linear(6,2) -> IAFSqueeze, sinabs' default MultiSpike",
             make=lambda: dense_iaf(single_spike=False), export=export, run=runner({"1": "1", "3": "3"}),
             inputs=Inputs((3,), steps=40, p=0.9, seed=42, scale=3.0), semantics=STEP_SUBTRACT, tolerance=F64,
             mismatch="MultiSpike (floor(v/thr) spikes per step) is not expressible in NIR; the file is the "
                      "same as with SingleSpike"),
        Case(SINABS, "if_plain", ("if",), "Linear(3,5) -> IAF fed (batch, features)",
             make=plain_iaf, export=export,
             upstream_failure=("export", "TypeError", "missing 1 required positional argument"),
             note="v_mem has no feature axis, so IF(r=torch.ones(*())) raises; use the Squeeze layers"),
        Case(SINABS, "dense_lif", ("dense",), "Linear(3,5) -> LIFSqueeze, per-neuron tau_mem",
             make=lambda: lif(per_neuron=True), export=export,
             upstream_failure=("export", "AssertionError", "same shape"),
             note="LIF(tau=(5,), v_threshold=0-d): nir asserts that the parameters have one shape"),
        Case(SINABS, "scalar_lif", ("scalar",), "Linear(3,5) -> LIFSqueeze(tau_mem=8.0)",
             make=lambda: lif(per_neuron=False), export=export,
             upstream_failure=("nir.write", "TypeError", "Scalar datasets don't support chunk/filter options")),
        Case(SINABS, "li_readout", ("li",),
             "Linear(3,6) -> IAFSqueeze -> Linear(6,2) -> ExpLeakSqueeze(tau_mem=[4, 8])",
             make=exp_leak, export=export, run=runner({"1": "1", "3": "3"}),
             inputs=Inputs((3,), steps=40, p=0.5, seed=43),
             semantics=STEP_EXACT, tolerance=Tolerance(v_rtol=1e-6, v_atol=1e-6, dtype="float64"),
             mismatch="ExpLeak's default norm_input=False (v = a*v + I) is not written: the file's LI(r=1) "
                      "is the normalised v = a*v + (1-a)*I",
             patch=_exp_leak_patch),
        Case(SINABS, "conv_iaf", ("conv",),
             "Conv2d(2,4,3) -> IAFSqueeze -> SumPool2d(2) -> Flatten -> Linear(64,3) -> IAFSqueeze",
             make=conv, export=export,
             upstream_failure=("nir.write", "TypeError", "One of data, shape or dtype must be specified"),
             note="Conv2d is written with input_shape=None, which nir.write cannot store"),
        Case(SINABS, "recurrent_iaf", ("recurrent",), "Linear(3,4) -> IAFRecurrent(rec_connect=Linear(4,4))",
             make=recurrent, export=export,
             upstream_failure=("export", "NotImplementedError", "not supported")),
        Case(SINABS, "cubalif", ("cubalif",), "",
             not_expressible="to_nir writes LIF for LIF layers and ignores tau_syn; no CubaLIF is written"),
        Case(SINABS, "delay", ("delay",), "", not_expressible="to_nir maps no delay"),
    ]
