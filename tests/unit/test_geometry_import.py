"""A user's mesh is repaired when that is safe, and refused with the reason otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from printforge.geometry.importer import ImportRefused, import_mesh


def _cube() -> trimesh.Trimesh:
    return trimesh.creation.box((20, 20, 20))


def _save(mesh: trimesh.Trimesh, path: Path) -> Path:
    mesh.export(path)
    return path


def test_clean_stl_is_centred_on_the_bed(tmp_path: Path) -> None:
    cube = _cube()
    cube.apply_translation((100, 50, 30))
    mesh, repairs = import_mesh(_save(cube, tmp_path / "cube.stl"))
    assert repairs == []
    assert mesh.is_watertight
    np.testing.assert_allclose(mesh.bounds, [[-10, -10, 0], [10, 10, 20]], atol=1e-6)


def test_missing_triangle_is_filled(tmp_path: Path) -> None:
    cube = _cube()
    broken = trimesh.Trimesh(cube.vertices, cube.faces[1:], process=False)
    mesh, repairs = import_mesh(_save(broken, tmp_path / "hole.stl"))
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(8000, rel=1e-6)
    assert any("filled small holes" in r for r in repairs)


def test_flipped_triangles_are_turned_round(tmp_path: Path) -> None:
    cube = _cube()
    faces = cube.faces.copy()
    faces[[2, 7]] = faces[[2, 7]][:, ::-1]
    mesh, repairs = import_mesh(
        _save(trimesh.Trimesh(cube.vertices, faces, process=False), tmp_path / "flip.obj")
    )
    assert mesh.is_winding_consistent and mesh.volume == pytest.approx(8000, rel=1e-6)
    assert any("winding" in r for r in repairs)


def test_inside_out_mesh_is_turned_outwards(tmp_path: Path) -> None:
    cube = _cube()
    inverted = trimesh.Trimesh(cube.vertices, cube.faces[:, ::-1], process=False)
    mesh, _ = import_mesh(_save(inverted, tmp_path / "inv.stl"))
    assert mesh.volume == pytest.approx(8000, rel=1e-6)


def test_big_hole_is_refused(tmp_path: Path) -> None:
    cup = trimesh.creation.cylinder(radius=10, height=20, sections=32)
    open_top = cup.faces[cup.face_normals[:, 2] < 0.9]
    path = _save(trimesh.Trimesh(cup.vertices, open_top, process=False), tmp_path / "cup.stl")
    with pytest.raises(ImportRefused, match="32 edges border a hole too big to fill"):
        import_mesh(path)


def test_cubes_touching_along_an_edge_become_two_clean_bodies(tmp_path: Path) -> None:
    a, b = _cube(), _cube()
    b.apply_translation((20, 20, 0))  # sharing one vertical edge: 4 triangles on that edge
    joined = trimesh.util.concatenate([a, b])
    mesh, repairs = import_mesh(_save(joined, tmp_path / "edge.stl"))
    assert mesh.is_watertight and mesh.volume == pytest.approx(16000, rel=1e-6)
    assert mesh.metadata["bodies"] == 2
    assert any("manifold3d" in r for r in repairs)


def test_loose_fin_is_refused(tmp_path: Path) -> None:
    cube = _cube()
    # One triangle hanging off a cube edge: three faces on that edge and two open edges.
    v = np.vstack([cube.vertices, [[10, 0, 20]]])
    edge = next(f for f in cube.faces if (cube.vertices[f][:, 0] == 10).sum() >= 2)
    on_x = [i for i in edge if cube.vertices[i][0] == 10][:2]
    fin = np.vstack([cube.faces, [[on_x[0], on_x[1], len(v) - 1]]])
    path = _save(trimesh.Trimesh(v, fin, process=False), tmp_path / "fin.stl")
    with pytest.raises(ImportRefused, match="1 edges join more than two triangles"):
        import_mesh(path)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("junk.stl", b"this is not a mesh at all " * 8, "not a readable STL"),
        ("model.step", b"ISO-10303-21;", "unsupported file type .step"),
    ],
)
def test_unreadable_files_refused(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportRefused, match=words):
        import_mesh(path)


def test_metre_scale_model_refused(tmp_path: Path) -> None:
    tiny = trimesh.creation.box((0.02, 0.02, 0.02))
    with pytest.raises(ImportRefused, match="export it again in millimetres"):
        import_mesh(_save(tiny, tmp_path / "metres.stl"))


def test_3mf_with_two_objects(tmp_path: Path) -> None:
    a, b = _cube(), _cube()
    b.apply_translation((30, 0, 0))
    scene = trimesh.Scene([a, b])
    path = tmp_path / "two.3mf"
    path.write_bytes(trimesh.exchange.threemf.export_3MF(scene))
    mesh, _ = import_mesh(path)
    assert mesh.metadata["bodies"] == 2 and mesh.is_watertight


def _shells(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    return trimesh.util.concatenate(list(meshes))


def test_one_inside_out_body_among_several_is_turned_round(tmp_path: Path) -> None:
    # The file's total volume is still positive (8000 - 1000), which used to hide the
    # inside-out small cube: the slicer would have read a hole where it stands.
    small = trimesh.creation.box((10, 10, 10))
    small.apply_translation((40, 0, 0))
    small.invert()
    mesh, repairs = import_mesh(_save(_shells(_cube(), small), tmp_path / "two.stl"))
    assert mesh.volume == pytest.approx(9000)
    assert any("1 of 2 bodies the right way out" in r for r in repairs)


def test_cavity_keeps_facing_inwards(tmp_path: Path) -> None:
    cavity = trimesh.creation.box((10, 10, 10))
    cavity.invert()
    mesh, repairs = import_mesh(_save(_shells(_cube(), cavity), tmp_path / "hollow.stl"))
    assert repairs == [] and mesh.volume == pytest.approx(7000)
    assert mesh.metadata["bodies"] == 1  # a cube with a hole inside, not two bodies
    # The whole hollow cube inside out: turned round as one, the cavity stays a cavity.
    outer = _cube()
    outer.invert()
    inverted = _shells(outer, trimesh.creation.box((10, 10, 10)))
    mesh, repairs = import_mesh(_save(inverted, tmp_path / "inverted.stl"))
    assert mesh.volume == pytest.approx(7000) and repairs
    # A solid wholly inside another may be deliberate (an insert): left as it is.
    inner = trimesh.creation.box((10, 10, 10))
    mesh, repairs = import_mesh(_save(_shells(_cube(), inner), tmp_path / "nested.stl"))
    assert repairs == [] and mesh.volume == pytest.approx(9000)


def test_overlapping_bodies_are_left_as_they_are(tmp_path: Path) -> None:
    other = _cube()
    other.apply_translation((10, 10, 10))
    mesh, repairs = import_mesh(_save(_shells(_cube(), other), tmp_path / "overlap.stl"))
    assert repairs == [] and mesh.volume == pytest.approx(16000)
    # Cancelling shells (total volume 0) are repaired without a numpy warning (errors here).
    flipped = _cube()
    flipped.apply_translation((10, 10, 10))
    flipped.invert()
    mesh, _ = import_mesh(_save(_shells(_cube(), flipped), tmp_path / "cancel.stl"))
    assert mesh.volume == pytest.approx(16000)


def _3mf_with_unit(path: Path, unit: str) -> Path:
    """A 3MF holding a 2 x 1 x 0.5 box, its <model> declaring `unit`."""
    import io
    import re
    import zipfile

    data = trimesh.exchange.threemf.export_3MF(trimesh.creation.box((2, 1, 0.5)))
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            if name == "3D/3dmodel.model":
                body = re.sub(rb'unit="[a-z]+"', f'unit="{unit}"'.encode(), body)
            dst.writestr(name, body)
    path.write_bytes(out.getvalue())
    return path


def test_3mf_in_inches_is_scaled_to_millimetres(tmp_path: Path) -> None:
    # Fusion 360 writes the document's unit; read as millimetres this part was 2 mm long.
    mesh, repairs = import_mesh(_3mf_with_unit(tmp_path / "inch.3mf", "inch"))
    np.testing.assert_allclose(sorted(mesh.extents), [12.7, 25.4, 50.8], atol=1e-6)
    assert any("inch to millimetres" in r for r in repairs)
    mesh, repairs = import_mesh(_3mf_with_unit(tmp_path / "cm.3mf", "centimeter"))
    np.testing.assert_allclose(sorted(mesh.extents), [5, 10, 20], atol=1e-6)
    mesh, repairs = import_mesh(_3mf_with_unit(tmp_path / "mm.3mf", "millimeter"))
    np.testing.assert_allclose(sorted(mesh.extents), [0.5, 1, 2], atol=1e-6)
    assert repairs == []
