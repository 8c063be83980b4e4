"""`neurodeploy export --format netx`: lava-dl's netx HDF5 layout (backends/lava/netx.py).

Without lava-dl: the file is read back with h5py and every value is compared with the artifact's
integers; every refusal names the connection or population. With lava-dl in .venv-lava (see
docs/backends-lava.md, "netx export"): the file is loaded with lava-dl's own
``lava.lib.dl.netx.hdf5.Network``, run in Lava (fixed_pt), and Lava's parameters and traces are
compared with the artifact and the emulator, bit for bit.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodeploy.format import artifact
from neurodeploy.backends.lava.backend import _env, lava_python, program_artifact
from neurodeploy.backends.lava.netx import (NETX_BIAS_EXP, READOUT_VTH, NetxExportError,
                                            export_netx, netx_dense_weights)
from neurodeploy.cli.main import main
from neurodeploy.compiler.compile import Options, compile_for_netx, compile_model
from neurodeploy.compiler.quantize.fixed_point import LOIHI2
from neurodeploy.emulator.fixed_point import run as emulate
from neurodeploy.errors import NeurodeployError
from neurodeploy.format.program import Program, QConnection, QPopulation, from_manifest

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"
ATTRS = {"format": LOIHI2.__dict__, "hop_latency": 1}
NEURON_KEYS = {"type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"}


def _program(art) -> Program:
    return from_manifest(art.manifest["program"], art.arrays)


def _text(dataset) -> str:
    return dataset[()][0].decode()


def _conv(name, source, target, weight, in_shape, out_shape, stride, padding, dilation, groups):
    return QConnection(name, source, target, "conv", int(np.prod(in_shape)), int(np.prod(out_shape)), False,
                       {"weight": np.asarray(weight, dtype=np.int64)},
                       {"weight_exp": 0, "sign_mode": "mixed", "delay": 0, "stride": stride, "padding": padding,
                        "dilation": dilation, "groups": groups, "in_shape": list(in_shape),
                        "out_shape": list(out_shape), "synapses": int(np.size(weight) * np.prod(out_shape[1:]))})


def synthetic_conv_program(seed: int = 3) -> Program:
    """Non-square conv chain: input (2, 5, 6) -> conv (kernel 3x2, stride (1, 2), padding (1, 0)) ->
    grouped, dilated conv -> dense readout; per-neuron bias on the first conv, per-channel on the second."""
    rng = np.random.default_rng(seed)

    def pop(name, shape, spiking, bias):
        params = {"du": np.full(shape, int(rng.integers(0, 4096))), "dv": np.full(shape, int(rng.integers(0, 4096))),
                  "vth": np.full(shape, 40 if spiking else 131071), "bias_mant": np.reshape(bias, shape),
                  "bias_exp": np.full(shape, 6), "v_init": np.zeros(shape, dtype=np.int64)}
        return QPopulation(name, "cuba_lif", "LIF", shape, spiking, np.ones(shape), params, latency=1)

    pops = [pop("c1", (3, 5, 3), True, rng.integers(-3, 4, 45)),
            pop("c2", (3, 3, 2), True, np.repeat(rng.integers(-2, 3, 3), 6)),
            pop("r", (4,), False, np.zeros(4, dtype=np.int64))]
    conns = [_conv("k1", "input", "c1", 2 * rng.integers(-60, 128, (3, 2, 3, 2)), (2, 5, 6), (3, 5, 3),
                   [1, 2], [1, 0], [1, 1], 1),
             _conv("k2", "c1", "c2", 2 * rng.integers(-60, 128, (3, 1, 2, 2)), (3, 5, 3), (3, 3, 2),
                   [1, 1], [0, 0], [2, 1], 3),
             _dense("d", "c2", "r", 2 * rng.integers(-128, 128, (4, 18)))]
    return Program("loihi2", {"input": (2, 5, 6)}, pops, conns, {"out": "r"}, dict(ATTRS))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """digits_mlp / digits_conv compiled for netx and a synthetic conv chain, written as .ndp and
    exported as .net."""
    folder = tmp_path_factory.mktemp("netx")
    ndp = artifact.write(program_artifact(synthetic_conv_program()), folder / "synthetic_conv.ndp")
    out = {"synthetic_conv": (artifact.read(ndp), export_netx(ndp, folder / "synthetic_conv.net"))}
    # digits_conv: 1.4% of conv1's weights sit one mantissa step above 254 and are clipped to 254 (the
    # quantizer caps mixed-sign weights at 255 before rounding to even); the artifact is still exact
    # for what it holds, which is all this file compares.
    for name, degraded in (("digits_mlp", False), ("digits_conv", True)):
        compiled = compile_for_netx(ZOO / f"{name}.nir", Options(target="loihi2", allow_degraded=degraded))
        ndp = artifact.write(compiled.to_artifact(), folder / f"{name}.ndp")
        net = export_netx(ndp, folder / f"{name}.net")
        out[name] = (artifact.read(ndp), net)
    return out


def _check_neuron(group, pop) -> None:
    assert set(group) == NEURON_KEYS
    assert _text(group["type"]) == "CUBA"
    assert int(group["iDecay"][()]) == int(pop.params["du"].flat[0]) + 1  # netx: du = iDecay - 1
    assert int(group["vDecay"][()]) == int(pop.params["dv"].flat[0])
    want_vth = int(pop.params["vth"].flat[0]) if pop.spiking else READOUT_VTH
    assert int(group["vThMant"][()]) == want_vth
    assert int(group["refDelay"][()]) == 1 and not bool(group["gradedSpike"][()])


def _bias(pop) -> np.ndarray:
    return (pop.params["bias_mant"].astype(np.int64) << pop.params["bias_exp"].astype(np.int64)).reshape(pop.shape)


# ----------------------------------------------------------------------------- layout and values

def test_dense_chain_layout_equals_the_artifact(built):
    art, path = built["digits_mlp"]
    prog = _program(art)
    with h5py.File(path, "r") as f:
        assert list(f) == ["layer"] and list(f["layer"]) == ["0", "1", "2"]
        assert f.attrs["neurodeploy.content_hash"] == art.content_hash
        inp = f["layer/0"]
        assert set(inp) == {"type", "shape"} and _text(inp["type"]) == "input"
        assert inp["type"].dtype == np.dtype("S10") and inp["type"].shape == (1,)
        assert inp["shape"][()].tolist() == [64]
        for i, conn in enumerate(prog.connections, start=1):
            g = f[f"layer/{i}"]
            pop = prog.population(conn.target)
            assert g.attrs["neurodeploy.connection"] == conn.name and g.attrs["neurodeploy.population"] == pop.name
            assert _text(g["type"]) == "dense"
            assert set(g) == {"type", "shape", "inFeatures", "outFeatures", "weight", "bias", "neuron"}
            assert g["shape"][()].tolist() == [conn.n_out]
            assert int(g["inFeatures"][()]) == conn.n_in and int(g["outFeatures"][()]) == conn.n_out
            assert conn.attrs["weight_exp"] == 0
            weight = g["weight"][()]
            assert weight.dtype.kind == "i" and weight.shape == (conn.n_out, conn.n_in)
            np.testing.assert_array_equal(weight, conn.arrays["weight"] << conn.attrs["weight_exp"])
            np.testing.assert_array_equal(g["bias"][()].astype(np.int64) << NETX_BIAS_EXP, _bias(pop).reshape(-1))
            _check_neuron(g["neuron"], pop)
        assert not prog.population("li1").spiking and int(f["layer/2/neuron/vThMant"][()]) == 2**17


def test_conv_layout_equals_the_artifact(built):
    art, path = built["digits_conv"]
    prog = _program(art)
    conv, fc = prog.connections
    assert conv.kind == "conv" and fc.kind == "dense"
    with h5py.File(path, "r") as f:
        assert [_text(f[f"layer/{i}/type"]) for i in range(len(f["layer"]))] == ["input", "conv", "flatten", "dense"]
        assert f["layer/0/shape"][()].tolist() == [1, 8, 8]
        g = f["layer/1"]
        assert set(g) == {"type", "shape", "inChannels", "outChannels", "kernelSize", "stride", "padding",
                          "dilation", "groups", "weight", "bias", "neuron"}
        assert g["shape"][()].tolist() == [8, 8, 8]
        assert int(g["inChannels"][()]) == 1 and int(g["outChannels"][()]) == 8 and int(g["groups"][()]) == 1
        for key, want in (("kernelSize", [3, 3]), ("stride", conv.attrs["stride"]),
                          ("padding", conv.attrs["padding"]), ("dilation", conv.attrs["dilation"])):
            assert g[key][()].tolist() == list(want)
        np.testing.assert_array_equal(g["weight"][()], conv.arrays["weight"] << conv.attrs["weight_exp"])
        bias = _bias(prog.population("lif1"))  # uniform per channel -> written per channel
        np.testing.assert_array_equal(g["bias"][()].astype(np.int64) << NETX_BIAS_EXP, bias[:, 0, 0])
        _check_neuron(g["neuron"], prog.population("lif1"))
        assert f["layer/2/shape"][()].tolist() == [512, 1, 1]
        np.testing.assert_array_equal(f["layer/3/weight"][()], fc.arrays["weight"])
        _check_neuron(f["layer/3/neuron"], prog.population("li1"))


def test_non_square_conv_chain_layout(built):
    art, path = built["synthetic_conv"]
    prog = _program(art)
    with h5py.File(path, "r") as f:
        assert [_text(f[f"layer/{i}/type"]) for i in range(len(f["layer"]))] == ["input", "conv", "conv", "flatten",
                                                                                  "dense"]
        assert f["layer/0/shape"][()].tolist() == [2, 5, 6]
        k1, k2 = f["layer/1"], f["layer/2"]
        assert k1["kernelSize"][()].tolist() == [3, 2] and k1["stride"][()].tolist() == [1, 2]
        assert k1["padding"][()].tolist() == [1, 0] and k2["dilation"][()].tolist() == [2, 1]
        assert int(k2["groups"][()]) == 3 and k2["weight"].shape == (3, 1, 2, 2)
        c1, c2 = _bias(prog.population("c1")), _bias(prog.population("c2"))
        # per-neuron bias in Lava's (W, H, C) order; per-channel bias as (C,)
        np.testing.assert_array_equal(k1["bias"][()].astype(np.int64) << NETX_BIAS_EXP, c1.transpose(2, 1, 0))
        np.testing.assert_array_equal(k2["bias"][()].astype(np.int64) << NETX_BIAS_EXP, c2[:, 0, 0])
        assert f["layer/3/shape"][()].tolist() == [18, 1, 1]


def test_export_is_deterministic_and_atomic(built, tmp_path):
    art, first = built["digits_mlp"]
    again = export_netx(art, tmp_path / "again.net")
    assert again.read_bytes() == Path(first).read_bytes()
    with pytest.raises(NetxExportError):
        export_netx(_recurrent_artifact(), tmp_path / "bad.net")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.net"]  # no partial or temporary file


def test_cli_export_netx(built, tmp_path, capsys):
    art, _ = built["digits_mlp"]
    ndp = artifact.write(art, tmp_path / "m.ndp")
    assert main(["export", str(ndp), "--format", "netx", "-o", str(tmp_path / "m.net")]) == 0
    with h5py.File(tmp_path / "m.net", "r") as f:
        assert _text(f["layer/1/type"]) == "dense"
    assert main(["export", str(ndp), "--format", "netx", "-o", str(tmp_path / "m.h5")]) == 2
    assert "writes a .net file" in capsys.readouterr().err
    spinnaker = artifact.write(compile_model(ZOO / "lif_paper.nir", Options(target="spinnaker")).to_artifact(),
                               tmp_path / "s.ndp")
    assert main(["export", str(spinnaker), "--format", "netx", "-o", str(tmp_path / "s.net")]) == 2
    assert "loihi2" in capsys.readouterr().err
    assert not (tmp_path / "s.net").exists()


# ----------------------------------------------------------------------------- refusals

def _recurrent_artifact():
    return compile_model(ZOO / "temporal_rnn.nir", Options(target="loihi2")).to_artifact()


def test_default_loihi2_compile_of_digits_mlp_is_refused_naming_fc1(tmp_path):
    art = compile_model(ZOO / "digits_mlp.nir", Options(target="loihi2")).to_artifact()
    assert _program(art).connections[0].attrs["weight_exp"] > 0
    with pytest.raises(NeurodeployError, match=r"connection 'fc1'.*effective weights.*compile_for_netx"):
        export_netx(art, tmp_path / "m.net")
    assert not (tmp_path / "m.net").exists()


def test_recurrent_network_is_refused_naming_the_connection(tmp_path):
    with pytest.raises(NeurodeployError, match=r"connection 'lif1_rec' \(lif1 -> lif1\) is recurrent"):
        export_netx(_recurrent_artifact(), tmp_path / "r.net")


def _pop(name, n=3, spiking=True, **override):
    params = {"du": np.full(n, 4095), "dv": np.full(n, 410), "vth": np.full(n, 100),
              "bias_mant": np.zeros(n, dtype=np.int64), "bias_exp": np.full(n, 6),
              "v_init": np.zeros(n, dtype=np.int64)}
    params.update({k: np.asarray(v) for k, v in override.items()})
    return QPopulation(name, "cuba_lif", "LIF", (n,), spiking, np.ones(n), params, latency=1)


def _dense(name, source, target, weight, **attrs):
    weight = np.asarray(weight, dtype=np.int64)
    return QConnection(name, source, target, "dense", weight.shape[1], weight.shape[0], source == target,
                       {"weight": weight}, {"weight_exp": 0, "sign_mode": "mixed", "delay": 0, **attrs})


W = np.array([[2, -4], [6, 8], [10, -12]])


def _chain(pops=None, conns=None, target="loihi2", inputs=None):
    pops = pops or [_pop("a")]
    conns = conns or [_dense("w", "input", "a", W)]
    return Program(target, inputs or {"input": (2,)}, pops, conns, {"out": pops[-1].name}, dict(ATTRS))


@pytest.mark.parametrize("program, match", [
    (_chain(target="emulator"), r"target 'emulator'.*--target loihi2"),
    (_chain(pops=[_pop("a", du=[1, 2, 2])]), r"population 'a' has per-neuron du.*iDecay"),
    (_chain(pops=[_pop("a", dv=[1, 2, 2])]), r"population 'a' has per-neuron dv.*vDecay"),
    (_chain(pops=[_pop("a", vth=[5, 5, 6])]), r"population 'a' has per-neuron vth.*vThMant"),
    (_chain(pops=[_pop("a", v_init=[0, -40, 0])]), r"population 'a' starts at v = -40.*resets to 0"),
    (_chain(pops=[_pop("a", bias_mant=[1, 0, 0], bias_exp=[3, 3, 3])]), r"population 'a': bias.*multiple of 64"),
    (_chain(conns=[_dense("w", "input", "a", W, delay=2)]), r"connection 'w'.*delay of 2 step"),
    (_chain(conns=[QConnection("w", "input", "a", "dense", 2, 3, False, {"weight": W, "delay": np.ones((3, 2), int)},
                               {"weight_exp": 0, "sign_mode": "mixed", "delay": 0})]),
     r"connection 'w'.*per-synapse delays"),
    (_chain(conns=[_dense("w", "input", "a", W, weight_exp=6)]), r"connection 'w'.*span -768..640.*-256..254"),
    (_chain(conns=[_dense("w", "input", "a", np.zeros((3, 2), int))]), r"connection 'w'.*all weights are zero"),
    (_chain(conns=[_dense("w", "input", "a", -np.array([[255, 0], [3, 1], [0, 0]]))]),
     r"connection 'w'.*inexactly"),
    (_chain(conns=[_dense("w", "input", "a", -np.array([[128, 3], [3, 1], [1, 1]]))]),
     r"connection 'w'.*weight \[0, 0\] = -128 becomes -127"),
    (_chain(pops=[_pop("a"), _pop("b")], conns=[_dense("w", "input", "a", W), _dense("v", "input", "b", W)]),
     r"'input' feeds 2 connections \('w' \(to a\), 'v' \(to b\)\)"),
    (_chain(pops=[_pop("a"), _pop("b")],
            conns=[_dense("w", "input", "a", W), _dense("v", "a", "b", np.ones((3, 3), int)),
                   _dense("x", "input", "b", W)]),
     r"population 'b' receives 2 connections"),
    (_chain(pops=[_pop("a"), _pop("b")]), r"population 'b' is not on the chain"),
    (_chain(pops=[_pop("a", spiking=False), _pop("b")],
            conns=[_dense("w", "input", "a", W), _dense("v", "a", "b", np.ones((3, 3), int))]),
     r"connection 'v': its source 'a' does not spike"),
    (_chain(inputs={"input": (2,), "other": (1,)}), r"2 inputs"),
    (_chain(pops=[_pop("a", n=4), QPopulation("b", "cuba_lif", "LIF", (1, 1, 1), True, np.ones((1, 1, 1)),
                                              _pop("b", n=1).params, latency=2)],
            conns=[_dense("w", "input", "a", np.ones((4, 2), int)),
                   _conv("k", "a", "b", np.ones((1, 4, 1, 1), int), (4, 1, 1), (1, 1, 1), [1, 1], [0, 0], [1, 1], 1)]),
     r"connection 'k'.*a conv after a dense layer"),
])
def test_unsupported_programs_are_refused_by_name(program, match, tmp_path):
    with pytest.raises(NetxExportError, match=match):
        export_netx(program_artifact(program), tmp_path / "x.net")
    assert not list(tmp_path.iterdir())


def test_supported_synthetic_chain_with_readout_and_bias(tmp_path):
    prog = _chain(pops=[_pop("a", bias_mant=[3, -2, 0]), _pop("r", n=2, spiking=False, vth=[131071, 131071])],
                  conns=[_dense("w", "input", "a", W), _dense("v", "a", "r", [[1, 0, 3], [5, 7, 9]])])
    out = export_netx(prog, tmp_path / "ok.net")
    with h5py.File(out, "r") as f:
        assert f["layer/1/bias"][()].tolist() == [3, -2, 0]  # (mant << 6) >> 6
        assert "bias" not in f["layer/2"] and int(f["layer/2/neuron/vThMant"][()]) == READOUT_VTH
        assert f["layer/2/weight"][()].tolist() == [[1, 0, 3], [5, 7, 9]]


# ----------------------------------------------------------------------------- lava-dl itself

LOADER = r'''
"""Load netx files with lava-dl's own hdf5.Network, run them in Lava (fixed_pt), dump what Lava holds."""
import contextlib
import importlib
import importlib.util
import io
import json
import sys
import types
from pathlib import Path

