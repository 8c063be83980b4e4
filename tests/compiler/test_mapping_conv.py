"""compiler/mapping.py on convolutions: per-core fan-in, distinct sources and output axons come
from receptive fields, exactly (checked against synapse lists from neurodeploy/format/convolution.py)."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.format import convolution
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.compiler.mapping import MappingError, _ConvField, map_program
from neurodeploy.targets import get as get_target
from neurodeploy.format.convolution import out_size
from neurodeploy.format.program import Program, QConnection, QPopulation

from helpers.limits_checker import check_artifact  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning)


def _random_conv(rng: np.random.Generator, source: str = "in", target: str = "pop") -> QConnection:
    """A small conv connection: 1-D or 2-D, groups, stride 1-3, padding, dilation, some zero taps."""
    while True:
        one_d = rng.random() < 0.3
        groups = int(rng.integers(1, 4))
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        h, w = (1 if one_d else int(rng.integers(1, 9))), int(rng.integers(1, 12))
        kh, kw = (1 if one_d else int(rng.integers(1, 4))), int(rng.integers(1, 4))
        stride = [1 if one_d else int(rng.integers(1, 4)), int(rng.integers(1, 4))]
        padding = [0 if one_d else int(rng.integers(0, 3)), int(rng.integers(0, 3))]
        dilation = [1 if one_d else int(rng.integers(1, 3)), int(rng.integers(1, 3))]
        oh = out_size(h, kh, stride[0], padding[0], dilation[0])
        ow = out_size(w, kw, stride[1], padding[1], dilation[1])
        if oh >= 1 and ow >= 1:
            break
    shape = (c_out, c_in // groups, kh, kw)
    weight = rng.integers(-3, 4, size=shape) * (rng.random(shape) < 0.7)
    if one_d:
        attrs = {"in_shape": (c_in, w), "out_shape": (c_out, ow), "stride": stride[1:], "padding": padding[1:],
                 "dilation": dilation[1:]}
        weight = weight[:, :, 0]
    else:
        attrs = {"in_shape": (c_in, h, w), "out_shape": (c_out, oh, ow), "stride": stride, "padding": padding,
                 "dilation": dilation}
    attrs.update(groups=groups, delay=0, weight_exp=0, sign_mode="mixed")
    return QConnection("conv", source, target, "conv", c_in * h * w, c_out * oh * ow, False,
                       {"weight": weight}, attrs)


def _pop(name: str, shape: tuple[int, ...]) -> QPopulation:
    n = int(np.prod(shape))
    return QPopulation(name, "cuba_lif", "LIF", tuple(shape), True, np.ones(n), {})


def _random_slices(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    cuts = np.unique(np.concatenate([[0, n], rng.integers(0, n + 1, size=int(rng.integers(0, 6)))]))
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))


def test_distinct_sources_and_fan_in_match_synapse_lists():
    rng = np.random.default_rng(1)
    for _ in range(400):
        c = _random_conv(rng)
        field = _ConvField.of(c)
        targets, sources, _ = convolution.synapses(c.arrays["weight"], field.geom)
        np.testing.assert_array_equal(convolution.fan_in(c.arrays["weight"], field.geom),
                                      np.bincount(targets, minlength=c.n_out))
        for _ in range(4):
            start = int(rng.integers(0, c.n_out))
            stop = int(rng.integers(start + 1, c.n_out + 1))
            inside = (targets >= start) & (targets < stop)
            assert field.count(start, stop) == np.unique(sources[inside]).size, (c.attrs, start, stop)


def test_output_axons_per_source_match_synapse_lists():
    rng = np.random.default_rng(2)
    for _ in range(300):
        c = _random_conv(rng)
        field = _ConvField.of(c)
        targets, sources, _ = convolution.synapses(c.arrays["weight"], field.geom)
        slices = _random_slices(rng, c.n_out)
        axons = np.zeros(c.n_in, dtype=np.int64)
        for start, stop in slices:
            field.mark(axons, start, stop)
        core = np.searchsorted([stop for _, stop in slices], targets, side="right")
        pairs = np.unique(np.stack([sources, core]), axis=1)
        np.testing.assert_array_equal(axons, np.bincount(pairs[0], minlength=c.n_in), err_msg=str(c.attrs))


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_mapper_usage_of_a_conv_layer_is_exact(target):
    """Per core: synapses, fan-in axons (and on loihi2 output axons of the source cores) equal
    the counts from the synapse list; SpiNNaker's conv words count where they are non-zero."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        c = _random_conv(rng, source="pre", target="post")
        if target == "spinnaker":  # uint16 words and their synapse types
            words = np.abs(c.arrays["weight"]).astype(np.uint16)
            c.arrays = {"weight": words, "synapse_type": (c.arrays["weight"] < 0).astype(np.int64)}
        geom = _ConvField.of(c).geom
        program = Program(target, {"x": (c.n_in,)}, [_pop("pre", (c.n_in,)), _pop("post", geom.out_shape)],
                          [c], {"post": "post"})
        mapping = map_program(program, get_target(target), neurons_per_core=int(rng.integers(1, 9)), chips=64)
        targets, sources, _ = convolution.synapses(c.arrays["weight"], geom)
        core_of = np.zeros(c.n_out, dtype=np.int64)
        for core in mapping.cores:
            if core.population == "post":
                core_of[core.start:core.stop] = core.core
                inside = (targets >= core.start) & (targets < core.stop)
                assert core.usage["synapses"] == inside.sum()
                assert core.usage["fan_in_axons"] == np.unique(sources[inside]).size
        if target == "loihi2":
            pairs = np.unique(np.stack([sources, core_of[targets]]), axis=1)
            axons = np.bincount(pairs[0], minlength=c.n_in)
            for core in mapping.cores:
                if core.population == "pre":
                    assert core.usage["fan_out_axons"] == axons[core.start:core.stop].sum()


