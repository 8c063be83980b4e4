"""A profile counted shard by shard (per-shard reductions merged) equals one run over every sample.

Reference: the emulator's traces of all samples in one run, counted at once (``traces=``). The
profile in shards of 1, 3 and all samples, and the merge of hand-cut shards, must give the same
JSON bit for bit on every target, for a zoo model with a conv layer.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from neurodeploy.analysis import profile as profile_mod
from neurodeploy.analysis.profile import Reductions, merge, profile, record_of, reduce_inputs
from neurodeploy.analysis.verify import pad_for_latency
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.emulator import run_program
from neurodeploy.format.program import from_manifest
from neurodeploy import targets
from neurodeploy.models import data, path

warnings.filterwarnings("ignore", category=UserWarning)
SAMPLES = 7
TARGETS = ("loihi2", "spinnaker", "emulator")


@pytest.fixture(scope="module")
def conv_inputs() -> np.ndarray:
    x, _ = data.test_set("digits_conv")
    return x[:SAMPLES]


@pytest.fixture(scope="module", params=TARGETS)
def conv_artifact(request):
    compiled = compile_model(path("digits_conv"), Options(target=request.param))
    art = compiled.to_artifact()
    return art, from_manifest(art.manifest["program"], art.arrays)


def _one_run(art, program, x: np.ndarray, pad: bool = True) -> dict:
    """The profile of the traces of one emulator run over every sample (counted at once)."""
    inputs = pad_for_latency(program, x) if pad else x
    traces = run_program(program, inputs, record=record_of(program), overflow=True)
    return profile(art, x, pad=pad, traces=traces)


def _text(p: dict) -> str:
    return json.dumps(p, allow_nan=False)


def test_shards_of_any_size_equal_one_run(conv_artifact, conv_inputs):
    art, program = conv_artifact
    for pad in (True, False):
        whole = _text(_one_run(art, program, conv_inputs, pad))
        for size in (1, 3, SAMPLES, None):
            assert _text(profile(art, conv_inputs, pad=pad, shard_size=size)) == whole, (program.target, pad, size)


def test_merging_hand_cut_shards(conv_artifact, conv_inputs):
    """Shards reduced on their own (as workers do) and merged equal the reductions of all samples."""
    art, program = conv_artifact
    whole = reduce_inputs(art, program, conv_inputs, shard_size=SAMPLES)
    cuts = [(0, 2), (2, 3), (3, 7)]
    parts = [reduce_inputs(art, program, conv_inputs[a:b]) for a, b in cuts]
    merged = merge(parts)
    assert (merged.samples, merged.steps, merged.input_steps) == (whole.samples, whole.steps, whole.input_steps)
    assert merged.per_sample.keys() == whole.per_sample.keys() and merged.flags == whole.flags
    for key, value in whole.per_sample.items():
        assert merged.per_sample[key].dtype == value.dtype and np.array_equal(merged.per_sample[key], value), key
    for key, value in whole.maxima.items():
        assert np.array_equal(merged.maxima[key], value), key
    assert _text(profile(art, reductions=merged)) == _text(_one_run(art, program, conv_inputs))
    # per sample means per sample: the second shard's numbers are the third sample's
    spikes = [k for k in whole.per_sample if k.startswith("population.spikes.")]
    assert spikes and all(np.array_equal(parts[1].per_sample[k], whole.per_sample[k][2:3]) for k in spikes)


def test_spinnaker_slice_peaks_merge_as_maxima(conv_inputs, monkeypatch):
    """With a budget that only small slices meet, the largest neurons per core found from shards of
    one sample equals the one found over every sample, and both match a direct count."""
    art = compile_model(path("digits_conv"), Options(target="spinnaker")).to_artifact()
    program = from_manifest(art.manifest["program"], art.arrays)
    inputs = pad_for_latency(program, conv_inputs)
    traces = run_program(program, inputs, record=(), overflow=True)
    x = {next(iter(program.inputs)): np.asarray(inputs).reshape(SAMPLES, inputs.shape[1], -1).astype(np.int64)}
    x.update({p.name: traces[f"spikes.{p.name}"].reshape(SAMPLES, inputs.shape[1], -1).astype(np.int64)
              for p in program.populations if p.spiking})
    direct = _direct_slice_peaks(program, x, (1, 5, 40, 256))
    n_mid = 40
    dt_ms = float(art.manifest["semantics"]["dt"]) * 1e3
    limit = direct[n_mid] / dt_ms
    assert direct[1] < direct[n_mid] < direct[256], direct  # a budget between the smallest and the largest slice
    monkeypatch.setitem(targets.get("spinnaker").costs, "events_per_ms_per_core", (limit, limit))
    whole = profile(art, conv_inputs, traces=traces)
    best = whole["realtime"]["max_neurons_per_core_real_time"]["conservative"]
    assert best is not None and n_mid <= best < 256
    for size in (1, 3):
        sharded = profile(art, conv_inputs, shard_size=size)
        assert sharded["realtime"] == whole["realtime"], size


def _direct_slice_peaks(program, activity: dict, sizes: tuple[int, ...]) -> dict[int, int]:
    """The most stored words one step brings to a slice of n neurons, from dense matrices."""
    per_target: dict[str, np.ndarray] = {}
    for conn in program.connections:
        _, stored = profile_mod.synapse_matrices(conn)
        dense = stored.toarray()
        ev = np.einsum("btn,mn->btm", np.clip(activity[conn.source], 0, None), dense)
        per_target[conn.target] = per_target.get(conn.target, 0) + ev
    out = {}
    for n in sizes:
        worst = 0
        for ev in per_target.values():
            for start in range(0, ev.shape[2], n):
                worst = max(worst, int(ev[:, :, start:start + n].sum(axis=2).max()))
        out[n] = worst
    return out


def test_reductions_alone_need_no_inputs_and_bad_merges_are_refused(conv_inputs):
    art = compile_model(path("digits_conv"), Options(target="loihi2")).to_artifact()
    program = from_manifest(art.manifest["program"], art.arrays)
    part = reduce_inputs(art, program, conv_inputs[:2])
    other = reduce_inputs(art, program, conv_inputs[:2], pad=False)
    with pytest.raises(Exception, match="differ in steps"):
        merge([part, other])
    with pytest.raises(Exception, match="no shards"):
        merge([])
    with pytest.raises(Exception, match="needs inputs"):
        profile(art)
    assert isinstance(part, Reductions) and profile(art, reductions=part)["samples"] == 2


def test_cli_shards_in_this_process_equal_one_process(conv_inputs, tmp_path):
    """`profile --shard-size 3` (shards run here, through the workers' task) prints and writes the
    same profile as the one-process command, padded and not."""
    from neurodeploy.cli import main as cli

    ndp, inputs = tmp_path / "conv.spinnaker.ndp", tmp_path / "in.npz"
    np.savez(inputs, input=conv_inputs)
    assert cli.main(["compile", str(path("digits_conv")), "--target", "spinnaker", "-o", str(ndp)]) == 0
    for extra in ([], ["--no-pad"]):
        one, sharded = tmp_path / "one.json", tmp_path / "sharded.json"
        base = ["profile", str(ndp), "--input", str(inputs), *extra]
        assert cli.main(base + ["--json", str(one)]) == 0
        assert cli.main(base + ["--json", str(sharded), "--shard-size", "3"]) == 0
        assert one.read_bytes() == sharded.read_bytes(), extra
