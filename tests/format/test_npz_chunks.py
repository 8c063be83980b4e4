"""The streaming .npz writer: archives that numpy, zipfile and unzip read back exactly."""
from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.format.npz_chunks import (
    FINAL_BLOCK, Chunk, NpzStreamWriter, compress, crc32_combine, npy_header,
)

ARRAYS = {
    "u8": np.arange(1000, dtype=np.uint8).reshape(10, 100),
    "i64": np.arange(-50, 70, dtype=np.int64),
    "f32_5d": np.linspace(-1, 1, 2 * 3 * 4 * 5 * 6, dtype=np.float32).reshape(2, 3, 4, 5, 6),
    "scalar": np.array(2.5, dtype=np.float32),
    "empty": np.zeros((0, 7), dtype=np.int64),
    "big_endian": np.arange(12, dtype=">i4").reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(60, dtype=np.int16).reshape(3, 4, 5)),
    "strided": np.arange(200, dtype=np.float32).reshape(20, 10)[::3, 1::2],
}


def _write_chunked(path: Path, arrays: dict[str, np.ndarray], block: int) -> None:
    """Write each array through member()/add(): the header, then its bytes in ``block``-byte chunks."""
    with open(path, "wb") as f, NpzStreamWriter(f) as writer:
        for name, array in arrays.items():
            raw = np.ascontiguousarray(array).tobytes()
            with writer.member(name + ".npy") as m:
                m.add(compress(npy_header(array.shape, array.dtype)))
                for start in range(0, len(raw), block):
                    m.add(compress(raw[start:start + block]))


def _check_reads_back(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(arrays)
        for name, array in arrays.items():
            got = data[name]
            assert got.dtype == array.dtype and got.shape == array.shape, name
            np.testing.assert_array_equal(got, array, err_msg=name)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_chunked_members_read_back_exactly(tmp_path: Path, block: int) -> None:
    path = tmp_path / "out.npz"
    _write_chunked(path, ARRAYS, block)
    _check_reads_back(path, ARRAYS)


@pytest.mark.parametrize("block_bytes", [1, 5, 333, 16 << 20])
def test_write_array_reads_back_exactly(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "out.npz"
    with open(path, "wb") as f, NpzStreamWriter(f) as writer:
        for name, array in ARRAYS.items():
            writer.write_array(name, array, block_bytes=block_bytes)
    _check_reads_back(path, ARRAYS)


def test_unzip_accepts_the_archive(tmp_path: Path) -> None:
    if shutil.which("unzip") is None:
        pytest.skip("the unzip command is not installed")
    path = tmp_path / "out.npz"
    _write_chunked(path, ARRAYS, 50)
    result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout


def test_npy_header_is_what_numpy_writes() -> None:
    for shape in [(), (0,), (3,), (2, 3, 4, 5, 6)]:
        for dtype in ["u1", "<f4", ">i8", "<c16", "<U3", [("a", "<i4"), ("b", "S3")]]:
            stream = io.BytesIO()
            np.save(stream, np.zeros(shape, dtype))
            header = npy_header(shape, dtype)
            assert len(header) % 64 == 0
            assert stream.getvalue()[:len(header)] == header
            assert len(stream.getvalue()) - len(header) == np.zeros(shape, dtype).nbytes


def test_npy_header_switches_to_version_2_for_long_headers() -> None:
    dtype = np.dtype([(f"field_with_a_long_name_{i}", "<f8") for i in range(3000)])
    header = npy_header((2,), dtype)
    assert header[6:8] == b"\x02\x00"
    stream = io.BytesIO()
    with pytest.warns(UserWarning):
        np.save(stream, np.zeros(2, dtype))
    assert stream.getvalue()[:len(header)] == header


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8),
       level=st.sampled_from([0, 1, 6, 9]))
def test_chunks_split_anywhere_give_the_same_array(data: bytes, cuts: list[int], level: int) -> None:
    array = np.frombuffer(data, dtype=np.uint8)
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    stream = io.BytesIO()
    with NpzStreamWriter(stream) as writer, writer.member("a.npy") as m:
        m.add(compress(npy_header(array.shape, array.dtype), level))
        for start, stop in zip(bounds, bounds[1:]):
            m.add(compress(data[start:stop], level))
        m.add(compress(b"", level))
    stream.seek(0)
    with np.load(stream, allow_pickle=False) as loaded:
        np.testing.assert_array_equal(loaded["a"], array)
    with zipfile.ZipFile(stream) as zf:
        assert zf.testzip() is None
        assert zf.getinfo("a.npy").CRC == zlib.crc32(npy_header(array.shape, array.dtype) + data)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.binary(max_size=300), max_size=6))
