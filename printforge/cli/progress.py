"""The live per-stage display and the closing summary of a job, shared by `run` and by the
remote client (cli/remote.py), which renders a server's job the same way."""

from __future__ import annotations

from typing import Any

__all__ = ["STAGE_LABELS", "StageProgress", "render_summary"]

STAGE_LABELS = {
    "research": "Research",
    "cad": "CAD",
    "slicer": "Slicer",
    "printer": "Printer",
}

# Spinner, name, bar, percentage and time, with rich's one-space gaps.
_FIXED_COLUMNS_WIDTH = 1 + 9 + 30 + 4 + 7 + 5 + 4


def _StageMark() -> Any:  # builds the column class on first use, keeping rich lazy
    from rich.progress import ProgressColumn, SpinnerColumn
    from rich.text import Text

    class StageMark(ProgressColumn):
        """✓ done, ✗ failed, – skipped, · never reached; a spinner while it may still run."""

        def __init__(self) -> None:
            super().__init__()
            self.spinner = SpinnerColumn(finished_text="[green]✓")

        def render(self, task: Any) -> Any:
            mark = task.fields.get("mark")
            return Text.from_markup(mark) if mark else self.spinner.render(task)

    return StageMark()


class StageProgress:
    """The live per-stage display on stderr; fed `JobEvent`s from the bus or from a server."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column

        self.console = console or Console(stderr=True)
        # A long note (a refusal explaining what was understood) is cut to what is left of the
        # line; otherwise rich squeezes the stage names to "Res…" and drops the bars. The whole
        # message is in the summary below.
        note_width = max(12, self.console.width - _FIXED_COLUMNS_WIDTH)
        columns = (
            _StageMark(),
            TextColumn(
                "[bold]{task.description:<9}", table_column=Column(no_wrap=True, min_width=9)
            ),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn(
                "{task.fields[note]}",
                table_column=Column(no_wrap=True, overflow="ellipsis", max_width=note_width),
            ),
        )
        self.progress = Progress(*columns, console=self.console, transient=False)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> StageProgress:
        self.progress.__enter__()
        self.tasks = {
            name: self.progress.add_task(label, total=1.0, start=False, note="", mark="")
            for name, label in STAGE_LABELS.items()
        }
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def apply(self, event: Any) -> None:
        """Draw one `JobEvent` of the watched job."""
        from rich.markup import escape

        progress = self.progress
        stage = event.stage.value if event.stage else None
        if stage not in self.tasks:
            return
        tid = self.tasks[stage]
        if event.kind == "stage.started":
            progress.start_task(tid)
            progress.update(tid, completed=0.0, note="")
        elif event.kind == "stage.progress":
            if event.progress is not None:
                progress.update(tid, completed=event.progress)
            note = escape(_progress_note(event))
            if note:
                progress.update(tid, note=note)
        elif event.kind == "stage.completed":
            progress.update(tid, completed=1.0, note="")
            progress.stop_task(tid)
        elif event.kind == "stage.failed":
            message = escape(event.message or "failed")
            progress.update(tid, note=f"[red]{message}", mark="[red]✗")
            progress.stop_task(tid)
        elif event.kind == "log" and event.message:
            progress.update(tid, note=f"[dim]{escape(event.message)}")
            if (event.data or {}).get("bed_clear"):
                # Whole, above the bars: the note column cuts it, and a person must act on it.
                self.note(f"[yellow]printforge: {escape(event.message)}")

    def sync(self, stages: dict[str, str]) -> None:
        """Catch up with stage states read afresh (events may have been missed meanwhile)."""
        for name, state in stages.items():
            tid = self.tasks.get(name)
            if tid is None:
                continue
            if state == "running":
                self.progress.start_task(tid)
            elif state == "completed":
                self.progress.start_task(tid)
                self.progress.update(tid, completed=1.0, note="")
                self.progress.stop_task(tid)
            elif state in {"failed", "cancelled", "interrupted"}:
                self.progress.update(tid, note=f"[red]{state}", mark="[red]✗")
                self.progress.stop_task(tid)

    def mark_skipped(self, stages: dict[str, str]) -> None:
        """The job has ended: stages it never reached stop spinning."""
        for name, state in stages.items():
            if name not in self.tasks:
                continue
            if state == "skipped":
                self.progress.update(self.tasks[name], note="[dim]skipped", mark="[dim]–")
            elif state == "pending":
                self.progress.update(self.tasks[name], mark="[dim]·")

    def note(self, text: str) -> None:
        """A line above the bars, e.g. that the connection to the server was lost."""
        self.console.print(text)


def _progress_note(event: Any) -> str:
    data = event.data or {}
    if "lines_total" in data and data.get("lines_total"):
        eta = data.get("eta_s")
        eta_text = f", {eta:.0f} s left" if isinstance(eta, int | float) else ""
        finish = _clock(data.get("finish_at"))
        if eta_text and finish:
            eta_text += f", done at {finish}"
        return f"{data.get('lines_acked', 0)}/{data['lines_total']} lines{eta_text}"
    return event.message or ""


def render_summary(facts: dict[str, Any], files: str, pictures: list[str]) -> None:
    """The human summary on stdout, from plain facts so a server's job view can feed it too.

    Args:
        facts: job_id, state, request, stages, mesh, gcode, printer, error (the API's job view
            has these); `gcode.filament_mm` and `lines_acked` are shown when present.
        files: where the job's files are (a folder, or the server's artifact address).
        pictures: the preview images to point at.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    ok = facts["state"] == "completed"
    colour = "green" if ok else "red"
    console.print(
        f"[bold {colour}]Job {facts['job_id']} {facts['state']}[/] — {escape(facts['request'])}"
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("stage")
    table.add_column("state")
    table.add_column("time", justify="right")
    for s in facts["stages"]:
        duration = f"{s['duration_s']:.2f} s" if s["duration_s"] is not None else ""
        table.add_row(s["name"], s["state"], duration)
    console.print(table)
    mesh = facts.get("mesh")
    if mesh:
        x, y, z = mesh["size_mm"]
        console.print(
            f"model   {x:.1f} × {y:.1f} × {z:.1f} mm, {mesh['triangles']} triangles,"
            f" watertight={mesh['watertight']}"
        )
    # Printability warnings (overhangs that need supports, thin walls) are worth a look
    # before the part is on the bed, as `printforge design` shows them.
    for warning in facts.get("warnings") or []:
        console.print(f"[yellow]warning {escape(warning)}")
    g = facts.get("gcode")
    if g:
        # The server's job view leaves out the filament length; show what is known.
        length = f"{g['filament_mm'] / 1000:.2f} m / " if g.get("filament_mm") is not None else ""
        console.print(
            f"gcode   {g['layers']} layers, {length}{g['filament_g']:.1f} g"
            f" filament, est. {g['estimated_time_s'] / 60:.1f} min ({g['engine']})"
        )
    if "lines_acked" in facts:
        console.print(f"printer {facts['printer']}: {facts['lines_acked']} lines")
    if facts.get("requirements"):
        from printforge.cli.design import requirement_lines

        console.print("requirements")
        for line in requirement_lines(facts["requirements"]):
            console.print(escape(line))
    # Paths are printed whole, never folded at the terminal's width: a person copies them and a
    # script reads them (a long temporary folder broke across lines when stdout was a pipe).
    console.print(f"files   {files}", soft_wrap=True)
    for picture in pictures:
        console.print(f"picture {picture}", soft_wrap=True)
    error = facts.get("error")
    if error:
        console.print(f"[red]error   {error['code']}: {escape(error['message'])}")


def _clock(iso: Any) -> str | None:
    """An ISO time as this machine's wall clock shows it (HH:MM), or None."""
    from datetime import datetime

    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%H:%M")
    except ValueError:
        return None
