"""Connector openings in an enclosure's walls: "a USB port on the left side", "two USB-C ports
on the back and an HDMI port on the right", "a hole for the power cable"."""

from __future__ import annotations

import re
from typing import Any

from printforge.llm.offline.boards import CONNECTORS
from printforge.llm.offline.reader import Reader, mm

__all__ = ["read_ports"]

_CONNECTOR = re.compile("|".join(f"(?:{pattern})" for pattern, _, _ in CONNECTORS))
_SIDES = {"left": "left", "right": "right", "front": "front", "back": "back", "rear": "back"}
_SIDE = re.compile(r"\b(left|right|front|back|rear)\b")
# "two USB ports", "2 usb-c ports"; not "pi 4 with usb ports" (4 names the board).
_WORD_COUNT = re.compile(r"(?<![\w.])(\d+)\s+(?:(?!(?:with|and|for|on|an?|the)\b)[a-z0-9-]+\s+)?$")


def _kind(found: str) -> tuple[str, tuple[float, float]]:
    for pattern, name, size in CONNECTORS:
        if re.fullmatch(f"(?:{pattern})", found) or re.match(pattern, found):
            return name, size
    raise AssertionError(found)  # the combined pattern only matches listed connectors


def read_ports(r: Reader, headroom: float) -> list[dict[str, Any]]:
    """Port dicts for an enclosure; every opening is noted in `r`. Openings on one wall sit
    side by side, centred; the spec refuses a row longer than its wall, saying by how much."""
    text = r.s.text
    r.s.counts.get("port")  # counted ports ("two USB ports") are read below, per connector
    # Only the part after the board is described: "with a USB port on the left".
    hits = [
        m
        for m in _CONNECTOR.finditer(text)
        if re.search(
            r"\b(ports?|jacks?|sockets?|holes?|openings?|slots?|connectors?|cut"
            r"[- ]?outs?|for|with|and)\b",
            text[max(0, m.start() - 30) : m.end() + 12],
        )
    ]
    # "the usb-c power port" is one opening: a name right after another one qualifies it.
    hits = [
        m
        for i, m in enumerate(hits)
        if i == 0 or text[hits[i - 1].end() : m.start()].strip(" -") != ""
    ]
    sides: list[str | None] = []
    for i, m in enumerate(hits):
        end = hits[i + 1].start() if i + 1 < len(hits) else len(text)
        side_m = _SIDE.search(text[m.end() : end])
        sides.append(_SIDES[side_m.group(1)] if side_m else None)
    # "a USB-B port and a barrel jack on the left": both are on the left.
    for i in range(len(hits) - 2, -1, -1):
        joined = re.fullmatch(
            r"[\s\w-]*?\band\b[\s\w-]*", text[hits[i].end() : hits[i + 1].start()]
        )
        if sides[i] is None and joined:
            sides[i] = sides[i + 1]
    wanted: list[tuple[str, tuple[float, float], str, int]] = []
    for m, side in zip(hits, sides, strict=True):
        name, size = _kind(m.group(0))
        if side is None:
            before = _SIDE.search(text[max(0, m.start() - 25) : m.start()])
            side = _SIDES[before.group(1)] if before else None
        if side is None:
            side = "front"
            r.assume(f"the {name} opening on the front")
        count_m = _WORD_COUNT.search(text[max(0, m.start() - 12) : m.start()])
        count = int(count_m.group(1)) if count_m else 1
        wanted.append((name, size, side, count))
    ports: list[dict[str, Any]] = []
    for side in ("front", "back", "left", "right"):
        row = [(n, s) for n, s, sd, c in wanted if sd == side for _ in range(c)]
        if not row:
            continue
        gap = 3.0
        total = sum(s[0] for _, s in row) + gap * (len(row) - 1)
        x = -total / 2
        for name, (w, h) in row:
            height = min(h, round(headroom - 0.5, 1))
            ports.append(
                {
                    "kind": "port",
                    "side": side,
                    "position": round(x + w / 2, 2),
                    "bottom": 0.0,
                    "width": w,
                    "height": height,
                }
            )
            r.note(f"a {name} opening {mm(w)} x {mm(height)} on the {side}")
            r.claim("cutout")
            x += w + gap
    return ports
