"""The one way neurodeploy writes a file: atomically, with the mode a plain ``open()`` gives.

A temp file in the destination folder is written, flushed to disk, given ``0o666 & ~umask``
and renamed over the destination, so a reader sees the old file or the whole new one, never half
of one; on any error the temp file is removed and nothing is left behind. ``check_writable``
fails early, before any work, on a path that could not be written.

A leaf module: the standard library and the dependency-free errors module only, Python 3.10
compatible, so the Lava runner (its own Python 3.10 environment, which loads
``neurodeploy/format/artifact.py`` as a plain file) can use it too.
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Union

from neurodeploy.errors import OptionError

PathLike = Union[str, "os.PathLike[str]"]


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it and put it back
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def check_writable(path: PathLike, option: str = "") -> Path:
    """Fail at once, with one line naming the path, where ``path`` could not be written."""
    path = Path(path)
    label = f"{option} {path}" if option else str(path)
    folder = _folder(path)
    if path.is_dir():
        raise OptionError(f"{label}: is a directory; name a file to write")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OptionError(f"{label}: folder {folder} {what}; create it first (mkdir -p {folder}) "
                          f"or name a file in an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OptionError(f"{label}: folder {folder} is not writable; name a file in a folder you can write to")
    return path


def write_error(path: PathLike, exc: OSError) -> OptionError:
    """One line for an OSError met while writing ``path``."""
    path = Path(path)
    folder = _folder(path)
    reason = exc.strerror or type(exc).__name__
    hints = {
        errno.ENOENT: f"folder {folder} does not exist; create it first",
        errno.EACCES: f"folder {folder} is not writable; write into a folder you can write to",
        errno.EPERM: f"folder {folder} is not writable; write into a folder you can write to",
        errno.EROFS: f"folder {folder} is on a read-only file system; write elsewhere",
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EISDIR: "it is a directory; name a file to write",
    }
    hint = hints.get(exc.errno or 0, "check the folder and the free space")
    return OptionError(f"{path}: cannot write it ({reason}); {hint}")


@contextmanager
def replacing(path: PathLike) -> Iterator[str]:
    """Yield a temp file name beside ``path``; when the block succeeds, the file becomes ``path``.

    For writers that take a file name (``nir.write``, ``h5py.File``). An OSError becomes an
    OptionError naming ``path``; any error removes the temp file.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=_folder(path))
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    try:
        yield tmp
        _commit(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise


def _commit(tmp: str, path: Path) -> None:
    """Flush ``tmp`` to disk, give it the usual mode and rename it over ``path``."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, file_mode())  # mkstemp makes 0600
    os.replace(tmp, path)


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


@contextmanager
def open_atomic(path: PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """``open(path, mode)`` for writing, atomically (see :func:`replacing`)."""
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with replacing(path) as tmp:
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle


def write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with open_atomic(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))
