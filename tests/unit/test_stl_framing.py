"""A file that is not framed as an STL is refused as such, by the slicer and the CAD importer,
instead of being read as zero triangles and called "empty"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trimesh

from printforge.geometry.importer import ImportRefused, import_mesh
from printforge.geometry.stl_framing import stl_framing_problem
from printforge.runtime.errors import InputError
from printforge.slicing.mesh import load_mesh


def binary_cube(header: bytes = b"") -> bytes:
    data = bytearray(trimesh.exchange.stl.export_stl(trimesh.creation.box((10, 10, 10))))
    if header:
        data[:80] = header.ljust(80, b" ")
    return bytes(data)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (os.urandom(1000), "header announces"),
        (binary_cube()[:-7], "header announces 12 triangles (684 bytes) but the file has 677"),
        (b"\0" * 50, "shorter than a binary STL's 84-byte header"),
        (b"solid part\nvertex 1 2 3\n", "starts like an ASCII STL"),
    ],
    ids=["random", "truncated", "tiny", "ascii-without-facets"],
)
def test_broken_framing_is_named_by_both_readers(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "part.stl"
    path.write_bytes(content)
    assert words in (stl_framing_problem(path) or "")
    with pytest.raises(InputError, match="not a readable STL"):
        load_mesh(path)
    with pytest.raises(ImportRefused, match="not a readable STL"):
        import_mesh(path)


@pytest.mark.parametrize(
    "content",
    [
        binary_cube(),
        binary_cube(b"solid exported by a CAD program"),  # binary, header says "solid"
        trimesh.exchange.stl.export_stl_ascii(trimesh.creation.box((10, 10, 10))).encode(),
    ],
    ids=["binary", "binary-with-solid-header", "ascii"],
)
def test_good_stls_pass(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "part.stl"
    path.write_bytes(content)
    assert stl_framing_problem(path) is None
    assert len(load_mesh(path).faces) == 12
