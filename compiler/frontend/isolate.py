"""Run a function in a forked child process, so that a crash or a hang in C code cannot take
the caller down: it becomes a ChildCrashed or ChildTimeout exception instead.

Used by the reader: a damaged HDF5 file can make the HDF5 library segfault or loop forever.
"""
from __future__ import annotations

import faulthandler
import os
import pickle
import select
import signal
import time
import warnings
from typing import Any, Callable

AVAILABLE = hasattr(os, "fork")


class ChildCrashed(Exception):
    """The child died without an answer (e.g. a segmentation fault); the message says how."""


class ChildTimeout(Exception):
    """The child did not answer in time and was killed."""


def call_isolated(func: Callable[..., Any], *args: Any, timeout: float) -> Any:
    """``func(*args)`` in a child process: its result, or the exception it raised, comes back."""
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (Python >= 3.12)
        pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(func, args, write_fd)
    os.close(write_fd)
    try:
        payload = _read_pipe(read_fd, timeout)
    finally:
        os.close(read_fd)
        status = _reap(pid)
    if payload is None:
        raise ChildTimeout(f"no answer in {timeout:.0f} s")
    try:
        outcome, value = pickle.loads(payload)
    except Exception:  # noqa: BLE001 - an empty or cut payload: the child died
        raise ChildCrashed(_describe(status)) from None
    if outcome == "error":
        raise value
    return value


def _child(func: Callable[..., Any], args: tuple[Any, ...], fd: int) -> None:
    """In the forked child: call, send (outcome, value) through ``fd``, exit without cleanup."""
    code = 0
    try:
        faulthandler.disable()  # a crash must not print a traceback into the parent's stderr
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        try:
            result: tuple[str, Any] = ("ok", func(*args))
        except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
            result = ("error", exc)
        try:
            payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
            payload = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
    except BaseException:  # noqa: BLE001 - the parent reports the missing answer
        code = 1
    finally:
        os._exit(code)


def _read_pipe(fd: int, timeout: float) -> bytes | None:
    """Everything written to ``fd`` until the writer closes it; None on timeout."""
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int) -> int:
    """Wait for the child, killing it first if it is still running; returns its wait status."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    return status


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.valid_signals() else "?"
        return f"killed by signal {number} ({name})"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
