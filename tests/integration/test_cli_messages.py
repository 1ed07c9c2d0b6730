"""Every message a person or a script reads from `printforge` (issue 18): the error contract.

Through the real entry point (`main()` with captured output) or as a real process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from pathlib import Path

import aiohttp
import pytest
import trimesh
from pydantic import ValidationError

from printforge.cli import main


def run_main(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data), *args])
    out, err = capsys.readouterr()
    return code, out, err


def only_error(stdout: str) -> dict[str, str]:
    """The contract: one JSON object on stdout, `{"error": {"code", "message"}}`."""
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    obj = json.loads(lines[0])
    assert set(obj["error"]) == {"code", "message"}, obj
    return obj["error"]


@pytest.mark.parametrize(
    "args",
    [
        ("design", "the smell of rain", "--out", "rain.stl", "--json"),
        ("gcode-info", "missing.gcode", "--json"),
        ("run", "", "--json"),
        ("slice", "missing.stl", "--out", "x.gcode", "--json"),
    ],
)
def test_json_failures_are_one_object_on_stdout(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, tmp_path / "d", *args)
    assert code == 1
    error = only_error(out)
    assert error["code"] in {"invalid_input", "needs_input", "bad_artifact"}
    assert error["message"]
    assert "Traceback" not in err


def test_a_usage_error_under_json_is_an_object_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["jobs", "--limit", "0", "--json"])
    assert exited.value.code == 2
    error = only_error(capsys.readouterr().out)
    assert error["code"] == "usage" and "--limit" in error["message"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "the request is empty"),
        ("   ", "the request is empty"),
        ("a cube " * 300, "the request is longer than 2,000 characters"),
    ],
)
@pytest.mark.parametrize("command", ["design", "run"])
def test_request_text_is_refused_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str, words: str
) -> None:
    extra = ["--out", str(tmp_path / "x.stl")] if command == "design" else []
    code, out, err = run_main(capsys, tmp_path / "d", command, text, *extra)
    assert code == 1 and out == ""
    line = err.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith(f"printforge: {words}")
    for library_words in ("validation error", "PrintRequest", "type=", "bad request"):
        assert library_words not in line
    assert not (tmp_path / "d" / "jobs").exists() or not any((tmp_path / "d" / "jobs").iterdir())


def test_run_refuses_an_unknown_engine_before_any_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(
        capsys, tmp_path / "d", "run", "a 20 mm cube", "--engine", "foo", "--json"
    )
    assert code == 1
    error = only_error(out)
    assert error["code"] == "invalid_input" and "'foo'" in error["message"]
    # Refused at once: no job was made and no research ran.
    jobs = tmp_path / "d" / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir())


@pytest.mark.parametrize("command", ["run", "slice", "gcode-info"])
def test_an_unknown_material_exits_1_like_other_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    args = {
        "run": ("run", "a 20 mm cube", "--no-print"),
        "slice": ("slice", "m.stl", "--out", str(tmp_path / "m.gcode")),
        "gcode-info": ("gcode-info", "m.gcode"),
    }[command]
    code, _, err = run_main(capsys, tmp_path / "d", *args, "--material", "FOO")
    assert code == 1
    assert err.strip() == "printforge: --material FOO: unknown material (known: ABS, PETG, PLA)"


def test_a_folder_given_as_out_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "cube.stl"
    trimesh.creation.box((10, 10, 10)).export(model)
    folder = tmp_path / "somedir"
    folder.mkdir()
    code, _, err = run_main(capsys, tmp_path / "d", "slice", str(model), "--out", str(folder))
    assert code == 1
    assert ".part" not in err
    assert f"--out {folder} is a folder; give a file name" in err
    code, _, err = run_main(capsys, tmp_path / "d", "design", "a 10 mm cube", "--out", str(folder))
    assert code == 1 and "is a folder" in err


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for line in ("0    done", "1    refused or failed", "2    usage", "130  interrupted"):
        assert line in out
    assert '{"error": {"code": "...", "message": "..."}}' in out


def test_library_errors_are_sentences(tmp_path: Path) -> None:
    """The boundary translates what libraries raise, with real errors from each library."""
    from printforge.cli.errors import translate
    from printforge.models.request import SliceOverrides

    not_a_db = tmp_path / "store.sqlite3"
    not_a_db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.Error) as caught_sqlite:
        sqlite3.connect(not_a_db).execute("select * from jobs")
    with pytest.raises(ValidationError) as caught_pydantic:
        SliceOverrides(infill_percent=150)

    async def refused() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, never listening: the connection is refused
            async with aiohttp.ClientSession() as session:
                await session.get(f"http://127.0.0.1:{port}/api/info")

    with pytest.raises(aiohttp.ClientError) as caught_aiohttp:
        asyncio.run(refused())
    with pytest.raises(OSError) as caught_os:
        (tmp_path / "no" / "such").read_text()

    store = translate(caught_sqlite.value)
    assert store.code == "store_error" and "printforge store restore" in store.message
    params = translate(caught_pydantic.value)
    assert params.code == "invalid_input"
    assert params.message == "infill_percent: must be less than or equal to 100"
    client = translate(caught_aiohttp.value)
    assert client.code == "connection_lost"
    assert "cannot connect to the server at 127.0.0.1:" in client.message
    assert "printforge serve" in client.message
    os_error = translate(caught_os.value)
    assert os_error.message == f"{tmp_path / 'no' / 'such'}: No such file or directory"
    bug = translate(KeyError("x"))
    assert bug.code == "internal_error" and "--debug" in bug.message


def test_gcode_info_shows_the_part_and_the_skirt_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 10 mm spacer: its extruded box with the skirt is 16.4 mm wide.
    model = tmp_path / "spacer.stl"
    trimesh.creation.annulus(r_min=2, r_max=5, height=5).export(model)
    gcode = tmp_path / "spacer.gcode"
    code, _, err = run_main(capsys, tmp_path / "d", "slice", str(model), "--out", str(gcode))
    assert code == 0, err
    code, out, _ = run_main(capsys, tmp_path / "d", "gcode-info", str(gcode))
    assert code == 0
    rows = dict(line.split(None, 1) for line in out.splitlines() if line.startswith("part"))
    rows.update(
        (k, v) for k, v in (line.split("  ", 1) for line in out.splitlines()) if k == "skirt/brim"
    )
    part = [float(v) for v in rows["part"].split(" mm")[0].split(" x ")]
    skirt = [float(v) for v in rows["skirt/brim"].strip().split(" mm")[0].split(" x ")]
    # The nozzle's path of the outer wall: the part less one line width, within a line.
    assert 9.4 < part[0] <= 10.0 and 9.4 < part[1] <= 10.0 and part[2] == pytest.approx(5.0)
    assert skirt[0] > 14 and skirt[2] == pytest.approx(0.2)
    code, out, _ = run_main(capsys, tmp_path / "d", "gcode-info", str(gcode), "--json")
    figures = json.loads(out)
    width = figures["part_max"][0] - figures["part_min"][0]
    assert width == pytest.approx(part[0], abs=0.01)
    assert figures["extrude_max"][0] - figures["extrude_min"][0] > 14  # skirt included


def test_health_prints_words_not_python_reprs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, tmp_path / "d", "health")
    assert code == 0
    assert "printforge is healthy" in out
    for repr_text in ("{", "}", "None", "True", "False", "'"):
        assert repr_text not in out, out
    assert "installed builtin" in out and ": empty" in out
    code, out, _ = run_main(capsys, tmp_path / "d", "health", "--json")
    assert code == 0 and json.loads(out)["status"] == "healthy"


def test_a_letter_the_font_lacks_is_said_and_a_font_file_draws_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_outline_font import make_font

    request = 'a name tag saying "JOSÉ"'
    code, out, err = run_main(
        capsys, tmp_path / "d", "design", request, "--out", str(tmp_path / "a.stl"), "--json"
    )
    assert code == 0, err
    warnings = json.loads(out)["printability"]["warnings"]
    assert any(
        w.startswith("É is not in the built-in font; built as E") and "--font FILE" in w
        for w in warnings
    ), warnings
    code, out, err = run_main(
        capsys, tmp_path / "d", "design", request, "--out", str(tmp_path / "a.stl")
    )
    assert "warning: É is not in the built-in font; built as E" in out

    font = make_font(tmp_path / "test.ttf")
    code, out, err = run_main(
        capsys, tmp_path / "d", "design", request, "--out", str(tmp_path / "b.stl"),
        "--font", str(font), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert not any("É" in w for w in json.loads(out)["printability"]["warnings"])
    assert (tmp_path / "a.stl").read_bytes() != (tmp_path / "b.stl").read_bytes()

    bogus = tmp_path / "notes.ttf"
    bogus.write_text("not a font")
    code, out, _ = run_main(
        capsys, tmp_path / "d", "design", request, "--out", str(tmp_path / "c.stl"),
        "--font", str(bogus), "--json",
    )  # fmt: skip
    assert code == 1
    assert "is not a TrueType or OpenType font" in only_error(out)["message"]
    assert not (tmp_path / "c.stl").exists()


@pytest.mark.parametrize(
    ("args", "profiles"),
    [
        (("run", "a 20 mm cube", "--no-print"), False),
        (("design", "a 20 mm cube", "--out", "c.stl"), False),
        (("slice", "m.stl", "--out", "m.gcode"), True),
    ],
)
def test_an_unknown_printer_is_bad_input_said_before_any_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    profiles: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_main(capsys, tmp_path / "d", *args, "--printer", "nosuch", "--json")
    assert code == 1
    message = only_error(out)["message"]
    assert message.startswith("--printer nosuch: unknown printer; configured printers are virtual")
    assert ("printer profiles are" in message) is profiles
    assert not (tmp_path / "d" / "jobs").exists() or not any((tmp_path / "d" / "jobs").iterdir())


def test_run_draws_with_the_font_in_its_worker_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `run` builds in the orchestrator's worker processes, where the font must reach too.
    from tests.unit.test_outline_font import make_font

    font = make_font(tmp_path / "test.ttf")
    request = 'a name tag saying "JOSÉ"'
    meshes = []
    for extra in ((), ("--font", str(font))):
        code, out, err = run_main(
            capsys, tmp_path / "d", "run", request, "--no-print", "--json", *extra
        )
        assert code == 0, err
        summary = json.loads(out)
        meshes.append(Path(summary["artifacts"]["stl"]).read_bytes())
        job = json.loads((Path(summary["artifacts"]["stl"]).parent / "report.json").read_text())
        said = [w for w in job["report"]["cad"]["warnings"] if w.startswith("É is not in")]
        assert len(said) == (0 if extra else 1)
    assert meshes[0] != meshes[1]
