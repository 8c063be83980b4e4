"""The names of recordable state, one per state on every command and target.

``v`` is the membrane voltage and ``i`` the synaptic current, everywhere. Loihi 2 programs
(and the generic emulator profile) call their current ``u``: there ``i`` records ``u``, and
``u`` stays accepted as an alias. ``spikes`` of spiking populations are always recorded, so
asking for them is no error (and changes nothing). Any other name is refused with the list of
names valid for that command and target.
"""
from __future__ import annotations

import sys
from typing import Iterable, Mapping

from neurodeploy.errors import OptionError

ALWAYS = "spikes"


def names(backend: str, target: str) -> dict[str, str]:
    """``{name you may ask for: the state the kernel records}`` for a backend (or ``simulate``)."""
    if backend == "simulate":
        return {"v": "v", "i": "i", "u": "i"}
    if backend == "spinnaker":  # sPyNNaker records v (and spikes) of its populations
        return {"v": "v"}
    if target == "spinnaker":  # the emulator of a SpiNNaker program: v and I_syn (gsyn)
        return {"v": "v", "i": "i"}
    return {"v": "v", "i": "u", "u": "u"}  # Loihi 2 and the generic profile: the current is u


def parse(text: str | Iterable[str], valid: Mapping[str, str], where: str) -> list[str]:
    """The names asked for in ``text`` (comma-separated), checked against ``valid``."""
    items = text.split(",") if isinstance(text, str) else list(text)
    asked: list[str] = []
    for item in (str(i).strip() for i in items):
        if item == ALWAYS:
            print(f"note: {where} always records spikes; --record {ALWAYS} is not needed", file=sys.stderr)
        elif item and item not in valid:
            raise OptionError(f"--record {item}: {where} records {describe(valid)}; spikes are always recorded")
        elif item and item not in asked:
            asked.append(item)
    return asked


def describe(valid: Mapping[str, str]) -> str:
    """``v, i (u: alias of i)``-style list of the names in ``valid``."""
    main = [n for n in valid if n in ("v", "i")]
    aliases = [f"{n}: alias of {m}" for n in valid if n not in main for m in main if valid[m] == valid[n]]
    return ", ".join(main) + (f" ({'; '.join(aliases)})" if aliases else "")


def states(asked: Iterable[str], valid: Mapping[str, str]) -> list[str]:
    """The kernel states to record for the names ``asked``."""
    out: list[str] = []
    for name in asked:
        if valid[name] not in out:
            out.append(valid[name])
    return out


def rename(traces: dict, asked: Iterable[str], valid: Mapping[str, str]) -> dict:
    """Traces keyed by the names asked for (``i.<pop>`` for Loihi's ``u.<pop>`` where ``i`` was asked)."""
    asked = list(asked)
    out = {}
    for key, value in traces.items():
        state, _, pop = key.partition(".")
        wanted = [n for n in asked if valid.get(n) == state]
        if not wanted or state == ALWAYS:
            out[key] = value
        for name in wanted if state != ALWAYS else []:
            out[f"{name}.{pop}"] = value
    return out