import numpy as np


def import_hdf5():
    """lava.lib.dl.netx.hdf5, unmodified. Where torch is missing, two torch-only modules get stand-ins:
    the package __init__'s sequential_modules (unused by hdf5.Network, but Lava's compiler imports every
    module beside hdf5.py while it looks for process models) and slayer's RF-neuron helper."""
    try:
        from lava.lib.dl.netx import hdf5
        return hdf5, "package import"
    except ImportError as exc:
        if "torch" not in str(exc):
            raise
    for name in list(sys.modules):
        if name.startswith("lava.lib.dl"):
            del sys.modules[name]
    netx_dir = Path(list(importlib.util.find_spec("lava.lib.dl").submodule_search_locations)[0]) / "netx"

    def package(name, path=None):
        mod = types.ModuleType(name)
        mod.__path__ = [str(path)] if path else []
        sys.modules[name] = mod

    package("lava.lib.dl.slayer")
    package("lava.lib.dl.slayer.neuron")
    rf = types.ModuleType("lava.lib.dl.slayer.neuron.rf")

    def neuron_params(*args, **kwargs):
        raise NotImplementedError("RF neurons need slayer (torch)")

    rf.neuron_params = neuron_params
    sys.modules[rf.__name__] = rf
    package("lava.lib.dl.netx", netx_dir)
    seq = types.ModuleType("lava.lib.dl.netx.sequential_modules")
    seq.__file__ = str(netx_dir / "sequential_modules.py")
    sys.modules[seq.__name__] = seq
    return importlib.import_module("lava.lib.dl.netx.hdf5"), "modules loaded without torch"


