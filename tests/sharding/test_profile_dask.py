"""`profile --workers 2` on a local Dask cluster equals one process, and the client receives only
per-sample reductions of its shards (never a shard's (sample, step, neuron) activity)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from neurodeploy.analysis.profile import Reductions  # noqa: E402
from neurodeploy.cli import main as cli  # noqa: E402
from neurodeploy.cli import shard as cli_shard  # noqa: E402
from neurodeploy.models import data, path  # noqa: E402

SAMPLES = 24


@pytest.fixture(scope="module")
def conv_files(tmp_path_factory) -> dict[str, Path]:
    """digits_conv compiled for loihi2 (active updates and spike messages) and 24 test inputs."""
    root = tmp_path_factory.mktemp("profile_shards")
    x, _ = data.test_set("digits_conv")
    np.savez(root / "in.npz", input=x[:SAMPLES])
    ndp = root / "conv.loihi2.ndp"
    assert cli.main(["compile", str(path("digits_conv")), "--target", "loihi2", "-o", str(ndp)]) == 0
    return {"root": root, "in": root / "in.npz", "ndp": ndp}


def test_profile_on_a_local_cluster_equals_one_process(conv_files, monkeypatch):
    received = []
    gather = cli_shard._gather

    def keep(*args, **kwargs):
        results = gather(*args, **kwargs)
        received.extend(results)
        return results

    monkeypatch.setattr(cli_shard, "_gather", keep)
    one, two = conv_files["root"] / "one.json", conv_files["root"] / "two.json"
    base = ["profile", str(conv_files["ndp"]), "--input", str(conv_files["in"])]
    assert cli.main(base + ["--json", str(one)]) == 0
    assert cli.main(base + ["--json", str(two), "--workers", "2", "--shard-size", "5"]) == 0
    assert one.read_bytes() == two.read_bytes()
    assert [r["shard"].size for r in received] == [5, 5, 5, 5, 4]
    for r in received:  # a few numbers per sample: no array has a step or neuron axis
        red = r["reductions"]
        assert isinstance(red, Reductions) and red.samples == r["shard"].size
        assert all(v.shape == (red.samples,) for v in red.per_sample.values())
        assert all(np.ndim(v) == 0 for v in red.maxima.values())  # loihi2: one busiest step per core