def test_crc32_combine_equals_crc_of_the_concatenation(parts: list[bytes]) -> None:
    crc = 0
    for part in parts:
        crc = crc32_combine(crc, zlib.crc32(part), len(part))
    assert crc == zlib.crc32(b"".join(parts))


@settings(max_examples=30, deadline=None)
@given(head=st.binary(max_size=50), zeros=st.integers(0, 1 << 22))
def test_crc32_combine_over_long_runs(head: bytes, zeros: int) -> None:
    assert crc32_combine(zlib.crc32(head), zlib.crc32(bytes(zeros)), zeros) == zlib.crc32(head + bytes(zeros))


crc32s = st.integers(0, 0xFFFFFFFF)


@settings(max_examples=100, deadline=None)
@given(c1=crc32s, c2=crc32s, c3=crc32s, n2=st.integers(0, 1 << 45), n3=st.integers(0, 1 << 45))
def test_crc32_combine_is_associative_for_huge_lengths(c1: int, c2: int, c3: int, n2: int, n3: int) -> None:
    # (A + B) + C == A + (B + C): appending n2 and then n3 bytes equals appending n2 + n3 bytes.
    left = crc32_combine(crc32_combine(c1, c2, n2), c3, n3)
    assert left == crc32_combine(c1, crc32_combine(c2, c3, n3), n2 + n3)


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    paths = [tmp_path / "one.npz", tmp_path / "two.npz"]
    for path in paths:
        with open(path, "wb") as f, NpzStreamWriter(f) as writer:
            for name, array in ARRAYS.items():
                writer.write_array(name, array, block_bytes=100)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with zipfile.ZipFile(paths[0]) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert all(info.extra.startswith(b"\x01\x00") for info in zf.infolist())  # zip64 extra only


