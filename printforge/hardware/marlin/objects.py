"""Object labels in a G-code program (`M486`), and what skipping one object's lines takes.

The slicer writes `M486 T<count>`, `M486 S<n>` + `M486 A<name>` definitions up front, then
`M486 S<n>` ... `M486 S-1` around each object's part of each layer (docs/slicing.md). A host
that cancels an object leaves out every line from an object's `M486 S<n>` to the next
`M486 S...`, and then has to put the machine where the file believes it is:

- absolute extrusion (M82): the E axis is re-based (`G92 E<e>`) to the E the file reached at the
  end of the skipped lines, or the next extrusion would push (or pull) their whole length;
- the feed rate the skipped lines set last, since the next move may carry no F of its own;
- G90/G91 and M82/M83 as they stand at the end of the skipped lines, if the lines changed them;
- relative moves (G91) among the skipped lines would shift every later relative move: the host
  travels to the absolute position the file reached (`G0 X Y Z`) before going on.
Absolute travel after the skip needs nothing: the next move goes where the file says.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from printforge.gcode.reader import MachineState, Reader
from printforge.gcode.syntax import parse_line
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import InputError

__all__ = ["ObjectInfo", "ObjectLabels", "Segment", "after_skip_commands", "read_labels"]

_MODE_CODES = frozenset({"G90", "G91", "M82", "M83"})


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    id: int
    name: str


@dataclass(slots=True)
class Segment:
    """One object's lines on one layer: commands `start` (its `M486 S<n>`) to `stop` - 1."""

    start: int
    stop: int
    object_id: int
    end: MachineState  # the reader's state after command stop - 1
    relative_moves: bool = False  # a G91 move among the lines
    mode_changes: bool = False  # G90/G91/M82/M83 among the lines
    has_commands: bool = False  # anything but labels (a definition has none)


@dataclass(slots=True)
class ObjectLabels:
    objects: list[ObjectInfo] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.objects)

    def resolve(self, ref: str | int) -> ObjectInfo:
        """An object by its id (an int, or a string of digits) or its name."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.lstrip("-").isdigit()):
            number = int(ref)
            for info in self.objects:
                if info.id == number:
                    return info
        for info in self.objects:
            if info.name == ref:
                return info
        known = ", ".join(f"{o.id}:{o.name}" for o in self.objects) or "none"
        raise InputError(f"no object {ref!r} in this print (objects: {known})")

    def segment_at(self, index: int) -> Segment | None:
        """The segment holding command `index`, if any."""
        i = bisect.bisect_right(self._starts, index) - 1
        if i < 0:
            return None
        seg = self.segments[i]
        return seg if index < seg.stop else None


def _label(command: str) -> tuple[str, str] | None:
    """(`S`|`A`|`T`|..., value) of an `M486` command, or None."""
    if command[:4].upper() != "M486" or command[4:5].isdigit():
        return None
    rest = command[4:].strip()
    if not rest:
        return None
    return rest[0].upper(), rest[1:].strip()


def read_labels(commands: Sequence[str], profile: PrinterProfile | None = None) -> ObjectLabels:
    """The objects and their segments of a program's commands (comments already stripped)."""
    labels = ObjectLabels()
    names: dict[int, str] = {}
    order: list[int] = []
    reader = Reader(profile or PrinterProfile(name="labels"))
    current: Segment | None = None
    defining: int | None = None  # the S of a definition (before any object was printed)
    for index, command in enumerate(commands):
        label = _label(command)
        if label is not None and label[0] == "S":
            if current is not None:
                current.stop = index
                current.end = reader.state.copy()
                labels.segments.append(current)
                current = None
            try:
                number = int(float(label[1]))
            except ValueError:
                continue
            if number < 0:
                defining = None
                continue
            if number not in names:
                names[number] = f"object {number}"
                order.append(number)
            defining = number
            current = Segment(index, index, number, reader.state.copy())
            continue
        if label is not None and label[0] == "A" and defining is not None:
            names[defining] = label[1] or names[defining]
            continue
        line = parse_line(command)
        if line is None:
            continue
        reader.step(line)
        if current is not None:
            current.has_commands = True
            code = line.code
            if code in _MODE_CODES:
                current.mode_changes = True
            elif code in ("G0", "G1", "G2", "G3", "G5") and reader.state.relative:
                current.relative_moves = True
    if current is not None:
        current.stop = len(commands)
        current.end = reader.state.copy()
        labels.segments.append(current)
    # A definition is `M486 S<n>` + `M486 A<name>` with nothing printed between: a segment
    # holding only label lines, which costs nothing to skip or send.
    labels.objects = [ObjectInfo(n, names[n]) for n in order]
    labels._starts = [s.start for s in labels.segments]
    return labels


def after_skip_commands(seg: Segment) -> list[str]:
    """What goes out in place of a skipped segment so the rest of the file runs as written."""
    if not seg.has_commands:
        return []
    end = seg.end
    out: list[str] = []
    if seg.relative_moves:
        x, y, z = (end.pos[i] for i in range(3))
        out += ["G90", f"G0 X{x:.4f} Y{y:.4f} Z{z:.4f}"]
    if seg.relative_moves or seg.mode_changes:
        out.append("G91" if end.relative else "G90")
        out.append("M83" if end.relative_e else "M82")
    if not end.relative_e:
        out.append(f"G92 E{end.pos[3]:.5f}")
    out.append(f"G1 F{end.feed * 60:.0f}")
    return out
