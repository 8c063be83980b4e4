"""Which neurons of a population a core slice holds, from a mapping's core entry.

A core entry (``Mapping.as_dict()["cores"][i]``, also in every artifact's manifest) is either a
1-D strip, ``start``..``stop`` of the population's flat (C, H, W) order, or a 2-D tile
(``tile`` not null): output channels ``channels[0]..channels[1]``, rows ``rows[0]..rows[1]`` and
columns ``cols[0]..cols[1]`` of a population of ``shape`` (C, H, W). A tile's ``start``/``stop``
bound its flat span (first neuron, one past the last); its neurons are not contiguous there, so
read them with ``slice_indices``. Imports numpy only.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def tile_indices(shape: tuple[int, int, int] | list[int], channels: tuple[int, int] | list[int],
                 rows: tuple[int, int] | list[int], cols: tuple[int, int] | list[int]) -> np.ndarray:
    """Flat indices (C, H, W order, ascending) of the neurons of a tile."""
    _, h, w = (int(s) for s in shape)
    c = np.arange(int(channels[0]), int(channels[1]), dtype=np.int64)
    y = np.arange(int(rows[0]), int(rows[1]), dtype=np.int64)
    x = np.arange(int(cols[0]), int(cols[1]), dtype=np.int64)
    return ((c[:, None, None] * h + y[None, :, None]) * w + x[None, None, :]).reshape(-1)


def tile_span(shape: tuple[int, int, int], channels: tuple[int, int], rows: tuple[int, int],
              cols: tuple[int, int]) -> tuple[int, int]:
    """(first flat index, last flat index + 1) of a non-empty tile."""
    _, h, w = shape
    first = (channels[0] * h + rows[0]) * w + cols[0]
    last = ((channels[1] - 1) * h + rows[1] - 1) * w + cols[1] - 1
    return first, last + 1


def slice_indices(entry: Mapping[str, Any]) -> np.ndarray | slice:
    """The neurons a core entry holds: a ``slice`` for a strip, flat indices for a tile (either
    indexes the last axis of a population's per-neuron arrays)."""
    tile = entry.get("tile")
    if tile is None:
        return slice(int(entry["start"]), int(entry["stop"]))
    return tile_indices(tile["shape"], tile["channels"], tile["rows"], tile["cols"])


def slice_size(entry: Mapping[str, Any]) -> int:
    """Neurons in a core entry."""
    tile = entry.get("tile")
    if tile is None:
        return int(entry["stop"]) - int(entry["start"])
    return int(np.prod([int(b) - int(a) for a, b in (tile["channels"], tile["rows"], tile["cols"])]))


def slice_label(entry: Mapping[str, Any]) -> str:
    """``pop[start:stop]`` for a strip, ``pop[c0:c1, y0:y1, x0:x1]`` for a tile."""
    tile = entry.get("tile")
    if tile is None:
        return f"{entry['population']}[{entry['start']}:{entry['stop']}]"
    (c0, c1), (y0, y1), (x0, x1) = tile["channels"], tile["rows"], tile["cols"]
    return f"{entry['population']}[{c0}:{c1}, {y0}:{y1}, {x0}:{x1}]"
