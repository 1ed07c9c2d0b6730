"""The requirement list of an offline design: every number, count, text and named feature in
the request, marked built (with the spec field that realises it), assumed (a default, with its
value) or not_built (with why). Nothing in a request vanishes: a number no family used and a
feature no family made are `not_built`, which stops the job with a question instead of giving a
part that is not what was asked.

The family functions report what they used through their `Reader` (`use`, `default`, `claim`,
`cannot`); this module turns that, and what they did not touch, into `Requirement`s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from printforge.llm.offline.cutouts import CUTOUT_PATTERN
from printforge.llm.offline.quantities import Quantity, Scan
from printforge.llm.offline.reader import Draft, Reader, mm

__all__ = ["FEATURES", "Feature", "account", "find_features"]


@dataclass(frozen=True)
class Feature:
    name: str
    pattern: str
    what: str  # what people mean, for the note of a not_built requirement
    # Named after "for" ("a hinge for a box lid") it is what the part is for, not part of
    # it; False where "for my car vent" still says how the part must be made.
    for_is_context: bool = True


# Named features that change a part's shape. A request naming one gets a requirement; the
# family must claim it (it made it) or it is not built. Order: longer phrases first, since a
# span taken by one is not read again by the next.
FEATURES: list[Feature] = [
    Feature(
        "countersink", r"\bcounter[- ]?sunk\b|\bcounter[- ]?sinks?\b|\bcsk\b", "countersunk holes"
    ),
    Feature("counterbore", r"\bcounter[- ]?bored?s?\b|\bcounter[- ]?bores\b", "counterbored holes"),
    Feature(
        "hex pocket",
        r"\bhex(?:agon(?:al)?)?\s+(?:pocket|recess|trap|socket|cut-?out|hole)s?\b|"
        r"\bnut\s+(?:trap|pocket|recess|catch)s?\b|\b(?:pocket|recess|trap)s?\s+for\s+"
        r"(?:an?\s+|the\s+)?(?:m\d+(?:\.\d+)?\s+)?(?:hex\s+)?(?:nuts?|bolt\s+heads?)\b|"
        r"\bcaptive\s+nuts?\b",
        "a hexagonal pocket for a nut or bolt head",
    ),
    Feature(
        "sliding lid",
        r"\bslid(?:e|ing)[- ]?(?:in\s+|on\s+)?lids?\b|\blids?\s+that\s+slides?\b|"
        r"\bslide[- ]top\b",
        "a lid that slides in grooves",
    ),
    Feature("hinge", r"\bhinge[sd]?\b|\bliving hinge\b", "a hinge"),
    Feature("magnet", r"\bmagnet(?:s|ic)?\b", "pockets for magnets"),
    Feature(
        "snap fit",
        r"\bsnap[- ]?(?:fit|on|lock|shut|closed)\b|\blatch(?:es|ing)?\b|\bclasp\b",
        "a snap fit or latch",
    ),
    Feature("vent", r"\bvent(?:s|ed|ing|ilat\w*)?\b|\bair ?flow\b", "vent openings"),
    Feature("pegboard", r"\bpeg-?boards?\b|\bskadis\b", "pegs for a pegboard"),
    Feature(
        "no floor",
        r"\b(?:no|without(?:\s+an?)?)\s+(?:top\s+(?:or|and|nor)\s+)?(?:bottom|floor|base)\b|"
        r"\bopen[- ](?:bottom(?:ed)?|ended)\b|\bopen (?:at )?both ends\b|\bbottomless\b",
        "no bottom",
    ),
    Feature(
        "no top",
        r"\b(?:no|without(?:\s+an?)?)\s+top\b|\bopen[- ]top(?:ped)?\b",
        "an open top",
    ),
    Feature("chamfer", r"\bchamfer(?:ed|s)?\b|\bbevell?ed edges?\b", "chamfered edges"),
    Feature("keyhole", r"\bkey-?hole(?:s|\s+slots?)?\b", "keyhole slots"),
    Feature("zip tie", r"\b(?:zip|cable)[- ]?ties?\b", "zip-tie slots"),
    Feature("pips", r"\bpips\b|\bdots\b", "pips"),
    Feature("studs", r"\bstuds\b", "studs"),
    Feature("stackable", r"\bstack(?:able|ing|s)\b|\bnest(?:ing|able)\b", "stacking features"),
    Feature("spring", r"\bsprings?\b|\bspring-?loaded\b", "a spring"),
    Feature("handle", r"\bhandles?\b", "a handle"),
    Feature(
        "feet",
        # "with 40mm legs" sizes the legs a bracket has; "with four legs" asks for them.
        r"\brubber feet\b|\b(?:with|has|add)\s+(?:(?![\d.])\w+\s+)?(?:feet|legs)\b",
        "feet",
    ),
    Feature("label", r"\blabel (?:slot|holder|area)s?\b", "a label holder"),
    Feature(
        "drain holes",
        r"\bdrain(?:age)?\s*holes?\b|\bdrains?\b|\bdrainage\b",
        "drain holes",
    ),
    Feature(
        "wall mount",
        r"\bwall[- ]?mount(?:ed|able|ing)?\b|\b(?:on|to|onto|against)\s+(?:the|a|my)\s+wall\b|"
        r"\bscrew(?:s|ed)?\s+(?:it\s+)?(?:to|on(?:to)?|under|into)\b|"
        r"\bscrew[- ]?(?:mount|on|down)\b|"
        r"\bunder\s+(?:a|the|my)\s+(?:desk|table|shelf|cabinet|counter)\b",
        "screw holes to mount it",
    ),
    Feature("saucer", r"\bsaucers?\b|\bdrip\s+(?:tray|plate|dish)s?\b", "a saucer under it"),
    Feature(
        "vehicle mount",
        r"\b(?:car|air)\s+vents?\b|\bdash(?:board)?\b|\bwindshield\b|\bhandle ?bars?\b|"
        r"\b(?:bike|bicycle|motorcycle|stroller)\s+mount\b",
        "a mount for a vehicle (vent clip, dashboard or handlebar clamp)",
        for_is_context=False,
    ),
    Feature(
        "screw holes",
        r"\b(?:screw|mounting|mount|fixing|bolt)\s+holes?\b|\bholes?\s+(?:to|for)\s+(?:screw|mount)",
        "screw holes",
    ),
    Feature(
        "rounded corners",
        r"\b(?:rounded|round|radiused|filleted)\s+(?:corners|edges)\b",
        "rounded corners",
    ),
    Feature("lid", r"\blids?\b", "a lid"),
    Feature("flange", r"\bflanged?\b|\bflanges\b", "a flange"),
    Feature("text on sides", r"\bletters?\b.*\bsides?\b|\bsides?\b.*\bletters?\b", "letters"),
    Feature("brace", r"\bgussets?\b|\bbraces?\b|\bbraced\b|\bstruts?\b", "a brace"),
    Feature("twist", r"\btwist(?:ed|s)?\b|\bspiral\b|\bswirl(?:ed)?\b", "a twist"),
    Feature(
        "text style",
        r"\bengraved\b|\bembossed\b|\bdebossed\b|\braised\s+(?:text|letters)\b",
        "raised or engraved text",
    ),
    Feature("lip", r"\blips?\b|\bledges?\b", "a lip"),
    Feature("grip", r"\bknurl(?:ed|ing)?\b|\bgrip\s+(?:ridges|texture)\b", "a knurled grip"),
    Feature(
        "pattern",
        r"\bhoneycomb\b|\bhex(?:agon)?\s+pattern\b|\blattice\b|\bperforated\b|"
        r"\bvoronoi\b|\bmesh\s+pattern\b",
        "a cut pattern",
    ),
    Feature("cutout", CUTOUT_PATTERN, "an opening cut through a wall"),
    Feature("window", r"\bwindows?\b|\bviewing\s+(?:hole|slot)\b", "a window"),
    Feature("logo", r"\blogos?\b|\bemblem\b|\bpicture\b|\bimage\b", "a logo or picture"),
    Feature("dovetail", r"\bdove-?tails?\b", "a dovetail"),
    Feature("groove", r"\bgrooves?\b|\bchannels?\s+for\b|\bnotch(?:es)?\b", "a groove or notch"),
    Feature("mounting tabs", r"\b(?:mounting|screw)\s+(?:tabs|ears|lugs)\b", "mounting tabs"),
]


_FOR_WHAT = re.compile(r"\bfor\s+(?:an?\s+|the\s+|my\s+|your\s+|our\s+)?(?:[a-z]+\s+)?$")
_NEGATION = re.compile(r"\b(?:no|without|not|w/o|minus)\s+(?:an?\s+|any\s+|the\s+)?$")


def find_features(text: str) -> list[tuple[Feature, str, bool]]:
    """(feature, the words that named it, negated) for each named feature, in FEATURES order;
    "no flange" is the flange feature, negated."""
    found: list[tuple[Feature, str, bool]] = []
    taken: list[tuple[int, int]] = []
    for f in FEATURES:
        for m in re.finditer(f.pattern, text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            if f.for_is_context and _FOR_WHAT.search(text[max(0, m.start() - 30) : m.start()]):
                # "a hinge for a box lid", "holes for magnets": what the part is for, not a
                # feature of it (its words are context).
                continue
            neg = _NEGATION.search(text[max(0, m.start() - 16) : m.start()])
            start = m.start() - (len(neg.group(0)) if neg else 0)
            found.append((f, text[start : m.end()], neg is not None))
            taken.append((start, m.end()))
            break
    return found


# What each part family realises without being asked: a named feature it always has.
INHERENT: dict[str, set[str]] = {
    "box_with_lid": {"lid", "lip"},
    "l_bracket": {"wall mount", "brace", "screw holes"},
    "shelf_bracket": {"wall mount", "brace", "screw holes"},
    "coaster": {"lip"},
    "phone_stand": {"lip"},
    "knob": {"grip", "groove"},
    "nameplate": {"text style"},
    "fan_plate": {"pattern", "screw holes"},
    "fan_duct": {"screw holes"},
    "enclosure": {"lid", "vent", "screw holes"},
    "wall_hook": {"wall mount", "screw holes"},
    "cable_clip": {"wall mount", "screw holes"},
    "pipe_clamp": {"wall mount", "screw holes"},
    "drawer_handle": {"handle", "screw holes"},
    "plate": {"screw holes"},
    "standoffs": {"screw holes"},
    "spacer": {"screw holes"},
    "tray": {"no top"},
    "plant_pot": {"no top"},
    "tube": {"no floor", "no top"},
    "pegboard_hook": {"pegboard"},
    "sliding_box": {"sliding lid", "lid"},
    "pin_hinge": {"hinge"},
    "grommet": {"flange"},
}

# Words that carry no requirement of their own: grammar, politeness, and the words the
# scanner and the families read as labels or units anyway.
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "for",
        "to",
        "in",
        "on",
        "at",
        "by",
        "with",
        "without",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "up",
        "down",
        "out",
        "off",
        "as",
        "is",
        "are",
        "be",
        "been",
        "being",
        "was",
        "were",
        "it",
        "its",
        "it's",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "i",
        "i'd",
        "i'm",
        "im",
        "me",
        "my",
        "mine",
        "we",
        "our",
        "us",
        "you",
        "your",
        "u",
        "ur",
        "he",
        "she",
        "his",
        "her",
        "they",
        "them",
        "their",
        "can",
        "could",
        "would",
        "will",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "do",
        "does",
        "did",
        "done",
        "doing",
        "have",
        "has",
        "had",
        "please",
        "pls",
        "plz",
        "thanks",
        "thank",
        "thx",
        "hi",
        "hey",
        "hello",
        "ok",
        "okay",
        "yes",
        "no",
        "not",
        "just",
        "only",
        "also",
        "too",
        "very",
        "really",
        "quite",
        "so",
        "such",
        "some",
        "any",
        "all",
        "each",
        "every",
        "both",
        "either",
        "neither",
        "one",
        "ones",
        "another",
        "other",
        "make",
        "made",
        "making",
        "print",
        "printed",
        "printing",
        "design",
        "create",
        "build",
        "need",
        "needs",
        "want",
        "wants",
        "like",
        "would",
        "like",
        "get",
        "got",
        "give",
        "gimme",
        "looking",
        "look",
        "find",
        "something",
        "thing",
        "things",
        "stuff",
        "bit",
        "little",
        "small",
        "big",
        "large",
        "tiny",
        "huge",
        "simple",
        "basic",
        "nice",
        "good",
        "cool",
        "fancy",
        "sturdy",
        "strong",
        "standard",
        "about",
        "around",
        "roughly",
        "approx",
        "approximately",
        "approximate",
        "ish",
        "maybe",
        "perhaps",
        "exactly",
        "mm",
        "cm",
        "m",
        "in",
        "inch",
        "inches",
        "ft",
        "foot",
        "feet",
        "millimeter",
        "millimeters",
        "millimetre",
        "millimetres",
        "centimeter",
        "centimeters",
        "meter",
        "meters",
        "metre",
        "metres",
        "x",
        "by",
        "deg",
        "degree",
        "degrees",
        "wide",
        "width",
        "long",
        "length",
        "tall",
        "high",
        "height",
        "deep",
        "depth",
        "thick",
        "thickness",
        "diameter",
        "dia",
        "radius",
        "across",
        "size",
        "sized",
        "sizes",
        "outer",
        "inner",
        "outside",
        "inside",
        "od",
        "id",
        "wall",
        "walls",
        "floor",
        "bottom",
        "top",
        "side",
        "sides",
        "each",
        "per",
        "apart",
        "spacing",
        "spaced",
        "between",
        "centre",
        "center",
        "centers",
        "centres",
        "middle",
        "hole",
        "holes",
        "through",
        "thru",
        "all",
        "way",
        "how",
        "what",
        "which",
        "who",
        "where",
        "when",
        "if",
        "then",
        "than",
        "new",
        "replacement",
        "spare",
        "custom",
        "quick",
        "generic",
        "general",
        "total",
        "overall",
        "corner",
        "corners",
        "end",
        "ends",
        "piece",
        "pieces",
    ]
)


def _leaves(node: Any, path: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("kind", "requirements"):
                continue
            out += _leaves(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, f"{path}[{i}]")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        out.append((path, float(node)))
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 0.006 + 1e-4 * abs(b)


def _path_for(
    leaves: list[tuple[str, float]], value: float, hint: str, avoid: set[str] | None = None
) -> tuple[str | None, str]:
    """The spec field that holds `value` (or its half, a radius); `hint` words prefer a field,
    and a field in `avoid` (already given to another requirement) comes last."""
    words = {w for w in re.findall(r"[a-z]+", hint) if len(w) > 2}
    taken = avoid or set()

    def score(path: str) -> int:
        field = re.findall(r"[a-z]+", path.rsplit(".", 1)[-1])
        return (path in taken) * 10 - len(words & set(field))

    exact = sorted((p for p, v in leaves if _close(v, value)), key=score)
    if exact:
        return exact[0], ""
    half = sorted((p for p, v in leaves if _close(v, value / 2)), key=score)
    if half:
        return half[0], " (as a radius)"
    return None, ""


_HOLE_WORDS = re.compile(r"\b(hole|bore|inner|inside|drain|pilot|opening)\b")
_FIT_WORDS = re.compile(
    r"\b(shaft|fits?|over|for|slides|hangs|pipe|cable|door|rail|plant|board|headroom|"
    r"screw|bolt|rod|tube|clip|device|key|bit|fan)\b"
)
_SIZE_WORDS = re.compile(
    r"\b(size|side|length|width|height|thickness|diameter|outer|outside|mouth|depth|leg|"
    r"reach|footprint|plate|across|legs|tall|long|wide)\b"
)


_HOLE_FIELDS = {"inner_diameter", "hole_diameter", "bore", "drain_hole_diameter"}


def _role(said: str, value: float, extents: list[float], path: str | None = None) -> str:
    field = re.sub(r"\[\d+\]", "", path.rsplit(".", 1)[-1]) if path else ""
    if re.match(r"(?:fits|covers|slides|hangs|goes|for)\b", said):
        return "fit"  # the size of what it fits, not of the part
    if field == "wall" or (not field and re.search(r"\bwall\b", said)):
        return "wall"
    if re.search(r"clearance|gap|play", said) or field == "clearance":
        return "clearance"
    if field in _HOLE_FIELDS or (
        not field
        and _HOLE_WORDS.search(said)
        and not re.search(r"spacing|apart|circle|inset", said)
    ):
        return "hole"
    if re.search(r"spacing|apart|circle|inset|module", said + " " + field):
        return "dimension"
    sizeish = _SIZE_WORDS.search(said) or re.search(
        r"size|height|thickness|diameter|length|width|leg|reach|radius", field
    )
    if sizeish and any(_close(e, value) or abs(e - value) < 0.02 for e in extents):
        return "size"
    if _FIT_WORDS.search(said):
        return "fit"
    return "dimension"


def _extents(spec: Any) -> list[float]:
    from printforge.geometry.bounds import part_body_sizes  # geometry loads on demand

    out: list[float] = []
    for part in spec.parts:
        try:
            for size in part_body_sizes(part):
                out += [round(float(v), 4) for v in size]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def _words_read(spans: list[str]) -> set[str]:
    read: set[str] = set()
    for chunk in spans:
        read.update(re.findall(r"[a-z]+", chunk.lower()))
    return read


def account(scan: Scan, draft: Draft, spec: Any, family_words: str) -> list[dict[str, Any]]:
    """The requirement list (as dicts for `Requirement`) of `spec`, made by `draft` from `scan`.

    `family_words` is what named the part family in the request ("box with lid").
    """
    r: Reader | None = draft.reader
    parts = [p.model_dump(mode="json") for p in spec.parts]
    leaves = [leaf for i, p in enumerate(parts) for leaf in _leaves(p, f"parts[{i}]")]
    extents = _extents(spec)
    out: list[dict[str, Any]] = []
    read_spans: list[str] = [family_words]

    def add(
        text: str,
        role: str,
        status: str,
        value: float | None = None,
        path: str | None = None,
        note: str | None = None,
    ) -> None:
        out.append(
            {
                "text": text.strip(),
                "role": role,
                "status": status,
                "value": None if value is None else round(value, 3),
                "spec_path": path,
                "note": note,
            }
        )

    # Lengths: each one written in the request.
    gone = {id(q) for q in scan.scanned} - {id(q) for q in scan.quantities}
    for q in scan.scanned:
        words = _label_words(scan, q)
        read_spans.append(q.text + " " + words)
        used = r is not None and r.used(q)
        if used or id(q) in gone:
            said = r.said.get(id(q)) if r is not None else None
            path, how = _path_for(leaves, q.mm, said or q.label or "")
            if said is None:
                # Taken out by the family itself (a reducer's two sizes): say where it went.
                field = path.rsplit(".", 1)[-1] if path else (q.label or "length")
                said = re.sub(r"\[\d+\]", "", field).replace("_", " ")
            role = _role(said, q.mm, extents, path)
            add(
                _phrase(q, words),
                role,
                "built",
                q.mm,
                path,
                f"{said} {mm(q.mm)}{how}"
                if path
                else f"{said} {mm(q.mm)} (used to work out the design)",
            )
        else:
            add(
                _phrase(q, words),
                "dimension",
                "not_built",
                q.mm,
                None,
                f"{mm(q.mm)} was not used by the {draft.name} design"
                + (f" (read as {q.label.replace('_', ' ')})" if q.label else ""),
            )
    # Sizes written as 20 x 30 x 10 (whether a family looked at them, read before looking).
    seen: set[int] = scan.triples.seen  # type: ignore[attr-defined]
    for i, t in enumerate(list.__iter__(scan.triples)):
        text = " x ".join(f"{v:g}" for v in t) + " mm"
        read_spans.append(text)
        if i in seen:
            given: set[str] = set()
            paths = []
            for v in t:
                p = _path_for(leaves, v, "size", given)[0]
                paths.append(p)
                given.add(p or "")
            for v, p in zip(t, paths, strict=True):
                role = "size" if any(_close(e, v) for e in extents) else "dimension"
                add(f"{v:g} mm of {text}", role, "built", v, p, mm(v))
        else:
            add(text, "size", "not_built", None, None, f"the size {text} was not used")
    # Counts: "4 holes", "24 teeth", "2 x 3 compartments".
    for noun, n in dict.items(scan.counts):
        read_spans.append(f"{n} {noun}")
        if noun in scan.counts.read:  # type: ignore[attr-defined]
            path = next((p for p, v in leaves if v == n and not p.endswith("]")), None)
            add(
                f"{n} {noun}{'s' if n != 1 and not noun.endswith('s') else ''}",
                "count",
                "built",
                n,
                path,
                f"{n} {noun}",
            )
        else:
            add(
                f"{n} {noun}s",
                "count",
                "not_built",
                n,
                None,
                f"the {draft.name} design has no place for {n} {noun}s",
            )
    # Angles.
    for value, words in scan.angles:
        read_spans.append(words)
        path = next((p for p, v in leaves if _close(v, value)), None)
        if path is not None:
            add(words, "angle", "built", value, path, f"{value:g} degrees")
        elif r is not None and "angle" in r.claimed:
            add(words, "angle", "built", value, None, f"{value:g} degrees")
        else:
            add(words, "angle", "not_built", value, None, f"the {draft.name} design has no angle")
    # Screws, bearings and named profiles: what the part fits.
    if scan.screw_name:
        read_spans.append(scan.screw_name)
        if "screw" in scan.facts_read:
            add(scan.screw_name, "fit", "built", None, None, f"sized for {scan.screw_name} screws")
        else:
            add(
                scan.screw_name,
                "fit",
                "not_built",
                None,
                None,
                f"the {draft.name} design has no screw holes for it",
            )
    # Text to put on the part; quoted words no part carries are not built.
    texts = list(_texts(parts))
    for where, content in texts:
        read_spans.append(content)
        add(content, "text", "built", None, where, "text on the part")
    for quoted in scan.quoted:
        if not any(quoted.strip().upper() in content.upper() for _, content in texts):
            read_spans.append(quoted)
            add(
                quoted,
                "text",
                "not_built",
                None,
                None,
                f"the {draft.name} design carries no text",
            )
    # Named features.
    claimed = (r.claimed if r is not None else set()) | INHERENT.get(draft.family, set())
    refused = r.refused if r is not None else {}
    for feature, words, negated in find_features(scan.text):
        read_spans.append(words)
        if negated:
            if feature.name in claimed:
                add(
                    words,
                    "feature",
                    "not_built",
                    None,
                    None,
                    f"the {draft.name} design has {feature.what}",
                )
            else:
                add(words, "feature", "built", None, None, f"no {feature.what}")
        elif feature.name in refused:
            add(words, "feature", "not_built", None, None, refused[feature.name])
        elif feature.name in claimed:
            add(words, "feature", "built", None, None, feature.what)
        else:
            add(
                words,
                "feature",
                "not_built",
                None,
                None,
                f"the {draft.name} design cannot make {feature.what}",
            )
    for name, why in refused.items():
        if not any(x["text"] and x["note"] == why for x in out):
            add(name, "feature", "not_built", None, None, why)
    # Defaults chosen for what the request left open.
    for what, chosen in r.defaults if r is not None else []:
        if chosen is None:
            add(what, "dimension", "assumed", None, None, what)
            continue
        path, how = _path_for(leaves, chosen, what)
        add(
            what,
            _role(what, chosen, extents, path),
            "assumed",
            chosen,
            path,
            f"{what} {mm(chosen)}{how}",
        )
    # Everything else the request says: listed, so that nothing vanishes. What the family
    # says it understood ("D-shaped (flatted) shaft hole") was read too.
    read = _words_read(read_spans + (r.understood if r is not None else [])) | _STOP
    rest = [
        w
        for w in dict.fromkeys(re.findall(r"[a-z][a-z']*", scan.text))
        if w not in read and len(w) > 1 and w.rstrip("s") not in read and not w.isdigit()
    ]
    # What a printed part cannot be: a working mechanism or electronics built into it.
    for m in _active_parts(scan.text):
        add(
            m.group(0),
            "feature",
            "not_built",
            None,
            None,
            f"a printed {draft.name} cannot contain {m.group(0)} (electronics or a working"
            " mechanism); only the plastic part is made",
        )
        rest = [w for w in rest if w not in m.group(0)]
    # A word two slips from a family's name is asked about: building the family another word
    # gave ("pgeobard hook" -> a wall hook) would be a guess.
    for typo, guess in scan.unsure:
        if guess in family_words:
            continue
        add(
            typo,
            "feature",
            "not_built",
            None,
            None,
            f"'{typo}' is not a word this design knows: did you mean '{guess}'? It would build"
            f" a {draft.name} without it",
        )
        rest = [w for w in rest if w != typo]
    # What the part is said to do ("that plays music", "which lights up"): a print does none
    # of it, so it is asked about rather than listed as context.
    for m in _FUNCTION.finditer(scan.text):
        if any(x["status"] == "not_built" and m.group(1) in x["text"] for x in out):
            continue
        add(
            m.group(0),
            "feature",
            "not_built",
            None,
            None,
            f"a printed {draft.name} cannot do what '{m.group(0)}' asks (it has no power,"
            " electronics or moving mechanism); only the plastic part is made",
        )
        asked = set(re.findall(r"[a-z]+", m.group(0)))
        rest = [w for w in rest if w not in asked]
    # "with a <something> inside": a feature clause none of whose words was read names a
    # feature the design does not make, so it is asked about, never dropped.
    # A case holds things: "an enclosure for an ESP32 with a temperature sensor" says what
    # goes in it, not a feature of the plastic.
    clauses = [] if draft.family == "enclosure" else _unread_clauses(scan.text, read)
    for clause, unread in clauses:
        if any(x["status"] == "not_built" and x["text"] in clause for x in out):
            continue
        add(
            clause,
            "feature",
            "not_built",
            None,
            None,
            f"the {draft.name} design cannot make {' '.join(unread)}",
        )
        rest = [w for w in rest if w not in unread]
    # "a knob for my stove": the fit of a thing the person owns, when we had to choose all
    # of it, is a guess about their stove; ask for it instead ("..., 6mm D shaft" gives it).
    owned = _OWNED.search(scan.text)
    fit_given = any(x["status"] == "built" and x["role"] == "fit" for x in out)
    if owned is not None and not fit_given:
        for x in out:
            if (
                x["status"] == "assumed"
                and x["role"] == "fit"
                and re.search(r"\b(?:shaft|bore|socket|stem|neck|hole|opening)\b", x["text"])
            ):
                x["status"] = "not_built"
                x["note"] = (
                    f"the size that fits your {owned.group(1).strip()} is not given"
                    f" ({x['note']} would be a guess); give its size"
                )
    if rest:
        add(
            ", ".join(rest),
            "context",
            "assumed",
            None,
            None,
            "words not read as a size, count, text or feature: they do not change the part",
        )
    return out


# Working parts and electronics no print contains (a case or mount *for* them is another
# matter: "for" phrases are left out).
# Working parts and electronics no print contains. A phrase counts when it says the device
# works or is built in ("a working turbine", "a built-in LED", "a bluetooth sensor", "a motor
# inside"); a bare "motor" or "camera" names what a part is for ("a NEMA 17 motor mount").
_DEVICE = (
    r"(?:sensors?|motors?|turbines?|engines?|pumps?|speakers?|microphones?|cameras?|clocks?|"
    r"leds?|lights?|lamps?|batter(?:y|ies)|radios?|robots?|drones?|fans?|propellers?|"
    r"circuits?|chips?|displays?|screens?|bulbs?|heaters?|timers?|alarms?|buzzers?|"
    r"chargers?|sharpeners?|fountains?)"
)
_ACTIVE = re.compile(
    r"\b(?:(?:working|functional|functioning|motori[sz]ed|battery[- ]powered|solar[- ]powered|"
    r"powered|electric|electronic|spinning|light[- ]up|automatic|remote[- ]controlled|"
    rf"rechargeable|smart)\s+(?:[a-z-]+\s+){{0,2}}?{_DEVICE}|"
    rf"(?:built[- ]in|integrated|embedded)\s+(?:[a-z-]+\s+){{0,3}}?{_DEVICE}|"
    rf"(?:bluetooth|wi-?fi|gps|rfid|nfc)\s+(?:[a-z-]+\s+){{0,2}}?{_DEVICE}|"
    rf"{_DEVICE}\s+(?:inside|built[- ]in|in it|that works))\b"
)
# The word that last introduced a thing before it: "for", "of", "holds" make it what the part
# is for ("a case for my bluetooth speaker"); "with", "has" make it part of the part.
_INTRODUCER = re.compile(
    r"\b(for|of|fits?|hold|holds|holder|mount|case|cover|stand|with|w/|has|having|containing|"
    r"plus|inside)\b"
)


def _active_parts(text: str) -> list[re.Match[str]]:
    out = []
    for m in _ACTIVE.finditer(text):
        before = list(_INTRODUCER.finditer(text[max(0, m.start() - 40) : m.start()]))
        if before and before[-1].group(1) in {
            "for",
            "of",
            "fit",
            "fits",
            "hold",
            "holds",
            "holder",
            "mount",
            "case",
            "cover",
            "stand",
        }:
            continue
        out.append(m)
    return out


# What a thing is said to do that needs power, electronics or a mechanism: a verb of working
# after "that / which / it / can / to" ("a box that plays music", "a cup which lights up", "a
# stand to charge my phone"). What a part holds, fits or keeps is not in the list, nor what
# a shape does by being that shape ("measures 50 x 40", "connects to the rail", "a duct that
# cools the part").
_FUNCTION = re.compile(
    r"\b(?:that|which|it|and|can|will|to)\s+(?:can\s+|will\s+|also\s+)?("
    r"plays?|sings?|lights?\s+up|glows?|blinks?|flash(?:es)?|beeps?|buzz(?:es)?|spins?|"
    r"rotates?|vibrates?|rings?|charges?|heats?|pumps?|detects?|"
    r"senses?|talks?|speaks?|records?|streams?|tells?\s+(?:the\s+)?time|"
    r"moves?\s+by\s+itself|opens?\s+by\s+itself|waters?|sprays?|weighs?)\b"
    r"(?:\s+(?!(?:and|but|with|in|on|at|when|through|via|using|if|while|by|from|for)\b)"
    r"[a-z]+){0,3}"
)
_CLAUSE = re.compile(
    # A thing added to the part ("with a drawer", "w/ 2 wheels"), not a state of something
    # else ("my phone is 9 mm thick with case").
    r"\b(?:with|w/|featuring|including|plus|containing)\s+((?:a|an|some|two|three|four|"
    r"\d+)\s+(?:(?!(?<!-)\b(?:for|to|so|that|"
    r"which|and|but|because|on|in|at|from)\b)[^,;.()])+)"
)
_OWNED = re.compile(
    r"\b(?:for|fits?|on|onto)\s+(?:my|our|his|her|their)\s+((?:(?!(?:with|and|so|that|to|"
    r"for)\b)[a-z-]+\s*){1,3})"
)


# Words that make a with-clause a description of the part's own shape or surface ("with a
# wide mouth", "with a smooth finish", "with a tassel hole") rather than a thing added to it.
_DESCRIBES = frozenset(
    [
        "hole",
        "holes",
        "wall",
        "walls",
        "bottom",
        "top",
        "base",
        "mouth",
        "rim",
        "edge",
        "edges",
        "finish",
        "surface",
        "side",
        "sides",
        "end",
        "flat",
        "wide",
        "thin",
        "thick",
        "smooth",
        "round",
        "rounded",
        "narrow",
        "deep",
        "shallow",
        "tall",
        "short",
        "nice",
        "simple",
        "slim",
        "slight",
        "gentle",
        "sharp",
        "soft",
        "matte",
        "glossy",
        "plain",
        "neat",
        "clean",
        "tapered",
        "curved",
        "straight",
    ]
)


def _unread_clauses(text: str, read: set[str]) -> list[tuple[str, list[str]]]:
    """("with a working turbine inside", its unread words) for each with-clause that has
    content words, no number (numbers are accounted for on their own) and not one word the
    reader used."""
    out: list[tuple[str, list[str]]] = []
    for m in _CLAUSE.finditer(text):
        words = re.findall(r"[a-z][a-z']*", m.group(1))
        content = [w for w in words if w not in _STOP and len(w) > 2]
        # "with spans from 10 to 50 mm": words that say what the numbers after them are.
        if re.search(r"\d", text[m.start(1) : m.end(1) + 14]) or not content:
            continue
        if any(w in read or w.rstrip("s") in read for w in content):
            continue
        if set(re.findall(r"[a-z]+", m.group(1))) & _DESCRIBES:
            continue  # "with a wide mouth", "with a flat bottom": how it looks, not a thing
        out.append((m.group(0).strip(), content))
    return out


def _texts(node: Any, path: str = "parts") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "text" and isinstance(v, str):
                out.append((f"{path}.text", v))
            else:
                out += _texts(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _texts(v, f"{path}[{i}]")
    return out


def _label_words(scan: Scan, q: Quantity) -> str:
    """The words right after a length that name it ("thick", "outer diameter")."""
    toks = scan.tokens
    try:
        i = next(k for k, t in enumerate(toks) if t is q)
    except StopIteration:
        return ""
    after = []
    for t in toks[i + 1 : i + 3]:
        if not isinstance(t, str) or t in {",", ";", "."}:
            break
        after.append(t)
    return " ".join(after)


def _phrase(q: Quantity, words: str) -> str:
    return f"{q.text.strip()} {words}".strip()
