"""The pytest plugin users pin deployments with: golden traces and readable diffs."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from neurodeploy.pytest_plugin import Golden, assert_traces_equal, describe_difference


def traces(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"spikes.lif": (rng.random((2, 10, 4)) < 0.3).astype(np.uint8), "v.lif": rng.normal(size=(2, 10, 4))}


def test_equal_traces_have_no_difference():
    assert describe_difference(traces(), traces()) is None
    assert_traces_equal(traces(), traces())


def test_difference_names_trace_position_and_counts():
    a, b = traces(), traces()
    b["spikes.lif"][1, 7, 2] ^= 1
    message = describe_difference(a, b)
    assert "spikes.lif: 1 of 80 values differ" in message and "(1, 7, 2)" in message and "spike count" in message
    with pytest.raises(AssertionError, match="traces differ"):
        assert_traces_equal(a, b)
    del b["v.lif"]
    assert "missing traces: v.lif" in describe_difference(a, b)


def test_golden_records_then_compares(tmp_path):
    golden = Golden(tmp_path / "golden", update=False)
    golden.check("run", traces())  # first time: recorded
    assert (tmp_path / "golden" / "run.npz").exists()
    golden.check("run", traces())  # identical: passes
    with pytest.raises(AssertionError, match="differs from golden trace"):
        golden.check("run", traces(seed=1))
    Golden(tmp_path / "golden", update=True).check("run", traces(seed=1))  # accepted change
    golden.check("run", traces(seed=1))


def test_plugin_is_registered_and_fixtures_work(tmp_path):
    (tmp_path / "test_user.py").write_text(
        "import nir, numpy as np\n"
        "def test_pin(neurodeploy_compile, neurodeploy_emulate, neurodeploy_golden):\n"
        "    g = nir.NIRGraph(nodes={'input': nir.Input(input_type=np.array([2])),\n"
        "        'fc': nir.Linear(weight=np.array([[1.0, 0.5], [0.2, 0.9]])),\n"
        "        'lif': nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)*0.3, v_reset=np.zeros(2)),\n"
        "        'output': nir.Output(output_type=np.array([2]))},\n"
        "        edges=[('input', 'fc'), ('fc', 'lif'), ('lif', 'output')], metadata={'neurodeploy.dt': 1e-3})\n"
        "    compiled = neurodeploy_compile(g, 'loihi2')\n"
        "    x = (np.random.default_rng(0).random((1, 30, 2)) < 0.5).astype(float)\n"
        "    neurodeploy_golden.check('pin', neurodeploy_emulate(compiled, x))\n"
    )
    run = lambda *extra: subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",  # noqa: E731
                                         str(tmp_path / "test_user.py"), "--rootdir", str(tmp_path), *extra],
                                        capture_output=True, text=True, cwd=tmp_path)
    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "tests" / "golden" / "pin.npz").exists()
    assert run().returncode == 0
