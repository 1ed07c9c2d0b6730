"""Breadth of the offline parser: how makers actually phrase requests, end to end.

Each row is a request, the part family a person would expect, the fields the request fixes,
and (where the request fixes the outer size of a one-body part) the size of the built mesh,
within 0.1 mm. Every row is built with `build_mesh` and must be watertight. Refusals must say
what was understood and what is missing or wrong, before any mesh is built.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from printforge.geometry import build_mesh
from printforge.llm.offline import parse_request
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import InputError

PROFILE = PrinterProfile(name="mk3", bed_x=250, bed_y=210, max_z=210)
IN = 25.4

# (request, family, fields the request fixes, mesh extents sorted-compared or None)
Row = tuple[str, str, dict[str, Any], tuple[float, float, float] | None]

CUBES_AND_BOXES: list[Row] = [
    (
        "a box 3 inches square and 1 inch tall",
        "tray",
        {"size": [3 * IN, 3 * IN, IN]},
        (3 * IN, 3 * IN, IN),
    ),
    ("a 20mm cube with a 5mm hole through it", "box", {}, (20, 20, 20)),
    ("a 20 mm cube with rounded corners", "rounded_box", {"radius": 4}, (20, 20, 20)),
    ("a 20 mm cube with rounded edges", "hull", {}, (20, 20, 20)),
    ("a block 40 x 20 x 10 with all edges rounded, radius 2", "hull", {}, (40, 20, 10)),
    ("a capsule 40 mm long 10 mm diameter", "hull", {}, (10, 10, 40)),
    ("a pill 30 long 12 wide", "hull", {}, (12, 12, 30)),
    ("I need a 25mm cube", "box", {"size": [25, 25, 25]}, (25, 25, 25)),
    ("make me a calibration cube", "box", {"size": [20, 20, 20]}, (20, 20, 20)),
    ("print a 1 inch cube", "box", {"size": [IN, IN, IN]}, (IN, IN, IN)),
    ("Could you print me a 2cm cube?", "box", {"size": [20, 20, 20]}, (20, 20, 20)),
    ("I want a 15 x 15 x 15 mm test cube", "box", {"size": [15, 15, 15]}, (15, 15, 15)),
    ("a block 50 x 30 x 10", "box", {"size": [50, 30, 10]}, (50, 30, 10)),
    ("a brick 2 x 4 x 8 cm", "box", {"size": [20, 40, 80]}, (20, 40, 80)),
    ('a cuboid 3/4" x 1/2" x 2"', "box", {"size": [19.05, 12.7, 50.8]}, (19.05, 12.7, 50.8)),
    ("a slab 100mm long, 50mm wide and 5mm thick", "box", {"size": [100, 50, 5]}, (100, 50, 5)),
    ("I need a box with a lid, 100 x 60 x 40 mm", "box_with_lid", {"size": [100, 60, 40]}, None),
    (
        "make me a lidded box 4 x 3 x 2 inches",
        "box_with_lid",
        {"size": [4 * IN, 3 * IN, 2 * IN]},
        None,
    ),
    (
        "a small box with lid 50mm x 50mm x 30mm with 1.5 mm walls",
        "box_with_lid",
        {"size": [50, 50, 30], "wall": 1.5},
        None,
    ),
    (
        "box with lid, inside dimensions 80 x 50 x 30, with rounded corners",
        "box_with_lid",
        {"size": [84, 54, 32], "corner_radius": 5},
        None,
    ),
    (
        "a box with a lid 120x80x50mm, 3mm walls, 6 mm corner radius",
        "box_with_lid",
        {"size": [120, 80, 50], "wall": 3, "corner_radius": 6},
        None,
    ),
    ("a tray 200 x 100 x 20 mm", "tray", {"size": [200, 100, 20]}, (200, 100, 20)),
    (
        "an organizer with 4 compartments 160 x 80 x 40",
        "tray",
        {"size": [160, 80, 40], "compartments_x": 4},
        (160, 80, 40),
    ),
    (
        "a drawer organiser 3x2 compartments 150 x 100 x 50",
        "tray",
        {"compartments_x": 3, "compartments_y": 2, "size": [150, 100, 50]},
        (150, 100, 50),
    ),
    ("a bin 60 x 40 x 30 with rounded corners", "tray", {"corner_radius": 5}, (60, 40, 30)),
    ("a storage container 100x100x50 mm with 2 mm walls", "tray", {"wall": 2}, (100, 100, 50)),
    (
        "a parts tray with a 4x3 grid of compartments, 200 x 150 x 25 mm",
        "tray",
        {"compartments_x": 4, "compartments_y": 3},
        (200, 150, 25),
    ),
    ("a tray 120mm by 80mm by 15mm", "tray", {"size": [120, 80, 15]}, (120, 80, 15)),
    (
        "a desk organizer 6 x 4 x 3 inches with 3 dividers",
        "tray",
        {"compartments_x": 4, "size": [6 * IN, 4 * IN, 3 * IN]},
        (6 * IN, 4 * IN, 3 * IN),
    ),
]

ENCLOSURES: list[Row] = [
    (
        "an enclosure for a raspberry pi 4 with usb ports on the right"
        " and an hdmi port on the front",
        "enclosure",
        {"ports": [{"side": "front", "width": 16}, {"side": "right", "width": 14}]},
        None,
    ),
    (
        "an enclosure for a Raspberry Pi 4 with a USB port on the left side",
        "enclosure",
        {"board_size": [85, 56], "hole_inset": 3.5, "ports": [{"side": "left"}]},
        None,
    ),
    ("a raspberry pi 4 case", "enclosure", {"board_size": [85, 56], "ports": []}, None),
    ("an arduino uno enclosure", "enclosure", {"board_size": [68.6, 53.3]}, None),
    ("a case for an arduino nano", "enclosure", {"board_size": [45, 18]}, None),
    (
        "an Arduino Mega case with a USB-B port and a barrel jack on the left",
        "enclosure",
        {"board_size": [101.6, 53.3], "ports": [{"side": "left"}, {"side": "left"}]},
        None,
    ),
    (
        "a box for an ESP32 DevKit with a micro USB port on the front",
        "enclosure",
        {"board_size": [54.4, 27.9], "ports": [{"side": "front", "width": 9}]},
        None,
    ),
    (
        "a Raspberry Pi 5 case with two USB ports and an ethernet port on the right",
        "enclosure",
        {"board_size": [85, 56], "ports": [{"side": "right"}] * 3},
        None,
    ),
    (
        "pi zero enclosure with a micro usb port on the front",
        "enclosure",
        {"board_size": [65, 30], "ports": [{"side": "front"}]},
        None,
    ),
    (
        "an enclosure for a 100 x 60 mm pcb, 25 mm tall",
        "enclosure",
        {"board_size": [100, 60], "headroom": 25},
        None,
    ),
    ("a housing for a raspberry pi pico", "enclosure", {"board_size": [51, 21]}, None),
    (
        "project box for a 70x50 board with a DC jack on the back",
        "enclosure",
        {"board_size": [70, 50], "ports": [{"side": "back"}]},
        None,
    ),
    (
        "a raspberry pi 3 case with an hdmi port on the front and an sd card slot on the left",
        "enclosure",
        {"ports": [{"side": "front", "width": 16}, {"side": "left", "width": 13}]},
        None,
    ),
    ("case for esp8266 nodemcu", "enclosure", {"board_size": [58, 31]}, None),
    (
        "I need a case for my Pi 4 with a USB-C port on the left, 3mm walls",
        "enclosure",
        {"wall": 3, "ports": [{"side": "left", "width": 10}]},
        None,
    ),
    (
        "enclosure for a 2 x 3 inch circuit board",
        "enclosure",
        {"board_size": [2 * IN, 3 * IN]},
        None,
    ),
    ("a raspberry pi zero 2 w case", "enclosure", {"board_size": [65, 30]}, None),
    ("standoffs for a raspberry pi 4", "standoffs", {"spacing": [58, 49]}, None),
    (
        "a set of standoffs 40 x 30 mm apart, 10 mm tall, for M3",
        "standoffs",
        {"spacing": [40, 30], "height": 10, "hole_diameter": 3.4},
        None,
    ),
    ("standoffs for a pi zero", "standoffs", {"spacing": [58, 23]}, None),
    (
        "mounting posts for a 50 x 40 mm hole pattern, 8 mm high",
        "standoffs",
        {"spacing": [50, 40], "height": 8},
        None,
    ),
]

ROUND_HARDWARE: list[Row] = [
    ("a spacer 10mm long for M4", "spacer", {"hole_diameter": 4.5, "height": 10}, None),
    ("an M3 spacer 5 mm tall", "spacer", {"hole_diameter": 3.4, "height": 5}, None),
    ("a 12mm standoff for M2.5", "spacer", {"hole_diameter": 2.9, "height": 12}, None),
    (
        "a hex standoff 6mm across flats, 20 mm long for M3",
        "spacer",
        {"hexagonal": True, "outer_diameter": 6.928, "height": 20},
        None,
    ),
    (
        "a bushing 8 mm ID, 12 mm OD, 15 mm long",
        "spacer",
        {"outer_diameter": 12, "hole_diameter": 8, "height": 15},
        (12, 12, 15),
    ),
    ("a M5 x 20 spacer", "spacer", {"hole_diameter": 5.5, "height": 20}, None),
    (
        "a spacer with 10mm outside diameter, 5mm inside diameter, 8mm height",
        "spacer",
        {"outer_diameter": 10, "hole_diameter": 5, "height": 8},
        (10, 10, 8),
    ),
    ("print 4 spacers 10mm long for M3", "spacer", {"height": 10, "hole_diameter": 3.4}, None),
    (
        "a washer 20mm OD 10mm ID 2mm thick",
        "washer",
        {"outer_diameter": 20, "inner_diameter": 10, "thickness": 2},
        (20, 20, 2),
    ),
    ("an M8 washer", "washer", {"inner_diameter": 9, "outer_diameter": 16}, None),
    (
        'a washer for a 1/4 inch bolt, 3/4 inch across, 1/8" thick',
        "washer",
        {"inner_diameter": 6.35, "outer_diameter": 19.05, "thickness": 3.175},
        (19.05, 19.05, 3.175),
    ),
    (
        "a 30 mm washer with an 8 mm hole",
        "washer",
        {"outer_diameter": 30, "inner_diameter": 8},
        None,
    ),
    ("make me five M4 washers", "washer", {"inner_diameter": 4.5}, None),
    (
        'print a washer, 1 inch outer diameter, 3/8" hole, 1/16" thick',
        "washer",
        {"outer_diameter": IN, "inner_diameter": 9.525, "thickness": 1.5875},
        None,
    ),
    (
        "a gear with 20 teeth module 1.5 and a 5 mm bore",
        "gear",
        {"teeth": 20, "module": 1.5, "bore": 5},
        None,
    ),
    (
        "a 32 tooth gear, module 1, 8mm thick, 6mm bore",
        "gear",
        {"teeth": 32, "module": 1, "thickness": 8, "bore": 6},
        None,
    ),
    ("a spur gear 40 teeth mod 2", "gear", {"teeth": 40, "module": 2}, None),
    ("a 12-tooth pinion, module 1, 3 mm bore", "gear", {"teeth": 12, "module": 1, "bore": 3}, None),
    ("a gear 60 mm diameter with 28 teeth", "gear", {"teeth": 28, "module": 2}, None),
    (
        "a gear with 15 teeth, 0.8 module, 2mm shaft",
        "gear",
        {"teeth": 15, "module": 0.8, "bore": 2},
        None,
    ),
    (
        "a 24 tooth cog with a module of 1.25 and a 4mm hole, 5mm thick",
        "gear",
        {"teeth": 24, "module": 1.25, "bore": 4, "thickness": 5},
        None,
    ),
    (
        "a tube 50 mm long 20 mm OD 16 mm ID",
        "tube",
        {"outer_diameter": 20, "inner_diameter": 16, "height": 50},
        (20, 20, 50),
    ),
    (
        "a pipe 100mm long, 1 inch outside diameter, 2mm wall",
        "tube",
        {"outer_diameter": IN, "inner_diameter": IN - 4, "height": 100},
        (IN, IN, 100),
    ),
    (
        "a sleeve 30 mm tall 12 mm inner diameter 2 mm walls",
        "tube",
        {"outer_diameter": 16, "inner_diameter": 12, "height": 30},
        (16, 16, 30),
    ),
    (
        "a cylinder 30 mm diameter 40 mm tall",
        "cylinder",
        {"radius": 15, "height": 40},
        (30, 30, 40),
    ),
    ("a cylinder radius 15 height 20", "cylinder", {"radius": 15, "height": 20}, (30, 30, 20)),
    ("a rod 8mm diameter 100mm long", "cylinder", {"radius": 4, "height": 100}, (8, 8, 100)),
    (
        'a 3/8" dowel 2 inches long',
        "cylinder",
        {"radius": 4.7625, "height": 50.8},
        (9.525, 9.525, 50.8),
    ),
    ("a disc 50mm diameter 2mm thick", "cylinder", {"radius": 25, "height": 2}, (50, 50, 2)),
    ("a peg 6 mm wide and 20 mm long", "cylinder", {"radius": 3, "height": 20}, (6, 6, 20)),
    ("a 40 mm sphere", "sphere", {"radius": 20}, (40, 40, 40)),
    ("a ball radius 10 mm", "sphere", {"radius": 10}, (20, 20, 20)),
    ("a dome 60 mm diameter", "sphere", {}, (60, 60, 30)),
    (
        "a cone 30 mm tall with a 20 mm base diameter",
        "cone",
        {"radius_bottom": 10, "height": 30},
        (20, 20, 30),
    ),
    ("hex prism 20 mm across flats 10 mm tall", "polygon_prism", {"height": 10}, (20, 23.094, 10)),
    ("an M6 nut 10 mm across flats 5 mm thick", "polygon_prism", {}, (10, 11.547, 5)),
]

MOUNTS: list[Row] = [
    (
        "an L bracket 50 mm legs, 20 mm wide, 5 mm thick",
        "l_bracket",
        {"leg_a": 50, "leg_b": 50, "width": 20, "thickness": 5},
        (50, 20, 50),
    ),
    (
        "a corner bracket 30 x 30 x 15 mm",
        "l_bracket",
        {"leg_a": 30, "leg_b": 30, "width": 15},
        (30, 15, 30),
    ),
    (
        "an angle bracket 2 inch, 3/4 inch wide, M4 holes",
        "l_bracket",
        {"leg_a": 50.8, "width": 19.05, "hole_diameter": 4.5},
        None,
    ),
    (
        "a shelf bracket 200 x 150 x 30 mm",
        "shelf_bracket",
        {"leg_a": 200, "leg_b": 150, "width": 30},
        (200, 150, 30),
    ),
    (
        "an L bracket 60 mm long 40 mm high 25 wide with 2 holes per leg",
        "l_bracket",
        {"leg_a": 60, "leg_b": 40, "width": 25, "holes_per_leg": 2},
        (60, 25, 40),
    ),
    (
        "a bracket without braces 40mm, 20 mm wide",
        "l_bracket",
        {"brace": False, "leg_a": 40, "width": 20},
        None,
    ),
    ("a hook for a 20 mm rail", "wall_hook", {"reach": 32}, None),
    ("a coat hook", "wall_hook", {"reach": 40}, None),
    ("a key hook 25 mm deep", "wall_hook", {"reach": 25}, None),
    (
        "a wall hook 40 mm reach, 80 mm tall, 20 mm wide",
        "wall_hook",
        {"reach": 40, "back_height": 80, "width": 20},
        None,
    ),
    ("a headphone hanger", "wall_hook", {}, None),
    ("a clamp for a 25 mm pipe", "pipe_clamp", {"pipe_diameter": 25}, None),
    ("a pipe clamp for 3/4 inch pipe", "pipe_clamp", {"pipe_diameter": 19.05}, None),
    ("a cable clip for 8mm cable", "cable_clip", {"cable_diameter": 8}, None),
    (
        "a clip for a 5 mm cable, 2 mm thick",
        "cable_clip",
        {"cable_diameter": 5, "thickness": 2},
        None,
    ),
    (
        "a pipe clamp 32 mm diameter, 20 mm wide, M5 screws",
        "pipe_clamp",
        {"pipe_diameter": 32, "width": 20, "hole_diameter": 5.5},
        None,
    ),
    ('a hose clip for a 1/2" hose', "cable_clip", {"cable_diameter": 12.7}, None),
    ("a clamp for an 8mm rod", "pipe_clamp", {"pipe_diameter": 8}, None),
    ("a phone stand", "phone_stand", {"angle": 65}, None),
    ("an ipad stand at 60 degrees", "phone_stand", {"angle": 60, "width": 140}, None),
    (
        "a phone holder 80 mm wide for a phone 10 mm thick",
        "phone_stand",
        {"width": 80, "device_thickness": 10},
        None,
    ),
    ("a tablet stand 150mm wide", "phone_stand", {"width": 150}, None),
]

ROUND_HOUSEHOLD: list[Row] = [
    ("a vase 150 mm tall", "vase", {"height": 150}, None),
    ("a hexagonal vase 200 mm tall 100 mm wide", "vase", {"height": 200, "sides": 6}, None),
    (
        "a twisted vase 180mm tall, 80mm diameter, 8 sides, 120 degree twist",
        "vase",
        {"height": 180, "sides": 8, "twist": 120, "radii": [40, 40]},
        None,
    ),
    ("a spiral vase 150 tall", "vase", {"height": 150, "twist": 90}, None),
    ("a lamp shade 150 mm diameter 120 mm tall", "vase", {"floor": 0, "height": 120}, None),
    ("a square vase 60 mm wide 120 mm tall", "vase", {"sides": 4, "height": 120}, None),
    (
        "a straight cylindrical vase 70mm diameter 200mm tall",
        "vase",
        {"radii": [35, 35], "height": 200},
        (70, 70, 200),
    ),
    ("a vase 6 inches tall", "vase", {"height": 152.4}, None),
    ("a pot for a 12 cm plant", "plant_pot", {"top_diameter": 130}, None),
    (
        "a plant pot 100 mm diameter 90 mm tall",
        "plant_pot",
        {"top_diameter": 100, "height": 90},
        None,
    ),
    (
        "a hexagonal planter 120 mm wide 100 mm tall",
        "plant_pot",
        {"sides": 6, "top_diameter": 120, "height": 100},
        None,
    ),
    (
        "a succulent pot 60 mm across, 50 mm tall, no drain hole",
        "plant_pot",
        {"top_diameter": 60, "height": 50, "drain_hole_diameter": 0},
        None,
    ),
    (
        "a pencil cup 80 mm diameter 100 mm tall",
        "plant_pot",
        {"drain_hole_diameter": 0, "top_diameter": 80},
        None,
    ),
    (
        "a flower pot 5 inches wide and 4 inches tall",
        "plant_pot",
        {"top_diameter": 127, "height": 101.6},
        None,
    ),
    ("a coaster", "coaster", {"diameter": 95}, None),
    ("a square coaster 100mm", "coaster", {"square": True, "diameter": 100}, None),
    ("a set of 4 coasters 90 mm", "coaster", {"diameter": 90}, None),
    (
        "a flat coaster 4 inches across, 4mm thick",
        "coaster",
        {"rim_height": 0, "diameter": 101.6, "thickness": 4},
        (101.6, 101.6, 4),
    ),
    # "5 mm thick" is the whole coaster: a 3 mm base and a 2 mm rim (round nine).
    (
        "a coaster 100 mm diameter 5 mm thick",
        "coaster",
        {"diameter": 100, "thickness": 3, "rim_height": 2},
        None,
    ),
    ("a knob for a 6 mm shaft", "knob", {"shaft_diameter": 6}, None),
    (
        "a 40 mm knob for a 1/4 inch D shaft",
        "knob",
        {"diameter": 40, "shaft_diameter": 6.35, "d_flat": True},
        None,
    ),
    (
        "a control knob 25mm diameter, 6mm round shaft",
        "knob",
        {"diameter": 25, "shaft_diameter": 6, "d_flat": False},
        None,
    ),
    (
        "a smooth knob 30 mm wide 20 mm tall",
        "knob",
        {"diameter": 30, "height": 20, "ridges": 0},
        (30, 30, 20),
    ),
    ("a drawer handle with 96 mm hole spacing", "drawer_handle", {"hole_spacing": 96}, None),
    ("a 128mm cabinet pull", "drawer_handle", {"hole_spacing": 128}, None),
    ("a drawer pull, holes 3 inches apart", "drawer_handle", {"hole_spacing": 76.2}, None),
    (
        "a door handle 160 mm centers for M5 screws",
        "drawer_handle",
        {"hole_spacing": 160, "hole_diameter": 4.2},
        None,
    ),
    (
        "a funnel 100 mm wide with a 10 mm spout",
        "funnel",
        {"top_diameter": 100, "spout_diameter": 10},
        None,
    ),
    ("a small funnel", "funnel", {}, None),
    (
        "a funnel with 60mm top diameter and 8mm spout, 30mm tall",
        "funnel",
        {"top_diameter": 60, "spout_diameter": 8, "cone_height": 30},
        None,
    ),
    ("a door stop", "wedge", {"length": 120, "height": 25}, (120, 40, 25)),
    (
        "a wedge 100 long 30 wide 20 high",
        "wedge",
        {"length": 100, "width": 30, "height": 20},
        (100, 30, 20),
    ),
    (
        "a door wedge 150 x 40 x 30 mm",
        "wedge",
        {"length": 150, "width": 40, "height": 30},
        (150, 40, 30),
    ),
    ("a shim 50 x 20 x 3 mm", "wedge", {"length": 50, "width": 20, "height": 3}, (50, 20, 3)),
]

FLAT: list[Row] = [
    ("a name tag that says ALEX", "nameplate", {"text": "ALEX", "hole_diameter": 4}, None),
    (
        "a desk sign that says 'BOSS' 150 x 40 mm",
        "nameplate",
        {"text": "BOSS", "size": [150, 40]},
        None,
    ),
    (
        "an engraved name plate with the text JOHN SMITH",
        "nameplate",
        {"text": "JOHN SMITH", "style": "engraved"},
        None,
    ),
    (
        "a door sign reading MEETING ROOM, 20 mm letters",
        "nameplate",
        {"text": "MEETING ROOM", "text_height": 20},
        None,
    ),
    ("a keychain with my name EMMA", "nameplate", {"text": "EMMA"}, None),
    ('a debossed nameplate "LAB 3"', "nameplate", {"text": "LAB 3", "style": "engraved"}, None),
    (
        "a raised text sign 'OPEN' 5mm thick",
        "nameplate",
        {"text": "OPEN", "style": "raised", "thickness": 5},
        None,
    ),
    ("a plaque saying WELCOME HOME", "nameplate", {"text": "WELCOME HOME"}, None),
    (
        "a key tag with the text HOUSE and a 5 mm hole",
        "nameplate",
        {"text": "HOUSE", "hole_diameter": 5},
        None,
    ),
    (
        "a cookie cutter shaped like a star 60mm",
        "cookie_cutter",
        {"shape": "star", "size": 60},
        None,
    ),
    ("a heart cookie cutter 80 mm", "cookie_cutter", {"shape": "heart", "size": 80}, None),
    ("a round biscuit cutter 2 inches", "cookie_cutter", {"shape": "circle", "size": 50.8}, None),
    ("a square cookie cutter 50mm", "cookie_cutter", {"shape": "polygon", "size": 50}, None),
    ("a 3 inch hexagon cookie cutter", "cookie_cutter", {"shape": "polygon", "size": 76.2}, None),
    (
        "a plate 100 x 50 x 3 mm with two 5mm holes 40mm apart",
        "plate",
        {"size": [100, 50], "hole_diameter": 5, "holes": [[-20, 0], [20, 0]]},
        (100, 50, 3),
    ),
    (
        "a 80x80 plate with a 2x4 grid of holes",
        "plate",
        {"size": [80, 80], "hole_columns": 2, "hole_rows": 4},
        (80, 80, 3),
    ),
    (
        "a mounting plate 120 x 80 x 4 mm with M3 holes in the corners and rounded corners",
        "plate",
        {"hole_diameter": 3.4, "hole_columns": 2, "hole_rows": 2, "corner_radius": 5},
        (120, 80, 4),
    ),
    (
        "a plate 60mm x 40mm x 2mm with rounded corners 5mm",
        "plate",
        {"corner_radius": 5},
        (60, 40, 2),
    ),
    (
        "a 4 inch square plate 1/8 inch thick",
        "plate",
        {"size": [101.6, 101.6]},
        (101.6, 101.6, 3.175),
    ),
    (
        "a plate 150 x 100 x 5 with 6 M4 holes",
        "plate",
        {"hole_diameter": 4.5, "hole_columns": 3, "hole_rows": 2},
        (150, 100, 5),
    ),
    ("a panel 200 x 100 x 2 with 3 holes in a row", "plate", {"size": [200, 100]}, (200, 100, 2)),
    (
        "a plate 100x60x3 mm with four M3 holes 80 mm apart",
        "plate",
        {"hole_diameter": 3.4},
        (100, 60, 3),
    ),
    (
        "a 3x3 grid of 4mm holes in a 90 x 90 x 3 plate",
        "plate",
        {"hole_columns": 3, "hole_rows": 3, "hole_diameter": 4},
        (90, 90, 3),
    ),
]

ROWS = CUBES_AND_BOXES + ENCLOSURES + ROUND_HARDWARE + MOUNTS + ROUND_HOUSEHOLD + FLAT


def _matches(got: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(_matches(got.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(_matches(g, w) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, bool | str):
        return bool(got == want)
    if isinstance(want, int | float):
        return isinstance(got, int | float) and abs(got - want) <= 0.01
    return bool(got == want)


@pytest.mark.parametrize(("text", "kind", "fields", "extents"), ROWS, ids=[r[0][:50] for r in ROWS])
def test_request_gives_the_right_part(
    text: str, kind: str, fields: dict[str, Any], extents: tuple[float, float, float] | None
) -> None:
    spec = parse_request(text, PROFILE)
    assert spec.family == kind
    node = spec.parts[0]
    while node.kind in ("difference", "translate"):  # type: ignore[union-attr]
        node = node.children[0]  # type: ignore[union-attr]
    got = node.model_dump(mode="json")  # type: ignore[union-attr]
    for key, want in fields.items():
        assert _matches(got.get(key), want), f"{key}: got {got.get(key)!r}, want {want!r}"
    mesh = build_mesh(spec, PROFILE)
    assert mesh.is_watertight
    if extents is not None:
        assert sorted(mesh.extents) == pytest.approx(sorted(extents), abs=0.1)
    copies = re.match(r"(?:make me |print |a set of )?(\d+|five)\s", text)
    want_copies = {"five": 5}.get(copies.group(1), 0) if copies else 1
    if copies and copies.group(1).isdigit():
        want_copies = int(copies.group(1))
    assert len(spec.parts) == want_copies


REFUSALS = [
    # (request, phrases the message must hold)
    ("a box -20 x 10 x 10", ["understood a box", "-20", "above 0"]),
    ("a cube -5 mm", ["-5", "negative"]),
    ("a washer -3 mm thick, 20 mm OD, 8 mm ID", ["-3", "negative"]),
    ("a 0 mm cube", ["understood a cube", "0 mm", "above 0"]),
    ("a coaster 0 mm thick", ["understood a coaster", "above 0"]),
    ("a 500 mm cube", ["500 mm", "bed", "make it smaller"]),
    ("a vase 300 mm tall", ["300", "tall", "mk3"]),
    ("a shelf bracket 400 x 300 x 30 mm", ["bed"]),
    ("a box with lid 20 x 20 x 20 mm with 12 mm walls", ["wall 12", "too thick"]),
    ("a tray 30 x 30 x 20 with 16mm walls", ["wall 16", "too thick"]),
    ("a washer 10 mm OD 12 mm ID", ["inner_diameter 12", "smaller"]),
    ("a tube 20 mm OD 25 mm ID 10 long", ["smaller than outer_diameter"]),
    ("a knob 10 mm diameter for an 8 mm shaft", ["shaft_diameter 8", "wall"]),
    ("a gear with 3 teeth", ["teeth", "greater than or equal to 6"]),
    ("make it nice", ["understood nothing", "what kind of part"]),
    ("a thing 30 mm", ["understood only the sizes 30 mm", "what kind of part"]),
    ("a figurine of my cat", ["organic sculpted shapes"]),
    ("a replacement part for my dishwasher", ["understood nothing"]),
    ("a spacer", ["understood a spacer", "outer diameter"]),
    ("an enclosure", ["board's size or name"]),
    ("a 4 port usb hub bracket", ["understood a bracket", "leg length"]),
    ("a gingerbread man cookie cutter", ["outline it knows"]),
    ("a gear", ["number of teeth"]),
    ("a name tag", ["the text"]),
    ("standoffs for an arduino uno", ["Arduino Uno", "not a rectangle", "apart"]),
    ("a box", ["outer size"]),
    ("a 20 x 20 x 20 mm hollow cube", ["understood a cube", "open box"]),
    ("a duplo brick 2x4", ["DUPLO"]),
    ("a phone stand at 30 degrees", ["between 40 and 85"]),
    ("a raspberry pi case with 5 HDMI ports on the left", ["port", "past the corner"]),
]


@pytest.mark.parametrize(("text", "says"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_impossible_or_unclear_requests_are_refused_with_the_reason(
    text: str, says: list[str]
) -> None:
    with pytest.raises(InputError) as info:
        parse_request(text, PROFILE)
    message = info.value.message
    assert message.startswith(f"cannot design {text!r}")
    for phrase in says:
        assert phrase in message, message


def test_the_breadth_is_at_least_150_requests() -> None:
    assert len(ROWS) + len(REFUSALS) >= 150


@pytest.mark.asyncio
async def test_the_research_agent_refuses_before_any_mesh(tmp_path: Any) -> None:
    from printforge.agents.base import AgentContext
    from printforge.agents.research import ResearchAgent
    from printforge.models.request import PrintRequest
    from printforge.settings import load_settings

    settings = load_settings(overrides={"data_dir": str(tmp_path)})
    agent = ResearchAgent(settings)
    try:
        for text, says in (
            ("a box -20 x 10 x 10", "-20 is a negative size"),
            ("a 400 mm cube", "make it smaller"),
        ):
            request = PrintRequest(text=text)
            ctx = AgentContext(
                job_id="j",
                job_dir=tmp_path,
                request=request,
                printer="virtual",
                profile=settings.printer_profile("virtual"),
                material=settings.material("PLA"),
            )
            with pytest.raises(InputError, match=says):
                await agent.run(request, ctx)
            assert not list(tmp_path.glob("*.stl"))
    finally:
        await agent.stop()


def test_word_soup_never_raises_anything_but_a_refusal() -> None:
    # Seeded, so a failure reproduces: any mix of the words makers use either parses into a
    # valid spec or is refused with InputError, never a traceback.
    import random

    words = [
        "a",
        "box",
        "cube",
        "gear",
        "washer",
        "vase",
        "pot",
        "plate",
        "with",
        "holes",
        "mm",
        "inch",
        "20",
        "x",
        "3/4",
        "M3",
        "teeth",
        "lid",
        "case",
        "pi",
        "-",
        "0",
        "hook",
        "rail",
        "knob",
        "for",
        "the",
        "2x4",
        "grid",
        "of",
        '"',
        "usb",
        "left",
        "=",
        "1,5",
    ]
    rng = random.Random(7)
    for _ in range(400):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        try:
            spec = parse_request(text)
        except InputError as err:
            assert err.message.startswith("cannot design")
        else:
            assert spec.parts
