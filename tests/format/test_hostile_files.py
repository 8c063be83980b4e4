"""Crafted files that declare huge arrays are refused from their headers, cheaply.

Each file is small on disk; reading its data would cost gigabytes. The readers must refuse
it with a NeurodeployError naming the array and its declared shape, in well under a few
seconds and without a large allocation.
"""
from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile

import h5py
import nir
import numpy as np
import pytest

from neurodeploy.compiler.frontend import reader
from neurodeploy.errors import NeurodeployError
from neurodeploy.format import artifact

TIME_S = 5.0
PEAK_BYTES = 200 << 20


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _crafted_ndp(path, name: str = "p0.scale") -> None:
    """An artifact whose one array declares 60000x60000 int16 (7.2 GB), zero-filled, compressed."""
    program = {"target": "emulator", "inputs": {"in": [4]}, "outputs": {},
               "populations": [{"name": "p", "model": "lif", "kind": "lif", "shape": [4], "spiking": True,
                                "latency": 1, "readout": False, "params": []}],
               "connections": [], "attrs": {}}
    manifest = {"format": artifact.FORMAT, "format_version": artifact.FORMAT_VERSION, "target": "emulator",
                "program": program, "content_hash": "0" * 64}
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:  # header plus 8 MB of the zeros
        zf.writestr(f"{name}.npy", _npy_header((60000, 60000), "<i2") + bytes(8 << 20))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("arrays.npz", inner.getvalue())


def _crafted_nir(path) -> None:
    """A graph whose Affine weight declares 50000x50000 float64 (20 GB), gzip, never written."""
    graph = nir.NIRGraph.from_list(nir.Input(np.array([10])), nir.Affine(np.zeros((5, 10)), np.zeros(5)),
                                   nir.Output(np.array([5])))
    nir.write(str(path), graph)
    with h5py.File(path, "r+") as handle:
        group = handle["node/nodes/affine"]
        del group["weight"]
        group.create_dataset("weight", shape=(50000, 50000), dtype="f8", compression="gzip", chunks=(1000, 1000))


def _refused(read, path) -> str:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(NeurodeployError) as info:
            read(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < TIME_S, f"took {elapsed:.1f} s"
    assert peak < PEAK_BYTES, f"allocated {peak / 2**20:.0f} MB"
    return str(info.value)


def test_crafted_artifact_refused_from_its_headers(tmp_path):
    path = tmp_path / "hostile.ndp"
    _crafted_ndp(path)
    assert path.stat().st_size < 100_000
    message = _refused(artifact.read, path)
    assert "p0.scale" in message and "[60000, 60000]" in message
    assert "\n" not in message


def test_artifact_array_not_in_manifest_refused(tmp_path):
    path = tmp_path / "extra.ndp"
    _crafted_ndp(path, "zz.extra")
    with pytest.raises(NeurodeployError, match="zz.extra"):
        artifact.read(path)


def test_crafted_nir_refused_from_its_declared_shapes(tmp_path, monkeypatch):
    path = tmp_path / "hostile.nir"
    _crafted_nir(path)
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(reader, "ISOLATE", False)  # in this process, so that tracemalloc sees the reads
    message = _refused(reader.read_file, path)
    assert "affine" in message and "weight" in message and "[50000, 50000]" in message
    assert "\n" not in message


def test_crafted_nir_refused_in_the_isolated_reader(tmp_path):
    path = tmp_path / "hostile.nir"
    _crafted_nir(path)
    start = time.perf_counter()
    with pytest.raises(NeurodeployError, match=r"\[50000, 50000\]"):
        reader.read_file(path)
    assert time.perf_counter() - start < TIME_S


def test_total_declared_size_capped(tmp_path, monkeypatch):
    """A dataset that no graph rule covers still counts against the total."""
    path = tmp_path / "big_tau.nir"
    graph = nir.NIRGraph.from_list(nir.Input(np.array([3])), nir.Affine(np.zeros((3, 3)), np.zeros(3)),
                                   nir.Output(np.array([3])))
    nir.write(str(path), graph)
    with h5py.File(path, "r+") as handle:
        handle["node/nodes/affine"].create_dataset("extra", shape=(60000, 60000), dtype="f8", compression="gzip",
                                                   chunks=(1000, 1000))
    monkeypatch.setattr(reader, "ISOLATE", False)
    message = _refused(reader.read_file, path)
    assert "extra" in message and "[60000, 60000]" in message


def test_real_artifact_and_graph_still_read(tmp_path):
    from neurodeploy.compiler.compile import Options, compile_model

    path = tmp_path / "ok.nir"
    graph = nir.NIRGraph.from_list(nir.Input(np.array([3])), nir.Affine(np.ones((4, 3)), np.zeros(4)),
                                   nir.LIF(tau=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4),
                                           v_threshold=np.ones(4)), nir.Output(np.array([4])))
    nir.write(str(path), graph)
    assert reader.read_file(path).nodes
    compiled = compile_model(str(path), Options(target="loihi2"), None, None)
    compiled.write(tmp_path / "ok.ndp")
    art = artifact.read(tmp_path / "ok.ndp")
    assert art.arrays
