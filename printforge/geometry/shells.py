"""Splitting a mesh into the solids it prints as (used by the exports and the printability
checks; kept apart from the exports so that the checks do not import the OpenSCAD writer)."""

from __future__ import annotations

import trimesh

__all__ = ["solid_bodies"]


def solid_bodies(mesh: trimesh.Trimesh) -> list[trimesh.Trimesh]:
    """The separate solids of `mesh`, each with the cavities inside it.

    Splitting by connected faces alone makes a closed cavity (a hollow ball's inner surface,
    facing inwards) a body of its own: written as a 3MF object it is an inside-out solid,
    which a slicer turns round and prints as a filled ball inside the hollow one.
    """
    shells = mesh.split(only_watertight=False)
    if len(shells) < 2:
        return [mesh]
    solids = [s for s in shells if s.volume >= 0]
    cavities: dict[int, list[trimesh.Trimesh]] = {i: [] for i in range(len(solids))}
    for shell in shells:
        if shell.volume >= 0:
            continue
        lo, hi = shell.bounds
        around = [
            i
            for i, s in enumerate(solids)
            if (s.bounds[0] <= lo).all() and (hi <= s.bounds[1]).all()
        ]
        if around:
            cavities[min(around, key=lambda i: solids[i].volume)].append(shell)
        else:  # not inside anything: keep it rather than lose faces
            solids.append(shell)
            cavities[len(solids) - 1] = []
    return [
        trimesh.util.concatenate([s, *cavities[i]]) if cavities[i] else s
        for i, s in enumerate(solids)
    ]
