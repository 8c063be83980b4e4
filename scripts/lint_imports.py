"""Check the import contracts of .importlinter (import-linter).

The repository keeps compiler/, emulator/, backends/ and models/ at the top level and maps them
into the ``neurodeploy`` package (pyproject.toml, package-dir); import-linter walks a package's
own folder, so the package is laid out as installed in a temporary folder (Python files only)
and checked there.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = {"compiler": "compiler", "emulator": "emulator", "backends": "backends", "models": "models"}


def lay_out(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.nir", "*.npz", "*.json", "*.md", "zoo")
    shutil.copytree(ROOT / "neurodeploy", dest / "neurodeploy", ignore=ignore)
    for name, folder in SUBPACKAGES.items():
        shutil.copytree(ROOT / folder, dest / "neurodeploy" / name, ignore=ignore)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        lay_out(Path(tmp))
        lint = Path(sys.executable).with_name("lint-imports")
        return subprocess.run([str(lint), str(ROOT / ".importlinter")], cwd=tmp,
                              env={"PYTHONPATH": tmp, "PATH": "/usr/bin:/bin"}).returncode


if __name__ == "__main__":
    sys.exit(main())
