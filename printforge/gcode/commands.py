"""What individual commands do that the gate cares about: heater targets, protected commands.

A protected command changes the machine's stored configuration, switches off a protection,
halts or restarts the firmware, runs a file the gate never saw, or takes over the host's line
numbering. A job may only send one when the printer profile lists it in
`allowed_config_commands` (the key keeps its first name; it now covers every kind here).
"""

from __future__ import annotations

from dataclasses import dataclass

from printforge.gcode.syntax import Line

__all__ = [
    "HALTING",
    "PROTECTED_COMMANDS",
    "HeaterTarget",
    "describe",
    "heater_target",
    "protected_reason",
]

CONFIG = "config"
PROTECTION = "protection"
HALT = "halt"
STORAGE = "storage"
HOST = "host"

# code -> (kind, what it does). Marlin, Prusa and RepRapFirmware M-codes; Klipper's commands.
PROTECTED_COMMANDS: dict[str, tuple[str, str]] = {
    "M500": (CONFIG, "saves settings to EEPROM"),
    "M501": (CONFIG, "reloads settings from EEPROM"),
    "M502": (CONFIG, "resets settings to factory defaults"),
    "M92": (CONFIG, "changes steps per mm"),
    "M206": (CONFIG, "changes the home offsets"),
    "M428": (CONFIG, "sets the home offsets from the current position"),
    "M301": (CONFIG, "changes the hotend PID tuning"),
    "M304": (CONFIG, "changes the bed PID tuning"),
    "M303": (CONFIG, "runs a PID autotune"),
    "M306": (CONFIG, "changes or tunes the hotend's thermal model (MPC)"),
    "M307": (CONFIG, "changes the heater model (RepRapFirmware)"),
    "M145": (CONFIG, "changes the stored preheat presets"),
    "M851": (CONFIG, "changes the probe offset"),
    "M665": (CONFIG, "changes the delta geometry"),
    "M666": (CONFIG, "changes the endstop adjustments"),
    "M906": (CONFIG, "changes motor currents"),
    "M907": (CONFIG, "changes motor currents"),
    "M350": (CONFIG, "changes microstepping"),
    "M351": (CONFIG, "changes microstepping"),
    "M569": (CONFIG, "changes the stepper drivers' setup (RepRapFirmware)"),
    "M584": (CONFIG, "remaps axes to drivers (RepRapFirmware)"),
    "M950": (CONFIG, "reassigns heater, fan or pin outputs (RepRapFirmware)"),
    "M575": (CONFIG, "changes the serial baud rate"),
    "M997": (CONFIG, "starts a firmware update"),
    "M302": (PROTECTION, "allows cold extrusion"),
    "M211": (PROTECTION, "switches software endstops"),
    "M121": (PROTECTION, "disables endstops"),
    "M143": (PROTECTION, "changes a heater's maximum temperature (RepRapFirmware)"),
    "M570": (PROTECTION, "changes heater fault detection (RepRapFirmware)"),
    "M112": (HALT, "halts the machine (emergency stop)"),
    "M410": (HALT, "stops every move at once (quickstop)"),
    "M999": (HALT, "restarts the firmware after a halt"),
    "M81": (HALT, "switches the power supply off"),
    "D": (HALT, "is a Marlin debug command (D-codes reset the board or clear its memory)"),
    "M28": (STORAGE, "writes a file to the SD card"),
    "M29": (STORAGE, "writes a file to the SD card"),
    "M30": (STORAGE, "deletes a file from the SD card"),
    "M928": (STORAGE, "writes a log file to the SD card"),
    "M559": (STORAGE, "uploads a configuration file (RepRapFirmware)"),
    "M560": (STORAGE, "uploads a web file (RepRapFirmware)"),
    "M24": (STORAGE, "starts or resumes a print from the printer's storage"),
    "M32": (STORAGE, "starts a print from a file the gate never saw"),
    "M98": (STORAGE, "runs a macro file the gate never saw"),
    "M110": (HOST, "resets the line numbers the host counts on"),
    # Klipper's extended commands with the same effects.
    "SAVE_CONFIG": (CONFIG, "rewrites Klipper's printer.cfg and restarts it"),
    "PID_CALIBRATE": (CONFIG, "runs a PID autotune"),
    "Z_OFFSET_APPLY_PROBE": (CONFIG, "stores a new probe Z offset for SAVE_CONFIG"),
    "Z_OFFSET_APPLY_ENDSTOP": (CONFIG, "stores a new Z endstop position for SAVE_CONFIG"),
    "SAVE_VARIABLE": (CONFIG, "writes Klipper's saved variables file"),
    "SET_KINEMATIC_POSITION": (
        PROTECTION,
        "tells Klipper the toolhead is elsewhere, defeating its limits",
    ),
    "FORCE_MOVE": (PROTECTION, "moves a stepper ignoring the printer's limits"),
    "FIRMWARE_RESTART": (HALT, "restarts Klipper's firmware"),
    "RESTART": (HALT, "restarts Klipper"),
    "SDCARD_PRINT_FILE": (STORAGE, "starts a print from a file the gate never saw"),
    "SDCARD_RESET_FILE": (STORAGE, "unloads the printer's current file"),
}
# Stopping the machine is never what makes it unsafe: a person sending these by hand (`send`)
# is pressing the stop button. In a job file they end the print and need a reset.
HALTING = frozenset({"M112", "M410"})


