"""Shard traces on disk: one ``.npz`` part per shard and an ``index.json``, then one ``.npz`` if asked.

Workers send each trace compressed (:class:`neurodeploy.format.npz_chunks.PackedArray`), and the
client writes those bytes as they arrive (any order) and forgets them, so its memory and its work
are bounded by a shard's compressed traces: it never compresses or decompresses a trace.
:meth:`PartStore.finish` checks that the parts cover every sample exactly once and either keeps the
folder (an ``.npz`` part per shard + index, read back with :func:`read_parts`) or writes one ``.npz``
laid out as a one-process `run` writes it (each array the concatenation of its shards, in sample
order) by copying every part's compressed chunks, in order, into its member.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from neurodeploy.format import atomic
from neurodeploy.errors import OptionError
from neurodeploy.format.npz_chunks import Chunk, NpzStreamWriter, PackedArray, write_packed
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

    def add(self, shard: Shard, arrays: dict[str, PackedArray]) -> None:
        """Write one shard's arrays; a shard given twice replaces its part (nothing is counted twice).

        A folder output gets an ``.npz`` part; a single output spools the compressed chunks (its
        ``.bin`` part) until :meth:`finish` copies them into the one ``.npz``."""
        name = f"part-{shard.index:06d}." + ("bin" if self.single else "npz")
        if self.single:  # a scratch file, removed at the end: no rename or fsync to pay per shard
            with open(self.folder / name, "wb") as handle:
                chunks = _spool(handle, arrays)
        else:
            with atomic.open_atomic(self.folder / name, "wb") as handle:
                chunks = _write_part(handle, arrays)
        self.parts[shard.index] = {"index": shard.index, "start": shard.start, "stop": shard.stop, "file": name,
                                   "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype} for k, v in arrays.items()}}
        if chunks:
            self.parts[shard.index]["chunks"] = chunks

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


def _write_part(handle: Any, arrays: dict[str, PackedArray]) -> None:
    """One shard's arrays as an ``.npz`` (numpy.load reads it), from their compressed chunks."""
    with NpzStreamWriter(handle) as writer:
        for key, packed in arrays.items():
            write_packed(writer, key, packed.shape, packed.dtype, packed.chunks)


def _spool(handle: Any, arrays: dict[str, PackedArray]) -> dict[str, list[list[int]]]:
    """Write every chunk's bytes to ``handle``; per array, its chunks as [offset, length, crc, size]."""
    where: dict[str, list[list[int]]] = {}
    offset = 0
    for key, packed in arrays.items():
        where[key] = []
        for chunk in packed.chunks:
            handle.write(chunk.data)
            where[key].append([offset, len(chunk.data), chunk.crc, chunk.size])
            offset += len(chunk.data)
    return where


def _spooled(folder: Path, parts: list[dict[str, Any]], key: str) -> Iterator[Chunk]:
    """The compressed chunks of array ``key`` of every spooled part, in order, read one at a time."""
    for part in parts:
        with open(folder / part["file"], "rb") as raw:
            for offset, length, crc, size in part["chunks"][key]:
                raw.seek(offset)
                yield Chunk(raw.read(length), crc, size)


def _assemble(output: Path, folder: Path, parts: list[dict[str, Any]], extra: dict[str, np.ndarray]) -> None:
    """Every part's arrays, concatenated in sample order, into one ``.npz`` at ``output`` (atomically)."""
    keys = list(parts[0]["arrays"]) if parts else []
    with atomic.open_atomic(output, "wb") as handle, NpzStreamWriter(handle) as writer:
        for key in keys:
            first = parts[0]["arrays"][key]
            shape = (sum(p["arrays"][key]["shape"][0] for p in parts),) + tuple(first["shape"][1:])
            write_packed(writer, key, shape, first["dtype"], _spooled(folder, parts, key))
        for key, value in extra.items():
            writer.write_array(key, np.asarray(value))


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
