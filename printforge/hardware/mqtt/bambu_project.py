"""Bambu Lab plate-sliced projects (`.gcode.3mf`): what `print.project_file` starts.

Bambu Studio and every Bambu client start a print with `project_file`, naming a 3MF on the
printer's storage (`url`) and the plate's G-code inside it (`param`, `Metadata/plate_1.gcode`).
The layout follows Bambu Studio's exporter (src/libslic3r/Format/bbs_3mf.cpp,
`_BBS_3MF_Exporter::_save_model_to_file`): an OPC zip with `[Content_Types].xml` (the same four
defaults, `gcode` as `text/x.gcode`), `_rels/.rels` pointing at `/3D/3dmodel.model`, the model,
`Metadata/plate_N.gcode` with its upper-case hex MD5 in `Metadata/plate_N.gcode.md5`,
`Metadata/model_settings.config` naming each plate's `gcode_file`, and
`Metadata/slice_info.config`. A project built here carries one plate and no geometry: the
printer prints the G-code, and the model part only keeps the package a valid 3MF.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from xml.sax.saxutils import quoteattr

from printforge.runtime.errors import BadArtifact

__all__ = ["build_project", "file_md5", "plate_path", "read_plate"]

_PLATE = re.compile(r"Metadata/plate_(\d+)\.gcode")

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">\n'
    ' <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    '+xml"/>\n'
    ' <Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel'
    '+xml"/>\n'
    ' <Default Extension="png" ContentType="image/png"/>\n'
    ' <Default Extension="gcode" ContentType="text/x.gcode"/>\n'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\n'
    ' <Relationship Target="/3D/3dmodel.model" Id="rel-1"'
    ' Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>\n'
    "</Relationships>"
)


def plate_path(plate: int) -> str:
    """The plate's G-code inside the project, as `project_file`'s `param` names it."""
    if plate < 1:
        raise ValueError(f"plates are numbered from 1, not {plate}")
    return f"Metadata/plate_{plate}.gcode"


def file_md5(data: bytes) -> str:
    """Upper-case hex MD5, as Bambu Studio writes `plate_N.gcode.md5` and `project_file.md5`."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()


def _model(title: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<model unit="millimeter" xml:lang="en-US"'
        ' xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"'
        ' xmlns:BambuStudio="http://schemas.bambulab.com/package/2021">\n'
        ' <metadata name="Application">printforge</metadata>\n'
        ' <metadata name="BambuStudio:3mfVersion">1</metadata>\n'
        f' <metadata name="Title">{_text(title)}</metadata>\n'
        " <resources>\n </resources>\n"
        " <build/>\n"
        "</model>\n"
    )


def _model_settings(plate: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<config>\n"
        "  <plate>\n"
        f'    <metadata key="plater_id" value="{plate}"/>\n'
        '    <metadata key="plater_name" value=""/>\n'
        '    <metadata key="locked" value="false"/>\n'
        f'    <metadata key="gcode_file" value={quoteattr(plate_path(plate))}/>\n'
        "  </plate>\n"
        "</config>\n"
    )


def _slice_info(plate: int, prediction_s: int | None) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<config>",
        "  <header>",
        '    <header_item key="X-BBL-Client-Type" value="slicer"/>',
        '    <header_item key="X-BBL-Client-Version" value="printforge"/>',
        "  </header>",
        "  <plate>",
        f'    <metadata key="index" value="{plate}"/>',
    ]
    if prediction_s is not None:
        lines.append(f'    <metadata key="prediction" value="{int(prediction_s)}"/>')
    lines += ["  </plate>", "</config>", ""]
    return "\n".join(lines)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_project(
    gcode: bytes, *, title: str, plate: int = 1, prediction_s: int | None = None
) -> bytes:
    """A one-plate `.gcode.3mf` holding `gcode` as plate `plate`, laid out as Bambu Studio's."""
    gcode_name = plate_path(plate)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # The order Bambu Studio writes them in.
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("3D/3dmodel.model", _model(title))
        zf.writestr(gcode_name + ".md5", file_md5(gcode))
        zf.writestr(gcode_name, gcode)
        zf.writestr("Metadata/model_settings.config", _model_settings(plate))
        zf.writestr("Metadata/slice_info.config", _slice_info(plate, prediction_s))
        zf.writestr("_rels/.rels", _RELS)
    return out.getvalue()


def read_plate(data: bytes, param: str) -> bytes:
    """The G-code of the plate `param` names (`Metadata/plate_N.gcode`) in a project.

    Raises BadArtifact when the file is no zip, has no such plate, or the plate's G-code does
    not match the MD5 stored beside it, which is what a printer checks before printing.
    """
    if not _PLATE.fullmatch(param):
        raise BadArtifact(f"{param!r} is no plate: project_file's param is Metadata/plate_N.gcode")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if param not in names:
                plates = sorted(n for n in names if _PLATE.fullmatch(n))
                raise BadArtifact(f"the project has no {param} (plates: {plates or 'none'})")
            gcode = zf.read(param)
            if param + ".md5" in names:
                stored = zf.read(param + ".md5").decode(errors="replace").strip().upper()
                if stored != file_md5(gcode):
                    raise BadArtifact(f"{param} does not match its MD5 ({stored})")
    except (zipfile.BadZipFile, EOFError) as err:
        raise BadArtifact(f"the project is not a 3MF (zip) file: {err}") from None
    return gcode
