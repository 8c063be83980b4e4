"""Workers get the environment that keeps a shard's arrays on the heap and one thread per worker:
local ones (``--workers``) from neurodeploy, remote ones from docs/dask-worker.yaml."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
import yaml

pytest.importorskip("distributed")

from distributed import Client  # noqa: E402

from neurodeploy.sharding.cluster import local_cluster, worker_environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).with_name("dask"))
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # _seen runs on workers that cannot import this file
NAMES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")


def _seen() -> dict:
    import numba

    return {**{k: os.environ.get(k) for k in NAMES}, "numba_threads": numba.get_num_threads()}


def _expected() -> dict:
    return {**{k: worker_environment()[k] for k in NAMES}, "numba_threads": 1}


def test_documented_worker_config_is_the_local_workers_environment():
    config = yaml.safe_load((ROOT / "docs" / "dask-worker.yaml").read_text())
    documented = {k: str(v) for k, v in config["distributed"]["nanny"]["pre-spawn-environ"].items()}
    assert documented == worker_environment()
    assert int(worker_environment()["MALLOC_TRIM_THRESHOLD_"]) > 65536  # not Dask's default


def test_local_workers_run_with_that_environment():
    before = os.environ.get("NUMBA_NUM_THREADS")
    with local_cluster(2) as cluster, Client(cluster) as c:
        seen = c.run(_seen)
        # The thread settings stay out of this process: numba re-reads NUMBA_NUM_THREADS when it
        # compiles and refuses one that differs from the threads it has started.
        assert os.environ.get("NUMBA_NUM_THREADS") == before
    assert len(seen) == 2 and all(s == _expected() for s in seen.values()), seen


def test_a_dask_worker_started_as_the_docs_say_gets_it(tmp_path):
    """`DASK_CONFIG=folder dask worker ...` (with its nanny) reads docs/dask-worker.yaml."""
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "dask-worker.yaml").write_text((ROOT / "docs" / "dask-worker.yaml").read_text())
    info = tmp_path / "scheduler.json"
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--no-dashboard", "--port", "0",
                               "--scheduler-file", str(info)], env=env, stderr=subprocess.DEVNULL)]
    try:
        end = time.monotonic() + 60
        while not info.exists():
            assert time.monotonic() < end, "the scheduler did not start"
            time.sleep(0.1)
        procs.append(subprocess.Popen([DASK, "worker", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                                       "--scheduler-file", str(info)], env={**env, "DASK_CONFIG": str(folder)},
                                      stderr=subprocess.DEVNULL))
        with Client(json.loads(info.read_text())["address"], timeout=30) as c:
            c.wait_for_workers(1, timeout=60)
            seen = c.run(_seen)
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)
    assert list(seen.values()) == [_expected()], seen
