"""rockpool 3.1.0's ``rockpool.nn.modules.torch.nir.to_nir``, on its torch modules.

rockpool steps with the module's dt (1e-3 s): LIFNeuronTorch is ``v = a*v + x`` and LIFTorch is
``i = b*(i + x); v = a*v + i`` (a = exp(-dt/tau_mem), b = exp(-dt/tau_syn)), both resetting by
subtraction. The export writes ``r = tau*a/dt`` and ``w_in = 1``, which reproduces neither under
forward Euler nor under exact integration; with ``r = 1/(1-a)`` and ``w_in = b/(1-b)`` exact
integration reproduces rockpool.

Importing rockpool imports ``samna`` to see whether it is usable; the PyPI 'samna' stub then runs
``pip install`` of the real samna from another index. :func:`import_rockpool` hides samna during
that import (rockpool then records samna as unavailable, which it is).
"""
from __future__ import annotations

import copy
import sys
from typing import Any

import numpy as np

from .spec import Case, Exporter, Inputs, Tolerance


def import_rockpool():
    hide = "samna" not in sys.modules
    if hide:
        sys.modules["samna"] = None  # makes `import samna` raise ImportError
    try:
        import rockpool.nn.combinators  # noqa: F401
        import rockpool.nn.modules  # noqa: F401
        import rockpool.nn.modules.torch.nir  # noqa: F401
    finally:
        if hide and sys.modules.get("samna", False) is None:
            del sys.modules["samna"]


ROCKPOOL = Exporter("rockpool", "rockpool", "rockpool.nn.modules.torch.nir.to_nir(module, sample)", (),
                    "the module's dt (1e-3 s by default)", importer=import_rockpool)
DT = 1e-3
NOMINAL = dict(dt=DT, integrator="euler", reset="subtract", spike_amplitude=1.0)
EXACT = dict(dt=DT, integrator="exact", reset="subtract", spike_amplitude=1.0)
F32 = Tolerance(v_rtol=1e-4, v_atol=1e-5, dtype="float64")


def _linear(shape, low, high, gen):
    import torch
    from rockpool.nn.modules import LinearTorch

    lin = LinearTorch(shape)
    with torch.no_grad():
        lin.weight.copy_(torch.rand(shape, generator=gen) * (high - low) + low)
    return lin


def dense_lif():
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFNeuronTorch

    import_rockpool()
    gen = torch.Generator().manual_seed(51)
    net = Sequential(_linear((3, 5), 0.0, 0.33, gen), LIFNeuronTorch(5, tau_mem=torch.linspace(0.01, 0.03, 5)),
                     _linear((5, 2), 0.0, 0.2, gen), LIFNeuronTorch(2, tau_mem=torch.tensor([0.02, 0.04])))
    return net, torch.zeros(1, 3)


def cuba_lif(has_rec=False):
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch

    import_rockpool()
    gen = torch.Generator().manual_seed(52)
    kw = {}
    if has_rec:
        kw = dict(has_rec=True, w_rec=torch.rand(4, 4, generator=gen) * 0.04 - 0.02)
    net = Sequential(_linear((3, 4), 0.0, 0.02, gen), LIFTorch(4, **kw))  # default taus: 20 ms
    return net, torch.zeros(1, 3)


def exp_syn():
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import ExpSynTorch

    import_rockpool()
    gen = torch.Generator().manual_seed(53)
    return Sequential(_linear((3, 2), 0.0, 1.0, gen), ExpSynTorch(2, tau=torch.tensor([0.01, 0.02]))), torch.zeros(1, 3)


def export(net, sample):
    from rockpool.nn.modules.torch.nir import to_nir

    return to_nir(net, sample)


