"""snnTorch 1.0.0's ``snntorch.export_nir.export_to_nir``.

dt = 1e-4 is hard-coded: tau = dt/(1-beta), r = tau/dt, v_reset = 0 (the reset mechanism is not
written). Under forward Euler at dt = 1e-4 this is snnTorch's ``mem = beta*mem + I`` exactly; the
only snnTorch setting that matches a reset mode is ``reset_mechanism="zero", reset_delay=False``.
``export_to_nir`` ends with nir's type inference, which fails on scalar beta and batched samples.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .spec import Case, Exporter, Inputs, Tolerance

SNNTORCH = Exporter("snntorch", "snntorch", "snntorch.export_nir.export_to_nir(module, sample)",
                    ("snntorch", "snntorch.export_nir"), "1e-4 s (hard-coded)")
DT = 1e-4
EULER_ZERO = dict(dt=DT, integrator="euler", reset="zero", spike_amplitude=1.0)
# tau and r are computed in float32 by the exporter: (dt/tau)*r is 1 only to float32 precision.
F64 = Tolerance(v_rtol=1e-5, v_atol=1e-5, dtype="float64")
F32 = Tolerance(v_rtol=1e-5, v_atol=1e-5, dtype="float32")
ZERO_NOW = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)


def _lin(n_in, n_out, gain=3.0, bias=0.1):
    import torch

    lin = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        lin.weight.mul_(gain)
        lin.bias.fill_(bias)
    return lin


def dense_leaky(**reset):
    import snntorch as snn
    import torch

    torch.manual_seed(1)
    kw = reset or ZERO_NOW
    net = torch.nn.Sequential(
        _lin(3, 5), snn.Leaky(beta=torch.linspace(0.7, 0.95, 5), threshold=torch.ones(5), **kw),
        _lin(5, 2, gain=1.5, bias=0.0), snn.Leaky(beta=torch.tensor([0.8, 0.9]), threshold=torch.full((2,), 0.5), **kw))
    return net, torch.zeros(3)


def default_reset():
    import snntorch as snn
    import torch

    torch.manual_seed(2)
    net = torch.nn.Sequential(_lin(3, 5, gain=1.0, bias=0.0),
                              snn.Leaky(beta=torch.linspace(0.7, 0.95, 5), threshold=torch.ones(5), init_hidden=True))
    with torch.no_grad():
        net[0].weight.uniform_(0.0, 0.6)
    return net, torch.zeros(3)


def scalar_leaky():
    import snntorch as snn
    import torch

    torch.manual_seed(1)
    net = torch.nn.Sequential(_lin(3, 5), snn.Leaky(beta=0.9, init_hidden=True),
                              _lin(5, 2), snn.Leaky(beta=0.8, init_hidden=True, output=True))
    return net, torch.zeros(3)


def synaptic():
    import snntorch as snn
    import torch

    torch.manual_seed(3)
    neuron = snn.Synaptic(alpha=torch.linspace(0.4, 0.8, 5), beta=torch.linspace(0.7, 0.95, 5),
                          threshold=torch.ones(5), **ZERO_NOW)
    net = torch.nn.Sequential(_lin(3, 5), neuron)
    return net, torch.zeros(3)


def rleaky():
    import snntorch as snn
    import torch

    torch.manual_seed(4)
    net = torch.nn.Sequential(_lin(3, 5), snn.RLeaky(beta=torch.linspace(0.7, 0.95, 5), threshold=torch.ones(5),
                                                     linear_features=5, **ZERO_NOW))
    return net, torch.zeros(3)


def rsynaptic():
    import snntorch as snn
    import torch

    torch.manual_seed(4)
    net = torch.nn.Sequential(_lin(3, 5), snn.RSynaptic(alpha=torch.full((5,), 0.5), beta=torch.linspace(0.7, 0.95, 5),
                                                        threshold=torch.ones(5), linear_features=5, **ZERO_NOW))
    return net, torch.zeros(3)


def conv_leaky():
    import snntorch as snn
    import torch

    torch.manual_seed(5)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight.uniform_(0.0, 0.5)
        conv.bias.fill_(0.05)
    beta = torch.linspace(0.7, 0.95, 3 * 6 * 6).reshape(3, 6, 6)
    net = torch.nn.Sequential(conv, snn.Leaky(beta=beta, threshold=torch.ones(3, 6, 6), **ZERO_NOW))
    return net, torch.zeros(2, 6, 6)  # an unbatched sample: a batched one fails type inference


def if_leaky():
    import snntorch as snn
    import torch

    torch.manual_seed(6)
    net = torch.nn.Sequential(_lin(3, 4, gain=1.0), snn.Leaky(beta=torch.ones(4), threshold=torch.ones(4), **ZERO_NOW))
    return net, torch.zeros(3)


def export(net, sample):
    from snntorch.export_nir import export_to_nir

    return export_to_nir(net, sample)


def runner(nodes: dict[str, str], dtype: str = "float64"):
    """Step the Sequential by hand (snnTorch's init_hidden layers keep their state); record the
    spikes and mem of the given layers (index -> node name in the file)."""

    def run(net: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        import snntorch as snn
        import torch

        tdtype = getattr(torch, dtype)
        net = copy.deepcopy(net).to(tdtype)
        for m in net.modules():
            if hasattr(m, "reset_mem"):
                m.reset_mem()
        rec: dict[str, list] = {}
        with torch.no_grad():
            for t in range(x.shape[1]):
                h = torch.as_tensor(x[:, t], dtype=tdtype)
                for index, m in enumerate(net):
                    h = m(h)
                    if isinstance(m, snn.SpikingNeuron):
                        h = (h[0] if isinstance(h, tuple) else h).to(tdtype)
                        node = nodes.get(str(index))
                        if node is not None:
                            rec.setdefault(f"spikes.{node}", []).append(h.numpy().copy())
                            rec.setdefault(f"v.{node}", []).append(m.mem.numpy().copy())
        return {k: np.stack(v, 1) for k, v in rec.items()}

    return run


def cases() -> list[Case]:
    in3 = Inputs((3,), steps=60, p=0.4, seed=31)
    return [
        Case(SNNTORCH, "dense_leaky", ("dense",),
             "Linear(3,5) -> Leaky(5) -> Linear(5,2) -> Leaky(2), per-neuron beta/threshold, "
             "reset zero, no reset delay",
             make=dense_leaky, export=export, run=runner({"1": "1", "3": "3"}), inputs=in3,
             semantics=EULER_ZERO, tolerance=F64),
        Case(SNNTORCH, "dense_leaky_default_reset", ("dense",),
             "Linear(3,5) -> Leaky(5), per-neuron beta, snnTorch's default reset (subtract, one step late)",
             make=default_reset, export=export, run=runner({"1": "1"}), inputs=Inputs((3,), steps=60, p=0.4, seed=32),
             semantics=EULER_ZERO, tolerance=F64, nominal=dict(EULER_ZERO, reset="subtract"),
             mismatch="the reset mechanism is not written (v_reset = 0); snnTorch subtracts the threshold "
                      "at the next step, which neither reset mode reproduces"),
        Case(SNNTORCH, "scalar_leaky", ("scalar",), "Linear(3,5) -> Leaky(beta=0.9) -> Linear(5,2) -> Leaky(beta=0.8)",
             make=scalar_leaky, export=export, upstream_failure=("export", "ValueError", "Type inference error"),
             note="nir infers neuron shapes from parameter shapes: a scalar beta gives LIF input_type []"),
        Case(SNNTORCH, "cubalif", ("cubalif",), "Linear(3,5) -> Synaptic(5), per-neuron alpha/beta/threshold",
             make=synaptic, export=export, run=runner({"1": "1"}), inputs=in3, semantics=EULER_ZERO, tolerance=F64),
        Case(SNNTORCH, "recurrent_rleaky", ("recurrent",), "Linear(3,5) -> RLeaky(5, all-to-all), per-neuron beta",
             make=rleaky, export=export, run=runner({"1": "1.lif"}, dtype="float32"), inputs=in3,
             semantics=EULER_ZERO, tolerance=F32,
             note="a subgraph (input, lif, w_rec, output); float32 on both sides: RLeaky cannot run in float64"),
        Case(SNNTORCH, "recurrent_rsynaptic", ("recurrent", "cubalif"), "Linear(3,5) -> RSynaptic(5, all-to-all)",
             make=rsynaptic, export=export,
             upstream_failure=("export", "ValueError", "Cannot find the input of an empty graph")),
        Case(SNNTORCH, "conv_leaky", ("conv",),
             "Conv2d(2,3,3,padding=1) -> Leaky, per-neuron (3,6,6) beta, unbatched sample",
             make=conv_leaky, export=export, run=runner({"1": "1"}), inputs=Inputs((2, 6, 6), steps=20, p=0.4, seed=33),
             semantics=EULER_ZERO, tolerance=F64, note="a batched sample fails in the exporter (IndexError)"),
        Case(SNNTORCH, "if_beta1", ("if",), "Linear(3,4) -> Leaky(beta=1) (snnTorch has no IF neuron)",
             make=if_leaky, export=export, run=runner({"1": "1"}), inputs=Inputs((3,), steps=40, p=0.4, seed=34),
             semantics=EULER_ZERO, tolerance=F64,
             load_error="contains infinite values",
             note="tau = dt/(1-beta) and r = tau/dt are written as inf"),
        Case(SNNTORCH, "li_readout", ("li",), "",
             not_expressible="every Leaky is exported as a spiking LIF (reset_mechanism='none' and output=True "
                             "are not written); there is no non-spiking readout"),
        Case(SNNTORCH, "delay", ("delay",), "", not_expressible="export_to_nir maps no delay"),
    ]
