"""The SpiNNaker backend (backends/spinnaker) against sPyNNaker 7.4.1 on a virtual board.

Every zoo model and a few random programs (delays beyond the cores' 32 slots, shifts 0..16,
saturated and zero words, per-neuron parameters) are mapped by sPyNNaker; the ring-buffer
shifts, the synaptic words and delays it generated (read back from its connection holders) and
the s1615 bits of its parameter encoder must equal the artifact's, and its cores the compiler's
mapping. Also: the exported PyNN script runs, the user's ~/.spynnaker.cfg is never touched, and
an unreachable machine gives a clear error. Tests that need sPyNNaker skip without it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from neurodeploy.backends.spinnaker import fast_rows, network
from neurodeploy.backends.spinnaker.backend import child_env, machine, write_config
from neurodeploy.errors import InputDataError, NeurodeployError, OptionError
from neurodeploy.format.program import Program, QConnection, QPopulation

from helpers.conv_programs import conv_matrix
from helpers.spinnaker_script import run_exported

HAVE_SPYNNAKER = importlib.util.find_spec("spynnaker") is not None and importlib.util.find_spec("pyNN") is not None
needs_spynnaker = pytest.mark.skipif(
    not HAVE_SPYNNAKER, reason="sPyNNaker 7.4.1 is not installed (pip install -c constraints.txt 'spynnaker==1!7.4.1')")


def _user_cfg_state() -> dict:
    """Existence and mtime of every place sPyNNaker looks for (or writes) a user config."""
    home = Path(os.path.expanduser("~"))
    places = [home / ".spynnaker.cfg", home / ".config" / ".spynnaker.cfg", Path("/etc/xdg/.spynnaker.cfg"),
              Path.cwd() / "spynnaker.cfg", Path.cwd() / "reports"]
    return {str(p): (p.stat().st_mtime_ns if p.exists() else None) for p in places}


# ------------------------------------------------------------------ programs

def random_program(seed: int, max_delay: int = 1, dt_us: int = 1000, n_pops: int = 3, max_size: int = 300):
    """A spinnaker program with random integers in every field, and a mapping with uneven core sizes."""
    from neurodeploy.backends.lava.backend import program_artifact

    rng = np.random.default_rng(seed)
    ts_bits = int(np.round(dt_us / 1000.0 * 32768))
    sizes = {"input": int(rng.integers(1, 80))}
    pops, shifts = [], {}
    for i in range(n_pops):
        name, n = f"p{i}", int(rng.integers(1, max_size))
        sizes[name] = n
        model = "IF_curr_exp" if rng.random() < 0.5 else "IF_curr_delta"
        b = lambda lo, hi: rng.integers(lo, hi, size=n).astype(np.int64)  # noqa: E731
        params = {"v_init": b(-2**20, 2**20), "v_rest": b(-2**18, 2**18), "v_reset": b(-2**18, 2**18),
                  "v_thresh": np.where(rng.random(n) < 0.2, 2**31 - 1, b(-2**31, 2**28)),
                  "i_offset": b(-2**16, 2**16), "tau_m": b(1, 2**22), "cm": b(1, 2**22),
                  "tau_refrac": np.zeros(n, np.int64),
                  "tau_syn_e": b(1, 2**20) if model == "IF_curr_exp" else np.zeros(n, np.int64),
                  "tau_syn_i": b(1, 2**20) if model == "IF_curr_exp" else np.zeros(n, np.int64),
                  "isyn_exc_init": b(0, 2**16), "isyn_inh_init": b(0, 2**16)}
        if rng.random() < 0.5:
            params = {k: np.full(n, v[0]) for k, v in params.items()}
        pops.append(QPopulation(name, model, "LIF", (n,), True, np.ones(n), params, 1))
        shifts[name] = [int(rng.integers(0, 17)), int(rng.integers(0, 17))]
    names = ["input"] + [p.name for p in pops]
    conns = []
    for j in range(n_pops + 1):
        src = names[int(rng.integers(0, len(names)))] if j else "input"
        tgt = pops[int(rng.integers(0, n_pops))].name if j else pops[0].name
        mask = rng.random((sizes[tgt], sizes[src])) < rng.uniform(0.02, 0.5)
        m = scipy.sparse.csr_matrix(mask.astype(np.int8))
        m.sort_indices()
        words = rng.integers(0, 65536, size=m.nnz).astype(np.uint16)
        words[rng.random(m.nnz) < 0.05] = 0
        words[rng.random(m.nnz) < 0.05] = 0xFFFF
        arrays = {"weight": words, "synapse_type": (rng.random(m.nnz) < 0.4).astype(np.uint8),
                  "indices": m.indices.astype(np.int64), "indptr": m.indptr.astype(np.int64)}
        attrs = {"ring_buffer_shift": shifts[tgt], "synapses": int(m.nnz)}
        if max_delay > 1 and rng.random() < 0.7:
            attrs["delay"] = 0
            arrays["delay"] = rng.integers(1, max_delay + 1, size=m.nnz).astype(np.int64)
        else:
            attrs["delay"] = int(rng.integers(1, max_delay + 1))
        conns.append(QConnection(f"c{j}", src, tgt, "sparse", sizes[src], sizes[tgt], src == tgt, arrays, attrs))
    program = Program("spinnaker", {"input": (sizes["input"],)}, pops, conns, {},
                      {"time_step_ms": ts_bits / 32768, "time_step_bits": ts_bits, "ring_buffer_shift": shifts})
    art = program_artifact(program)
    per_core = {name: int(rng.choice([min(s, 256), max(1, s // 2 + 1), max(1, min(s, 37))])) for name, s in sizes.items()}
    cores = [{"population": name, "start": start, "stop": min(s, start + per_core[name])}
             for name, s in sizes.items() for start in range(0, s, per_core[name])]
    art.manifest["mapping"] = {"cores": cores, "cores_used": len(cores), "chips_used": None, "limits": []}
    return art


def zoo_artifacts():
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.models import paths

    return {name: compile_model(path, Options(target="spinnaker")).to_artifact() for name, path in paths().items()}


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """Every zoo model and three random programs mapped in one sPyNNaker process."""
    if not HAVE_SPYNNAKER:
        pytest.skip("sPyNNaker 7.4.1 is not installed")
    from neurodeploy.backends.spinnaker import map_many

    folder = tmp_path_factory.mktemp("spinnaker")
    before = _user_cfg_state()
    arts = zoo_artifacts()
    arts.update({"random_delays": random_program(0, max_delay=60), "random_dt_100us": random_program(3, dt_us=100),
                 "random_small_cores": random_program(5, max_delay=40)})
    names = list(arts)
    readback = [folder / f"{name}.npz" for name in names]
    reports = map_many([(arts[n], None) for n in names], readback=readback, steps=5, record=["v"])
    return {"arts": arts, "reports": dict(zip(names, reports)), "readback": dict(zip(names, readback)),
            "before": before, "folder": folder}


# ------------------------------------------------------------------ mapped on a virtual board

ALL = ["digits_mlp", "digits_conv", "temporal_rnn", "lif_paper", "random_delays", "random_dt_100us",
       "random_small_cores"]



def _synapse_list(conn) -> dict:
    """A connection's synapses in CSR form; a conv kernel expanded by pushing unit vectors through the
    float conv (helpers.conv_programs.conv_matrix): an oracle independent of the backend's index arithmetic."""
    if conn.kind != "conv":
        return conn.arrays
    present = conv_matrix(conn, np.ones(conn.arrays["weight"].shape)) != 0
    rows, cols = np.nonzero(present)
    words, types = conv_matrix(conn, conn.arrays["weight"]), conv_matrix(conn, conn.arrays["synapse_type"])
    return {"indices": cols, "indptr": np.concatenate([[0], np.cumsum(present.sum(axis=1))]),
            "weight": words[rows, cols].astype(np.uint16), "synapse_type": types[rows, cols].astype(np.uint8)}


