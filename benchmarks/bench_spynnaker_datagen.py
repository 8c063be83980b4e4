"""sPyNNaker 7.4.1 host data generation on a virtual board: the zoo models and a 10k-neuron,
~3M-synapse network (input 1000 -> A 4500 <-> B 4500).

    .venv/bin/python benchmarks/bench_spynnaker_datagen.py [--fast-rows] [--skip-zoo] [--repeat N]

Prints, per network: synapses, wall time of the sPyNNaker child (import excluded), sPyNNaker's own
"Graph data specification writer" timer (the data generation), and the time spent in
AbstractSDRAMSynapseDynamics.convert_per_connection_data_to_rows. With --fast-rows, the same with
neurodeploy's equivalent row builder (backends/spinnaker/fast_rows.py) installed, and whether the
synaptic words sPyNNaker generated are identical. Runs side by side in one process per mode.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse

from neurodeploy.backends.lava.backend import program_artifact
from neurodeploy.backends.spinnaker import map_many
from neurodeploy.compiler.mapping import map_program
from neurodeploy.targets.spinnaker import TARGET as SPINNAKER
from neurodeploy.format.program import Program, QConnection, QPopulation


def big_program(seed: int = 0, n_in: int = 1000, n_a: int = 4500, n_b: int = 4500,
                p_in: float = 0.22, p_ab: float = 0.05) -> Program:
    rng = np.random.default_rng(seed)

    def pop(name: str, n: int) -> QPopulation:
        z = np.zeros(n, dtype=np.int64)
        params = {"v_init": z, "v_rest": z, "v_reset": z, "v_thresh": np.full(n, 1 << 15, np.int64), "i_offset": z,
                  "tau_m": np.full(n, 20 << 15, np.int64), "cm": np.full(n, 20 << 15, np.int64), "tau_refrac": z,
                  "tau_syn_e": np.full(n, 5 << 15, np.int64), "tau_syn_i": np.full(n, 5 << 15, np.int64),
                  "isyn_exc_init": z, "isyn_inh_init": z}
        return QPopulation(name, "IF_curr_exp", "CubaLIF", (n,), True, np.ones(n), params, 1)

    def conn(name: str, src: str, tgt: str, n_in_: int, n_out: int, p: float) -> QConnection:
        m = scipy.sparse.random(n_out, n_in_, density=p, format="csr", random_state=rng, dtype=np.float64)
        m.sort_indices()
        words = rng.integers(1, 2000, size=m.nnz).astype(np.uint16)
        types = (rng.random(m.nnz) < 0.3).astype(np.uint8)
        arrays = {"weight": words, "synapse_type": types, "indices": m.indices.astype(np.int64),
                  "indptr": m.indptr.astype(np.int64)}
        return QConnection(name, src, tgt, "sparse", n_in_, n_out, src == tgt, arrays,
                           {"ring_buffer_shift": [16, 16], "delay": 1, "synapses": int(m.nnz)})

    pops = [pop("A", n_a), pop("B", n_b)]
    conns = [conn("in_A", "input", "A", n_in, n_a, p_in), conn("A_B", "A", "B", n_a, n_b, p_ab),
             conn("B_A", "B", "A", n_b, n_a, p_ab)]
    return Program("spinnaker", {"input": (n_in,)}, pops, conns, {},
                   {"time_step_ms": 1.0, "time_step_bits": 1 << 15, "ring_buffer_shift": {"A": [16, 16], "B": [16, 16]}})


def zoo_artifacts() -> dict:
    from neurodeploy.compiler.compile import Options, compile_model
    from neurodeploy.models import paths

    return {name: compile_model(path, Options(target="spinnaker")).to_artifact() for name, path in paths().items()}


def measure(arts: dict, fast_rows: bool, folder: Path, repeat: int) -> dict:
    """Each network ``repeat`` times in one sPyNNaker process; the fastest run of each is kept."""
    names = [n for n in arts for _ in range(repeat)]
    readback = [str(folder / f"{name}.{i}.{'fast' if fast_rows else 'ref'}.npz") for i, name in enumerate(names)]
    reports = map_many([(arts[n], None) for n in names], readback=readback, fast_rows=fast_rows, time_rows=True)
    out: dict = {}
    for name, report, rb in zip(names, reports, readback):
        t = report["timings_s"]
        entry = {"synapses": sum(s["synapses"] for s in report["synapses"].values()),
                 "child_s": t["build"] + t["run"], "datagen_s": report["algorithm_timings_ms"].get(
                     "Graph data specification writer", float("nan")) / 1000.0,
                 "rows_s": report["row_builder"]["seconds"], "rows_calls": report["row_builder"]["calls"],
                 "digest": report["row_builder"]["sha256"], "cores": report["cores"],
                 "matches": report["matches"], "readback": rb}
        if name not in out or entry["child_s"] < out[name]["child_s"]:
            out[name] = entry
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast-rows", action="store_true", help="also measure with the faster row builder installed")
    ap.add_argument("--skip-zoo", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="runs per network and mode (fastest kept)")
    args = ap.parse_args()
    arts = {} if args.skip_zoo else zoo_artifacts()
    t0 = time.perf_counter()
    program = big_program()
    big = program_artifact(program)
    big.manifest["mapping"] = map_program(program, SPINNAKER).as_dict()  # the compiler's mapping, for comparison
    arts["10k_3M"] = big
    print(f"built the 10k/3M program in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        modes = [False, True] if args.fast_rows else [False]
        results = {mode: measure(arts, mode, folder, args.repeat) for mode in modes}
        print("| network | synapses | mode | map + data generation (s) | Graph data specification writer (s) "
              "| convert_per_connection_data_to_rows (s, calls) | words equal artifact |")
        print("|---|---|---|---|---|---|---|")
        for name in arts:
            for mode in modes:
                r = results[mode][name]
                m = r["matches"]
                print(f"| {name} | {r['synapses']:,} | {'fast rows' if mode else 'sPyNNaker 7.4.1'} | "
                      f"{r['child_s']:.2f} | {r['datagen_s']:.2f} | {r['rows_s']:.2f} ({r['rows_calls']}) | "
                      f"{m['weights'] and m['delays'] and m['shifts']} |")
        for name in arts:
            r = results[False][name]
            print(f"{name}: cores {r['cores']}; matches {r['matches']}")
        if args.fast_rows:
            for name in arts:
                a = np.load(results[False][name]["readback"])
                b = np.load(results[True][name]["readback"])
                same = sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
                digest = results[False][name]["digest"] == results[True][name]["digest"]
                print(f"{name}: synaptic matrices byte-identical with and without fast rows: {digest} "
                      f"(sha256 {results[True][name]['digest'][:12]}); read-back synapses identical: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
