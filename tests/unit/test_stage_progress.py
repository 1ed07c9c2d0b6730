"""The CLI's per-stage display, rendered into a fixed-width terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from printforge.cli.run import StageProgress
from printforge.models.event import JobEvent
from printforge.models.job import JobState, StageName

REFUSAL = (
    "cannot design 'make me something nice': understood nothing; missing what kind of part to"
    " make (one of: cookie cutter, name plate, stand, enclosure, box with lid, calibration cube)"
)


def last_frame(buffer: io.StringIO) -> list[str]:
    text = buffer.getvalue().split("\x1b[?25h")[0]
    frames = text.replace("\x1b[2K", "").replace("\x1b[1A", "").split("\r")
    return [line.rstrip() for line in frames[-1].splitlines()]


def test_a_refusal_fits_the_line_and_each_stage_says_how_it_ended() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    with StageProgress(console=console) as display:
        research = StageName.RESEARCH
        display.apply(
            JobEvent(kind="stage.started", job_id="j", state=JobState.RESEARCHING, stage=research)
        )
        display.apply(
            JobEvent(
                kind="stage.failed",
                job_id="j",
                state=JobState.FAILED,
                stage=research,
                message=REFUSAL,
            )
        )
        display.mark_skipped(
            {"research": "failed", "cad": "pending", "slicer": "pending", "printer": "pending"}
        )
    lines = last_frame(buffer)
    assert len(lines) == 4, lines
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("✗ Research")  # not squeezed to "Res…"
    assert "cannot design" in lines[0] and lines[0].endswith("…")
    assert [line[:10] for line in lines[1:]] == ["· CAD     ", "· Slicer  ", "· Printer "]


def test_a_completed_and_a_skipped_stage() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=True, color_system=None)
    with StageProgress(console=console) as display:
        for stage in (StageName.RESEARCH, StageName.CAD, StageName.SLICER):
            display.apply(
                JobEvent(kind="stage.started", job_id="j", state=JobState.QUEUED, stage=stage)
            )
            display.apply(
                JobEvent(kind="stage.completed", job_id="j", state=JobState.QUEUED, stage=stage)
            )
        display.mark_skipped(
            {
                "research": "completed",
                "cad": "completed",
                "slicer": "completed",
                "printer": "skipped",
            }
        )
    lines = last_frame(buffer)
    assert [line[:2] for line in lines] == ["✓ ", "✓ ", "✓ ", "– "], lines
    assert lines[3].endswith("skipped")


def test_the_summary_prints_brackets_in_messages_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from printforge.cli.run import render_summary

    render_summary(
        {
            "job_id": "j",
            "state": "failed",
            "request": "a [test] cube",
            "stages": [],
            "error": {"code": "invalid_input", "message": "set material in [printers.NAME]"},
        },
        "/tmp/j",
        [],
    )
    out = capsys.readouterr().out
    assert "a [test] cube" in out
    assert "set material in [printers.NAME]" in out
