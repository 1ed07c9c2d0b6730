"""Where printforge finds its embedded config and keeps its data."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "config_dir", "default_data_dir", "private_dir"]

# The data directory holds the job store, API key hashes, uploads and every job's files: only
# the account that runs printforge may list or read it.
PRIVATE_DIR_MODE = 0o700


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


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; tighten it if it already exists and is ours.

    A directory made by an older version (0755 under the usual umask) is tightened too, or a
    data directory created before this rule stays world-readable for ever.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        path.chmod(PRIVATE_DIR_MODE)
    return path
