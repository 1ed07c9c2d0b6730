"""Spec to mesh, checks before and after building, exports, previews and imports."""

from printforge.geometry.build import build_bodies, build_mesh
from printforge.geometry.checks import spec_problems

__all__ = ["build_bodies", "build_mesh", "spec_problems"]
