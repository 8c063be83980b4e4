"""The Lava backend: run loihi2 artifacts in Lava 0.10.0 (its own Python 3.10 environment).

Light on import: numpy and the standard library; Lava itself runs in a subprocess
(``runner.py`` under ``.venv-lava/bin/python``).
"""
from __future__ import annotations

from neurodeploy.backends.lava.backend import (LavaBackendError, LavaTraces, conv_paths, doctor, lava_python,
                                               program_artifact, run, run_many, summary_lines)

__all__ = ["LavaBackendError", "LavaTraces", "conv_paths", "doctor", "lava_python", "program_artifact", "run",
           "run_many", "summary_lines"]
