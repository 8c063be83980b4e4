"""Where shards run: in this process, on a local Dask cluster, or on an existing one.

``--workers N`` starts a local cluster of N worker processes with one thread each, every socket
on 127.0.0.1 (nothing is reachable from another machine); ``--scheduler ADDRESS`` connects to a
running ``dask scheduler``. Dask does the scheduling, the transfers and the recovery: a shard
whose worker dies is run again on another one (``retries`` covers errors raised in a task).

:func:`map_shards` submits at most ``window`` shards ahead of the results the caller has taken,
and hands each result over as it arrives (any order; each shard exactly once), so the client
holds a bounded number of shards whatever the size of the data set.
"""
from __future__ import annotations

import logging
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from neurodeploy.errors import NeurodeployError, OptionError
from neurodeploy.sharding.shard import Shard

RETRIES = 2  # a task that raises is tried this many more times; a dead worker's task is always rerun
CONNECT_TIMEOUT_S = 30


@dataclass(frozen=True)
class Where:
    """``workers`` > 0: a local cluster; ``scheduler``: an existing one; neither: this process."""

    workers: int | None = None
    scheduler: str | None = None

    @property
    def distributed(self) -> bool:
        return bool(self.workers or self.scheduler)

    def check(self) -> None:
        if self.workers is not None and self.scheduler:
            raise OptionError("--workers starts a local cluster and --scheduler names an existing one: give one")
        if self.workers is not None and self.workers < 1:
            raise OptionError(f"--workers must be >= 1, got {self.workers}")


def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise OptionError("--workers and --scheduler need dask and distributed: pip install 'neurodeploy[dask]'") \
            from None
    return distributed


@contextmanager
def client(where: Where) -> Iterator[Any]:
    """A ``distributed.Client`` for ``where`` (closed, with a local cluster, on exit)."""
    distributed = _dask()
    if where.scheduler:
        try:
            c = distributed.Client(where.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise OptionError(f"--scheduler {where.scheduler}: cannot connect ({exc}); start one with "
                              f"`dask scheduler` or use --workers N for a local cluster") from None
        with c:
            yield c
        return
    with local_cluster(where.workers or 1) as cluster, distributed.Client(cluster) as c:
        yield c


HEAP_BYTES = 256 << 20
"""glibc's mmap and trim thresholds in local workers, with one malloc arena: a shard's arrays (tens
of MB with the default shard size) come from the heap and are reused by the next shard. Dask's own
setting (MALLOC_TRIM_THRESHOLD_=65536) maps and zeroes them afresh for every shard, which made 8
shards of events_motion 1.6x slower (0.41 s vs 0.25 s); and a task runs in a worker thread, whose
own arena holds at most 64 MB per heap, so larger arrays were mapped afresh too (13 shards of 80
samples: 1.5 s vs 1.1 s with the one arena). See docs/dask.md for remote workers."""


def heap_environment() -> dict[str, str]:
    """glibc's settings for a worker process (read when the process starts, so set before it does)."""
    return {"MALLOC_TRIM_THRESHOLD_": str(HEAP_BYTES), "MALLOC_MMAP_THRESHOLD_": str(HEAP_BYTES), "MALLOC_ARENA_MAX": "1"}


def thread_environment() -> dict[str, str]:
    """One thread per worker process, the compiled kernels included (read when numba is first imported)."""
    return {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def worker_environment() -> dict[str, str]:
    """Everything a worker runs with (docs/dask-worker.yaml gives remote workers the same)."""
    return {**heap_environment(), **thread_environment()}


@contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """N single-threaded worker processes and their scheduler, listening on 127.0.0.1 only.

    The heap settings go in Dask's pre-spawn environment, which its nanny also writes into this
    process's ``os.environ`` (harmless: glibc read its own at start-up; they reach only processes
    started later). The thread settings go only to the workers: numba re-reads NUMBA_NUM_THREADS
    when it compiles, and refuses a value other than the threads it has already started."""
    import dask

    distributed = _dask()
    spawn_env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in heap_environment().items()}
    with dask.config.set(spawn_env):  # read when each worker's nanny is made (a restarted worker keeps it)
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", protocol="tcp",
            dashboard_address=None, silence_logs=logging.CRITICAL,  # errors reach the client as one line
            env=thread_environment())
    try:
        yield cluster
    finally:
        cluster.close()


def map_shards(where: Where, task: Callable[[Any, Shard], Any], spec: Any, shards: Sequence[Shard],
               on_result: Callable[[Any], None], *, window: int | None = None) -> None:
    """Run ``task(spec, shard)`` for every shard where ``where`` says; ``on_result`` gets each result once."""
    map_jobs(where, task, [(spec, shard) for shard in shards], on_result, window=window)


def map_jobs(where: Where, task: Callable[[Any, Shard], Any], jobs: Sequence[tuple[Any, Shard]],
             on_result: Callable[[Any], None], *, window: int | None = None) -> None:
    """``task(spec, shard)`` for every (spec, shard) job, on one cluster; results in any order, each once."""
    if not where.distributed:
        for spec, shard in jobs:
            on_result(task(spec, shard))
        return
    with client(where) as c:
        _map_on(c, task, jobs, on_result, window)


def _map_on(c: Any, task: Callable, jobs: Sequence[tuple[Any, Shard]], on_result: Callable[[Any], None],
            window: int | None) -> None:
    """Keep ``window`` jobs in flight on client ``c``; hand results over as they complete."""
    from distributed import as_completed

    window = window or 2 * max(len(c.scheduler_info(n_workers=-1).get("workers", {})), 1)
    pending = list(jobs)
    futures = as_completed()
    for _ in range(min(window, len(pending))):
        futures.add(_submit(c, task, *pending.pop(0)))
    for future in futures:
        result = future.result()  # a task's error is raised here; leaving the client cancels the rest
        future.release()
        if isinstance(result, Failed):
            raise result.error
        on_result(result)
        if pending:
            futures.add(_submit(c, task, *pending.pop(0)))


def _submit(c: Any, task: Callable, spec: Any, shard: Shard) -> Any:
    key = f"{task.__name__}-{shard.index}-{uuid.uuid4().hex[:12]}"  # unique on a scheduler shared by clients
    return c.submit(guarded, task, spec, shard, pure=False, retries=RETRIES, key=key)


@dataclass
class Failed:
    """A task's NeurodeployError (bad input, option or file), returned rather than raised: running it
    again would fail the same way, so Dask's retries are kept for the errors that may pass."""

    error: NeurodeployError


def guarded(task: Callable[[Any, Shard], Any], spec: Any, shard: Shard) -> Any:
    """``task(spec, shard)`` on a worker, with this project's own errors returned as :class:`Failed`."""
    try:
        return task(spec, shard)
    except NeurodeployError as exc:
        return Failed(exc)


def progress(total: int, unit: str = "sample") -> Any:
    """One progress bar (stderr, shown on a terminal) over every shard."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc="emulate", disable=not sys.stderr.isatty(), leave=False)
