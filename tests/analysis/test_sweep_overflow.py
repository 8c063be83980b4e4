"""`neurodeploy sweep` reports run-time overflows per variant: the JSON row's ``overflow_total``
and ``overflow`` (per population and kind), its health column, the HTML table. A network driven
far beyond its range, swept in shards, must count what running each artifact whole counts."""
from __future__ import annotations

import json

import nir
import numpy as np
import pytest

from neurodeploy.analysis.verify import pad_for_latency
from neurodeploy.cli import main as cli
from neurodeploy.emulator import fixed_point, overflow, spinnaker
from neurodeploy.format import artifact
from neurodeploy.format.program import from_manifest

from helpers.small_nets import two_layer_lif

SAMPLES, STEPS = 5, 16


def dense_graph() -> nir.NIRGraph:
    return two_layer_lif(24, 20, 3)


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("sweep_overflow")
    nir.write(tmp / "dense.nir", dense_graph())
    x = np.zeros((SAMPLES, STEPS, 24), dtype=np.float32)
    x[1:4, 3:] = np.random.default_rng(1).integers(200, 900, (3, STEPS - 3, 24))  # samples 0 and 4 stay silent
    np.savez(tmp / "in.npz", input=x, labels=np.zeros(SAMPLES, dtype=np.int64))
    out = tmp / "sweep.json"
    code = cli.main(["sweep", str(tmp / "dense.nir"), "--input", str(tmp / "in.npz"), "--targets",
                     "loihi2,spinnaker,emulator", "--option", "allow-degraded=true", "--shard-size", "2",
                     "--json", str(out), "--html", str(tmp / "sweep.html"), "--artifacts", str(tmp)])
    assert code == 0
    return {"tmp": tmp, "x": x, "table": json.loads(out.read_text()), "html": (tmp / "sweep.html").read_text()}


def whole_run_counters(path, x) -> dict:
    """The counters of the artifact run on every sample at once by the readable numpy kernel."""
    art = artifact.read(path)
    program = from_manifest(art.manifest["program"], art.arrays)
    module = spinnaker if program.target == "spinnaker" else fixed_point
    return program, overflow.split(module.run(program, pad_for_latency(program, x), record=(), fast=False,
                                              overflow=True))[1]


def test_each_row_counts_what_a_whole_run_counts(swept):
    rows = swept["table"]["rows"]
    assert [r["target"] for r in rows] == ["loihi2", "spinnaker", "emulator"]
    for i, r in enumerate(rows):
        program, counters = whole_run_counters(swept["tmp"] / f"variant{i:02d}.{r['target']}.ndp", swept["x"])
        total = sum(int(v.sum()) for k, v in counters.items() if k.startswith("overflow."))
        assert r["overflow_total"] == total > 0, r["target"]
        for pop, kinds in r["overflow"].items():
            for kind, c in kinds.items():
                counts, first = counters[f"overflow.{pop}.{kind}"], counters[f"overflow_first.{pop}.{kind}"]
                assert c["count"] == int(counts.sum()) and c["samples"] == int((counts > 0).sum())
                assert c["first_step"] == int(first[first >= 0].min())
                assert c["samples"] <= 3  # the silent samples 0 and 4 count nothing
        assert r["health"]["overflow"] and r["health"]["overflow"][0].startswith("lif1: ")


def test_the_html_table_shows_them(swept):
    html = swept["html"]
    assert "<th>overflows</th>" in html
    for r in swept["table"]["rows"]:
        assert r["overflow_total"] > 0 and f"<td>{r['overflow_total']:,}</td>" in html
    assert "run-time overflow: lif1: " in html


def test_a_calm_sweep_counts_zero(swept, tmp_path):
    np.savez(tmp_path / "calm.npz", input=np.zeros((2, 6, 24), dtype=np.float32))
    out = tmp_path / "calm.json"
    assert cli.main(["sweep", str(swept["tmp"] / "dense.nir"), "--input", str(tmp_path / "calm.npz"), "--targets",
                     "loihi2", "--option", "allow-degraded=true", "--json", str(out)]) == 0
    row, = json.loads(out.read_text())["rows"]
    assert row["overflow_total"] == 0 and row["overflow"] == {} and row["health"]["overflow"] == []
