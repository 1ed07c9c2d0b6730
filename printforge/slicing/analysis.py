"""Read any G-code file into figures: layers, bounds, filament, time, temperatures, commands.

One tight pass over the lines tracks the machine state (G90/G91, M82/M83, G92, G28) and
collects moves into arrays; bounds, filament, layers and the time estimate are then numpy.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from printforge.models.artifact import GcodeArtifact, file_sha256
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import BadArtifact, InputError
from printforge.slicing.motion import estimate_time

__all__ = ["Finding", "GcodeAnalysis", "analyse_gcode", "gcode_artifact", "read_gcode_text"]

_WORD = re.compile(r"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?")
Bounds = tuple[float, float, float]


class Finding(BaseModel):
    """A command worth a look: a temperature, a config change, a move; with its line."""

    line: int
    command: str
    value: float | None = None
    code: str | None = Field(None, description="the command word, e.g. M500")


class GcodeAnalysis(BaseModel):
    """What a G-code file does, as far as a printer is concerned."""

    path: Path
    size_bytes: int
    lines: int = Field(description="command lines, comments and blanks excluded")
    moves: int
    layers: int
    layer_heights: list[float] = Field(default_factory=list, description="distinct extrusion z")
    extrude_min: Bounds | None = None
    extrude_max: Bounds | None = None
    move_min: Bounds | None = None
    move_max: Bounds | None = None
    filament_mm: float
    filament_g: float | None = None
    estimated_time_s: float
    max_hotend_temp: float = 0.0
    max_bed_temp: float = 0.0
    hottest_hotend: Finding | None = None
    hottest_bed: Finding | None = None
    config_commands: list[Finding] = Field(default_factory=list)
    homed: bool = False
    relative_moves: bool = Field(False, description="G91 was used somewhere")
    units_inch: Finding | None = None
    farthest: dict[str, Finding] = Field(
        default_factory=dict, description="the line reaching each axis's min and max"
    )
    generator: str | None = None
    slicer_estimate_s: float | None = Field(None, description="what the file's comments claim")
    slicer_filament_mm: float | None = None


def read_gcode_text(path: Path) -> str:
    """The file as text; BadArtifact when it is binary, InputError when it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"G-code file {path} does not exist") from None
    except OSError as err:
        raise InputError(f"G-code file {path} cannot be read: {err}") from err
    if data[:4] == b"GCDE":
        raise BadArtifact(f"{path.name} is binary G-code (.bgcode); export plain-text G-code")
    nul = data.find(b"\x00", 0, 1 << 20)
    if nul >= 0:
        raise BadArtifact(f"{path.name} is not a text G-code file (binary data at byte {nul})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("latin-1")
        except UnicodeDecodeError as err:  # pragma: no cover - latin-1 decodes every byte
            raise BadArtifact(f"{path.name} is not text") from err
        bad = sum(1 for ch in text[:65536] if ord(ch) < 9 or 13 < ord(ch) < 32)
        if bad:
            raise BadArtifact(f"{path.name} is not a text G-code file (control bytes)") from None
        return text


def analyse_gcode(
    path: Path, profile: PrinterProfile, density_g_cm3: float | None = None
) -> GcodeAnalysis:
    """Every figure of the file; times use the profile's acceleration and jerk limits."""
    text = read_gcode_text(path)
    return _analyse(text, path, profile, density_g_cm3)


def _analyse(
    text: str, path: Path, profile: PrinterProfile, density: float | None
) -> GcodeAnalysis:
    rel_xyz = False
    rel_e = False
    pos = [0.0, 0.0, 0.0, 0.0]  # logical X Y Z E as the file sees them
    off = [0.0, 0.0, 0.0, 0.0]  # G92 offsets: machine = logical + offset
    gofs = [0.0, 0.0, 0.0]  # Klipper's SET_GCODE_OFFSET, part of `off`, kept across G28
    feed = 1500.0 / 60
    accel = profile.max_acceleration
    mx: list[float] = []
    my: list[float] = []
    mz: list[float] = []
    me: list[float] = []
    mf: list[float] = []
    ma: list[float] = []
    mline: list[int] = []
    dwell = 0.0
    n_cmd = 0
    hot = bed = 0.0
    hottest_hotend = hottest_bed = None
    config: list[Finding] = []
    homed = False
    relative_used = False
    inch: Finding | None = None
    axes = "XYZE"
    findall = _WORD.findall
    # Start as if homed at the origin so moves before any G28 still have a position.
    mx.append(0.0), my.append(0.0), mz.append(0.0), me.append(0.0)
    mf.append(feed), ma.append(accel), mline.append(0)
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw or raw[0] == ";":
            continue
        cut = raw.find(";")
        line = (raw[:cut] if cut >= 0 else raw).strip().upper()
        if not line:
            continue
        if line[0] == "N":  # a host's line number and checksum
            star = line.find("*")
            line = line[:star] if star >= 0 else line
            sp = line.find(" ")
            line = line[sp + 1 :].strip() if sp >= 0 else ""
            if not line:
                continue
        n_cmd += 1
        c0 = line[0]
        head = line[:3]
        if len(line) > 1 and (line[1].isalpha() or line[1] == "_"):
            # A Klipper extended command (`SET_HEATER_TEMPERATURE HEATER=extruder TARGET=300`),
            # which Moonraker printers and Klipper's serial port run as readily as G-code.
            name, params = _extended(line)
            if name in CONFIG_COMMANDS:
                config.append(Finding(line=lineno, command=raw.strip(), code=name))
            if name in ("SET_HEATER_TEMPERATURE", "PID_CALIBRATE"):
                heater = params.get("HEATER", "")
                t = _number(params.get("TARGET"))
                if t is not None and heater.startswith("EXTRUDER") and t > hot:
                    hot = t
                    hottest_hotend = Finding(line=lineno, command=raw.strip(), value=t)
                elif t is not None and heater == "HEATER_BED" and t > bed:
                    bed = t
                    hottest_bed = Finding(line=lineno, command=raw.strip(), value=t)
            elif name == "SET_GCODE_OFFSET":
                # Klipper adds this offset to every later move (and keeps it across G28).
                for k, w in enumerate("XYZ"):
                    new = _number(params.get(w))
                    adjust = _number(params.get(f"{w}_ADJUST"))
                    target = new if new is not None else gofs[k] + (adjust or 0.0)
                    off[k] += target - gofs[k]
                    gofs[k] = target
            continue
        if head == "G1 " or head == "G0 ":
            # The hot path (nearly every line of a sliced file): split, no regex.
            args = [(w[0], w[1:]) for w in line[3:].split()]
        else:
            words = findall(line)
            if not words:
                continue
            letter, num = words[0]
            code = f"{letter}{_int(num)}"
            args = words[1:] if code in ("G1", "G0") else None
        if args is not None:
            try:
                # A bare letter fails float(""): that is `X 250`, which firmware reads as X250.
                values = [(w, float(v)) for w, v in args]
            except ValueError:
                # Words run together (`G1X10Y5`), a blank after a letter, or junk: the regex
                # knows where each word ends.
                values = [(w, float(v)) for w, v in findall(line)[1:] if v]
            moved = False
            for w, val in values:
                k = axes.find(w)
                if k >= 0:
                    if k == 3:
                        pos[3] = pos[3] + val if rel_e else val
                    else:
                        pos[k] = pos[k] + val if rel_xyz else val
                    moved = True
                elif w == "F":
                    feed = val / 60
            if moved:
                mx.append(pos[0] + off[0])
                my.append(pos[1] + off[1])
                mz.append(pos[2] + off[2])
                me.append(pos[3] + off[3])
                mf.append(feed)
                ma.append(accel)
                mline.append(lineno)
            continue
        if c0 == "G":
            if code == "G90":
                rel_xyz = rel_e = False
            elif code == "G91":
                rel_xyz = rel_e = True
                relative_used = True
            elif code == "G92":
                given = {w: float(v) for w, v in words[1:] if w in axes and v}
                if not given and len(words) == 1:
                    given = dict.fromkeys(axes, 0.0)
                for w, val in given.items():
                    k = axes.find(w)
                    machine = pos[k] + off[k]
                    pos[k] = val
                    off[k] = machine - val
            elif code == "G28":
                named = [w for w, _ in words[1:] if w in "XYZ"]
                for w in named or "XYZ":
                    k = axes.find(w)
                    pos[k] = -gofs[k]  # the machine is at 0; Klipper's offset stays
                    off[k] = gofs[k]
                homed = True
                mx.append(off[0] + pos[0])
                my.append(off[1] + pos[1])
                mz.append(off[2] + pos[2])
                me.append(pos[3] + off[3])
                mf.append(profile.max_feedrate_xy)
                ma.append(accel)
                mline.append(lineno)
            elif code in ("G2", "G3", "G5"):
                p = {w: float(v) for w, v in words[1:] if v}
                if "F" in p:
                    feed = p["F"] / 60
                curve = (
                    _bezier(pos, p, rel_xyz, rel_e)
                    if code == "G5"
                    else _arc(pos, p, rel_xyz, rel_e, clockwise=code == "G2")
                )
                for point in curve:
                    pos[:] = point
                    mx.append(pos[0] + off[0])
                    my.append(pos[1] + off[1])
                    mz.append(pos[2] + off[2])
                    me.append(pos[3] + off[3])
                    mf.append(feed)
                    ma.append(accel)
                    mline.append(lineno)
            elif code == "G4":
                p = {w: float(v) for w, v in words[1:] if v}
                dwell += p.get("S", 0.0) + p.get("P", 0.0) / 1000
            elif code == "G20":
                inch = Finding(line=lineno, command=raw.strip())
            continue
        if c0 == "M":
            if code == "M82":
                rel_e = False
            elif code == "M83":
                rel_e = True
            elif code in ("M104", "M109"):
                t = _temp(words, autotemp=True)
                if t is not None and t > hot:
                    hot = t
                    hottest_hotend = Finding(line=lineno, command=raw.strip(), value=t)
            elif code in ("M140", "M190"):
                t = _temp(words)
                if t is not None and t > bed:
                    bed = t
                    hottest_bed = Finding(line=lineno, command=raw.strip(), value=t)
            elif code == "M204":
                p = {w: float(v) for w, v in words[1:] if v}
                accel = p.get("P", p.get("S", accel))
            elif code in CONFIG_COMMANDS:
                config.append(Finding(line=lineno, command=raw.strip(), code=code))

    xs, ys, zs, es = (np.asarray(v) for v in (mx, my, mz, me))
    lines_arr = np.asarray(mline)
    d = np.column_stack([np.diff(xs), np.diff(ys), np.diff(zs), np.diff(es)])
    extruding = (d[:, 3] > 0) & ((d[:, 0] != 0) | (d[:, 1] != 0))
    times = estimate_time(d, np.asarray(mf[1:]), np.asarray(ma[1:]), profile)
    filament = float(np.sum(d[extruding, 3])) if len(d) else 0.0
    analysis = GcodeAnalysis(
        path=path,
        size_bytes=path.stat().st_size,
        lines=n_cmd,
        moves=len(d),
        layers=0,
        filament_mm=round(filament, 3),
        estimated_time_s=round(float(np.sum(times)) + dwell, 2),
        max_hotend_temp=hot,
        max_bed_temp=bed,
        hottest_hotend=hottest_hotend,
        hottest_bed=hottest_bed,
        config_commands=config,
        homed=homed,
        relative_moves=relative_used,
        units_inch=inch,
    )
    if density is not None:
        area = math.pi * (profile.filament_diameter / 2) ** 2
        analysis.filament_g = round(filament * area * density / 1000, 4)
    if len(xs) > 1:
        pts = np.column_stack([xs[1:], ys[1:], zs[1:]])
        analysis.move_min = _t(pts.min(axis=0))
        analysis.move_max = _t(pts.max(axis=0))
        for k, axis in enumerate("XYZ"):
            for name, idx in (
                (f"{axis}min", np.argmin(pts[:, k])),
                (f"{axis}max", np.argmax(pts[:, k])),
            ):
                analysis.farthest[name] = Finding(
                    line=int(lines_arr[idx + 1]), command=axis, value=float(pts[idx, k])
                )
        if extruding.any():
            allp = np.column_stack([xs, ys, zs])
            ext = np.vstack([allp[:-1][extruding], allp[1:][extruding]])
            analysis.extrude_min = _t(ext.min(axis=0))
            analysis.extrude_max = _t(ext.max(axis=0))
            heights = np.unique(np.round(allp[1:][extruding][:, 2], 3))
            analysis.layers = len(heights)
            analysis.layer_heights = heights.tolist() if len(heights) <= 20000 else []
    _read_slicer_comments(text, analysis)
    return analysis


def _arc(
    pos: list[float], p: dict[str, float], rel_xyz: bool, rel_e: bool, clockwise: bool
) -> list[list[float]]:
    """G2/G3 in the XY plane as short chords (about 0.5 mm), so bounds and times see the bulge.

    The centre is given by I/J (offsets from the start) or R (radius; negative = the long way).
    """
    x0, y0, z0, e0 = pos
    x1 = x0 + p.get("X", 0.0) if rel_xyz else p.get("X", x0)
    y1 = y0 + p.get("Y", 0.0) if rel_xyz else p.get("Y", y0)
    z1 = z0 + p.get("Z", 0.0) if rel_xyz else p.get("Z", z0)
    e1 = e0 + p.get("E", 0.0) if rel_e else p.get("E", e0)
    if "R" in p:
        r = p["R"]
        dx, dy = x1 - x0, y1 - y0
        chord = math.hypot(dx, dy)
        if chord == 0 or abs(r) < chord / 2:
            return [[x1, y1, z1, e1]]
        h = math.sqrt(max(r * r - chord * chord / 4, 0.0))
        # The centre lies left of the chord for a short counter-clockwise arc.
        side = (1 if not clockwise else -1) * (1 if r > 0 else -1)
        cx = x0 + dx / 2 - side * h * dy / chord
        cy = y0 + dy / 2 + side * h * dx / chord
    else:
        cx, cy = x0 + p.get("I", 0.0), y0 + p.get("J", 0.0)
    radius = math.hypot(x0 - cx, y0 - cy)
    a0 = math.atan2(y0 - cy, x0 - cx)
    a1 = math.atan2(y1 - cy, x1 - cx)
    sweep = a1 - a0
    if clockwise and sweep >= 0:
        sweep -= 2 * math.pi
    elif not clockwise and sweep <= 0:
        sweep += 2 * math.pi
    n = max(1, min(720, math.ceil(abs(sweep) * radius / 0.5)))
    out = []
    for k in range(1, n + 1):
        t = k / n
        a = a0 + sweep * t
        out.append(
            [
                cx + radius * math.cos(a),
                cy + radius * math.sin(a),
                z0 + (z1 - z0) * t,
                e0 + (e1 - e0) * t,
            ]
        )
    out[-1][0], out[-1][1] = x1, y1
    return out


def _bezier(pos: list[float], p: dict[str, float], rel_xyz: bool, rel_e: bool) -> list[list[float]]:
    """Marlin's G5 cubic Bézier in XY as short chords: I/J offset the first control point from
    the start, P/Q the second from the end. The curve can bulge past its end point."""
    x0, y0, z0, e0 = pos
    x1 = x0 + p.get("X", 0.0) if rel_xyz else p.get("X", x0)
    y1 = y0 + p.get("Y", 0.0) if rel_xyz else p.get("Y", y0)
    z1 = z0 + p.get("Z", 0.0) if rel_xyz else p.get("Z", z0)
    e1 = e0 + p.get("E", 0.0) if rel_e else p.get("E", e0)
    c1 = (x0 + p.get("I", 0.0), y0 + p.get("J", 0.0))
    c2 = (x1 + p.get("P", 0.0), y1 + p.get("Q", 0.0))
    hull = math.dist((x0, y0), c1) + math.dist(c1, c2) + math.dist(c2, (x1, y1))
    n = max(1, min(720, math.ceil(hull / 0.5)))
    out = []
    for k in range(1, n + 1):
        t = k / n
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
        out.append(
            [
                a * x0 + b * c1[0] + c * c2[0] + d * x1,
                a * y0 + b * c1[1] + c * c2[1] + d * y1,
                z0 + (z1 - z0) * t,
                e0 + (e1 - e0) * t,
            ]
        )
    return out


def _int(num: str) -> str:
    if not num:
        return ""
    try:
        return str(int(float(num)))
    except ValueError:
        return num


def _extended(line: str) -> tuple[str, dict[str, str]]:
    """A Klipper extended command's name and its KEY=VALUE parameters (upper case)."""
    name, _, rest = line.partition(" ")
    params = {}
    for part in rest.split():
        key, eq, value = part.partition("=")
        if eq:
            params[key] = value.strip("'\"")
    return name, params


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _temp(words: list[tuple[str, str]], autotemp: bool = False) -> float | None:
    vals = {w: float(v) for w, v in words[1:] if v}
    t = vals.get("S", vals.get("R"))
    # Marlin's AUTOTEMP lets the hotend climb to M104/M109's B as the flow rises.
    if autotemp and "B" in vals and (t is None or vals["B"] > t):
        return vals["B"]
    return t


def _t(a: np.ndarray) -> Bounds:
    return (round(float(a[0]), 4), round(float(a[1]), 4), round(float(a[2]), 4))


_EST = re.compile(r"^; estimated printing time \(normal mode\) = (.+)$", re.MULTILINE)
_FIL = re.compile(r"^; filament used \[mm\] = ([\d.]+)", re.MULTILINE)
_CURA_TIME = re.compile(r"^;TIME:(\d+)", re.MULTILINE)


def _read_slicer_comments(text: str, analysis: GcodeAnalysis) -> None:
    head = text[:4096]
    tail = text[-65536:]
    if "PrusaSlicer" in head:
        analysis.generator = "prusaslicer"
    elif ";Generated with Cura" in head or ";FLAVOR:" in head:
        analysis.generator = "curaengine"
    elif "printforge" in head:
        analysis.generator = "printforge"
    m = _EST.search(tail)
    if m:
        analysis.slicer_estimate_s = parse_duration(m.group(1))
    m = _FIL.search(tail)
    if m:
        analysis.slicer_filament_mm = float(m.group(1))
    m = _CURA_TIME.search(head)
    if m and analysis.slicer_estimate_s is None and int(m.group(1)) != 6666:
        analysis.slicer_estimate_s = float(m.group(1))


def parse_duration(text: str) -> float:
    """PrusaSlicer's `1d 2h 3m 4s` as seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return float(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)\s*([dhms])", text)))


# Commands that change the machine's stored or persistent configuration, or switch off a
# protection; a file may only send them when the printer's profile lists them as allowed.
CONFIG_COMMANDS: dict[str, str] = {
    "M500": "saves settings to EEPROM",
    "M501": "reloads settings from EEPROM",
    "M502": "resets settings to factory defaults",
    "M92": "changes steps per mm",
    "M206": "changes the home offsets",
    "M428": "sets the home offsets from the current position",
    "M301": "changes the hotend PID tuning",
    "M304": "changes the bed PID tuning",
    "M303": "runs a PID autotune",
    "M851": "changes the probe offset",
    "M665": "changes the delta geometry",
    "M666": "changes the endstop adjustments",
    "M906": "changes motor currents",
    "M907": "changes motor currents",
    "M350": "changes microstepping",
    "M351": "changes microstepping",
    "M575": "changes the serial baud rate",
    "M997": "starts a firmware update",
    "M302": "allows cold extrusion",
    "M211": "switches software endstops",
    "M121": "disables endstops",
    "M28": "writes a file to the SD card",
    "M29": "writes a file to the SD card",
    "M30": "deletes a file from the SD card",
    # Klipper's extended commands with the same effect.
    "SAVE_CONFIG": "rewrites Klipper's printer.cfg and restarts it",
    "PID_CALIBRATE": "runs a PID autotune",
    "Z_OFFSET_APPLY_PROBE": "stores a new probe Z offset for SAVE_CONFIG",
    "Z_OFFSET_APPLY_ENDSTOP": "stores a new Z endstop position for SAVE_CONFIG",
    "SET_KINEMATIC_POSITION": "tells Klipper the toolhead is elsewhere, defeating its limits",
    "FORCE_MOVE": "moves a stepper ignoring the printer's limits",
}

__all__ += ["CONFIG_COMMANDS", "parse_duration"]


def gcode_artifact(
    path: Path, analysis: GcodeAnalysis, engine: str, preview: Path | None = None
) -> GcodeArtifact:
    """The typed artifact for a G-code file: its hash and the analysis' figures, whoever sliced."""
    return GcodeArtifact(
        path=path,
        sha256=file_sha256(path),
        size_bytes=analysis.size_bytes,
        engine=engine,
        lines=analysis.lines,
        layers=analysis.layers,
        estimated_time_s=analysis.estimated_time_s,
        filament_mm=analysis.filament_mm,
        filament_g=analysis.filament_g or 0.0,
        max_hotend_temp=analysis.max_hotend_temp,
        max_bed_temp=analysis.max_bed_temp,
        bounds_min=analysis.extrude_min,
        bounds_max=analysis.extrude_max,
        preview_png=preview,
    )