def value(var):
    return np.rint(np.asarray(var.get())).astype(np.int64)


def run_net(hdf5, job):
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    net = hdf5.Network(net_config=job["net"])
    out = {"table": np.array(str(net)), "n_layers": np.array(len(net.layers))}
    x = np.load(job["input"])["x"]  # (*net.inp.shape, steps)
    steps = x.shape[-1]
    src = RingBuffer(data=x.astype(np.int32))
    src.s_out.connect(net.inp)
    monitors = []
    for layer in net.layers:
        mv, ms = Monitor(), Monitor()
        mv.probe(layer.neuron.v, steps)
        ms.probe(layer.neuron.s_out, steps)
        monitors.append((layer, mv, ms))
    net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:
        for i, (layer, mv, ms) in enumerate(monitors):
            p = f"L{i}."
            out[p + "block"] = np.array(type(layer).__name__)
            syn = layer.synapse
            if hasattr(syn, "weights"):  # Dense: read back after Lava's clip and truncation
                out[p + "weights"] = value(syn.weights)
                out[p + "weight_exp"] = np.asarray(syn.proc_params.get("weight_exp", 0))
            else:  # Conv
                out[p + "weights"] = value(syn.weight)
                for key in ("weight_exp", "kernel_size", "stride", "padding", "dilation", "groups"):
                    out[p + key] = np.asarray(getattr(syn, key).init)
            # Var.get() of a scalar LIF Var blocks in Lava 0.10.0: those are the values netx passed.
            for key in ("du", "dv", "vth", "bias_exp"):
                out[p + "n." + key] = np.asarray(getattr(layer.neuron, key).init)
            out[p + "n.bias_mant"] = value(layer.neuron.bias_mant)
            out[p + "v"] = np.asarray(mv.get_data()[layer.neuron.name]["v"])
            out[p + "s"] = np.asarray(ms.get_data()[layer.neuron.name]["s_out"])
    finally:
        net.stop()
    np.savez(job["out"], **out)


