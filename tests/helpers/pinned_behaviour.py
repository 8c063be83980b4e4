"""Digests of what every zoo model and the NIR paper's CNN emulate to on every target.

``python -m tests.helpers.pinned_behaviour --write`` records them (tests/data/pinned/emulation.json);
tests/conformance/test_pinned_behaviour.py recompiles and compares. A refactor or a new code path (conv
kept as a kernel, folded pooling) must leave every integer unchanged.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

PINNED = Path(__file__).parents[1] / "data" / "pinned" / "emulation.json"
PAPER_CNN = Path(__file__).parents[1] / "data" / "nir_paper" / "cnn" / "cnn_sinabs.nir"
TARGETS = ("loihi2", "spinnaker", "emulator")
BATCH, STEPS, RATE, SEED = 2, 40, 0.2, 1234


def sources() -> dict[str, Path]:
    from neurodeploy import models

    out = {name: models.get(name).path for name in models.names()}
    out["cnn_sinabs"] = PAPER_CNN
    return out


def _input_shape(program) -> tuple[int, ...]:
    (shape,) = program.inputs.values()
    return tuple(shape)


def digests(name: str, path: Path, target: str) -> dict[str, str]:
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.emulator import run_program

    compiled = compile_model(str(path), Options(target=target, allow_degraded=True))
    program = compiled.program
    rng = np.random.default_rng(SEED)
    x = (rng.random((BATCH, STEPS) + _input_shape(program)) < RATE).astype(np.float32)
    (port,) = program.inputs
    record = ("u", "v") if target != "spinnaker" else ("v",)
    traces = run_program(program, {port: x}, record=record)
    out = {}
    for key in sorted(traces):
        arr = np.ascontiguousarray(np.asarray(traces[key]).astype(np.int64))
        out[key] = hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:16]
    return out


def compute() -> dict[str, dict[str, dict[str, str]]]:
    return {name: {t: digests(name, path, t) for t in TARGETS} for name, path in sources().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    result = compute()
    if args.write:
        PINNED.parent.mkdir(parents=True, exist_ok=True)
        PINNED.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
