"""The research prompt: the spec schema, the rules, worked examples, and repair messages."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from printforge.llm.offline.parser import parse_request
from printforge.llm.schema import strict_schema
from printforge.models.spec import DesignSpec

__all__ = ["EXAMPLES", "design_schema", "repair_message", "system_prompt", "user_message"]

# Worked examples: each answer is produced by the offline parser from the current schema, so the
# examples can never drift from what validates.
EXAMPLES = (
    "a 20 mm calibration cube",
    "a washer 20 mm outer diameter, 8 mm hole, 2 mm thick",
    "a box with lid 80 x 60 x 40 mm, 2 mm walls",
    "a plate 100x60x3 mm with four M3 holes at the corners",
)

_RULES = """\
You design parts for an FDM 3D printer. Answer with one JSON object that follows the schema:
the design's name, a one-sentence description, and its parts as a tree of nodes, each tagged by
`kind`. Rules:
- All lengths are millimetres. Convert inches (25.4 mm), cm (10 mm) and fractions yourself.
- A diameter is twice the radius; cylinders take a radius.
- Boxes sit on their corner at the origin unless `center` is true; cylinders stand on z = 0.
- Cut holes with `difference`: the first child is kept, later children are removed. Make cutters
  0.01 mm longer on both sides so no skin is left.
- Keep walls at least 1 mm thick, the part within 200 x 200 x 200 mm, and every size positive.
- When the request leaves a size open, choose a sensible value and say so in `description`.
- List every requirement of the request in `requirements`, so that nothing in it vanishes:
  each number with its role, each named feature, text to put on the part, counts, fits and
  clearances, and the words that do not change the shape (role `context`). Mark each `built`
  (with the `spec_path` of the field that realises it, e.g. `parts[0].size[2]`), `assumed` (a
  default you chose, with its value) or `not_built` (with why in `note`, and what you built
  instead). Never build something else silently: if a part of the request cannot be built,
  mark it `not_built`; the person is then asked before anything is made.
- `size` means an outside extent of the part and `hole` a hole or bore diameter, `wall` a wall
  thickness: these are measured on the built part, so give them only where they are true.
"""


@lru_cache(maxsize=1)
def design_schema() -> dict[str, Any]:
    return strict_schema(DesignSpec)


@lru_cache(maxsize=1)
def system_prompt() -> str:
    parts = [_RULES, "Worked examples:"]
    for text in EXAMPLES:
        spec = parse_request(text)
        answer = json.dumps(spec.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
        parts.append(f"Request: {text}\nAnswer: {answer}")
    # The schema itself travels as the structured-output format (OpenAI) or the tool's input
    # schema (Anthropic); repeating it here would double every call's tokens.
    return "\n\n".join(parts)


def user_message(text: str, feedback: list[str] | None = None) -> str:
    """The request; with `feedback`, why the previous design failed after it was built."""
    if not feedback:
        return f"Design this part: {text}"
    listed = "\n".join(f"- {p}" for p in feedback[:12])
    return (
        f"Design this part: {text}\n\nA previous design for this request was built and failed"
        f" these checks; avoid them:\n{listed}"
    )


def repair_message(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems[:12])
    return (
        "That answer cannot be built. Fix these problems and answer again with the whole"
        f" corrected JSON object:\n{listed}"
    )
