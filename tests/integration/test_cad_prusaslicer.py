"""An independent reader agrees: PrusaSlicer loads every family's STL as one manifold solid of
the volume we computed, and reads our 3MF with one object per body."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from printforge.geometry import build_mesh
from printforge.geometry.examples import EXAMPLES, example_spec
from printforge.geometry.exports import write_3mf, write_stl

pytestmark = pytest.mark.prusaslicer


def _info(path: Path) -> list[dict[str, str]]:
    exe = shutil.which("prusa-slicer")
    assert exe is not None, "prusa-slicer is not installed (scripts/setup installs it)"
    out = subprocess.run(
        [exe, "--info", str(path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    blocks = re.split(r"^\[.*\]$", out, flags=re.M)[1:]
    return [dict(re.findall(r"^(\w+) = *(.+)$", b, flags=re.M)) for b in blocks]


def test_every_family_is_manifold_for_prusaslicer(tmp_path: Path) -> None:
    wrong = []
    for kind in EXAMPLES:
        mesh = build_mesh(example_spec(kind))
        (info,) = _info(write_stl(mesh, tmp_path / f"{kind}.stl"))
        if (
            info["manifold"] != "yes"
            or abs(float(info["volume"]) - mesh.volume) > 1e-3 * mesh.volume
        ):
            wrong.append((kind, info["manifold"], info["volume"], mesh.volume))
    assert wrong == []


def test_3mf_bodies_are_separate_objects(tmp_path: Path) -> None:
    mesh = build_mesh(example_spec("box_with_lid"))
    infos = _info(write_3mf(mesh, tmp_path / "kit.3mf"))
    assert len(infos) == 2
    assert all(i["manifold"] == "yes" for i in infos)
    heights = sorted(float(i["size_z"]) for i in infos)
    assert heights == pytest.approx([6.0, 40.0])
