"""Where printforge finds its embedded config and keeps its data."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_dir", "default_data_dir"]


def config_dir() -> Path:
    """The embedded config: `printforge/_config` in a wheel, else `config/` in a checkout."""
    here = Path(__file__).resolve().parent.parent
    bundled = here / "_config"
    if bundled.is_dir():
        return bundled
    return here.parent / "config"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "printforge"
