"""python -m tests.exporter_corpus [--out DIR] [--exporter NAME ...] [--table]

Regenerates the corpus into DIR (default out/corpus), prints one line per case, and with --table
checks every file with neurodeploy and prints the tables of docs/exporters.md. Exits 1 when a
case's status differs from what its definition expects (an upstream fix or a new failure).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .build import all_cases, build


def _expected_status(expect: str) -> str:
    return expect if expect in ("not_expressible", "failed_upstream") else "exported"


def _fixed_hash_seed() -> None:
    """Re-run this command with PYTHONHASHSEED=0: the exporters built on nirtorch's
    extract_nir_graph list edges in set order, which changes with the hash seed, and so would
    the bytes of their files."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.exporter_corpus", description=__doc__.split("\n\n")[1])
    parser.add_argument("--out", default="out/corpus", help="output folder (default: out/corpus)")
    parser.add_argument("--exporter", action="append", help="only this exporter (repeatable)")
    parser.add_argument("--table", action="store_true", help="check the files and print the markdown tables")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.exporter)
    declared = {c.stem: c.expect for c in all_cases()}
    unexpected = 0
    for e in manifest["cases"]:
        want = _expected_status(declared[e["case"]])
        flag = ""
        if e["status"] not in (want, "not_installed"):
            flag, unexpected = f"   <-- expected {want}", unexpected + 1
        detail = e.get("error", e.get("file", e.get("reason", "")))
        print(f"{e['case']:40s} {e['status']:16s} {detail}{flag}")
    print(f"{len(manifest['cases'])} cases -> {Path(args.out) / 'manifest.json'}")
    if args.table:
        from .table import render

        print()
        print(render(manifest, Path(args.out)))
    return 1 if unexpected else 0


if __name__ == "__main__":
    _fixed_hash_seed()
    sys.exit(main())
