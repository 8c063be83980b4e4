"""netx export of a conv network whose sum pool was folded into the next, strided conv.

NIR: input (2, 12, 12) -> conv 3x3 stride 2 -> LIF -> sum pool 2 -> conv 3x3 stride 2 padding 1 ->
LIF -> flatten -> dense -> LI. The compiler folds the pool into the second conv (one kernel of
6x6 taps, stride 4, padding 2: compiler/conv_fold.py); ``export --format netx`` writes that conv
as one netx conv layer, lava-dl's own ``hdf5.Network`` loads the file in the Lava environment,
and Lava (fixed_pt) runs it with the same v and spikes as the emulator at every step. A folded
conv whose geometry a netx conv layer cannot state (its output shape does not follow from
kernel, stride and padding) is refused by name.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import warnings

import h5py
import nir
import numpy as np
import pytest

from neurodeploy.backends.lava.backend import _env, lava_python
from neurodeploy.backends.lava.netx import READOUT_VTH, NetxExportError, export_netx
from neurodeploy.compiler.compile import Options, compile_for_netx
from neurodeploy.emulator.fixed_point import run as emulate
from neurodeploy.format import artifact
from neurodeploy.format.program import Program, from_manifest

from test_netx_export import LAVA_DL_MISSING, LOADER

STEPS = 16


def _lif(shape: tuple[int, ...]) -> nir.CubaLIF:
    """Uniform parameters: a netx layer holds one du, dv and threshold."""
    ones = np.ones(shape)
    return nir.CubaLIF(tau_syn=ones * 5e-3, tau_mem=ones * 2e-2, r=ones, v_leak=ones * 0.0, v_threshold=ones * 1.0,
                       v_reset=ones * 0.0, w_in=ones)


def folded_graph(seed: int = 4) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.6, 1.0, (4, 2, 3, 3)) * 3.0
    w2 = rng.normal(0.3, 1.0, (6, 4, 3, 3)) * 1.5
    fc = rng.normal(0.2, 1.0, (5, 24))
    nodes = {
        "input": nir.Input(input_type=np.array([2, 12, 12])),
        "conv1": nir.Conv2d(input_shape=(12, 12), weight=w1, stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                            groups=1, bias=np.zeros(4)),
        "lif1": _lif((4, 6, 6)),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(3, 3), weight=w2, stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                            groups=1, bias=np.zeros(6)),
        "lif2": _lif((6, 2, 2)),
        "flatten": nir.Flatten(input_type={"input": np.array([6, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=fc),
        "li": nir.LI(tau=np.full(5, 2e-2), r=np.ones(5), v_leak=np.zeros(5)),
        "output": nir.Output(output_type=np.array([5])),
    }
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])), type_check=False,
                        metadata={"neurodeploy.dt": 1e-3, "neurodeploy.integrator": "euler",
                                  "neurodeploy.reset": "zero", "neurodeploy.spike_amplitude": 1.0})


def _program(path) -> Program:
    art = artifact.read(path)
    return from_manifest(art.manifest["program"], art.arrays)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("netx_conv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = compile_for_netx(folded_graph(), Options(target="loihi2", allow_degraded=True))
    ndp = artifact.write(compiled.to_artifact(), folder / "folded.ndp")
    return _program(ndp), export_netx(ndp, folder / "folded.net"), folder


def test_the_pool_is_folded_into_one_strided_conv_layer(exported):
    prog, net, _ = exported
    assert [c.kind for c in prog.connections] == ["conv", "conv", "dense"]
    folded = prog.connections[1]
    assert folded.arrays["weight"].shape == (6, 4, 6, 6)  # 3x3 taps over 2x2 pooled pixels
    assert list(folded.attrs["stride"]) == [4, 4] and list(folded.attrs["padding"]) == [2, 2]
    with h5py.File(net, "r") as f:
        types = [f[f"layer/{i}/type"][()][0].decode() for i in range(len(f["layer"]))]
        assert types == ["input", "conv", "conv", "flatten", "dense"]
        g = f["layer/2"]
        assert g["kernelSize"][()].tolist() == [6, 6] and g["stride"][()].tolist() == [4, 4]
        assert g["padding"][()].tolist() == [2, 2] and g["shape"][()].tolist() == [6, 2, 2]
        np.testing.assert_array_equal(g["weight"][()], folded.arrays["weight"])


def _lava_order(trace: np.ndarray) -> np.ndarray:
    """(steps, C, H, W) -> (steps, W*H*C) in Lava's (W, H, C) order; flat traces as they are."""
    return (trace.transpose(0, 3, 2, 1) if trace.ndim == 4 else trace).reshape(trace.shape[0], -1)


