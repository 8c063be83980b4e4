"""Sharded `run`, `verify` and `profile` on real Dask processes on localhost equal one process.

A local cluster (``--workers 2``), a ``dask scheduler`` with two ``dask worker`` processes started
here (``--scheduler``), and the same cluster with a worker killed while shards are running: every
output array equals the one-process run's, bit for bit.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from neurodeploy.cli import main as cli  # noqa: E402
from neurodeploy.models import data, path  # noqa: E402

SAMPLES = 96
RECORD = {"loihi2": "v,u", "spinnaker": "v,i"}
DASK = str(Path(sys.executable).with_name("dask"))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """digits_mlp compiled for loihi2 and spinnaker, 96 test inputs and the one-process outputs."""
    root = tmp_path_factory.mktemp("shards")
    x, y = data.test_set("digits_mlp")
    np.savez(root / "in.npz", input=x[:SAMPLES], labels=y[:SAMPLES])
    out = {"root": root, "in": root / "in.npz"}
    for target in ("loihi2", "spinnaker"):
        ndp = root / f"mlp.{target}.ndp"
        assert cli.main(["compile", str(path("digits_mlp")), "--target", target, "-o", str(ndp)]) == 0
        one = root / f"one.{target}.npz"
        assert cli.main(["run", str(ndp), "--input", str(out["in"]), "-o", str(one), "--record", RECORD[target]]) == 0
        out[target], out[f"one.{target}"] = ndp, one
    return out


def _same(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert list(x.files) == list(y.files)
        for key in x.files:
            assert x[key].dtype == y[key].dtype and np.array_equal(x[key], y[key]), key


def _run(files: dict, target: str, out: Path | str, *extra: str) -> None:
    args = ["run", str(files[target]), "--input", str(files["in"]), "-o", str(out), "--record", RECORD[target], *extra]
    assert cli.main(args) == 0


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes (one thread each) on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("cluster")
    info = folder / "scheduler.json"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    common = ["--scheduler-file", str(info)]
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--no-dashboard", "--port", "0", *common],
                              env=env, stderr=subprocess.DEVNULL)]
    _wait_for(info)
    worker = [DASK, "worker", "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard", *common]
    procs += [subprocess.Popen(worker, env=env, stderr=subprocess.DEVNULL) for _ in range(2)]
    address = json.loads(info.read_text())["address"]
    from distributed import Client

    with Client(address, timeout=30) as c:
        c.wait_for_workers(2, timeout=60)
    yield {"address": address, "workers": procs[1:]}
    for p in reversed(procs):
        p.terminate()
        p.wait(timeout=30)


def _wait_for(file: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not file.exists():
        assert time.monotonic() < end, f"{file} not written"
        time.sleep(0.1)


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_local_cluster_equals_one_process(files, tmp_path, target):
    out = tmp_path / "two.npz"
    _run(files, target, out, "--workers", "2", "--shard-size", "16")
    _same(files[f"one.{target}"], out)


def test_shard_sizes_and_in_process_shards_equal_one_process(files, tmp_path):
    for size in ("1", "7", "200"):
        out = tmp_path / f"s{size}.npz"
        _run(files, "loihi2", out, "--shard-size", size)
        _same(files["one.loihi2"], out)


def test_local_cluster_listens_on_loopback_only():
    import psutil

    from neurodeploy.sharding.cluster import local_cluster

    with local_cluster(2):
        me = psutil.Process()
        listening = [s.laddr.ip for p in [me, *me.children(recursive=True)]
                     for s in p.net_connections(kind="inet") if s.status == psutil.CONN_LISTEN]
    assert listening and set(listening) == {"127.0.0.1"}, listening


def test_probe_events_and_parts(files, tmp_path):
    events = tmp_path / "ev.npz"
    _run(files, "loihi2", events, "--workers", "2", "--shard-size", "10", "--probe", "lif1", "--format", "events")
    with np.load(files["one.loihi2"]) as one, np.load(events) as ev:
        assert sorted(ev.files) == ["events.lif1", "shape.lif1", "u.lif1", "v.lif1"]
        dense = np.zeros(tuple(ev["shape.lif1"]), np.uint8)
        rows = ev["events.lif1"]
        dense.reshape(dense.shape[0], dense.shape[1], -1)[rows[:, 0], rows[:, 1], rows[:, 2]] = 1
        assert np.array_equal(dense, one["spikes.lif1"])
        assert np.array_equal(ev["v.lif1"], one["v.lif1"])
    from neurodeploy.sharding.tracestore import read_parts

    folder = tmp_path / "parts"
    _run(files, "loihi2", f"{folder}/", "--shard-size", "40", "--probe", "li1")
    parts = list(read_parts(folder))
    assert [(a, b) for a, b, _ in parts] == [(0, 40), (40, 80), (80, 96)]
    with np.load(files["one.loihi2"]) as one:
        assert np.array_equal(np.concatenate([p["v.li1"] for _, _, p in parts]), one["v.li1"])


def test_external_scheduler_equals_one_process(files, scheduler, tmp_path):
    out = tmp_path / "ext.npz"
    _run(files, "loihi2", out, "--scheduler", scheduler["address"], "--shard-size", "8", "--align", "target")
    _same(files["one.loihi2"], out)


def test_killed_worker_loses_nothing(files, scheduler, tmp_path, monkeypatch):
    """A worker killed after the first shard arrives: its shards run again elsewhere, none twice."""
    from neurodeploy.sharding import tracestore

    added: list[int] = []
    original = tracestore.PartStore.add

    def add_then_kill(self, shard, arrays):
        original(self, shard, arrays)
        added.append(shard.index)
        if len(added) == 1:
            os.kill(scheduler["workers"][0].pid, signal.SIGKILL)

    monkeypatch.setattr(tracestore.PartStore, "add", add_then_kill)
    out = tmp_path / "killed.npz"
    _run(files, "loihi2", out, "--scheduler", scheduler["address"], "--shard-size", "4")
    assert scheduler["workers"][0].wait(timeout=10) == -signal.SIGKILL
    assert sorted(added) == list(range(SAMPLES // 4))
    _same(files["one.loihi2"], out)


def test_verify_and_profile_on_a_local_cluster(files, capsys):
    for target in ("loihi2", "spinnaker"):
        ndp, inputs = str(files[target]), str(files["in"])
        assert cli.main(["verify", ndp, "--input", inputs, "--json"]) == 0
        one = json.loads(capsys.readouterr().out)
        assert cli.main(["verify", ndp, "--input", inputs, "--json", "--workers", "2", "--shard-size", "24"]) == 0
        two = json.loads(capsys.readouterr().out)
        for pop, entry in one["populations"].items():
            rms = entry.pop("v_rms_error", None)
            assert two["populations"][pop].pop("v_rms_error", None) == pytest.approx(rms, rel=1e-12)
        assert one == two
    p1, p2 = files["root"] / "p1.json", files["root"] / "p2.json"
    assert cli.main(["profile", str(files["spinnaker"]), "--input", str(files["in"]), "--json", str(p1)]) == 0
    assert cli.main(["profile", str(files["spinnaker"]), "--input", str(files["in"]), "--json", str(p2),
                     "--workers", "2", "--shard-size", "32"]) == 0
    assert p1.read_bytes() == p2.read_bytes()


def test_errors_are_one_line(files, tmp_path, capsys):
    base = ["run", str(files["loihi2"]), "--input", str(files["in"]), "-o", str(tmp_path / "x.npz")]
    cases = {("--probe", "nope"): "--probe nope: no such population; the program has lif1, li1",
             ("--workers", "0"): "--workers must be >= 1, got 0",
             ("--workers", "2", "--scheduler", "tcp://127.0.0.1:1"): "give one",
             ("--workers", "2", "--backend", "lava"): "drop them to run on --backend lava",
             ("-o", str(tmp_path / "y.np"), "--workers", "2"): "y.np: output must end in .npz"}
    for extra, message in cases.items():
        assert cli.main(base + list(extra)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_an_error_on_a_worker_is_one_line_and_leaves_nothing(files, tmp_path, capsys):
    x = np.load(files["in"])["input"].copy()
    x[50, 3, 5] = np.nan
    bad = tmp_path / "nan.npz"
    np.savez(bad, input=x)
    out = tmp_path / "out.npz"
    args = ["run", str(files["loihi2"]), "--input", str(bad), "-o", str(out), "--workers", "2", "--shard-size", "16"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {bad}: array 'input': contains NaN values; inputs must be finite"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.npz"]
