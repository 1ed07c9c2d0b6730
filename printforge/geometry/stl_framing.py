"""Whether a file is framed as an STL at all, before a mesh library reads it."""

from __future__ import annotations

from pathlib import Path

__all__ = ["stl_framing_problem"]


def stl_framing_problem(path: Path) -> str | None:
    """Why a file cannot be an STL, from its framing alone, or None. trimesh reads a damaged
    or foreign file as zero triangles, which would be reported as an "empty" model."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(84)
        count = int.from_bytes(head[80:84], "little") if size >= 84 else -1
        if count >= 0 and 84 + 50 * count == size:
            return None  # binary, whatever its header says (some begin with "solid" too)
        if head.lstrip().lower().startswith(b"solid"):
            f.seek(0)
            text = f.read(1 << 20).lower()
            if b"facet" in text or b"endsolid" in text:
                return None  # ASCII; one with no facets is read, and refused, as empty
            return "it starts like an ASCII STL ('solid') but holds no 'facet' lines"
    if size < 84:
        return f"{size} bytes is shorter than a binary STL's 84-byte header"
    return (
        f"its header announces {count} triangles ({84 + 50 * count} bytes) but the file has"
        f" {size} bytes; it is damaged or not an STL"
    )
