"""`printforge slice` and `printforge gcode-info` through the real command-line entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import trimesh

from printforge.cli import main
from printforge.gcode.analysis import analyse_gcode
from printforge.models.printer import PrinterProfile
from printforge.slicing.curaengine import find_definitions


def test_slice_then_gcode_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "cube.stl"
    trimesh.creation.box((20, 20, 20)).export(model)
    out = tmp_path / "cube.gcode"
    png = tmp_path / "cube.png"
    code = main(
        [
            "--data-dir",
            str(tmp_path),
            "slice",
            str(model),
            "--out",
            str(out),
            "--layer-height",
            "0.25",
            "--perimeters",
            "3",
            "--infill",
            "30",
            "--json",
            "--png",
            str(png),
            "--png-layers",
            "0,-1,all",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "builtin"
    # 0.2 mm first layer, then 0.25 mm layers while the middle of a layer is inside the part
    assert summary["layers"] == 80
    lo, hi = summary["bounds_min"], summary["bounds_max"]
    assert (lo[0] + hi[0]) / 2 == pytest.approx(110) and (lo[1] + hi[1]) / 2 == pytest.approx(110)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "; perimeters = 3" in out.read_text()

    assert main(["gcode-info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layers            80" in text and "safe for virtual" in text


def test_gcode_info_reports_unsafe_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.gcode"
    bad.write_text("G28\nM104 S300\nG1 X10 Y10 E1\n")
    assert main(["gcode-info", str(bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "unsafe"
    assert "line 2" in data["reason"] and "300" in data["reason"]


def test_slice_refuses_bad_model_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "big.stl"
    trimesh.creation.box((400, 20, 20)).export(model)
    assert main(["slice", str(model), "--out", str(tmp_path / "o.gcode")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("printforge: model big.stl is 400.0 x 20.0 x 20.0 mm, larger than")
    assert not (tmp_path / "o.gcode").exists()


@pytest.mark.curaengine
@pytest.mark.skipif(
    shutil.which("CuraEngine") is None or find_definitions(None) is None,
    reason="CuraEngine or the cura package's definitions not installed",
)
def test_slice_names_the_engines_own_estimate_written_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "cube.stl"
    trimesh.creation.box((20, 20, 20)).export(model)
    out = tmp_path / "cube.gcode"
    args = ["--data-dir", str(tmp_path), "slice", str(model), "--out", str(out)]
    assert main([*args, "--engine", "curaengine"]) == 0
    text = capsys.readouterr().out
    claimed = analyse_gcode(out, PrinterProfile(name="any")).slicer_estimate_s
    assert claimed is not None
    s = round(claimed)
    assert (
        f"(curaengine writes {s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s in the file)" in text
    )


def test_printer_may_be_a_shipped_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "cube.stl"
    trimesh.creation.box((20, 20, 20)).export(model)
    out = tmp_path / "cube.gcode"
    base = ["--data-dir", str(tmp_path)]
    assert (
        main([*base, "slice", str(model), "--out", str(out), "--printer", "prusa-mk3s", "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    lo, hi = summary["bounds_min"], summary["bounds_max"]
    # centred on the MK3S's 250 x 210 bed, not the default printer's 220 x 220
    assert (lo[0] + hi[0]) / 2 == pytest.approx(125) and (lo[1] + hi[1]) / 2 == pytest.approx(105)
    assert "G80 ; mesh bed leveling" in out.read_text()
    assert main([*base, "gcode-info", str(out), "--printer", "prusa-mk3s"]) == 0
    assert "safe for prusa-mk3s" in capsys.readouterr().out
    assert (
        main([*base, "slice", str(model), "--out", str(out), "--printer", "nosuch"]) == 1
    )  # bad input, like an unknown --material (issue 18)
    err = capsys.readouterr().err
    assert "configured printers are virtual" in err and "ender3" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--infill", "150"], "--infill 150: must be less than or equal to 100"),
        (["--layer-height", "0"], "--layer-height 0: must be greater than 0.02"),
        (["--perimeters", "0"], "--perimeters 0: must be greater than or equal to 1"),
        (["--png", "p.png", "--png-layers", "0,x"], "--png-layers: not a list of integers"),
    ],
    ids=["infill", "layer-height", "perimeters", "png-layers"],
)
def test_bad_settings_name_the_flag_before_slicing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    model = tmp_path / "cube.stl"
    trimesh.creation.box((20, 20, 20)).export(model)
    out = tmp_path / "cube.gcode"
    assert main(["--data-dir", str(tmp_path), "slice", str(model), "--out", str(out), *flags]) == 1
    err = capsys.readouterr().err
    assert message in err and "validation error" not in err
    assert not out.exists()


def test_a_layer_beyond_the_top_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "cube.stl"
    trimesh.creation.box((20, 20, 20)).export(model)
    out = tmp_path / "cube.gcode"
    args = ["slice", str(model), "--out", str(out), "--png", str(tmp_path / "p.png")]
    assert main(["--data-dir", str(tmp_path), *args, "--png-layers", "0,999"]) == 1
    err = capsys.readouterr().err
    assert "layer 999 does not exist; cube.gcode has 100 layers" in err
    assert out.exists()


def test_a_folder_is_not_called_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "parts.stl"
    folder.mkdir()
    assert main(["slice", str(folder), "--out", str(tmp_path / "o.gcode")]) == 1
    err = capsys.readouterr().err
    assert "is a folder" in err and "does not exist" not in err


def test_out_may_not_overwrite_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "part.stl"
    trimesh.creation.box((20, 20, 20)).export(model)
    before = model.read_bytes()
    assert main(["slice", str(model), "--out", str(tmp_path / "." / "part.stl")]) == 1
    assert "is the model itself" in capsys.readouterr().err
    assert model.read_bytes() == before