@needs_spynnaker
@pytest.mark.parametrize("name", ALL)
def test_spynnaker_writes_the_artifacts_integers(mapped, name):
    from neurodeploy.format.program import from_manifest

    art, report = mapped["arts"][name], mapped["reports"][name]
    assert report["virtual_board"] and not report["spikes_produced"]
    assert "no spikes" in report["note"]
    program = from_manifest(art.manifest["program"], art.arrays)
    plan = network.plan(program, art.manifest.get("mapping"), art.manifest.get("semantics"))
    # shifts: the population vertex's and those written per core equal the compiler's
    for pop, entry in report["shifts"].items():
        want = list(program.attrs["ring_buffer_shift"][pop])
        assert entry["population_vertex"] == want, pop
        assert entry["cores"] and all(c["shifts"] == want for c in entry["cores"]), pop
        assert all(c["weight_scales"] == [2.0 ** (15 - s) for s in want] for c in entry["cores"]), pop
    # synapses: compare the read-back words and delays with the artifact's CSR, independently of the runner
    with np.load(mapped["readback"][name]) as rb:
        got = {k: rb[k] for k in rb.files}
    for conn in program.connections:
        arrays = _synapse_list(conn)
        indptr = arrays["indptr"]
        post = np.repeat(np.arange(conn.n_out), np.diff(indptr))
        pre = arrays["indices"]
        delay = conn.attrs.get("delay", 0) + (arrays["delay"] if "delay" in arrays else 0)
        delay = np.broadcast_to(delay, pre.shape)
        for kind, tag in ((0, "exc"), (1, "inh")):
            sel = arrays["synapse_type"] == kind
            key = f"{conn.name}.{tag}"
            if not sel.any():
                assert f"{key}.pre" not in got
                continue
            want = np.lexsort((pre[sel], post[sel]))
            have = np.lexsort((got[f"{key}.pre"], got[f"{key}.post"]))
            assert np.array_equal(got[f"{key}.pre"][have], pre[sel][want]), key
            assert np.array_equal(got[f"{key}.post"][have], post[sel][want]), key
            assert np.array_equal(got[f"{key}.word"][have], arrays["weight"][sel][want].astype(np.int64)), key
            assert np.array_equal(got[f"{key}.delay_steps"][have], delay[sel][want]), key
    # parameters through sPyNNaker's s1615 encoder; cores and slices as the compiler mapped them
    assert all(p["equal"] for p in report["parameters"].values()), report["parameters"]
    assert report["matches"] == {k: True for k in report["matches"]}, report["matches"]
    for p in plan.populations:
        assert report["populations"][p.name]["cores"] == p.cores


