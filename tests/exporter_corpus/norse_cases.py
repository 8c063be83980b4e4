"""norse 1.1.0's own ``norse.torch.to_nir``, and neurodeploy's ``export_norse``, on norse models.

norse's exporter writes ``tau = dt / tau_inv`` with dt = 1e-3 (norse issue #411): every time
constant is 1000x too small, so the file's time unit is dt**2 and neurodeploy reproduces norse
at dt = 1e-6 (the nominal dt = 1e-3 does not). IF is written with r = 1, which is norse's
``v += x`` at dt = 1. LIFCell's input jump (``i += x``) is lost: the file has w_in = 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .spec import Case, Exporter, Inputs, Tolerance

NORSE = Exporter("norse", "norse", "norse.torch.to_nir(module, sample)", ("norse.torch",), "1e-3 s")
NEURODEPLOY = Exporter("neurodeploy", "neurodeploy", "neurodeploy.export_norse(module, sample)",
                       ("norse.torch", "neurodeploy.convert.norse"), "1e-3 s (in the file's metadata)")

DT = 1e-3  # norse's default time step
FILE_DT = DT * DT  # the time unit of norse 1.1.0's files (#411)
EULER_ZERO = dict(integrator="euler", reset="zero", spike_amplitude=1.0)
F32 = Tolerance(v_rtol=1e-5, v_atol=1e-5, dtype="float32")

# ------------------------------------------------------------------ models


def _t(values):
    import torch

    return torch.as_tensor(values, dtype=torch.float32)


def _lif_box(n, tau_inv=None, v_th=None):
    import norse.torch as nt
    from norse.torch.functional.lif_box import LIFBoxParameters

    if tau_inv is None:
        return nt.LIFBoxCell()  # norse defaults: 0-d tensors
    return nt.LIFBoxCell(LIFBoxParameters(tau_mem_inv=_t(tau_inv), v_leak=_t(np.zeros(n)),
                                          v_th=_t(v_th), v_reset=_t(np.zeros(n))))


def _linear(n_in, n_out, gain, bias=True):
    import torch

    lin = torch.nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.rand(n_out, n_in) * gain)
        if bias:
            lin.bias.copy_(torch.rand(n_out) * 0.2)
    return lin


def dense_lif(per_neuron=True):
    import norse.torch as nt
    import torch

    torch.manual_seed(0)
    if per_neuron:
        l1 = _lif_box(5, np.linspace(50, 200, 5), np.linspace(0.6, 1.2, 5))
        l2 = _lif_box(2, [80.0, 120.0], [0.5, 0.7])
    else:
        l1, l2 = _lif_box(5), _lif_box(2)
    return nt.SequentialState(_linear(3, 5, 3.0), l1, _linear(5, 2, 10.0), l2), torch.zeros(1, 3)


def dense_li_readout():
    import norse.torch as nt
    import torch
    from norse.torch.functional.leaky_integrator_box import LIBoxParameters

    torch.manual_seed(1)
    readout = nt.LIBoxCell(LIBoxParameters(tau_mem_inv=_t([100.0, 50.0]), v_leak=_t([0.0, 0.0])))
    net = nt.SequentialState(_linear(3, 5, 1.5), _lif_box(5, np.linspace(50, 200, 5), np.full(5, 0.8)),
                             _linear(5, 2, 1.0), readout)
    return net, torch.zeros(1, 3)


def cuba_lif():
    import norse.torch as nt
    import torch
    from norse.torch.functional.lif import LIFParameters

    torch.manual_seed(2)
    p = LIFParameters(tau_syn_inv=_t(np.linspace(150, 250, 4)), tau_mem_inv=_t(np.linspace(80, 120, 4)),
                      v_leak=_t(np.zeros(4)), v_th=_t(np.linspace(0.3, 0.6, 4)), v_reset=_t(np.zeros(4)))
    return nt.SequentialState(_linear(3, 4, 3.0, bias=False), nt.LIFCell(p)), torch.zeros(1, 3)


def cuba_lif_default():
    import norse.torch as nt
    import torch

    torch.manual_seed(2)
    return nt.SequentialState(_linear(3, 4, 3.0, bias=False), nt.LIFCell()), torch.zeros(1, 3)


def dense_iaf():
    import norse.torch as nt
    import torch
    from norse.torch.functional.iaf import IAFParameters

    torch.manual_seed(3)
    p = IAFParameters(v_th=_t(np.linspace(1.0, 2.0, 4)), v_reset=_t(np.zeros(4)))
    return nt.SequentialState(_linear(3, 4, 0.8), nt.IAFCell(p)), torch.zeros(1, 3)


def conv_iaf(per_neuron=True):
    import norse.torch as nt
    import torch
    from norse.torch.functional.iaf import IAFParameters

    torch.manual_seed(4)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight.uniform_(0.0, 0.4)
        conv.bias.zero_()
    cell = (nt.IAFCell(IAFParameters(v_th=_t(np.full((3, 6, 6), 1.0)), v_reset=_t(np.zeros((3, 6, 6)))))
            if per_neuron else nt.IAFCell())
    return nt.SequentialState(conv, cell), torch.zeros(1, 2, 6, 6)


def recurrent_lif():
    import norse.torch as nt
    import torch

    torch.manual_seed(5)
    cell = nt.LIFRecurrentCell(3, 4)
    with torch.no_grad():
        cell.input_weights.uniform_(0.0, 3.0)
        cell.recurrent_weights.uniform_(-1.0, 1.0)
    return nt.SequentialState(cell), torch.zeros(1, 3)


def li_cell_readout():
    import norse.torch as nt
    import torch

    torch.manual_seed(6)
    return nt.SequentialState(_linear(3, 5, 2.0), nt.LIFBoxCell(), _linear(5, 2, 1.0), nt.LICell()), torch.zeros(1, 3)


# ------------------------------------------------------------------ norse's own simulation


def runner(nodes: dict[str, str]):
    """Step the SequentialState with norse's default dt; record spikes and v (after reset) of the
    layers ``nodes`` names (index in the container -> node name in the file)."""

    def run(net: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        import norse.torch as nt
        import torch

        rec: dict[str, list] = {}
        handles = []
        for index, node in nodes.items():
            layer = net[int(index)]
            spiking = not isinstance(layer, (nt.LIBoxCell, nt.LICell))

            def hook(mod, args, out, node=node, spiking=spiking):
                z, state = out
                if spiking:
                    rec.setdefault(f"spikes.{node}", []).append(z.detach().numpy().copy())
                rec.setdefault(f"v.{node}", []).append(state.v.detach().numpy().copy())

            handles.append(layer.register_forward_hook(hook))
        try:
            with torch.no_grad():
                state = None
                for t in range(x.shape[1]):
                    _, state = net(torch.as_tensor(x[:, t], dtype=torch.float32), state)
        finally:
            for h in handles:
                h.remove()
        return {k: np.stack(v, 1) for k, v in rec.items()}

    return run


def to_nir(net, sample):
    import norse.torch as nt

    return nt.to_nir(net, sample)


def export_norse(net, sample):
    from neurodeploy.convert.norse import export_norse as export

    return export(net, sample, dt=DT)


def _cuba_patch(net) -> dict[str, Any]:
    """norse adds each input to i in full (i += x): under forward Euler that is w_in = tau_syn/dt,
    i.e. w_in = 1/(dt * tau_syn_inv) in the file's units."""
    inv = net[1].p.tau_syn_inv.detach().numpy().astype(np.float64)
    tau_syn_file = np.float32(DT) / inv.astype(np.float32)  # what the file holds
    return {"fields": {"1": {"w_in": [float(v) for v in tau_syn_file / FILE_DT]}}}


