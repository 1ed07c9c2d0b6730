"""Facts about the boards people put in cases, and the connectors they cut openings for.

Board sizes and mounting-hole centres come from the makers' mechanical drawings, in mm, each
row saying which. Hole centres are board coordinates as the spec's enclosure takes them: origin
at the board's front-left corner, x along the long side. Where the table has no exact holes the
enclosure falls back to four standoffs `hole_inset` from every edge, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BOARDS", "CONNECTORS", "Board", "board_name_span", "find_board", "find_connector"]

Holes = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Board:
    name: str
    size: tuple[float, float]
    headroom: float  # free height its tallest parts (connectors, headers) need above the PCB
    holes: Holes | None  # exact hole centres from a drawing; None: not known here
    hole_inset: float  # hole centres from the board edges, when `holes` is None
    hole_diameter: float  # pilot hole in a printed standoff for its screws
    caveat: str = ""  # why the standoffs may not meet the board's holes, when `holes` is None

    @property
    def hole_spacing(self) -> tuple[float, float] | None:
        """Centre-to-centre sides of the hole rectangle, when the holes are four corners of an
        axis-aligned rectangle (what a `standoffs` frame can carry); else None."""
        if self.holes is None or len(self.holes) != 4:
            return None
        xs = sorted({round(x, 3) for x, _ in self.holes})
        ys = sorted({round(y, 3) for _, y in self.holes})
        if len(xs) != 2 or len(ys) != 2:
            return None
        return (round(xs[1] - xs[0], 3), round(ys[1] - ys[0], 3))


def _rect(size: tuple[float, float], inset_x: float, inset_y: float) -> Holes:
    x0, x1 = inset_x, size[0] - inset_x
    y0, y1 = inset_y, size[1] - inset_y
    return ((x0, y0), (x1, y0), (x0, y1), (x1, y1))


def _mil(*points: tuple[float, float]) -> Holes:
    # Arduino's boards are drawn in Eagle on a 50-mil grid; their mm drawings round these.
    return tuple((round(x * 0.0254, 2), round(y * 0.0254, 2)) for x, y in points)


# Raspberry Pi 3B/3B+/4B/5 mechanical drawings: 85 x 56 mm, M2.5 holes 3.5 mm from the left
# and from the top and bottom edges, 58 x 49 mm apart, so the right-hand pair is 23.5 mm in.
_PI_HOLES: Holes = ((3.5, 3.5), (61.5, 3.5), (3.5, 52.5), (61.5, 52.5))


def _pi(name: str) -> Board:
    return Board(name, (85.0, 56.0), 22.0, _PI_HOLES, 3.5, 2.5)


# Arduino Uno R3 outline (2.7 x 2.1 in): holes at (550, 100), (600, 2000), (2600, 300) and
# (2600, 1400) mil from the corner by the power jack = (14.0, 2.5), (15.3, 50.7), (66.1, 7.6),
# (66.1, 35.5) mm on Arduino's mm drawing.
_UNO_HOLES = _mil((550, 100), (600, 2000), (2600, 300), (2600, 1400))
# Arduino Mega 2560 R3 (4.0 x 2.1 in): the Uno's four (shields fit both) plus (3550, 2000) and
# (3800, 100) mil at the far end.
_MEGA_HOLES = _mil((550, 100), (600, 2000), (2600, 300), (2600, 1400), (3550, 2000), (3800, 100))
_UNKNOWN = "its hole positions are not in printforge's table: check before screwing"

# Ordered: the most specific name first ("pi zero" before "pi", "arduino nano" before "arduino").
BOARDS: list[tuple[str, Board]] = [
    # Raspberry Pi Zero / Zero W / Zero 2 W drawing: 65 x 30 mm, holes 3.5 mm from every edge.
    (
        r"(?:raspberry\s*)?pi\s*zero(?:\s*2)?(?:\s*w)?|pizero\w*(?:\s*2\b)?(?:\s*w\b)?",
        Board("Raspberry Pi Zero", (65.0, 30.0), 12.0, _rect((65.0, 30.0), 3.5, 3.5), 3.5, 2.5),
    ),
    # Raspberry Pi Pico datasheet: 51 x 21 mm, 2.1 mm holes 47.0 x 11.4 mm apart, i.e. 2.0 mm
    # from the short (USB) edges and 4.8 mm from the long edges; M2 screws.
    (
        r"(?:raspberry\s*)?pi\s*pico",
        Board("Raspberry Pi Pico", (51.0, 21.0), 8.0, _rect((51.0, 21.0), 2.0, 4.8), 2.0, 1.8),
    ),
    (r"raspberry\s*pi\s*5|\brpi\s*5|\bpi\s*5\b", _pi("Raspberry Pi 5")),
    (r"raspberry\s*pi\s*4|\brpi\s*4|\bpi\s*4\b", _pi("Raspberry Pi 4")),
    (r"raspberry\s*pi\s*3|\brpi\s*3|\bpi\s*3\b", _pi("Raspberry Pi 3")),
    (r"raspberry\s*pi|\brpi\b|\bpi\b", _pi("Raspberry Pi")),
    (
        r"arduino\s*nano|\bnano\b",
        Board("Arduino Nano", (45.0, 18.0), 10.0, None, 1.6, 1.6, _UNKNOWN),
    ),
    (
        r"arduino\s*mega(?:\s*2560\b)?|\bmega\s*2560\b",
        Board("Arduino Mega", (101.6, 53.3), 18.0, _MEGA_HOLES, 3.5, 2.8),
    ),
    (r"arduino(?:\s*uno)?|\buno\b", Board("Arduino Uno", (68.6, 53.3), 18.0, _UNO_HOLES, 3.5, 2.8)),
    # ESP32-DevKitC V4 (Espressif): 54.4 x 27.9 mm with headers along both long edges and no
    # mounting holes, so corner standoffs are only a rest for it.
    (
        r"esp32(?:[\s-]*(?:devkit\w*|dev\s*kit\w*|wroom\w*))*",
        Board(
            "ESP32 DevKitC",
            (54.4, 27.9),
            10.0,
            None,
            2.5,
            2.0,
            "it has no mounting holes: the standoffs only carry its corners",
        ),
    ),
    # NodeMCU v3 (LoLin) as commonly measured: 58 x 31 mm, 3 mm holes 52 x 25 mm apart.
    # Clones differ by a millimetre or two.
    (
        r"esp8266|nodemcu",
        Board("ESP8266 NodeMCU", (58.0, 31.0), 10.0, _rect((58.0, 31.0), 3.0, 3.0), 3.0, 2.5),
    ),
    (
        r"wemos\s*d1\s*mini|d1\s*mini",
        Board(
            "Wemos D1 mini",
            (34.2, 25.6),
            10.0,
            None,
            2.5,
            2.0,
            "it has no mounting holes: the standoffs only carry its corners",
        ),
    ),
]


def find_board(text: str) -> Board | None:
    for pattern, board in BOARDS:
        if re.search(pattern, text):
            return board
    return None


def board_name_span(text: str) -> tuple[int, int] | None:
    """Where the board is named in `text` ("pi 4", "mega 2560"): its numbers are a name."""
    for pattern, _ in BOARDS:
        m = re.search(pattern, text)
        if m is not None:
            return m.span()
    return None


# Openings for connectors seen from outside: (width along the wall, height), mm, the
# receptacle's face plus about 1 mm of play so a plug with its moulding goes in.
CONNECTORS: list[tuple[str, str, tuple[float, float]]] = [
    (r"usb[\s-]*c\b|type[\s-]*c\b", "USB-C", (10.0, 4.5)),
    (r"micro[\s-]*usb", "micro USB", (9.0, 4.5)),
    (r"mini[\s-]*usb", "mini USB", (9.0, 5.0)),
    (r"usb[\s-]*b\b", "USB-B", (13.0, 12.0)),
    (r"micro[\s-]*hdmi", "micro HDMI", (8.0, 4.5)),
    (r"mini[\s-]*hdmi", "mini HDMI", (12.0, 5.0)),
    (r"hdmi", "HDMI", (16.0, 7.0)),
    (r"ethernet|rj[\s-]*45|\blan\b", "Ethernet", (17.0, 14.5)),
    (r"barrel|dc\s*jack|power\s*jack|dc\s*(?:power|in)", "DC barrel jack", (10.0, 11.0)),
    (r"\bpower\b", "DC barrel jack", (10.0, 11.0)),
    (r"audio|headphone|3\.5\s*mm\s*jack|\baux\b", "audio jack", (7.0, 7.0)),
    (r"sd\s*card|micro\s*sd|\bsd\b", "SD card slot", (13.0, 3.0)),
    (r"usb", "USB-A", (14.0, 7.5)),
    (r"cable|wire|cord", "cable hole", (8.0, 6.0)),
    (r"switch", "switch", (13.0, 8.5)),
    (r"\bfan\b|vent", "vent slot", (20.0, 4.0)),
]


def find_connector(text: str) -> tuple[str, tuple[float, float]] | None:
    for pattern, name, size in CONNECTORS:
        if re.search(pattern, text):
            return name, size
    return None