def weights(path, out_path):
    """lava-dl's optimize_weight_bits, then what Lava's Dense model does with its result."""
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    out = {}
    with np.load(path) as f:
        for key in f.files:
            try:
                with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
                    w, bits, exp, _ = optimize_weight_bits(f[key].copy())
                    mode = determine_sign_mode(w)
                    w = truncate_weights(clip_weights(w, mode, num_bits=8), mode, bits)
                out[key + ".w"], out[key + ".exp"] = np.asarray(w, dtype=np.int64), np.asarray(exp)
            except Exception as exc:  # noqa: BLE001 - netx itself fails on this matrix
                out[key + ".error"] = np.array(type(exc).__name__)
    np.savez(out_path, **out)


def main():
    job = json.loads(sys.argv[1])
    hdf5, how = import_hdf5()
    print(json.dumps({"how": how}))
    weights(job["weights"], job["weights_out"])
    for net_job in job["nets"]:
        run_net(hdf5, net_job)


main()
'''


def _lava_dl_missing() -> str | None:
    python = lava_python()
    if not python.exists():
        return f"{python} not found: run `make lava` first"
    probe = ("import importlib.util, h5py; s = importlib.util.find_spec('lava.lib.dl'); "
             "import sys; sys.exit(0 if s and any((__import__('pathlib').Path(p) / 'netx' / 'hdf5.py').is_file() "
             "for p in s.submodule_search_locations) else 1)")
    if subprocess.run([str(python), "-c", probe], env=_env(), capture_output=True).returncode != 0:
        return (f"lava-dl is not installed in {python.parent.parent.name}: "
                f"`{python.parent}/pip install --no-deps lava-dl==0.6.0 h5py==3.11.0` (lava-dl's torch "
                f"dependency is not needed for netx loading; see docs/backends-lava.md)")
    return None


WEIGHT_CASES = {
    "exc255": np.array([[255, 0, 17], [3, 1, 0]]), "exc_small": np.array([[3, 1], [2, 0]]),
    "mixed": np.array([[-256, 254, 3], [-5, 0, 7]]), "mixed_even": np.array([[-128, 64], [2, -2]]),
    "inh": np.array([[-255, -3], [-1, -7]]), "inh_pow2": np.array([[-128, -3], [-1, -1]]),
    "inh_pow2_only": np.array([[-128]]), "inh_zero": np.array([[-255, 0], [-3, -1]]),
    "inh_zero_even": np.array([[-128, 0], [-64, -2]]), "too_big": np.array([[300, 1]]),
    "too_big_mixed": np.array([[-3, 255]]), "too_negative": np.array([[-257, 4]]), "zeros": np.zeros((2, 2), int),
}


LAVA_DL_MISSING = _lava_dl_missing()


@pytest.mark.skipif(LAVA_DL_MISSING is not None, reason=str(LAVA_DL_MISSING))
def test_lava_dl_loads_the_file_and_runs_it_bit_exactly(built, tmp_path):
    steps = 12
    rng = np.random.default_rng(7)
    jobs, expected = [], {}
    for name, (art, net_path) in built.items():
        prog = _program(art)
        shape = tuple(prog.inputs["input"])
        x = (rng.random((1, steps) + shape) < 0.35).astype(np.int64)
        traces = emulate(prog, x, record=("v",))
        lava_x = x[0].transpose(0, 3, 2, 1) if len(shape) == 3 else x[0]  # conv-first netx takes (W, H, C)
        np.savez(tmp_path / f"{name}.x.npz", x=np.moveaxis(lava_x, 0, -1))
        jobs.append({"net": str(net_path), "input": str(tmp_path / f"{name}.x.npz"),
                     "out": str(tmp_path / f"{name}.out.npz")})
        expected[name] = (prog, traces)
    np.savez(tmp_path / "w.npz", **WEIGHT_CASES)
    (tmp_path / "loader.py").write_text(LOADER)
    job = {"nets": jobs, "weights": str(tmp_path / "w.npz"), "weights_out": str(tmp_path / "w.out.npz")}
    run = subprocess.run([str(lava_python()), str(tmp_path / "loader.py"), json.dumps(job)], env=_env(),
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]

    for name, (prog, traces) in expected.items():
        got = np.load(tmp_path / f"{name}.out.npz")
        assert int(got["n_layers"]) == len(prog.populations)
        for i, conn in enumerate(prog.connections):
            p, pop = f"L{i}.", prog.population(conn.target)
            effective = conn.arrays["weight"] << conn.attrs["weight_exp"]
            if conn.kind == "conv":
                assert str(got[p + "block"]) == "Conv"
                # netx: file[:, :, ::-1, ::-1] transposed to Lava's (out, W, H, in)
                np.testing.assert_array_equal(got[p + "weights"], effective[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
                assert got[p + "stride"].tolist() == list(conn.attrs["stride"])[::-1]
                assert got[p + "padding"].tolist() == list(conn.attrs["padding"])[::-1]
            else:
                assert str(got[p + "block"]) == "Dense"
                exp = int(got[p + "weight_exp"])
                np.testing.assert_array_equal(got[p + "weights"].astype(float) * 2.0**exp, effective)
            assert int(got[p + "n.du"]) == int(pop.params["du"].flat[0])
            assert int(got[p + "n.dv"]) == int(pop.params["dv"].flat[0])
            assert int(got[p + "n.vth"]) == (int(pop.params["vth"].flat[0]) if pop.spiking else READOUT_VTH)
            assert int(got[p + "n.bias_exp"]) == NETX_BIAS_EXP
            lava_bias = got[p + "n.bias_mant"].astype(np.int64) << NETX_BIAS_EXP
            want_bias = _bias(pop)
            if len(pop.shape) == 3:
                want_bias = want_bias.transpose(2, 1, 0)
            np.testing.assert_array_equal(lava_bias.reshape(-1), want_bias.reshape(-1))
            want_v = traces[f"v.{pop.name}"][0]
            if len(pop.shape) == 3:
                want_v = want_v.transpose(0, 3, 2, 1)
            np.testing.assert_array_equal(got[p + "v"].reshape(steps, -1), want_v.reshape(steps, -1),
                                          err_msg=f"{name}: v of layer {pop.name}")
            if pop.spiking:
                want_s = traces[f"spikes.{pop.name}"][0]
                if len(pop.shape) == 3:
                    want_s = want_s.transpose(0, 3, 2, 1)
                np.testing.assert_array_equal(got[p + "s"].reshape(steps, -1), want_s.reshape(steps, -1))
        assert any(np.any(got[f"L{i}.s"]) for i in range(len(prog.populations))), f"{name}: no spikes at all"

    loaded = np.load(tmp_path / "w.out.npz")
    for key, weight in WEIGHT_CASES.items():
        mine = netx_dense_weights(weight)
        exact_in_lava = (f"{key}.error" not in loaded.files and int(loaded[f"{key}.exp"]) <= 0 and np.array_equal(
            loaded[f"{key}.w"].astype(float) * 2.0 ** int(loaded[f"{key}.exp"]), weight))
        exact_mine = mine is not None and np.array_equal(mine[0].astype(float) * 2.0**mine[1], weight)
        assert exact_mine == exact_in_lava, key
        if exact_in_lava:
            np.testing.assert_array_equal(mine[0], loaded[f"{key}.w"], err_msg=key)
            assert mine[1] == int(loaded[f"{key}.exp"]), key


def test_cli_compile_netx_format_then_export(tmp_path, capsys):
    plain, netx_ready = tmp_path / "plain.ndp", tmp_path / "netx.ndp"
    model = str(ZOO / "digits_mlp.nir")
    assert main(["compile", model, "--target", "loihi2", "-o", str(plain)]) == 0
    assert main(["export", str(plain), "--format", "netx", "-o", str(tmp_path / "plain.net")]) == 2
    assert "--netx-format" in capsys.readouterr().err  # the refusal names the way out
    assert main(["compile", model, "--target", "loihi2", "--netx-format", "-o", str(netx_ready)]) == 0
    assert main(["export", str(netx_ready), "--format", "netx", "-o", str(tmp_path / "m.net")]) == 0
    program = _program(artifact.read(netx_ready))
    assert all(int(c.attrs["weight_exp"]) == 0 for c in program.connections)
    assert main(["compile", model, "--target", "spinnaker", "--netx-format", "-o", str(tmp_path / "s.ndp")]) == 2
    assert "--target loihi2" in capsys.readouterr().err
    assert not (tmp_path / "s.ndp").exists()