def test_zip64_fields_give_the_true_sizes_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "out.npz"
    chunks = [compress(bytes(range(256)) * 40), compress(b"abc"), compress(b"")]
    with open(path, "wb") as f, NpzStreamWriter(f) as writer:
        writer.write_array("first", np.arange(10))
        with writer.member("raw.bin") as m:
            for chunk in chunks:
                m.add(chunk)
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("raw.bin")
        assert info.file_size == 256 * 40 + 3
        assert info.compress_size == sum(len(c.data) for c in chunks) + len(FINAL_BLOCK)
        assert raw[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"
        assert zf.read("raw.bin") == bytes(range(256)) * 40 + b"abc"
    # The member is one complete raw deflate stream (final block included), then the data descriptor.
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    inflater = zlib.decompressobj(-15)
    assert inflater.decompress(raw[start:start + info.compress_size]) == bytes(range(256)) * 40 + b"abc"
    assert inflater.eof and inflater.unused_data == b""
    end = start + info.compress_size
    assert struct.unpack_from("<4sLQQ", raw, end) == (b"PK\x07\x08", info.CRC, info.compress_size, info.file_size)
    # The central directory stores 0xFFFFFFFF for the sizes and offset: readers take them from zip64.
    central = raw.index(b"PK\x01\x02")
    assert struct.unpack_from("<LL", raw, central + 20) == (0xFFFFFFFF, 0xFFFFFFFF)
    assert struct.unpack_from("<L", raw, central + 42) == (0xFFFFFFFF,)


def test_member_over_4_gib(tmp_path: Path) -> None:
    zero = compress(np.zeros(256 << 20, dtype=np.uint8))
    path = tmp_path / "big.npz"
    with open(path, "wb") as f, NpzStreamWriter(f) as writer:
        with writer.member("zeros.bin") as m:
            for _ in range(17):
                m.add(zero)
        writer.write_array("after", np.arange(3))
    assert path.stat().st_size < 64 << 20
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("zeros.bin")
        assert info.file_size == 17 * (256 << 20) > 1 << 32
        assert info.compress_size == 17 * len(zero.data) + len(FINAL_BLOCK)
        with zf.open("zeros.bin") as member:
            member.seek(info.file_size - 8)
            assert member.read() == bytes(8)  # reaching the end checks the combined CRC-32
        assert list(np.load(path)["after"]) == [0, 1, 2]


def test_many_members_use_the_zip64_end_records(tmp_path: Path) -> None:
    path = tmp_path / "many.npz"
    empty = compress(b"")
    count = 0x10000 + 5
    with open(path, "wb") as f, NpzStreamWriter(f) as writer:
        for i in range(count):
            with writer.member(f"m{i}") as m:
                m.add(empty)
    raw = path.read_bytes()
    end64 = raw.rfind(b"PK\x06\x06")
    locator = struct.unpack_from("<4sLQL", raw, len(raw) - 22 - 20)
    assert locator == (b"PK\x06\x07", 0, end64, 1)
    size, _, _, _, _, on_disk, total, cd_size, cd_offset = struct.unpack_from("<Q2H2L4Q", raw, end64 + 4)
    assert size == 44 and on_disk == total == count
    assert cd_offset + cd_size == end64 and raw[cd_offset:cd_offset + 4] == b"PK\x01\x02"
    assert struct.unpack_from("<4H", raw, len(raw) - 22 + 4)[2:] == (0xFFFF, 0xFFFF)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert len(names) == count and names[-1] == f"m{count - 1}"
        assert zf.read(names[-1]) == b""


class _NoSeek(io.RawIOBase):
    """A write-only handle that cannot tell or seek, like a pipe."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def seek(self, *args: object) -> int:
        raise OSError("not seekable")

    def tell(self) -> int:
        raise OSError("not seekable")

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)


def test_non_seekable_handles(tmp_path: Path) -> None:
    handle = _NoSeek()
    with NpzStreamWriter(handle) as writer:
        for name, array in ARRAYS.items():
            writer.write_array(name, array, block_bytes=64)
    path = tmp_path / "out.npz"
    path.write_bytes(b"".join(handle.parts))
    _check_reads_back(path, ARRAYS)

    read_fd, write_fd = os.pipe()
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(os.fdopen(read_fd, "rb").read()))
    reader.start()
    with os.fdopen(write_fd, "wb") as pipe, NpzStreamWriter(pipe) as writer:
        writer.write_array("u8", ARRAYS["u8"])
    reader.join()
    with np.load(io.BytesIO(received[0]), allow_pickle=False) as data:
        np.testing.assert_array_equal(data["u8"], ARRAYS["u8"])


def test_utf8_member_names(tmp_path: Path) -> None:
    path = tmp_path / "names.npz"
    with open(path, "wb") as f, NpzStreamWriter(f) as writer:
        writer.write_array("spikes.couche_é", np.arange(4))
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["spikes.couche_é.npy"]
        assert zf.infolist()[0].flag_bits & 0x800
    with np.load(path) as data:
        assert list(data["spikes.couche_é"]) == [0, 1, 2, 3]


def test_bad_input_is_refused_with_a_clear_error() -> None:
    finished = zlib.compressobj(1, zlib.DEFLATED, -15)
    with pytest.raises(ValueError, match="sync flush"):
        Chunk(finished.compress(b"abc") + finished.flush(), zlib.crc32(b"abc"), 3)
    with pytest.raises(ValueError, match="C-contiguous"):
        compress(np.arange(10)[::2])
    with pytest.raises(TypeError, match="Python objects"):
        npy_header((2,), object)
    with pytest.raises(ValueError, match="len2"):
        crc32_combine(0, 0, -1)
    writer = NpzStreamWriter(io.BytesIO())
    with pytest.raises(TypeError, match="Chunk"):
        with writer.member("a.npy") as m:
            m.add(b"raw bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="incomplete"):
        writer.member("b.npy")


def test_member_rules() -> None:
    writer = NpzStreamWriter(io.BytesIO())
    with writer.member("a.npy") as m:
        with pytest.raises(ValueError, match="still open"):
            writer.member("b.npy")
    with pytest.raises(ValueError, match="finished"):
        m.add(compress(b"x"))
    with pytest.raises(ValueError, match="already written"):
        writer.member("a.npy")
    with pytest.raises(ValueError, match="non-empty"):
        writer.member("")
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.member("c.npy")