def _conv_connection(rng: np.random.Generator, source: str, target: str, c_in: int, c_out: int,
                     hw: tuple[int, int], k: int, stride: int, padding: int) -> QConnection:
    oh, ow = (out_size(n, k, stride, padding, 1) for n in hw)
    weight = rng.integers(1, 100, size=(c_out, c_in, k, k))
    attrs = {"in_shape": (c_in, *hw), "out_shape": (c_out, oh, ow), "stride": [stride] * 2,
             "padding": [padding] * 2, "dilation": [1, 1], "groups": 1, "delay": 0}
    return QConnection(f"{source}->{target}", source, target, "conv", c_in * hw[0] * hw[1], c_out * oh * ow, False,
                       {"weight": weight}, attrs)


def _lif(shape: tuple[int, ...]) -> nir.LIF:
    return nir.LIF(tau=np.full(shape, 0.01), r=np.ones(shape), v_leak=np.zeros(shape),
                   v_threshold=np.ones(shape), v_reset=np.zeros(shape))


def test_event_camera_conv_maps_on_loihi2():
    """Input 2x128x128 -> Conv2d(2->8, k5, s2, p2) -> LIF 8x64x64: each neuron hears 2x5x5 = 50
    inputs, not the whole 32768-neuron input; every core stays within 4096 input axons."""
    rng = np.random.default_rng(4)
    shape = (8, 64, 64)
    conv = nir.Conv2d(input_shape=(128, 128), weight=rng.normal(0, 0.3, (8, 2, 5, 5)).astype(np.float32),
                      stride=(2, 2), padding=(2, 2), dilation=(1, 1), groups=1, bias=np.zeros(8, np.float32))
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2, 128, 128])}), "conv": conv,
               "lif": _lif(shape), "output": nir.Output(output_type={"output": np.array(shape)})},
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")], type_check=False)
    compiled = compile_model(graph, Options(target="loihi2", dt=1e-3))
    assert compiled.mapping.fits
    assert all(core.usage["fan_in_axons"] <= 4096 for core in compiled.mapping.cores)
    assert check_artifact(compiled.to_artifact()) == []


def test_two_conv_layers_keep_output_axons_within_loihi2_limits():
    """Input 2x32x32 -> conv(k5, s2) -> 8x16x16 -> conv(8->16, k3, s2, p1) -> 16x8x8: the first
    layer's output axons are one per target core that hears each neuron, exactly, within 4096."""
    rng = np.random.default_rng(5)
    c1 = _conv_connection(rng, "x", "l1", 2, 8, (32, 32), 5, 2, 2)
    c2 = _conv_connection(rng, "l1", "l2", 8, 16, (16, 16), 3, 2, 1)
    program = Program("loihi2", {"x": (2, 32, 32)}, [_pop("l1", (8, 16, 16)), _pop("l2", (16, 8, 8))], [c1, c2],
                      {"l2": "l2"})
    mapping = map_program(program, get_target("loihi2"), neurons_per_core=16, chips=4)
    geom = _ConvField.of(c2).geom
    targets, sources, _ = convolution.synapses(c2.arrays["weight"], geom)
    core_of = np.zeros(c2.n_out, dtype=np.int64)
    for core in mapping.cores:
        if core.population == "l2":
            core_of[core.start:core.stop] = core.core
    pairs = np.unique(np.stack([sources, core_of[targets]]), axis=1)
    axons = np.bincount(pairs[0], minlength=c2.n_in)
    for core in mapping.cores:
        if core.population == "l1":
            assert core.usage["fan_out_axons"] == axons[core.start:core.stop].sum() <= 4096


@pytest.mark.parametrize("hw,padding", [((3, 3), 0), ((6, 6), 1)])
def test_receptive_field_over_the_fan_in_limit_is_refused(hw, padding):
    """512 input channels x 3x3 = 4608 input axons for one neuron (corner neurons of a padded
    layer hear fewer); Loihi 2 cores take 4096."""
    c = _conv_connection(np.random.default_rng(6), "x", "pop", 512, 2, hw, 3, 1, padding)
    program = Program("loihi2", {"x": (512, *hw)}, [_pop("pop", c.attrs["out_shape"])], [c], {"pop": "pop"})
    with pytest.raises(MappingError) as err:
        map_program(program, get_target("loihi2"))
    message = str(err.value)
    assert "'pop'" in message and "fan_in_axons = 4608" in message and "4096" in message


def test_a_million_neuron_conv_layer_maps_quickly():
    """Input 2x500x500 -> conv(2->16, k5, s2, p2) -> 16x250x250 = 10^6 neurons on Loihi 2."""
    import time

    c = _conv_connection(np.random.default_rng(7), "x", "pop", 2, 16, (500, 500), 5, 2, 2)
    program = Program("loihi2", {"x": (2, 500, 500)}, [_pop("pop", c.attrs["out_shape"])], [c], {"pop": "pop"})
    began = time.perf_counter()
    mapping = map_program(program, get_target("loihi2"), chips=64)
    assert time.perf_counter() - began < 20  # a few seconds; generous for loaded machines
    assert sum(core.stop - core.start for core in mapping.cores) == 1_000_000 and mapping.fits
    assert max(core.usage["fan_in_axons"] for core in mapping.cores) <= 4096
