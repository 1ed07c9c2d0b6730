"""Plate-sliced `.gcode.3mf` projects as Bambu Studio lays them out (bbs_3mf.cpp)."""

from __future__ import annotations

import hashlib
import io
import xml.etree.ElementTree as ET
import zipfile

import pytest

from printforge.hardware.mqtt.bambu_project import build_project, file_md5, plate_path, read_plate
from printforge.runtime.errors import BadArtifact

GCODE = b"; generated\nG28\nG1 X10 Y10 F3000\nG1 X20 E1\n"


def test_the_layout_is_bambu_studios() -> None:
    data = build_project(GCODE, title="cube & co", plate=2, prediction_s=754)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert names == [
            "[Content_Types].xml",
            "3D/3dmodel.model",
            "Metadata/plate_2.gcode.md5",
            "Metadata/plate_2.gcode",
            "Metadata/model_settings.config",
            "Metadata/slice_info.config",
            "_rels/.rels",
        ]
        # _add_content_types_file_to_archive: these four defaults, gcode as text/x.gcode.
        types = ET.fromstring(zf.read("[Content_Types].xml"))
        defaults = {d.get("Extension"): d.get("ContentType") for d in types}
        assert defaults == {
            "rels": "application/vnd.openxmlformats-package.relationships+xml",
            "model": "application/vnd.ms-package.3dmanufacturing-3dmodel+xml",
            "png": "image/png",
            "gcode": "text/x.gcode",
        }
        rels = ET.fromstring(zf.read("_rels/.rels"))
        assert [r.get("Target") for r in rels] == ["/3D/3dmodel.model"]
        assert zf.read("Metadata/plate_2.gcode") == GCODE
        # Upper-case hex, as MD5_Final is printed with %02X.
        md5 = zf.read("Metadata/plate_2.gcode.md5").decode()
        assert md5 == hashlib.md5(GCODE).hexdigest().upper()
        settings = ET.fromstring(zf.read("Metadata/model_settings.config"))
        plate = {m.get("key"): m.get("value") for m in settings.find("plate")}  # type: ignore[union-attr]
        assert plate["plater_id"] == "2" and plate["gcode_file"] == "Metadata/plate_2.gcode"
        info = ET.fromstring(zf.read("Metadata/slice_info.config"))
        meta = {m.get("key"): m.get("value") for m in info.find("plate")}  # type: ignore[union-attr]
        assert meta == {"index": "2", "prediction": "754"}
        model = ET.fromstring(zf.read("3D/3dmodel.model"))
        assert model.get("unit") == "millimeter"
        assert "cube & co" in zf.read("3D/3dmodel.model").decode().replace("&amp;", "&")


def test_a_plate_is_read_back_and_checked() -> None:
    data = build_project(GCODE, title="t")
    assert read_plate(data, plate_path(1)) == GCODE
    assert file_md5(data) == hashlib.md5(data).hexdigest().upper()


@pytest.mark.parametrize(
    ("param", "reason"),
    [
        ("Metadata/plate_3.gcode", "no Metadata/plate_3.gcode"),
        ("cube.gcode.3mf", "is no plate"),  # what the simulator used to take param for
        ("", "is no plate"),
    ],
)
def test_a_plate_that_is_not_there_is_refused(param: str, reason: str) -> None:
    with pytest.raises(BadArtifact, match=reason):
        read_plate(build_project(GCODE, title="t"), param)


def test_a_plate_that_does_not_match_its_md5_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("Metadata/plate_1.gcode", GCODE)
        zf.writestr("Metadata/plate_1.gcode.md5", "0" * 32)
    with pytest.raises(BadArtifact, match="does not match its MD5"):
        read_plate(out.getvalue(), "Metadata/plate_1.gcode")


def test_a_file_that_is_no_zip_is_refused() -> None:
    with pytest.raises(BadArtifact, match="not a 3MF"):
        read_plate(GCODE, "Metadata/plate_1.gcode")


def test_plates_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        plate_path(0)
