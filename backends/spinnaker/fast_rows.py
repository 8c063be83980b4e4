"""A faster, equivalent synaptic row builder for sPyNNaker 7.4.1 (opt-in).

sPyNNaker's host data generation spends most of its time in
``AbstractSDRAMSynapseDynamics.convert_per_connection_data_to_rows``::

    [data[connection_row_indices == i][:max_n_synapses].reshape(-1) for i in range(n_rows)]

one boolean mask over all connections per row: O(rows x connections) for every (projection,
post-core) pair. :func:`rows` gives the same list of arrays (same order inside each row, same
truncation, same dtype and shape) from one stable sort: O(connections log connections + rows).

:func:`install` replaces the method on the class for the current process (the backend's child
process only, when asked: ``fast_rows=True`` or ``$NEURODEPLOY_SPINNAKER_FAST_ROWS=1``); it
refuses any sPyNNaker but 7.4.1. ``tests/backends/test_spinnaker_backend.py`` checks it against the
original on random inputs, and ``benchmarks/bench_spynnaker_datagen.py --fast-rows`` checks that
the synaptic matrices sPyNNaker generates are byte-identical with and without it.
"""
from __future__ import annotations

from typing import List

import numpy as np

PINNED = "1!7.4.1"


def rows(connection_row_indices: np.ndarray, n_rows: int, data: np.ndarray, max_n_synapses: int) -> List[np.ndarray]:
    """``[data[idx == i][:max_n_synapses].reshape(-1) for i in range(n_rows)]``, by one stable sort."""
    idx = np.asarray(connection_row_indices)
    order = np.argsort(idx, kind="stable")  # stable: a row keeps the connections' order, as the mask does
    sorted_idx = idx[order]
    starts = np.searchsorted(sorted_idx, np.arange(n_rows), side="left")
    stops = np.searchsorted(sorted_idx, np.arange(n_rows), side="right")
    if max_n_synapses is not None:
        stops = np.minimum(stops, starts + max(int(max_n_synapses), 0))
    ordered = data[order]
    return [ordered[a:b].reshape(-1) for a, b in zip(starts.tolist(), stops.tolist())]


def _method(self, connection_row_indices, n_rows, data, max_n_synapses):
    return rows(connection_row_indices, n_rows, data, max_n_synapses)


def install() -> None:
    """Use :func:`rows` in this process's sPyNNaker (7.4.1 only)."""
    from importlib import metadata

    from spynnaker.pyNN.models.neuron.synapse_dynamics.abstract_sdram_synapse_dynamics import (
        AbstractSDRAMSynapseDynamics,
    )

    version = metadata.version("sPyNNaker")
    if version not in (PINNED, PINNED.split("!")[-1]):
        raise RuntimeError(f"the fast row builder was checked against sPyNNaker 7.4.1 only, not {version}")
    AbstractSDRAMSynapseDynamics.convert_per_connection_data_to_rows = _method
