"""Every flag is checked before any stage runs, in one place for every command.

A bad `--engine` found after research and CAD have run, or a folder given as `--out` found when
the slicer renames its temporary file, costs minutes and leaves a failed job behind; a wrong
value is cheaper to say at once. `main()` runs `check_args` before a command's handler, and
`load_cli_settings` runs `check_with_settings` as soon as the configuration (which names the
printers and materials) is known.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from printforge.runtime.errors import InputError

__all__ = ["OUTPUT_FLAGS", "OUT_KIND", "check_args", "check_with_settings"]

# Flags naming something a command writes; the parser records under OUT_KIND, by dest, whether
# each names a file or a folder (its metavar), so a typo is found before the work, not after.
OUTPUT_FLAGS = ("--out", "--spec-out", "--png")
OUT_KIND = "_outputs"

# Commands whose --printer names a configured printer (`node` and `virtual-camera` use the word
# for other things), and those that take a printer profile (`ender3`) as well.
_PRINTER_COMMANDS = frozenset({"run", "design", "slice", "gcode-info", "print"})
_PROFILE_COMMANDS = frozenset({"slice", "gcode-info"})


def check_args(args: argparse.Namespace) -> None:
    """What can be checked without the configuration: the request's text and --out."""
    from printforge.models.request import request_text_problem

    request = getattr(args, "request", None)
    if isinstance(request, str):
        problem = request_text_problem(request)
        if problem is not None:
            raise InputError(problem)
    font = getattr(args, "font", None)
    if isinstance(font, str):
        _check_font(args, font, getattr(args, "server", None))
    for dest, kind in (getattr(args, OUT_KIND, None) or {}).items():
        value = getattr(args, dest, None)
        if isinstance(value, str):
            _check_output("--" + dest.replace("_", "-"), value, kind)


def _check_font(args: argparse.Namespace, font: str, server: str | None) -> None:
    if server:
        raise InputError("--font is not supported with --server yet (the server cannot read it)")
    path = Path(font).expanduser()
    if not path.is_file():
        raise InputError(f"--font {font}: no such file")
    from printforge.geometry.outline_font import FontError, load_font

    try:
        load_font(path.resolve())
    except FontError as err:
        raise InputError(f"--font: {err}") from None
    # The job keeps the font's whole path: its request.json must mean the same file later.
    args.font = str(path.resolve())


def _check_output(flag: str, value: str, kind: str) -> None:
    path = Path(value).expanduser()
    if kind == "DIR":
        if path.exists() and not path.is_dir():
            raise InputError(f"{flag} {value} is a file; give a folder for the files")
        return
    if path.is_dir():
        raise InputError(f"{flag} {value} is a folder; give a file name, e.g. {path / 'NAME'}")
    # A missing folder is the command's to judge (a backup makes its folders, a slice does
    # not); a file where a folder should be, or a folder nobody may write to, never works.
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise InputError(f"{flag} {value}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise InputError(f"{flag} {value}: the folder {existing} is not writable")


def check_with_settings(args: argparse.Namespace, settings: Any) -> None:
    """Names the configuration knows: printer, material and slicer engine."""
    command = getattr(args, "command", None)
    printer = getattr(args, "printer", None)
    if isinstance(printer, str) and command in _PRINTER_COMMANDS:
        profiles_too = command in _PROFILE_COMMANDS
        known = printer in settings.printers or (
            profiles_too and printer in settings.printer_profiles
        )
        if not known:
            profiles = (
                f"; printer profiles are {', '.join(sorted(settings.printer_profiles))}"
                if profiles_too
                else ""
            )
            raise InputError(
                f"--printer {printer}: unknown printer; configured printers are"
                f" {', '.join(sorted(settings.printers))}{profiles}"
            )
    material = getattr(args, "material", None)
    if isinstance(material, str) and settings.material_key(material) is None:
        known = ", ".join(sorted(settings.materials))
        raise InputError(f"--material {material}: unknown material (known: {known})")
    engine = getattr(args, "engine", None)
    if isinstance(engine, str):
        from printforge.slicing.engine import pick_engine

        # Unknown (InputError) or not installed here (ConfigError), said before any stage runs.
        pick_engine(engine, settings.slicer)