@needs_spynnaker
def test_delay_extension_cores_are_used_and_reported(mapped):
    delayed = [mapped["reports"][n]["cores"]["delay_extension"] for n in ("random_delays", "random_small_cores")]
    assert max(delayed) > 0, delayed
    report = mapped["reports"]["digits_mlp"]
    assert report["cores"]["delay_extension"] == 0
    assert report["routing_entries"]["per_chip"] and report["routing_entries"]["max"] >= 1
    assert all(c["sdram_bytes"] and c["sdram_bytes"] > 0 for c in report["placements"] if c["role"] != "system")
    assert report["chips"]["used"] == report["chips"]["predicted"] == 1


@needs_spynnaker
def test_user_config_untouched(mapped):
    assert _user_cfg_state() == mapped["before"]


# ------------------------------------------------------------------ export

def _export(art, path: Path) -> list[Path]:
    from neurodeploy.format import artifact as artifact_format
    from neurodeploy.cli import export as cli_export

    ndp = path.parent / "model.ndp"
    artifact_format.write(art, ndp)
    parser = argparse.ArgumentParser()
    cli_export.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(ndp), "--format", "pynn", "-o", str(path)])
    assert cli_export.cmd_export(args) == 0
    return [path, path.with_suffix(".npz")]


def test_export_writes_a_script_and_its_data(tmp_path):
    art = zoo_artifacts()["temporal_rnn"]
    script, data = _export(art, tmp_path / "net.py")
    text = script.read_text()
    compile(text, str(script), "exec")
    assert "import pyNN.spiNNaker as sim" in text and "max_expected_summed_weight" in text
    assert '"n_synapse_cores": 0' in text
    with np.load(data, allow_pickle=False) as d:
        lists = {k: d[k] for k in d.files if k.endswith((".exc", ".inh"))}
    total = sum(len(v) for v in lists.values())
    assert total == sum(int(c.arrays["weight"].size) for c in network_program(art).connections)
    with pytest.raises(OptionError):
        _export(art, tmp_path / "net.txt")


