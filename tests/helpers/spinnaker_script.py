"""Running a script written by `neurodeploy export --format pynn` on sPyNNaker's virtual board."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def run_exported(script: Path, x: np.ndarray, folder: Path) -> dict[str, np.ndarray]:
    """Run ``script`` on input ``x`` with ``--record v`` (its own config in ``folder``/home, never the
    user's) and return the arrays it wrote."""
    from neurodeploy.backends.spinnaker.backend import Machine, child_env, write_config

    home = folder / "home"
    write_config(home, Machine())
    np.savez(folder / "x.npz", input=x)
    proc = subprocess.run([sys.executable, str(script), "--input", str(folder / "x.npz"), "--record", "v",
                           "-o", str(folder / "out.npz")], cwd=home, env=child_env(home),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with np.load(folder / "out.npz") as out:
        return {k: out[k] for k in out.files}
