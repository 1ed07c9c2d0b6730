"""Lines exactly as Marlin prints them, where it prints them, and what a host must do with them.

Written from Marlin's own source, not from printforge's simulator. The source read is
MarlinFirmware/Marlin ``bugfix-2.1.x`` as imported, unmodified in the files cited here, in the
first commit of github.com/Thinkersbluff/Marlin-bugfix-2.1.x (``MARLIN_SOURCE_COMMIT``;
``Version.h``: SHORT_BUILD_VERSION "bugfix-2.1.x", STRING_DISTRIBUTION_DATE "2025-10-05",
MARLIN_HEX_VERSION 02010300). The upstream repository was too large to fetch here; the passages
the protocol hangs on (``ok_to_send``, ``flush_and_request_resend``'s plain ``ok``, the
duplicate-line rule) were checked against upstream text held in a code index. That import's
``Configuration.h`` is a CR-6 configuration, so no entry relies on its choices; where a line
depends on a build option, ``config`` names it.

Each entry is one concrete example (``text``, byte for byte, without the ``\\n``) and a
``pattern`` that every line of that kind matches in full. ``acks`` says whether the line
acknowledges one command (takes one slot off the host's count). Paths are relative to
``Marlin/src``.

``LEGACY`` holds lines that hosts meet from other firmware versions, or are told to expect, that
bugfix-2.1.x does not print; they are kept apart so that nothing is tested against them as if
Marlin 2.1 printed them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "FREE_TEXT",
    "LEGACY",
    "LINES",
    "MARLIN_SOURCE",
    "MARLIN_SOURCE_COMMIT",
    "LineClass",
    "MarlinLine",
    "classify",
]

MARLIN_SOURCE_COMMIT = "9b0cd4cf2bf63ed9f251ecde460f209e27838d23"
MARLIN_SOURCE = (
    "MarlinFirmware/Marlin bugfix-2.1.x (STRING_DISTRIBUTION_DATE 2025-10-05) as imported in "
    f"github.com/Thinkersbluff/Marlin-bugfix-2.1.x commit {MARLIN_SOURCE_COMMIT}"
)


class LineClass(StrEnum):
    OK = "ok"
    OK_ADVANCED = "ok-with-advanced-fields"
    BUSY = "busy keepalive"
    RESEND = "resend request"
    ERROR_RECOVERABLE = "error recoverable"
    ERROR_FATAL = "error fatal (halted)"
    TEMPERATURE = "temperature report"
    POSITION = "position report"
    ACTION_COMMAND = "action command (host should act)"
    ACTION_NOTICE = "action notice (firmware is acting itself - host must not act)"
    CAPABILITY = "capability"
    ECHO = "echo info"
    START = "firmware start (board reset)"


@dataclass(frozen=True)
class MarlinLine:
    text: str
    cls: LineClass
    source: str
    function: str
    host: str
    pattern: str
    acks: bool = False
    config: str = ""

    def matches(self, line: str) -> bool:
        return re.fullmatch(self.pattern, line) is not None


def _exact(text: str) -> str:
    return re.escape(text)


# p_float_t(value, 2): HEATER_STATE_FLOAT_PRECISION = min(SERIAL_FLOAT_PRECISION, 2)
_F = r"-?\d+\.\d\d"
_N = r"-?\d+"
_HEATER = rf" T:{_F} /{_F}(?: B:{_F} /{_F})?(?: T\d:{_F} /{_F})*"
_POWER = r" @:\d+(?: B@:\d+)?(?: @\d:\d+)*"
_STATES = _HEATER + _POWER

_OK_MEANING = (
    "one command has been executed (a G0/G1 when it entered the planner, a G28 when homing "
    "finished): its slot in the BUFSIZE ring is about to be freed; count it against the oldest "
    "unacknowledged line"
)
_KEEPALIVE = (
    "the firmware is alive and inside a command; restart any lost-ok timer, never resend "
    "because of the silence; it is not an ok"
)

_QUEUE: tuple[MarlinLine, ...] = (
    MarlinLine(
        "ok",
        LineClass.OK,
        "gcode/queue.cpp",
        "GCodeQueue::RingBuffer::ok_to_send",
        _OK_MEANING,
        r"ok",
        acks=True,
    ),
    MarlinLine(
        "ok N12 P15 B3",
        LineClass.OK_ADVANCED,
        "gcode/queue.cpp",
        "GCodeQueue::RingBuffer::ok_to_send",
        "acknowledges the command whose own N word is given (commands[index_r], the one just "
        "executed), not the last line received; P = planner.moves_free() = BLOCK_BUFFER_SIZE - 1 "
        "- movesplanned(); B = BUFSIZE - length, counted while the acknowledged command still "
        "sits in the ring (advance_r() runs after), so B <= BUFSIZE - 1",
        rf"ok N{_N} P\d+ B\d+",
        acks=True,
        config="ADVANCED_OK",
    ),
    MarlinLine(
        "ok P15 B3",
        LineClass.OK_ADVANCED,
        "gcode/queue.cpp",
        "GCodeQueue::RingBuffer::ok_to_send",
        "as above for a command sent without a line number: no N field",
        r"ok P\d+ B\d+",
        acks=True,
        config="ADVANCED_OK",
    ),
    MarlinLine(
        "ok",
        LineClass.OK,
        "gcode/queue.cpp",
        "GCodeQueue::flush_and_request_resend",
        "the ok printed right after Resend: (SERIAL_ECHOLNPGM(STR_OK)): plain even with "
        "ADVANCED_OK; it answers the refused line and acknowledges no executed command",
        r"ok",
    ),
    MarlinLine(
        "Resend: 8",
        LineClass.RESEND,
        "gcode/queue.cpp",
        "GCodeQueue::flush_and_request_resend",
        "send again from this line (last_N + 1); the bytes already in the RX buffer were thrown "
        "away, and lines still on the wire after it are refused in turn (or, at last_N - 1 or "
        "last_N, dropped without an answer)",
        rf"Resend: {_N}",
    ),
    MarlinLine(
        "Error:Line Number is not Last Line Number+1, Last Line: 7",
        LineClass.ERROR_RECOVERABLE,
        "gcode/queue.cpp",
        "GCodeQueue::gcode_line_error (from get_serial_commands)",
        "the line was not queued; Resend: and ok follow. A line numbered last_N - 1 or last_N "
        "gets no error at all: it is dropped silently, with no ok",
        rf"Error:Line Number is not Last Line Number\+1, Last Line: {_N}",
    ),
    MarlinLine(
        "Error:checksum mismatch, Last Line: 7",
        LineClass.ERROR_RECOVERABLE,
        "gcode/queue.cpp",
        "GCodeQueue::gcode_line_error (from get_serial_commands)",
        "the line was not queued; Resend: and ok follow",
        rf"Error:checksum mismatch, Last Line: {_N}",
    ),
    MarlinLine(
        "Error:No Checksum with line number, Last Line: 7",
        LineClass.ERROR_RECOVERABLE,
        "gcode/queue.cpp",
        "GCodeQueue::gcode_line_error (from get_serial_commands)",
        "a line with N and no '*': not queued; Resend: and ok follow",
        rf"Error:No Checksum with line number, Last Line: {_N}",
    ),
    MarlinLine(
        "wait",
        LineClass.ECHO,
        "gcode/queue.cpp",
        "GCodeQueue::get_serial_commands",
        "the command queue has been empty for NO_TIMEOUTS ms; not an ok, acknowledges nothing",
        r"wait",
        config="NO_TIMEOUTS > 0",
    ),
    MarlinLine(
        "Line: 12",
        LineClass.ECHO,
        "gcode/host/M110.cpp",
        "GcodeSuite::M110",
        "M110 without N: the last line number processed; an ok follows",
        rf"Line: {_N}",
    ),
    MarlinLine(
        'echo:Unknown command: "G999"',
        LineClass.ECHO,
        "gcode/parser.cpp",
        "GCodeParser::unknown_command_warning",
        "the command does nothing on this build, but it still gets its ok",
        r'echo:Unknown command: ".*"',
    ),
    MarlinLine(
        "echo:M113 S2",
        LineClass.ECHO,
        "gcode/host/M113.cpp",
        "GcodeSuite::M113",
        "M113 without S: the keepalive interval in seconds; an ok follows",
        r"echo:M113 S\d+",
        config="HOST_KEEPALIVE_FEATURE",
    ),
)

_BUSY: tuple[MarlinLine, ...] = (
    MarlinLine(
        "echo:busy: processing",
        LineClass.BUSY,
        "gcode/gcode.cpp",
        "GcodeSuite::host_keepalive",
        f"every host_keepalive_interval (DEFAULT_KEEPALIVE_INTERVAL 2 s, M113 S) while "
        f"busy_state is IN_HANDLER/IN_PROCESS: G28, G29, G4, M400, a move waiting for the planner, "
        f"M109/M190 with BUSY_WHILE_HEATING, the moves of M600; {_KEEPALIVE}",
        r"echo:busy: processing",
        config="HOST_KEEPALIVE_FEATURE",
    ),
    MarlinLine(
        "echo:busy: paused for user",
        LineClass.BUSY,
        "gcode/gcode.cpp",
        "GcodeSuite::host_keepalive",
        "busy_state PAUSED_FOR_USER: waiting for the LCD button or M108 (M0/M1 through "
        "wait_for_user_response, M600 waiting for filament in pause.cpp, probe, M43); "
        f"{_KEEPALIVE}",
        r"echo:busy: paused for user",
        config="HOST_KEEPALIVE_FEATURE",
    ),
    MarlinLine(
        "echo:busy: paused for input",
        LineClass.BUSY,
        "gcode/gcode.cpp",
        "GcodeSuite::host_keepalive",
        'busy_state PAUSED_FOR_INPUT ("concept" in gcode.h: nothing in this snapshot sets it); '
        f"{_KEEPALIVE}",
        r"echo:busy: paused for input",
        config="HOST_KEEPALIVE_FEATURE",
    ),
)

_TEMPERATURE: tuple[MarlinLine, ...] = (
    MarlinLine(
        " T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0",
        LineClass.TEMPERATURE,
        "module/temperature.cpp",
        "Temperature::AutoReportTemp::report -> print_heater_states (M155 S<sec>)",
        "an auto-report: note the leading space; not an ok; skipped while a heating wait runs",
        _STATES,
        config="AUTO_REPORT_TEMPERATURES",
    ),
    MarlinLine(
        "ok T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0",
        LineClass.TEMPERATURE,
        "gcode/temp/M105.cpp",
        "GcodeSuite::M105 -> Temperature::print_heater_states",
        "the answer to M105, which prints its own 'ok' (no_ok = true in process_parsed_command): "
        "acknowledges the M105 and never carries ADVANCED_OK fields",
        "ok" + _STATES,
        acks=True,
    ),
    MarlinLine(
        " T:210.00 /210.00 B:60.00 /60.00 T0:210.00 /210.00 T1:25.00 /0.00 @:127 B@:0 @0:127 @1:0",
        LineClass.TEMPERATURE,
        "module/temperature.cpp",
        "Temperature::print_heater_states",
        "several hotends: T is the active (or T-selected) extruder, then every hotend as Tn, "
        "then the powers @:, B@:, @n:",
        _STATES,
        config="HAS_MULTI_HOTEND",
    ),
    MarlinLine(
        "ok T:210.00 /210.00 B:60.00 /60.00 T0:210.00 /210.00 T1:25.00 /0.00 @:127 B@:0 @0:127 "
        "@1:0",
        LineClass.TEMPERATURE,
        "gcode/temp/M105.cpp",
        "GcodeSuite::M105",
        "M105 on a two-hotend board; acknowledges the M105",
        "ok" + _STATES,
        acks=True,
        config="HAS_MULTI_HOTEND",
    ),
    MarlinLine(
        " T:185.43 /210.00 B:60.00 /60.00 @:127 B@:0 W:?",
        LineClass.TEMPERATURE,
        "module/temperature.cpp",
        "Temperature::wait_for_hotend",
        "printed every second while M109 waits (wait_for_heatup), W:? before the temperature "
        "window is reached; not an ok - the M109's own ok comes when the wait ends",
        _STATES + r" W:(?:\?|-?\d+)",
        config="TEMP_RESIDENCY_TIME > 0",
    ),
    MarlinLine(
        " T:209.87 /210.00 B:60.00 /60.00 @:64 B@:0 W:7",
        LineClass.TEMPERATURE,
        "module/temperature.cpp",
        "Temperature::wait_for_hotend",
        "the same during the residency countdown: W is the seconds left",
        _STATES + r" W:-?\d+",
        config="TEMP_RESIDENCY_TIME > 0",
    ),
    MarlinLine(
        " T:210.00 /210.00 B:55.10 /60.00 @:64 B@:127 W:?",
        LineClass.TEMPERATURE,
        "module/temperature.cpp",
        "Temperature::wait_for_bed",
        "printed every second while M190 waits; W is the bed's residency",
        _STATES + r" W:(?:\?|-?\d+)",
        config="TEMP_BED_RESIDENCY_TIME > 0",
    ),
    MarlinLine(
        " T:209.80 /210.00 B:60.00 /60.00 @:64 B@:0",
        LineClass.TEMPERATURE,
        "module/temperature.cpp",
        "Temperature::wait_for_hotend",
        "a heating wait's line on a build with TEMP_RESIDENCY_TIME 0: no W field",
        _STATES,
        config="TEMP_RESIDENCY_TIME == 0",
    ),
    MarlinLine(
        "ok T:0",
        LineClass.TEMPERATURE,
        "gcode/temp/M105.cpp",
        "GcodeSuite::M105",
        "M105 on a build without temperature sensors (hosts use M105 to test the link)",
        r"ok T:0",
        acks=True,
        config="!HAS_TEMP_SENSOR",
    ),
    MarlinLine(
        "X:10.00 Y:20.00 Z:0.20 E:1.50 Count X:800 Y:1600 Z:80",
        LineClass.POSITION,
        "gcode/host/M114.cpp",
        "GcodeSuite::M114 -> report_current_position_projected (module/motion.cpp "
        "report_logical_position, module/stepper.cpp Stepper::report_a_position)",
        "the position of the last command queued (not synchronised unless M114_LEGACY); an ok "
        "follows",
        rf"X:{_F} Y:{_F} Z:{_F} E:{_F} Count X:{_N} Y:{_N} Z:{_N}",
    ),
)

# M115's cap_line() calls in the order M115.cpp prints them, with what each promises a host.
_CAPS: tuple[tuple[str, str, str], ...] = (
    ("SERIAL_XON_XOFF", "0", "SERIAL_XON_XOFF: the board sends XON/XOFF for flow control"),
    ("BINARY_FILE_TRANSFER", "0", "BINARY_FILE_TRANSFER: M28 B1 binary upload to the SD card"),
    ("EEPROM", "1", "EEPROM_SETTINGS: M500/M501 work"),
    ("VOLUMETRIC", "1", "!NO_VOLUMETRICS: M200 volumetric extrusion"),
    ("AUTOREPORT_POS", "0", "AUTO_REPORT_POSITION: M154 S<sec> position reports"),
    ("AUTOREPORT_TEMP", "1", "AUTO_REPORT_TEMPERATURES: M155 S<sec> instead of polling M105"),
    ("PROGRESS", "0", "always 0 (M530-M532 not implemented)"),
    ("PRINT_JOB", "1", "always 1: M75/M76/M77 print job timer"),
    ("AUTOLEVEL", "0", "HAS_AUTOLEVEL: G29 probes"),
    ("RUNOUT", "0", "HAS_FILAMENT_SENSOR: runout handling (M412, M600)"),
    ("Z_PROBE", "0", "HAS_BED_PROBE: G30"),
    ("LEVELING_DATA", "0", "HAS_LEVELING: M420 V"),
    ("BUILD_PERCENT", "0", "SET_PROGRESS_PERCENT: M73 P"),
    ("SOFTWARE_POWER", "0", "PSU_CONTROL: M80/M81"),
    ("TOGGLE_LIGHTS", "0", "CASE_LIGHT_ENABLE: M355"),
    ("CASE_LIGHT_BRIGHTNESS", "0", "a case light with PWM brightness"),
    (
        "EMERGENCY_PARSER",
        "1",
        "M108, M112, M410 (and M876 with prompts) act as their bytes "
        "arrive, even while the command ring is full",
    ),
    (
        "HOST_ACTION_COMMANDS",
        "1",
        "HOST_ACTION_COMMANDS: //action: lines (paused, resumed, "
        "pause, resume, cancel, poweroff, ...)",
    ),
    ("PROMPT_SUPPORT", "0", "HOST_PROMPT_SUPPORT: //action:prompt_* dialogs answered with M876"),
    ("SDCARD", "0", "HAS_MEDIA: M20/M23/M24"),
    ("REPEAT", "0", "GCODE_REPEAT_MARKERS: M808"),
    ("SD_WRITE", "0", "HAS_MEDIA && !SDCARD_READONLY: M28/M29/M928"),
    ("AUTOREPORT_SD_STATUS", "0", "AUTO_REPORT_SD_STATUS: M27 S<sec>"),
    ("LONG_FILENAME", "0", "LONG_FILENAME_HOST_SUPPORT: M33"),
    ("LFN_WRITE", "0", "LONG_FILENAME_WRITE_SUPPORT"),
    ("CUSTOM_FIRMWARE_UPLOAD", "0", "CUSTOM_FIRMWARE_UPLOAD: M20 F"),
    ("EXTENDED_M20", "0", "LONG_FILENAME_HOST_SUPPORT: M20 L"),
    ("THERMAL_PROTECTION", "1", "THERMALLY_SAFE: all thermal protection enabled"),
    ("MOTION_MODES", "0", "GCODE_MOTION_MODES"),
    ("ARCS", "1", "ARC_SUPPORT: G2/G3"),
    ("BABYSTEPPING", "0", "BABYSTEPPING: M290"),
    ("EP_BABYSTEP", "0", "EP_BABYSTEPPING: M293/M294 through the emergency parser"),
    ("CHAMBER_TEMPERATURE", "0", "HAS_HEATED_CHAMBER: M141/M191"),
    ("COOLER_TEMPERATURE", "0", "HAS_COOLER: M143/M193"),
    ("MEATPACK", "0", "MEATPACK compression on this port"),
    ("CONFIG_EXPORT", "0", "CONFIGURATION_EMBEDDING"),
)
CAP_ORDER: tuple[str, ...] = tuple(name for name, _, _ in _CAPS)

_CAPABILITY: tuple[MarlinLine, ...] = (
    MarlinLine(
        "FIRMWARE_NAME:Marlin bugfix-2.1.x (Oct  5 2025 12:00:00) "
        "SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 "
        "MACHINE_TYPE:3D Printer KINEMATICS:Cartesian EXTRUDER_COUNT:1 "
        "UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff",
        LineClass.CAPABILITY,
        "gcode/host/M115.cpp",
        "GcodeSuite::M115",
        "identifies the firmware; the Cap: lines and an ok follow (MACHINE_TYPE may contain "
        "spaces; UUID is DEFAULT_MACHINE_UUID unless the build sets MACHINE_UUID)",
        r"FIRMWARE_NAME:Marlin \S+ \(\w{3} [ \d]\d \d{4} \d\d:\d\d:\d\d\) SOURCE_CODE_URL:\S+ "
        r"PROTOCOL_VERSION:\S+ MACHINE_TYPE:.+ KINEMATICS:\S* EXTRUDER_COUNT:\d+"
        r"(?: AXIS_COUNT:\d+)?(?: UUID:\S+)?",
        config="CAPABILITIES_REPORT",
    ),
    *(
        MarlinLine(
            f"Cap:{name}:{value}",
            LineClass.CAPABILITY,
            "gcode/host/M115.cpp",
            "cap_line (GcodeSuite::M115)",
            f"1 when {meaning}; 0 (or, with MINIMAL_CAP_LINES, no "
            "line) when not: a host must assume absent what is not reported",
            rf"Cap:{name}:[01]",
            config="EXTENDED_CAPABILITIES_REPORT",
        )
        for name, value, meaning in _CAPS
    ),
    MarlinLine(
        "Cap:PAREN_COMMENTS:1",
        LineClass.CAPABILITY,
        "gcode/host/M115.cpp",
        "cap_line (GcodeSuite::M115)",
        "printed first, and only when PAREN_COMMENTS is enabled",
        r"Cap:PAREN_COMMENTS:1",
        config="PAREN_COMMENTS",
    ),
    MarlinLine(
        "Cap:MULTI_VOLUME:0",
        LineClass.CAPABILITY,
        "gcode/host/M115.cpp",
        "cap_line (GcodeSuite::M115)",
        "only on boards with media, after SDCARD",
        r"Cap:MULTI_VOLUME:[01]",
        config="HAS_MEDIA",
    ),
)

_NOTICE = "the firmware is pausing by itself and will resume by itself: the host must not park, "
_ACTIONS: tuple[MarlinLine, ...] = (
    MarlinLine(
        "//action:paused",
        LineClass.ACTION_NOTICE,
        "feature/host_actions.cpp",
        "HostUI::paused from pause_print (feature/pause.cpp): M600, M125, M25 with "
        "PARK_HEAD_ON_PAUSE, a runout script",
        _NOTICE + "retract or send its own pause G-code (it would queue behind the firmware's "
        "own park); keep the stream quiet until //action:resumed, keep the link alive",
        r"//action:paused",
        config="HOST_ACTION_COMMANDS",
    ),
    MarlinLine(
        "//action:resumed",
        LineClass.ACTION_NOTICE,
        "feature/host_actions.cpp",
        "HostUI::resumed from resume_print (feature/pause.cpp)",
        "the firmware's own pause is over (it already moved back and re-primed): nothing to "
        "restore on the host",
        r"//action:resumed",
        config="HOST_ACTION_COMMANDS",
    ),
    MarlinLine(
        "//action:paused filament_runout 0",
        LineClass.ACTION_NOTICE,
        "feature/runout.cpp",
        "event_filament_runout (FILAMENT_RUNOUT_SCRIPT with M600, M125 or M25)",
        _NOTICE + "the runout script parks and waits for filament",
        r"//action:paused filament_runout \d",
        config="HOST_ACTION_COMMANDS, HAS_FILAMENT_SENSOR",
    ),
    MarlinLine(
        "//action:pause",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::pause from MarlinUI::pause_print (lcd/marlinui.cpp, host-only printer), M25 "
        "without PARK_HEAD_ON_PAUSE (gcode/sd/M24_M25.cpp), M76 with HOST_PAUSE_M76",
        "the firmware asks the host to pause the job it streams (stop feeding, park if the "
        "host parks)",
        r"//action:pause",
        config="HOST_ACTION_COMMANDS",
    ),
    MarlinLine(
        "//action:pause filament_runout 0",
        LineClass.ACTION_COMMAND,
        "feature/runout.cpp",
        "event_filament_runout (no parking runout script)",
        "filament ran out and the firmware does not park: the host must pause its stream",
        r"//action:pause filament_runout \d",
        config="HOST_ACTION_COMMANDS, HAS_FILAMENT_SENSOR",
    ),
    MarlinLine(
        "//action:filament_runout T0",
        LineClass.ACTION_COMMAND,
        "feature/runout.cpp",
        "event_filament_runout (ACTION_ON_FILAMENT_RUNOUT, legacy Repetier form)",
        "printed just before //action:pause filament_runout N; a host that handles the pause "
        "form must not pause twice",
        r"//action:filament_runout T\d",
        config="HOST_ACTION_COMMANDS, HAS_FILAMENT_SENSOR",
    ),
    MarlinLine(
        "//action:resume",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::resume from MarlinUI::resume_print (lcd/marlinui.cpp), M24 (gcode/sd/M24_M25.cpp)",
        "the firmware asks the host to resume its stream",
        r"//action:resume",
        config="HOST_ACTION_COMMANDS",
    ),
    MarlinLine(
        "//action:cancel",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::cancel from MarlinUI::abort_print (lcd/marlinui.cpp), "
        "GcodeSuite::event_probe_failure (G29_HALT_ON_FAILURE)",
        "the user stopped the print on the printer: the host must stop sending the job",
        r"//action:cancel",
        config="HOST_ACTION_COMMANDS",
    ),
    MarlinLine(
        "//action:start",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::start from the HOST_START_MENU_ITEM (lcd/menu/menu_main.cpp)",
        "the user asks the host to start its selected job",
        r"//action:start",
        config="HOST_ACTION_COMMANDS, HOST_START_MENU_ITEM",
    ),
    MarlinLine(
        "//action:shutdown",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::shutdown from the HOST_SHUTDOWN_MENU_ITEM (lcd/menu/menu_main.cpp)",
        "the user asks the host computer to shut down",
        r"//action:shutdown",
        config="HOST_ACTION_COMMANDS, HOST_SHUTDOWN_MENU_ITEM",
    ),
    MarlinLine(
        "//action:poweroff",
        LineClass.ACTION_COMMAND,
        "MarlinCore.cpp",
        "kill() -> HostUI::kill (ACTION_ON_KILL)",
        "follows Error:Printer halted: the board is dead until reset; end the job as failed",
        r"//action:poweroff",
        config="HOST_ACTION_COMMANDS",
    ),
    MarlinLine(
        "//action:probe_failed",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::g29_failure from GcodeSuite::event_probe_failure (gcode/gcode.cpp)",
        "G29 failed after its retries",
        r"//action:probe_failed",
        config="HOST_ACTION_COMMANDS, G29_RETRY_AND_RECOVER",
    ),
    MarlinLine(
        "//action:prompt_end",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::prompt_end (also first of every prompt_begin)",
        "close any dialog the firmware opened",
        r"//action:prompt_end",
        config="HOST_PROMPT_SUPPORT",
    ),
    MarlinLine(
        "//action:prompt_begin Pause",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        'HostUI::prompt_begin (pause_print\'s prompt_open(PROMPT_INFO, "Pause", "Dismiss"))',
        "start a dialog with this text; buttons and prompt_show follow; answer with M876 S<n>",
        r"//action:prompt_begin .*",
        config="HOST_PROMPT_SUPPORT",
    ),
    MarlinLine(
        "//action:prompt_button Dismiss",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::prompt_button",
        "add a button to the dialog being built (numbered from 0)",
        r"//action:prompt_button .*",
        config="HOST_PROMPT_SUPPORT",
    ),
    MarlinLine(
        "//action:prompt_show",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::prompt_show",
        "show the dialog",
        r"//action:prompt_show",
        config="HOST_PROMPT_SUPPORT",
    ),
    MarlinLine(
        "//action:notification Printing...",
        LineClass.ACTION_COMMAND,
        "feature/host_actions.cpp",
        "HostUI::notify (MarlinUI::set_status with HOST_STATUS_NOTIFICATIONS)",
        "a status message for the host's display",
        r"//action:notification .*",
        config="HOST_PROMPT_SUPPORT, HOST_STATUS_NOTIFICATIONS",
    ),
)

_THERMAL = (
    "printed by Temperature::_temp_error, then loud_kill -> kill(): the firmware is halted; "
    "mark the printer faulted, end the job, send nothing more (nothing will be answered)"
)
_FATAL: tuple[MarlinLine, ...] = (
    MarlinLine(
        "Error:Printer halted. kill() called!",
        LineClass.ERROR_FATAL,
        "MarlinCore.cpp",
        "kill",
        "the firmware has stopped for good (M112, thermal error, kill pin): it answers nothing "
        "more until reset; end the job as failed",
        r"Error:Printer halted\. kill\(\) called!",
    ),
    MarlinLine(
        "echo:M112 Shutdown",
        LineClass.ECHO,
        "MarlinCore.cpp",
        "kill (echo of M112_KILL_STR, the LCD message)",
        "printed just before Error:Printer halted after an M112",
        r"echo:M112 Shutdown",
    ),
    MarlinLine(
        "echo:THERMAL RUNAWAY",
        LineClass.ECHO,
        "MarlinCore.cpp",
        "kill (echo of the LCD message that module/temperature.cpp _temp_error -> loud_kill "
        "passes: MSG_ERR_THERMAL_RUNAWAY, MSG_ERR_HEATING_FAILED, MSG_ERR_MAXTEMP... in "
        "lcd/language/language_en.h)",
        "printed between a thermal Error: line and Error:Printer halted",
        r"echo:(?:THERMAL RUNAWAY|Heating Failed|TEMP MALFUNCTION|Cooling Failed|"
        r"Err: MAXTEMP|Err: MINTEMP|Err: REDUNDANT TEMP)",
    ),
    *(
        MarlinLine(
            f"Error:{what}, system stopped! Heater_ID: {heater}",
            LineClass.ERROR_FATAL,
            "module/temperature.cpp",
            "Temperature::_temp_error",
            _THERMAL,
            rf"Error:{re.escape(what)}, system stopped! Heater_ID: (?:E\d|bed|chamber|cooler|"
            r"probe|motherboard|soc|redundant .*)(?: \(temp: [-\d.]+\))?",
        )
        for what, heater in (
            ("Thermal Runaway", "E0"),
            ("Thermal Runaway", "bed"),
            ("Heating failed", "E0"),
            ("MAXTEMP triggered", "E0"),
            ("MINTEMP triggered", "bed"),
            ("Thermal Malfunction", "E0"),
        )
    ),
    MarlinLine(
        "Error:Printer stopped due to errors. Fix the error and use M999 to restart. "
        "(Temperature is reset. Set it after restarting)",
        LineClass.ERROR_FATAL,
        "MarlinCore.cpp",
        "stop",
        "not killed: the board still answers, but the job is lost until M999",
        r"Error:Printer stopped due to errors\. Fix the error and use M999 to restart\. "
        r"\(Temperature is reset\. Set it after restarting\)",
    ),
    MarlinLine(
        "Printer stopped due to errors. Fix the error and use M999 to restart. (Temperature is "
        "reset. Set it after restarting)",
        LineClass.ERROR_FATAL,
        "gcode/queue.cpp",
        "GCodeQueue::get_serial_commands (IsStopped)",
        "a G0-G3 arriving while stopped: no Error: prefix here",
        r"Printer stopped due to "
        r"errors\. Fix the error and use M999 to restart\. \(Temperature is reset\. Set it after "
        r"restarting\)",
    ),
)

_ECHO: tuple[MarlinLine, ...] = (
    MarlinLine(
        "echo:Insert filament and send M108",
        LineClass.ECHO,
        "feature/pause.cpp",
        "show_continue_prompt / load_filament (no LCD menu: the _M108 messages)",
        "the firmware waits (busy: paused for user) for the LCD button or M108; a host may "
        "offer the user a Continue that sends M108",
        r"echo:Insert filament and send M108",
        config="ADVANCED_PAUSE_FEATURE, !HAS_MARLINUI_MENU",
    ),
    MarlinLine(
        "echo:Send M108 to resume",
        LineClass.ECHO,
        "feature/pause.cpp",
        "show_continue_prompt (M125 pause)",
        "as above",
        r"echo:Send M108 to resume",
        config="ADVANCED_PAUSE_FEATURE, !HAS_MARLINUI_MENU",
    ),
    MarlinLine(
        "echo:Send M108 to heat nozzle",
        LineClass.ECHO,
        "feature/pause.cpp",
        "wait_for_confirmation (nozzle timed out)",
        "as above",
        r"echo:Send M108 to heat nozzle",
        config="ADVANCED_PAUSE_FEATURE, !HAS_MARLINUI_MENU",
    ),
    MarlinLine(
        "echo:Insert filament and press button",
        LineClass.ECHO,
        "feature/pause.cpp",
        "show_continue_prompt / load_filament (LCD menu: the _LCD messages)",
        "the firmware waits for the LCD button (or M108)",
        r"echo:Insert filament and press button",
        config="ADVANCED_PAUSE_FEATURE, HAS_MARLINUI_MENU",
    ),
    MarlinLine(
        "echo:Hotend too cold",
        LineClass.ECHO,
        "feature/pause.cpp",
        "ensure_safe_temperature",
        "a filament change gave up because the nozzle is below EXTRUDE_MINTEMP",
        r"echo:Hotend too cold",
        config="ADVANCED_PAUSE_FEATURE, PREVENT_COLD_EXTRUSION",
    ),
    MarlinLine(
        "echo:T5 Invalid extruder",
        LineClass.ECHO,
        "module/tool_change.cpp",
        "invalid_extruder_error (from tool_change)",
        "a T<n> beyond EXTRUDERS: the tool stays as it was; an ok follows",
        r"echo:T\d+ Invalid extruder",
    ),
    MarlinLine(
        "echo:M104 Invalid extruder 5",
        LineClass.ECHO,
        "gcode/gcode.cpp",
        "GcodeSuite::get_target_extruder_from_command",
        "a T parameter beyond EXTRUDERS (M104, M109, M106...): the command does nothing; an "
        "ok follows",
        r"echo:M\d+ Invalid extruder \d+",
    ),
    MarlinLine(
        "echo: cold extrusion prevented",
        LineClass.ECHO,
        "module/motion.cpp",
        "prepare_move_to_destination's E check",
        "the move ran without extruding",
        r"echo: cold extrusion prevented",
        config="PREVENT_COLD_EXTRUSION",
    ),
    MarlinLine(
        'echo:enqueueing "M24"',
        LineClass.ECHO,
        "gcode/queue.cpp",
        "GCodeQueue::enqueue_one",
        "the firmware queued a command of its own (menu, script); no ok will be sent for it",
        r'echo:enqueueing ".*"',
    ),
    MarlinLine(
        "start",
        LineClass.START,
        "MarlinCore.cpp",
        "setup",
        "the board (re)started: every line in flight is lost, numbering is back at 0; "
        "handshake again (M110) before sending",
        r"start",
    ),
    MarlinLine(
        "Marlin bugfix-2.1.x",
        LineClass.ECHO,
        "MarlinCore.cpp",
        "setup",
        "boot banner",
        r"Marlin \S+",
    ),
    MarlinLine(
        "echo: Last Updated: 2025-10-05 | Author: (none, default config)",
        LineClass.ECHO,
        "MarlinCore.cpp",
        "setup",
        "boot banner",
        r"echo: Last Updated: \S+ \| Author: .*",
    ),
    MarlinLine(
        "echo: Compiled: Oct  5 2025",
        LineClass.ECHO,
        "MarlinCore.cpp",
        "setup",
        "boot banner",
        r"echo: Compiled: \w{3} [ \d]\d \d{4}",
    ),
    MarlinLine(
        "echo: Free Memory: 4887  PlannerBufferBytes: 1408",
        LineClass.ECHO,
        "MarlinCore.cpp",
        "setup",
        "boot banner",
        r"echo: Free Memory: \d+  PlannerBufferBytes: \d+",
    ),
)

# Text a G-code supplies: last, so that they only take what nothing more specific matched.
_FREE_TEXT: tuple[MarlinLine, ...] = (
    MarlinLine(
        "echo:Remove the part",
        LineClass.ECHO,
        "gcode/lcd/M0_M1.cpp",
        "GcodeSuite::M0_M1",
        "the text given to M0/M1 (no LCD): a message for the user; busy: paused for user follows",
        r"echo:.*",
        config="HAS_RESUME_CONTINUE (EMERGENCY_PARSER or an LCD), !HAS_MARLINUI_MENU",
    ),
    MarlinLine(
        "Hello",
        LineClass.ECHO,
        "gcode/host/M118.cpp",
        "GcodeSuite::M118",
        "M118 prints its text as given (E1 adds echo:, A1 adds //); it can therefore print "
        "anything, an //action: line included",
        r".*",
    ),
)

LINES: tuple[MarlinLine, ...] = (
    *_QUEUE,
    *_BUSY,
    *_TEMPERATURE,
    *_CAPABILITY,
    *_ACTIONS,
    *_FATAL,
    *_ECHO,
    *_FREE_TEXT,
)
FREE_TEXT = _FREE_TEXT

LEGACY: tuple[MarlinLine, ...] = (
    MarlinLine(
        "Error:No Line Number with checksum, Last Line: 7",
        LineClass.ERROR_RECOVERABLE,
        "Marlin_main.cpp (Marlin 1.0/1.1.0-RC, MSG_ERR_NO_LINENUMBER_WITH_CHECKSUM)",
        "get_serial_commands -> gcode_line_error(..., doFlush=false)",
        "a line with '*' but no N: dropped, with no Resend: and no ok. Gone by 1.1.9 and absent "
        "from 2.1.x, which queues such a line and never checks its checksum",
        rf"Error:No Line Number with checksum, Last Line: {_N}",
    ),
    MarlinLine(
        "Resend: 8",
        LineClass.RESEND,
        "gcode/queue.cpp (some 2.0.x builds)",
        "GCodeQueue::flush_and_request_resend",
        "no ok follows the Resend: on those builds (2.1.x prints one)",
        rf"Resend: {_N}",
    ),
    MarlinLine(
        "// action:out_of_filament T0",
        LineClass.ACTION_COMMAND,
        "Repetier-Firmware",
        "GCodeSource::printAllFLN",
        "Repetier's runout line; Marlin's runout.cpp has '//action:out_of_filament' only as a "
        "comment and prints the filament_runout forms instead",
        r"// ?action:out_of_filament T\d",
    ),
)


def classify(line: str, *, free_text: bool = False) -> MarlinLine | None:
    """The first entry of ``LINES`` whose pattern matches ``line`` in full; the catch-all
    entries for text a G-code supplies (M0's message, M118) only with ``free_text``."""
    for entry in LINES if free_text else LINES[: -len(_FREE_TEXT)]:
        if entry.matches(line):
            return entry
    return None