def runner(nodes: tuple[str, ...]):
    """rockpool's own evolve (record=True) on a fresh state; v is vmem after the reset."""

    def run(net: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        net = copy.deepcopy(net)
        net.reset_state()
        with torch.no_grad():
            _, _, rec = net.evolve(torch.as_tensor(x, dtype=torch.float32), record=True)
        out = {}
        for node in nodes:
            out[f"spikes.{node}"] = rec[node]["spikes"].detach().numpy().copy()
            out[f"v.{node}"] = rec[node]["vmem"].detach().numpy().copy()
        return out

    return run


def _decay(tau) -> np.ndarray:
    return np.exp(-DT / np.asarray(tau.detach().numpy(), dtype=np.float64).ravel())


def _lif_patch(net) -> dict[str, Any]:
    fields = {}
    for node, index in (("1_LIFNeuronTorch", 1), ("3_LIFNeuronTorch", 3)):
        a = _decay(net[index].tau_mem)
        fields[node] = {"r": [float(v) for v in 1.0 / (1.0 - a)]}
    return {"fields": fields, "semantics": EXACT}


def _cuba_patch(net) -> dict[str, Any]:
    lif = net[1]
    a, b = _decay(lif.tau_mem), _decay(lif.tau_syn)
    a, b = np.broadcast_to(a, (4,)), np.broadcast_to(b, (4,))
    return {"fields": {"1_LIFTorch": {"r": [float(v) for v in 1.0 / (1.0 - a)],
                                      "w_in": [float(v) for v in b / (1.0 - b)]}},
            "semantics": EXACT}


_GAIN = "r = tau*exp(-dt/tau)/dt is written"


def cases() -> list[Case]:
    return [
        Case(ROCKPOOL, "dense_lif", ("dense",),
             "LinearTorch(3,5) -> LIFNeuronTorch(5) -> LinearTorch(5,2) -> LIFNeuronTorch(2), per-neuron tau_mem",
             make=dense_lif, export=export, run=runner(("1_LIFNeuronTorch", "3_LIFNeuronTorch")),
             inputs=Inputs((3,), steps=60, p=0.5, seed=54), semantics=NOMINAL, tolerance=F32,
             mismatch=f"{_GAIN}: rockpool adds the input in full (v = a*v + x); exact integration needs r = 1/(1-a)",
             patch=_lif_patch),
        Case(ROCKPOOL, "cubalif", ("cubalif", "scalar"), "LinearTorch(3,4) -> LIFTorch(4), default (scalar) taus",
             make=cuba_lif, export=export, run=runner(("1_LIFTorch",)),
             inputs=Inputs((3,), steps=60, p=0.5, seed=55), semantics=NOMINAL, tolerance=F32,
             mismatch=f"{_GAIN} and w_in = 1: rockpool's i = b*(i + x) needs w_in = b/(1-b) and r = 1/(1-a) "
                      "(exact integration)",
             patch=_cuba_patch, note="scalar taus are broadcast to per-neuron arrays"),
        Case(ROCKPOOL, "recurrent_lif", ("recurrent",), "LinearTorch(3,4) -> LIFTorch(4, has_rec=True)",
             make=lambda: cuba_lif(has_rec=True), export=export, run=runner(("1_LIFTorch",)),
             inputs=Inputs((3,), steps=60, p=0.5, seed=56), semantics=NOMINAL, tolerance=F32,
             mismatch="w_rec is dropped: the file has no recurrent edge (besides the gains of the cubalif case)",
             patch=_cuba_patch, patch_expect="mismatch",
             note="the cubalif patch fixes the gains, not the missing recurrence"),
        Case(ROCKPOOL, "li_readout", ("li",), "LinearTorch(3,2) -> ExpSynTorch(2, tau=[10, 20] ms)",
             make=exp_syn, export=export,
             upstream_failure=("nir.write", "RuntimeError", "Can't call numpy() on Tensor that requires grad"),
             note="LI(tau=module.tau) keeps the trainable Parameter, which nir.write cannot convert"),
        Case(ROCKPOOL, "conv", ("conv",), "",
             not_expressible="to_nir maps LinearTorch, LIFTorch, LIFNeuronTorch and ExpSynTorch only"),
        Case(ROCKPOOL, "if", ("if",), "", not_expressible="no IF module is mapped by to_nir"),
        Case(ROCKPOOL, "delay", ("delay",), "", not_expressible="to_nir maps no delay"),
    ]
