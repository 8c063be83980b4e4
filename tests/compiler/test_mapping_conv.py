"""compiler/mapping.py on convolutions: per-core fan-in, distinct sources and output axons come
from receptive fields, exactly (checked against synapse lists from neurodeploy/format/convolution.py),
for 1-D strips and for the 2-D tiles (channel group x rows x columns) that loihi2 maps conv-fed
layers into."""
from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.format import convolution
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.compiler.mapping import MappingError, Tile, _ConvField, map_program
from neurodeploy.format import core_slices
from neurodeploy.targets import get as get_target
from neurodeploy.format.convolution import ConvGeometry, out_size
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
        core_of = _core_of(mapping, "post", c.n_out)
        for core in mapping.cores:
            if core.population == "post":
                inside = core_of[targets] == core.core
                assert core.usage["synapses"] == inside.sum()
                assert core.usage["fan_in_axons"] == np.unique(sources[inside]).size
        if target == "loihi2":
            pairs = np.unique(np.stack([sources, core_of[targets]]), axis=1)
            axons = np.bincount(pairs[0], minlength=c.n_in)
            for core in mapping.cores:
                if core.population == "pre":
                    assert core.usage["fan_out_axons"] == axons[core.indices()].sum()
        else:
            assert all(core.tile is None for core in mapping.cores)  # sPyNNaker splits 1-D


def _core_of(mapping, population: str, size: int) -> np.ndarray:
    """Core of every neuron of a population, from the mapping's JSON form (every neuron once)."""
    core_of = np.full(size, -1, dtype=np.int64)
    for entry in mapping.as_dict()["cores"]:
        if entry["population"] == population:
            idx = core_slices.slice_indices(entry)
            assert (core_of[idx] == -1).all()
            core_of[idx] = entry["core"]
    assert (core_of >= 0).all()
    return core_of


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
    core_of = _core_of(mapping, "l2", c2.n_out)
    pairs = np.unique(np.stack([sources, core_of[targets]]), axis=1)
    axons = np.bincount(pairs[0], minlength=c2.n_in)
    for core in mapping.cores:
        if core.population == "l1":
            assert core.usage["fan_out_axons"] == axons[core.indices()].sum() <= 4096


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
    """Input 2x500x500 -> conv(2->16, k5, s2, p2) -> 16x250x250 = 10^6 neurons on Loihi 2, as tiles."""
    c = _conv_connection(np.random.default_rng(7), "x", "pop", 2, 16, (500, 500), 5, 2, 2)
    program = Program("loihi2", {"x": (2, 500, 500)}, [_pop("pop", c.attrs["out_shape"])], [c], {"pop": "pop"})
    began = time.perf_counter()
    mapping = map_program(program, get_target("loihi2"), chips=64)
    assert time.perf_counter() - began < 20  # a few seconds; generous for loaded machines
    assert sum(core.size for core in mapping.cores) == 1_000_000 and mapping.fits
    assert all(core.tile is not None for core in mapping.cores)
    assert max(core.usage["fan_in_axons"] for core in mapping.cores) <= 4096
    strips = map_program(program, dataclasses.replace(get_target("loihi2"), conv_tiles=False), chips=64)
    assert len(mapping.cores) < len(strips.cores)


# ------------------------------------------------------------------ 2-D tiles


def _brute(c: QConnection) -> tuple[np.ndarray, np.ndarray]:
    """(target, source) of every synapse, from the expanded matrix."""
    matrix = convolution.as_csr(c.arrays["weight"], ConvGeometry.of(c.attrs)).tocoo()
    keep = matrix.data != 0
    return matrix.row[keep].astype(np.int64), matrix.col[keep].astype(np.int64)


def _pool_conv(rng: np.random.Generator, c_in: int, hw: tuple[int, int]) -> QConnection:
    """A sum pooling (2x2, stride 2) as the depthwise conv of ones it folds into."""
    oh, ow = hw[0] // 2, hw[1] // 2
    attrs = {"in_shape": (c_in, *hw), "out_shape": (c_in, oh, ow), "stride": [2, 2], "padding": [0, 0],
             "dilation": [1, 1], "groups": c_in, "delay": 0}
    return QConnection("pool", "in", "pop", "conv", c_in * hw[0] * hw[1], c_in * oh * ow, False,
                       {"weight": np.ones((c_in, 1, 2, 2), dtype=np.int64)}, attrs)


def _random_tile(rng: np.random.Generator, shape: tuple[int, int, int]) -> Tile:
    def axis(n):
        a = int(rng.integers(0, n))
        return a, int(rng.integers(a + 1, n + 1))
    return Tile(tuple(shape), axis(shape[0]), axis(shape[1]), axis(shape[2]))