def describe(code: str) -> str:
    """What a protected command does, in words."""
    entry = PROTECTED_COMMANDS.get(code) or PROTECTED_COMMANDS.get(code.split(".", 1)[0])
    if entry is None and code[:1] == "D" and code[1:2].isdigit():
        entry = PROTECTED_COMMANDS["D"]
    return entry[1] if entry else "is a protected command"


def protected_reason(line: Line) -> tuple[str, str] | None:
    """(code, what it does) when the line is a protected command."""
    code = line.code
    entry = PROTECTED_COMMANDS.get(code)
    if entry is None and "." in code:
        code = code.split(".", 1)[0]
        entry = PROTECTED_COMMANDS.get(code)
    if entry is None and code[:1] == "D" and not line.extended:
        code, entry = code, PROTECTED_COMMANDS["D"]
    if entry is None:
        return None
    return code, entry[1]


@dataclass(frozen=True, slots=True)
class HeaterTarget:
    """A temperature a command asks for: `heater` is "hotend" or "bed"; None: unknown."""

    heater: str
    value: float | None
    why: str = ""


def heater_target(line: Line) -> HeaterTarget | None:
    """The heater target a line sets, if any (the highest it may reach)."""
    code = line.code
    if line.extended:
        return _klipper_target(line)
    w = line.words
    if code in ("M104", "M109"):
        if "I" in w:
            return HeaterTarget("hotend", None, "a stored preheat preset")
        t = _target_word(w)
        b = w.get("B")
        # Marlin's AUTOTEMP lets the hotend climb to M104/M109's B as the flow rises.
        if b is not None and (t is None or b > t):
            t = b
        return HeaterTarget("hotend", t) if t is not None else None
    if code in ("M140", "M190"):
        if "I" in w:
            return HeaterTarget("bed", None, "a stored preheat preset")
        t = _target_word(w)
        return HeaterTarget("bed", t) if t is not None else None
    if code == "M303":
        # PID autotune heats to S; E-1 is the bed.
        t = w.get("S")
        heater = "bed" if (w.get("E") or 0) < 0 else "hotend"
        return HeaterTarget(heater, t) if t is not None else None
    if code == "G10" and "P" in w and ("S" in w or "R" in w):
        # RepRapFirmware: G10 P<tool> S<active> R<standby> sets a tool's temperatures.
        values = [v for v in (w.get("S"), w.get("R")) if v is not None]
        return HeaterTarget("hotend", max(values)) if values else None
    return None


def _target_word(w: dict[str, float | None]) -> float | None:
    s = w.get("S")
    return s if s is not None else w.get("R")


def _klipper_target(line: Line) -> HeaterTarget | None:
    if line.code not in ("SET_HEATER_TEMPERATURE", "PID_CALIBRATE"):
        return None
    heater = line.args.get("HEATER", "").upper()
    raw = line.args.get("TARGET")
    try:
        t = float(raw) if raw is not None else None
    except ValueError:
        return HeaterTarget("hotend", None, f"TARGET={raw}")
    if t is None:
        return None
    if heater.startswith("EXTRUDER"):
        return HeaterTarget("hotend", t)
    if heater == "HEATER_BED":
        return HeaterTarget("bed", t)
    return None
