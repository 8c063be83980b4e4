"""Samples in contiguous shards: reading a shard of an input file, and the tasks that run on one.

A shard is a range of samples ``[start, stop)``. The tasks here are what a Dask worker runs
(:mod:`neurodeploy.sharding.cluster` submits them): each reads the artifact and the input rows itself from
the paths in its spec (no program or array travels to it), runs the bit-accurate emulator on its
samples and returns plain numpy arrays. Samples are independent in every kernel, so the
concatenation of the shards' traces equals one run over all samples, whatever the shards.

Input rows are read from the ``.npz`` without loading whole arrays: the ``.npy`` header gives the
row size and the member is seeked to the first row (``allow_pickle`` is never needed: object
arrays are refused), so a worker's memory is bounded by its shard.
"""
from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from neurodeploy.errors import InputDataError, OptionError
from neurodeploy.format.input_rules import range_excess

DEFAULT_SHARD_SIZE = 128  # samples, where the work of a sample is unknown
# Without --shard-size, a shard holds about SHARD_WORK neuron-steps (tens of milliseconds of kernel
# time and tens of MB per recorded state), within [MIN_SHARD, MAX_SHARD] samples, and a data set is
# cut into at least MIN_SHARDS shards where it has the samples. The size follows the program and the
# input only, never the workers, so shards (and merged sums) are the same on any cluster.
SHARD_WORK = 2**24
MIN_SHARD, MAX_SHARD = 16, 4096
MIN_SHARDS = 8


