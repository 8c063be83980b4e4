"""Every zoo model and the NIR paper's CNN emulate to the integers recorded before the conv
and architecture work (tests/helpers/pinned_behaviour.py; digests of spikes, v and u)."""
from __future__ import annotations

import json

import pytest

from tests.helpers.pinned_behaviour import PINNED, TARGETS, digests, sources

RECORDED = json.loads(PINNED.read_text())


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(RECORDED))
def test_emulation_unchanged(name, target):
    assert digests(name, sources()[name], target) == RECORDED[name][target]