@pytest.mark.skipif(LAVA_DL_MISSING is not None, reason=str(LAVA_DL_MISSING))
def test_lava_dl_runs_the_folded_conv_bit_exactly(exported):
    prog, net, folder = exported
    x = (np.random.default_rng(11).random((1, STEPS, 2, 12, 12)) < 0.4).astype(np.int64)
    traces = emulate(prog, x, record=("v",), fast=False)
    np.savez(folder / "x.npz", x=np.moveaxis(x[0].transpose(0, 3, 2, 1), 0, -1))  # (W, H, C, steps)
    np.savez(folder / "w.npz")
    (folder / "loader.py").write_text(LOADER)
    job = {"nets": [{"net": str(net), "input": str(folder / "x.npz"), "out": str(folder / "out.npz")}],
           "weights": str(folder / "w.npz"), "weights_out": str(folder / "w.out.npz")}
    run = subprocess.run([str(lava_python()), str(folder / "loader.py"), json.dumps(job)], env=_env(),
                         capture_output=True, text=True, timeout=600, cwd=folder)
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.load(folder / "out.npz")
    assert int(got["n_layers"]) == 3
    for i, conn in enumerate(prog.connections):
        p, pop = f"L{i}.", prog.population(conn.target)
        assert str(got[p + "block"]) == ("Conv" if conn.kind == "conv" else "Dense")
        if conn.kind == "conv":  # netx: the file's kernel flipped and transposed to Lava's (out, W, H, in)
            np.testing.assert_array_equal(got[p + "weights"], conn.arrays["weight"][:, :, ::-1, ::-1]
                                          .transpose(0, 3, 2, 1))
            assert got[p + "stride"].tolist() == list(conn.attrs["stride"])[::-1]
            assert got[p + "padding"].tolist() == list(conn.attrs["padding"])[::-1]
        assert int(got[p + "n.vth"]) == (int(pop.params["vth"].flat[0]) if pop.spiking else READOUT_VTH)
        np.testing.assert_array_equal(got[p + "v"].reshape(STEPS, -1), _lava_order(traces[f"v.{pop.name}"][0]),
                                      err_msg=f"v of {pop.name}")
        if pop.spiking:
            spikes = traces[f"spikes.{pop.name}"][0]
            assert spikes.sum() > 0, f"{pop.name} never fires: the comparison would prove little"
            np.testing.assert_array_equal(got[p + "s"].reshape(STEPS, -1), _lava_order(spikes),
                                          err_msg=f"spikes of {pop.name}")


def test_a_folded_conv_whose_output_netx_cannot_derive_is_refused(exported, tmp_path):
    """A conv layer in netx gets its output shape from (input, kernel, stride, padding); a folded conv
    that claims another shape must be refused by name, with nothing written."""
    prog, _, _ = exported
    folded = prog.connections[1]
    attrs = dict(folded.attrs, padding=[0, 0])  # (6 - 6) // 4 + 1 = 1, not the population's 2
    bad = dataclasses.replace(folded, attrs=attrs)
    program = dataclasses.replace(prog, connections=[prog.connections[0], bad, prog.connections[2]])
    with pytest.raises(NetxExportError, match=rf"connection '{folded.name}'.*conv geometry .* does not follow"):
        export_netx(program, tmp_path / "bad.net")
    assert not list(tmp_path.iterdir())
