"""Round nine's blind requests, kept as a regression set (tests/data/research/round9.jsonl).

They were written by someone who had not read the offline parser, with the facts a person can
check on the printed part: sorted extents, holes, walls, compartments, bodies, the text on it,
or that the request must be refused. Before round nine's fixes 34 of 78 were right (see
docs/llm.md). Each row runs through the offline research path (parse, requirement list) and
is built and measured here with trimesh sections, independently of printforge's own checker.
A request that must be refused may be refused outright or answered with a question (a
not_built requirement); one that must be built may do neither.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from shapely.geometry import Polygon

from printforge.geometry import build_mesh
from printforge.llm.offline import parse_request
from printforge.runtime.errors import InputError
from printforge.runtime.settings import load_settings

ROWS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "research" / "round9.jsonl")
    .read_text()
    .splitlines()
    if line.strip()
]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = load_settings(overrides={"data_dir": str(tmp_path_factory.mktemp("data"))})
    return settings.printer_profile(settings.default_printer)


def _bodies(mesh: trimesh.Trimesh) -> list[trimesh.Trimesh]:
    return [b for b in mesh.split(only_watertight=False) if len(b.faces) >= 4] or [mesh]


def _within(got: float, want: float, tol: float) -> bool:
    return abs(got - want) <= max(tol, 0.03 * want)


def _extents_match(ext: list[float], want: list[float | None], tol: float) -> bool:
    """Sorted extents against the wanted ones (None = any), in any pairing."""
    fixed = sorted(v for v in want if v is not None)
    free = sorted(ext)
    for w in fixed:
        hit = next((e for e in free if _within(e, w, tol)), None)
        if hit is None:
            return False
        free.remove(hit)
    return True


def _openings(mesh: trimesh.Trimesh) -> list[list[tuple[float, float]]]:
    """Per cross-section (along X, Y and Z), its openings: (area-equivalent diameter, the
    narrower side of the smallest rectangle around it)."""
    out = []
    lo, hi = mesh.bounds
    for axis in range(3):
        span = hi[axis] - lo[axis]
        normal = np.eye(3)[axis]
        heights = np.linspace(0.01 * span, 0.99 * span, int(min(120, max(30, span / 0.5))))
        for path in mesh.section_multiplane(plane_origin=lo, plane_normal=normal, heights=heights):
            if path is None:
                continue
            section = []
            for poly in path.polygons_full:
                for ring in poly.interiors:
                    hole = Polygon(ring)
                    box = hole.minimum_rotated_rectangle
                    xs, ys = box.exterior.coords.xy
                    sides = [math.dist((xs[i], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(2)]
                    section.append((2 * math.sqrt(hole.area / math.pi), min(sides)))
            out.append(section)
    return out


def _wall(body: trimesh.Trimesh) -> list[float]:
    walls = []
    centre = body.bounds.mean(axis=0)
    for axis in range(3):
        section = body.section(plane_origin=centre, plane_normal=np.eye(3)[axis])
        if section is None:
            continue
        planar, _ = section.to_2D()
        for poly in planar.polygons_full:
            walls += [poly.exterior.distance(Polygon(r)) for r in poly.interiors]
    return walls


def _cells(body: trimesh.Trimesh) -> int:
    best = 0
    centre = body.bounds.mean(axis=0)
    for axis in range(3):
        section = body.section(plane_origin=centre, plane_normal=np.eye(3)[axis])
        if section is None:
            continue
        planar, _ = section.to_2D()
        for poly in planar.polygons_full:
            areas = [Polygon(r).area for r in poly.interiors]
            if areas:
                best = max(best, sum(1 for a in areas if a >= 0.25 * max(areas)))
    return best


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", text).strip().upper()


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "text" and isinstance(v, str)] + [
            t for k, v in node.items() if k != "requirements" for t in _texts(v)
        ]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def check(expect: dict[str, Any], spec: Any, mesh: trimesh.Trimesh) -> list[str]:
    """The facts of `expect` the built part does not meet."""
    bad: list[str] = []
    bodies = _bodies(mesh)
    largest = max(bodies, key=lambda b: abs(b.volume))
    tol = float(expect.get("tol_mm", 1.0))
    if "extents_mm" in expect:
        want = expect["extents_mm"]
        if not any(
            _extents_match([float(v) for v in m.extents], want, tol) for m in (mesh, largest)
        ):
            bad.append(f"extents {sorted(largest.extents)} != {want}")
    if "min_extents_mm" in expect:
        want = sorted(v for v in expect["min_extents_mm"] if v is not None)
        got = sorted(float(v) for v in largest.extents)[-len(want) :]
        if any(g < w - 0.5 for g, w in zip(got, want, strict=True)):
            bad.append(f"extents {got} smaller than {want}")
    sections = None
    if any(k in expect for k in ("holes_mm", "hole_count", "holes_min")):
        sections = _openings(mesh)
    for hole in expect.get("holes_mm", []):
        d, t = (hole[0], hole[1]) if isinstance(hole, list) else (hole, max(0.3, 0.03 * hole))
        assert sections is not None
        if not any(abs(eq - d) <= t or abs(w - d) <= t for s in sections for eq, w in s):
            bad.append(f"no {d} mm opening")
    if "hole_count" in expect:
        want = expect["hole_count"]
        t = want.get("tol", max(0.3, 0.03 * want["d"]))
        assert sections is not None
        counts = [
            sum(1 for eq, w in s if min(abs(eq - want["d"]), abs(w - want["d"])) <= t)
            for s in sections
        ]
        if want["n"] not in counts:
            bad.append(f"no section with {want['n']} openings of {want['d']} mm")
    if "holes_min" in expect:
        assert sections is not None
        if (
            max((sum(1 for eq, _ in s if eq >= 1.0) for s in sections), default=0)
            < expect["holes_min"]
        ):
            bad.append(f"fewer than {expect['holes_min']} openings")
    if "wall_mm" in expect:
        w = expect["wall_mm"]
        if not any(abs(x - w) <= max(0.3, 0.1 * w) for x in _wall(largest)):
            bad.append(f"no {w} mm wall")
    if "compartments" in expect and _cells(largest) != expect["compartments"]:
        bad.append(f"{_cells(largest)} compartments, not {expect['compartments']}")
    if "bodies" in expect and len(bodies) != expect["bodies"]:
        bad.append(f"{len(bodies)} bodies, not {expect['bodies']}")
    if "bodies_min" in expect and len(bodies) < expect["bodies_min"]:
        bad.append(f"{len(bodies)} bodies, fewer than {expect['bodies_min']}")
    texts = [_norm(t) for t in _texts(spec.model_dump(mode="json")["parts"])]
    if "text" in expect and _norm(expect["text"]) not in (*texts, " ".join(texts)):
        bad.append(f"text {texts} is not {expect['text']!r}")
    for want in expect.get("texts", []):
        if _norm(want) not in [t.rstrip("°C ").strip() for t in texts]:
            bad.append(f"no text {want!r} in {texts}")
    if expect.get("watertight") and not mesh.is_watertight:
        bad.append("not watertight")
    return bad


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_round_nine_request(row: dict[str, Any], profile: Any) -> None:
    expect = row["expect"]
    if expect.get("refuse"):
        try:
            spec = parse_request(row["request"], profile)
        except InputError as err:
            assert err.message.startswith("cannot design"), err.message
            return
        # Not refused outright: then it must be a question (something it cannot build) or a
        # design that cannot be built.
        if not any(r.status == "not_built" for r in spec.requirements):
            with pytest.raises(ValueError):
                build_mesh(spec, profile)
        return
    spec = parse_request(row["request"], profile)
    missing = [f"{r.text}: {r.note}" for r in spec.requirements if r.status == "not_built"]
    assert not missing, missing
    mesh = build_mesh(spec, profile)
    assert check(expect, spec, mesh) == []
