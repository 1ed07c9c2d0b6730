"""The offline parser: a sentence -> a validated DesignSpec, or an InputError saying what it read.

Rules, not a model: find the part family by name, read every length with its unit and meaning,
fill sensible defaults that are written into the design's description, and refuse when a size the
part cannot do without is missing.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from printforge.llm.offline.account import account
from printforge.llm.offline.families import FAMILIES
from printforge.llm.offline.quantities import scan
from printforge.llm.offline.reader import Draft, Missing, Reader, mm
from printforge.models.printer import PrinterProfile
from printforge.models.spec import DesignSpec, Requirement
from printforge.runtime.errors import InputError

__all__ = ["KNOWN_PARTS", "parse_request", "understand"]

KNOWN_PARTS = ", ".join(dict.fromkeys(label for label, _, _ in FAMILIES))
# Things people ask for that these rules cannot build, with the reason.
_UNSUPPORTED = [
    (
        r"\bfigurine|statue|bust\b|\bface\b|\bdragon|\bcat\b|\bdog\b|\bbenchy\b",
        "organic sculpted shapes",
    ),
    (r"\bduplo\b|technic", "DUPLO and Technic parts (pins, axles and tubes to a 0.1 mm fit)"),
    (
        r"\b(?:phone|iphone|galaxy|pixel|airpods?)\s+(?:\w+\s+)?(?:case|cover|bumper)\b|"
        r"\b(?:case|cover|bumper)\s+for\s+(?:my\s+|an?\s+|the\s+)?(?:iphone|phone|galaxy|pixel|"
        r"airpods?)",
        "phone cases (they follow the phone's exact 3-D outline)",
    ),
]
# Outlines the families draw; "shaped like a dog" asks for one they do not.
_SHAPES = {
    "circle",
    "round",
    "circular",
    "square",
    "star",
    "heart",
    "hexagon",
    "hexagonal",
    "octagon",
    "octagonal",
    "triangle",
    "triangular",
    "rectangle",
    "rectangular",
    "l",
    "u",
    "d",
    "cube",
    "box",
    "ring",
    "disc",
    "disk",
    "cylinder",
    "cone",
    "dome",
    "ball",
    "sphere",
    "wedge",
    "pentagon",
    "pentagonal",
    "oddly",
    "weird",
    "odd",
    "same",
}


def _unbuildable(lowered: str) -> str | None:
    """What in the request no family can make, said as a reason; None when nothing is."""
    for m in re.finditer(r"\bthread(?:ed|s)?\b", lowered):
        # "a knob for an M8 threaded rod" fits a thread; "a threaded cap" has one.
        if not re.search(r"\b(?:for|on|onto|fits?)\b(?:\s+\S+){0,3}\s*$", lowered[: m.start()]):
            return (
                "threads (a threaded cap, bolt or rod: the offline parser makes no"
                " threads; a plain hole or rod is 'a rod 8 mm diameter, 100 mm long')"
            )
    shape = re.search(
        r"(?:in the shape of|shaped like)\s+(?:an?\s+|the\s+)?([a-z]+)", lowered
    ) or re.search(r"\b([a-z]+)[- ]shaped\b", lowered)
    if shape is not None and (word := shape.group(1)) not in _SHAPES:
        return (
            f"a part shaped like a {word} (outlines here: round, square, star, heart and polygons)"
        )
    return None


def _quote(text: str) -> str:
    short = text.strip()
    return short if len(short) <= 80 else short[:77] + "..."


def understand(text: str) -> Draft:
    """The family and parts for `text`; raises InputError saying what it understood and lacks."""
    s = scan(text)
    lowered = s.text
    for pattern, what in _UNSUPPORTED[1:]:
        # Named things whose shape the families only look like: refuse rather than guess.
        if re.search(pattern, lowered):
            raise InputError(
                f"cannot design {_quote(text)!r}: understood nothing it can build;"
                f" {what} are not something the offline parser can make. Try an"
                " LLM provider (--provider openai,anthropic,offline)"
            )
    if (reason := _unbuildable(lowered)) is not None:
        raise InputError(
            f"cannot design {_quote(text)!r}: understood nothing it can build;"
            f" it asks for {reason}. Try an LLM provider (--provider"
            " openai,anthropic,offline)"
        )
    # A feature's words name no part: "a block with a hex pocket for an M3 nut" is a block.
    naming = re.sub(
        r"\b(?:pocket|recess|trap)s?\s+for\s+(?:an?\s+|the\s+)?(?:m\d+(?:\.\d+)?\s+)?"
        r"(?:hex\s+)?(?:nuts?|bolt\s+heads?)\b|\b(?:hex\s+)?nut\s+(?:trap|pocket|recess)s?(?:\s+for\s+"
        r"(?:an?\s+|the\s+)?(?:m\d+(?:\.\d+)?\s+)?(?:hex\s+)?nuts?)?\b|"
        r"\bhex(?:agon(?:al)?)?\s+(?:pocket|recess|trap|socket|cut-?out)s?(?:\s+for\s+(?:an?\s+"
        r"|the\s+)?(?:m\d+(?:\.\d+)?\s+)?(?:hex\s+)?(?:nuts?|bolt\s+heads?))?\b",
        lambda m: "x" * len(m.group(0)),
        lowered,
    )
    for label, pattern, build in FAMILIES:
        m = re.search(pattern, naming)
        if m is None:
            continue
        reader = Reader(s, f"a {label}")
        if s.negatives:
            # A minus sign is never dropped: "-20 x 10 x 10" is not a 20 mm part.
            raise InputError(
                f"cannot design {_quote(text)!r}: understood a {label}; but"
                f" {', '.join(s.negatives)} is a negative size: every length must be above"
                " 0 mm (write sizes without a minus sign)"
            )
        if re.search(
            r"\d\s*(?:x|by)\s*[\d.]+\s*\w*\s*(?:x|by)\s*[\d.]+\s*\w*\s*(?:x|by)\s*\d", lowered
        ):
            raise InputError(
                f"cannot design {_quote(text)!r}: understood a {label}; but a size"
                " has at most three numbers (length x width x height)"
            )
        zeros = [q.text.strip() for q in s.quantities if q.mm == 0] + [
            " x ".join(f"{v:g}" for v in t) for t in s.triples if 0 in t
        ]
        if zeros:
            raise InputError(
                f"cannot design {_quote(text)!r}: understood a {label}; but"
                f" {', '.join(zeros)}: a size of 0 makes nothing; every length must be above"
                " 0 mm"
            )
        s.reset_reads()
        for typo, word in s.corrected:
            # Read, and said: a slip of the keyboard is not corrected in silence.
            reader.assume(f"'{typo}' read as '{word}'")
        try:
            draft = build(reader)
        except Missing as missing:
            raise InputError(
                f"cannot design {_quote(text)!r}: understood {', '.join(missing.understood)};"
                f" missing {'; '.join(missing.missing)}"
            ) from None
        if s.copies > 1 and not draft.counted:
            draft.parts = draft.parts * s.copies
            draft.understood.append(f"{s.copies} copies")
        if any(q.unit is None and q.label != "module" for q in s.quantities) or (
            s.assumed_mm and s.triples
        ):
            draft.assumed.append("numbers without a unit are millimetres")
        if s.assumed_inch:
            draft.assumed.append("fractions without a unit are inches")
        draft.scan = s
        draft.named = m.group(0)
        return draft
    seen = [f"{mm(q.mm)}" for q in s.quantities] + [
        "x".join(f"{v:g}" for v in t) + " mm" for t in s.triples
    ]
    for pattern, what in _UNSUPPORTED:
        if re.search(pattern, lowered):
            raise InputError(
                f"cannot design {_quote(text)!r}: understood"
                f" {'only the sizes ' + ', '.join(seen) if seen else 'nothing it can build'};"
                f" it asks for {what}, which the offline parser cannot build."
                " Try an LLM provider (--provider openai,anthropic,offline) or one of:"
                f" {KNOWN_PARTS}"
            )
    understood = f"understood only the sizes {', '.join(seen)}" if seen else "understood nothing"
    guesses = "".join(f"; did you mean '{b}' for '{a}'?" for a, b in s.unsure)
    raise InputError(
        f"cannot design {_quote(text)!r}: {understood}{guesses}; missing what kind of part to make"
        f" (one of: {KNOWN_PARTS}), e.g. 'a 20 mm calibration cube' or"
        " 'a washer 20 mm outer diameter, 8 mm hole, 2 mm thick'"
    )


def parse_request(text: str, profile: PrinterProfile | None = None) -> DesignSpec:
    """`text` -> a DesignSpec that validated, or InputError. With `profile`, what the printer
    cannot make (larger than its bed, thinner than its nozzle) is refused here too, before any
    mesh is built, with what was understood and how to fix it."""
    draft = understand(text)
    description = "; ".join(draft.understood)
    if draft.assumed:
        description += ". Assumed: " + ", ".join(draft.assumed)
    try:
        spec = DesignSpec.model_validate(
            {
                "name": draft.name,
                "description": description[:2000],
                "parts": draft.parts,
                "auto_orient": draft.orient,
            }
        )
    except ValidationError as err:
        reasons = "; ".join(dict.fromkeys(_readable(dict(e)) for e in err.errors()))
        raise InputError(
            f"cannot design {_quote(text)!r}: understood {description}; but {reasons}"
        ) from None
    if draft.scan is not None:
        spec.requirements = [
            Requirement.model_validate(x) for x in account(draft.scan, draft, spec, draft.named)
        ]
    if profile is not None:
        from printforge.geometry import spec_problems  # the geometry stack loads on demand

        problems = spec_problems(spec, profile)
        if problems:
            machine = (
                f"{profile.name!r} ({profile.bed_x:g} x {profile.bed_y:g} x"
                f" {profile.max_z:g} mm, {profile.nozzle_diameter:g} mm nozzle)"
            )
            raise InputError(
                f"cannot design {_quote(text)!r}: understood {description}. It"
                f" cannot be printed on {machine}: " + "; ".join(problems)
            )
    return spec


def _readable(error: dict[str, object]) -> str:
    # Our own checks already name the field ("tray: wall 12.0 mm is too thick..."); pydantic's
    # range checks do not, so the field is put in front ("teeth: Input should be ...").
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    loc = [str(x) for x in error.get("loc", ()) if isinstance(x, str)]  # type: ignore[attr-defined]
    field = next(
        (x for x in reversed(loc) if (x not in {"parts"} and "_" in x) or x.isalpha()), None
    )
    return f"{field}: {msg.lower()}" if field else msg