@dataclass(frozen=True)
class Shard:
    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def default_size(samples: int, work_per_sample: int | None) -> int:
    """Samples per shard when ``--shard-size`` is not given (see ``SHARD_WORK``)."""
    if not work_per_sample:
        return DEFAULT_SHARD_SIZE
    size = min(SHARD_WORK // work_per_sample, math.ceil(samples / MIN_SHARDS))
    return int(min(max(size, MIN_SHARD), MAX_SHARD))


def work_per_sample(program: Any, steps: int) -> int:
    """Neuron-steps of one sample: what a shard's kernel time and trace memory grow with."""
    return steps * sum(p.size for p in program.populations)


def plan(samples: int, shard_size: int | None = None, work_per_sample: int | None = None) -> list[Shard]:
    """Contiguous shards of ``shard_size`` samples (the last one shorter) covering ``[0, samples)``;
    without a size, sized by ``work_per_sample`` (:func:`default_size`)."""
    size = default_size(samples, work_per_sample) if shard_size is None else shard_size
    if size < 1:
        raise OptionError(f"--shard-size must be >= 1 sample, got {size}")
    count = math.ceil(samples / size)
    return [Shard(i, i * size, min((i + 1) * size, samples)) for i in range(count)]


# ------------------------------------------------------------------ input rows

@dataclass(frozen=True)
class ArrayInfo:
    shape: tuple[int, ...]
    dtype: str
    fortran: bool


def _header(handle) -> tuple[ArrayInfo, int]:
    """(shape, dtype, order) of the ``.npy`` stream at ``handle`` and the offset of its data."""
    version = np.lib.format.read_magic(handle)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(handle)
    return ArrayInfo(tuple(int(n) for n in shape), dtype.str, bool(fortran)), handle.tell()


def array_info(path: str | Path, key: str) -> ArrayInfo:
    """Shape and dtype of array ``key`` in the ``.npz`` at ``path``, from its header only."""
    with _member(path, key) as handle:
        info, _ = _header(handle)
    if np.dtype(info.dtype).hasobject:
        raise InputDataError(f"{path}: array '{key}' holds Python objects, which would need pickle; "
                             f"save a numeric array")
    return info


def _member(path: str | Path, key: str):
    """The open ``.npy`` member of ``key`` (a seekable, decompressing file object)."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputDataError(f"{path}: not a readable .npz file ({exc}); save inputs with "
                             f"numpy.savez(path, input=array)") from None
    try:
        return _Closing(archive, archive.open(f"{key}.npy"))
    except KeyError:
        archive.close()
        raise InputDataError(f"{path}: no array '{key}'") from None


class _Closing:
    """The member's file object; closing it closes the archive too."""

    def __init__(self, archive: zipfile.ZipFile, handle):
        self.archive, self.handle = archive, handle

    def __enter__(self):
        return self.handle

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
        self.archive.close()


def read_rows(path: str | Path, key: str, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` (first axis) of array ``key``, reading only those rows.

    An uncompressed member (``numpy.savez``) is read at its offset in the file, so a shard costs its
    own rows whatever its place in the file; a compressed one (``savez_compressed``) has to be
    decompressed from its start, so later shards cost more there.
    """
    with _member(path, key) as handle:
        info, offset = _header(handle)
        dtype = np.dtype(info.dtype)
        if dtype.hasobject:
            raise InputDataError(f"{path}: array '{key}' holds Python objects, which would need pickle; "
                                 f"save a numeric array")
        if info.fortran or not info.shape:  # rare: no contiguous rows to seek to
            handle.seek(0)
            return np.lib.format.read_array(handle, allow_pickle=False)[start:stop]
        row = math.prod(info.shape[1:]) * dtype.itemsize
        rows = np.empty((stop - start,) + info.shape[1:], dtype=dtype)  # writable: read into, not copied
        stored = _stored_offset(path, key)
        if stored is None:
            handle.seek(offset + start * row)
            got = _read_into(handle, rows)
    if stored is not None:
        with open(path, "rb") as raw:
            raw.seek(stored + offset + start * row)
            got = _read_into(raw, rows)
    if got != rows.nbytes:
        raise InputDataError(f"{path}: array '{key}' is truncated (rows {start}-{stop} of {info.shape[0]} unreadable)")
    return rows


def _read_into(handle, array: np.ndarray) -> int:
    """Fill ``array``'s bytes from ``handle``; returns how many bytes were read (short at end of file)."""
    view = memoryview(array.reshape(-1).view(np.uint8))
    done = 0
    while done < view.nbytes:
        n = handle.readinto(view[done:])
        if not n:
            break
        done += n
    return done


_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field


def _stored_offset(path: str | Path, key: str) -> int | None:
    """Where the bytes of uncompressed member ``key``.npy start in the file; None if it is compressed."""
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo(f"{key}.npy")
        if member.compress_type != zipfile.ZIP_STORED or member.flag_bits & 0x1:  # compressed or encrypted
            return None
        with open(path, "rb") as raw:
            raw.seek(member.header_offset)
            header = raw.read(_LOCAL_HEADER)
    if len(header) != _LOCAL_HEADER or header[:4] != b"PK\x03\x04":
        return None
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    return member.header_offset + _LOCAL_HEADER + name_length + extra_length


def input_keys(path: str | Path, program_inputs: Mapping[str, tuple[int, ...]]) -> dict[str, str]:
    """Which array of the ``.npz`` feeds each program input (``input``, or ``input.<name>`` each)."""
    from neurodeploy.format.npzio import _input_keys

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: no such input file (expected an .npz with array 'input')")
    try:
        with zipfile.ZipFile(path) as archive:
            files = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
    except zipfile.BadZipFile:
        raise InputDataError(f"{path}: not a readable .npz file; save inputs with numpy.savez(path, input=array)") \
            from None
    return _input_keys(path, list(program_inputs), files)


def input_extent(path: str | Path, keys: Mapping[str, str], program_inputs: Mapping[str, tuple[int, ...]]
                 ) -> tuple[int, int]:
    """(samples, steps) of the input arrays, whose headers are checked against the program's inputs."""
    from neurodeploy.format.npzio import _shape_fits

    extents = set()
    for name, key in keys.items():
        info = array_info(path, key)
        if np.dtype(info.dtype).kind not in "biuf":
            raise InputDataError(f"{path}: array '{key}': expected numbers, got dtype {np.dtype(info.dtype)}")
        shape = tuple(program_inputs[name])
        if not _shape_fits(info.shape, shape):
            raise InputDataError(f"{path}: array '{key}': shape {list(info.shape)} does not match "
                                 f"(batch, steps, {', '.join(map(str, shape))}); batch and steps must be >= 1")
        extents.add(info.shape[:2])
    if len(extents) != 1:
        raise InputDataError(f"{path}: the input arrays differ in (batch, steps): {sorted(extents)}; give every "
                             f"input the same samples and steps")
    return extents.pop()


def shard_inputs(path: str | Path, keys: Mapping[str, str], start: int, stop: int) -> Any:
    """The program's inputs for samples ``[start, stop)``: one array, or ``{name: array}``, checked."""
    from neurodeploy.format.npzio import _check_array

    arrays = {}
    for name, key in keys.items():
        arr = read_rows(path, key, start, stop)
        _check_array(Path(path), key, arr, None)
        arrays[name] = arr
    if len(keys) == 1 and next(iter(keys.values())) == "input":
        return next(iter(arrays.values()))
    return arrays


# ------------------------------------------------------------------ programs, read once per worker

_PROGRAMS: dict[tuple, tuple] = {}
_PROGRAM_CACHE = 8  # artifacts kept per process (a sweep alternates between its variants)


def load(path: str, content_hash: str) -> tuple[Any, Any]:
    """(Artifact, Program) of the .ndp at ``path``, read once per process and file version.

    ``content_hash`` is the artifact the client read: a worker that sees another file at the path
    (a remote worker without the shared folder, or a file replaced meanwhile) stops with one line.
    """
    from neurodeploy.format import artifact
    from neurodeploy.format.program import from_manifest

    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _PROGRAMS:
        art = artifact.read(path)
        if len(_PROGRAMS) >= _PROGRAM_CACHE:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[key] = (art, from_manifest(art.manifest["program"], art.arrays))
    art, program = _PROGRAMS[key]
    if art.content_hash != content_hash:
        raise OptionError(f"{path}: this worker reads artifact {art.content_hash[:12]}, the client read "
                          f"{content_hash[:12]}; give every worker the same file at the same path")
    return art, program


# ------------------------------------------------------------------ the run task

@dataclass(frozen=True)
class RunSpec:
    """What a `run` shard needs: paths and names only (the worker reads the files itself)."""

    artifact: str
    content_hash: str
    input: str
    keys: tuple[tuple[str, str], ...]  # (program input, npz array)
    record: tuple[str, ...] = ()
    align: str = "target"  # "float": padded and shifted back; "pad": padded, on the target's grid (profile)
    probe: tuple[str, ...] = ()  # populations to keep; () keeps all
    events: bool = False  # spikes as (sample, step, neuron) rows
    overflow: bool = False  # also the emulator's overflow counters (emulator/overflow.py), per sample
    packed: bool = False  # traces compressed on the worker (npz_chunks.PackedArray), as PartStore writes them


@dataclass
class ShardResult:
    shard: Shard
    arrays: dict[str, Any]  # numpy arrays, or PackedArray where the spec asks for packed traces
    dropped: int  # spikes outside the float grid (--align float)
    spikes: dict[str, int]  # spikes per population trace, over the whole grid
    excess: dict[str, Any] = field(default_factory=dict)  # inputs beyond the calibrated range (input_rules)


def run_shard(spec: RunSpec, shard: Shard) -> ShardResult:
    """Emulate samples ``shard`` of the input with the artifact; traces as `run` writes them."""
    from neurodeploy.emulator import run_program
    from neurodeploy.emulator.inputs import program_inputs
    from neurodeploy.analysis.verify import align_to_float, pad_for_latency

    art, program = load(spec.artifact, spec.content_hash)
    inputs = program_inputs(program, shard_inputs(spec.input, dict(spec.keys), shard.start, shard.stop))
    excess = range_excess(art.calibrated_inputs, inputs)
    steps = _steps_of(inputs)
    if spec.align in ("float", "pad"):
        inputs = pad_for_latency(program, inputs)
    traces = run_program(program, inputs, record=spec.record, overflow=spec.overflow)
    dropped = 0
    if spec.align == "float":
        traces, dropped = align_to_float(program, traces, steps)
    traces = probe(traces, spec.probe)
    spikes = {k: spike_total(v) for k, v in traces.items() if k.startswith("spikes.")}
    if spec.events:
        traces = to_events(traces, shard.start)
    if spec.packed:
        from neurodeploy.format.npz_chunks import pack

        traces = {key: pack(trace) for key, trace in traces.items()}
    return ShardResult(shard, traces, dropped, spikes, excess)


def spike_total(trace: np.ndarray) -> int:
    """The number of spikes in a trace: its nonzero entries where every one is a single spike (the
    common case, several times faster than a sum that widens every byte), else its sum."""
    if trace.size == 0:
        return 0
    if trace.dtype.kind in "bu" and trace.max() <= 1:
        return int(np.count_nonzero(trace))
    return int(trace.sum(dtype=np.int64))


def _steps_of(inputs: Any) -> int:
    first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    return int(np.asarray(first).shape[1])


def check_probe(program: Any, names: tuple[str, ...]) -> None:
    """Every name in ``--probe`` is a population of the program."""
    known = [p.name for p in program.populations]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise OptionError(f"--probe {','.join(unknown)}: no such population; the program has {', '.join(known)}")


def probe(traces: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The traces of the populations in ``names`` (all when empty); keys are ``<state>.<population>``."""
    if not names:
        return traces
    keep = set(names)
    return {k: v for k, v in traces.items() if k.partition(".")[2] in keep}


def to_events(traces: dict[str, np.ndarray], offset: int) -> dict[str, np.ndarray]:
    """``spikes.<pop>`` (batch, steps, *shape) as ``events.<pop>`` rows (sample, step, neuron), int64.

    Samples are numbered from ``offset``; neurons are flat (C order) indices; rows are sorted by
    sample, step, neuron; a value above 1 (a spike count) repeats its row. State traces stay dense.
    """
    out: dict[str, np.ndarray] = {}
    for key, trace in traces.items():
        if not key.startswith("spikes."):
            out[key] = trace
            continue
        flat = trace.reshape(trace.shape[0], trace.shape[1], -1)
        rows = np.argwhere(flat).astype(np.int64)
        counts = flat[tuple(rows.T)].astype(np.int64)
        if counts.size and counts.max() > 1:
            rows = np.repeat(rows, counts, axis=0)
        rows[:, 0] += offset
        out["events." + key.partition(".")[2]] = rows.reshape(-1, 3)
    return out


# ------------------------------------------------------------------ the profile task

def profile_shard(spec: RunSpec, shard: Shard) -> dict[str, Any]:
    """Emulate samples ``shard`` as `profile` does (``spec.align`` "pad": with the latency's steps)
    and return only what the profile counts of them: ``{"shard", "reductions"}``, a few numbers per
    sample (:class:`neurodeploy.analysis.profile.Reductions`), merged on the client."""
    from neurodeploy.analysis.profile import reduce_inputs

    art, program = load(spec.artifact, spec.content_hash)
    inputs = shard_inputs(spec.input, dict(spec.keys), shard.start, shard.stop)
    reductions = reduce_inputs(art, program, inputs, pad=spec.align == "pad", shard_size=max(shard.size, 1))
    return {"shard": shard, "reductions": reductions, "excess": range_excess(art.calibrated_inputs, inputs)}
