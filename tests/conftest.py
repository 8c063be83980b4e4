"""Shared test setup: tests/ on sys.path, so that every test folder imports tests/helpers/ as
``helpers`` (random NIR graphs, fuzz cases, the independent limits checker, accuracy bound,
pinned emulation digests)."""
from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
