"""List functions longer than a limit (default 80 lines) in the project's source folders."""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("neurodeploy", "compiler", "emulator", "backends", "models")


def long_functions(limit: int) -> list[tuple[str, str, int]]:
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > limit:
                        found.append((str(path.relative_to(ROOT)), node.name, length))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=80)
    args = parser.parse_args()
    found = long_functions(args.limit)
    for path, name, length in found:
        print(f"{path}: {name} ({length} lines)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