def test_tile_distinct_sources_and_axons_match_the_expanded_matrix():
    """Random conv layers (1-D and 2-D, stride 1-3, padding, dilation, groups, zero taps) and
    sum poolings: a tile's distinct sources, and the output axons that tiles ask of each source,
    equal the counts from the expanded matrix."""
    rng = np.random.default_rng(11)
    for i in range(300):
        c = _pool_conv(rng, int(rng.integers(1, 4)), (int(rng.integers(2, 9)), int(rng.integers(2, 9)))) \
            if i % 5 == 0 else _random_conv(rng)
        field = _ConvField.of(c)
        targets, sources = _brute(c)
        shape = field.geom.out_shape
        tiles = [_random_tile(rng, shape) for _ in range(3)]
        for tile in tiles:
            inside = np.isin(targets, tile.indices())
            assert field.count_tile(tile) == np.unique(sources[inside]).size, (c.attrs, tile)
        axons = np.zeros(c.n_in, dtype=np.int64)
        for tile in tiles:
            field.mark_tile(axons, tile)
        expect = np.zeros(c.n_in, dtype=np.int64)
        for tile in tiles:
            expect[np.unique(sources[np.isin(targets, tile.indices())])] += 1
        np.testing.assert_array_equal(axons, expect, err_msg=str(c.attrs))


