"""Shard traces on disk: one ``.npz`` part per shard and an ``index.json``, then one ``.npz`` if asked.

The client writes each shard's arrays as they arrive (any order) and forgets them, so its memory is
bounded by a shard. :meth:`PartStore.finish` checks that the parts cover every sample exactly once
and either keeps the folder (parts + index, read back with :func:`read_parts`) or streams the parts,
array by array, into one ``.npz`` laid out as a one-process `run` writes it (each array the
concatenation of its shards, in sample order), without holding more than one part's array.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from neurodeploy.format import atomic
from neurodeploy.errors import OptionError
from neurodeploy.sharding.shard import Shard

INDEX = "index.json"
FORMAT = "neurodeploy-trace-parts"


class PartStore:
    """Parts of one run's traces, in a folder beside the output (or the output folder itself)."""

    def __init__(self, output: str | Path, samples: int, meta: dict[str, Any], *, folder: bool = False):
        """``folder``: keep the parts and an index in the folder ``output``; else write one ``.npz``."""
        self.output = Path(output)
        self.samples = samples
        self.meta = dict(meta)
        self.single = not folder
        if self.single:
            self.folder = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.parts-", dir=self.output.parent))
        else:
            self.output.mkdir(exist_ok=True)
            self.folder = self.output
        self.parts: dict[int, dict[str, Any]] = {}

    def add(self, shard: Shard, arrays: dict[str, np.ndarray]) -> None:
        """Write one shard's arrays; a shard given twice replaces its part (nothing is counted twice)."""
        name = f"part-{shard.index:06d}.npz"
        with atomic.open_atomic(self.folder / name, "wb") as handle:
            np.savez(handle, **arrays)
        self.parts[shard.index] = {"index": shard.index, "start": shard.start, "stop": shard.stop, "file": name,
                                   "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype.str}
                                              for k, v in arrays.items()}}

    def finish(self, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Check coverage, then write the index (folder output) or the one ``.npz`` (and drop the parts).

        ``extra``: small whole-run arrays (the events format's shapes), after the traces.
        """
        parts = self._ordered()
        extra = extra or {}
        if not self.single:
            index = {"format": FORMAT, "samples": self.samples, **self.meta, "parts": parts,
                     "extra": {k: np.asarray(v).tolist() for k, v in extra.items()}}
            atomic.write_text(self.folder / INDEX, json.dumps(index, indent=1, sort_keys=True))
            return self.folder
        try:
            _assemble(self.output, self.folder, parts, extra)
        finally:
            self.discard()
        return self.output

    def discard(self) -> None:
        """Remove the temporary parts folder (a single-file output only)."""
        if self.single:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _ordered(self) -> list[dict[str, Any]]:
        parts = [self.parts[i] for i in sorted(self.parts)]
        covered = 0
        for part in parts:
            if part["start"] != covered:
                raise RuntimeError(f"shard parts do not cover the samples: expected one from sample {covered}, "
                                   f"got {part['start']}")
            covered = part["stop"]
        if covered != self.samples:
            raise RuntimeError(f"shard parts cover {covered} of {self.samples} samples")
        keys = [list(p["arrays"]) for p in parts]
        if any(k != keys[0] for k in keys):
            raise RuntimeError("shard parts hold different arrays")
        return parts


def _assemble(output: Path, folder: Path, parts: list[dict[str, Any]], extra: dict[str, np.ndarray]) -> None:
    """Stream every part's arrays into one compressed ``.npz`` at ``output`` (atomically)."""
    keys = list(parts[0]["arrays"]) if parts else []
    with atomic.open_atomic(output, "wb") as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for key in keys:
                _write_member(archive, folder, parts, key)
            for key, value in extra.items():
                with archive.open(f"{key}.npy", "w") as member:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)


def _write_member(archive: zipfile.ZipFile, folder: Path, parts: list[dict[str, Any]], key: str) -> None:
    """One array: the ``.npy`` header of the whole, then each part's rows in order."""
    first = parts[0]["arrays"][key]
    dtype = np.dtype(first["dtype"])
    shape = (sum(p["arrays"][key]["shape"][0] for p in parts),) + tuple(first["shape"][1:])
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
        if len(repr(header)) > 60000:  # version 1.0 headers hold up to 65535 bytes
            np.lib.format.write_array_header_2_0(member, header)
        else:
            np.lib.format.write_array_header_1_0(member, header)
        for part in parts:
            with np.load(folder / part["file"], allow_pickle=False) as data:
                member.write(np.ascontiguousarray(data[key], dtype=dtype).tobytes())


def read_parts(folder: str | Path) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """(start, stop, arrays) of every part of a folder output, in sample order."""
    folder = Path(folder)
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError) as exc:
        raise OptionError(f"{folder}: not a folder of trace parts ({exc}); run with -o {folder}/") from None
    for part in index["parts"]:
        with np.load(folder / part["file"], allow_pickle=False) as data:
            yield part["start"], part["stop"], {k: data[k] for k in data.files}
