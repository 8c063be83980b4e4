"""Targets as data: number formats, limits and cost constants, one module per target."""
from __future__ import annotations

from neurodeploy.targets.base import Limit, Target
from neurodeploy.errors import OptionError

NAMES = ("loihi2", "spinnaker", "emulator")


def get(name: str) -> Target:
    if name == "loihi2":
        from neurodeploy.targets.loihi2 import TARGET
    elif name == "spinnaker":
        from neurodeploy.targets.spinnaker import TARGET
    elif name == "emulator":
        from neurodeploy.targets.emulator import TARGET
    else:
        raise OptionError(f"unknown target {name!r}; choose one of {', '.join(NAMES)}")
    return TARGET


__all__ = ["NAMES", "Limit", "Target", "get"]
