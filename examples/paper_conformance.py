"""Which NIR-paper graph runs on which target, and how closely it follows the float reference.

    python examples/paper_conformance.py [--data tests/data/nir_paper]

For every paper graph and every target: compile under the semantics the paper meant, emulate
bit-accurately on seeded event inputs of the right shape, and compare with the float reference
per layer (spike agreement, first divergence, output class agreement). Where a target cannot
express the graph (reset by subtraction on loihi2/spinnaker), the row shows the compiler's error
and the nearest option (reset to zero) is compiled instead. The table is docs/conformance.md.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.errors import NeurodeployError
from neurodeploy.analysis.verify import compare

# graph file, semantics the paper meant, input shape (steps, *shape), event rate
GRAPHS = {
    "lif_norse": ("lif/lif_norse.nir", dict(dt=1e-4, reset="zero"), (200, 1), 0.05),
    "two_lif_neurons": ("lif/two_lif_neurons.nir", dict(dt=1e-4, reset="zero"), (200, 1), 0.3),
    "cnn_sinabs": ("cnn/cnn_sinabs.nir", dict(dt=1.0, reset="subtract"), (20, 2, 34, 34), 0.05),
    "braille_bias_zero": ("braille/braille_noDelay_bias_zero.nir", dict(dt=1e-4, reset="zero"), (100, 12), 0.1),
    "braille_subtract": ("braille/braille_noDelay_noBias_subtract.nir", dict(dt=1e-4, reset="subtract"), (100, 12), 0.1),
}
TARGETS = ("loihi2", "spinnaker", "emulator")


def inputs_for(shape: tuple[int, ...], rate: float, samples: int = 4, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((samples,) + shape) < rate).astype(np.float64)


def row(data: Path, name: str, target: str) -> dict:
    path, semantics, shape, rate = GRAPHS[name]
    x = inputs_for(shape, rate)
    note = ""
    try:
        compiled = compile_model(data / path, Options(target=target, allow_degraded=True, **semantics), x)
    except NeurodeployError as exc:
        if semantics.get("reset") != "subtract":
            return {"graph": name, "target": target, "result": f"error: {exc}"}
        note = f"reset subtract refused ({str(exc).split(';')[0]}); compiled with --reset zero"
        compiled = compile_model(data / path, Options(target=target, allow_degraded=True,
                                                      **{**semantics, "reset": "zero"}), x)
    report = compare(compiled.net, compiled.program, x)
    layers = []
    for pop, entry in report["populations"].items():
        if "spike_agreement" in entry:
            first = entry["first_divergent_step"]
            layers.append(f"{pop}: {100 * entry['spike_agreement']:.2f}%"
                          + ("" if first is None else f" (from step {first})"))
    classes = [e["class_agreement"] for e in report["outputs"].values() if e.get("class_agreement") is not None]
    severe = [f.check for f in compiled.health.severe]
    return {"graph": name, "target": target, "note": note, "layers": layers,
            "class": f"{100 * classes[0]:.0f}%" if classes else "-", "severe": severe}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "nir_paper"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| graph | semantics | target | spike agreement per layer (first divergence) | output class agreement | notes |")
    print("|---|---|---|---|---|---|")
    for name, (_, semantics, _, _) in GRAPHS.items():
        for target in TARGETS:
            r = row(Path(args.data), name, target)
            sem = ", ".join(f"{k}={v}" for k, v in semantics.items())
            if "result" in r:
                print(f"| {name} | {sem} | {target} | {r['result']} | | |")
                continue
            notes = "; ".join(filter(None, [r["note"], ("health: " + ", ".join(r["severe"])) if r["severe"] else ""]))
            print(f"| {name} | {sem} | {target} | {'; '.join(r['layers'])} | {r['class']} | {notes} |")


if __name__ == "__main__":
    main()
