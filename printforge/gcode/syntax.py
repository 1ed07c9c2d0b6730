"""One G-code line as firmware reads it: pure functions, no machine state.

Marlin, Prusa firmware, Klipper and RepRapFirmware agree on most of a line. Where they differ
in a way that changes what the machine does, the reading here is the one every firmware shares,
or the line is refused with the reason (`Line.error`):

- `;` starts a comment. A `(` starts one only in Marlin builds with PAREN_COMMENTS (and in
  RepRapFirmware); elsewhere the words inside are read, so a parenthesis outside a message is
  refused rather than guessed.
- `N<n>` and `*<checksum>` frame a line a host sends; the command between them is read whatever
  the checksum (Klipper ignores both, Marlin refuses a bad one: reading it is the cautious side).
- A word is a letter and a number, with or without blanks between them (`X 250` is X250, as
  Marlin, Prusa and Klipper read it) and between words (`G1X10Y5`).
- `E` inside a number starts a new word, never an exponent: Marlin's value_float stops at `E`
  and Klipper splits before every letter, so `X1E5` is X1 E5.
- A letter given twice (`G1 X10 X500`) is refused: Marlin's two parsers disagree on which
  one counts.
- Klipper's extended commands are `NAME KEY=VALUE ...`; a word without `=` is malformed there.
- RepRapFirmware's quoted strings (`M98 P"macro.g"`) and colon lists (`M92 E400:420`, the first
  value counts here) are read; its meta commands (`if`, `while`, `var` …) and `{expressions}`
  are refused, since what they do depends on values only the firmware knows.
- `M486 A<name>` (an object's name for cancelling it) is free text, like a message.
- Prose is not G-code: `M112 is fun` has words of several letters and no number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "META_COMMANDS",
    "STRING_COMMANDS",
    "Line",
    "checksum",
    "parse_line",
    "strip_comment",
]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_CLASSIC = re.compile(r"([GMTD]) *(\d+)(?:\.(\d+))?", re.ASCII)
_EXTENDED = re.compile(r"[A-Z_][A-Z0-9_]+", re.ASCII)
_WORD = re.compile(rf' *([A-Z]) *("(?:[^"]|"")*"|{_NUM}(?::{_NUM})*)?', re.ASCII)
_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_PRUSA_TOOL = re.compile(r"T[?XC]")

# Commands whose argument is free text (a message, a file name): not read as words.
STRING_COMMANDS = frozenset(
    {"M0", "M1", "M16", "M23", "M28", "M30", "M32", "M33", "M117", "M118", "M928", "M862"}
)
# RepRapFirmware 3 meta commands: conditionals, loops and variables.
META_COMMANDS = frozenset(
    {"IF", "ELIF", "ELSE", "WHILE", "BREAK", "CONTINUE", "ABORT", "VAR", "GLOBAL", "SET", "ECHO"}
)
AXIS_FLAGS = frozenset("XYZE")
_NO_ARGS: dict[str, str] = {}  # shared by moves, which never have args; never written to


@dataclass(slots=True)
class Line:
    """One command line.

    `code` is the command word in upper case (`G1`, `M104`, `T0`, `G29.1`,
    `SET_HEATER_TEMPERATURE`). Classic commands carry `words` (letter -> number, None for a
    bare letter such as G28's `X`); extended ones carry `args` (KEY -> value, keys upper case).
    RepRapFirmware's quoted strings are in `args` under their letter. `text` is the free-text
    argument of a message or file command. `error` says why the line is not G-code.
    """

    number: int
    raw: str
    command: str
    code: str
    words: dict[str, float | None] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    text: str = ""
    extended: bool = False
    error: str | None = None
    line_number: int | None = None  # a host's N<n>, when the line carries one


def checksum(data: bytes) -> int:
    """XOR of every byte, as firmware computes it over everything before `*`."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def strip_comment(raw: str) -> str:
    """A line without its `;` comment and surrounding whitespace ('' when nothing is left)."""
    cut = raw.find(";")
    return (raw if cut < 0 else raw[:cut]).strip()


def parse_line(raw: str, number: int = 1) -> Line | None:
    """The command on one line, or None for a blank or comment-only line."""
    if not raw or raw[0] == ";":
        return None
    cut = raw.find(";")
    body = (raw[:cut] if cut >= 0 else raw).strip()
    if not body:
        return None
    upper = body.upper()
    fast = _plain_move(upper)
    if fast is not None:
        return Line(number, raw, body, upper[:2], fast, _NO_ARGS)
    body, upper, line_number = _unframe(body, upper)
    if not upper:
        return None
    line = Line(number, raw, body, "", line_number=line_number)
    _read_command(line, upper, body)
    return line


def _plain_move(upper: str) -> dict[str, float | None] | None:
    """The words of a plain `G0`/`G1` with blank-separated numeric words, or None.

    The hot path (nearly every line of a sliced file): split and float, after ruling out what
    float() reads and firmware does not (`X1E5`, `INF`, `NAN`, `1_0`, non-ASCII digits)."""
    head = upper[:3]
    if not (head == "G1 " or head == "G0 ") or not upper.isascii():
        return None
    rest = upper[3:]
    if "E" in (" " + rest).replace(" E", "") or "N" in rest or "_" in rest:
        return None
    parts = rest.split()
    try:
        words: dict[str, float | None] = {p[0]: float(p[1:]) for p in parts}
    except ValueError:
        return None  # `X 250` (a blank after the letter) or junk: the full reading decides
    return words if len(words) == len(parts) else None


def _unframe(body: str, upper: str) -> tuple[str, str, int | None]:
    """The command without a host's `N<n>` before it and `*<checksum>` after it."""
    line_number = None
    if upper[0] == "N" and upper[1:2].isdigit():
        end = 1
        while end < len(upper) and upper[end].isdigit():
            end += 1
        line_number = int(upper[1:end])
        body, upper = body[end:].lstrip(), upper[end:].lstrip()
    star = upper.rfind("*")
    if star >= 0 and upper[star + 1 :].strip().isdigit():
        body, upper = body[:star].rstrip(), upper[:star].rstrip()
    return body, upper, line_number


def _read_command(line: Line, upper: str, body: str) -> None:
    classic = _CLASSIC.match(upper)
    if classic is not None and _ends_word(upper, classic.end()):
        letter, code, sub = classic.groups()
        line.code = f"{letter}{int(code)}" + (f".{sub}" if sub is not None else "")
        _read_words(line, upper, body, classic.end())
    elif _PRUSA_TOOL.match(upper) and _ends_word(upper, 2):
        line.code = upper[:2]  # Prusa's MMU: T? (ask), Tx and Tc (load to the nozzle)
    elif (extended := _EXTENDED.match(upper)) is not None and _ends_word(upper, extended.end()):
        line.code = extended.group()
        line.extended = True
        _read_args(line, body[extended.end() :])
    else:
        line.error = "it does not start with a command (G, M or T and a number, or a Klipper NAME)"


def _ends_word(upper: str, end: int) -> bool:
    # The command word ends at a blank, at the next word's letter (`G1X10`), or at the end.
    return end == len(upper) or upper[end] == " " or upper[end] == "\t" or upper[end].isalpha()


def _read_words(line: Line, upper: str, body: str, start: int) -> None:
    rest = upper[start:].replace("\t", " ")
    if line.code.split(".")[0] in STRING_COMMANDS:
        line.text = body[start:].strip()
        return
    if line.code == "M486" and rest.lstrip().startswith("A"):
        # M486 A<name> names the current object: free text to the end of the line, as Marlin
        # and Prusa firmware read it (`M486 Apart_1`, not the words A, P, A ...).
        line.text = body[start:].strip()[1:].strip()
        return
    line.error = _not_words(rest)
    if line.error is not None:
        return
    pos = 0
    while pos < len(rest):
        match = _WORD.match(rest, pos)
        if match is None or match.end() == pos:
            if rest[pos:].strip():
                line.error = f"`{rest[pos:].strip()[:20].lower()}` is not a G-code word"
            return
        pos = match.end()
        letter, value = match.groups()
        if letter in line.words or letter in line.args:
            line.error = f"gives {letter} twice (firmware differ on which one counts)"
            return
        if value is None:
            line.words[letter] = None
        elif value[0] == '"':
            quoted = body[start + match.start(2) + 1 : start + match.end(2) - 1]  # case kept
            line.args[letter] = quoted.replace('""', '"')
        else:
            line.words[letter] = float(value.split(":", 1)[0])


def _not_words(rest: str) -> str | None:
    """Why the words after a command cannot be read the same way by every firmware, if so."""
    if not rest.isascii():
        return "it holds characters that are not G-code outside a message"
    if "{" in rest:
        return "it holds an {expression}, which only the firmware can evaluate"
    if "(" in rest:
        return (
            "it holds a parenthesis: a comment in RepRapFirmware and some Marlin builds,"
            " words to read in others"
        )
    for token in _QUOTED.sub("", rest).split():
        if token.isalpha() and len(token) > 1 and not set(token) <= AXIS_FLAGS:
            return f"`{token.lower()}` is not a G-code word"
    return None


def _read_args(line: Line, rest: str) -> None:
    """Klipper's `KEY=VALUE` parameters (quotes allowed); `#` starts a comment there."""
    if line.code in META_COMMANDS:
        line.error = (
            f"RepRapFirmware meta command `{line.code.lower()}`: what it does depends on values"
            " only the firmware knows"
        )
        return
    hash_at = rest.find("#")
    if hash_at >= 0:
        rest = rest[:hash_at]
    if "{" in rest:
        line.error = "it holds an {expression}, which only the firmware can evaluate"
        return
    for token in _split_quoted(rest):
        key, eq, value = token.partition("=")
        if not eq or not key:
            line.error = f"`{token[:20]}` is not a KEY=VALUE parameter"
            return
        line.args[key.upper()] = value.strip("'\"")


def _split_quoted(text: str) -> list[str]:
    out: list[str] = []
    current = ""
    quote = ""
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current += ch
        elif ch.isspace():
            if current:
                out.append(current)
            current = ""
        else:
            current += ch
    if current:
        out.append(current)
    return out
