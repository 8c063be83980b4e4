"""nirtorch 2.6's ``nirtorch.torch_to_nir``: the torch.fx tracer that exporters build on.

nirtorch maps ``torch.nn.Linear`` itself and leaves every other module to a map the user
supplies. The case here is a plain-torch network with a small forward-Euler LIF module and the
map a user would write for it; the module's own step loop is the framework's simulation.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .spec import Case, Exporter, Inputs, Tolerance

NIRTORCH = Exporter("nirtorch", "nirtorch", "nirtorch.torch_to_nir(module, module_map)", ("nirtorch", "torch"),
                    "none (the user's map decides)")
DT = 1e-3


def _lif_class():
    import torch

    class EulerLIF(torch.nn.Module):
        """v += dt/tau * (-v + x); spike when v > thr; reset to 0 (state kept between calls)."""

        def __init__(self, tau, threshold):
            super().__init__()
            self.register_buffer("tau", torch.as_tensor(tau, dtype=torch.float32))
            self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32))
            self.v = None

        def forward(self, x):
            v = torch.zeros_like(x) if self.v is None else self.v
            v = v + DT / self.tau * (-v + x)
            z = (v > self.threshold).to(x.dtype)
            self.v = v * (1 - z)
            return z

    return EulerLIF


_CLASS: dict[str, Any] = {}


def euler_lif():
    if "lif" not in _CLASS:
        _CLASS["lif"] = _lif_class()
    return _CLASS["lif"]


def module_map():
    import nir

    def lif(m):
        tau = m.tau.numpy()
        return nir.LIF(tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau), v_threshold=m.threshold.numpy(),
                       v_reset=np.zeros_like(tau))

    return {euler_lif(): lif}


def dense_lif():
    import torch

    torch.manual_seed(61)
    lif = euler_lif()
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), lif(torch.linspace(0.005, 0.02, 5), torch.full((5,), 0.5)),
                              torch.nn.Linear(5, 2), lif(torch.tensor([0.01, 0.02]), torch.tensor([0.3, 0.4])))
    with torch.no_grad():
        net[0].weight.uniform_(0.0, 3.0)
        net[2].weight.uniform_(0.0, 2.0)
    return net, None


def conv_lif():
    import torch

    torch.manual_seed(62)
    lif = euler_lif()
    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), lif(torch.full((3, 4, 4), 0.01), torch.ones(3, 4, 4))), None


def export(net, sample):
    import nirtorch

    return nirtorch.torch_to_nir(net, module_map())


def runner(nodes: dict[str, str]):
    def run(net: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        lif = euler_lif()
        rec: dict[str, list] = {}
        for m in net:
            if isinstance(m, lif):
                m.v = None
        with torch.no_grad():
            for t in range(x.shape[1]):
                h = torch.as_tensor(x[:, t], dtype=torch.float32)
                for index, m in enumerate(net):
                    h = m(h)
                    node = nodes.get(str(index))
                    if node is not None:
                        rec.setdefault(f"spikes.{node}", []).append(h.numpy().copy())
                        rec.setdefault(f"v.{node}", []).append(m.v.numpy().copy())
        return {k: np.stack(v, 1) for k, v in rec.items()}

    return run


def cases() -> list[Case]:
    return [
        Case(NIRTORCH, "dense_lif", ("dense",),
             "Linear(3,5) -> EulerLIF(5) -> Linear(5,2) -> EulerLIF(2), a user map for the LIF module",
             make=dense_lif, export=export, run=runner({"1": "_1", "3": "_3"}),
             inputs=Inputs((3,), steps=60, p=0.4, seed=63),
             semantics=dict(dt=DT, integrator="euler", reset="zero", spike_amplitude=1.0),
             tolerance=Tolerance(v_rtol=1e-5, v_atol=1e-5, dtype="float32"),
             note="nodes are named after the fx graph ('input_1', '_0', ...)"),
        Case(NIRTORCH, "conv_default_map", ("conv",), "Conv2d(2,3,3) -> EulerLIF, no user mapping for Conv2d",
             make=conv_lif, export=export, upstream_failure=("export", "KeyError", "Conv2d"),
             note="nirtorch's default map holds torch.nn.Linear only (NIRTorch issue #25)"),
        Case(NIRTORCH, "neurons", ("cubalif", "if", "li", "scalar"), "",
             not_expressible="nirtorch maps torch.nn.Linear only; every neuron node, and the shape of its "
                             "parameters, comes from the user's map"),
        Case(NIRTORCH, "recurrent", ("recurrent",), "",
             not_expressible="torch.fx traces one step: a state fed back between calls is not a graph edge"),
        Case(NIRTORCH, "delay", ("delay",), "", not_expressible="no delay module is mapped"),
    ]