def network_program(art):
    from neurodeploy.format.program import from_manifest

    return from_manifest(art.manifest["program"], art.arrays)


@needs_spynnaker
def test_exported_script_runs_on_a_virtual_board(tmp_path):
    art = random_program(7, max_delay=40)  # per-neuron parameters, delays, inhibitory lists
    script, _ = _export(art, tmp_path / "net.py")
    x = np.zeros((2, 6) + tuple(network_program(art).inputs["input"]), dtype=np.uint8)
    x[:, ::2, 0] = 1
    out = run_exported(script, x, tmp_path)
    for p in network_program(art).populations:
        assert out[f"spikes.{p.name}"].shape == (2, 6) + p.shape
        assert out[f"v.{p.name}"].shape == (2, 6) + p.shape


# ------------------------------------------------------------------ command line, machines, errors

@needs_spynnaker
def test_cli_run_on_a_virtual_board_maps_without_running_and_exits_1(tmp_path, capsys):
    """A virtual board maps and checks the network; nothing runs, so `run` writes no -o and exits 1."""
    from neurodeploy.format import artifact as artifact_format
    from neurodeploy.cli.main import main

    ndp = tmp_path / "m.ndp"
    artifact_format.write(zoo_artifacts()["lif_paper"], ndp)
    np.savez(tmp_path / "x.npz", input=np.ones((1, 20, 1), dtype=np.uint8))
    out = tmp_path / "out.npz"
    assert main(["run", str(ndp), "--input", str(tmp_path / "x.npz"), "-o", str(out), "--backend", "spinnaker"]) == 1
    text = capsys.readouterr().out
    assert "NOT run: no spikes exist" in text and "all equal" in text
    assert not out.exists()
    report = json.loads((tmp_path / "out.spinnaker.json").read_text())
    assert report["virtual_board"] and all(report["matches"].values())


@needs_spynnaker
def test_unreachable_machine_names_the_host_and_what_to_try(tmp_path):
    from neurodeploy.backends.spinnaker import SpinnakerMachineError, run

    art = zoo_artifacts()["lif_paper"]
    before = _user_cfg_state()
    with pytest.raises(SpinnakerMachineError) as info:
        run(art, np.zeros((1, 5, 1), dtype=np.uint8), host="spinnaker-board.invalid", timeout=300)
    message = str(info.value)
    assert "spinnaker-board.invalid" in message
    assert "neurons per core" in message and "time scale factor" in message
    assert _user_cfg_state() == before


def test_config_is_written_for_each_kind_of_machine(tmp_path, monkeypatch):
    monkeypatch.delenv("NEURODEPLOY_SPINNAKER_MACHINE", raising=False)
    monkeypatch.delenv("NEURODEPLOY_SPINNAKER_SPALLOC", raising=False)
    virtual = write_config(tmp_path / "v", machine()).read_text()
    assert "virtual_board = True" in virtual and "version = 5" in virtual
    assert f"default_report_file_path = {tmp_path / 'v'}" in virtual
    board = write_config(tmp_path / "b", machine("10.11.12.13", board_version=3, time_scale_factor=4)).read_text()
    assert "machine_name = 10.11.12.13" in board and "version = 3" in board and "virtual_board" not in board
    assert "time_scale_factor = 4" in board and "write_energy_report = True" in board
    spalloc = write_config(tmp_path / "s", machine(spalloc="https://spalloc.example/")).read_text()
    assert "spalloc_server = https://spalloc.example/" in spalloc
    monkeypatch.setenv("NEURODEPLOY_SPINNAKER_MACHINE", "board-from-env")
    assert machine().host == "board-from-env" and not machine().virtual
    with pytest.raises(OptionError):
        machine("a", "http://b")
    with pytest.raises(OptionError):
        machine("a", board_version=4)
    env = child_env(tmp_path / "v")
    assert env["HOME"] == str(tmp_path / "v") and env["XDG_CONFIG_HOME"].startswith(str(tmp_path / "v"))


