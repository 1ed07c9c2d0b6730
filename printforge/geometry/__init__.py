"""Spec to mesh, checks before and after building, exports, previews and imports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["build_bodies", "build_mesh", "spec_problems"]

if TYPE_CHECKING:
    from printforge.geometry.build import build_bodies, build_mesh
    from printforge.geometry.checks import spec_problems


def __getattr__(name: str) -> Any:
    # The CAD stack (trimesh, manifold3d, scipy) loads on first use: the slicer reads an STL's
    # framing from this package, and importing the stack with it doubled a slice's memory.
    if name in ("build_bodies", "build_mesh"):
        from printforge.geometry import build

        return getattr(build, name)
    if name == "spec_problems":
        from printforge.geometry.checks import spec_problems

        return spec_problems
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
