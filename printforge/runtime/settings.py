"""Former home of the settings tree, kept so that `printforge.runtime.settings` still imports.

The tree moved to `printforge.settings`, above the floors whose sections it composes. The
names resolve lazily (PEP 562) so that importing `printforge.runtime` never pulls in the
floors above it; code inside printforge imports `printforge.settings` directly (checked by
tests/unit/test_floors.py).
"""

from __future__ import annotations

import importlib
from typing import Any

_MOVED = ("ENVIRONMENTS", "OrchestratorSettings", "PrinterEntry", "Settings", "load_settings")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module("printforge.settings"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
