"""The README's main job: load every zoo model and run its test set through the float reference.

    python -m neurodeploy.models.main_job

Prints one row per model: test accuracy of the float reference (the ground truth every
deployment will be checked against), samples, steps and wall time.
"""
from __future__ import annotations

import time

import numpy as np

from neurodeploy import models
from neurodeploy.api import build
from neurodeploy.emulator.reference import simulate


def run_model(name: str) -> dict:
    from neurodeploy.models import data

    zoo = models.get(name)
    net = build(zoo.path)
    start = time.perf_counter()
    if zoo.readout is None:
        inputs = data.lif_paper_input()
        traces = simulate(net, inputs, record=("v",))
        spikes = {k: np.flatnonzero(v[0].reshape(v.shape[1], -1).any(axis=1)).tolist()
                  for k, v in traces.items() if k.startswith("spikes.")}
        result = f"spike steps {spikes}"
        samples = inputs.shape[0]
    else:
        inputs, labels = data.test_set(name)
        traces = simulate(net, inputs, record=("v",))
        result = f"accuracy {100 * models.accuracy(name, traces, labels):.1f}%"
        samples = inputs.shape[0]
    return {
        "model": name,
        "result": result,
        "samples": samples,
        "steps": inputs.shape[1],
        "seconds": time.perf_counter() - start,
    }


def main() -> int:
    rows = [run_model(name) for name in models.names()]
    print(f"{'model':<14} {'float reference':<42} {'samples':>7} {'steps':>6} {'time':>7}")
    for r in rows:
        print(f"{r['model']:<14} {r['result']:<42} {r['samples']:>7} {r['steps']:>6} {r['seconds']:>6.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
