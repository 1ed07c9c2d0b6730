"""JSON schemas for structured outputs, and reading a model's answer back as a JSON object."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

__all__ = ["parse_answer", "schema_fingerprint", "strict_schema"]

# Keywords OpenAI's strict mode rejects or does not list as supported; they only help humans and
# pydantic. String lengths (a name's minLength/maxLength) are not in strict mode's supported
# subset (strings: pattern and format only), and the router validates every answer against
# DesignSpec anyway, so a too-long name comes back as a repair round rather than a refused call.
_DROP = {"default", "discriminator", "title", "examples", "minLength", "maxLength"}


def _tighten(node: Any, names: bool = False) -> Any:
    """`names`: the dict maps property or definition names, which are kept whatever they are."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if names:
                out[key] = _tighten(value)
                continue
            if key in _DROP:
                continue
            # Strict mode takes anyOf only; a discriminated oneOf means the same for a const tag.
            out["anyOf" if key == "oneOf" else key] = _tighten(
                value, names=key in ("properties", "$defs")
            )
        if out.get("type") == "object" and "properties" in out:
            out["additionalProperties"] = False
            out["required"] = list(out["properties"])
        return out
    if isinstance(node, list):
        return [_tighten(v) for v in node]
    return node


def _hoist_unions(schema: dict[str, Any]) -> dict[str, Any]:
    """Write each union that is repeated (the node union under every boolean, transform and
    pattern; the profile union) once under $defs and point at it: pydantic inlines it at every
    use, which made the node union alone most of the schema's size (and tokens)."""
    seen: dict[str, int] = {}

    def count(node: Any) -> None:
        if isinstance(node, dict):
            if set(node) == {"anyOf"} and len(node["anyOf"]) > 3:
                key = json.dumps(node, sort_keys=True)
                seen[key] = seen.get(key, 0) + 1
            for v in node.values():
                count(v)
        elif isinstance(node, list):
            for v in node:
                count(v)

    count(schema)
    repeated = sorted((k for k, n in seen.items() if n > 1), key=len, reverse=True)
    names = {k: ("Node" if i == 0 else f"Union{i}") for i, k in enumerate(repeated)}
    for key in repeated:
        kinds = [r.get("$ref", "").rsplit("/", 1)[-1] for r in json.loads(key)["anyOf"]]
        if "Circle" in kinds and "Box" not in kinds:
            names[key] = "Profile"

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"anyOf"}:
                key = json.dumps(node, sort_keys=True)
                if key in names:
                    return {"$ref": f"#/$defs/{names[key]}"}
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    out = swap(schema)
    defs = out.setdefault("$defs", {})
    for key, name in names.items():
        defs[name] = json.loads(key)
    return out


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A schema every provider accepts: all keys required, no extra keys, anyOf unions, each
    repeated union written once."""
    return _hoist_unions(_tighten(model.model_json_schema(mode="validation")))


def parse_answer(text: str, *, truncated: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """(object, None) or (None, a sentence saying what is wrong with the text)."""
    body = text.strip()
    if body.startswith("```"):
        # Local models like to fence JSON even when asked not to.
        body = body.strip("`")
        body = body.removeprefix("json").strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as err:
        why = "the answer was cut off before the JSON ended" if truncated else "invalid JSON"
        return None, f"{why}: {err.msg} at character {err.pos}"
    if not isinstance(value, dict):
        return None, f"the answer is a JSON {type(value).__name__}, not an object"
    if truncated:
        return None, "the answer was cut off (max tokens reached)"
    return value, None


# Schemas are big (the design schema is ~45 kB of JSON) and the same object comes with every
# call, so their digest is kept by identity; holding the object keeps its id from being reused.
_FINGERPRINTS: dict[int, tuple[object, str, int]] = {}


def schema_fingerprint(schema: dict[str, Any]) -> tuple[str, int]:
    """(sha256 of the canonical JSON, its length in characters), computed once per object."""
    known = _FINGERPRINTS.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1], known[2]
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    if len(_FINGERPRINTS) >= 64:
        _FINGERPRINTS.clear()
    _FINGERPRINTS[id(schema)] = (schema, digest, len(text))
    return digest, len(text)