# ------------------------------------------------------------------ cases

_IN3 = Inputs((3,), steps=60, p=0.4, seed=11)
_TAU_BUG = ("tau = dt / tau_inv with dt = 1e-3 (norse #411): time constants 1000x too small, so the file "
            "reproduces norse only at dt = 1e-6")


def norse_cases() -> list[Case]:
    at_file_dt = dict(dt=FILE_DT, **EULER_ZERO)
    nominal = dict(dt=DT, **EULER_ZERO)
    return [
        Case(NORSE, "dense_lif", ("dense",),
             "Linear(3,5) -> LIFBoxCell(5) -> Linear(5,2) -> LIFBoxCell(2), per-neuron tensors",
             make=dense_lif, export=to_nir, run=runner({"1": "1", "3": "3"}), inputs=_IN3,
             semantics=at_file_dt, tolerance=F32, nominal=nominal, note=_TAU_BUG),
        Case(NORSE, "scalar_lif", ("scalar",),
             "Linear(3,5) -> LIFBoxCell() -> Linear(5,2) -> LIFBoxCell(), norse defaults",
             make=lambda: dense_lif(per_neuron=False), export=to_nir,
             upstream_failure=("nir.write", "TypeError", "Scalar datasets don't support chunk/filter options"),
             note="the defaults are 0-d tensors; nir 1.0.8's nir.write gzip-compresses every dataset and "
                  "cannot write a 0-d one"),
        Case(NORSE, "cubalif", ("cubalif",),
             "Linear(3,4, no bias) -> LIFCell(4), per-neuron tensors",
             make=cuba_lif, export=to_nir, run=runner({"1": "1"}), inputs=Inputs((3,), steps=60, p=0.5, seed=12),
             semantics=at_file_dt, tolerance=F32, nominal=nominal,
             mismatch="w_in = 1 is written, but norse adds each input to i in full (i += x); besides #411",
             patch=_cuba_patch),
        Case(NORSE, "if", ("if",), "Linear(3,4) -> IAFCell(4), per-neuron v_th",
             make=dense_iaf, export=to_nir, run=runner({"1": "1"}), inputs=Inputs((3,), steps=60, p=0.5, seed=13),
             semantics=dict(dt=1.0, **EULER_ZERO), tolerance=F32, nominal=nominal,
             note="IF(r=1) and norse's v += x agree at dt = 1 (one step per time unit), not at dt = 1e-3"),
        Case(NORSE, "li_readout", ("li",),
             "Linear(3,5) -> LIFBoxCell(5) -> Linear(5,2) -> LIBoxCell(2), per-neuron tensors",
             make=dense_li_readout, export=to_nir, run=runner({"1": "1", "3": "3"}), inputs=_IN3,
             semantics=at_file_dt, tolerance=F32, nominal=nominal, note=_TAU_BUG),
        Case(NORSE, "conv_if", ("conv",), "Conv2d(2,3,3,padding=1) -> IAFCell, per-neuron (3,6,6) v_th",
             make=conv_iaf, export=to_nir,
             upstream_failure=("nir.write", "TypeError", "One of data, shape or dtype must be specified"),
             note="Conv2d is written with input_shape=None, which nir.write cannot store"),
        Case(NORSE, "recurrent_lif", ("recurrent",), "LIFRecurrentCell(3,4)",
             make=recurrent_lif, export=to_nir,
             upstream_failure=("nir.write", "AttributeError", "'NoneType' object has no attribute 'to_dict'"),
             note="to_nir has no mapping for LIFRecurrentCell (nor LICell): the node is None in the graph"),
        Case(NORSE, "delay", ("delay",), "", not_expressible="norse has no delay layer that to_nir maps"),
    ]


