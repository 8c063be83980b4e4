"""The long fuzz run: tests/compiler/test_properties.py's generators and checks on many more cases.

    .venv/bin/python benchmarks/fuzz_long.py [--cases 10000] [--minutes 25] [--workers 2]
                                             [--seed 0] [--json out.json]

Case i (seed ``--seed + i``) is, by its seed: a valid graph (65%; half of them with per-layer
uniform parameters, which also get the accuracy check; 2% with fan-ins of thousands), or an
invalid one (35%, one of tests/helpers/nir_gen.py's INVALID_KINDS; a quarter of them also written to a
file and compiled through `neurodeploy compile`). Valid graphs compile for loihi2, spinnaker and
the emulator (reset zero) and must pass tests/helpers/limits_checker.py and tests/helpers/accuracy_bound.py;
invalid ones must give a NeurodeployError in bounded time and leave no file behind
(tests/helpers/fuzz_cases.py). Every other outcome is counted as a failure and printed with its seed,
which reproduces it:

    from helpers.nir_gen import NumpySource; ...  (see ``case_for_seed`` below)

The run stops after ``--cases`` cases or ``--minutes``, whichever comes first, and says how many
it ran.
"""
from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread per worker: the workers are the parallelism

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

VALID_SHARE = 0.65
CLI_SHARE = 0.25


def case_for_seed(seed: int):
    """('valid', spec, options) or ('invalid', case, through_cli) for one seed."""
    from helpers.nir_gen import NumpySource, invalid_case, valid_spec

    src = NumpySource(seed)
    if src.flag(VALID_SHARE):
        wide = src.flag(0.02)
        spec = valid_spec(src, wide=wide, homogeneous=True if src.flag(0.5) else None)
        cap = src.integer(1, 64) if src.flag(0.3) else None
        per_neuron = src.flag(0.15)
        return "valid", spec, {"neurons_per_core": cap, "per_neuron": per_neuron}
    case = invalid_case(src)
    return "invalid", case, src.flag(CLI_SHARE)


def run_one(seed: int, tmp: Path) -> dict:
    from helpers.fuzz_cases import run_invalid, run_valid

    start = time.perf_counter()
    try:
        kind, case, extra = case_for_seed(seed)
    except Exception as exc:  # noqa: BLE001 - a generator bug is reported, not hidden
        return {"seed": seed, "kind": "generator", "failures": [f"generator: {type(exc).__name__}: {exc}"],
                "seconds": time.perf_counter() - start}
    record = {"seed": seed, "kind": kind}
    try:
        if kind == "valid":
            out = run_valid(case, accuracy=True, **extra)
            record["family"] = case.family
            record["accuracy"] = {k.split(".")[0]: v for k, v in out.stats.items() if k.endswith(".accuracy")}
            record["severe"] = {k.split(".")[0]: v for k, v in out.stats.items() if k.endswith(".severe") and v}
        else:
            out = run_invalid(case, tmp if extra else None)
            record["invalid_kind"] = case.kind
            record["cli"] = bool(extra)
            record["rejected"] = out.expected_errors
        record["failures"] = out.failures
    except BaseException as exc:  # noqa: BLE001 - the harness must keep going
        if isinstance(exc, KeyboardInterrupt):
            raise
        record["failures"] = [f"harness: {type(exc).__name__}: {str(exc)[:300]}"]
    record["seconds"] = time.perf_counter() - start
    return record


def worker(worker_id: int, workers: int, first: int, cases: int, deadline: float) -> list[dict]:
    warnings.simplefilter("ignore")
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(worker_id, cases, workers):
            if time.time() > deadline:
                break
            records.append(run_one(first + i, Path(tmp)))
    return records


def summarize(records: list[dict], elapsed: float) -> dict:
    count = collections.Counter()
    invalid_kinds = collections.Counter()
    severe = collections.Counter()
    accuracy = collections.Counter()
    worst_ratio, worst_cases = 0.0, []
    failures = []
    for r in records:
        count[r["kind"]] += 1
        if r.get("failures"):
            count[f"{r['kind']}_failed"] += 1
            failures.append({"seed": r["seed"], "kind": r["kind"], "failures": r["failures"][:5]})
        if r["kind"] == "invalid":
            invalid_kinds[r["invalid_kind"]] += 1
            count["invalid_via_cli"] += r.get("cli", False)
        if r["kind"] == "valid":
            count[f"valid_{r.get('family', '?')}"] += 1
            for target, checks in r.get("severe", {}).items():
                severe[target] += 1
            for target, stats in r.get("accuracy", {}).items():
                accuracy[f"{target}_checked"] += 1
                accuracy[f"{target}_diverged"] += stats.get("first_divergence", 0) < stats.get("steps", 0)
                accuracy[f"{target}_prestart"] += bool(stats.get("prestart"))
                accuracy[f"{target}_out_of_range"] += bool(stats.get("out_of_range"))
                worst_ratio = max(worst_ratio, stats.get("worst_ratio", 0.0))
                worst_cases.append((round(stats.get("worst_ratio", 0.0), 4), r["seed"], target))
    seconds = sorted(r["seconds"] for r in records)
    return {
        "cases": len(records), "elapsed_s": round(elapsed, 1), "counts": dict(count),
        "invalid_kinds": dict(invalid_kinds), "valid_with_severe_findings": dict(severe),
        "accuracy": dict(accuracy), "accuracy_worst_error_over_bound": round(worst_ratio, 4),
        "accuracy_worst_cases": sorted(worst_cases, reverse=True)[:5],
        "case_seconds": {"median": round(seconds[len(seconds) // 2], 3) if seconds else None,
                         "max": round(seconds[-1], 2) if seconds else None},
        "failures": failures,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of case 0")
    parser.add_argument("--json", help="write the summary (and every failure) here")
    args = parser.parse_args(argv)
    start = time.time()
    deadline = start + 60 * args.minutes
    records: list[dict] = []
    if args.workers <= 1:
        records = worker(0, 1, args.seed, args.cases, deadline)
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            futures = [pool.submit(worker, w, args.workers, args.seed, args.cases, deadline)
                       for w in range(args.workers)]
            for future in futures:
                records += future.result()
    summary = summarize(records, time.time() - start)
    summary["command"] = " ".join([".venv/bin/python", "benchmarks/fuzz_long.py"] + list(argv or sys.argv[1:]))
    complete = summary["cases"] >= args.cases
    print(f"{summary['cases']} of {args.cases} cases in {summary['elapsed_s']} s "
          f"({'complete' if complete else 'stopped at the time limit'})")
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=1))
    for f in summary["failures"][:50]:
        print(f"FAIL seed {f['seed']} ({f['kind']}): {' | '.join(f['failures'])[:600]}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
