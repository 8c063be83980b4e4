"""Reading a shard's rows from an input .npz: equal to slicing the whole array, and seeking straight to
the rows of an uncompressed member instead of reading everything before them."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from neurodeploy.errors import InputDataError, OptionError
from neurodeploy.sharding import shard


@pytest.fixture
def arrays():
    rng = np.random.default_rng(7)
    return {"input": rng.integers(0, 3, size=(37, 5, 2, 3, 3)).astype(np.float32),
            "labels": np.arange(37, dtype=np.int64)}


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("rows", [(0, 1), (0, 37), (5, 12), (36, 37), (20, 20)])
def test_rows_equal_slices(tmp_path, arrays, save, rows):
    path = tmp_path / "in.npz"
    save(path, **arrays)
    start, stop = rows
    for key, value in arrays.items():
        got = shard.read_rows(path, key, start, stop)
        assert got.dtype == value.dtype
        np.testing.assert_array_equal(got, value[start:stop])


def test_stored_member_is_read_at_its_offset(tmp_path, arrays):
    stored, compressed = tmp_path / "stored.npz", tmp_path / "compressed.npz"
    np.savez(stored, **arrays)
    np.savez_compressed(compressed, **arrays)
    offset = shard._stored_offset(stored, "labels")
    assert offset is not None and shard._stored_offset(compressed, "labels") is None
    raw = stored.read_bytes()
    with zipfile.ZipFile(stored) as archive:
        assert raw[offset:offset + 6] == archive.read("labels.npy")[:6] == b"\x93NUMPY"


def test_truncated_member_is_named(tmp_path, arrays):
    """A member whose .npy header promises more rows than it holds."""
    cut = tmp_path / "cut.npz"
    np.savez(cut, input=arrays["input"][:3])
    with zipfile.ZipFile(cut) as archive:
        header = archive.read("input.npy")
    patched = header.replace(b"(3, 5, 2, 3, 3)", b"(9, 5, 2, 3, 3)")
    assert patched != header
    with zipfile.ZipFile(cut, "w") as archive:
        archive.writestr("input.npy", patched)
    with pytest.raises(InputDataError, match="truncated"):
        shard.read_rows(cut, "input", 4, 9)


# ------------------------------------------------------------------ default shard sizes

@pytest.mark.parametrize("samples", [1, 7, 100, 4096, 10**6])
@pytest.mark.parametrize("work", [1, 4040, 209_040, 10**9])
def test_default_shards_cover_the_samples_within_bounds(samples, work):
    shards = shard.plan(samples, None, work)
    assert shards[0].start == 0 and shards[-1].stop == samples
    assert all(a.stop == b.start for a, b in zip(shards, shards[1:]))
    size = shards[0].size
    assert shard.MIN_SHARD <= size <= shard.MAX_SHARD or size == samples < shard.MIN_SHARD
    if samples >= shard.MIN_SHARDS * shard.MIN_SHARD:  # enough samples: at least MIN_SHARDS shards
        assert len(shards) >= shard.MIN_SHARDS
    if size > shard.MIN_SHARD:  # above the floor, a shard holds at most SHARD_WORK neuron-steps
        assert size * work <= shard.SHARD_WORK


def test_heavier_samples_get_smaller_shards():
    light, heavy = shard.default_size(4096, 4_000), shard.default_size(4096, 200_000)
    assert light > heavy and light * 4_000 <= shard.SHARD_WORK and heavy * 200_000 <= shard.SHARD_WORK


def test_shard_size_given_or_refused():
    assert [s.size for s in shard.plan(10, 4)] == [4, 4, 2]
    assert shard.plan(1000)[0].size == shard.DEFAULT_SHARD_SIZE  # the work of a sample unknown
    with pytest.raises(OptionError, match="--shard-size must be >= 1"):
        shard.plan(10, 0)


def test_spike_total_counts_every_spike():
    from neurodeploy.sharding.shard import spike_total

    rng = np.random.default_rng(3)
    single = (rng.random((4, 5, 6)) < 0.3).astype(np.uint8)
    counts = rng.integers(0, 4, (4, 5, 6)).astype(np.uint8)  # a neuron may send several spikes in a step
    assert counts.max() > 1
    for trace in (single, counts, single.astype(bool), np.zeros((2, 0), np.uint8)):
        assert spike_total(trace) == int(trace.astype(np.int64).sum())
    assert spike_total(counts) > np.count_nonzero(counts)
