"""ONNX -> spiking NIR -> Loihi 2 / SpiNNaker, on sklearn's digits.

Trains (seeded, one CPU thread, about 10 s) a torch MLP and a small CNN (with BatchNorm) on the
8x8 digits, exports each with ``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``:
it needs only the ``onnx`` package), converts it to a rate-coded spiking NIR graph (IF neurons,
threshold balancing at the 99.9th activation percentile, reset to zero), compiles the graph
for loihi2 and spinnaker, runs the bit-accurate emulator, and prints the test accuracy of the
ANN, of the converted network in the float reference (reset to zero, as deployed, and reset by
subtraction for comparison), and of both targets, at several step counts::

    .venv/bin/python examples/onnx_digits.py                    # files go to a fresh temp folder
    .venv/bin/python examples/onnx_digits.py --out build/onnx_digits --steps 25,50,100,200

The same conversion from the command line (the example writes cal_<model>.npz to --out)::

    neurodeploy convert mlp.onnx --calibrate cal_mlp.npz -o mlp.nir --steps 100
    neurodeploy compile mlp.nir --target loihi2

Test inputs are the 450 held-out digits (pixel / 16), presented as Bernoulli spike trains
(``neurodeploy.convert.ann_to_snn.encode``, seed 1234): one run of the longest step count is
made per model and target, and the shorter step counts are its first steps (every model here is
causal, so this is the same as running them separately). One test digit is 0.22 points.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")  # the TorchScript exporter's deprecation notice, compile health notes

TEST_SEED = 1234
CAL_SEED = 7


def train(kind: str, x_tr: np.ndarray, y_tr: np.ndarray, epochs: int = 40):
    import torch

    torch.manual_seed(0)
    if kind == "mlp":
        net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                                  torch.nn.ReLU(), torch.nn.Linear(64, 10))
        lr = 1e-2
    else:
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(32 * 2 * 2, 10))
        lr = 5e-3
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xs, ys = torch.tensor(x_tr), torch.tensor(y_tr)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xs), generator=g)
        for i in range(0, len(xs), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xs[idx]), ys[idx]).backward()
            opt.step()
    return net.eval()


def export(net, sample: np.ndarray, path: Path) -> None:
    import torch

    # do_constant_folding=False keeps BatchNormalization as a node: neurodeploy folds it itself.
    torch.onnx.export(net, (torch.tensor(sample[:1]),), str(path), dynamo=False, do_constant_folding=False,
                      input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "batch"}})


def accuracy_by_steps(predict, traces: dict, labels: np.ndarray, steps: list[int]) -> list[float]:
    out = []
    for t in steps:
        prefix = {k: v[:, :t] for k, v in traces.items()}
        out.append(float(np.mean(predict(prefix) == labels)))
    return out


def run_model(kind: str, data, steps: list[int], out: Path, samples: int, max_rate: float | None = None,
              seed: int = TEST_SEED) -> dict:
    import torch

    from neurodeploy.api import simulate
    from neurodeploy.convert import ann_to_snn
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.analysis.verify import emulate_like_reference

    x_tr, y_tr, x_te, y_te = data
    shape = (64,) if kind == "mlp" else (1, 8, 8)
    x_tr, x_te = x_tr.reshape((-1,) + shape), x_te.reshape((-1,) + shape)[:samples]
    y_te = y_te[:samples]
    t0 = time.time()
    net = train(kind, x_tr, y_tr)
    train_s = time.time() - t0
    with torch.no_grad():
        ann_acc = float((net(torch.tensor(x_te)).argmax(1).numpy() == y_te).mean())
    onnx_path = out / f"{kind}.onnx"
    export(net, x_tr, onnx_path)
    np.savez(out / f"cal_{kind}.npz", input=x_tr)
    print(f"{kind}: trained in {train_s:.1f} s, ANN test accuracy {100 * ann_acc:.2f}%, wrote {onnx_path}", flush=True)

    t_max = max(steps)
    result = {"model": kind, "ann": ann_acc, "train_s": train_s, "steps": steps}
    conversions = {}
    for reset in ("zero", "subtract"):
        conversion = ann_to_snn.convert(onnx_path, x_tr, steps=100, encoding="rate", reset=reset,
                                        max_rate=max_rate)
        nir_path = ann_to_snn.write(conversion, out / f"{kind}_{reset}.nir")
        conversions[reset] = (conversion, nir_path)
    conversion, nir_path = conversions["zero"]
    result["max_rate"] = {r: c.info["max_rate"] for r, (c, _) in conversions.items()}
    spikes = ann_to_snn.encode(x_te, conversion, steps=t_max, seed=seed)
    predict = lambda traces: ann_to_snn.predict(traces, conversion)  # noqa: E731

    for reset, (conv, path) in conversions.items():
        t0 = time.time()
        traces = simulate(path, spikes, warn=False)
        result[f"float_{reset}"] = accuracy_by_steps(predict, traces, y_te, steps)
        print(f"  float reference, reset {reset}: {time.time() - t0:.1f} s", flush=True)

    calibration = ann_to_snn.encode(x_tr[:200], conversion, steps=100, seed=CAL_SEED)
    for target in ("loihi2", "spinnaker"):
        t0 = time.time()
        compiled = compile_model(nir_path, Options(target=target), calibration)
        cores = len(compiled.mapping.cores)
        traces = emulate_like_reference(compiled.program, spikes)
        result[target] = accuracy_by_steps(predict, traces, y_te, steps)
        result[f"{target}_cores"] = cores
        severe = [f"{f.layer}: {f.message}" for f in compiled.health.severe]
        print(f"  {target}: {cores} cores, compiled and emulated in {time.time() - t0:.1f} s"
              + (f"; severe: {severe}" if severe else ""), flush=True)
    return result


def table(results: list[dict]) -> str:
    lines = ["| model | steps | ANN | float SNN (reset zero) | loihi2 | spinnaker | float SNN (reset subtract) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for i, t in enumerate(r["steps"]):
            lines.append(f"| {r['model']} | {t} | {100 * r['ann']:.2f} | {100 * r['float_zero'][i]:.2f} | "
                         f"{100 * r['loihi2'][i]:.2f} | {100 * r['spinnaker'][i]:.2f} | "
                         f"{100 * r['float_subtract'][i]:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="folder for the .onnx/.nir/.npz files (default: a new temp folder)")
    parser.add_argument("--steps", default="25,50,100,200", help="comma-separated step counts")
    parser.add_argument("--models", default="mlp,cnn", help="mlp, cnn or both")
    parser.add_argument("--samples", type=int, default=450, help="test digits to use (default: all 450)")
    parser.add_argument("--max-rate", type=float, help="convert with this max rate (default: 0.5 for reset zero, "
                                                       "1 for reset subtract)")
    parser.add_argument("--seed", type=int, default=TEST_SEED, help=f"seed of the test spike trains ({TEST_SEED})")
    args = parser.parse_args(argv)

    import torch

    from neurodeploy.models.data import digits_split

    torch.set_num_threads(1)  # tiny layers: one thread is fastest, and the run is reproducible
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="onnx_digits_"))
    out.mkdir(parents=True, exist_ok=True)
    steps = sorted({int(s) for s in args.steps.split(",")})
    x_tr, y_tr, x_te, y_te = digits_split()
    data = ((x_tr / 16).astype(np.float32), y_tr, (x_te / 16).astype(np.float32), y_te)
    results = [run_model(kind, data, steps, out, args.samples, args.max_rate, args.seed)
               for kind in args.models.split(",")]
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print()
    rates = ", ".join(f"reset {k}: {v:g}" for k, v in results[0]["max_rate"].items())
    print(f"test accuracy (%) on {min(args.samples, len(y_te))} digits, rate-coded inputs (seed {args.seed}), "
          f"max rate {rates}:")
    print(table(results))
    print(f"\nfiles in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
