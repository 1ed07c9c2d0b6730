"""Spec-node dictionaries from primitives, for the few shapes without a family node of their own
(a dome is a sphere minus a box, a hex nut a prism minus a cylinder)."""

from __future__ import annotations

from typing import Any

__all__ = ["EPS", "box", "cyl", "diff", "tr"]

Node = dict[str, Any]
EPS = 0.01  # cutters overshoot faces by this much so booleans leave no skins


def _r(v: float) -> float:
    return round(v, 4)


def box(x: float, y: float, z: float) -> Node:
    """Corner at the origin."""
    return {"kind": "box", "size": [_r(x), _r(y), _r(z)], "center": False}


def cyl(height: float, radius: float, z0: float = 0.0) -> Node:
    """Standing on z = z0, centred on the Z axis."""
    node: Node = {"kind": "cylinder", "height": _r(height), "radius": _r(radius), "center": False}
    return tr([0, 0, z0], node) if z0 else node


def tr(offset: list[float], *children: Node) -> Node:
    return {"kind": "translate", "offset": [_r(v) for v in offset], "children": list(children)}


def diff(keep: Node, *cuts: Node) -> Node:
    """`keep` with every cut removed."""
    return keep if not cuts else {"kind": "difference", "children": [keep, *cuts]}