def neurodeploy_cases() -> list[Case]:
    own = dict(dt=DT, **EULER_ZERO)  # what export_norse writes into the metadata
    return [
        Case(NEURODEPLOY, "dense_lif_defaults", ("dense", "scalar"),
             "Linear(3,5) -> LIFBoxCell() -> Linear(5,2) -> LIFBoxCell(), norse defaults (0-d)",
             make=lambda: dense_lif(per_neuron=False), export=export_norse,
             run=runner({"1": "lif1", "3": "lif2"}), inputs=Inputs((3,), steps=60, p=0.5, seed=21),
             semantics=own, tolerance=F32, note="scalars are written per neuron; tau in seconds"),
        Case(NEURODEPLOY, "cubalif", ("cubalif",), "Linear(3,4, no bias) -> LIFCell() (norse defaults)",
             make=cuba_lif_default, export=export_norse, run=runner({"1": "lif1"}),
             inputs=Inputs((3,), steps=60, p=0.5, seed=22), semantics=own, tolerance=F32,
             note="w_in = tau_syn/dt carries norse's i += x"),
        Case(NEURODEPLOY, "recurrent_lif", ("recurrent",), "LIFRecurrentCell(3,4)",
             make=recurrent_lif, export=export_norse, run=runner({"0": "lif1"}),
             inputs=Inputs((3,), steps=60, p=0.5, seed=23), semantics=own, tolerance=F32,
             note="Linear -> CubaLIF <-> Linear cycle; the recurrent edge carries the previous step"),
        Case(NEURODEPLOY, "conv_if", ("conv", "if", "scalar"), "Conv2d(2,3,3,padding=1) -> IAFCell() (norse defaults)",
             make=lambda: conv_iaf(per_neuron=False), export=export_norse, run=runner({"1": "if1"}),
             inputs=Inputs((2, 6, 6), steps=20, p=0.4, seed=24), semantics=own, tolerance=F32,
             note="IF(r = 1/dt) carries norse's v += x"),
        Case(NEURODEPLOY, "li_readout", ("li",),
             "Linear(3,5) -> LIFBoxCell() -> Linear(5,2) -> LICell() (norse defaults)",
             make=li_cell_readout, export=export_norse, run=runner({"1": "lif1", "3": "li1"}),
             inputs=Inputs((3,), steps=60, p=0.5, seed=25), semantics=own, tolerance=F32),
        Case(NEURODEPLOY, "delay", ("delay",), "", not_expressible="norse has no delay layer to export"),
    ]
