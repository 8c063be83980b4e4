"""Cross-exporter corpus: NIR files from every installed exporter, with each framework's own run.

For each exporter (norse, neurodeploy's export_norse, snnTorch, sinabs, rockpool, nirtorch) and
each kind of model it can express (dense, conv, recurrent, CubaLIF, IF, LI readout, delays,
scalar vs per-neuron parameters), a small seeded model is built and exported. Where the export
works the corpus holds ``<exporter>__<case>.nir``, ``<exporter>__<case>.npz`` (the seeded input
spikes and the framework's own spikes and v, keyed by the file's node names) and an entry in
``manifest.json``: exporter, version, kinds, status (exported / failed upstream with the one-line
error / not expressible / not installed), the semantics (dt, integrator, reset, spike amplitude)
and tolerance it is checked under, the known export bug and the patch that fixes it.

Regenerate:  .venv/bin/python -m tests.exporter_corpus --out out/corpus [--table]
Checked by tests/convert/test_corpus.py; results in docs/exporters.md.
"""
from __future__ import annotations

from .build import MANIFEST, all_cases, attempt, build, load_manifest
from .spec import KINDS, TARGETS, Case, Exporter, Inputs, Tolerance

__all__ = ["KINDS", "MANIFEST", "TARGETS", "Case", "Exporter", "Inputs", "Tolerance", "all_cases", "attempt",
           "build", "load_manifest"]