def test_run_without_a_machine_refuses(monkeypatch):
    from neurodeploy.backends.spinnaker import SpinnakerBackendError, run

    monkeypatch.delenv("NEURODEPLOY_SPINNAKER_MACHINE", raising=False)
    monkeypatch.delenv("NEURODEPLOY_SPINNAKER_SPALLOC", raising=False)
    with pytest.raises(SpinnakerBackendError, match="virtual board"):
        run("unused.ndp", np.zeros((1, 1, 1)))


# ------------------------------------------------------------------ pure parts

def test_plan_numbers_round_trip():
    art = random_program(11, max_delay=9)
    program = network_program(art)
    plan = network.plan(program, art.manifest["mapping"])
    for p, q in zip(plan.populations, program.populations):
        for name, values in p.params.items():
            assert np.array_equal(np.round(values * 32768).astype(np.int64), p.bits[name])
        for kind in (0, 1):  # the passed W gives the compiler's shift under sPyNNaker's rule
            assert network.spynnaker_shift(p.max_expected_summed_weight[kind]) == p.shifts[kind]
    for proj in plan.projections:
        assert np.array_equal(np.rint(proj.weight * network.weight_scale(proj.shift)), proj.word)
        order = np.lexsort((proj.post, proj.pre))
        assert np.array_equal(order, np.arange(proj.synapses))  # sorted by (pre, post), see network._projections


@pytest.mark.parametrize("dt_us", [1, 7, 100, 1000, 1234])
def test_spike_times_come_back_as_the_same_ticks(dt_us):
    ticks = np.arange(0, 200_000, 7)
    assert np.array_equal(network.spike_ticks(network.spike_time_ms(ticks, dt_us), dt_us), ticks)


def test_more_than_one_spike_per_tick_is_refused():
    art = random_program(2)
    plan = network.plan(network_program(art), art.manifest["mapping"])
    n = plan.sources[0].size
    x = np.zeros((1, 4, n), dtype=np.int64)
    x[0, 2, 0] = 2
    with pytest.raises(InputDataError, match="at most one spike"):
        network.spike_lists(plan, x)
    x[0, 2, 0] = 1
    batch, steps, lists = network.spike_lists(plan, x)
    assert (batch, steps) == (1, 4) and lists["input"][0][0] == [2]


def test_wrong_target_is_refused():
    program = network_program(random_program(1))
    program.target = "loihi2"
    with pytest.raises(NeurodeployError, match="--target spinnaker"):
        network.plan(program)


def _original_rows(idx, n_rows, data, max_n):
    """sPyNNaker 7.4.1's AbstractSDRAMSynapseDynamics.convert_per_connection_data_to_rows, verbatim."""
    return [data[idx == i][:max_n].reshape(-1) for i in range(n_rows)]


@pytest.mark.parametrize("seed", range(40))
def test_fast_rows_equal_the_original(seed):
    rng = np.random.default_rng(seed)
    n_rows = int(rng.integers(0, 60))
    n = int(rng.integers(0, 2000))
    idx = rng.integers(0, max(1, n_rows + 3), size=n).astype(rng.choice([np.uint32, np.int64]))  # some >= n_rows
    width = int(rng.choice([1, 4, 8]))
    data = rng.integers(0, 256, size=(n, width)).astype(np.uint8)
    max_n = int(rng.integers(0, 50))
    got, want = fast_rows.rows(idx, n_rows, data, max_n), _original_rows(idx, n_rows, data, max_n)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape and np.array_equal(g, w)
    if HAVE_SPYNNAKER:
        from spynnaker.pyNN.models.neuron.synapse_dynamics.abstract_sdram_synapse_dynamics import (
            AbstractSDRAMSynapseDynamics,
        )

        original = AbstractSDRAMSynapseDynamics.convert_per_connection_data_to_rows
        if original is not fast_rows._method:
            for g, w in zip(got, original(None, idx, n_rows, data, max_n)):
                assert np.array_equal(g, w)