def _tiled_program(rng: np.random.Generator) -> tuple[Program, list[QConnection]]:
    """pre (C_in x H x W) -> two convs (different kernels, strides/paddings giving one output shape)
    -> post; post -> conv -> out. Every population fed only by convs."""
    c_in, h, w = int(rng.integers(1, 4)), int(rng.integers(4, 13)), int(rng.integers(4, 13))
    c_out, groups = int(rng.integers(1, 4)) * 2, int(rng.choice([1, 2])) if c_in % 2 == 0 else 1
    k1, k2 = 3, int(rng.choice([1, 3]))
    a = _conv_connection(rng, "pre", "post", c_in, c_out, (h, w), k1, 1, 1)
    b = _conv_connection(rng, "pre", "post", c_in, c_out, (h, w), k2, 1, k2 // 2)
    b.name = "pre->post b"
    for conn in (a, b):
        conn.arrays["weight"] = conn.arrays["weight"] * (rng.random(conn.arrays["weight"].shape) < 0.6)
    if groups == 2:
        a.attrs["groups"] = 2
        a.arrays["weight"] = a.arrays["weight"][:, : c_in // 2]
    stride = int(rng.integers(1, 3))
    d = _conv_connection(rng, "post", "out", c_out, 2, (h, w), 3, stride, int(rng.integers(0, 2)))
    shapes = {"pre": (c_in, h, w), "post": (c_out, h, w), "out": d.attrs["out_shape"]}
    x = _conv_connection(rng, "x", "pre", 1, c_in, (h, w), 1, 1, 0)
    program = Program("loihi2", {"x": (1, h, w)}, [_pop(n, s) for n, s in shapes.items()], [x, a, b, d],
                      {"out": "out"})
    return program, [x, a, b, d]


def test_tiled_mapping_usage_is_exact():
    """Per tile core: synapses, distinct sources over two inbound convs, stored weights (the
    non-zero kernel entries of its output channels), and output axons of the source cores equal
    the counts from the expanded matrices."""
    rng = np.random.default_rng(12)
    target = get_target("loihi2")
    tiled = 0
    for _ in range(25):
        program, conns = _tiled_program(rng)
        mapping = map_program(program, target, neurons_per_core=int(rng.integers(4, 64)), chips=64)
        sizes = {p.name: p.size for p in program.populations}
        core_of = {n: _core_of(mapping, n, size) for n, size in sizes.items()}
        brute = {c.name: _brute(c) for c in conns}
        fan_out = np.zeros(len(mapping.cores), dtype=np.int64)
        for c in conns:
            if c.source in sizes:
                t, s = brute[c.name]
                pairs = np.unique(np.stack([s, core_of[c.target][t]]), axis=1)
                np.add.at(fan_out, core_of[c.source][pairs[0]], 1)
        for core in mapping.cores:
            tiled += core.tile is not None
            syn, src, weights = 0, 0, 0
            for c in conns:
                if c.target != core.population:
                    continue
                t, s = brute[c.name]
                inside = core_of[c.target][t] == core.core
                syn += int(inside.sum())
                src += np.unique(s[inside]).size
                hw = int(np.prod(c.attrs["out_shape"][1:]))
                channels = np.unique(np.arange(sizes[core.population])[core.indices()] // hw)
                weights += int(np.count_nonzero(c.arrays["weight"][channels]))
            assert core.usage["synapses"] == syn and core.usage["fan_in_axons"] == src
            assert core.usage["stored_weights"] == min(syn, weights)
            assert core.usage["memory_bytes"] == min(syn, weights) + 12 * core.size + 4 * src
            assert core.usage["fan_out_axons"] == fan_out[core.core]
        assert mapping.fits and all(row["margin"] >= 0 for row in mapping.limits)
    assert tiled > 0


def test_tiles_take_no_more_cores_than_strips():
    """Small random conv nets with loihi2's cost model and input-axon limits of 60-200 (so that
    sources, not neuron counts, bound the slices, as 4,096 does at DVS size)."""
    rng = np.random.default_rng(13)
    fewer = 0
    for _ in range(25):
        loihi2 = get_target("loihi2")
        limits = dict(loihi2.core_limits)
        limits["fan_in_axons"] = dataclasses.replace(limits["fan_in_axons"], size=int(rng.integers(60, 200)))
        target = dataclasses.replace(loihi2, core_limits=limits)
        strips_target = dataclasses.replace(target, conv_tiles=False)
        program, _ = _tiled_program(rng)
        cap = int(rng.integers(16, 512))
        tiles = map_program(program, target, neurons_per_core=cap, chips=64)
        strips = map_program(program, strips_target, neurons_per_core=cap, chips=64)
        assert all(core.tile is None for core in strips.cores)
        assert len(tiles.cores) <= len(strips.cores)
        fewer += len(tiles.cores) < len(strips.cores)
    assert fewer > 0


def _events_motion(rng: np.random.Generator, channels: int) -> Program:
    """The zoo's events_motion shape with conv2 at stride 1: 2x64x64 -> conv 8@5x5/2 -> 8x32x32
    -> (sum pool 2 then 3x3 p1, folded: 6x6 taps, stride 2, padding 2) -> C x 16 x 16 -> dense 6."""
    c1 = _conv_connection(rng, "x", "lif1", 2, 8, (64, 64), 5, 2, 2)
    c2 = _conv_connection(rng, "lif1", "lif2", 8, channels, (32, 32), 6, 2, 2)
    n2 = channels * 256
    fc = QConnection("fc", "lif2", "li", "dense", n2, 6, False, {"weight": rng.integers(-9, 10, (6, n2))},
                     {"delay": 0})
    return Program("loihi2", {"x": (2, 64, 64)}, [_pop("lif1", (8, 32, 32)), _pop("lif2", (channels, 16, 16)),
                                                  _pop("li", (6,))], [c1, c2, fc], {"li": "li"})


def test_core_count_grows_smoothly_with_channels():
    """events_motion with conv2 at stride 1: strips took 65 cores at 12 channels and 129 at 16
    (slice halving); tiles grow no faster than the channel count (plus one core)."""
    rng = np.random.default_rng(14)
    target = get_target("loihi2")
    counts = {c: len(map_program(_events_motion(rng, c), target, chips=4).cores) for c in (8, 10, 12, 14, 16)}
    for a, b in zip(list(counts)[:-1], list(counts)[1:]):
        assert counts[a] <= counts[b] + 1 and counts[b] <= counts[a] * b / a + 1, counts
    strips = map_program(_events_motion(rng, 16), dataclasses.replace(target, conv_tiles=False), chips=4)
    assert counts[16] < len(strips.cores)


def test_tile_entries_in_the_mapping_json():
    """check --json lists a tile's channels, rows and columns; its start/stop bound its flat span."""
    rng = np.random.default_rng(15)
    program = _events_motion(rng, 8)
    mapping = map_program(program, get_target("loihi2"), chips=4)
    entries = [e for e in mapping.as_dict()["cores"] if e["tile"] is not None]
    assert entries
    for entry, core in zip(mapping.as_dict()["cores"], mapping.cores):
        idx = np.arange(program.population(entry["population"]).size)[core_slices.slice_indices(entry)]
        assert core_slices.slice_size(entry) == idx.size == core.usage["neurons"]
        assert (entry["start"], entry["stop"]) == (idx.min(), idx.max() + 1)
        if entry["tile"] is not None:
            assert set(entry["tile"]) == {"shape", "channels", "rows", "cols"}
            assert core_slices.slice_label(entry).startswith(f"{entry['population']}[")
