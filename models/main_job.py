"""The README's main job: every zoo model, float reference and every target, side by side.

    python -m neurodeploy.models.main_job [--out DIR] [--samples N]

For each shipped model: simulate the test set with the float reference, compile it for
loihi2, spinnaker and the generic emulator profile (artifacts written to DIR), emulate each
artifact bit-accurately on the same inputs, and print one table of test accuracies (and, for
the single-neuron paper model, spike steps). Ends by writing the HTML report of digits_mlp on
loihi2.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from neurodeploy import models
from neurodeploy.format import artifact
from neurodeploy.api import build
from neurodeploy.compiler.compile import Options, compile_model
from neurodeploy.emulator.reference import simulate
from neurodeploy.analysis.verify import emulate_like_reference

TARGETS = ("loihi2", "spinnaker", "emulator")
REPORT_MODEL, REPORT_TARGET = "digits_mlp", "loihi2"  # the main job ends with this model's HTML report


def _inputs(name: str, samples: int | None):
    from neurodeploy.models import data

    if models.get(name).readout is None:
        return data.lif_paper_input(), None
    return data.test_set(name, n=samples or None)


def _calibration(name: str) -> np.ndarray | None:
    from neurodeploy.models import data

    if models.get(name).readout is None:
        return None
    return data.train_set(name, n=128)[0]


def _score(name: str, traces: dict, labels) -> str:
    if labels is None:
        steps = {k.split(".", 1)[1]: np.flatnonzero(v[0].reshape(v.shape[1], -1).any(axis=1)).tolist()
                 for k, v in traces.items() if k.startswith("spikes.")}
        return " ".join(f"{v}" for v in steps.values())
    return f"{100 * models.accuracy(name, traces, labels):.1f}%"


def run_model(name: str, out_dir: Path, samples: int | None) -> dict[str, str]:
    zoo = models.get(name)
    inputs, labels = _inputs(name, samples)
    row = {"model": name, "samples": str(inputs.shape[0]), "steps": str(inputs.shape[1])}
    start = time.perf_counter()
    row["float"] = _score(name, simulate(build(zoo.path), inputs), labels)
    for target in TARGETS:
        compiled = compile_model(zoo.path, Options(target=target), _calibration(name), "training set")
        artifact.write(compiled.to_artifact(), out_dir / f"{name}.{target}.ndp")
        traces = emulate_like_reference(compiled.program, inputs)
        cores = len(compiled.mapping.cores)
        row[target] = f"{_score(name, traces, labels)} ({cores} core{'s' if cores != 1 else ''})"
        if name == REPORT_MODEL and target == REPORT_TARGET:
            from neurodeploy.analysis.report import write_report

            write_report(compiled, inputs[:16], out_dir / f"{name}.{target}.html",
                         artifact_path=out_dir / f"{name}.{target}.ndp")
    row["time"] = f"{time.perf_counter() - start:.1f}s"
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neurodeploy.models.main_job")
    parser.add_argument("--out", default="out", help="folder for the compiled artifacts (default: out/)")
    parser.add_argument("--samples", type=int, help="limit the test set (default: all)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    columns = ["model", "samples", "steps", "float", *TARGETS, "time"]
    rows = []
    for name in models.names():
        rows.append(run_model(name, out_dir, args.samples))
        print(f"  {name}: done in {rows[-1]['time']}", flush=True)
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print()
    print("test accuracy (float reference vs each deployed target, emulated bit-accurately):")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in columns))
    print(f"\nartifacts in {out_dir}/; lif_paper shows spike steps on the float time grid")
    print(f"report: {out_dir / f'{REPORT_MODEL}.{REPORT_TARGET}.html'} (open it in a browser)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
